//! Completion from the text before the cursor: top-level keywords in
//! column 0, the items of the enclosing block at the start of a line, schema
//! fields after `partner.` / `target.` / `observed.` (and deeper after a
//! record field), phases after `rite ` and `->` in a flow, authorities after
//! `approve by ` and `key `, categories after `governs ` / `touches `,
//! actions after `else ` and after `->` in a health band, types after `:` in
//! a schema.
//!
//! An approximation that reads the line, not the syntax tree: the line being
//! typed rarely parses.

use lsp_types::{CompletionItem, CompletionItemKind, Documentation, MarkupContent, MarkupKind};

use super::context::{Cursor, cursor, is_ident_char};
use super::docs;
use super::workspace::DocRef;
use crate::check::health::BAND_ACTIONS;
use crate::check::migrations::{COMPATIBILITY_ACTIONS, SUSTAINABILITY_ACTIONS};
use crate::check::types::{BUILTIN_NAMES, FUNCTIONS, ROOTS};
use crate::db::{policy_index, resolve};
use crate::model::types::{TYPE_NAMES, Type, field_type, schema};
use crate::model::{ACTIONS, DIMENSIONS, EffectivePolicy, RELEASE_RITE, SEED_PHASES};
use crate::syntax::ast::MigrationItemKind;

/// `textDocument/completion` at byte `offset`.
pub fn completion(doc: &DocRef<'_>, offset: usize) -> Vec<CompletionItem> {
    let c = cursor(doc.text, offset);
    if c.in_comment_or_string {
        return Vec::new();
    }
    // Names only: the policy in stable places, which edits rarely change.
    let policy = &resolve(doc.session.db(), doc.ws, doc.file).policy;
    let mut out = Vec::new();
    complete(doc, policy, &c, &mut out);
    // One item per label.
    let mut seen = std::collections::HashSet::new();
    out.retain(|i| seen.insert(i.label.clone()));
    out
}

fn item(label: &str, kind: CompletionItemKind, detail: Option<String>) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail,
        ..Default::default()
    }
}

fn documented(label: &str, kind: CompletionItemKind, doc: Option<&str>) -> CompletionItem {
    CompletionItem {
        documentation: doc.map(|d| {
            Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: d.to_string(),
            })
        }),
        ..item(label, kind, None)
    }
}

