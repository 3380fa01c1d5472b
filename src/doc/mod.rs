//! `pmf doc`: a document a governance board reads, generated from the
//! policy — categories, types, the flow as an SVG diagram, the health table,
//! governance, rules, ceilings and rites, each linking back to its source
//! line. Markdown and HTML.

mod svg;

use std::fmt::Write;

use crate::graph::PhaseGraph;
use crate::graph::render::title;
use crate::model::{EffectivePolicy, Sourced};
use crate::syntax::PlacedTexts;
use crate::syntax::ast::{MigrationItemKind, RuleKind};

pub use svg::flow_svg;

/// Where a declaration is, for links.
pub struct SourceLink {
    /// Text shown, such as `policy.pmf:12`.
    pub label: String,
    /// Link target (relative to the output directory), if the file exists on disk.
    pub href: Option<String>,
}

/// Everything the document is made from.
pub struct DocInput<'a> {
    /// The effective policy.
    pub policy: &'a EffectivePolicy,
    /// Its phase graph.
    pub graph: &'a PhaseGraph,
    /// Source texts by file path, with where their stable places are.
    pub sources: &'a PlacedTexts,
    /// Turns a file and line into a link.
    pub link: &'a dyn Fn(&str, usize) -> SourceLink,
    /// The policy's hash: what plans pin, approvals sign for, and a
    /// project pins as its trust root.
    pub hash: &'a str,
}

/// A block of the document: heading and rows.
struct Section {
    title: &'static str,
    intro: String,
    header: Vec<&'static str>,
    rows: Vec<(Vec<String>, SourceLink)>,
}

