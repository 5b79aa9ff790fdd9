//! The segment builder's tree of forms, without HTTP or HTML: a condition
//! ([`Condition`]) as a tree of [`Node`]s holding the text of their form fields, read
//! from a posted field list, edited (add, remove, nest, unwrap), turned back into a
//! condition with every problem at its node, and flattened into [`Row`]s for the
//! template.
//!
//! Form field names are paths: the root is `root`, the children of an `and`, `or`
//! or `not` node are `root.children.0`, `root.children.1`, ... (a `not` has exactly
//! one), a node's fields are `root.children.2.trait`, `root.children.2.op`, and the
//! property filters of event conditions `root.children.2.where.0.property`. The
//! node type is `{path}.type`. A posted form is the whole tree, so each add, remove
//! or nest is a plain submit that re-renders the tree: the builder works without
//! JavaScript.
//!
//! Values are written as people type them: a trait compared with `equals` takes
//! `pro`, `42`, `true` or `"42"` (a JSON string for text that would read as
//! something else), lists are comma-separated (`FR, BE, CH`) or a JSON array, numbers
//! may be typed in Persian or Arabic digits. [`Node::from_condition`] writes each
//! value so that reading it back gives the same condition.

use nudge_core::segment::{Condition, Count, PropertyFilter, Window};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The path of the root node.
pub const ROOT: &str = "root";

/// The kinds of node, named as in the condition language.
pub const GROUP_KINDS: [&str; 2] = ["and", "or"];
pub const LEAF_KINDS: [&str; 9] = [
    "trait",
    "event",
    "event_time",
    "aggregate",
    "subscription",
    "segment",
    "message",
    "lead_score",
    "random_bucket",
];

/// Operators of a trait or property test.
pub const TEST_OPS: [&str; 18] = [
    "equals",
    "not_equals",
    "greater_than",
    "greater_or_equal",
    "less_than",
    "less_or_equal",
    "contains",
    "starts_with",
    "exists",
    "not_exists",
    "in",
    "not_in",
    "before",
    "after",
    "within_last_days",
    "within_next_days",
    "anniversary_within_days",
    "anniversary_this_month",
];
/// Operators of an event time test.
pub const TIME_OPS: [&str; 6] = [
    "within_last_days",
    "not_within_last_days",
    "within_last_hours",
    "not_within_last_hours",
    "before",
    "after",
];
pub const NUM_OPS: [&str; 5] = [
    "greater_or_equal",
    "greater_than",
    "equals",
    "less_or_equal",
    "less_than",
];
pub const COUNT_OPS: [&str; 3] = ["at_least", "at_most", "exactly"];
pub const WINDOWS: [&str; 4] = ["ever", "last_days", "last_hours", "between"];
pub const WHICH: [&str; 2] = ["last", "first"];
pub const FUNCTIONS: [&str; 5] = ["sum", "avg", "min", "max", "count"];
pub const SUB_STATES: [&str; 4] = ["subscribed", "unsubscribed", "pending", "unknown"];
pub const ACTIONS: [&str; 6] = ["received", "delivered", "opened", "clicked", "bounced", "failed"];

/// What a test operator compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// Nothing (`exists`).
    None,
    /// A string, number or boolean (`equals`).
    Scalar,
    /// A number (`greater_than`).
    Number,
    /// Text as typed, spaces included (`contains`).
    Text,
    /// A list of scalars (`in`).
    List,
    /// An ISO 8601 date (`before`).
    Date,
    /// A whole number of days (`within_last_days`).
    Days,
    /// A whole number of hours.
    Hours,
}

/// The operand of a trait, property or event-time operator.
pub fn operand(op: &str) -> Operand {
    match op {
        "equals" | "not_equals" => Operand::Scalar,
        "greater_than" | "greater_or_equal" | "less_than" | "less_or_equal" => Operand::Number,
        "contains" | "starts_with" => Operand::Text,
        "in" | "not_in" => Operand::List,
        "before" | "after" => Operand::Date,
        "within_last_days" | "within_next_days" | "anniversary_within_days" | "not_within_last_days" => Operand::Days,
        "within_last_hours" | "not_within_last_hours" => Operand::Hours,
        _ => Operand::None,
    }
}

