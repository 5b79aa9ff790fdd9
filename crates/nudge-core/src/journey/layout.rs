//! The journey diagram's layout: where each step's box and each exit's arrow go, so
//! the UI can draw a journey on the server (SVG, no JavaScript needed to read it).
//!
//! # What is drawn
//! One box per step (its id, its type and a one-line summary of its settings), a box
//! for the trigger pointing at `start`, and small "end" boxes where an exit of a
//! multi-exit step (a branch's `no`, a wait's `on_timeout`) is missing, because there
//! a missing exit *is* a path readers need to see (the run completes). The single
//! `next` of a last step needs no end box: nothing below it already says "the run
//! ends here". An exit naming no step (a draft being edited) points at a "missing"
//! box titled with the id, so the UI can show the mistake where it is.
//!
//! # How (a Sugiyama-style layered layout, top to bottom)
//! 1. **Cycles** are broken by a depth-first search from the trigger, following exits
//!    in their definition order: an edge into a step still on the search stack is a
//!    *back* edge (a loop back to an earlier step, valid when it passes a wait). It
//!    is reversed for layering and flagged so the renderer draws it dashed.
//! 2. **Layers** are longest paths from the sources: every edge goes at least one row
//!    down, and a step sits below everything that leads to it.
//! 3. **Dummy nodes** fill every row an edge crosses, so long edges get lanes of
//!    their own and boxes are never drawn over. A back edge gets a lane beside its two
//!    ends and is routed up the side: it leaves its source's side and enters its
//!    target's side, never overlapping the forward arrow between the same steps.
//! 4. **Crossings** are reduced by barycenter sweeps (down, up, ...) from a
//!    depth-first initial order, keeping the best order seen. Exits leave a box from
//!    ports spread along its bottom in definition order, so ties put `yes` left of
//!    `no`, the first variant left of the second.
//! 5. **Coordinates**: each row is placed by an exact least-squares fit of its nodes
//!    to their neighbours in the row above (then below, alternating) under the order
//!    and minimum gaps (isotonic regression, pool-adjacent-violators): chains come
//!    out straight, children centred under their parent, parents over their children.
//!    A loop's lane keeps close to what is on its left, then straightens where its
//!    rows leave room.
//! 6. **Routes** are polylines: from a port on the source's bottom, vertically through
//!    each dummy's row, to a port on the target's top.
//!
//! Everything is deterministic: vectors and ordered maps only, stable sorts, ties
//! broken by definition order, so the same definition gives a byte-identical diagram
//! (and SVG). [`Layout::mirror`] flips it for right-to-left UIs.
//!
//! Written here rather than taken from a crate: journeys are small (at most
//! [`super::MAX_STEPS`] steps) and the layout is a few hundred lines, while the
//! candidates looked at (December 2026) each miss part of it: `rust-sugiyama` gives
//! coordinates only (no routes, no labels) and brings `petgraph`; `layout-rs` is a
//! Graphviz-style renderer with its own drawing; the `dagre` port is a young 0.1 of a
//! much larger pipeline. What the UI needs beyond any of them (exit ports in
//! definition order, loop lanes beside their boxes, byte-identical output) would be
//! code here anyway.

mod summary;
mod svg;
#[cfg(test)]
mod tests;

pub use svg::{DEFAULT_CSS, SvgOptions, escape, svg};

use super::{JourneyDefinition, StepKind};
use std::collections::{BTreeMap, VecDeque};

/// Width of a step's box.
pub const NODE_W: f64 = 240.0;
/// Height of a step's box with its two lines (title and summary).
pub const NODE_H: f64 = 52.0;
/// Height of each extra line of text a box makes room for ([`LayoutOptions`]).
pub const LINE_H: f64 = 16.0;
/// The small box an exit that ends the run points at.
pub const END_W: f64 = 64.0;
pub const END_H: f64 = 28.0;
/// Horizontal space between two boxes of a row.
pub const NODE_GAP: f64 = 40.0;
/// Vertical space between rows (where arrows bend and exit labels sit).
pub const LAYER_GAP: f64 = 56.0;
/// Space around the whole drawing.
pub const MARGIN: f64 = 24.0;
/// Space between an edge's lane and a neighbour in its row.
const DUMMY_GAP: f64 = 16.0;
/// Distance from a box's side to the lane of a loop leaving or entering it.
const BACK_GAP: f64 = 28.0;
/// Vertical spacing of several loop lanes leaving or entering one box's side.
const BACK_STEP: f64 = 8.0;
/// Barycenter sweeps tried at most (each one row-by-row, down or up).
const SWEEPS: usize = 24;
/// Coordinate passes (alternately fitting each row to the row above and below).
const PASSES: usize = 8;
/// Approximate width of one character of an exit label, for the drawing's bounds.
pub(crate) const LABEL_CHAR_W: f64 = 6.6;
/// Exit labels longer than this are shortened (the full text stays in the edge).
pub(crate) const LABEL_MAX_CHARS: usize = 24;

