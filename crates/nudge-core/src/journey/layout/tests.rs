use super::*;
use crate::journey::{Duration, DurationParts, NameOrId, Settings, Step, Trigger, Variant, parse_journey};
use proptest::prelude::*;
use serde_json::{Value, json};

fn def(v: Value) -> JourneyDefinition {
    parse_journey(&v).unwrap_or_else(|e| panic!("{v}: {e:?}"))
}

/// A definition read without validation, as a draft in the editor may be.
fn draft(v: Value) -> JourneyDefinition {
    serde_json::from_value(v).unwrap()
}

/// Lays out and checks what must hold of every layout.
fn lay(d: &JourneyDefinition) -> Layout {
    let layout = lay_out(d, &LayoutOptions::default());
    check(d, &layout);
    layout
}

fn node<'a>(l: &'a Layout, step: &str) -> &'a NodeBox {
    l.nodes
        .iter()
        .find(|n| n.step.as_deref() == Some(step))
        .unwrap_or_else(|| panic!("no box for {step}"))
}

fn index(l: &Layout, step: &str) -> usize {
    l.nodes.iter().position(|n| n.step.as_deref() == Some(step)).unwrap()
}

fn edge<'a>(l: &'a Layout, from: &str, exit: &str) -> &'a EdgeRoute {
    let from = index(l, from);
    l.edges
        .iter()
        .find(|e| e.from == from && e.exit.as_deref() == Some(exit))
        .unwrap_or_else(|| panic!("no edge {from} {exit}"))
}

fn cx(n: &NodeBox) -> f64 {
    n.x + n.w / 2.0
}

fn on_border(p: (f64, f64), n: &NodeBox) -> bool {
    let eps = 0.51;
    let inside_x = p.0 >= n.x - eps && p.0 <= n.x + n.w + eps;
    let inside_y = p.1 >= n.y - eps && p.1 <= n.y + n.h + eps;
    let on_x = (p.0 - n.x).abs() <= eps || (p.0 - n.x - n.w).abs() <= eps;
    let on_y = (p.1 - n.y).abs() <= eps || (p.1 - n.y - n.h).abs() <= eps;
    inside_x && inside_y && (on_x || on_y)
}

fn strictly_inside(p: (f64, f64), n: &NodeBox) -> bool {
    p.0 > n.x + 0.5 && p.0 < n.x + n.w - 0.5 && p.1 > n.y + 0.5 && p.1 < n.y + n.h - 0.5
}

/// What holds of every layout: one box per step and one for the trigger, no two
/// boxes overlapping, everything inside the drawing, every arrow from its source's
/// border to its target's, no arrow over a box.
fn check(d: &JourneyDefinition, l: &Layout) {
    assert_eq!(l.nodes[0].kind, NodeKind::Trigger);
    for (k, s) in d.steps.iter().enumerate() {
        let n = &l.nodes[k + 1];
        assert_eq!(n.step.as_deref(), Some(s.id.as_str()), "step {k} placed once, in order");
        assert_eq!(n.kind, NodeKind::Step(s.kind.type_name()));
    }
    assert!(l.nodes[d.steps.len() + 1..].iter().all(|n| n.step.is_none()));
    for (i, a) in l.nodes.iter().enumerate() {
        assert!(a.x >= 0.0 && a.y >= 0.0, "{a:?} inside");
        assert!(
            a.x + a.w <= l.width && a.y + a.h <= l.height,
            "{a:?} inside {}×{}",
            l.width,
            l.height
        );
        for b in &l.nodes[i + 1..] {
            let apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
            assert!(apart, "overlap:\n{a:?}\n{b:?}");
        }
    }
    for e in &l.edges {
        let (from, to) = (&l.nodes[e.from], &l.nodes[e.to]);
        assert!(e.points.len() >= 2, "{e:?}");
        assert!(on_border(e.points[0], from), "{e:?} starts at {from:?}");
        assert!(on_border(*e.points.last().unwrap(), to), "{e:?} ends at {to:?}");
        for &p in &e.points {
            assert!(
                p.0 >= 0.0 && p.0 <= l.width && p.1 >= 0.0 && p.1 <= l.height,
                "{e:?} inside"
            );
        }
        // No part of an arrow runs over a box (sampled along each segment).
        for pair in e.points.windows(2) {
            for k in 0..=16 {
                let t = k as f64 / 16.0;
                let p = (
                    pair[0].0 + t * (pair[1].0 - pair[0].0),
                    pair[0].1 + t * (pair[1].1 - pair[0].1),
                );
                for n in &l.nodes {
                    assert!(!strictly_inside(p, n), "{e:?} runs over {n:?}");
                }
            }
        }
        if !e.back {
            assert!(to.y > from.y, "a forward edge goes down: {e:?}");
        }
    }
}

