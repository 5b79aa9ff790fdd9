//! Charts drawn on the server as SVG: no chart library in the browser, readable
//! without JavaScript, styled by the UI's CSS (`.chart`, `.bar`, `.axis`, `.tick`).
//! Labels and values come in already formatted for the viewer's language; right to
//! left, the time axis runs from the right.

use std::fmt::Write;

/// One bar: its axis label (may be empty to thin the ticks), its value, and the
/// value as the tooltip shows it.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A bar chart `width` × `height` (user units; it scales with its box). `title`
/// names it for screen readers; `max_label` is the largest value as shown, written
/// at the top of the axis.
pub fn bars(bars: &[Bar], title: &str, max_label: &str, rtl: bool) -> String {
    const W: f64 = 600.0;
    const H: f64 = 180.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 22.0;
    let plot = H - TOP - BOTTOM;
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let n = bars.len().max(1) as f64;
    let slot = W / n;
    let gap = (slot * 0.2).min(4.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" preserveAspectRatio="none"><title>{t}</title>"#,
        t = escape(title)
    );
    let _ = write!(
        svg,
        r#"<line class="axis" x1="0" y1="{y}" x2="{W}" y2="{y}"/>"#,
        y = H - BOTTOM
    );
    let anchor_x = if rtl { W - 2.0 } else { 2.0 };
    let anchor = if rtl { "end" } else { "start" };
    let _ = write!(
        svg,
        r#"<text class="tick" x="{anchor_x}" y="11" text-anchor="{anchor}">{}</text>"#,
        escape(max_label)
    );
    for (i, b) in bars.iter().enumerate() {
        let pos = if rtl { bars.len() - 1 - i } else { i } as f64;
        let h = if max > 0.0 { (b.value / max) * plot } else { 0.0 };
        let x = pos * slot + gap / 2.0;
        let y = H - BOTTOM - h;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}"><title>{label}: {shown}</title></rect>"#,
            w = (slot - gap).max(0.5),
            label = escape(&b.label),
            shown = escape(&b.shown),
        );
        if !b.label.is_empty() {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{cx:.1}" y="{ty}" text-anchor="middle">{}</text>"#,
                escape(&b.label),
                cx = x + (slot - gap) / 2.0,
                ty = H - 6.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: f64) -> Bar {
        Bar {
            label: label.into(),
            value,
            shown: value.to_string(),
        }
    }

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let svg = bars(&[bar("a", 1.0), bar("<b>", 4.0)], "Sent & opened", "4", false);
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
        assert!(svg.contains("height=\"142.0\""), "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains("Sent &amp; opened"));
    }

    #[test]
    fn right_to_left_puts_the_first_bar_on_the_right() {
        let ltr = bars(&[bar("first", 1.0), bar("", 1.0)], "t", "1", false);
        let rtl = bars(&[bar("first", 1.0), bar("", 1.0)], "t", "1", true);
        let x_of_first = |svg: &str| {
            let i = svg.find("first").unwrap();
            let rect = svg[..i].rfind("<rect").unwrap();
            let x = &svg[rect..].split("x=\"").nth(1).unwrap();
            x.split('"').next().unwrap().parse::<f64>().unwrap()
        };
        assert!(x_of_first(&rtl) > x_of_first(&ltr));
    }

    #[test]
    fn an_empty_series_draws_an_empty_axis() {
        let svg = bars(&[bar("a", 0.0)], "t", "0", false);
        assert!(svg.contains("height=\"0.0\""));
    }
}
