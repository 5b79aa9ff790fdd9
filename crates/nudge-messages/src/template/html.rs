//! Turning an email body (MJML or HTML with Liquid in it) into two Liquid templates,
//! once per template version: the final HTML (MJML rendered, CSS inlined) and a plain
//! text part. Per message only Liquid runs.
//!
//! Liquid markup is not valid MJML or HTML, so before MJML and the CSS inliner see the
//! body every Liquid tag is swapped for an inert word (`NUDGELQ12X`) and swapped back
//! afterwards. Liquid therefore works in text and attribute values (`href="{{ url }}"`),
//! and block tags work inside text (`<mj-text>{% for %}...{% endfor %}</mj-text>`);
//! a block tag *around* MJML elements is not supported (MJML would see stray text).

/// A body with its Liquid markup replaced by placeholders.
pub struct Protected {
    pub text: String,
    pieces: Vec<String>,
}

const MARK: &str = "NUDGELQ";

/// Swaps every `{{ ... }}` and `{% ... %}` (a `raw` or `comment` block as a whole) for
/// a placeholder. In `escape_outputs` mode, output tags gain an `escape_once` filter
/// unless they end in `| raw`: values from contacts cannot inject HTML.
pub fn protect(src: &str, escape_outputs: bool) -> Protected {
    let mut text = String::with_capacity(src.len());
    let mut pieces = Vec::new();
    let mut rest = src;
    while let Some(start) = find_open(rest) {
        text.push_str(&rest[..start]);
        let tail = &rest[start..];
        let is_output = tail.starts_with("{{");
        let close = if is_output { "}}" } else { "%}" };
        let Some(end) = tail[2..].find(close).map(|i| i + 4) else {
            // Unclosed: left as it is; the Liquid parse of the source reports it.
            text.push_str(tail);
            rest = "";
            break;
        };
        let mut piece = tail[..end].to_string();
        let mut consumed = end;
        if !is_output {
            let name = tag_name(&piece);
            if name == "raw" || name == "comment" {
                let closing = format!("end{name}");
                let mut search = end;
                while let Some(pos) = find_open(&tail[search..]) {
                    let at = search + pos;
                    let Some(e) = tail[at + 2..].find("%}").map(|i| at + i + 4) else {
                        break;
                    };
                    if tag_name(&tail[at..e]) == closing {
                        piece = tail[..e].to_string();
                        consumed = e;
                        break;
                    }
                    search = e;
                }
            }
        } else if escape_outputs {
            piece = with_escape(&piece);
        }
        text.push_str(&format!("{MARK}{}X", pieces.len()));
        pieces.push(piece);
        rest = &tail[consumed..];
    }
    text.push_str(rest);
    Protected { text, pieces }
}

fn find_open(s: &str) -> Option<usize> {
    let a = s.find("{{");
    let b = s.find("{%");
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn tag_name(tag: &str) -> &str {
    tag.trim_start_matches("{%")
        .trim_start_matches('-')
        .split_whitespace()
        .next()
        .unwrap_or("")
}

fn with_escape(output: &str) -> String {
    let inner_start = if output.starts_with("{{-") { 3 } else { 2 };
    let inner_end = if output.ends_with("-}}") {
        output.len() - 3
    } else {
        output.len() - 2
    };
    let inner = output[inner_start..inner_end].trim_end();
    let last_filter = inner.rsplit('|').next().unwrap_or("").trim();
    if inner.contains('|') && (last_filter == "raw" || last_filter.starts_with("escape")) {
        return output.to_string();
    }
    format!(
        "{}{inner} | escape_once {}",
        &output[..inner_start],
        &output[inner_end..]
    )
}

impl Protected {
    /// Puts the Liquid markup back into a transformed text.
    pub fn restore(&self, transformed: &str) -> String {
        let mut out = String::with_capacity(transformed.len() + 64);
        let mut rest = transformed;
        while let Some(at) = rest.find(MARK) {
            out.push_str(&rest[..at]);
            let after = &rest[at + MARK.len()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let piece = after[..digits].parse::<usize>().ok().and_then(|i| self.pieces.get(i));
            match piece {
                Some(p) if after[digits..].starts_with('X') => {
                    out.push_str(p);
                    rest = &after[digits + 1..];
                }
                _ => {
                    out.push_str(MARK);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// MJML to HTML. Errors carry the 1-based line of `src`.
pub fn mjml_to_html(src: &str) -> Result<String, (Option<usize>, String)> {
    let parsed = mrml::parse(src).map_err(|e| {
        let msg = e.to_string();
        (position_in(&msg).map(|p| line_of(src, p)), msg)
    })?;
    let opts = mrml::prelude::render::RenderOptions {
        disable_comments: true,
        // No web-font links: a message should not make its reader's client call Google.
        fonts: Default::default(),
        ..Default::default()
    };
    parsed.element.render(&opts).map_err(|e| (None, e.to_string()))
}

fn position_in(msg: &str) -> Option<usize> {
    let at = msg.find("position ")? + "position ".len();
    let digits: String = msg[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// 1-based line of a byte offset.
pub fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Moves `<style>` rules onto the elements (email clients drop `<style>`), keeping
/// the style blocks for clients that do read them (media queries). Never loads
/// anything: remote stylesheets are off and the crate is built without HTTP/file.
pub fn inline_css(html: &str) -> Result<String, String> {
    let inliner = css_inline::CSSInliner::options()
        .load_remote_stylesheets(false)
        .keep_style_tags(true)
        .build();
    inliner.inline(html).map_err(|e| format!("CSS inlining failed: {e}"))
}

/// A plain-text rendering of HTML: paragraphs, lists, and links as footnotes.
pub fn html_to_text(html: &str) -> String {
    html2text::config::plain()
        .allow_width_overflow()
        .no_table_borders()
        .link_footnotes(true)
        .string_from_read(html.as_bytes(), 78)
        .unwrap_or_default()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// Inserts the hidden preheader right after `<body ...>` (or at the start).
pub fn with_preheader(html: &str, preheader: &str) -> String {
    let block = format!(
        "<div style=\"display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;overflow:hidden;mso-hide:all\">{preheader}</div>"
    );
    match html.find("<body").and_then(|b| html[b..].find('>').map(|e| b + e + 1)) {
        Some(at) => format!("{}{block}{}", &html[..at], &html[at..]),
        None => format!("{block}{html}"),
    }
}
