//! Lints (warnings) about what a file itself declares: phases without a
//! rite, unused declarations and validation dimensions without checks.
//!
//! Each code has its own function; [`check`] runs them in a fixed order.

use rustc_hash::FxHashSet as HashSet;

use crate::graph::PhaseGraph;
use crate::model::{DIMENSIONS, EffectivePolicy, ItemNode, Sourced};
use pmf_syntax::Place;
#[cfg(test)]
use pmf_syntax::ast::ExprKind;
use pmf_syntax::ast::{Authority, FieldDecl, MigrationItemKind};
use pmf_syntax::diagnostics::{Code, Diagnostic};

/// Run the lints for the items `file` declares (they read the policy
/// alone, none of the name indexes of the checks' `Context`).
pub(crate) fn check(
    policy: &EffectivePolicy,
    graph: Option<&PhaseGraph>,
    file: &str,
) -> Vec<Diagnostic> {
    let seen = Seen::of(policy, file);
    let mut out = phases_without_rite(graph, file);
    out.extend(unused_declarations(&seen));
    out.extend(dimensions_not_covered(policy, &seen, file));
    out
}

/// What the lints read of a policy, gathered in one pass over its items
/// (it has tens of thousands; a pass per lint was most of their time).
struct Seen<'a> {
    /// The authorities named in an `approve by`.
    approvers: HashSet<&'a str>,
    /// The file's own authorities, in order.
    authorities: Vec<(&'a Sourced, &'a Authority)>,
    /// The file's own partner fields, in order.
    fields: Vec<(&'a Sourced, &'a FieldDecl)>,
    /// The fields the policy reads: what each of its items reads
    /// ([`Sourced::reads`], worked out when the item was parsed).
    used: HashSet<&'a str>,
    /// The validation dimensions with checks.
    covered: HashSet<&'a str>,
    /// Where the file's first validation check names its dimension.
    validation_span: Option<Place>,
}

impl<'a> Seen<'a> {
    fn of(policy: &'a EffectivePolicy, file: &str) -> Self {
        let mut seen = Seen {
            approvers: HashSet::default(),
            authorities: Vec::new(),
            fields: Vec::new(),
            used: HashSet::default(),
            covered: HashSet::default(),
            validation_span: None,
        };
        // Neighbouring items mostly read the same fields: a read equal to
        // the one before it is in the set already.
        let mut last = None;
        for s in &policy.items {
            let s: &'a Sourced = s;
            for read in s.reads.iter() {
                let read = read.as_str();
                if last != Some(read) {
                    seen.used.insert(read);
                    last = Some(read);
                }
            }
            match &s.node {
                ItemNode::Migration(m) => {
                    for i in &m.items {
                        if let MigrationItemKind::Approve(Some(list)) = &i.kind {
                            seen.approvers.extend(list.iter().map(|a| a.name.as_str()));
                        }
                    }
                }
                ItemNode::Authority(a) if *s.file == *file => seen.authorities.push((s, a)),
                ItemNode::Field(f) if *s.file == *file => seen.fields.push((s, f)),
                ItemNode::Check(d, _) => {
                    seen.covered.insert(d.name.as_str());
                    if seen.validation_span.is_none() && *s.file == *file {
                        seen.validation_span = Some(d.span);
                    }
                }
                _ => {}
            }
        }
        seen
    }
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
fn unused_declarations(seen: &Seen<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (s, a) in &seen.authorities {
        if a.governs.is_empty() && !seen.approvers.contains(a.name.name.as_str()) {
            out.push(unused_authority(s, a));
        }
    }
    for (s, f) in &seen.fields {
        if f.name.name != "id" && !seen.used.contains(f.name.name.as_str()) {
            out.push(unused_field(s, f));
        }
    }
    out
}

/// PMF903: a validation dimension the file's policy has no checks for.
fn dimensions_not_covered(
    policy: &EffectivePolicy,
    seen: &Seen<'_>,
    file: &str,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if policy.file == file {
        let validation_span = seen.validation_span.unwrap_or(policy.header_span);
        for d in DIMENSIONS {
            if !seen.covered.contains(d) {
                out.push(dimension_not_covered(file, validation_span, d));
            }
        }
    }
    out
}

/// PMF902 for authority `a`.
fn unused_authority(s: &Sourced, a: &Authority) -> Diagnostic {
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
        "give it categories with `governs`, name it in an `approve by`, or remove it".to_string(),
    )
}

/// PMF902 for partner field `f`.
fn unused_field(s: &Sourced, f: &FieldDecl) -> Diagnostic {
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
    ))
}

/// PMF903 for dimension `d`, placed at `span`.
fn dimension_not_covered(file: &str, span: Place, d: &str) -> Diagnostic {
    Diagnostic::new(
        Code::DimensionNotCovered,
        file,
        span,
        format!("validation dimension `{d}` has no checks"),
    )
    .with_label("validation is incomplete")
    .with_help(format!(
        "add `validation {{ {d} {{ name: condition }} }}`; the seed validates all six dimensions before stabilization"
    ))
}

/// The fields the policy reads ([`Seen::used`]).
#[cfg(test)]
fn used_fields(policy: &EffectivePolicy) -> HashSet<&str> {
    Seen::of(policy, "").used
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

    /// The lints of one pass ([`Seen`]) find what the reference finds on
    /// every example and fixture.
    #[test]
    fn the_lints_of_one_pass_are_those_of_a_pass_per_question() {
        let files = crate::test_files::policies(&["examples", "tests/fixtures"]);
        let mut found = 0;
        for path in &files {
            let (session, source) = crate::test_files::session_of(path);
            let policy = &crate::db::resolve(session.db(), session.workspace, source).policy;
            let file = policy.file.as_str();
            let seen = Seen::of(policy, file);
            let mut fast = unused_declarations(&seen);
            fast.extend(dimensions_not_covered(policy, &seen, file));
            let mut reference = unused_declarations_walked(policy, file);
            reference.extend(dimensions_not_covered_walked(policy, file));
            assert_eq!(fast, reference, "{}", path.display());
            found += reference.len();
        }
        assert!(files.len() > 100 && found > 10, "{found} findings");
    }

    /// The reference of PMF902 (a pass over the policy per question): an authority of the file that governs and approves nothing, or
    /// a partner field that nothing reads.
    fn unused_declarations_walked(policy: &EffectivePolicy, file: &str) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let approvers: HashSet<&str> = policy
            .migrations()
            .flat_map(|(_, m)| m.items.iter())
            .filter_map(|i| match &i.kind {
                MigrationItemKind::Approve(Some(list)) => {
                    Some(list.iter().map(|a| a.name.as_str()))
                }
                _ => None,
            })
            .flatten()
            .collect();
        for (s, a) in policy.authorities().filter(|(s, _)| *s.file == *file) {
            if a.governs.is_empty() && !approvers.contains(a.name.name.as_str()) {
                out.push(unused_authority(s, a));
            }
        }

        let used = walked(policy);
        for (s, f) in policy.fields().filter(|(s, _)| *s.file == *file) {
            if f.name.name != "id" && !used.contains(f.name.name.as_str()) {
                out.push(unused_field(s, f));
            }
        }
        out
    }

    /// The reference of PMF903: a validation dimension the file's policy has no checks for.
    fn dimensions_not_covered_walked(policy: &EffectivePolicy, file: &str) -> Vec<Diagnostic> {
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
                    out.push(dimension_not_covered(file, validation_span, d));
                }
            }
        }
        out
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
