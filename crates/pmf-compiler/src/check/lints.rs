//! Lints (warnings) about what a file itself declares: phases without a
//! rite, unused declarations and validation dimensions without checks.
//!
//! Each code has its own function; [`check`] runs them in a fixed order.

use rustc_hash::FxHashSet as HashSet;

use crate::graph::PhaseGraph;
use crate::model::{DIMENSIONS, EffectivePolicy, ItemNode};
#[cfg(test)]
use pmf_syntax::ast::ExprKind;
use pmf_syntax::ast::MigrationItemKind;
use pmf_syntax::diagnostics::{Code, Diagnostic};

/// Run the lints for the items `file` declares (they read the policy
/// alone, none of the name indexes of the checks' `Context`).
pub(crate) fn check(
    policy: &EffectivePolicy,
    graph: Option<&PhaseGraph>,
    file: &str,
) -> Vec<Diagnostic> {
    let mut out = phases_without_rite(graph, file);
    out.extend(unused_declarations(policy, file));
    out.extend(dimensions_not_covered(policy, file));
    out
}

/// PMF901: a phase of the file's flow that has no rite.
fn phases_without_rite(graph: Option<&PhaseGraph>, file: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(g) = graph.filter(|g| g.file == file) {
        for p in &g.phases {
            if p.rite.is_none() {
                out.push(
                    Diagnostic::new(
                        Code::MissingRite,
                        file,
                        p.span,
                        format!("phase `{}` has no rite", p.name),
                    )
                    .with_label("entered in silence")
                    .with_help(format!(
                        "add `rite {} \"...\"` with the words spoken when a partner enters it",
                        p.name
                    )),
                );
            }
        }
    }
    out
}

/// PMF902: an authority of the file that governs and approves nothing, or
/// a partner field that nothing reads.
fn unused_declarations(policy: &EffectivePolicy, file: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let approvers: HashSet<&str> = policy
        .migrations()
        .flat_map(|(_, m)| m.items.iter())
        .filter_map(|i| match &i.kind {
            MigrationItemKind::Approve(Some(list)) => Some(list.iter().map(|a| a.name.as_str())),
            _ => None,
        })
        .flatten()
        .collect();
    for (s, a) in policy.authorities().filter(|(s, _)| *s.file == *file) {
        if a.governs.is_empty() && !approvers.contains(a.name.name.as_str()) {
            out.push(
                Diagnostic::new(
                    Code::UnusedDeclaration,
                    &s.file,
                    a.name.span,
                    format!(
                        "authority `{}` governs nothing and approves nothing",
                        a.name.name
                    ),
                )
                .with_label("unused authority")
                .with_help(
                    "give it categories with `governs`, name it in an `approve by`, or remove it"
                        .to_string(),
                ),
            );
        }
    }

    let used = used_fields(policy);
    for (s, f) in policy.fields().filter(|(s, _)| *s.file == *file) {
        if f.name.name != "id" && !used.contains(f.name.name.as_str()) {
            out.push(
                Diagnostic::new(
                    Code::UnusedDeclaration,
                    &s.file,
                    f.name.span,
                    format!("partner field `{}` is never used", f.name.name),
                )
                .with_label("no rule, check, category, factor or ceiling reads it")
                .with_help(format!(
                    "use it (e.g. in a category's `covers` or a rule `partner.{}`), or remove it",
                    f.name.name
                )),
            );
        }
    }
    out
}

/// PMF903: a validation dimension the file's policy has no checks for.
fn dimensions_not_covered(policy: &EffectivePolicy, file: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if policy.file == file {
        let covered: HashSet<&str> = policy.checks().map(|(_, d, _)| d.name.as_str()).collect();
        let validation_span = policy
            .items
            .iter()
            .find(|s| *s.file == *file && matches!(s.node, ItemNode::Check(..)))
            .map(|s| match &s.node {
                ItemNode::Check(d, _) => d.span,
                _ => s.name_span,
            })
            .unwrap_or(policy.header_span);
        for d in DIMENSIONS {
            if !covered.contains(d) {
                out.push(
                    Diagnostic::new(Code::DimensionNotCovered, file, validation_span, format!("validation dimension `{d}` has no checks"))
                        .with_label("validation is incomplete")
                        .with_help(format!("add `validation {{ {d} {{ name: condition }} }}`; the seed validates all six dimensions before stabilization")),
                );
            }
        }
    }
    out
}

/// The fields the policy reads: what each of its items reads
/// ([`Sourced::reads`](crate::model::Sourced::reads), worked out when the
/// item was parsed).
fn used_fields(policy: &EffectivePolicy) -> HashSet<&str> {
    let mut used = HashSet::default();
    // Neighbouring items mostly read the same fields: a read equal to the
    // one before it is in the set already.
    let mut last = None;
    for read in policy.items.iter().flat_map(|s| s.reads.iter()) {
        let read = read.as_str();
        if last != Some(read) {
            used.insert(read);
            last = Some(read);
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: every field path of every expression, category and
    /// ceiling of the policy, walked again.
    fn walked(policy: &EffectivePolicy) -> HashSet<&str> {
        let mut used = HashSet::default();
        for (_, _, e) in policy.expressions() {
            let mut stack = vec![e];
            while let Some(e) = stack.pop() {
                match &e.kind {
                    ExprKind::Path(segs) if segs.len() >= 2 => {
                        if let Some(field) = segs.get(1) {
                            used.insert(field.name.as_str());
                        }
                    }
                    ExprKind::Unary(_, x) => stack.push(x),
                    ExprKind::Binary(_, a, b) => {
                        stack.push(a);
                        stack.push(b);
                    }
                    ExprKind::Call(call) => stack.extend(call.args.iter()),
                    ExprKind::Set(args) | ExprKind::Chain(_, args) => stack.extend(args.iter()),
                    _ => {}
                }
            }
        }
        for (_, c) in policy.categories() {
            used.extend(
                c.covers
                    .iter()
                    .filter_map(|p| p.segments.first())
                    .map(|s| s.name.as_str()),
            );
        }
        for (_, c) in policy.ceilings() {
            used.extend(c.field.segments.first().map(|s| s.name.as_str()));
        }
        used
    }

    #[test]
    fn the_fields_items_read_are_the_fields_a_walk_finds() {
        let mut checked = 0;
        for file in crate::test_files::policies(&["examples"]) {
            let (session, source) = crate::test_files::session_of(&file);
            let policy = &crate::db::resolve(session.db(), session.workspace, source).policy;
            if policy.items.is_empty() {
                continue;
            }
            assert_eq!(used_fields(policy), walked(policy), "{}", file.display());
            checked += 1;
        }
        assert!(checked >= 3, "only {checked} example policies");
    }
}