/// The byte offset just after the last character of `s` that matches
/// `pred` (0 when none does).
fn after_last(s: &str, pred: impl Fn(char) -> bool) -> usize {
    s.char_indices()
        .rev()
        .find(|&(_, c)| pred(c))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

/// The last token of `s` (trimmed): a word, or a run of punctuation.
fn last_token(s: &str) -> &str {
    let s = s.trim_end();
    let Some(last) = s.chars().next_back() else {
        return "";
    };
    let start = if is_ident_char(last) {
        after_last(s, |c| !is_ident_char(c))
    } else {
        after_last(s, |c| is_ident_char(c) || c.is_whitespace())
    };
    &s[start..]
}

/// The dotted path that ends just before the cursor: `partner.metrics.`
/// gives `["partner", "metrics"]`.
fn dotted_before(before: &str) -> Vec<&str> {
    let Some(body) = before.strip_suffix('.') else {
        return Vec::new();
    };
    let start = after_last(body, |c| !(is_ident_char(c) || c == '.'));
    body[start..].split('.').collect()
}

fn complete(
    doc: &DocRef<'_>,
    policy: &EffectivePolicy,
    c: &Cursor<'_>,
    out: &mut Vec<CompletionItem>,
) {
    let before = c.before;
    let trimmed = before.trim_end();
    let line = trimmed.trim_start();
    let decl = c.decl.unwrap_or("");

    // A path into the schema.
    if before.ends_with('.') {
        let segs = dotted_before(before);
        if segs.iter().any(|s| s.is_empty()) {
            return;
        }
        match segs.split_first() {
            Some((first, rest)) if ROOTS.contains(first) => fields_at(policy, rest, out),
            _ if matches!(decl, "category" | "ceiling") => fields_at(policy, &segs, out),
            _ => {}
        }
        return;
    }
    // Column 0: a new declaration.
    if before.is_empty() {
        for (kw, summary) in docs::TOP_LEVEL {
            out.push(CompletionItem {
                detail: Some(summary.to_string()),
                ..documented(kw, CompletionItemKind::Keyword, docs::keyword(kw))
            });
        }
        return;
    }

    let last = last_token(trimmed);
    let after_comma = last == ",";
    let line_has = |word: &str| line.split(|ch: char| !is_ident_char(ch)).any(|w| w == word);
    match last {
        "by" if line_has("approve") => {
            out.push(documented(
                "governing",
                CompletionItemKind::Keyword,
                docs::keyword("governing"),
            ));
            authorities(policy, out);
        }
        "," if line_has("approve") => authorities(policy, out),
        "governs" | "touches" => categories(policy, out),
        "," if line_has("governs") || line_has("touches") => categories(policy, out),
        "covers" => fields_at(policy, &[], out),
        "," if line_has("covers") => fields_at(policy, &[], out),
        "ceiling" => ordered_fields(policy, out),
        "rite" => phases(policy, out, true),
        "key" if decl == "key" && line == "key" => authorities(policy, out),
        "->" if decl == "flow" => phases(policy, out, false),
        "->" if decl == "health" => actions(&BAND_ACTIONS, out),
        "else" => match decl {
            "compatibility" => actions(&COMPATIBILITY_ACTIONS, out),
            "sustainability" => actions(&SUSTAINABILITY_ACTIONS, out),
            _ => actions(&ACTIONS, out),
        },
        "phase" if decl == "flow" => {
            for p in SEED_PHASES.iter().chain(std::iter::once(&"fallback")) {
                out.push(item(
                    p,
                    CompletionItemKind::EnumMember,
                    Some("phase".into()),
                ));
            }
        }
        "override" if line == "override" => {
            // Keys are additive: `override key` is PMF704.
            for (kw, summary) in docs::TOP_LEVEL
                .iter()
                .skip(2)
                .filter(|(kw, _)| *kw != "key")
            {
                out.push(CompletionItem {
                    detail: Some(summary.to_string()),
                    ..documented(kw, CompletionItemKind::Keyword, docs::keyword(kw))
                });
            }
        }
        "order" => migrations(policy, out),
        "," if decl == "order" => migrations(policy, out),
        "extends" => policies(doc, policy, out),
        "," if decl == "policy" && line_has("extends") => policies(doc, policy, out),
        "approve" => out.push(item("by", CompletionItemKind::Keyword, None)),
        "requires" => out.push(item("mapping", CompletionItemKind::Keyword, None)),
        "to" if decl == "migration" => out.push(documented(
            "previous_stable",
            CompletionItemKind::Keyword,
            docs::keyword("previous_stable"),
        )),
        ":" | "<" if decl == "partner" => types(out),
        "" => block_items(policy, c, out),
        _ if expression_context(decl, last, after_comma) => expression_starters(out),
        _ => {}
    }
}

/// True when an expression may start after `last` in declaration `decl`.
fn expression_context(decl: &str, last: &str, after_comma: bool) -> bool {
    let expr_decl = matches!(
        decl,
        "migration" | "compatibility" | "sustainability" | "validation" | "health" | "ceiling"
    );
    expr_decl
        && (after_comma
            || matches!(
                last,
                "when"
                    | "from"
                    | "and"
                    | "or"
                    | "not"
                    | "in"
                    | ":"
                    | "("
                    | "["
                    | "=="
                    | "!="
                    | "<"
                    | "<="
                    | ">"
                    | ">="
                    | "+"
                    | "-"
                    | "*"
                    | "/"
                    | "(-"
                    | "(("
            ))
}

/// Completions at the start of an indented line, by enclosing block.
fn block_items(policy: &EffectivePolicy, c: &Cursor<'_>, out: &mut Vec<CompletionItem>) {
    if c.depth == 0 {
        return;
    }
    match c.decl.unwrap_or("") {
        "migration" => {
            for it in docs::MIGRATION_ITEMS {
                let first = it.split(' ').next().unwrap_or(it);
                out.push(documented(
                    it,
                    CompletionItemKind::Keyword,
                    docs::keyword(first),
                ));
            }
        }
        "health" => {
            for kw in ["factor", "band"] {
                out.push(documented(
                    kw,
                    CompletionItemKind::Keyword,
                    docs::keyword(kw),
                ));
            }
        }
        "flow" => {
            out.push(documented(
                "phase",
                CompletionItemKind::Keyword,
                docs::keyword("phase"),
            ));
            phases(policy, out, false);
        }
        "validation" if c.depth == 1 => {
            for d in DIMENSIONS {
                out.push(documented(
                    d,
                    CompletionItemKind::Module,
                    docs::dimension(d),
                ));
            }
        }
        _ => {}
    }
}

fn fields_at(policy: &EffectivePolicy, path: &[&str], out: &mut Vec<CompletionItem>) {
    let schema = schema(policy);
    match field_type(&schema, path) {
        Some(Type::Record(fields)) => {
            for (name, ty) in fields.iter() {
                out.push(item(name, CompletionItemKind::Field, Some(ty.to_string())));
            }
        }
        Some(Type::Version) => {
            for part in ["major", "minor", "patch"] {
                out.push(item(part, CompletionItemKind::Field, Some("number".into())));
            }
        }
        _ => {}
    }
}

fn ordered_fields(policy: &EffectivePolicy, out: &mut Vec<CompletionItem>) {
    let schema = schema(policy);
    let Type::Record(fields) = &schema else {
        return;
    };
    for (name, ty) in fields.iter() {
        if ty.is_ordered() {
            out.push(item(name, CompletionItemKind::Field, Some(ty.to_string())));
        } else if let Type::Record(inner) = ty {
            for (sub, t) in inner.iter().filter(|(_, t)| t.is_ordered()) {
                out.push(item(
                    &format!("{name}.{sub}"),
                    CompletionItemKind::Field,
                    Some(t.to_string()),
                ));
            }
        }
    }
}

fn authorities(policy: &EffectivePolicy, out: &mut Vec<CompletionItem>) {
    for (_, a) in policy.authorities() {
        let detail = a.title.as_ref().map(|t| t.value.clone());
        out.push(item(&a.name.name, CompletionItemKind::Constant, detail));
    }
}

fn categories(policy: &EffectivePolicy, out: &mut Vec<CompletionItem>) {
    for (_, c) in policy.categories() {
        let detail = c.title.as_ref().map(|t| t.value.clone());
        out.push(item(&c.name.name, CompletionItemKind::Enum, detail));
    }
}

fn migrations(policy: &EffectivePolicy, out: &mut Vec<CompletionItem>) {
    for (_, m) in policy.migrations() {
        let detectable = m
            .items
            .iter()
            .any(|i| matches!(i.kind, MigrationItemKind::When(_)));
        if detectable {
            let detail = m.title.as_ref().map(|t| t.value.clone());
            out.push(item(&m.name.name, CompletionItemKind::Class, detail));
        }
    }
}

fn phases(policy: &EffectivePolicy, out: &mut Vec<CompletionItem>, with_release: bool) {
    let declared: Vec<(&str, Option<String>)> = policy
        .flow()
        .map(|(_, f)| {
            f.phases
                .iter()
                .map(|p| {
                    (
                        p.name.name.as_str(),
                        p.description.as_ref().map(|d| d.value.clone()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for (name, description) in declared {
        out.push(item(name, CompletionItemKind::EnumMember, description));
    }
    for p in SEED_PHASES {
        out.push(item(
            p,
            CompletionItemKind::EnumMember,
            Some("seed phase".into()),
        ));
    }
    if with_release {
        out.push(documented(
            RELEASE_RITE,
            CompletionItemKind::Keyword,
            docs::keyword(RELEASE_RITE),
        ));
    }
}

fn actions(list: &[&str], out: &mut Vec<CompletionItem>) {
    for a in list {
        out.push(documented(
            a,
            CompletionItemKind::EnumMember,
            docs::action(a),
        ));
    }
}

fn policies(doc: &DocRef<'_>, policy: &EffectivePolicy, out: &mut Vec<CompletionItem>) {
    for name in policy_index(doc.session.db(), doc.ws).keys() {
        if *name != policy.name {
            out.push(item(
                name,
                CompletionItemKind::Module,
                Some("policy".into()),
            ));
        }
    }
}

fn types(out: &mut Vec<CompletionItem>) {
    for t in TYPE_NAMES.iter().chain(std::iter::once(&"set")) {
        out.push(documented(
            t,
            CompletionItemKind::TypeParameter,
            docs::type_doc(t),
        ));
    }
}

fn expression_starters(out: &mut Vec<CompletionItem>) {
    for r in ROOTS {
        out.push(documented(
            r,
            CompletionItemKind::Variable,
            docs::keyword(r),
        ));
    }
    for b in BUILTIN_NAMES {
        out.push(documented(
            b,
            CompletionItemKind::Constant,
            docs::builtin(b),
        ));
    }
    for f in FUNCTIONS {
        out.push(documented(
            f,
            CompletionItemKind::Function,
            docs::builtin(f).or(docs::keyword(f)),
        ));
    }
    for kw in ["not", "true", "false"] {
        out.push(documented(
            kw,
            CompletionItemKind::Keyword,
            docs::keyword(kw),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_paths() {
        assert_eq!(last_token("  x: a else "), "else");
        assert_eq!(last_token("  a -> "), "->");
        assert_eq!(last_token("approve by A,"), ",");
        assert_eq!(last_token(""), "");
        assert_eq!(last_token("é->"), "é->");
        assert_eq!(last_token("éa"), "a");
        assert_eq!(last_token("a é"), "é");
        assert_eq!(dotted_before("ñpartner."), vec!["partner"]);
        assert_eq!(
            dotted_before("  when partner.metrics."),
            vec!["partner", "metrics"]
        );
        assert_eq!(dotted_before("x >= (observed."), vec!["observed"]);
    }
}
