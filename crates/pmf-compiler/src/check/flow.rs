//! The phase graph: the six seed phases are present, every phase is
//! reachable from detection, continuity is reachable from every phase,
//! validation dominates stabilization, fallible phases have failure edges
//! and every cycle is bounded.
//!
//! Each code has its own function; [`check`] runs them in a fixed order.

use petgraph::Direction;
use petgraph::algo::{dominators, tarjan_scc};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, EdgeRef, IntoNeighbors, Reversed, Visitable};

use super::Context;
use crate::graph::PhaseGraph;
use crate::model::SEED_PHASES;
use crate::model::vocabulary::Phase;
use pmf_syntax::Place;
use pmf_syntax::ast::EdgeKind;
use pmf_syntax::diagnostics::{Code, Diagnostic, Fix};

/// Run the flow checks on the compiled graph.
pub(crate) fn check(cx: &Context<'_>, graph: Option<&PhaseGraph>) -> Vec<Diagnostic> {
    let Some(graph) = graph else {
        return vec![missing_flow(cx)];
    };
    let g = graph.petgraph();
    // An edge to or from a phase the flow does not declare is reported as
    // such (PMF104, with its fix); the graph lacks it, so what it would have
    // reached is not reported as unreachable too: one mistake, one error.
    let misspelt_edge = cx.policy.flow().is_some_and(|(_, f)| {
        f.edges
            .iter()
            .any(|e| graph.index(&e.from.name).is_none() || graph.index(&e.to.name).is_none())
    });
    let mut out = missing_seed_phases(graph);
    if !misspelt_edge {
        out.extend(unreachable_phases(graph, &g));
        out.extend(stabilization_not_validated(graph, &g));
        out.extend(continuity_unreachable(graph, &g));
    }
    out.extend(missing_failure_edges(cx, graph));
    out.extend(unbounded_cycles(graph, &g));
    out
}

/// PMF507: the policy, with its parents, has no flow.
fn missing_flow(cx: &Context<'_>) -> Diagnostic {
    Diagnostic::new(
        Code::MissingFlow,
        &cx.policy.file,
        cx.policy.header_span,
        format!("policy `{}` has no flow", cx.policy.name),
    )
    .with_label("no `flow` here or in any parent")
    .with_help(
        "add `extends kwanus` to inherit the six-step flow, or declare `flow NAME { phase ... }`",
    )
}

/// PMF501: a seed phase the flow does not declare.
fn missing_seed_phases(graph: &PhaseGraph) -> Vec<Diagnostic> {
    let file = graph.file.as_str();
    SEED_PHASES
        .iter()
        .copied()
        .filter(|p| graph.index(p).is_none())
        .map(|p| {
            Diagnostic::new(Code::MissingSeedPhase, file, graph.name_span, format!("flow `{}` has no `{p}` phase", graph.name))
                .with_label(format!("`{p}` is missing"))
                .with_help(format!(
                    "the seed's six steps are detection, preparation, transition, validation, stabilization, continuity; add `phase {p}`"
                ))
        })
        .collect()
}

/// PMF502: a phase no edge path leads to from `detection`.
fn unreachable_phases(graph: &PhaseGraph, g: &DiGraph<usize, usize>) -> Vec<Diagnostic> {
    let Some(det) = graph.phase(Phase::Detection) else {
        return Vec::new();
    };
    let file = graph.file.as_str();
    let reached = reached_from(g, det, graph.phases.len());
    let mut out = Vec::new();
    for (phase, r) in graph.phases.iter().zip(&reached) {
        if !r {
            out.push(
                Diagnostic::new(
                    Code::UnreachablePhase,
                    file,
                    phase.span,
                    format!("phase `{}` is unreachable from detection", phase.name),
                )
                .with_label("no edge path leads here from `detection`")
                .with_help(format!(
                    "add an edge into `{}`, or remove the phase",
                    phase.name
                )),
            );
        }
    }
    out
}

