//! The Liquid dialect templates are written in: the standard tags and filters, made
//! safe to run on templates written by anyone with a workspace login.
//!
//! - No `include` / `render` (nothing can be read from disk) and no `tablerow`.
//! - `for` is Nudge's own: ranges are iterated, never materialised (`(1..1000000000)`
//!   would otherwise allocate gigabytes), and every iteration of every loop in one
//!   render draws from one budget ([`Limits::iterations`]).
//! - Every filter's result is bounded in size ([`Limits::value_bytes`]), so doubling a
//!   string with `append` in a loop stops with an error instead of eating memory.
//! - Output goes to a [`BoundedWriter`] that fails past [`Limits::output_bytes`].
//! - Missing variables render empty at any depth (`contact.traits.nope.deeper`), as in
//!   Shopify's Liquid: the data is wrapped in [`Lenient`] values.

use liquid_core::error::ResultLiquidExt;
use liquid_core::model::{ArrayView, DisplayCow, KStringCow, ObjectView, ScalarCow, State, Value, ValueCow, ValueView};
use liquid_core::parser::{BlockElement, FilterArguments, TryMatchToken};
use liquid_core::runtime::{Interrupt, InterruptRegister, StackFrame};
use liquid_core::{
    BlockReflection, Display_filter, Error, Expression, Filter, FilterReflection, Language, ParseBlock, ParseFilter,
    Renderable, Result, Runtime, TagBlock, TagTokenIter, Template,
};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, OnceLock};

/// Bounds on one render.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Loop iterations across all loops of one render.
    pub iterations: u64,
    /// Size of any value a filter produces (string bytes, or 64 bytes per array item).
    pub value_bytes: usize,
    /// Size of the rendered output.
    pub output_bytes: usize,
}

pub const LIMITS: Limits = Limits {
    iterations: 100_000,
    value_bytes: 1 << 20,
    output_bytes: 2 << 20,
};

/// The shared parser (parsing is the expensive part; compiled templates are cached).
pub fn parser() -> &'static liquid::Parser {
    static PARSER: OnceLock<liquid::Parser> = OnceLock::new();
    PARSER.get_or_init(|| {
        use liquid_lib::stdlib as std_;
        let mut b = liquid::ParserBuilder::new()
            .tag(std_::AssignTag)
            .tag(std_::BreakTag)
            .tag(std_::ContinueTag)
            .tag(std_::CycleTag)
            .tag(std_::IncrementTag)
            .tag(std_::DecrementTag)
            .block(std_::RawBlock)
            .block(std_::IfBlock)
            .block(std_::UnlessBlock)
            .block(std_::IfChangedBlock)
            .block(BoundedFor)
            .block(std_::CommentBlock)
            .block(std_::CaptureBlock)
            .block(std_::CaseBlock);
        let filters: Vec<Box<dyn ParseFilter>> = vec![
            Box::new(std_::Abs),
            Box::new(std_::Append),
            Box::new(std_::AtLeast),
            Box::new(std_::AtMost),
            Box::new(Capitalize),
            Box::new(std_::Ceil),
            Box::new(std_::Compact),
            Box::new(std_::Concat),
            Box::new(std_::Date),
            Box::new(std_::Default),
            Box::new(std_::DividedBy),
            Box::new(std_::Downcase),
            Box::new(std_::Escape),
            Box::new(std_::EscapeOnce),
            Box::new(std_::First),
            Box::new(std_::Floor),
            Box::new(std_::Join),
            Box::new(Json),
            Box::new(std_::Last),
            Box::new(std_::Lstrip),
            Box::new(std_::Map),
            Box::new(std_::Minus),
            Box::new(std_::Modulo),
            Box::new(std_::NewlineToBr),
            Box::new(std_::Plus),
            Box::new(std_::Prepend),
            Box::new(std_::Remove),
            Box::new(std_::RemoveFirst),
            Box::new(std_::Replace),
            Box::new(std_::ReplaceFirst),
            Box::new(std_::Reverse),
            Box::new(std_::Round),
            Box::new(std_::Rstrip),
            Box::new(Size),
            Box::new(Raw),
            Box::new(std_::Slice),
            Box::new(std_::Sort),
            Box::new(std_::SortNatural),
            Box::new(std_::Split),
            Box::new(std_::Strip),
            Box::new(std_::StripHtml),
            Box::new(std_::StripNewlines),
            Box::new(std_::Times),
            Box::new(std_::Truncate),
            Box::new(std_::TruncateWords),
            Box::new(std_::Uniq),
            Box::new(std_::Upcase),
            Box::new(std_::UrlDecode),
            Box::new(UrlEncode),
            Box::new(std_::Where),
        ];
        for f in filters {
            b = b.filter(Bounded(Arc::from(f)));
        }
        b.build().expect("the Liquid parser is built from known parts")
    })
}