/// What the layout makes room for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutOptions {
    /// Lines of text each step's box has room for below its summary (per-step numbers
    /// such as "reached 120 · waiting 4", passed to [`svg`] in [`SvgOptions::extra`]).
    pub extra_lines: usize,
}

/// A journey's diagram: boxes and arrows in a `width` × `height` drawing whose origin
/// is the top left, y growing downwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// The trigger first, then the steps in definition order, then end and missing
    /// boxes.
    pub nodes: Vec<NodeBox>,
    /// The trigger's edge, then each step's exits in definition order.
    pub edges: Vec<EdgeRoute>,
}

/// One box: its top-left corner `x`, `y` and size `w`, `h`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeBox {
    /// The step's id; `None` for the trigger, end and missing boxes.
    pub step: Option<String>,
    pub kind: NodeKind,
    /// The step id, "trigger", "end", or the id an exit names that no step has.
    pub title: String,
    /// One line: "wait 2 days", "send email · template 3", "event Order Completed".
    pub summary: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// What a box stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// What starts a run; points at `start`.
    Trigger,
    /// A step, with its type as in JSON (`wait_for_event`).
    Step(&'static str),
    /// Where a missing exit of a multi-exit step leads: the run completes.
    End,
    /// An id named by `start` or an exit that no step has (an invalid draft).
    Missing,
}

impl NodeKind {
    /// A name for CSS classes: the step type, `trigger`, `end` or `missing`.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Trigger => "trigger",
            NodeKind::Step(t) => t,
            NodeKind::End => "end",
            NodeKind::Missing => "missing",
        }
    }
}

/// One arrow: from box `from` to box `to` (indexes into [`Layout::nodes`]) along
/// `points` (the first on the source box's border, the last on the target's).
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRoute {
    pub from: usize,
    pub to: usize,
    /// The exit as the definition and the statistics name it (`next`, `yes`,
    /// `on_timeout`, `cases[0].next`, `variants[1].next`); `None` for the trigger's.
    pub exit: Option<String>,
    /// What to write on the arrow: `yes`/`no`, `on_event`/`on_timeout`, a case's
    /// condition, a variant's name and share; `None` for a plain `next`.
    pub label: Option<String>,
    /// A loop back to an earlier step (or to itself): drawn differently.
    pub back: bool,
    pub points: Vec<(f64, f64)>,
    /// Where the label's centre goes.
    pub label_at: (f64, f64),
}

impl Layout {
    /// The same diagram read right to left (for fa, ar, he): x flipped, so the first
    /// exit of a branch is on the right and loops run up the left side.
    pub fn mirror(mut self) -> Layout {
        let w = self.width;
        for n in &mut self.nodes {
            n.x = w - n.x - n.w;
        }
        for e in &mut self.edges {
            for p in &mut e.points {
                p.0 = w - p.0;
            }
            e.label_at.0 = w - e.label_at.0;
        }
        self
    }
}

/// Lays a journey out. Works on any definition, valid or not (a draft with a loop
/// without a wait, unreachable steps, exits naming no step): the UI draws drafts too.
pub fn lay_out(definition: &JourneyDefinition, options: &LayoutOptions) -> Layout {
    let (mut nodes, edges) = graph(definition, options);
    let sizes: Vec<(f64, f64)> = nodes.iter().map(|n| (n.w, n.h)).collect();
    let links: Vec<(usize, usize)> = edges.iter().map(|e| (e.from, e.to)).collect();
    let placed = place(&sizes, &links);
    for (n, &(x, y)) in nodes.iter_mut().zip(&placed.corners) {
        n.x = x;
        n.y = y;
    }
    let edges = edges
        .into_iter()
        .zip(placed.routes)
        .map(|(e, r)| EdgeRoute {
            from: e.from,
            to: e.to,
            exit: e.exit,
            label: e.label,
            back: r.back,
            points: r.points,
            label_at: r.label_at,
        })
        .collect();
    let mut layout = Layout {
        width: 0.0,
        height: 0.0,
        nodes,
        edges,
    };
    fit(&mut layout);
    layout
}

/// An edge before it is placed.
struct Link {
    from: usize,
    to: usize,
    exit: Option<String>,
    label: Option<String>,
}

