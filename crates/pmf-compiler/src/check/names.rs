//! Names: references to categories, authorities, migration types,
//! validation dimensions, phases and schema fields must resolve, and names
//! inside one block must be unique.
//!
//! Each code has its own function; [`check`] runs them in a fixed order.

use rustc_hash::FxHashMap as HashMap;

use super::{Context, unknown};
use crate::model::types::Type;
use crate::model::{DIMENSIONS, RELEASE_RITE};
use pmf_syntax::ast::{FieldPath, Ident, MigrationItemKind};
use pmf_syntax::diagnostics::{Code, Diagnostic, Fix, closest};

/// Run the name checks.
pub(crate) fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = unknown_categories(cx);
    out.extend(unknown_covered_fields(cx));
    out.extend(unknown_authorities(cx));
    out.extend(unknown_migrations(cx));
    out.extend(unknown_dimensions(cx));
    out.extend(unknown_phases(cx));
    out.extend(duplicate_declarations(cx));
    out
}

/// PMF102: an authority governs, or a migration touches, a category the
/// policy does not declare.
fn unknown_categories(cx: &Context<'_>) -> Vec<Diagnostic> {
    let categories = cx.category_names();
    let governed = cx
        .authorities()
        .flat_map(|(s, a)| a.governs.iter().map(move |g| (s, g)));
    let touched = cx.migrations().flat_map(|(s, m)| {
        m.items
            .iter()
            .filter_map(|item| match &item.kind {
                MigrationItemKind::Touches(cats) => Some(cats),
                _ => None,
            })
            .flatten()
            .map(move |c| (s, c))
    });
    governed
        .chain(touched)
        .filter(|(_, c)| !cx.has_category(&c.name))
        .map(|(s, c)| unknown(Code::UnknownCategory, &s.file, "category", c, categories))
        .collect()
}

/// PMF106: a category covers a path that is not a field of the schema.
fn unknown_covered_fields(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.categories()
        .flat_map(|(s, c)| c.covers.iter().map(move |path| (s, path)))
        .filter_map(|(s, path)| unknown_field(&s.file, &cx.schema, path))
        .collect()
}

/// PMF103: a migration asks for approval by an authority the policy does
/// not declare.
fn unknown_authorities(cx: &Context<'_>) -> Vec<Diagnostic> {
    let authorities = cx.authority_names();
    cx.migrations()
        .flat_map(|(s, m)| {
            m.items
                .iter()
                .filter_map(|item| match &item.kind {
                    MigrationItemKind::Approve(Some(approvers)) => Some(approvers),
                    _ => None,
                })
                .flatten()
                .map(move |a| (s, a))
        })
        .filter(|(_, a)| !cx.has_authority(&a.name))
        .map(|(s, a)| {
            unknown(
                Code::UnknownAuthority,
                &s.file,
                "authority",
                a,
                &authorities,
            )
        })
        .collect()
}

/// PMF105: the detection order lists a migration type the policy does not
/// declare.
fn unknown_migrations(cx: &Context<'_>) -> Vec<Diagnostic> {
    let Some((s, order)) = cx.policy.order() else {
        return Vec::new();
    };
    // Suggest only types that detection can try.
    let detectable: Vec<&str> = cx
        .migrations()
        .filter(|(_, m)| {
            m.items
                .iter()
                .any(|i| matches!(i.kind, MigrationItemKind::When(_)))
        })
        .map(|(_, m)| m.name.name.as_str())
        .collect();
    order
        .types
        .iter()
        .filter(|t| !cx.has_migration(&t.name))
        .map(|t| {
            unknown(
                Code::UnknownMigration,
                &s.file,
                "migration type",
                t,
                &detectable,
            )
        })
        .collect()
}

/// PMF110: a validation check of a dimension that is not one of the six.
fn unknown_dimensions(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .checks()
        .filter(|(_, dim, _)| !DIMENSIONS.contains(&dim.name.as_str()))
        .map(|(s, dim, _)| {
            unknown(
                Code::UnknownDimension,
                &s.file,
                "validation dimension",
                dim,
                &DIMENSIONS,
            )
            .with_label("not one of the six validation dimensions")
        })
        .collect()
}

/// PMF104: a rite, or an edge of the flow, names a phase the flow does not
/// declare.
fn unknown_phases(cx: &Context<'_>) -> Vec<Diagnostic> {
    let Some((fs, f)) = cx.policy.flow() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let phases: Vec<&str> = f.phases.iter().map(|p| p.name.name.as_str()).collect();
    for (s, r) in cx.rites() {
        if r.phase.name != RELEASE_RITE && !phases.contains(&r.phase.name.as_str()) {
            let mut candidates = phases.clone();
            candidates.push(RELEASE_RITE);
            out.push(unknown(
                Code::UnknownPhase,
                &s.file,
                "phase",
                &r.phase,
                &candidates,
            ));
        }
    }
    for e in &f.edges {
        for end in [&e.from, &e.to] {
            if !phases.contains(&end.name.as_str()) {
                out.push(
                    unknown(Code::UnknownPhase, &fs.file, "phase", end, &phases)
                        .with_label("not declared with `phase` in this flow"),
                );
            }
        }
    }
    out
}