/// A property filter of an event condition, as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub property: String,
    pub op: String,
    pub value: String,
}

/// A node of the tree, as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// `and`, `or`, `not` or one of [`LEAF_KINDS`].
    pub kind: String,
    /// The text of the node's fields by name (`trait`, `op`, `value`, `count_op`...).
    pub fields: BTreeMap<String, String>,
    pub filters: Vec<Filter>,
    pub children: Vec<Node>,
}

/// Why a node cannot become a condition: a message id of the catalogue, or a
/// validator's own words.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Key(&'static str),
    Text(String),
}

/// A problem at a node (`path`), with the field at fault (`value`, `where.0.value`;
/// empty for the node as a whole).
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: String,
    pub field: String,
    pub message: Message,
}

/// The fields each kind of node reads.
fn field_names(kind: &str) -> &'static [&'static str] {
    match kind {
        "trait" => &["trait", "op", "value"],
        "event" => &[
            "event",
            "count_op",
            "count",
            "window",
            "window_n",
            "window_from",
            "window_to",
        ],
        "event_time" => &["event", "which", "op", "value"],
        "aggregate" => &[
            "event",
            "function",
            "property",
            "op",
            "value",
            "window",
            "window_n",
            "window_from",
            "window_to",
        ],
        "subscription" => &["channel", "state"],
        "random_bucket" => &["percent", "salt"],
        "segment" => &["segment"],
        "message" => &[
            "action",
            "channel",
            "template",
            "count_op",
            "count",
            "window",
            "window_n",
            "window_from",
            "window_to",
        ],
        "lead_score" => &["score", "op", "value"],
        _ => &[],
    }
}

/// Whether a kind of node reads property filters.
pub fn has_filters(kind: &str) -> bool {
    matches!(kind, "event" | "event_time" | "aggregate")
}

fn is_group(kind: &str) -> bool {
    matches!(kind, "and" | "or" | "not")
}