/// The boxes (unplaced) and edges of a definition.
fn graph(def: &JourneyDefinition, options: &LayoutOptions) -> (Vec<NodeBox>, Vec<Link>) {
    let step_h = NODE_H + LINE_H * options.extra_lines as f64;
    let boxed = |step: Option<String>, kind: NodeKind, title: String, summary: String| {
        let (w, h) = match kind {
            NodeKind::End => (END_W, END_H),
            _ => (NODE_W, step_h),
        };
        NodeBox {
            step,
            kind,
            title,
            summary,
            x: 0.0,
            y: 0.0,
            w,
            h,
        }
    };
    let mut nodes = vec![boxed(
        None,
        NodeKind::Trigger,
        "trigger".into(),
        summary::trigger(&def.trigger),
    )];
    // The first step with an id wins, as `JourneyDefinition::step` finds it.
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &def.steps {
        let i = nodes.len();
        index.entry(s.id.as_str()).or_insert(i);
        nodes.push(boxed(
            Some(s.id.clone()),
            NodeKind::Step(s.kind.type_name()),
            s.id.clone(),
            summary::step(&s.kind),
        ));
    }
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    let mut target = |nodes: &mut Vec<NodeBox>, id: &str| -> usize {
        if let Some(&i) = index.get(id) {
            return i;
        }
        *missing.entry(id.to_string()).or_insert_with(|| {
            nodes.push(boxed(
                None,
                NodeKind::Missing,
                id.to_string(),
                "no step has this id".into(),
            ));
            nodes.len() - 1
        })
    };
    let start = target(&mut nodes, &def.start);
    let mut links = vec![Link {
        from: 0,
        to: start,
        exit: None,
        label: None,
    }];
    for (k, s) in def.steps.iter().enumerate() {
        let from = k + 1;
        let exits = s.kind.exits();
        let several = exits.len() > 1;
        for (i, (exit, next)) in exits.iter().enumerate() {
            let to = match next {
                Some(id) => target(&mut nodes, id),
                None if several => {
                    nodes.push(boxed(None, NodeKind::End, "end".into(), "the run completes".into()));
                    nodes.len() - 1
                }
                None => continue,
            };
            links.push(Link {
                from,
                to,
                exit: Some(exit.clone()),
                label: exit_label(&s.kind, i, exit),
            });
        }
    }
    (nodes, links)
}

/// What an exit's arrow says: the exit's name, except a plain `next` (nothing to
/// say), a case (its condition) and a variant (its name and share).
fn exit_label(kind: &StepKind, i: usize, exit: &str) -> Option<String> {
    match kind {
        StepKind::MultiBranch { cases, .. } if i < cases.len() => Some(summary::condition_text(&cases[i].condition)),
        StepKind::Split { variants } => variants.get(i).map(|v| match &v.name {
            Some(name) => format!("{name} · {}%", v.percent),
            None => format!("{} · {}%", i + 1, v.percent),
        }),
        _ if exit == "next" => None,
        _ => Some(exit.to_string()),
    }
}

/// Sets the drawing's size to hold everything with a margin on every side (labels
/// included, by an estimate of their width), moving it so the margin is exact.
fn fit(layout: &mut Layout) {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    let mut extend = |x: f64, y: f64| {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    };
    for n in &layout.nodes {
        extend(n.x, n.y);
        extend(n.x + n.w, n.y + n.h);
    }
    for e in &layout.edges {
        for &(x, y) in &e.points {
            extend(x, y);
        }
        if let Some(label) = &e.label {
            let half = label_width(label) / 2.0;
            extend(e.label_at.0 - half, e.label_at.1 - 8.0);
            extend(e.label_at.0 + half, e.label_at.1 + 8.0);
        }
    }
    if layout.nodes.is_empty() {
        (x0, y0, x1, y1) = (0.0, 0.0, 0.0, 0.0);
    }
    let (dx, dy) = ((MARGIN - x0).round(), (MARGIN - y0).round());
    for n in &mut layout.nodes {
        n.x += dx;
        n.y += dy;
    }
    for e in &mut layout.edges {
        for p in &mut e.points {
            p.0 += dx;
            p.1 += dy;
        }
        e.label_at.0 += dx;
        e.label_at.1 += dy;
    }
    layout.width = (x1 + dx + MARGIN).ceil();
    layout.height = (y1 + dy + MARGIN).ceil();
}

/// The estimated drawn width of an exit label (shortened as the renderer shortens it).
pub(crate) fn label_width(label: &str) -> f64 {
    label.chars().count().min(LABEL_MAX_CHARS + 1) as f64 * LABEL_CHAR_W
}

