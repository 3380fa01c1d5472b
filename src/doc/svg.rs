//! The flow as an SVG diagram: phases in columns by their distance from
//! detection, the main path on top, phases reached only by failing below;
//! failure edges dashed.

use std::fmt::Write;

use crate::graph::PhaseGraph;
use crate::graph::render::title;
use crate::syntax::ast::EdgeKind;

const W: usize = 150;
const H: usize = 46;
const GAP_X: usize = 40;
const GAP_Y: usize = 60;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An inline SVG drawing of the phase graph.
pub fn flow_svg(g: &PhaseGraph) -> String {
    let n = g.phases.len();
    // Columns: the longest success path from detection (bounded, so a
    // cycle cannot run away); rows: 0 on success paths, 1 for phases reached
    // only by failing, placed one column after the phase that fails.
    let start = g.index("detection").unwrap_or(0);
    // Edges join the graph's own phases (one that did not is left out).
    let mut col = vec![usize::MAX; n];
    let mut main = vec![false; n];
    if let (Some(c), Some(m)) = (col.get_mut(start), main.get_mut(start)) {
        *c = 0;
        *m = true;
    }
    for _ in 0..n {
        let mut changed = false;
        for e in &g.edges {
            if e.kind != EdgeKind::Next || main.get(e.from) != Some(&true) {
                continue;
            }
            let Some(c) = col.get(e.from).map(|c| c + 1) else {
                continue;
            };
            let (Some(to_col), Some(to_main)) = (col.get_mut(e.to), main.get_mut(e.to)) else {
                continue;
            };
            if !*to_main || (*to_col < c && c < n) {
                *to_main = true;
                *to_col = c;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for e in &g.edges {
        if e.kind == EdgeKind::Failure
            && main.get(e.from) == Some(&true)
            && main.get(e.to) == Some(&false)
            && let Some(c) = col.get(e.from).map(|c| c + 1)
            && let Some(to_col) = col.get_mut(e.to)
        {
            *to_col = (*to_col).min(c);
        }
    }
    let max_col = col
        .iter()
        .filter(|c| **c != usize::MAX)
        .max()
        .copied()
        .unwrap_or(0);
    let mut next_free = max_col + 1;
    let pos: Vec<(usize, usize)> = col
        .iter()
        .zip(&main)
        .map(|(&c, &main)| {
            let c = if c == usize::MAX {
                next_free += 1;
                next_free - 1
            } else {
                c
            };
            let row = usize::from(!main);
            (20 + c * (W + GAP_X), 20 + row * (H + GAP_Y))
        })
        .collect();
    let width = pos.iter().map(|p| p.0 + W + 20).max().unwrap_or(200);
    let height = pos.iter().map(|p| p.1 + H + 20).max().unwrap_or(100);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"flow\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"flow {}\">\n",
        esc(&g.name)
    );
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#444\"/></marker></defs>\n");
    for e in &g.edges {
        let (Some(&a), Some(&b)) = (pos.get(e.from), pos.get(e.to)) else {
            continue;
        };
        let (x1, y1) = (a.0 + W / 2, a.1 + H / 2);
        let (x2, y2) = (b.0 + W / 2, b.1 + H / 2);
        // Stop at the box border (approximately).
        let (dx, dy) = (x2 as f64 - x1 as f64, y2 as f64 - y1 as f64);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let shrink = |v: f64| v * ((len - (W as f64 / 2.0).min(len / 2.0)) / len);
        let (ex, ey) = (x1 as f64 + shrink(dx), y1 as f64 + shrink(dy));
        let style = if e.kind == EdgeKind::Failure {
            "stroke=\"#b22222\" stroke-dasharray=\"6 4\""
        } else {
            "stroke=\"#444\""
        };
        let _ = writeln!(
            out,
            "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{ex:.0}\" y2=\"{ey:.0}\" {style} stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>"
        );
        if let Some(bound) = e.bound {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#444\">max {bound}</text>",
                (x1 + x2) / 2,
                (y1 + y2) / 2 - 4
            );
        }
    }
    for ((p, &(x, y)), &main) in g.phases.iter().zip(&pos).zip(&main) {
        let fill = if main { "#eef4ff" } else { "#fff1f0" };
        let _ = writeln!(
            out,
            "<g class=\"phase\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"8\" fill=\"{fill}\" stroke=\"#335\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\">{}</text></g>",
            esc(p.rite.as_deref().unwrap_or("")),
            x + W / 2,
            y + H / 2 + 5,
            esc(&title(&p.name))
        );
    }
    out.push_str("</svg>\n");
    out
}