/// Renders into memory, failing past `limits.output_bytes`.
pub fn render(template: &liquid::Template, globals: &Lenient, limits: Limits) -> Result<String, String> {
    let mut out = BoundedWriter {
        buf: Vec::with_capacity(1024),
        max: limits.output_bytes,
    };
    template
        .render_to(&mut out, globals.as_object().expect("globals are an object"))
        .map_err(|e| {
            if out.buf.len() >= limits.output_bytes {
                format!("the output is larger than {} bytes", limits.output_bytes)
            } else {
                first_line(&e.to_string())
            }
        })?;
    String::from_utf8(out.buf).map_err(|_| "the output is not valid UTF-8".to_string())
}

fn first_line(s: &str) -> String {
    let s = s.trim_start_matches("liquid: ");
    s.lines().next().unwrap_or(s).to_string()
}

/// A writer that refuses to grow past `max` bytes.
pub struct BoundedWriter {
    pub buf: Vec<u8>,
    max: usize,
}

impl Write for BoundedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.max {
            self.buf
                .extend_from_slice(&data[..self.max.saturating_sub(self.buf.len())]);
            return Err(std::io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Lenient data: missing keys are nil at any depth.

/// Template data that answers "nil" for anything it does not have.
#[derive(Debug, Clone)]
pub enum Lenient {
    Scalar(Value),
    Array(Vec<Lenient>),
    Object(BTreeMap<String, Lenient>),
    Missing,
}

static MISSING: Lenient = Lenient::Missing;

impl Lenient {
    pub fn from_json(v: &serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            // `null` behaves like a missing value: `a_null.deeper` is nil too.
            J::Null => Lenient::Missing,
            J::Bool(b) => Lenient::Scalar(Value::scalar(*b)),
            J::Number(n) => Lenient::Scalar(match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Value::scalar(i),
                (None, Some(f)) => Value::scalar(f),
                _ => Value::scalar(n.to_string()),
            }),
            J::String(s) => Lenient::Scalar(Value::scalar(s.clone())),
            J::Array(a) => Lenient::Array(a.iter().map(Lenient::from_json).collect()),
            J::Object(o) => Lenient::Object(o.iter().map(|(k, v)| (k.clone(), Lenient::from_json(v))).collect()),
        }
    }
}

impl Lenient {
    /// Copies any Liquid value into lenient form (loop items, which Liquid hands over
    /// as plain values): missing keys inside them are nil too.
    pub fn from_view(v: &dyn ValueView) -> Lenient {
        if let Some(a) = v.as_array() {
            Lenient::Array(a.values().map(Lenient::from_view).collect())
        } else if let Some(o) = v.as_object() {
            Lenient::Object(o.iter().map(|(k, v)| (k.to_string(), Lenient::from_view(v))).collect())
        } else if v.is_nil() {
            Lenient::Missing
        } else {
            Lenient::Scalar(v.to_value())
        }
    }
}

