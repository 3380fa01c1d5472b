//! The phase graph: a policy's flow compiled to a petgraph graph, with the
//! rite of each phase attached. The checker proves its properties; the
//! runtime walks it.

pub mod render;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::EffectivePolicy;
use pmf_syntax::Place;
use pmf_syntax::ast::EdgeKind;

/// A phase of the compiled flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    /// Phase name.
    pub name: String,
    /// True when the phase can fail.
    pub fallible: bool,
    /// What happens in the phase.
    pub description: Option<String>,
    /// The words spoken on entering the phase.
    pub rite: Option<String>,
    /// Where the phase is declared.
    pub span: Place,
}

/// An edge of the compiled flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Index of the source phase.
    pub from: usize,
    /// Index of the target phase.
    pub to: usize,
    /// Success or failure edge.
    pub kind: EdgeKind,
    /// How often it may be taken for one partner.
    pub bound: Option<u32>,
    /// Where the edge is written.
    pub span: Place,
}

/// The compiled flow of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseGraph {
    /// The flow's name.
    pub name: String,
    /// The file that declares the flow.
    pub file: String,
    /// Where the flow's name is written.
    pub name_span: Place,
    /// Phases in declaration order.
    pub phases: Vec<Phase>,
    /// Edges whose ends are declared phases.
    pub edges: Vec<Edge>,
}

impl PhaseGraph {
    /// Compile the flow of `policy`, if it has one.
    pub fn build(policy: &EffectivePolicy) -> Option<PhaseGraph> {
        let (s, flow) = policy.flow()?;
        let mut phases: Vec<Phase> = Vec::new();
        for p in &flow.phases {
            if phases.iter().any(|q| q.name == p.name.name) {
                continue;
            }
            let rite = policy
                .rites()
                .find(|(_, r)| r.phase.name == p.name.name)
                .map(|(_, r)| r.words.value.clone());
            phases.push(Phase {
                name: p.name.name.to_string(),
                fallible: p.fallible,
                description: p.description.as_ref().map(|d| d.value.clone()),
                rite,
                span: p.name.span,
            });
        }
        let find = |n: &str| phases.iter().position(|p| p.name == n);
        let edges = flow
            .edges
            .iter()
            .filter_map(|e| {
                Some(Edge {
                    from: find(&e.from.name)?,
                    to: find(&e.to.name)?,
                    kind: e.kind,
                    bound: e
                        .bound
                        .as_ref()
                        .map(|b| b.value.0.clamp(0.0, u32::MAX as f64) as u32),
                    span: e.span,
                })
            })
            .collect();
        Some(PhaseGraph {
            name: flow.name.name.to_string(),
            file: s.file.to_string(),
            name_span: flow.name.span,
            phases,
            edges,
        })
    }

    /// Index of the phase called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.phases.iter().position(|p| p.name == name)
    }

    /// The graph as petgraph sees it: node `i` is phase `i`, edge weights
    /// are indices into [`PhaseGraph::edges`].
    pub(crate) fn petgraph(&self) -> DiGraph<usize, usize> {
        let mut g = DiGraph::with_capacity(self.phases.len(), self.edges.len());
        for i in 0..self.phases.len() {
            g.add_node(i);
        }
        for (i, e) in self.edges.iter().enumerate() {
            g.add_edge(NodeIndex::new(e.from), NodeIndex::new(e.to), i);
        }
        g
    }

    /// Index of the phase `phase` (a phase the runtime gives a meaning).
    pub fn phase(&self, phase: crate::model::vocabulary::Phase) -> Option<usize> {
        self.index(phase.as_str())
    }

    /// The name of phase `i` (empty for an index the graph does not have).
    pub fn name(&self, i: usize) -> &str {
        self.phases.get(i).map_or("", |p| p.name.as_str())
    }

    /// Edges leaving phase `i`.
    pub fn outgoing(&self, i: usize) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| e.from == i)
    }
}
