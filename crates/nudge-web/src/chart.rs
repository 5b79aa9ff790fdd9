//! Small charts drawn on the server as SVG, readable without JavaScript:
//! - a sparkline (a line, no axes) and a line chart with a few labelled ticks, whose
//!   numbers the templates write into `<svg>` elements (time runs left to right,
//!   oldest first, in every language; the templates give the `<svg>` `dir="ltr"`);
//! - bars ([`bars`], the dashboard's), written here as SVG with every text escaped;
//!   right to left, the first bar is on the right;
//! - several lines on one axis ([`lines`], a campaign's hourly opens, clicks and
//!   conversions), written here as SVG with every text escaped; right to left, time
//!   runs from the right, as the bars do.

use nudge_core::journey::layout::escape;
use std::fmt::Write;

/// A sparkline: `points` for a `<polyline>` in a `width` × `height` box.
pub struct Sparkline {
    pub width: u32,
    pub height: u32,
    pub points: String,
    /// The last value, for the text beside the line.
    pub last: u64,
}

fn scale(values: &[u64], width: f64, height: f64, pad: f64) -> Vec<(f64, f64)> {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = values.len();
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = if n > 1 {
                pad + (width - 2.0 * pad) * i as f64 / (n - 1) as f64
            } else {
                width / 2.0
            };
            let y = height - pad - (height - 2.0 * pad) * (*v as f64) / max;
            (x, y)
        })
        .collect()
}

fn points(xy: &[(f64, f64)]) -> String {
    xy.iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Sparkline {
    pub fn new(values: &[u64]) -> Self {
        let (width, height) = (120, 28);
        let xy = scale(values, width as f64, height as f64, 2.0);
        Sparkline {
            width,
            height,
            points: points(&xy),
            last: values.last().copied().unwrap_or(0),
        }
    }
}

/// A tick on an axis: where, and its label.
pub struct Tick {
    pub at: f64,
    pub label: String,
    /// `text-anchor`: the first date starts at its point, the last ends at it.
    pub anchor: &'static str,
}

/// A line chart of sizes over time, with the area under the line filled.
pub struct LineChart {
    pub width: u32,
    pub height: u32,
    /// Left and bottom margins for the labels.
    pub left: f64,
    pub bottom: f64,
    pub points: String,
    /// The closed outline under the line (`<polygon>`).
    pub area: String,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
}

impl LineChart {
    /// `values` oldest first; `y_label` writes a count, `x_label` the i-th point's date
    /// (asked for the first, the middle and the last point only).
    pub fn new(values: &[u64], y_label: impl Fn(u64) -> String, x_label: impl Fn(usize) -> String) -> Self {
        let (width, height) = (640u32, 200u32);
        let (left, bottom, top) = (48.0, 24.0, 8.0);
        let plot_w = width as f64 - left - 8.0;
        let plot_h = height as f64 - bottom - top;
        let max = nice_max(values.iter().copied().max().unwrap_or(0));
        let n = values.len();
        let xy: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = left
                    + if n > 1 {
                        plot_w * i as f64 / (n - 1) as f64
                    } else {
                        plot_w / 2.0
                    };
                let y = top + plot_h - plot_h * (*v as f64) / max as f64;
                (x, y)
            })
            .collect();
        let base = top + plot_h;
        let area = match (xy.first(), xy.last()) {
            (Some(first), Some(last)) => format!("{:.1},{base:.1} {} {:.1},{base:.1}", first.0, points(&xy), last.0),
            _ => String::new(),
        };
        let y_ticks = (0..=4)
            .map(|k| Tick {
                at: top + plot_h - plot_h * k as f64 / 4.0,
                label: y_label(max * k / 4),
                anchor: "end",
            })
            .collect();
        let mut idx = vec![0, n / 2, n.saturating_sub(1)];
        idx.dedup();
        let x_ticks = if n == 0 {
            Vec::new()
        } else {
            idx.into_iter()
                .map(|i| Tick {
                    at: xy[i].0,
                    label: x_label(i),
                    anchor: if i == 0 && n > 1 {
                        "start"
                    } else if i + 1 == n && n > 1 {
                        "end"
                    } else {
                        "middle"
                    },
                })
                .collect()
        };
        LineChart {
            width,
            height,
            left,
            bottom: base,
            points: points(&xy),
            area,
            y_ticks,
            x_ticks,
        }
    }
}