impl ValueView for Lenient {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }
    fn render(&self) -> DisplayCow<'_> {
        match self {
            Lenient::Scalar(v) => v.render(),
            Lenient::Missing => DisplayCow::Owned(Box::new("")),
            _ => DisplayCow::Owned(Box::new(self.to_value().render().to_string())),
        }
    }
    fn source(&self) -> DisplayCow<'_> {
        match self {
            Lenient::Scalar(v) => v.source(),
            Lenient::Missing => DisplayCow::Owned(Box::new("nil")),
            _ => DisplayCow::Owned(Box::new(self.to_value().source().to_string())),
        }
    }
    fn type_name(&self) -> &'static str {
        match self {
            Lenient::Scalar(v) => v.type_name(),
            Lenient::Array(_) => "array",
            Lenient::Object(_) => "object",
            Lenient::Missing => "nil",
        }
    }
    fn query_state(&self, state: State) -> bool {
        match self {
            Lenient::Scalar(v) => v.query_state(state),
            Lenient::Array(a) => match state {
                State::Truthy => true,
                State::DefaultValue | State::Empty | State::Blank => a.is_empty(),
            },
            Lenient::Object(o) => match state {
                State::Truthy => true,
                State::DefaultValue | State::Empty | State::Blank => o.is_empty(),
            },
            Lenient::Missing => !matches!(state, State::Truthy),
        }
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        match self {
            Lenient::Scalar(v) => v.to_kstr(),
            Lenient::Missing => KStringCow::from_static(""),
            _ => KStringCow::from_string(self.render().to_string()),
        }
    }
    fn to_value(&self) -> Value {
        match self {
            Lenient::Scalar(v) => v.clone(),
            Lenient::Array(a) => Value::Array(a.iter().map(ValueView::to_value).collect()),
            Lenient::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone().into(), v.to_value())).collect()),
            Lenient::Missing => Value::Nil,
        }
    }
    fn as_scalar(&self) -> Option<ScalarCow<'_>> {
        match self {
            Lenient::Scalar(v) => v.as_scalar(),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<&dyn ArrayView> {
        match self {
            Lenient::Array(_) => Some(self),
            _ => None,
        }
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        match self {
            // A missing value can be indexed further: `a.missing.deeper` is nil too.
            Lenient::Object(_) | Lenient::Missing => Some(self),
            _ => None,
        }
    }
    fn is_object(&self) -> bool {
        matches!(self, Lenient::Object(_))
    }
    fn is_nil(&self) -> bool {
        matches!(self, Lenient::Missing | Lenient::Scalar(Value::Nil))
    }
}