/// Where [`place`] put things: each node's top-left corner, each edge's route.
struct Placed {
    corners: Vec<(f64, f64)>,
    routes: Vec<Route>,
}

struct Route {
    back: bool,
    points: Vec<(f64, f64)>,
    label_at: (f64, f64),
}

/// How an edge is drawn, decided by the depth-first search.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    /// Downwards, from the source's bottom to the target's top.
    Forward,
    /// Up the side, from the source's side to the target's side.
    Back,
    /// From a box's side back into it.
    SelfLoop,
}

/// The layered graph being laid out: the real nodes first, then the dummies.
struct Layered {
    /// Width and height; dummies are 0 × 0.
    size: Vec<(f64, f64)>,
    layer: Vec<usize>,
    /// For a dummy that is a loop's lane beside a box: that box (it stays right of it).
    pinned_to: Vec<Option<usize>>,
    /// Whether a dummy is on a back edge's lane.
    on_lane: Vec<bool>,
    real: usize,
    /// Per edge: its shape and its dummies, top row first.
    shape: Vec<Shape>,
    chain: Vec<Vec<usize>>,
    /// Connections between adjacent rows: (upper, lower, port of the upper's bottom in
    /// 0..1, where the edge leaves it).
    segments: Vec<(usize, usize, f64)>,
}

impl Layered {
    fn is_dummy(&self, v: usize) -> bool {
        v >= self.real
    }

    /// Whether a dummy is on a loop's lane (a back edge or a self-loop).
    fn is_loop_lane(&self, v: usize) -> bool {
        self.pinned_to[v].is_some() || self.on_lane[v]
    }

    /// The lanes pinned beside each node, in edge order.
    fn lanes(&self) -> Vec<Vec<usize>> {
        let mut lanes = vec![Vec::new(); self.size.len()];
        for d in self.real..self.size.len() {
            if let Some(a) = self.pinned_to[d] {
                lanes[a].push(d);
            }
        }
        lanes
    }

    fn add_dummy(&mut self, layer: usize, pinned_to: Option<usize>) -> usize {
        self.size.push((0.0, 0.0));
        self.layer.push(layer);
        self.pinned_to.push(pinned_to);
        self.on_lane.push(false);
        self.size.len() - 1
    }
}

/// Lays out a graph of boxes of the given sizes; node 0 is the root the search starts
/// from, and edges are listed in the order their sources' exits are.
fn place(sizes: &[(f64, f64)], edges: &[(usize, usize)]) -> Placed {
    let g = layered(sizes, edges);
    let orders = order(&g);
    let xs = coordinates(&g, &orders);
    route(&g, edges, &xs)
}

/// Steps 1–3: which edges are back edges, the rows, the dummies and the segments.
fn layered(sizes: &[(f64, f64)], edges: &[(usize, usize)]) -> Layered {
    let n = sizes.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (e, &(from, _)) in edges.iter().enumerate() {
        out[from].push(e);
    }
    // 1. Depth-first from the root, then from whatever it did not reach, in order.
    let mut shape = vec![Shape::Forward; edges.len()];
    let mut state = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        state[root] = 1;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = stack.last_mut() {
            let (v, k) = *top;
            if k == out[v].len() {
                state[v] = 2;
                stack.pop();
                continue;
            }
            top.1 += 1;
            let e = out[v][k];
            let w = edges[e].1;
            match state[w] {
                0 => {
                    state[w] = 1;
                    stack.push((w, 0));
                }
                1 if w == v => shape[e] = Shape::SelfLoop,
                1 => shape[e] = Shape::Back,
                _ => {}
            }
        }
    }
    // 2. Longest-path rows over the edges pointing down (back edges reversed).
    let down = |e: usize| -> Option<(usize, usize)> {
        let (a, b) = edges[e];
        match shape[e] {
            Shape::Forward => Some((a, b)),
            Shape::Back => Some((b, a)),
            Shape::SelfLoop => None,
        }
    };
    let mut below: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for e in 0..edges.len() {
        if let Some((a, b)) = down(e) {
            below[a].push(b);
            indegree[b] += 1;
        }
    }
    let mut layer = vec![0usize; n];
    let mut queue: VecDeque<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
    while let Some(v) = queue.pop_front() {
        for &w in &below[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                queue.push_back(w);
            }
        }
    }
    // 3. Dummies and segments.
    let mut g = Layered {
        size: sizes.to_vec(),
        layer,
        pinned_to: vec![None; n],
        on_lane: vec![false; n],
        real: n,
        shape: shape.clone(),
        chain: Vec::with_capacity(edges.len()),
        segments: Vec::new(),
    };
    let mut ports = vec![0usize; n];
    let port_counts: Vec<usize> = (0..n)
        .map(|v| out[v].iter().filter(|&&e| shape[e] == Shape::Forward).count())
        .collect();
    for (e, &(from, to)) in edges.iter().enumerate() {
        let mut chain = Vec::new();
        match shape[e] {
            Shape::Forward => {
                for l in g.layer[from] + 1..g.layer[to] {
                    chain.push(g.add_dummy(l, None));
                }
                let port = (ports[from] + 1) as f64 / (port_counts[from] + 1) as f64;
                ports[from] += 1;
                let path: Vec<usize> = std::iter::once(from).chain(chain.iter().copied()).chain([to]).collect();
                for (i, pair) in path.windows(2).enumerate() {
                    g.segments.push((pair[0], pair[1], if i == 0 { port } else { 0.5 }));
                }
            }
            Shape::Back => {
                // A lane from the target's row (top) down to the source's row, its
                // ends beside the two boxes.
                let (top, bottom) = (g.layer[to], g.layer[from]);
                for l in top..=bottom {
                    let pin = if l == top {
                        Some(to)
                    } else if l == bottom {
                        Some(from)
                    } else {
                        None
                    };
                    let d = g.add_dummy(l, pin);
                    g.on_lane[d] = true;
                    chain.push(d);
                }
                for pair in chain.windows(2) {
                    g.segments.push((pair[0], pair[1], 0.5));
                }
            }
            Shape::SelfLoop => chain.push(g.add_dummy(g.layer[from], Some(from))),
        }
        g.chain.push(chain);
    }
    g
}