#[test]
fn a_linear_journey_is_one_column_in_order() {
    let d = def(json!({
        "trigger": {"type": "event", "event": "Subscription Confirmed"},
        "start": "day-0",
        "steps": [
            {"id": "day-0", "type": "send", "template": "welcome-day-0", "channel": "email", "next": "wait-2d"},
            {"id": "wait-2d", "type": "wait", "duration": {"days": 2}, "next": "day-2"},
            {"id": "day-2", "type": "send", "template": 3, "next": "wait-12d"},
            {"id": "wait-12d", "type": "wait", "duration": {"days": 12}, "next": "week-2"},
            {"id": "week-2", "type": "send", "template": "welcome-week-2"}
        ]
    }));
    let l = lay(&d);
    assert_eq!(
        l.nodes.len(),
        6,
        "the trigger and five steps, no end box after a plain last step"
    );
    let x = cx(&l.nodes[0]);
    for pair in l.nodes.windows(2) {
        assert_eq!(cx(&pair[1]), x, "one column");
        assert!(pair[1].y > pair[0].y + pair[0].h, "rows in order");
    }
    assert_eq!(l.edges.len(), 5);
    assert!(
        l.edges
            .iter()
            .all(|e| e.label.is_none() && !e.back && e.points.len() == 2)
    );
    assert_eq!(l.nodes[0].summary, "event Subscription Confirmed");
    assert_eq!(node(&l, "day-0").summary, "send email · template welcome-day-0");
    assert_eq!(node(&l, "wait-2d").summary, "wait 2 days");
    assert_eq!(node(&l, "day-2").summary, "send template 3");
    assert_eq!(l.width, NODE_W + 2.0 * MARGIN);
}