impl ArrayView for Lenient {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        match self {
            Lenient::Array(a) => a.len() as i64,
            _ => 0,
        }
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        match self {
            Lenient::Array(a) => Box::new(a.iter().map(|v| v as &dyn ValueView)),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn contains_key(&self, index: i64) -> bool {
        ArrayView::get(self, index).is_some()
    }
    fn get(&self, index: i64) -> Option<&dyn ValueView> {
        let Lenient::Array(a) = self else { return None };
        let i = if index < 0 { a.len() as i64 + index } else { index };
        usize::try_from(i)
            .ok()
            .and_then(|i| a.as_slice().get(i))
            .map(|v| v as &dyn ValueView)
    }
}

impl ObjectView for Lenient {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        match self {
            Lenient::Object(o) => o.len() as i64,
            _ => 0,
        }
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        match self {
            Lenient::Object(o) => Box::new(o.keys().map(|k| KStringCow::from_ref(k))),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        match self {
            Lenient::Object(o) => Box::new(o.values().map(|v| v as &dyn ValueView)),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        match self {
            Lenient::Object(o) => Box::new(o.iter().map(|(k, v)| (KStringCow::from_ref(k), v as &dyn ValueView))),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn contains_key(&self, _index: &str) -> bool {
        // Every name exists; the ones without data are nil.
        true
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        match self {
            Lenient::Object(o) => Some(o.get(index).unwrap_or(&MISSING)),
            _ => Some(&MISSING),
        }
    }
}

// ---------------------------------------------------------------------------------
// Bounded filters.

/// A standard filter whose results are checked against [`LIMITS`].
#[derive(Clone)]
struct Bounded(Arc<dyn ParseFilter>);

impl ParseFilter for Bounded {
    fn parse(&self, arguments: FilterArguments) -> Result<Box<dyn Filter>> {
        let inner = self.0.parse(arguments)?;
        Ok(Box::new(BoundedFilter(inner)))
    }
    fn reflection(&self) -> &dyn FilterReflection {
        self.0.reflection()
    }
}

struct BoundedFilter(Box<dyn Filter>);

impl fmt::Debug for BoundedFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
impl fmt::Display for BoundedFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Filter for BoundedFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let out = self.0.evaluate(input, runtime)?;
        let size = match &out {
            Value::Scalar(s) => s.to_kstr().len(),
            Value::Array(a) => a.len() * 64,
            Value::Object(o) => o.len() * 64,
            _ => 0,
        };
        if size > LIMITS.value_bytes {
            return Err(Error::with_msg(format!(
                "filter `{}` produced a value larger than {} bytes",
                self.0, LIMITS.value_bytes
            )));
        }
        Ok(out)
    }
}

/// `capitalize` as Shopify does it: first character upper case, the rest lower case.
#[derive(Clone, liquid_core::ParseFilter, liquid_core::FilterReflection)]
#[filter(
    name = "capitalize",
    description = "Upper-cases the first character, lower-cases the rest.",
    parsed(CapitalizeFilter)
)]
struct Capitalize;

#[derive(Debug, Default, Display_filter)]
#[name = "capitalize"]
struct CapitalizeFilter;

impl Filter for CapitalizeFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        let s = input.to_kstr();
        let mut chars = s.chars();
        let out = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect(),
            None => String::new(),
        };
        Ok(Value::scalar(out))
    }
}

/// `size` counting characters, not bytes (`"Zoë" | size` is 3), as Shopify does.
#[derive(Clone, liquid_core::ParseFilter, liquid_core::FilterReflection)]
#[filter(
    name = "size",
    description = "Number of characters in a string or items in an array.",
    parsed(SizeFilter)
)]
struct Size;

#[derive(Debug, Default, Display_filter)]
#[name = "size"]
struct SizeFilter;

impl Filter for SizeFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        if let Some(s) = input.as_scalar() {
            return Ok(Value::scalar(s.to_kstr().chars().count() as i64));
        }
        if let Some(a) = input.as_array() {
            return Ok(Value::scalar(a.size()));
        }
        if let Some(o) = input.as_object() {
            return Ok(Value::scalar(o.size()));
        }
        Ok(Value::scalar(0i64))
    }
}

/// `url_encode` as Shopify does it (form encoding: a space is `+`).
#[derive(Clone, liquid_core::ParseFilter, liquid_core::FilterReflection)]
#[filter(
    name = "url_encode",
    description = "Percent-encodes a string for a URL query.",
    parsed(UrlEncodeFilter)
)]
struct UrlEncode;

#[derive(Debug, Default, Display_filter)]
#[name = "url_encode"]
struct UrlEncodeFilter;

impl Filter for UrlEncodeFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        let s = input.to_kstr();
        let mut out = String::with_capacity(s.len() * 3 / 2);
        for b in s.bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        Ok(Value::scalar(out))
    }
}

/// `json`: the value as JSON (`"a \"quoted\" text"`, `42`, `null`, `[1, 2]`), for
/// webhook bodies: `{"name": {{ contact.traits.name | json }}}` stays valid JSON
/// whatever the value holds.
#[derive(Clone, liquid_core::ParseFilter, liquid_core::FilterReflection)]
#[filter(
    name = "json",
    description = "Encodes the value as JSON (strings quoted and escaped).",
    parsed(JsonFilter)
)]
struct Json;