/// Step 4: the left-to-right order of each row.
fn order(g: &Layered) -> Vec<Vec<usize>> {
    let orders = reduce_crossings(g, initial_order(g));
    with_lanes(g, orders)
}

/// Rows listed in a depth-first pre-order along the segments, without the lanes
/// pinned beside boxes.
fn initial_order(g: &Layered) -> Vec<Vec<usize>> {
    let total = g.size.len();
    let rows = g.layer.iter().max().map_or(0, |m| m + 1);
    let mut lower: Vec<Vec<usize>> = vec![Vec::new(); total];
    for (s, &(a, _, _)) in g.segments.iter().enumerate() {
        lower[a].push(s);
    }
    let lanes_of = g.lanes();
    // Depth-first pre-order along the segments: a subtree stays together, and the
    // first exit's subtree comes first; a loop's lane follows the subtree of the box
    // it leaves from or enters.
    let mut orders: Vec<Vec<usize>> = vec![Vec::new(); rows];
    let mut seen = vec![false; total];
    for root in 0..total {
        if seen[root] {
            continue;
        }
        let mut stack = vec![root];
        while let Some(v) = stack.pop() {
            if seen[v] {
                continue;
            }
            seen[v] = true;
            if g.pinned_to[v].is_none() {
                orders[g.layer[v]].push(v);
            }
            stack.extend(lanes_of[v].iter().rev().filter(|&&d| !seen[d]));
            for &s in lower[v].iter().rev() {
                let w = g.segments[s].1;
                if !seen[w] {
                    stack.push(w);
                }
            }
        }
    }
    orders
}

/// Barycenter sweeps from `orders`, alternately down and up; the order with the
/// fewest crossings seen wins (the first one on a tie, so a drawing that is already
/// free of crossings keeps its definition order).
fn reduce_crossings(g: &Layered, mut orders: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    let total = g.size.len();
    let rows = orders.len();
    let mut lower: Vec<Vec<usize>> = vec![Vec::new(); total];
    for (s, &(a, _, _)) in g.segments.iter().enumerate() {
        lower[a].push(s);
    }
    let mut pos = positions(g, &orders);
    let mut best = crossings(g, &pos);
    let mut best_orders = orders.clone();
    let mut upper: Vec<Vec<usize>> = vec![Vec::new(); total];
    for (s, &(_, b, _)) in g.segments.iter().enumerate() {
        upper[b].push(s);
    }
    for sweep in 0..SWEEPS {
        if best == 0 {
            break;
        }
        let downward = sweep % 2 == 0;
        let rows_in_turn: Vec<usize> = if downward {
            (1..rows).collect()
        } else {
            (0..rows.saturating_sub(1)).rev().collect()
        };
        for l in rows_in_turn {
            let mut keyed: Vec<(f64, usize)> = orders[l]
                .iter()
                .map(|&v| {
                    let (sum, count) = if downward {
                        upper[v].iter().fold((0.0, 0usize), |(s, c), &k| {
                            let (a, _, port) = g.segments[k];
                            (s + pos[a] + (port - 0.5) * 0.5, c + 1)
                        })
                    } else {
                        lower[v]
                            .iter()
                            .fold((0.0, 0usize), |(s, c), &k| (s + pos[g.segments[k].1], c + 1))
                    };
                    (if count == 0 { pos[v] } else { sum / count as f64 }, v)
                })
                .collect();
            keyed.sort_by(|x, y| x.0.total_cmp(&y.0));
            orders[l] = keyed.into_iter().map(|(_, v)| v).collect();
            pos = positions(g, &orders);
        }
        let c = crossings(g, &pos);
        if c < best {
            best = c;
            best_orders = orders.clone();
        }
    }
    best_orders
}

