//! A [`Layout`] as SVG: small, styled by CSS classes, readable without JavaScript.
//!
//! The markup carries no colours of its own so the UI's stylesheet decides
//! (`.step`, `.step.problem`, `.edge`, `.edge.back`, `.edge-label`, and one class per
//! step type); [`SvgOptions::standalone`] embeds [`DEFAULT_CSS`] for a file viewed on
//! its own. Every text from a definition (step ids, event and template names,
//! trait values) is escaped: a step called `<script>` shows as that text. Text is
//! centred (`text-anchor="middle"`), which reads the same left to right and right to
//! left, so a mirrored layout needs nothing else.

use super::{EdgeRoute, LABEL_CHAR_W, LABEL_MAX_CHARS, LINE_H, Layout, NodeBox, NodeKind};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// A stylesheet that makes a standalone drawing readable; the UI may start from it.
pub const DEFAULT_CSS: &str = "\
text{font-family:system-ui,'DejaVu Sans',sans-serif;fill:#1f2328}\
.step rect{fill:#fff;stroke:#6e7781;stroke-width:1.5}\
.step.trigger rect{fill:#eef4ff;stroke:#3b6fd8}\
.step.goal rect{fill:#edf8ef;stroke:#2e8b57}\
.step.end rect{fill:#f6f8fa;stroke:#8c959f}\
.step.missing rect,.step.problem rect{fill:#fff1f0;stroke:#cf222e;stroke-width:2.5}\
.title{font-size:13px;font-weight:600}\
.summary{font-size:12px;fill:#57606a}\
.extra{font-size:11px;fill:#0969da}\
.end text{font-size:11px;fill:#57606a}\
.edge{fill:none;stroke:#8c959f;stroke-width:1.5}\
.edge.back{stroke-dasharray:6 4}\
.arrowhead{fill:#8c959f}\
.edge-label{font-size:11px;paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}";

/// What the drawing shows beyond the layout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SvgOptions {
    /// Lines of text under a step's summary, by step id ("reached 120 · waiting 4").
    /// As many are drawn as the layout made room for ([`super::LayoutOptions`]).
    pub extra: BTreeMap<String, Vec<String>>,
    /// Steps with a validation problem: their group gets the class `problem`.
    pub problems: BTreeSet<String>,
    /// Embed [`DEFAULT_CSS`] (for a file viewed on its own, not inside the UI).
    pub standalone: bool,
    /// Prefix of the ids inside the drawing (its arrowhead), so that several
    /// drawings on one page do not share them. `journey` when empty.
    pub id_prefix: String,
    /// An accessible name for the drawing (its `<title>`).
    pub title: Option<String>,
}

/// Approximate widths of a character of a title and of a summary line, to shorten
/// text that would not fit its box (the full text stays in the box's tooltip).
const TITLE_CHAR_W: f64 = 7.8;
const SUMMARY_CHAR_W: f64 = 6.3;
/// Space between a box's border and its text.
const PAD: f64 = 8.0;

/// Draws a layout. Each step is a `<g class="step {type}" data-step="{id}">` (plus
/// `problem` when listed) with a rounded `<rect>`, its title, summary and extra lines;
/// each arrow a `<path class="edge">` (`edge back` for a loop) with an arrowhead,
/// `data-exit` naming the exit and `data-from` its step; each label a
/// `<text class="edge-label">`.
pub fn svg(layout: &Layout, options: &SvgOptions) -> String {
    let prefix = if options.id_prefix.is_empty() {
        "journey"
    } else {
        options.id_prefix.as_str()
    };
    let (w, h) = (num(layout.width), num(layout.height));
    let mut out = String::with_capacity(512 + 400 * layout.nodes.len() + 160 * layout.edges.len());
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="journey-diagram" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">"#
    );
    if let Some(title) = &options.title {
        let _ = write!(out, "<title>{}</title>", escape(title));
    }
    if options.standalone {
        let _ = write!(out, "<style>{DEFAULT_CSS}</style>");
    }
    let arrow = format!("{}-arrow", escape(prefix));
    let _ = write!(
        out,
        r#"<defs><marker id="{arrow}" class="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z"/></marker></defs>"#
    );
    out.push_str(r#"<g class="edges">"#);
    for e in &layout.edges {
        edge(&mut out, layout, e, &arrow);
    }
    out.push_str("</g><g class=\"steps\">");
    for n in &layout.nodes {
        node(&mut out, n, options);
    }
    out.push_str("</g><g class=\"edge-labels\">");
    for e in &layout.edges {
        if let Some(label) = &e.label {
            let (x, y) = e.label_at;
            let _ = write!(
                out,
                r#"<text class="edge-label" x="{}" y="{}" text-anchor="middle">{}</text>"#,
                num(x),
                num(y + 4.0),
                escape(&shorten(label, LABEL_MAX_CHARS))
            );
        }
    }
    out.push_str("</g></svg>");
    out
}