#[derive(Debug, Default, Display_filter)]
#[name = "json"]
struct JsonFilter;

impl Filter for JsonFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        let text = if input.is_nil() {
            "null".to_string()
        } else {
            serde_json::to_string(&input.to_value()).map_err(|e| Error::with_msg(format!("json: {e}")))?
        };
        Ok(Value::scalar(text))
    }
}

/// `raw`: marks an output in an HTML body as trusted HTML (no automatic escaping).
#[derive(Clone, liquid_core::ParseFilter, liquid_core::FilterReflection)]
#[filter(
    name = "raw",
    description = "Outputs the value as HTML, without escaping.",
    parsed(RawFilter)
)]
struct Raw;

#[derive(Debug, Default, Display_filter)]
#[name = "raw"]
struct RawFilter;

impl Filter for RawFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        Ok(input.to_value())
    }
}

// ---------------------------------------------------------------------------------
// `for`, iterating lazily within a budget.

#[derive(Debug, Default)]
struct IterationsUsed(u64);

#[derive(Clone, Copy, Debug)]
struct BoundedFor;

impl BlockReflection for BoundedFor {
    fn start_tag(&self) -> &str {
        "for"
    }
    fn end_tag(&self) -> &str {
        "endfor"
    }
    fn description(&self) -> &str {
        "Repeats a block for every item of an array or number of a range."
    }
}

#[derive(Debug)]
enum Source {
    Array(Expression),
    Range(Expression, Expression),
}

#[derive(Debug)]
struct For {
    var: String,
    source: Source,
    limit: Option<Expression>,
    offset: Option<Expression>,
    reversed: bool,
    body: Template,
    otherwise: Option<Template>,
}

impl ParseBlock for BoundedFor {
    fn parse(
        &self,
        mut args: TagTokenIter<'_>,
        mut block: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let var = args
            .expect_next("Identifier expected.")?
            .expect_identifier()
            .into_result()?
            .to_string();
        args.expect_next("\"in\" expected.")?
            .expect_str("in")
            .into_result_custom_msg("\"in\" expected.")?;
        let source = match args.expect_next("Array or range expected.")?.expect_value() {
            TryMatchToken::Matches(e) => Source::Array(e),
            TryMatchToken::Fails(t) => match t.expect_range() {
                TryMatchToken::Matches((a, b)) => Source::Range(a, b),
                TryMatchToken::Fails(t) => return t.raise_error().into_err(),
            },
        };
        let (mut limit, mut offset, mut reversed) = (None, None, false);
        while let Some(token) = args.next() {
            match token.as_str() {
                "limit" | "offset" => {
                    let which = token.as_str();
                    args.expect_next("\":\" expected.")?
                        .expect_str(":")
                        .into_result_custom_msg("\":\" expected.")?;
                    let value = args.expect_next("Value expected.")?.expect_value().into_result()?;
                    if which == "limit" {
                        limit = Some(value);
                    } else {
                        offset = Some(value);
                    }
                }
                "reversed" => reversed = true,
                _ => {
                    return token
                        .raise_custom_error("\"limit\", \"offset\" or \"reversed\" expected.")
                        .into_err();
                }
            }
        }
        args.expect_nothing()?;
        let mut body = Vec::new();
        let mut otherwise = None;
        while let Some(element) = block.next()? {
            match element {
                BlockElement::Tag(mut tag) if tag.name() == "else" => {
                    tag.tokens().expect_nothing()?;
                    otherwise = Some(Template::new(block.parse_all(options)?));
                    break;
                }
                BlockElement::Tag(tag) => body.push(tag.parse(&mut block, options)?),
                element => body.push(element.parse(&mut block, options)?),
            }
        }
        block.assert_empty();
        Ok(Box::new(For {
            var,
            source,
            limit,
            offset,
            reversed,
            body: Template::new(body),
            otherwise,
        }))
    }
    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

fn whole_number(e: &Expression, runtime: &dyn Runtime, what: &str) -> Result<i64> {
    let v = e.evaluate(runtime)?;
    v.as_scalar()
        .and_then(|s| s.to_integer())
        .ok_or_else(|| Error::with_msg(format!("{what} must be a whole number, got {}", v.source())))
}

impl For {
    /// Positions (into the array, or offsets from the range start) to visit, in order.
    fn window(&self, len: i64, runtime: &dyn Runtime) -> Result<(i64, i64)> {
        let offset = match &self.offset {
            Some(e) => whole_number(e, runtime, "offset")?.clamp(0, len),
            None => 0,
        };
        let end = match &self.limit {
            Some(e) => offset
                .saturating_add(whole_number(e, runtime, "limit")?.max(0))
                .min(len),
            None => len,
        };
        Ok((offset, end))
    }