/// The top of the y axis: the maximum rounded up to a multiple of 4 (so the four
/// ticks are whole numbers), at least 4.
fn nice_max(max: u64) -> u64 {
    let m = max.max(4);
    let step = m.div_ceil(4);
    // Round the step up to 1, 2 or 5 times a power of ten.
    let mut p = 1;
    while p * 10 <= step {
        p *= 10;
    }
    let nice = [1, 2, 5, 10]
        .iter()
        .map(|k| k * p)
        .find(|s| *s >= step)
        .unwrap_or(10 * p);
    nice * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_spans_its_box() {
        let s = Sparkline::new(&[0, 5, 10]);
        assert_eq!(s.points, "2.0,26.0 60.0,14.0 118.0,2.0");
        assert_eq!(s.last, 10);
        let flat = Sparkline::new(&[0, 0]);
        assert_eq!(flat.points, "2.0,26.0 118.0,26.0");
        assert_eq!(Sparkline::new(&[]).points, "");
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_max(0), 4);
        assert_eq!(nice_max(7), 8);
        assert_eq!(nice_max(37), 40);
        assert_eq!(nice_max(123), 200);
        assert_eq!(nice_max(1001), 2000);
    }

    #[test]
    fn line_chart_labels_three_dates_and_five_counts() {
        let c = LineChart::new(&[1, 2, 3, 4, 5], |n| n.to_string(), |i| format!("d{i}"));
        assert_eq!(
            c.x_ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(),
            ["d0", "d2", "d4"]
        );
        assert_eq!(
            c.y_ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(),
            ["0", "2", "4", "6", "8"]
        );
        assert!(c.area.starts_with("48.0,176.0 48.0,"), "{}", c.area);
    }
}