/// The rows with each loop's lane right after the box it is pinned to (several in
/// edge order).
fn with_lanes(g: &Layered, mut orders: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    let lanes = g.lanes();
    for row in &mut orders {
        let mut placed = Vec::with_capacity(row.len());
        for &v in row.iter() {
            placed.push(v);
            placed.extend(&lanes[v]);
        }
        *row = placed;
    }
    orders
}

/// Each node's index in its row (a lane pinned beside a box counts as just right of
/// it, whether or not the rows list it yet).
fn positions(g: &Layered, orders: &[Vec<usize>]) -> Vec<f64> {
    let mut pos = vec![0.0f64; g.size.len()];
    for row in orders {
        for (i, &v) in row.iter().enumerate() {
            pos[v] = i as f64;
        }
    }
    for v in g.real..g.size.len() {
        if let Some(a) = g.pinned_to[v] {
            pos[v] = pos[a] + 0.5;
        }
    }
    pos
}

/// Pairs of segments between the same two rows that cross, given positions in rows
/// (ports count: two exits of one box cross when their targets are the other way
/// round). Two exits of one box that cross count twice: their labels, side by side
/// just below the box, would run into each other.
fn crossings(g: &Layered, pos: &[f64]) -> usize {
    let rows = g.layer.iter().max().map_or(0, |m| m + 1);
    let mut by_row: Vec<Vec<(usize, f64, f64)>> = vec![Vec::new(); rows];
    for &(a, b, port) in &g.segments {
        by_row[g.layer[a]].push((a, pos[a] + (port - 0.5) * 0.5, pos[b]));
    }
    let mut count = 0;
    for segs in &by_row {
        for (i, s) in segs.iter().enumerate() {
            for t in &segs[i + 1..] {
                if (s.1 - t.1) * (s.2 - t.2) < 0.0 {
                    count += if s.0 == t.0 { 2 } else { 1 };
                }
            }
        }
    }
    count
}

/// Step 5: the x of each node's centre. Each pass fits every row, in turn, to its
/// neighbours in the row before it (above on a downward pass, below on an upward one).
fn coordinates(g: &Layered, orders: &[Vec<usize>]) -> Vec<f64> {
    let total = g.size.len();
    let mut x = vec![0.0f64; total];
    // Start packed, each row centred on 0.
    for row in orders {
        let offsets = offsets(g, row);
        let mid = offsets.last().copied().unwrap_or(0.0) / 2.0;
        for (&v, o) in row.iter().zip(&offsets) {
            x[v] = o - mid;
        }
    }
    let mut upper: Vec<Vec<usize>> = vec![Vec::new(); total];
    let mut lower: Vec<Vec<usize>> = vec![Vec::new(); total];
    for &(a, b, _) in &g.segments {
        lower[a].push(b);
        upper[b].push(a);
    }
    for pass in 0..PASSES {
        let downward = pass % 2 == 0;
        let rows: Vec<usize> = if downward {
            (0..orders.len()).collect()
        } else {
            (0..orders.len()).rev().collect()
        };
        for l in rows {
            // Loops' lanes keep their least distance to whatever is on their left (a
            // lane follows the boxes; were it fitted like the rest, its wish, a pass
            // behind its boxes, would push them aside pass after pass). Only the other
            // nodes are fitted, at their distances in the full row.
            let row = &orders[l];
            let offsets = offsets(g, row);
            let mut free = Vec::with_capacity(row.len());
            let mut want = Vec::with_capacity(row.len());
            let mut weight = Vec::with_capacity(row.len());
            for (&v, &o) in row.iter().zip(&offsets) {
                if g.is_loop_lane(v) {
                    continue;
                }
                let near = if downward { &upper[v] } else { &lower[v] };
                let (w, target) = if near.is_empty() {
                    (0.25, x[v])
                } else {
                    let mean = near.iter().map(|&u| x[u]).sum::<f64>() / near.len() as f64;
                    // An edge's lane stays straight before boxes move.
                    (if g.is_dummy(v) { 4.0 } else { 1.0 }, mean)
                };
                free.push((v, o));
                want.push(target - o);
                weight.push(w);
            }
            for (&(v, o), z) in free.iter().zip(isotonic(&want, &weight)) {
                x[v] = z + o;
            }
            for (i, (&v, &o)) in row.iter().zip(&offsets).enumerate() {
                if !g.is_loop_lane(v) {
                    continue;
                }
                let left = (0..i).rev().find(|&k| !g.is_loop_lane(row[k]));
                let right = (i + 1..row.len()).find(|&k| !g.is_loop_lane(row[k]));
                if let Some(k) = left.or(right) {
                    x[v] = x[row[k]] + o - offsets[k];
                }
            }
        }
    }
    straighten_lanes(g, orders, &mut x);
    x
}