fn f(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

impl Node {
    /// A new node of `kind` with the fields a marketer most often wants.
    pub fn new(kind: &str) -> Node {
        let fields = match kind {
            "trait" => f(&[("op", "equals")]),
            "event" => f(&[("count_op", "at_least"), ("count", "1"), ("window", "ever")]),
            "event_time" => f(&[("which", "last"), ("op", "within_last_days"), ("value", "30")]),
            "aggregate" => f(&[("function", "sum"), ("op", "greater_or_equal"), ("window", "ever")]),
            "subscription" => f(&[("channel", "email"), ("state", "subscribed")]),
            "random_bucket" => f(&[("percent", "10")]),
            "message" => f(&[
                ("action", "opened"),
                ("count_op", "at_least"),
                ("count", "1"),
                ("window", "last_days"),
                ("window_n", "30"),
            ]),
            "lead_score" => f(&[("op", "greater_or_equal")]),
            _ => BTreeMap::new(),
        };
        let kind = if is_group(kind) || LEAF_KINDS.contains(&kind) {
            kind
        } else {
            "trait"
        };
        Node {
            kind: kind.to_owned(),
            fields,
            filters: Vec::new(),
            children: if kind == "not" {
                vec![Node::new("trait")]
            } else {
                Vec::new()
            },
        }
    }

    /// An empty `and` (everyone) with one trait condition to fill in: a new segment.
    pub fn starter() -> Node {
        let mut root = Node::new("and");
        root.children.push(Node::new("trait"));
        root
    }

    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }

    fn set(&mut self, name: &str, value: impl Into<String>) {
        self.fields.insert(name.to_owned(), value.into());
    }

    // ---- reading a posted form ----

    /// The tree a posted form describes (`None` when it has no `root.type`).
    pub fn from_form(fields: &[(String, String)]) -> Option<Node> {
        let map: BTreeMap<&str, &str> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        read(&map, ROOT, 0)
    }

    // ---- editing ----

    fn at_mut(&mut self, path: &str) -> Option<&mut Node> {
        let rest = path.strip_prefix(ROOT)?;
        let mut node = self;
        let mut parts = rest.split('.').filter(|p| !p.is_empty());
        while let Some(p) = parts.next() {
            if p != "children" {
                return None;
            }
            let i: usize = parts.next()?.parse().ok()?;
            node = node.children.get_mut(i)?;
        }
        Some(node)
    }

    /// The node at `path`.
    pub fn at(&self, path: &str) -> Option<&Node> {
        let rest = path.strip_prefix(ROOT)?;
        let mut node = self;
        let mut parts = rest.split('.').filter(|p| !p.is_empty());
        while let Some(p) = parts.next() {
            if p != "children" {
                return None;
            }
            let i: usize = parts.next()?.parse().ok()?;
            node = node.children.get(i)?;
        }
        Some(node)
    }

    /// Carries out a builder action (`add:root`, `remove:root.children.1`,
    /// `wrap:root.children.0:or`, `unwrap:root.children.2`, `add_filter:…`,
    /// `remove_filter:…:0`); `add_kind` is the kind the form chose for `add`.
    /// Returns whether the action named a node of the tree.
    pub fn apply(&mut self, action: &str, add_kind: &str) -> bool {
        let (verb, rest) = action.split_once(':').unwrap_or((action, ""));
        let (path, arg) = rest.split_once(':').unwrap_or((rest, ""));
        match verb {
            "add" => match self.at_mut(path) {
                Some(n) if n.kind == "and" || n.kind == "or" => {
                    n.children.push(Node::new(add_kind));
                    true
                }
                _ => false,
            },
            "remove" => {
                if path == ROOT {
                    *self = Node::new("and");
                    return true;
                }
                let Some((parent, i)) = split_child(path) else {
                    return false;
                };
                match self.at_mut(parent) {
                    Some(p) if i < p.children.len() => {
                        p.children.remove(i);
                        true
                    }
                    _ => false,
                }
            }
            "wrap" => {
                let kind = if ["and", "or", "not"].contains(&arg) {
                    arg
                } else {
                    "and"
                };
                match self.at_mut(path) {
                    Some(n) => {
                        let inner = std::mem::replace(n, Node::new(kind));
                        n.children = vec![inner];
                        true
                    }
                    None => false,
                }
            }
            "unwrap" => self.unwrap_at(path),
            "add_filter" => match self.at_mut(path) {
                Some(n) if has_filters(&n.kind) => {
                    n.filters.push(Filter {
                        op: "equals".into(),
                        ..Filter::default()
                    });
                    true
                }
                _ => false,
            },
            "remove_filter" => match (self.at_mut(path), arg.parse::<usize>()) {
                (Some(n), Ok(i)) if i < n.filters.len() => {
                    n.filters.remove(i);
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// A `not` (or a group of one) gives way to its child; a group of several moves
    /// its children up into the group holding it.
    fn unwrap_at(&mut self, path: &str) -> bool {
        let Some(node) = self.at(path) else { return false };
        if !is_group(&node.kind) {
            return false;
        }
        if node.children.len() == 1 {
            let Some(n) = self.at_mut(path) else { return false };
            let child = n.children.remove(0);
            *n = child;
            return true;
        }
        let Some((parent, i)) = split_child(path) else {
            return false;
        };
        match self.at_mut(parent) {
            Some(p) if p.kind == "and" || p.kind == "or" => {
                let group = p.children.remove(i);
                for (k, c) in group.children.into_iter().enumerate() {
                    p.children.insert(i + k, c);
                }
                true
            }
            _ => false,
        }
    }

    // ---- to a condition ----

    /// The condition this tree describes, or every problem found, each at its node.
    pub fn to_condition(&self) -> Result<Condition, Vec<Problem>> {
        let mut problems = Vec::new();
        let c = self.convert(ROOT, &mut problems);
        match c {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(problems),
        }
    }

    fn convert(&self, path: &str, problems: &mut Vec<Problem>) -> Option<Condition> {
        let mut problem = |field: &str, message: Message| {
            problems.push(Problem {
                path: path.to_owned(),
                field: field.to_owned(),
                message,
            })
        };
        let child = |i: usize| format!("{path}.children.{i}");
        match self.kind.as_str() {
            "and" | "or" => {
                let mut conditions = Vec::new();
                for (i, c) in self.children.iter().enumerate() {
                    conditions.extend(c.convert(&child(i), problems));
                }
                (conditions.len() == self.children.len()).then(|| {
                    if self.kind == "and" {
                        Condition::And { conditions }
                    } else {
                        Condition::Or { conditions }
                    }
                })
            }
            "not" => match self.children.as_slice() {
                [only] => only
                    .convert(&child(0), problems)
                    .map(|c| Condition::Not { condition: Box::new(c) }),
                _ => {
                    problem("", Message::Key("builder-error-not-one"));
                    None
                }
            },
            kind => {
                let mut json = serde_json::Map::new();
                json.insert("type".into(), json!(kind));
                let mut ok = true;
                let mut bad = |field: &str, m: &'static str| {
                    problem(field, Message::Key(m));
                    ok = false;
                };
                self.leaf_json(&mut json, &mut bad);
                if !ok {
                    return None;
                }
                match serde_json::from_value::<Condition>(Value::Object(json)) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        problems.push(Problem {
                            path: path.to_owned(),
                            field: String::new(),
                            message: Message::Text(e.to_string()),
                        });
                        None
                    }
                }
            }
        }
    }

    /// The JSON of a leaf (the condition language's own shape), from the fields.
    fn leaf_json(&self, json: &mut serde_json::Map<String, Value>, bad: &mut impl FnMut(&str, &'static str)) {
        let mut put = |k: &str, v: Value| {
            json.insert(k.to_owned(), v);
        };
        let name = |field: &str, bad: &mut dyn FnMut(&str, &'static str)| -> Value {
            let v = self.field(field).trim();
            if v.is_empty() {
                bad(field, "builder-error-required");
            }
            json!(v)
        };
        let choice = |field: &str, options: &[&str], bad: &mut dyn FnMut(&str, &'static str)| -> Value {
            let v = self.field(field);
            if !options.contains(&v) {
                bad(field, "builder-error-choose");
            }
            json!(v)
        };
        match self.kind.as_str() {
            "trait" => {
                put("trait", name("trait", bad));
                test_json(self.field("op"), self.field("value"), "", &mut put, bad);
            }
            "event" => {
                put("event", name("event", bad));
                self.filters_json(&mut put, bad);
                put("count", self.count_json(bad));
                put("window", self.window_json(bad));
            }
            "event_time" => {
                put("event", name("event", bad));
                self.filters_json(&mut put, bad);
                put("which", choice("which", &WHICH, bad));
                let op = self.field("op");
                put("op", choice("op", &TIME_OPS, bad));
                let raw = self.field("value");
                match operand(op) {
                    Operand::Date => put("value", date(raw, "value", bad)),
                    Operand::Days => put("days", whole(raw, "value", bad)),
                    Operand::Hours => put("hours", whole(raw, "value", bad)),
                    _ => {}
                }
            }
            "aggregate" => {
                put("event", name("event", bad));
                self.filters_json(&mut put, bad);
                let function = choice("function", &FUNCTIONS, bad);
                let property = self.field("property").trim();
                if property.is_empty() {
                    if function != json!("count") {
                        bad("property", "builder-error-required");
                    }
                } else {
                    put("property", json!(property));
                }
                put("function", function);
                put("window", self.window_json(bad));
                put("op", choice("op", &NUM_OPS, bad));
                put("value", number(self.field("value"), "value", bad));
            }
            "subscription" => {
                put("channel", choice("channel", nudge_core::contact::CHANNELS, bad));
                put("state", choice("state", &SUB_STATES, bad));
            }
            "random_bucket" => {
                match digits(self.field("percent")).trim().parse::<u8>() {
                    Ok(p) => put("percent", json!(p)),
                    Err(_) => bad("percent", "builder-error-percent"),
                }
                put("salt", json!(self.field("salt")));
            }
            "segment" => match digits(self.field("segment")).trim().parse::<i64>() {
                Ok(id) => put("segment", json!(id)),
                Err(_) => bad("segment", "builder-error-choose"),
            },
            "message" => {
                put("action", choice("action", &ACTIONS, bad));
                let channel = self.field("channel");
                if !channel.is_empty() {
                    put("channel", choice("channel", nudge_core::contact::CHANNELS, bad));
                }
                let template = digits(self.field("template")).trim().to_owned();
                if !template.is_empty() {
                    match template.parse::<i64>() {
                        Ok(id) => put("template", json!(id)),
                        Err(_) => bad("template", "builder-error-whole"),
                    }
                }
                put("count", self.count_json(bad));
                put("window", self.window_json(bad));
            }
            "lead_score" => {
                let score = self.field("score").trim();
                if !score.is_empty() && score != nudge_core::scoring::DEFAULT_SCORE {
                    put("score", Value::String(score.to_string()));
                }
                put("op", choice("op", &NUM_OPS, bad));
                put("value", number(self.field("value"), "value", bad));
            }
            _ => bad("type", "builder-error-choose"),
        }
    }

    fn filters_json(&self, put: &mut impl FnMut(&str, Value), bad: &mut impl FnMut(&str, &'static str)) {
        if self.filters.is_empty() {
            return;
        }
        let mut out = Vec::new();
        for (i, flt) in self.filters.iter().enumerate() {
            let mut one = serde_json::Map::new();
            let property = flt.property.trim();
            if property.is_empty() {
                bad(&format!("where.{i}.property"), "builder-error-required");
            }
            one.insert("property".into(), json!(property));
            let prefix = format!("where.{i}.");
            test_json(
                &flt.op,
                &flt.value,
                &prefix,
                &mut |k: &str, v: Value| {
                    one.insert(k.to_owned(), v);
                },
                bad,
            );
            out.push(Value::Object(one));
        }
        put("where", Value::Array(out));
    }

    fn count_json(&self, bad: &mut impl FnMut(&str, &'static str)) -> Value {
        let op = self.field("count_op");
        if !COUNT_OPS.contains(&op) {
            bad("count_op", "builder-error-choose");
        }
        json!({"op": op, "value": whole(self.field("count"), "count", bad)})
    }

    fn window_json(&self, bad: &mut impl FnMut(&str, &'static str)) -> Value {
        match self.field("window") {
            "" | "ever" => json!("ever"),
            "last_days" => json!({"last_days": whole(self.field("window_n"), "window_n", bad)}),
            "last_hours" => json!({"last_hours": whole(self.field("window_n"), "window_n", bad)}),
            "between" => json!({"between": {
                "from": date(self.field("window_from"), "window_from", bad),
                "to": date(self.field("window_to"), "window_to", bad),
            }}),
            _ => {
                bad("window", "builder-error-choose");
                Value::Null
            }
        }
    }

    // ---- from a condition ----

    /// The tree of forms for a condition; reading it back gives the same condition.
    pub fn from_condition(c: &Condition) -> Node {
        let mut n = Node {
            kind: String::new(),
            fields: BTreeMap::new(),
            filters: Vec::new(),
            children: Vec::new(),
        };
        let json = serde_json::to_value(c).unwrap_or(Value::Null);
        n.kind = json["type"].as_str().unwrap_or("and").to_owned();
        match c {
            Condition::And { conditions } | Condition::Or { conditions } => {
                n.children = conditions.iter().map(Node::from_condition).collect();
            }
            Condition::Not { condition } => n.children = vec![Node::from_condition(condition)],
            Condition::Trait { name, .. } => {
                n.set("trait", name.clone());
                let (op, value) = test_text(&json);
                n.set("op", op);
                n.set("value", value);
            }
            Condition::Event {
                event,
                filters,
                count,
                window,
            } => {
                n.set("event", event.clone());
                n.filters = filters_text(filters);
                n.set_count(count);
                n.set_window(window);
            }
            Condition::EventTime {
                event, filters, which, ..
            } => {
                n.set("event", event.clone());
                n.filters = filters_text(filters);
                n.set("which", name_of(which));
                let op = json["op"].as_str().unwrap_or("").to_owned();
                let value = ["value", "days", "hours"]
                    .iter()
                    .find_map(|k| json.get(*k))
                    .map(plain)
                    .unwrap_or_default();
                n.set("op", op);
                n.set("value", value);
            }
            Condition::Aggregate {
                event,
                filters,
                function,
                property,
                window,
                op,
                value,
            } => {
                n.set("event", event.clone());
                n.filters = filters_text(filters);
                n.set("function", name_of(function));
                n.set("property", property.clone().unwrap_or_default());
                n.set_window(window);
                n.set("op", name_of(op));
                n.set("value", value.to_string());
            }
            Condition::Subscription { channel, state } => {
                n.set("channel", channel.clone());
                n.set("state", name_of(state));
            }
            Condition::RandomBucket { percent, salt } => {
                n.set("percent", percent.to_string());
                n.set("salt", salt.clone());
            }
            Condition::Segment { segment } => n.set("segment", segment.to_string()),
            Condition::Message {
                action,
                channel,
                template,
                count,
                window,
            } => {
                n.set("action", name_of(action));
                n.set("channel", channel.clone().unwrap_or_default());
                n.set("template", template.map(|t| t.to_string()).unwrap_or_default());
                n.set_count(count);
                n.set_window(window);
            }
            Condition::LeadScore { score, op, value } => {
                n.set("score", score.clone().unwrap_or_default());
                n.set("op", name_of(op));
                n.set("value", value.to_string());
            }
        }
        n
    }

    fn set_count(&mut self, count: &Count) {
        self.set("count_op", name_of(&count.op));
        self.set("count", count.value.to_string());
    }

    fn set_window(&mut self, window: &Window) {
        match window {
            Window::Ever => self.set("window", "ever"),
            Window::LastDays(d) => {
                self.set("window", "last_days");
                self.set("window_n", d.to_string());
            }
            Window::LastHours(h) => {
                self.set("window", "last_hours");
                self.set("window_n", h.to_string());
            }
            Window::Between { from, to } => {
                self.set("window", "between");
                self.set("window_from", from.clone());
                self.set("window_to", to.clone());
            }
        }
    }

    // ---- rows for the template ----

    /// The tree flattened for the template: a group opens, its children follow, it
    /// closes.
    pub fn rows(&self) -> Vec<Row<'_>> {
        let mut out = Vec::new();
        self.push_rows(ROOT.to_owned(), 0, None, &mut out);
        out
    }

    fn push_rows<'a>(&'a self, path: String, depth: usize, parent: Option<&str>, out: &mut Vec<Row<'a>>) {
        let in_group = matches!(parent, Some("and" | "or"));
        if is_group(&self.kind) {
            out.push(Row {
                path: path.clone(),
                depth,
                node: self,
                open: true,
                close: false,
                in_group,
            });
            for (i, c) in self.children.iter().enumerate() {
                c.push_rows(format!("{path}.children.{i}"), depth + 1, Some(&self.kind), out);
            }
            out.push(Row {
                path,
                depth,
                node: self,
                open: false,
                close: true,
                in_group,
            });
        } else {
            out.push(Row {
                path,
                depth,
                node: self,
                open: false,
                close: false,
                in_group,
            });
        }
    }
}

/// One line of the flattened tree: a group's opening (`open`), its closing
/// (`close`), or a leaf (neither).
pub struct Row<'a> {
    pub path: String,
    pub depth: usize,
    pub node: &'a Node,
    pub open: bool,
    pub close: bool,
    /// The node sits in an `and` or `or` (it may be removed, or its group unwrapped).
    pub in_group: bool,
}

impl Row<'_> {
    pub fn kind(&self) -> &str {
        &self.node.kind
    }
    pub fn f(&self, name: &str) -> &str {
        self.node.field(name)
    }
    /// The name of one of this node's form fields.
    pub fn name(&self, field: &str) -> String {
        format!("{}.{field}", self.path)
    }
    /// The id of one of this node's form fields (for labels).
    pub fn id(&self, field: &str) -> String {
        format!("f-{}-{}", self.path, field).replace('.', "-")
    }
    pub fn is_root(&self) -> bool {
        self.path == ROOT
    }
    /// The operand the node's operator takes.
    pub fn operand(&self) -> Operand {
        operand(self.f("op"))
    }
    pub fn takes_value(&self) -> bool {
        self.operand() != Operand::None
    }
}

impl Filter {
    pub fn takes_value(&self) -> bool {
        operand(&self.op) != Operand::None
    }
}

fn read(map: &BTreeMap<&str, &str>, path: &str, depth: usize) -> Option<Node> {
    let kind = *map.get(format!("{path}.type").as_str())?;
    if depth > nudge_core::segment::MAX_DEPTH + 2 {
        return None;
    }
    let mut node = Node::new(kind);
    node.children.clear();
    node.fields.clear();
    for name in field_names(&node.kind) {
        if let Some(v) = map.get(format!("{path}.{name}").as_str()) {
            node.fields.insert((*name).to_owned(), (*v).to_owned());
        }
    }
    let indices = |prefix: &str, suffix: &str| -> Vec<usize> {
        let mut ids: Vec<usize> = map
            .keys()
            .filter_map(|k| k.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    if has_filters(&node.kind) {
        for i in indices(&format!("{path}.where."), ".op") {
            let get = |f: &str| {
                map.get(format!("{path}.where.{i}.{f}").as_str())
                    .unwrap_or(&"")
                    .to_string()
            };
            node.filters.push(Filter {
                property: get("property"),
                op: get("op"),
                value: get("value"),
            });
        }
    }
    if is_group(&node.kind) {
        for i in indices(&format!("{path}.children."), ".type") {
            if let Some(c) = read(map, &format!("{path}.children.{i}"), depth + 1) {
                node.children.push(c);
            }
        }
    }
    Some(node)
}

/// `root.children.2` → (`root`, 2).
fn split_child(path: &str) -> Option<(&str, usize)> {
    let (parent, i) = path.rsplit_once(".children.")?;
    Some((parent, i.parse().ok()?))
}

/// The UI path and field of a validator's JSON path: `$.conditions[1].where[0].value`
/// is node `root.children.1`, field `where.0.value`.
pub fn locate(json_path: &str) -> (String, String) {
    let mut node = ROOT.to_owned();
    let mut rest = json_path.trim_start_matches('$');
    loop {
        if let Some(r) = rest.strip_prefix(".conditions[")
            && let Some((i, after)) = r.split_once(']')
        {
            node = format!("{node}.children.{i}");
            rest = after;
        } else if let Some(after) = rest.strip_prefix(".condition")
            && !after.starts_with('s')
        {
            node = format!("{node}.children.0");
            rest = after;
        } else {
            break;
        }
    }
    let field = rest.trim_start_matches('.').replace('[', ".").replace(']', "");
    (node, field)
}

/// Persian (۰-۹) and Arabic-Indic (٠-٩) digits as ASCII, so numbers may be typed in
/// either.
pub fn digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '۰'..='۹' => char::from(b'0' + (c as u32 - '۰' as u32) as u8),
            '٠'..='٩' => char::from(b'0' + (c as u32 - '٠' as u32) as u8),
            '٫' => '.',
            c => c,
        })
        .collect()
}