/// One bar: its axis label (may be empty to thin the ticks), its value, and the
/// value as the tooltip shows it.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub shown: String,
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
    // The text's direction is the page's, declared so that `text-anchor` (which
    // follows it: `start` is the right end of a right-to-left text) means the same
    // wherever the chart is drawn.
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" preserveAspectRatio="none" direction="{d}"><title>{t}</title>"#,
        t = escape(title),
        d = if rtl { "rtl" } else { "ltr" },
    );
    let _ = write!(
        svg,
        r#"<line class="axis" x1="0" y1="{y}" x2="{W}" y2="{y}"/>"#,
        y = H - BOTTOM
    );
    // The largest value at the top of the side the bars start from.
    let anchor_x = if rtl { W - 2.0 } else { 2.0 };
    let _ = write!(
        svg,
        r#"<text class="tick" x="{anchor_x}" y="11" text-anchor="start">{}</text>"#,
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
mod bar_tests {
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

/// One line of [`lines`]: its CSS class (its colour), its name and its values,
/// oldest first.
pub struct Series {
    pub class: &'static str,
    pub label: String,
    pub values: Vec<f64>,
}

/// Several series on one axis, `W` × `H` user units (it scales with its box). All
/// series have the length of the first; `x_labels` are `(index, label)` for the few
/// points labelled on the time axis; `y_label` writes a value of the axis; `title`
/// names the chart for screen readers. Right to left, the first point is on the
/// right.
pub fn lines(
    series: &[Series],
    x_labels: &[(usize, String)],
    title: &str,
    y_label: impl Fn(f64) -> String,
    rtl: bool,
) -> String {
    const W: f64 = 640.0;
    const H: f64 = 200.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 24.0;
    const SIDE: f64 = 48.0;
    const END: f64 = 10.0;
    let n = series.first().map_or(0, |s| s.values.len());
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0_f64, f64::max);
    let top = nice_max(max.ceil().max(0.0) as u64) as f64;
    let plot_w = W - SIDE - END;
    let plot_h = H - TOP - BOTTOM;
    // x of the i-th point, mirrored right to left; the axis labels on the start side.
    let x = |i: usize| {
        let along = if n > 1 {
            plot_w * i as f64 / (n - 1) as f64
        } else {
            plot_w / 2.0
        };
        if rtl { W - SIDE - along } else { SIDE + along }
    };
    let y = |v: f64| TOP + plot_h - plot_h * v.max(0.0) / top;
    let mut svg = String::new();
    // The text's direction is the page's, declared (see [`bars`]): right to left,
    // `end` is a text's left end, so each anchor below means the same side of its
    // point relative to the plot in both directions.
    let _ = write!(
        svg,
        r#"<svg class="chart lines" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" direction="{d}"><title>{t}</title>"#,
        t = escape(title),
        d = if rtl { "rtl" } else { "ltr" },
    );
    let (label_x, anchor) = if rtl {
        (W - SIDE + 6.0, "end")
    } else {
        (SIDE - 6.0, "end")
    };
    for k in 0..=4 {
        let value = top * k as f64 / 4.0;
        let at = y(value);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{x1}" x2="{x2}" y1="{at:.1}" y2="{at:.1}"/><text class="y" x="{label_x}" y="{ty:.1}" text-anchor="{anchor}">{label}</text>"#,
            x1 = if rtl { END } else { SIDE },
            x2 = if rtl { W - SIDE } else { W - END },
            ty = at + 4.0,
            label = escape(&y_label(value)),
        );
    }
    for s in series {
        let pts: Vec<(f64, f64)> = s.values.iter().enumerate().map(|(i, v)| (x(i), y(*v))).collect();
        if pts.len() == 1 {
            let (cx, cy) = pts[0];
            let _ = write!(
                svg,
                r#"<circle class="series {c}" cx="{cx:.1}" cy="{cy:.1}" r="3"><title>{l}</title></circle>"#,
                c = s.class,
                l = escape(&s.label)
            );
        } else {
            let _ = write!(
                svg,
                r#"<polyline class="series {c}" fill="none" points="{p}"><title>{l}</title></polyline>"#,
                c = s.class,
                p = points(&pts),
                l = escape(&s.label)
            );
        }
    }
    for (i, label) in x_labels.iter().filter(|(i, _)| *i < n) {
        // The first label starts at its point and the last ends at its point (in the
        // text's direction, which is the page's).
        let anchor = if *i == 0 && n > 1 {
            "start"
        } else if *i + 1 == n && n > 1 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            svg,
            r#"<text class="x" x="{x:.1}" y="{ty}" text-anchor="{anchor}">{label}</text>"#,
            x = x(*i),
            ty = H - 6.0,
            label = escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod lines_tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<Series> {
        vec![
            Series {
                class: "opened",
                label: "Opens <b>".into(),
                values: values.to_vec(),
            },
            Series {
                class: "clicked",
                label: "Clicks".into(),
                values: values.iter().map(|v| v / 2.0).collect(),
            },
        ]
    }

    fn first_x(svg: &str) -> f64 {
        let p = svg.split("points=\"").nth(1).unwrap();
        p.split(',').next().unwrap().parse().unwrap()
    }

    #[test]
    fn one_polyline_per_series_escaped() {
        let svg = lines(
            &series(&[0.0, 3.0, 8.0]),
            &[(0, "a&b".into()), (2, "c".into())],
            "<t>",
            |v| format!("{v}"),
            false,
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("Opens &lt;b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains("a&amp;b") && svg.contains("&lt;t&gt;"));
        // The axis is rounded up to 8 with five labels.
        assert!(svg.contains(">8</text>") && svg.contains(">0</text>"), "{svg}");
    }

    #[test]
    fn right_to_left_starts_on_the_right() {
        let ltr = lines(&series(&[1.0, 2.0]), &[], "t", |v| v.to_string(), false);
        let rtl = lines(&series(&[1.0, 2.0]), &[], "t", |v| v.to_string(), true);
        assert!(first_x(&rtl) > first_x(&ltr));
        assert!(rtl.contains("direction=\"rtl\"") && ltr.contains("direction=\"ltr\""));
    }

    #[test]
    fn a_single_point_is_a_dot() {
        let svg = lines(&series(&[5.0]), &[(0, "x".into())], "t", |v| v.to_string(), false);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(
            lines(&[], &[], "t", |v| v.to_string(), false)
                .matches("<polyline")
                .count(),
            0
        );
    }
}
