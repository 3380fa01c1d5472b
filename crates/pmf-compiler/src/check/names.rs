//! Names: references to categories, authorities, migration types,
//! validation dimensions, phases and schema fields must resolve, and names
//! inside one block must be unique.

use rustc_hash::FxHashMap as HashMap;

use super::{Context, unknown};
use crate::model::types::Type;
use crate::model::{DIMENSIONS, RELEASE_RITE};
use pmf_syntax::ast::{FieldPath, Ident, MigrationItemKind};
use pmf_syntax::diagnostics::{Code, Diagnostic, Fix, closest};

/// Run the name checks.
pub fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let categories = cx.category_names();
    let authorities = cx.authority_names();
    // Suggest only types that detection can try.
    let detectable: Vec<&str> = cx
        .policy
        .migrations()
        .filter(|(_, m)| {
            m.items
                .iter()
                .any(|i| matches!(i.kind, MigrationItemKind::When(_)))
        })
        .map(|(_, m)| m.name.name.as_str())
        .collect();

    for (s, a) in cx.policy.authorities() {
        for g in &a.governs {
            if !cx.has_category(&g.name) {
                out.push(unknown(
                    Code::UnknownCategory,
                    &s.file,
                    "category",
                    g,
                    categories,
                ));
            }
        }
    }
    for (s, c) in cx.policy.categories() {
        for path in &c.covers {
            if let Some(d) = unknown_field(&s.file, &cx.schema, path) {
                out.push(d);
            }
        }
    }
    for (s, m) in cx.policy.migrations() {
        for item in &m.items {
            match &item.kind {
                MigrationItemKind::Touches(cats) => {
                    for c in cats {
                        if !cx.has_category(&c.name) {
                            out.push(unknown(
                                Code::UnknownCategory,
                                &s.file,
                                "category",
                                c,
                                categories,
                            ));
                        }
                    }
                }
                MigrationItemKind::Approve(Some(approvers)) => {
                    for a in approvers {
                        if !cx.has_authority(&a.name) {
                            out.push(unknown(
                                Code::UnknownAuthority,
                                &s.file,
                                "authority",
                                a,
                                &authorities,
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if let Some((s, order)) = cx.policy.order() {
        for t in &order.types {
            if !cx.has_migration(&t.name) {
                out.push(unknown(
                    Code::UnknownMigration,
                    &s.file,
                    "migration type",
                    t,
                    &detectable,
                ));
            }
        }
    }
    for (s, dim, _) in cx.policy.checks() {
        if !DIMENSIONS.contains(&dim.name.as_str()) {
            out.push(
                unknown(
                    Code::UnknownDimension,
                    &s.file,
                    "validation dimension",
                    dim,
                    &DIMENSIONS,
                )
                .with_label("not one of the six validation dimensions"),
            );
        }
    }

    let phases: Vec<&str> = cx
        .policy
        .flow()
        .map(|(_, f)| f.phases.iter().map(|p| p.name.name.as_str()).collect())
        .unwrap_or_default();
    if cx.policy.flow().is_some() {
        for (s, r) in cx.policy.rites() {
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
    }
    if let Some((s, f)) = cx.policy.flow() {
        duplicates(&s.file, f.phases.iter().map(|p| &p.name), "phase", &mut out);
        for e in &f.edges {
            for end in [&e.from, &e.to] {
                if !phases.contains(&end.name.as_str()) {
                    out.push(
                        unknown(Code::UnknownPhase, &s.file, "phase", end, &phases)
                            .with_label("not declared with `phase` in this flow"),
                    );
                }
            }
        }
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
pub fn unknown_field(file: &str, schema: &Type, path: &FieldPath) -> Option<Diagnostic> {
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
pub fn unknown_field_diag<'a>(
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