/// PMF504: a path from `detection` into `stabilization` that skips
/// `validation`.
fn stabilization_not_validated(
    graph: &PhaseGraph,
    g: &DiGraph<usize, usize>,
) -> Option<Diagnostic> {
    let det = graph.phase(Phase::Detection)?;
    let (val, stab) = (
        graph.phase(Phase::Validation)?,
        graph.phase(Phase::Stabilization)?,
    );
    let file = graph.file.as_str();
    let doms = dominators::simple_fast(g, NodeIndex::new(det));
    let (val_span, stab_span) = (graph.phases.get(val)?.span, graph.phases.get(stab)?.span);
    let dominated = doms
        .dominators(NodeIndex::new(stab))
        .is_none_or(|mut it| it.any(|n| n.index() == val));
    if dominated {
        return None;
    }
    let path = bypass(graph, det, val, stab);
    let names: Vec<&str> = path.iter().map(|&i| graph.name(i)).collect();
    // The edge into stabilization on that path skips validation.
    let last = match path.as_slice() {
        [.., u, v] => graph.edges.iter().find(|e| e.from == *u && e.to == *v),
        _ => None,
    };
    let d = match last {
        Some(edge) => Diagnostic::new(
            Code::StabilizationNotValidated,
            file,
            edge.span,
            "stabilization can be reached without passing validation",
        )
        .with_label(format!(
            "this edge leads into `stabilization` from `{}`, which `validation` does not precede",
            graph.name(edge.from)
        ))
        .with_secondary(file, stab_span, "reached on a path that skips `validation`"),
        None => Diagnostic::new(
            Code::StabilizationNotValidated,
            file,
            stab_span,
            "stabilization can be reached without passing validation",
        )
        .with_label("reachable on a path that skips `validation`"),
    };
    Some(
        d.with_secondary(file, val_span, "validation must come first")
            .with_help(format!(
                "remove this edge, or lead it through `validation`: the path {} skips it",
                names.join(" -> ")
            )),
    )
}

/// PMF503: a phase from which no edge path leads to `continuity`.
fn continuity_unreachable(graph: &PhaseGraph, g: &DiGraph<usize, usize>) -> Vec<Diagnostic> {
    let Some(cont) = graph.phase(Phase::Continuity) else {
        return Vec::new();
    };
    let file = graph.file.as_str();
    let reached = reached_from(Reversed(g), cont, graph.phases.len());
    let mut out = Vec::new();
    for (phase, r) in graph.phases.iter().zip(&reached) {
        if !r {
            out.push(
                Diagnostic::new(
                    Code::ContinuityUnreachable,
                    file,
                    phase.span,
                    format!("continuity is unreachable from phase `{}`", phase.name),
                )
                .with_label("a partner entering this phase can never resume")
                .with_help(format!(
                    "add an edge from `{}` toward `continuity`",
                    phase.name
                )),
            );
        }
    }
    out
}