fn edge(out: &mut String, layout: &Layout, e: &EdgeRoute, arrow: &str) {
    // Points in the middle of a straight run (a lane through several rows) add
    // nothing to the drawing.
    let p = &e.points;
    let mut d = String::new();
    for (i, &(x, y)) in p.iter().enumerate() {
        let inner = i > 0 && i + 1 < p.len();
        if inner && ((p[i - 1].0 == x && p[i + 1].0 == x) || (p[i - 1].1 == y && p[i + 1].1 == y)) {
            continue;
        }
        let _ = write!(d, "{}{},{}", if i == 0 { 'M' } else { 'L' }, num(x), num(y));
    }
    let class = if e.back { "edge back" } else { "edge" };
    let _ = write!(out, r#"<path class="{class}" d="{d}" marker-end="url(#{arrow})""#);
    if let Some(exit) = &e.exit {
        let _ = write!(out, r#" data-exit="{}""#, escape(exit));
    }
    if let Some(step) = layout.nodes.get(e.from).and_then(|n| n.step.as_ref()) {
        let _ = write!(out, r#" data-from="{}""#, escape(step));
    }
    out.push_str("/>");
}

fn node(out: &mut String, n: &NodeBox, options: &SvgOptions) {
    let mut class = format!("step {}", n.kind.name());
    if n.step.as_ref().is_some_and(|s| options.problems.contains(s)) {
        class.push_str(" problem");
    }
    let _ = write!(out, r#"<g class="{class}""#);
    if let Some(step) = &n.step {
        let _ = write!(out, r#" data-step="{}""#, escape(step));
    }
    let rx = if n.kind == NodeKind::End { n.h / 2.0 } else { 8.0 };
    let _ = write!(
        out,
        r#"><title>{}</title><rect x="{}" y="{}" width="{}" height="{}" rx="{}"/>"#,
        escape(&format!("{}: {}", n.title, n.summary)),
        num(n.x),
        num(n.y),
        num(n.w),
        num(n.h),
        num(rx)
    );
    let cx = num(n.x + n.w / 2.0);
    if n.kind == NodeKind::End {
        let _ = write!(
            out,
            r#"<text x="{cx}" y="{}" text-anchor="middle">{}</text></g>"#,
            num(n.y + n.h / 2.0 + 4.0),
            escape(&n.title)
        );
        return;
    }
    let fits = |char_w: f64| ((n.w - 2.0 * PAD) / char_w).floor().max(1.0) as usize;
    let mut line = |class: &str, y: f64, text: &str, char_w: f64| {
        let _ = write!(
            out,
            r#"<text class="{class}" x="{cx}" y="{}" text-anchor="middle">{}</text>"#,
            num(y),
            escape(&shorten(text, fits(char_w)))
        );
    };
    line("title", n.y + 20.0, &n.title, TITLE_CHAR_W);
    line("summary", n.y + 38.0, &n.summary, SUMMARY_CHAR_W);
    let extra = n.step.as_ref().and_then(|s| options.extra.get(s));
    let room = ((n.h - super::NODE_H) / LINE_H).max(0.0) as usize;
    for (i, text) in extra.into_iter().flatten().take(room).enumerate() {
        line("extra", n.y + 38.0 + LINE_H * (i + 1) as f64, text, LABEL_CHAR_W);
    }
    out.push_str("</g>");
}

/// Text cut to `max` characters, the last replaced by an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Text safe inside an SVG (or HTML) element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate, short: whole numbers without decimals, others to a tenth.
fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}
