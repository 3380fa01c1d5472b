//! Governance: every category is governed by exactly one authority, and the
//! approvals a migration asks for come from the authorities governing the
//! categories it can touch.
//!
//! Each code has its own function; [`check`] runs them in a fixed order.

use super::Context;
use crate::model::{ItemNode, Sourced};
use pmf_syntax::Place;
use pmf_syntax::ast::{Ident, Migration, MigrationItemKind};
use pmf_syntax::diagnostics::{Code, Diagnostic, Fix};

/// Run the governance checks.
pub(crate) fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let approvals = approvals(cx);
    let mut out = ungoverned_categories(cx);
    out.extend(doubly_governed_categories(cx));
    out.extend(approvers_governing_nothing_touched(cx, &approvals));
    out.extend(missing_approvers(cx, &approvals));
    out
}

/// PMF401: a category that no authority governs.
fn ungoverned_categories(cx: &Context<'_>) -> Vec<Diagnostic> {
    // Looked up once: per category it made many ungoverned categories
    // quadratic (every category walked every item).
    let first_authority = cx.authority_names().first().copied();
    cx.categories()
        .filter(|(_, c)| cx.governors_of(&c.name.name).is_empty())
        .map(|(s, c)| {
            dropped_by_override(cx, s, &c.name).unwrap_or_else(|| {
                let help = match first_authority {
                    Some(a) => format!(
                        "add `{}` to the `governs` list of an authority, such as `{a}`",
                        c.name.name
                    ),
                    None => format!("declare `authority NAME governs {}`", c.name.name),
                };
                Diagnostic::new(
                    Code::UngovernedCategory,
                    &s.file,
                    c.name.span,
                    format!("category `{}` is governed by no authority", c.name.name),
                )
                .with_label("no authority governs this")
                .with_help(help)
            })
        })
        .collect()
}

/// PMF402: a category in the `governs` lists of two or more authorities,
/// at each claim after the first.
fn doubly_governed_categories(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (_, c) in cx.categories() {
        let [first, rest @ ..] = cx.governors_of(&c.name.name) else {
            continue;
        };
        let (fs, fa, fg) = (first.item, first.authority, first.entry);
        for other in rest {
            let (os, oa, og) = (other.item, other.authority, other.entry);
            out.push(
                Diagnostic::new(
                    Code::DoublyGovernedCategory,
                    &os.file,
                    og.span,
                    format!(
                        "category `{}` is governed by both `{}` and `{}`",
                        c.name.name, fa.name.name, oa.name.name
                    ),
                )
                .with_label(format!("`{}` claims it here", oa.name.name))
                .with_secondary(&fs.file, fg.span, format!("`{}` already governs it", fa.name.name))
                .with_help(format!(
                    "keep `{}` in exactly one `governs` list (override the other authority if it is inherited)",
                    c.name.name
                )),
            );
        }
    }
    out
}

/// PMF401 at the `override authority` of this policy that no longer governs
/// `category`, which the definition it replaced governed.
fn dropped_by_override(cx: &Context<'_>, cat: &Sourced, category: &Ident) -> Option<Diagnostic> {
    let (old, old_entry) = cx.policy.overridden.iter().find_map(|o| match &o.node {
        ItemNode::Authority(a) => a
            .governs
            .iter()
            .find(|g| g.name == category.name)
            .map(|g| (o, g)),
        _ => None,
    })?;
    let (item, new) = cx
        .authorities()
        .find(|(s, _)| s.key == old.key && s.override_kw.is_some())?;
    let name = &new.name.name;
    let c = &category.name;
    let fix = match new.governs.last() {
        Some(last) => Fix::certain(
            Place {
                start: last.span.end,
                end: last.span.end,
            },
            format!(", {c}"),
        ),
        None => Fix::certain(
            Place {
                start: item.span.end,
                end: item.span.end,
            },
            format!(" governs {c}"),
        ),
    };
    Some(
        Diagnostic::new(
            Code::UngovernedCategory,
            &item.file,
            new.name.span,
            format!("category `{c}` is governed by no authority"),
        )
        .with_label(format!(
            "this `override` of `{name}` no longer governs `{c}`"
        ))
        .with_secondary(
            &old.file,
            old_entry.span,
            format!("the `{name}` it replaces governed `{c}`"),
        )
        .with_secondary(&cat.file, category.span, "no authority governs this")
        .with_help(format!(
            "add `{c}` to the `governs` list of `{name}` (or of another authority)"
        ))
        .with_fix(fix),
    )
}