fn whole(raw: &str, field: &str, bad: &mut impl FnMut(&str, &'static str)) -> Value {
    match digits(raw).trim().parse::<u32>() {
        Ok(n) => json!(n),
        Err(_) => {
            bad(field, "builder-error-whole");
            Value::Null
        }
    }
}

fn number(raw: &str, field: &str, bad: &mut impl FnMut(&str, &'static str)) -> Value {
    match digits(raw).trim().parse::<f64>() {
        Ok(x) if x.is_finite() => json!(x),
        _ => {
            bad(field, "builder-error-number");
            Value::Null
        }
    }
}

fn date(raw: &str, field: &str, bad: &mut impl FnMut(&str, &'static str)) -> Value {
    let v = digits(raw).trim().to_owned();
    if nudge_core::parse_instant(&v).is_none() {
        bad(field, "builder-error-date");
    }
    json!(v)
}

/// The operator and operand of a trait or property test, into `put`.
fn test_json(
    op: &str,
    raw: &str,
    prefix: &str,
    put: &mut impl FnMut(&str, Value),
    bad: &mut impl FnMut(&str, &'static str),
) {
    if !TEST_OPS.contains(&op) {
        bad(&format!("{prefix}op"), "builder-error-choose");
    }
    put("op", json!(op));
    let field = format!("{prefix}value");
    match operand(op) {
        Operand::None => {}
        Operand::Scalar => put("value", parse_scalar(raw)),
        Operand::Number => put("value", number(raw, &field, bad)),
        Operand::Text => put("value", json!(raw)),
        Operand::List => put("values", Value::Array(parse_list(raw))),
        Operand::Date => put("value", date(raw, &field, bad)),
        Operand::Days | Operand::Hours => put("days", whole(raw, &field, bad)),
    }
}

/// A value as typed: JSON when it reads as a string, number or boolean (`42`,
/// `true`, `"42"`), else the text itself (trimmed).
pub fn parse_scalar(raw: &str) -> Value {
    let t = raw.trim();
    match serde_json::from_str::<Value>(t) {
        // serde_json rounds some long decimals; Rust's parser is exact.
        Ok(Value::Number(n)) if n.is_f64() => t
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Number(n), Value::Number),
        Ok(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(t.to_owned()),
    }
}

/// A list as typed: a JSON array, or values separated by commas.
pub fn parse_list(raw: &str) -> Vec<Value> {
    let t = raw.trim();
    if t.starts_with('[')
        && let Ok(Value::Array(items)) = serde_json::from_str::<Value>(t)
    {
        return items;
    }
    if t.is_empty() {
        return Vec::new();
    }
    t.split(',').map(parse_scalar).collect()
}

/// How a scalar is written in its field: as itself when that reads back the same,
/// else as JSON.
pub fn scalar_text(v: &Value) -> String {
    if let Value::String(s) = v
        && parse_scalar(s) == *v
    {
        return s.clone();
    }
    v.to_string()
}

/// How a list is written: comma-separated when that reads back the same, else JSON.
pub fn list_text(values: &[Value]) -> String {
    let joined = values.iter().map(scalar_text).collect::<Vec<_>>().join(", ");
    if parse_list(&joined) == values {
        joined
    } else {
        Value::Array(values.to_vec()).to_string()
    }
}

/// A JSON operand as a field shows it: numbers without a needless `.0`.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => x.to_string(),
            _ => n.to_string(),
        },
        v => v.to_string(),
    }
}

/// The operator and the operand's text of a serialized test.
fn test_text(json: &Value) -> (String, String) {
    let op = json["op"].as_str().unwrap_or("").to_owned();
    let value = match operand(&op) {
        Operand::None => String::new(),
        Operand::Scalar => scalar_text(&json["value"]),
        Operand::List => list_text(json["values"].as_array().map(Vec::as_slice).unwrap_or(&[])),
        Operand::Days | Operand::Hours => plain(&json["days"]),
        _ => plain(&json["value"]),
    };
    (op, value)
}

fn filters_text(filters: &[PropertyFilter]) -> Vec<Filter> {
    filters
        .iter()
        .map(|flt| {
            let json = serde_json::to_value(flt).unwrap_or(Value::Null);
            let (op, value) = test_text(&json);
            Filter {
                property: flt.property.clone(),
                op,
                value,
            }
        })
        .collect()
}

/// The name serde gives an enum value (`at_least`).
fn name_of<T: Serialize>(t: &T) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
