//! Drawing a phase graph: Graphviz DOT, Mermaid (like the seed's diagrams)
//! and JSON.

use serde::Serialize;

use super::PhaseGraph;
use pmf_syntax::ast::EdgeKind;

/// `detection` → `Detection`, `at_risk` → `At Risk`.
pub fn title(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn escape_dot(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn escape_mermaid(s: &str) -> String {
    s.replace('"', "#quot;")
}

/// Graphviz DOT: phases as boxes labelled with their rite, failure edges
/// dashed, bounds as edge labels.
pub fn dot(g: &PhaseGraph) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
        escape_dot(&g.name)
    );
    for p in &g.phases {
        let mut label = title(&p.name);
        if let Some(r) = &p.rite {
            label.push_str(&format!("\\n“{}”", escape_dot(r)));
        }
        let extra = if p.fallible { ", peripheries=2" } else { "" };
        out.push_str(&format!(
            "  \"{}\" [label=\"{label}\"{extra}];\n",
            escape_dot(&p.name)
        ));
    }
    for e in &g.edges {
        let mut attrs = Vec::new();
        if e.kind == EdgeKind::Failure {
            attrs.push("style=dashed".to_string());
            attrs.push("color=firebrick".to_string());
            attrs.push("label=\"fail\"".to_string());
        }
        if let Some(b) = e.bound {
            attrs.push(format!("xlabel=\"max {b}\""));
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        out.push_str(&format!(
            "  \"{}\" -> \"{}\"{attrs};\n",
            escape_dot(g.name(e.from)),
            escape_dot(g.name(e.to))
        ));
    }
    out.push_str("}\n");
    out
}

/// Mermaid, drawn like the seed's diagrams (`graph LR`, titled nodes),
/// with failure edges dotted and each rite in its phase's node.
pub fn mermaid(g: &PhaseGraph) -> String {
    let mut out = String::from("graph LR\n");
    for p in &g.phases {
        let mut label = title(&p.name);
        if let Some(r) = &p.rite {
            label.push_str(&format!("<br/><i>{}</i>", escape_mermaid(r)));
        }
        out.push_str(&format!("    {}[\"{label}\"]\n", p.name));
    }
    for e in &g.edges {
        let (from, to) = (g.name(e.from), g.name(e.to));
        let line = match (e.kind, e.bound) {
            (EdgeKind::Next, None) => format!("    {from} --> {to}\n"),
            (EdgeKind::Next, Some(b)) => format!("    {from} -- \"max {b}\" --> {to}\n"),
            (EdgeKind::Failure, None) => format!("    {from} -. fail .-> {to}\n"),
            (EdgeKind::Failure, Some(b)) => format!("    {from} -. \"fail, max {b}\" .-> {to}\n"),
        };
        out.push_str(&line);
    }
    out
}

#[derive(Serialize)]
struct JsonPhase<'a> {
    name: &'a str,
    fallible: bool,
    description: Option<&'a str>,
    rite: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonEdge<'a> {
    from: &'a str,
    to: &'a str,
    kind: &'static str,
    bound: Option<u32>,
}

#[derive(Serialize)]
struct JsonGraph<'a> {
    format_version: u32,
    flow: &'a str,
    phases: Vec<JsonPhase<'a>>,
    edges: Vec<JsonEdge<'a>>,
}

/// The graph as one JSON document.
pub fn json(g: &PhaseGraph) -> String {
    let doc = JsonGraph {
        format_version: 1,
        flow: &g.name,
        phases: g
            .phases
            .iter()
            .map(|p| JsonPhase {
                name: &p.name,
                fallible: p.fallible,
                description: p.description.as_deref(),
                rite: p.rite.as_deref(),
            })
            .collect(),
        edges: g
            .edges
            .iter()
            .map(|e| JsonEdge {
                from: g.name(e.from),
                to: g.name(e.to),
                kind: if e.kind == EdgeKind::Failure {
                    "failure"
                } else {
                    "next"
                },
                bound: e.bound,
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}