#[test]
fn a_branch_puts_yes_left_of_no_under_its_parent() {
    let d = def(json!({
        "trigger": {"type": "segment_entered", "segment_id": 4},
        "start": "plan",
        "steps": [
            {"id": "plan", "type": "branch",
             "condition": {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"},
             "yes": "pro-mail", "no": "basic-mail"},
            {"id": "pro-mail", "type": "send", "template": 1},
            {"id": "basic-mail", "type": "send", "template": 2}
        ]
    }));
    let l = lay(&d);
    let (parent, yes, no) = (node(&l, "plan"), node(&l, "pro-mail"), node(&l, "basic-mail"));
    assert_eq!(parent.summary, "branch: traits.plan = pro");
    assert_eq!(l.nodes[0].summary, "enters segment 4");
    assert_eq!(yes.y, no.y, "side by side");
    assert!(yes.x + yes.w < no.x, "yes on the left");
    assert_eq!(
        cx(parent),
        (cx(yes) + cx(no)) / 2.0,
        "the parent centred over its children"
    );
    assert_eq!(edge(&l, "plan", "yes").label.as_deref(), Some("yes"));
    assert_eq!(edge(&l, "plan", "no").label.as_deref(), Some("no"));
    // Each label sits between its port and its child, the two apart.
    let (ly, ln) = (edge(&l, "plan", "yes").label_at, edge(&l, "plan", "no").label_at);
    assert!(ly.0 < cx(parent) && ln.0 > cx(parent));
    assert!(ly.1 > parent.y + parent.h && ly.1 < yes.y);
}

#[test]
fn missing_exits_of_a_multi_exit_step_end_in_end_boxes() {
    let d = def(json!({
        "trigger": {"type": "event", "event": "Order Completed"},
        "start": "wait-answer",
        "steps": [
            {"id": "wait-answer", "type": "wait_for_event", "event": "NPS Submitted", "timeout": {"days": 14},
             "on_event": "unhappy"},
            {"id": "unhappy", "type": "branch",
             "condition": {"type": "event", "event": "NPS Submitted",
                           "where": [{"property": "score", "op": "less_than", "value": 7}], "window": {"last_days": 1}},
             "yes": "alert"},
            {"id": "alert", "type": "webhook", "template": "nps-detractor-alert"}
        ]
    }));
    let l = lay(&d);
    let ends: Vec<_> = l.nodes.iter().filter(|n| n.kind == NodeKind::End).collect();
    assert_eq!(ends.len(), 2, "on_timeout and no");
    let timeout = edge(&l, "wait-answer", "on_timeout");
    assert_eq!(l.nodes[timeout.to].kind, NodeKind::End);
    assert_eq!(timeout.label.as_deref(), Some("on_timeout"));
    assert_eq!(l.nodes[edge(&l, "unhappy", "no").to].kind, NodeKind::End);
    assert_eq!(node(&l, "wait-answer").summary, "wait for NPS Submitted ≤ 14 days");
    assert_eq!(
        node(&l, "unhappy").summary,
        "branch: did NPS Submitted where score < 7 in last 1 day"
    );
}

#[test]
fn cases_and_variants_are_labelled_by_condition_and_name() {
    let d = def(json!({
        "trigger": {"type": "api"},
        "start": "ab",
        "steps": [
            {"id": "ab", "type": "split", "variants": [
                {"name": "A", "percent": 50, "next": "route"}, {"percent": 50, "next": "done"}]},
            {"id": "route", "type": "multi_branch", "cases": [
                {"condition": {"type": "lead_score", "op": "greater_or_equal", "value": 50}, "next": "done"}],
             "default": "done"},
            {"id": "done", "type": "exit"}
        ]
    }));
    let l = lay(&d);
    assert_eq!(edge(&l, "ab", "variants[0].next").label.as_deref(), Some("A · 50%"));
    assert_eq!(edge(&l, "ab", "variants[1].next").label.as_deref(), Some("2 · 50%"));
    assert_eq!(
        edge(&l, "route", "cases[0].next").label.as_deref(),
        Some("lead score ≥ 50")
    );
    assert_eq!(edge(&l, "route", "default").label.as_deref(), Some("default"));
    assert_eq!(node(&l, "ab").summary, "split 50/50");
    assert_eq!(node(&l, "route").summary, "branch: 1 case");
    assert_eq!(l.nodes[0].summary, "API call");
}

#[test]
fn a_cycle_is_drawn_with_a_back_edge_and_every_step_placed() {
    // Remind every day until an order: wait → branch → (no) send → back to wait.
    let d = def(json!({
        "trigger": {"type": "event", "event": "Cart Updated"},
        "start": "wait",
        "steps": [
            {"id": "wait", "type": "wait", "duration": {"days": 1}, "next": "ordered"},
            {"id": "ordered", "type": "branch",
             "condition": {"type": "event", "event": "Order Completed", "window": {"last_days": 1}},
             "yes": "thanks", "no": "remind"},
            {"id": "remind", "type": "send", "template": 1, "next": "wait"},
            {"id": "thanks", "type": "goal"}
        ]
    }));
    let l = lay(&d);
    let back: Vec<_> = l.edges.iter().filter(|e| e.back).collect();
    assert_eq!(back.len(), 1);
    let loop_edge = edge(&l, "remind", "next");
    assert!(loop_edge.back);
    let (remind, wait) = (node(&l, "remind"), node(&l, "wait"));
    assert!(remind.y > wait.y, "the loop goes back up");
    assert_eq!(
        loop_edge.points[0],
        (remind.x + remind.w, loop_edge.points[0].1),
        "leaves by the side"
    );
    let end = *loop_edge.points.last().unwrap();
    assert_eq!(end.0, wait.x + wait.w, "enters by the side");
    // The lane runs beside the boxes, not over them.
    let lane = loop_edge.points[1].0;
    assert!(lane > remind.x + remind.w && lane > wait.x + wait.w);
}

#[test]
fn a_step_looping_to_itself_and_a_loop_without_a_wait_are_drawn_too() {
    let d = draft(json!({
        "trigger": {"type": "event", "event": "Ping"},
        "start": "a",
        "steps": [
            {"id": "a", "type": "wait_for_event", "event": "Pong", "timeout": {"hours": 1},
             "on_event": "b", "on_timeout": "a"},
            {"id": "b", "type": "branch", "condition": {"type": "segment", "segment": 1}, "yes": "c", "no": "a"},
            {"id": "c", "type": "update_contact", "add_tags": ["x"], "next": "b"}
        ]
    }));
    let l = lay(&d);
    let own = edge(&l, "a", "on_timeout");
    assert!(own.back && own.from == own.to);
    assert!(edge(&l, "b", "no").back);
    assert!(edge(&l, "c", "next").back);
    assert_eq!(l.edges.iter().filter(|e| e.back).count(), 3);
}

#[test]
fn a_long_edge_goes_through_its_own_lane() {
    // `skip`'s yes jumps over three steps to the end.
    let d = def(json!({
        "trigger": {"type": "event", "event": "Signed Up"},
        "start": "skip",
        "steps": [
            {"id": "skip", "type": "branch", "condition": {"type": "trait", "trait": "vip", "op": "exists"},
             "yes": "last", "no": "one"},
            {"id": "one", "type": "send", "template": 1, "next": "two"},
            {"id": "two", "type": "wait", "duration": 3600000, "next": "three"},
            {"id": "three", "type": "send", "template": 2, "next": "last"},
            {"id": "last", "type": "update_contact", "set": {"onboarded": true}, "lead_score": 5}
        ]
    }));
    let l = lay(&d);
    let long = edge(&l, "skip", "yes");
    assert_eq!(
        long.points.len(),
        2 + 2 * 3,
        "two points for each of the three rows it crosses"
    );
    let lane_x = long.points[1].0;
    for step in ["one", "two", "three"] {
        let n = node(&l, step);
        assert!(lane_x < n.x || lane_x > n.x + n.w, "the lane passes beside {step}");
    }
    // The rows it crosses are straight down.
    assert!(long.points[1..long.points.len() - 1].iter().all(|p| p.0 == lane_x));
    assert_eq!(node(&l, "two").summary, "wait 1 hour");
    assert_eq!(node(&l, "last").summary, "update: onboarded = true, score +5");
}

#[test]
fn exits_naming_no_step_point_at_a_missing_box() {
    let d = draft(json!({
        "trigger": {"type": "form", "form": "Newsletter"},
        "start": "nope",
        "steps": [
            {"id": "a", "type": "send", "template": 1, "next": "remnd"},
            {"id": "b", "type": "send", "template": 1, "next": "remnd"}
        ]
    }));
    let l = lay(&d);
    let missing: Vec<_> = l.nodes.iter().filter(|n| n.kind == NodeKind::Missing).collect();
    assert_eq!(
        missing.iter().map(|n| n.title.as_str()).collect::<Vec<_>>(),
        ["nope", "remnd"]
    );
    assert_eq!(l.nodes[edge(&l, "a", "next").to].title, "remnd");
    assert_eq!(
        edge(&l, "a", "next").to,
        edge(&l, "b", "next").to,
        "one box per missing id"
    );
    assert_eq!(l.nodes[0].summary, "form Newsletter");
}

#[test]
fn durations_read_as_written() {
    let d = def(json!({"trigger": {"type": "api"}, "start": "a", "steps": [
        {"id": "a", "type": "wait", "duration": {"hours": 48}, "next": "b"},
        {"id": "b", "type": "wait", "duration": 90000, "next": "c"},
        {"id": "c", "type": "wait", "duration": {"days": 1, "minutes": 30}}
    ]}));
    let l = lay(&d);
    assert_eq!(node(&l, "a").summary, "wait 48 hours");
    assert_eq!(node(&l, "b").summary, "wait 1 minute 30 seconds");
    assert_eq!(node(&l, "c").summary, "wait 1 day 30 minutes");
}

#[test]
fn the_largest_journey_lays_out_quickly() {
    // MAX_STEPS steps: a ladder of branches, each one's `no` skipping ahead and every
    // tenth step looping back through a wait.
    let n = crate::journey::MAX_STEPS;
    let steps: Vec<Value> = (0..n)
        .map(|i| {
            let id = format!("s{i}");
            let next = |k: usize| (i + k < n).then(|| format!("s{}", i + k));
            match i % 10 {
                0 => json!({"id": id, "type": "wait", "duration": 60000, "next": next(1)}),
                9 => json!({"id": id, "type": "branch", "condition": {"type": "segment", "segment": 1},
                            "yes": next(1), "no": format!("s{}", i - 9)}),
                _ if i % 3 == 0 => json!({"id": id, "type": "branch", "condition": {"type": "segment", "segment": 1},
                            "yes": next(1), "no": next(4)}),
                _ => json!({"id": id, "type": "send", "template": 1, "next": next(1)}),
            }
        })
        .collect();
    let d = draft(json!({"trigger": {"type": "api"}, "start": "s0", "steps": steps}));
    let started = std::time::Instant::now();
    let l = lay(&d);
    let took = started.elapsed();
    assert!(took.as_secs_f64() < 5.0, "{took:?}");
    assert!(l.edges.iter().filter(|e| e.back).count() >= n / 10 - 1);
}

#[test]
fn an_empty_draft_still_draws_its_trigger() {
    let l = lay(&draft(json!({"trigger": {"type": "api"}, "start": "", "steps": []})));
    assert_eq!(l.nodes.len(), 2);
}

/// A layered graph built by hand: `rows` of node counts, edges listed.
fn hand_made(edges: &[(usize, usize)], n: usize) -> Layered {
    layered(&vec![(NODE_W, NODE_H); n], edges)
}

#[test]
fn crossing_reduction_removes_the_crossings_of_a_bad_order() {
    // 0 → 1, 2, 3; 1 → 4, 2 → 5, 3 → 6: a tree, drawable without crossings.
    let edges = [(0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (3, 6)];
    let g = hand_made(&edges, 7);
    // The bottom row reversed: every pair of the three lower edges crosses.
    let bad = vec![vec![0], vec![1, 2, 3], vec![6, 5, 4]];
    assert_eq!(crossings(&g, &positions(&g, &bad)), 3);
    let better = reduce_crossings(&g, bad);
    assert_eq!(crossings(&g, &positions(&g, &better)), 0);
    assert_eq!(better, [vec![0], vec![1, 2, 3], vec![4, 5, 6]], "exit order restored");
    // The order actually used never has more crossings than its starting point.
    let first = initial_order(&g);
    assert_eq!(crossings(&g, &positions(&g, &first)), 0);
}

#[test]
fn crossing_reduction_untangles_shared_children() {
    // Two parents whose children interleave: 1 → 3, 5 and 2 → 4, 6, all in one row,
    // listed 3, 4, 5, 6 (four crossings); grouping them removes all of them.
    let edges = [(0, 1), (0, 2), (1, 3), (1, 5), (2, 4), (2, 6)];
    let g = hand_made(&edges, 7);
    let bad = vec![vec![0], vec![1, 2], vec![3, 4, 5, 6]];
    let before = crossings(&g, &positions(&g, &bad));
    let after = crossings(&g, &positions(&g, &reduce_crossings(&g, bad)));
    assert!(before > 0 && after == 0, "{before} → {after}");
}

#[test]
fn the_same_definition_gives_the_same_drawing() {
    let v = json!({
        "trigger": {"type": "event", "event": "Cart Updated"},
        "start": "wait-order",
        "steps": [
            {"id": "wait-order", "type": "wait_for_event", "event": "Order Completed", "match_key": "cart_id",
             "timeout": {"hours": 1}, "on_event": "bought", "on_timeout": "remind-1"},
            {"id": "remind-1", "type": "send", "template": "cart-reminder", "channel": "email", "next": "wait-23h"},
            {"id": "wait-23h", "type": "wait", "duration": {"hours": 23}, "next": "remind-2"},
            {"id": "remind-2", "type": "send", "template": "cart-last-chance", "channel": "email", "next": "done"},
            {"id": "bought", "type": "goal", "name": "purchased"},
            {"id": "done", "type": "exit"}
        ]
    });
    let a = lay(&def(v.clone()));
    let b = lay(&def(v));
    assert_eq!(a, b);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    let options = SvgOptions::default();
    assert_eq!(svg(&a, &options), svg(&b, &options));
    assert_eq!(
        node(&a, "wait-order").summary,
        "wait for Order Completed ≤ 1 hour · same cart_id"
    );
    assert_eq!(node(&a, "bought").summary, "goal: purchased");
}

#[test]
fn mirroring_reads_right_to_left() {
    let d = def(json!({
        "trigger": {"type": "date_trait", "trait": "birthday", "every_year": true, "time": "09:00"},
        "start": "b",
        "steps": [
            {"id": "b", "type": "branch", "message": {"step": "s", "outcome": "opened"}, "yes": "s", "no": "t"},
            {"id": "s", "type": "send", "template": 1, "next": "w"},
            {"id": "w", "type": "wait_until", "time": "09:00", "days": ["mon", "tue", "wed", "thu", "fri"], "next": "b"},
            {"id": "t", "type": "send", "template": 2}
        ]
    }));
    let l = lay(&d);
    let m = l.clone().mirror();
    check(&d, &m);
    assert!(node(&l, "s").x < node(&l, "t").x);
    assert!(node(&m, "s").x > node(&m, "t").x, "the first exit on the right");
    assert_eq!((m.width, m.height), (l.width, l.height));
    for (a, b) in l.nodes.iter().zip(&m.nodes) {
        assert_eq!(a.y, b.y);
        assert_eq!(cx(a) + cx(b), l.width);
    }
    let back = edge(&m, "w", "next");
    assert!(
        back.back && back.points[1].0 < node(&m, "w").x,
        "loops run up the left side"
    );
    assert_eq!(m.clone().mirror(), l, "twice is the original");
    assert_eq!(l.nodes[0].summary, "on birthday every year at 09:00");
    assert_eq!(node(&l, "w").summary, "wait until 09:00 mon–fri");
    assert_eq!(node(&l, "b").summary, "branch: s opened");
}

#[test]
fn extra_lines_get_room_in_every_step_box() {
    let d = def(json!({"trigger": {"type": "api"}, "start": "a",
        "steps": [{"id": "a", "type": "send", "template": 1}]}));
    let l = lay_out(&d, &LayoutOptions { extra_lines: 2 });
    check(&d, &l);
    assert_eq!(node(&l, "a").h, NODE_H + 2.0 * LINE_H);
}

#[test]
fn svg_escapes_whatever_a_definition_says() {
    let d = draft(json!({
        "trigger": {"type": "event", "event": "<script>alert(1)</script>"},
        "start": "a\"><script>",
        "steps": [
            {"id": "a\"><script>", "type": "send", "template": "x & <b>y</b>", "next": "it's"},
            {"id": "it's", "type": "update_contact", "set": {"note": "</text><script>"}}
        ]
    }));
    let l = lay(&d);
    let out = svg(&l, &SvgOptions::default());
    assert!(!out.contains("<script"), "{out}");
    assert!(!out.contains("<b>"), "{out}");
    assert!(
        out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the event shows as text"
    );
    assert!(out.contains(r#"data-step="a&quot;&gt;&lt;script&gt;""#), "{out}");
    assert!(out.contains(r#"data-step="it&#39;s""#));
    assert!(out.contains("x &amp; &lt;b&gt;y&lt;/b&gt;"));
    assert_eq!(out.matches("<text").count(), out.matches("</text>").count());
}

#[test]
fn svg_marks_problems_carries_numbers_and_is_styled_by_classes() {
    let d = def(json!({
        "trigger": {"type": "event", "event": "Cart Updated"},
        "start": "wait",
        "steps": [
            {"id": "wait", "type": "wait_for_event", "event": "Order Completed", "timeout": {"hours": 1},
             "on_event": "bought", "on_timeout": "remind"},
            {"id": "remind", "type": "send", "template": 1, "next": "wait"},
            {"id": "bought", "type": "goal"}
        ]
    }));
    let l = lay_out(&d, &LayoutOptions { extra_lines: 1 });
    let options = SvgOptions {
        extra: [(
            "remind".to_string(),
            vec!["reached 120 · waiting 4".to_string(), "dropped".to_string()],
        )]
        .into(),
        problems: ["remind".to_string()].into(),
        id_prefix: "j7".into(),
        title: Some("Abandoned cart".into()),
        ..SvgOptions::default()
    };
    let out = svg(&l, &options);
    assert!(out.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
    assert!(out.contains(&format!(r#"viewBox="0 0 {} {}""#, l.width, l.height)));
    assert!(
        out.contains(r#"<g class="step send problem" data-step="remind">"#),
        "{out}"
    );
    assert!(out.contains(r#"<g class="step wait_for_event" data-step="wait">"#));
    assert!(out.contains(r#"<g class="step trigger">"#));
    assert!(out.contains(">reached 120 · waiting 4</text>"));
    assert!(!out.contains("dropped"), "only the lines the layout has room for");
    assert!(out.contains(r#"<path class="edge back""#));
    assert!(out.contains(r#"data-exit="on_timeout" data-from="wait""#));
    assert!(out.contains(r#"<text class="edge-label""#) && out.contains(">on_event</text>"));
    assert!(out.contains(r#"marker-end="url(#j7-arrow)""#) && out.contains(r#"<marker id="j7-arrow""#));
    assert!(out.contains("<title>Abandoned cart</title>"));
    assert!(out.contains(r#"text-anchor="middle""#) && !out.contains("text-anchor=\"start\""));
    assert!(
        !out.contains("<style>") && !out.contains("fill=\"#"),
        "colours come from the UI's CSS"
    );
    let standalone = svg(
        &l,
        &SvgOptions {
            standalone: true,
            ..SvgOptions::default()
        },
    );
    assert!(standalone.contains(DEFAULT_CSS));
}

#[test]
fn svg_shortens_text_that_would_not_fit() {
    let long = "a".repeat(64);
    let d = draft(json!({"trigger": {"type": "api"}, "start": long,
        "steps": [{"id": long, "type": "wait", "duration": {"days": 400, "hours": 3, "minutes": 2}}]}));
    let l = lay(&d);
    assert_eq!(node(&l, &long).summary, "wait 400 days 3 hours 2 minutes");
    let out = svg(&l, &SvgOptions::default());
    assert!(
        out.contains("a…</text>") && !out.contains(&format!(">{long}</text>")),
        "{out}"
    );
    assert!(out.contains(&format!("<title>{long}: wait 400 days 3 hours 2 minutes</title>")));
}

// Random graphs, valid or not: any shape the editor can hold.

fn kind(shape: u8, targets: &[Option<String>]) -> StepKind {
    let t = |i: usize| targets[i].clone();
    match shape {
        0 => StepKind::Send {
            template: NameOrId::Id(1),
            channel: None,
            transactional: false,
            best_time: None,
            next: t(0),
        },
        1 => StepKind::Wait {
            duration: Duration::Parts(DurationParts {
                days: 1,
                hours: 0,
                minutes: 0,
            }),
            next: t(0),
        },
        2 => StepKind::Branch {
            condition: Some(crate::segment::Condition::Segment { segment: 1 }),
            message: None,
            yes: t(0),
            no: t(1),
        },
        3 => StepKind::WaitForEvent {
            event: "E".into(),
            filters: vec![],
            match_key: None,
            timeout: Duration::Millis(60_000),
            on_event: t(0),
            on_timeout: t(1),
        },
        4 => StepKind::Split {
            variants: (0..3)
                .map(|i| Variant {
                    name: None,
                    percent: 33,
                    next: t(i),
                })
                .collect(),
        },
        5 => StepKind::Goal { name: None },
        _ => StepKind::Exit,
    }
}

fn random_definition() -> impl Strategy<Value = JourneyDefinition> {
    (1usize..16)
        .prop_flat_map(|n| {
            let step = (0u8..7, prop::collection::vec(prop::option::weighted(0.8, 0..n + 1), 3));
            (Just(n), 0..n + 1, prop::collection::vec(step, n))
        })
        .prop_map(|(n, start, steps)| {
            // Index n names no step.
            let id = |i: usize| if i == n { "ghost".to_string() } else { format!("s{i}") };
            JourneyDefinition {
                trigger: Trigger::Api,
                start: id(start),
                steps: steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, (shape, targets))| {
                        let targets: Vec<Option<String>> = targets.into_iter().map(|t| t.map(id)).collect();
                        Step {
                            id: id(i),
                            kind: kind(shape, &targets),
                        }
                    })
                    .collect(),
                settings: Settings::default(),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_graph_lays_out_without_overlaps(d in random_definition()) {
        let l = lay(&d);
        // One edge per exit that names a step or, on a multi-exit step, ends the run.
        let expected: usize = 1 + d.steps.iter().map(|s| {
            let exits = s.kind.exits();
            if exits.len() > 1 { exits.len() } else { exits.iter().filter(|(_, t)| t.is_some()).count() }
        }).sum::<usize>();
        prop_assert_eq!(l.edges.len(), expected);
        prop_assert_eq!(&lay(&d), &l);
        let m = l.clone().mirror();
        check(&d, &m);
    }
}