/// Categories a migration can touch: its `touches` list, else all.
pub(crate) fn touched<'a>(cx: &Context<'a>, m: &'a Migration) -> Vec<&'a str> {
    let listed: Vec<&str> = m
        .items
        .iter()
        .filter_map(|i| match &i.kind {
            MigrationItemKind::Touches(c) => Some(c.iter().map(|c| c.name.as_str())),
            _ => None,
        })
        .flatten()
        .collect();
    if listed.is_empty() {
        cx.category_names().to_vec()
    } else {
        listed
    }
}

/// A migration type's approvals and what it can touch, collected once for
/// [`approvers_governing_nothing_touched`] and [`missing_approvers`].
struct Approval<'a> {
    file: &'a str,
    migration: &'a Migration,
    /// The `approve` item: its place and its approvers (none for
    /// `approve by governing`).
    approve: Option<(Place, &'a Option<Vec<Ident>>)>,
    /// The categories the migration can touch.
    touched: Vec<&'a str>,
}

impl Approval<'_> {
    /// The approvers named in the `approve` item, when every category the
    /// migration touches is declared: a name that is not a category is
    /// reported once (PMF102, with its fix), not again as an approver with
    /// no say over it.
    fn named(&self, cx: &Context<'_>) -> Option<(Place, &[Ident])> {
        match self.approve {
            Some((span, Some(approvers))) if self.touched.iter().all(|c| cx.has_category(c)) => {
                Some((span, approvers))
            }
            _ => None,
        }
    }
}

fn approvals<'a>(cx: &Context<'a>) -> Vec<Approval<'a>> {
    cx.migrations()
        .map(|(s, m)| Approval {
            file: &s.file,
            migration: m,
            approve: m.items.iter().find_map(|i| match &i.kind {
                MigrationItemKind::Approve(list) => Some((i.span, list)),
                _ => None,
            }),
            touched: touched(cx, m),
        })
        .collect()
}

/// PMF403: an approver that governs none of the categories the migration
/// can touch.
fn approvers_governing_nothing_touched(
    cx: &Context<'_>,
    approvals: &[Approval<'_>],
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for approval in approvals {
        let Some((_, approvers)) = approval.named(cx) else {
            continue;
        };
        let (file, m, touched) = (approval.file, approval.migration, &approval.touched);
        for a in approvers {
            let Some(auth) = cx.authority(&a.name) else {
                continue; // reported as unknown
            };
            if !auth
                .governs
                .iter()
                .any(|g| touched.contains(&g.name.as_str()))
            {
                out.push(
                    Diagnostic::new(
                        Code::ApproverGovernsNothingTouched,
                        file,
                        a.span,
                        format!(
                            "`{}` governs none of the categories migration `{}` can touch",
                            a.name, m.name.name
                        ),
                    )
                    .with_label("this approver has no say here")
                    .with_help(format!(
                        "remove `{}`, or let the migration touch one of its categories",
                        a.name
                    )),
                );
            }
        }
    }
    out
}

/// PMF404: a guided migration that asks for no approval, or a category the
/// migration can touch whose governing authority is not among its approvers.
fn missing_approvers(cx: &Context<'_>, approvals: &[Approval<'_>]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for approval in approvals {
        let (file, m, touched) = (approval.file, approval.migration, &approval.touched);
        if approval.approve.is_none() && m.name.name == "guided" {
            out.push(
                Diagnostic::new(
                    Code::MissingApprover,
                    file,
                    m.name.span,
                    "guided migration asks for no approval",
                )
                .with_label("governance oversight is part of a guided migration")
                .with_help(
                    "add `approve by governing` (or name the authorities: `approve by TSC, SCO`)",
                ),
            );
            continue;
        }
        let Some((span, approvers)) = approval.named(cx) else {
            continue;
        };
        // A name that is not an authority is reported once (PMF103, with
        // its fix), not again for every category it was meant to approve.
        if approvers.iter().any(|a| !cx.has_authority(&a.name)) {
            continue;
        }
        for c in touched {
            let governors: Vec<&str> = cx
                .governors_of(c)
                .iter()
                .map(|g| g.authority.name.name.as_str())
                .collect();
            let Some(&governor) = governors.first() else {
                continue; // PMF401 covers it
            };
            if !approvers
                .iter()
                .any(|a| governors.contains(&a.name.as_str()))
            {
                out.push(
                    Diagnostic::new(
                        Code::MissingApprover,
                        file,
                        span,
                        format!(
                            "migration `{}` can touch category `{c}` but no approver governs it",
                            m.name.name
                        ),
                    )
                    .with_label(format!("`{}` governs `{c}` and is missing here", governor))
                    .with_help(format!(
                        "add `{}` to the approvers, or write `approve by governing`",
                        governor
                    ))
                    .with_fixes(approvers.last().map(|last| {
                        Fix::certain(
                            Place {
                                start: last.span.end,
                                end: last.span.end,
                            },
                            format!(", {}", governor),
                        )
                    })),
                );
            }
        }
    }
    out
}