    fn item<'a>(&self, array: Option<&'a dyn ArrayView>, start: i64, i: i64) -> ValueCow<'a> {
        match array {
            Some(a) => a.get(i).map(ValueCow::Borrowed).unwrap_or(ValueCow::Owned(Value::Nil)),
            None => ValueCow::Owned(Value::scalar(start + i)),
        }
    }
}

impl Renderable for For {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let (array_value, start, len) = match &self.source {
            Source::Array(e) => {
                let v = e.evaluate(runtime)?;
                let len = v.as_array().map(|a| a.size()).unwrap_or(0);
                (Some(v), 0, len)
            }
            Source::Range(a, b) => {
                let (a, b) = (
                    whole_number(a, runtime, "range start")?,
                    whole_number(b, runtime, "range end")?,
                );
                (
                    None,
                    a,
                    if b >= a {
                        b.saturating_sub(a).saturating_add(1)
                    } else {
                        0
                    },
                )
            }
        };
        let array = array_value.as_ref().and_then(|v| v.as_array());
        let (from, to) = self.window(len, runtime)?;
        let count = to - from;
        if count <= 0 {
            if let Some(t) = &self.otherwise {
                t.render_to(writer, runtime)?;
            }
            return Ok(());
        }
        let parent = runtime
            .try_get(&[liquid_core::model::Scalar::new("forloop")])
            .map(|v| v.into_owned());
        for n in 0..count {
            {
                let mut used = runtime.registers().get_mut::<IterationsUsed>();
                used.0 += 1;
                if used.0 > LIMITS.iterations {
                    return Err(Error::with_msg(format!(
                        "loops ran more than {} times in one render",
                        LIMITS.iterations
                    )));
                }
            }
            let i = if self.reversed { to - 1 - n } else { from + n };
            let item = Lenient::from_view(self.item(array, start, i).as_view());
            let mut forloop = liquid_core::Object::new();
            forloop.insert("length".into(), Value::scalar(count));
            forloop.insert("index".into(), Value::scalar(n + 1));
            forloop.insert("index0".into(), Value::scalar(n));
            forloop.insert("rindex".into(), Value::scalar(count - n));
            forloop.insert("rindex0".into(), Value::scalar(count - n - 1));
            forloop.insert("first".into(), Value::scalar(n == 0));
            forloop.insert("last".into(), Value::scalar(n == count - 1));
            if let Some(p) = &parent {
                forloop.insert("parentloop".into(), p.clone());
            }
            let forloop = Value::Object(forloop);
            let mut frame = BTreeMap::<liquid_core::model::KStringRef<'_>, &dyn ValueView>::new();
            frame.insert("forloop".into(), &forloop);
            frame.insert(self.var.as_str().into(), &item);
            let scope = StackFrame::new(runtime, &frame);
            self.body
                .render_to(writer, &scope)
                .context_key("index")
                .value_with(|| format!("{}", n + 1).into())?;
            let interrupt = scope.registers().get_mut::<InterruptRegister>().reset();
            if let Some(Interrupt::Break) = interrupt {
                break;
            }
        }
        Ok(())
    }
}
