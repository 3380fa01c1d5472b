//! Migration types: soft is reversible, fallback returns to the previous
//! stable state, detection tries types in a defined order, every type can be
//! chosen, and rules name actions their block allows.

use rustc_hash::FxHashMap as HashMap;

use super::Context;
use super::health::check_action;
use crate::diagnostics::{Code, Diagnostic};
use crate::syntax::ast::{MigrationItemKind, RuleKind};

/// Actions a compatibility rule may take.
pub const COMPATIBILITY_ACTIONS: [&str; 2] = ["fallback", "restrict"];
/// Actions a sustainability rule may take.
pub const SUSTAINABILITY_ACTIONS: [&str; 2] = ["forced", "throttle"];

/// Run the migration-type checks.
pub fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut detectable = rustc_hash::FxHashSet::default();
    for (s, m) in cx.policy.migrations() {
        let has = |f: fn(&MigrationItemKind) -> bool| m.items.iter().any(|i| f(&i.kind));
        let has_when = has(|k| matches!(k, MigrationItemKind::When(_)));
        let to = m.items.iter().find_map(|i| match &i.kind {
            MigrationItemKind::To(t) => Some((i.span, t)),
            _ => None,
        });
        if has_when {
            detectable.insert(m.name.name.as_str());
        }
        if m.name.name == "soft" && !has(|k| matches!(k, MigrationItemKind::Reversible)) {
            out.push(
                Diagnostic::new(Code::SoftNotReversible, &s.file, m.name.span, "soft migration is not declared `reversible`")
                    .with_label("a soft migration must be reversible")
                    .with_help("add `reversible` to the block; a change that cannot be undone is a guided or forced migration"),
            );
        }
        if m.name.name == "fallback" {
            match to {
                Some((_, None)) => {}
                Some((span, Some(_))) => out.push(
                    Diagnostic::new(Code::FallbackTarget, &s.file, span, "fallback targets a fixed version")
                        .with_label("not the previous stable state")
                        .with_help("write `to previous_stable`: a fallback returns each partner to its own last stable version"),
                ),
                None => out.push(
                    Diagnostic::new(Code::FallbackTarget, &s.file, m.name.span, "fallback migration does not say where it returns")
                        .with_label("no `to previous_stable`")
                        .with_help("add `to previous_stable`"),
                ),
            }
        }
        if !has_when && to.is_none() {
            out.push(
                Diagnostic::new(
                    Code::NeverChosen,
                    &s.file,
                    m.name.span,
                    format!(
                        "migration `{}` has no `when` and no `to`: it can never be chosen",
                        m.name.name
                    ),
                )
                .with_label("never detected, never a fallback")
                .with_help(
                    "add a detection condition `when ...`, or `to previous_stable` for a fallback",
                ),
            );
        }
    }

    match cx.policy.order() {
        Some((s, order)) => {
            let mut seen: HashMap<&str, &crate::syntax::ast::Ident> = HashMap::default();
            for t in &order.types {
                if let Some(first) = seen.get(t.name.as_str()) {
                    out.push(
                        Diagnostic::new(
                            Code::OrderInvalidEntry,
                            &s.file,
                            t.span,
                            format!("`{}` is listed twice in the detection order", t.name),
                        )
                        .with_label("listed again here")
                        .with_secondary(&s.file, first.span, "first listed here")
                        .with_help("list each migration type once"),
                    );
                    continue;
                }
                seen.insert(&t.name, t);
                if cx.has_migration(&t.name) && !detectable.contains(&t.name.as_str()) {
                    out.push(
                        Diagnostic::new(
                            Code::OrderInvalidEntry,
                            &s.file,
                            t.span,
                            format!(
                                "`{}` has no `when` condition and cannot be detected",
                                t.name
                            ),
                        )
                        .with_label("never tried by detection")
                        .with_help(format!(
                            "remove `{}` from the order, or give it a `when` condition",
                            t.name
                        )),
                    );
                }
            }
            for (ms, m) in cx.policy.migrations() {
                let name = m.name.name.as_str();
                if detectable.contains(&name) && !seen.contains_key(name) {
                    let inherited = s.file != ms.file;
                    let listed: Vec<&str> = order
                        .types
                        .iter()
                        .map(|t| t.name.as_str())
                        .chain([name])
                        .collect();
                    out.push(
                        Diagnostic::new(
                            Code::OrderIncomplete,
                            &ms.file,
                            m.name.span,
                            format!("migration `{name}` has a `when` condition but is missing from the detection order"),
                        )
                        .with_label("detection never tries this type")
                        .with_secondary(&s.file, s.name_span, "the detection order")
                        .with_help(format!(
                            "{}order {}`",
                            if inherited { "the order is inherited: write `override " } else { "write `" },
                            listed.join(", ")
                        )),
                    );
                }
            }
        }
        None if detectable.len() >= 2 => {
            let mut names: Vec<&str> = cx
                .migration_names()
                .iter()
                .copied()
                .filter(|n| detectable.contains(n))
                .collect();
            names.dedup();
            out.push(
            Diagnostic::new(
                Code::OrderIncomplete,
                &cx.policy.file,
                cx.policy.header_span,
                format!("{} migration types have `when` conditions but no `order` says which is tried first", detectable.len()),
            )
            .with_label("detection order undefined")
            .with_help(format!("add `order {}`", names.join(", "))),
        )
        }
        None => {}
    }

    for (s, kind, rule) in cx.policy.rules() {
        let (allowed, place): (&[&str], _) = match kind {
            RuleKind::Compatibility => (&COMPATIBILITY_ACTIONS, "a compatibility rule"),
            RuleKind::Sustainability => (&SUSTAINABILITY_ACTIONS, "a sustainability rule"),
        };
        check_action(&s.file, &rule.action, allowed, place, &mut out);
    }
    out
}