/// PMF101: a phase, health factor or band status declared twice in its
/// block.
fn duplicate_declarations(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some((s, f)) = cx.policy.flow() {
        duplicates(&s.file, f.phases.iter().map(|p| &p.name), "phase", &mut out);
    }
    if let Some((s, h)) = cx.policy.health() {
        duplicates(
            &s.file,
            h.factors.iter().map(|f| &f.name),
            "health factor",
            &mut out,
        );
        duplicates(
            &s.file,
            h.bands.iter().map(|b| &b.status),
            "band status",
            &mut out,
        );
    }
    out
}

/// The PMF101 diagnostics for the names declared again in one block.
fn duplicates<'a>(
    file: &str,
    names: impl Iterator<Item = &'a Ident>,
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen: HashMap<&str, &Ident> = HashMap::default();
    for n in names {
        if let Some(first) = seen.get(n.name.as_str()) {
            out.push(
                Diagnostic::new(
                    Code::DuplicateDeclaration,
                    file,
                    n.span,
                    format!("{what} `{}` is declared twice", n.name),
                )
                .with_label("declared again here")
                .with_secondary(file, first.span, "first declared here")
                .with_help("remove one of the two or rename it".to_string()),
            );
        } else {
            seen.insert(&n.name, n);
        }
    }
}

/// PMF106 when `path` does not name a field of `schema`.
pub(crate) fn unknown_field(file: &str, schema: &Type, path: &FieldPath) -> Option<Diagnostic> {
    let mut current = schema;
    for seg in &path.segments {
        match current {
            Type::Record(fields) => match fields.get(seg.name.as_str()) {
                Some(t) => current = t,
                None => {
                    return Some(unknown_field_diag(
                        file,
                        seg,
                        fields.keys().map(String::as_str),
                        "partner",
                    ));
                }
            },
            Type::Unknown => return None,
            other => {
                return Some(
                    Diagnostic::new(
                        Code::UnknownField,
                        file,
                        seg.span,
                        format!("`{other}` has no field `{}`", seg.name),
                    )
                    .with_label("no such field"),
                );
            }
        }
    }
    None
}

/// The PMF106 diagnostic for `seg` missing among `fields` of `owner`.
pub(crate) fn unknown_field_diag<'a>(
    file: &str,
    seg: &Ident,
    fields: impl Iterator<Item = &'a str> + Clone,
    owner: &str,
) -> Diagnostic {
    let close = closest(&seg.name, fields.clone());
    let help = close.map(|c| format!("did you mean `{c}`?")).or_else(|| {
        let list: Vec<String> = fields.take(12).map(|f| format!("`{f}`")).collect();
        if list.is_empty() {
            Some(
                "the partner schema declares no fields; add them in a `partner { ... }` block"
                    .into(),
            )
        } else {
            Some(format!("fields here: {}", list.join(", ")))
        }
    });
    Diagnostic::new(
        Code::UnknownField,
        file,
        seg.span,
        format!("unknown field `{}` in `{owner}`", seg.name),
    )
    .with_label("no such field in the partner schema")
    .with_help_opt(help)
    .with_fixes(close.map(|c| Fix::certain(seg.span, c)))
}

/// PMF114: the file at `path` (its text `text`) declares the policy the
/// standard library declares (`header`), with another text. Checked or
/// planned with it (a folder, a project), every `extends kwanus` beside it
/// reads this file, while the same policy given alone reads the standard
/// library: a reviewer who reads `extends kwanus` expects the standard
/// library, and a file added as a "vendored copy" could relax any rule of
/// it. A copy equal to the standard library (line ends aside) is not
/// reported: this repository checks its own `stdlib/kwanus.pmf`.
pub(crate) fn replaced_standard_library(
    path: &str,
    text: &str,
    header: &pmf_syntax::ast::PolicyHeader,
) -> Option<Diagnostic> {
    use crate::stdlib::{KWANUS_NAME as name, KWANUS_PATH, KWANUS_SOURCE};
    if path == KWANUS_PATH || header.name.name.as_str() != name {
        return None;
    }
    let differs_at = first_different_line(text, KWANUS_SOURCE)?;
    Some(
        Diagnostic::new(
            Code::StandardLibraryReplaced,
            path,
            header.name.span,
            format!("this file replaces the standard library's `policy {name}`"),
        )
        .with_label(format!(
            "differs from the standard library from line {differs_at}"
        ))
        .with_help(format!(
            "checked or planned with this file (a folder, a project), every `extends {name}` beside it reads this file, not the standard library a reviewer expects; given alone, the same policy reads the standard library: give this policy a name of its own and extend it by that name, or remove the file (`pmf stdlib` prints the standard library)"
        )),
    )
}

/// The first line (1-based) where `a` and `b` differ, line ends aside;
/// `None` when they do not.
fn first_different_line(a: &str, b: &str) -> Option<usize> {
    let mut left = a.lines().map(|l| l.trim_end_matches('\r'));
    let mut right = b.lines().map(|l| l.trim_end_matches('\r'));
    let mut line = 1;
    loop {
        match (left.next(), right.next()) {
            (None, None) => return None,
            (l, r) if l != r => return Some(line),
            _ => line += 1,
        }
    }
}