/// PMF505: a fallible phase with no failure edge.
fn missing_failure_edges(cx: &Context<'_>, graph: &PhaseGraph) -> Vec<Diagnostic> {
    let file = graph.file.as_str();
    // Failure edges as written (one to an unknown phase is reported as such).
    let written_failures: Vec<&str> = cx
        .policy
        .flow()
        .map(|(_, f)| {
            f.edges
                .iter()
                .filter(|e| e.kind == EdgeKind::Failure)
                .map(|e| e.from.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    // A new failure edge goes after the flow's last edge, to `fallback`
    // when the flow has that phase.
    let last_edge = cx
        .policy
        .flow()
        .filter(|(s, _)| *s.file == *file)
        .and_then(|(_, f)| f.edges.iter().map(|e| e.span).max_by_key(|s| s.end));
    let has_fallback = graph.phase(Phase::Fallback).is_some();
    let mut out = Vec::new();
    for p in &graph.phases {
        if p.fallible && !written_failures.contains(&p.name.as_str()) {
            let help = if has_fallback {
                format!("add `{} fail -> fallback`", p.name)
            } else {
                format!(
                    "add `{} fail -> PHASE`, where PHASE returns the partner to its previous stable state",
                    p.name
                )
            };
            let fix = last_edge.filter(|_| has_fallback).map(|at| {
                Fix::certain(
                    Place {
                        start: at.end,
                        end: at.end,
                    },
                    format!("\n  {} fail -> fallback", p.name),
                )
            });
            out.push(
                Diagnostic::new(
                    Code::MissingFailureEdge,
                    file,
                    p.span,
                    format!("fallible phase `{}` has no failure edge", p.name),
                )
                .with_label("where does a partner go when this fails?")
                .with_help(help)
                .with_fixes(fix),
            );
        }
    }
    out
}

/// PMF506: a cycle that takes no bounded edge.
fn unbounded_cycles(graph: &PhaseGraph, g: &DiGraph<usize, usize>) -> Vec<Diagnostic> {
    let file = graph.file.as_str();
    // A cycle is bounded when it takes a bounded edge: the cycles that
    // remain among the unbounded edges alone are the unbounded ones (a
    // bounded edge beside a cycle, in the same strongly connected part,
    // bounds nothing on it).
    let unbounded = g.filter_map(
        |_, n| Some(*n),
        |_, &e| {
            graph
                .edges
                .get(e)
                .is_some_and(|x| x.bound.is_none())
                .then_some(e)
        },
    );
    let mut out = Vec::new();
    for scc in tarjan_scc(&unbounded) {
        let members: Vec<usize> = scc.iter().map(|n| n.index()).collect();
        let internal: Vec<usize> = members
            .iter()
            .flat_map(|&m| unbounded.edges_directed(NodeIndex::new(m), Direction::Outgoing))
            .filter(|e| members.contains(&e.target().index()))
            .map(|e| *e.weight())
            .collect();
        let Some(edge) = internal
            .iter()
            .filter_map(|&e| graph.edges.get(e))
            .max_by_key(|e| e.span.start)
        else {
            continue;
        };
        let mut names: Vec<&str> = members.iter().map(|&m| graph.name(m)).collect();
        names.sort_unstable();
        let arrow = if edge.kind == EdgeKind::Failure {
            " fail -> "
        } else {
            " -> "
        };
        let written = format!("{}{arrow}{}", graph.name(edge.from), graph.name(edge.to));
        out.push(
            Diagnostic::new(
                Code::UnboundedCycle,
                file,
                edge.span,
                format!(
                    "cycle through {} has no bound",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_label("this edge closes the cycle")
            .with_help(format!("bound it: `{written} max 3`"))
            .with_fix(Fix::certain(
                Place {
                    start: edge.span.end,
                    end: edge.span.end,
                },
                " max 3",
            )),
        );
    }
    out
}

/// Which of the `phases` phases an edge path in `g` reaches from `start`.
fn reached_from<G>(g: G, start: usize, phases: usize) -> Vec<bool>
where
    G: IntoNeighbors<NodeId = NodeIndex> + Visitable<NodeId = NodeIndex>,
{
    let mut reached = vec![false; phases];
    let mut bfs = Bfs::new(g, NodeIndex::new(start));
    while let Some(n) = bfs.next(g) {
        if let Some(r) = reached.get_mut(n.index()) {
            *r = true;
        }
    }
    reached
}

/// A path from `from` to `to` that avoids `avoid`, as phase indices.
fn bypass(graph: &PhaseGraph, from: usize, avoid: usize, to: usize) -> Vec<usize> {
    // Phase → the phase it was reached from (the start: itself).
    let mut prev: std::collections::HashMap<usize, usize> = [(from, from)].into();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(u) = queue.pop_front() {
        if u == to {
            break;
        }
        for e in graph.outgoing(u) {
            if e.to != avoid && !prev.contains_key(&e.to) {
                prev.insert(e.to, u);
                queue.push_back(e.to);
            }
        }
    }
    let mut path = vec![to];
    let mut cur = to;
    while let Some(&p) = prev.get(&cur).filter(|&&p| p != cur) {
        cur = p;
        path.push(cur);
    }
    path.reverse();
    path
}