/// Moves each back edge's lane towards the x of its rightmost point, as far as each
/// row leaves room, so that it runs straight up instead of jogging from row to row.
fn straighten_lanes(g: &Layered, orders: &[Vec<usize>], x: &mut [f64]) {
    // Each node's right neighbour and the least distance to it.
    let mut right: Vec<Option<(usize, f64)>> = vec![None; g.size.len()];
    for row in orders {
        let offsets = offsets(g, row);
        for i in 1..row.len() {
            right[row[i - 1]] = Some((row[i], offsets[i] - offsets[i - 1]));
        }
    }
    // The rightmost lanes first, so that they make room for those to their left.
    let rightmost = |chain: &[usize], x: &[f64]| chain.iter().map(|&d| x[d]).fold(f64::MIN, f64::max);
    let mut lanes: Vec<usize> = (0..g.chain.len()).filter(|&e| g.shape[e] == Shape::Back).collect();
    lanes.sort_by(|&a, &b| {
        rightmost(&g.chain[b], x)
            .total_cmp(&rightmost(&g.chain[a], x))
            .then(a.cmp(&b))
    });
    for e in lanes {
        let chain = &g.chain[e];
        let to = rightmost(chain, x);
        for &d in chain {
            let room = right[d].map_or(f64::MAX, |(next, gap)| x[next] - gap);
            x[d] = x[d].max(to.min(room));
        }
    }
}

/// The smallest distances from the first node's centre to each node's centre in a
/// row: boxes `NODE_GAP` apart, lanes closer.
fn offsets(g: &Layered, row: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(row.len());
    let mut at = 0.0;
    for (i, &v) in row.iter().enumerate() {
        if i > 0 {
            let u = row[i - 1];
            let gap = if g.pinned_to[v] == Some(u) {
                BACK_GAP
            } else if g.pinned_to[u].is_some() && !g.is_dummy(v) {
                // Room for the loop's label between its lane and the next box.
                NODE_GAP
            } else if g.is_dummy(u) || g.is_dummy(v) {
                DUMMY_GAP
            } else {
                NODE_GAP
            };
            at += g.size[u].0 / 2.0 + gap + g.size[v].0 / 2.0;
        }
        out.push(at);
    }
    out
}

/// The non-decreasing sequence closest to `want` in weighted least squares
/// (pool adjacent violators): each node as near its wish as the order allows.
fn isotonic(want: &[f64], weight: &[f64]) -> Vec<f64> {
    // Blocks of (weighted sum, total weight, members).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for (&y, &w) in want.iter().zip(weight) {
        blocks.push((y * w, w, 1));
        while blocks.len() > 1 {
            let (s2, w2, n2) = blocks[blocks.len() - 1];
            let (s1, w1, n1) = blocks[blocks.len() - 2];
            if s1 / w1 <= s2 / w2 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (s1 + s2, w1 + w2, n1 + n2);
        }
    }
    blocks
        .iter()
        .flat_map(|&(s, w, n)| std::iter::repeat_n(s / w, n))
        .collect()
}