impl DocInput<'_> {
    fn line(&self, item: &Sourced) -> usize {
        self.sources.line(&item.file, item.span)
    }

    fn link_of(&self, item: &Sourced) -> SourceLink {
        (self.link)(&item.file, self.line(item))
    }

    fn text(&self, file: &str, span: crate::syntax::Place) -> String {
        let mut out = String::new();
        crate::model::compose::normalize(
            self.sources.text(file).unwrap_or(""),
            self.sources.bytes(file, span),
            |c| out.push(c),
        );
        out
    }

    fn sections(&self) -> Vec<Section> {
        let p = self.policy;
        let mut out = Vec::new();
        let governor = |cat: &str| {
            p.authorities()
                .filter(|(_, a)| a.governs.iter().any(|g| g.name == cat))
                .map(|(_, a)| a.name.name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(Section {
            title: "Migration categories",
            intro: "What a change touches decides which authority approves it.".into(),
            header: vec!["Category", "Name", "Covers", "Governed by"],
            rows: p
                .categories()
                .map(|(s, c)| {
                    (
                        vec![
                            c.name.name.to_string(),
                            c.title
                                .as_ref()
                                .map(|t| t.value.clone())
                                .unwrap_or_default(),
                            c.covers
                                .iter()
                                .map(|f| f.dotted())
                                .collect::<Vec<_>>()
                                .join(", "),
                            governor(&c.name.name),
                        ],
                        self.link_of(s),
                    )
                })
                .collect(),
        });
        out.push(Section {
            title: "Governance",
            intro: "Each category is governed by exactly one authority.".into(),
            header: vec!["Authority", "Name", "Governs"],
            rows: p
                .authorities()
                .map(|(s, a)| {
                    (
                        vec![
                            a.name.name.to_string(),
                            a.title
                                .as_ref()
                                .map(|t| t.value.clone())
                                .unwrap_or_default(),
                            a.governs
                                .iter()
                                .map(|g| g.name.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                        ],
                        self.link_of(s),
                    )
                })
                .collect(),
        });
        if p.keys().next().is_some() {
            out.push(Section {
                title: "Approval keys",
                intro: "An approval counts only when it is signed with a key declared here for its authority.".into(),
                header: vec!["Authority", "Public key", "Held by"],
                rows: p
                    .keys()
                    .map(|(s, k)| {
                        (
                            vec![
                                k.authority.name.to_string(),
                                k.key.value.clone(),
                                k.label
                                    .as_ref()
                                    .map(|l| l.value.clone())
                                    .unwrap_or_default(),
                            ],
                            self.link_of(s),
                        )
                    })
                    .collect(),
            });
        }
        let order = p.order().map(|(_, o)| {
            o.types
                .iter()
                .map(|t| t.name.to_string())
                .collect::<Vec<_>>()
                .join(" → ")
        });
        out.push(Section {
            title: "Migration types",
            intro: match order {
                Some(o) => format!("Detection tries the types in this order: {o}."),
                None => "Detection tries the types in declaration order.".into(),
            },
            header: vec!["Type", "Name", "Detected when", "Requirements"],
            rows: p
                .migrations()
                .map(|(s, m)| {
                    let mut when = String::new();
                    let mut reqs = Vec::new();
                    for item in &m.items {
                        match &item.kind {
                            MigrationItemKind::When(e) => when = self.text(&s.file, e.span),
                            MigrationItemKind::Reversible => reqs.push("reversible".to_string()),
                            MigrationItemKind::BackwardCompatible => {
                                reqs.push("backward compatible".into())
                            }
                            MigrationItemKind::RequiresMapping => {
                                reqs.push("compatibility mapping".into())
                            }
                            MigrationItemKind::Approve(None) => {
                                reqs.push("approval by the governing authorities".into())
                            }
                            MigrationItemKind::Approve(Some(l)) => reqs.push(format!(
                                "approval by {}",
                                l.iter()
                                    .map(|a| a.name.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                            MigrationItemKind::Touches(l) => reqs.push(format!(
                                "touches {}",
                                l.iter()
                                    .map(|a| a.name.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                            MigrationItemKind::To(None) => {
                                reqs.push("returns to the previous stable version".into())
                            }
                            MigrationItemKind::To(Some(e)) => {
                                reqs.push(format!("to {}", self.text(&s.file, e.span)))
                            }
                        }
                    }
                    (
                        vec![
                            m.name.name.to_string(),
                            m.title
                                .as_ref()
                                .map(|t| t.value.clone())
                                .unwrap_or_default(),
                            when,
                            reqs.join("; "),
                        ],
                        self.link_of(s),
                    )
                })
                .collect(),
        });
        out.push(Section {
            title: "The flow",
            intro: format!(
                "Flow “{}”: every partner walks these phases; the rite is spoken on entering each.",
                self.graph.name
            ),
            header: vec!["Phase", "Can fail", "What happens", "Rite"],
            rows: self
                .graph
                .phases
                .iter()
                .map(|ph| {
                    let line = self.sources.line(&self.graph.file, ph.span);
                    (
                        vec![
                            title(&ph.name),
                            if ph.fallible {
                                "yes".into()
                            } else {
                                String::new()
                            },
                            ph.description.clone().unwrap_or_default(),
                            ph.rite
                                .clone()
                                .map(|r| format!("“{r}”"))
                                .unwrap_or_default(),
                        ],
                        (self.link)(&self.graph.file, line),
                    )
                })
                .collect(),
        });
        if let Some((s, h)) = p.health() {
            let factors: Vec<String> = h
                .factors
                .iter()
                .map(|f| {
                    format!(
                        "{} × {} ({})",
                        f.weight.value.0,
                        f.name.name,
                        self.text(&s.file, f.source.span)
                    )
                })
                .collect();
            out.push(Section {
                title: "Migration health",
                intro: format!("Health score = {}.", factors.join(" + ")),
                header: vec!["Health score", "Status", "Action", "Meaning"],
                rows: h
                    .bands
                    .iter()
                    .map(|b| {
                        (
                            vec![
                                format!("{}–{}", b.low.value.0, b.high.value.0),
                                b.status_label
                                    .as_ref()
                                    .map_or_else(|| title(&b.status.name), |l| l.value.clone()),
                                b.action.name.to_string(),
                                b.label
                                    .as_ref()
                                    .map(|l| l.value.clone())
                                    .unwrap_or_default(),
                            ],
                            self.link_of(s),
                        )
                    })
                    .collect(),
            });
        }
        for (kind, title_text, intro) in [
            (
                RuleKind::Compatibility,
                "Compatibility rules",
                "Every rule must hold; a failure triggers its action.",
            ),
            (
                RuleKind::Sustainability,
                "Sustainability rules",
                "Metric collapse triggers a forced migration or throttling.",
            ),
        ] {
            out.push(Section {
                title: title_text,
                intro: intro.into(),
                header: vec!["Rule", "Must hold", "Otherwise"],
                rows: p
                    .rules()
                    .filter(|(_, k, _)| *k == kind)
                    .map(|(s, _, r)| {
                        (
                            vec![
                                r.name.name.to_string(),
                                self.text(&s.file, r.condition.span),
                                r.action.name.to_string(),
                            ],
                            self.link_of(s),
                        )
                    })
                    .collect(),
            });
        }
        out.push(Section {
            title: "Validation",
            intro: "Every check must pass before stabilization is finalized.".into(),
            header: vec!["Dimension", "Check", "Must hold"],
            rows: p
                .checks()
                .map(|(s, d, c)| {
                    (
                        vec![
                            d.name.to_string(),
                            c.name.name.to_string(),
                            self.text(&s.file, c.condition.span),
                        ],
                        self.link_of(s),
                    )
                })
                .collect(),
        });
        out.push(Section {
            title: "Ceilings",
            intro: "Bounds kept during every shift.".into(),
            header: vec!["Field", "Bound"],
            rows: p
                .ceilings()
                .map(|(s, c)| {
                    (
                        vec![
                            c.field.dotted(),
                            format!("{} {}", c.op.symbol(), self.text(&s.file, c.value.span)),
                        ],
                        self.link_of(s),
                    )
                })
                .collect(),
        });
        out.push(Section {
            title: "Rites",
            intro: "Migration evolution is ritualized.".into(),
            header: vec!["Rite of", "Words"],
            rows: p
                .rites()
                .map(|(s, r)| {
                    (
                        vec![title(&r.phase.name), format!("“{}”", r.words.value)],
                        self.link_of(s),
                    )
                })
                .collect(),
        });
        out
    }
}

/// What the document calls the policy's hash, and what it says of it.
const HASH_LABEL: &str = "Policy hash";
const HASH_NOTE: &str = "Every plan made under this policy pins it, and every approval of such a plan is an approval under it; a project pins the policy its stores are governed by first as `[trust] root_policy` in its pmf.toml.";

/// The document as Markdown (the diagram is the file `flow.svg` beside it).
pub fn markdown(input: &DocInput<'_>) -> String {
    let p = input.policy;
    let mut out = format!("# Migration policy `{}`\n\n", p.name);
    let _ = writeln!(
        out,
        "Generated by `pmf doc`. Every row links to the line of the policy that says it.\n"
    );
    let _ = writeln!(out, "{HASH_LABEL} `{}`. {HASH_NOTE}\n", input.hash);
    for s in input.sections() {
        let _ = writeln!(out, "## {}\n\n{}\n", s.title, s.intro);
        if s.title == "The flow" {
            out.push_str("![The flow](flow.svg)\n\n");
        }
        if s.rows.is_empty() {
            out.push_str("_None declared._\n\n");
            continue;
        }
        let _ = writeln!(out, "| {} | Source |", s.header.join(" | "));
        let _ = writeln!(out, "|{}---|", "---|".repeat(s.header.len()));
        for (cells, link) in &s.rows {
            // Text from the policy (a rite's words, a label, an expression):
            // escaped, so that markup in it never becomes HTML where the
            // document is published (many renderers pass raw HTML through).
            let cells: Vec<String> = cells
                .iter()
                .map(|c| crate::cli::view::md(&c.replace('\n', " ")))
                .collect();
            let src = match &link.href {
                Some(h) => format!("[{}]({h})", link.label),
                None => link.label.clone(),
            };
            let _ = writeln!(out, "| {} | {src} |", cells.join(" | "));
        }
        out.push('\n');
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The document as one self-contained HTML page (the diagram inline).
pub fn html(input: &DocInput<'_>) -> String {
    let p = input.policy;
    let mut out =
        String::from("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(out, "<title>Migration policy {}</title>", esc(&p.name));
    out.push_str("<style>body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}th,td{border:1px solid #ccc;padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}code{background:#f6f6f6}.src{font-size:.85em;white-space:nowrap}</style>\n</head>\n<body>\n");
    let _ = writeln!(
        out,
        "<h1>Migration policy <code>{}</code></h1>",
        esc(&p.name)
    );
    out.push_str("<p>Generated by <code>pmf doc</code>. Every row links to the line of the policy that says it.</p>\n");
    let _ = writeln!(
        out,
        "<p>{HASH_LABEL} <code>{}</code>. {}</p>",
        esc(input.hash),
        esc(HASH_NOTE)
    );
    for s in input.sections() {
        let _ = writeln!(out, "<h2>{}</h2>\n<p>{}</p>", esc(s.title), esc(&s.intro));
        if s.title == "The flow" {
            out.push_str(&flow_svg(input.graph));
        }
        if s.rows.is_empty() {
            out.push_str("<p><em>None declared.</em></p>\n");
            continue;
        }
        out.push_str("<table>\n<tr>");
        for h in &s.header {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("<th>Source</th></tr>\n");
        for (cells, link) in &s.rows {
            out.push_str("<tr>");
            for c in cells {
                let _ = write!(out, "<td>{}</td>", esc(c));
            }
            let src = match &link.href {
                Some(h) => format!("<a href=\"{}\">{}</a>", esc(h), esc(&link.label)),
                None => esc(&link.label),
            };
            let _ = write!(out, "<td class=\"src\">{src}</td>");
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    // Proof that the diagram is drawn, for readers' browsers and for tests
    // (headless Chromium): phases counted, bounding box measured.
    out.push_str("<script>\n(function () {\n  var svg = document.querySelector('svg.flow');\n  var phases = svg ? svg.querySelectorAll('g.phase').length : 0;\n  var width = svg ? svg.getBBox().width : 0;\n  document.body.setAttribute('data-flow-phases', String(phases));\n  document.body.setAttribute('data-flow-drawn', phases > 0 && width > 0 ? 'yes' : 'no');\n  if (!(phases > 0 && width > 0)) { console.error('the flow diagram was not drawn'); }\n})();\n</script>\n</body>\n</html>\n");
    out
}