/// Step 6: corners of the real nodes and the edges' polylines.
fn route(g: &Layered, edges: &[(usize, usize)], xs: &[f64]) -> Placed {
    let row_h = (0..g.real).map(|v| g.size[v].1).fold(0.0, f64::max);
    let centre_y = |l: usize| l as f64 * (row_h + LAYER_GAP) + row_h / 2.0;
    let x: Vec<f64> = xs.iter().map(|v| v.round()).collect();
    // Every box hangs from the top of its row, so that an arrow reaching a small box
    // (an end) has crossed no part of the row beside it.
    let bx = |v: usize| {
        let (w, h) = g.size[v];
        (x[v] - w / 2.0, centre_y(g.layer[v]) - row_h / 2.0, w, h)
    };
    let corners: Vec<(f64, f64)> = (0..g.real).map(|v| (bx(v).0, bx(v).1)).collect();
    // Ports on the source's bottom, in exit order.
    let mut port_counts = vec![0usize; g.real];
    for (e, &(from, _)) in edges.iter().enumerate() {
        if g.shape[e] == Shape::Forward {
            port_counts[from] += 1;
        }
    }
    let mut next_port = vec![0usize; g.real];
    // Loops leave a box's side and enter it at heights set by how far out their lane
    // runs: an outer lane leaves lower and enters higher, so that it passes around
    // the inner ones instead of across them.
    let lanes = g.lanes();
    let side_y = |lane: usize, (y, h): (f64, f64), sign: f64| {
        let rank = g.pinned_to[lane].map_or(0, |a| lanes[a].iter().position(|&d| d == lane).unwrap_or(0));
        (y + h / 2.0 + sign * rank as f64 * BACK_STEP).clamp(y + 4.0, y + h - 4.0)
    };
    let mut routes: Vec<Route> = Vec::with_capacity(edges.len());
    for (e, &(from, to)) in edges.iter().enumerate() {
        let chain = &g.chain[e];
        let (fx, fy, fw, fh) = bx(from);
        let route = match g.shape[e] {
            Shape::Forward => {
                next_port[from] += 1;
                let px = fx + fw * next_port[from] as f64 / (port_counts[from] + 1) as f64;
                let mut points = vec![(px, fy + fh)];
                for &d in chain {
                    let cy = centre_y(g.layer[d]);
                    points.push((x[d], cy - row_h / 2.0));
                    points.push((x[d], cy + row_h / 2.0));
                }
                let (tx, ty, tw, _) = bx(to);
                points.push((tx + tw / 2.0, ty)); // moved to its port below
                let label_at = midpoint(points[0], points[1]);
                Route {
                    back: false,
                    points,
                    label_at,
                }
            }
            Shape::Back => {
                let (tx, ty, tw, th) = bx(to);
                let last = chain.len() - 1;
                let out_y = side_y(chain[last], (fy, fh), 1.0);
                let in_y = side_y(chain[0], (ty, th), -1.0);
                let mut points = vec![(fx + fw, out_y)];
                for (i, &d) in chain.iter().enumerate().rev() {
                    let cy = centre_y(g.layer[d]);
                    let enter = if i == last { out_y } else { cy + row_h / 2.0 };
                    let leave = if i == 0 { in_y } else { cy - row_h / 2.0 };
                    points.push((x[d], enter));
                    points.push((x[d], leave));
                }
                points.push((tx + tw, in_y));
                // On the lane, in the gap above the source's row.
                let label_at = midpoint(points[2], points[3]);
                Route {
                    back: true,
                    points,
                    label_at,
                }
            }
            Shape::SelfLoop => {
                let lane = x[chain[0]];
                let (down, up) = (fy + fh * 0.75, fy + fh * 0.25);
                Route {
                    back: true,
                    points: vec![(fx + fw, down), (lane, down), (lane, up), (fx + fw, up)],
                    label_at: (lane, fy + fh / 2.0),
                }
            }
        };
        routes.push(route);
    }
    // Ports on the target's top, ordered by where the arrows come from so that
    // arrows into one box do not cross there.
    let mut incoming: Vec<Vec<usize>> = vec![Vec::new(); g.real];
    for (e, &(_, to)) in edges.iter().enumerate() {
        if g.shape[e] == Shape::Forward {
            incoming[to].push(e);
        }
    }
    for (to, mut es) in incoming.into_iter().enumerate() {
        let before = |e: usize| {
            let p = &routes[e].points;
            p[p.len() - 2].0
        };
        es.sort_by(|&a, &b| before(a).total_cmp(&before(b)).then(a.cmp(&b)));
        let (tx, _, tw, _) = bx(to);
        let n = es.len();
        for (k, e) in es.into_iter().enumerate() {
            let share = if n == 1 {
                0.5
            } else {
                0.3 + 0.4 * k as f64 / (n - 1) as f64
            };
            if let Some(last) = routes[e].points.last_mut() {
                last.0 = (tx + tw * share).round();
            }
            // A direct arrow's label is on its only segment, which just moved.
            if routes[e].points.len() == 2 {
                routes[e].label_at = midpoint(routes[e].points[0], routes[e].points[1]);
            }
        }
    }
    Placed { corners, routes }
}

fn midpoint(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)
}
