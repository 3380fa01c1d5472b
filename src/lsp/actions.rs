//! Code actions: a quick fix for every structured fix of a diagnostic
//! ([`crate::diagnostics::Fix`]; preferred when it is machine-applicable),
//! and for a diagnostic without one whose help is ``did you mean `X`?``,
//! replacing the diagnostic's range with `X`.

use std::collections::HashMap;

use lsp_types::{CodeAction, CodeActionKind, TextEdit, WorkspaceEdit};

use super::diagnostics::to_lsp;
use super::workspace::{DocRef, uri_of_path};
use crate::syntax::Span;

/// The suggestion of a ``did you mean `X`?`` help.
pub fn suggestion(help: &str) -> Option<&str> {
    let inner = help.strip_prefix("did you mean `")?.strip_suffix("`?")?;
    (!inner.is_empty() && !inner.contains('`')).then_some(inner)
}

/// `textDocument/codeAction` for the byte range `range` of the document.
pub fn code_actions(doc: &DocRef<'_>, range: Span) -> Vec<CodeAction> {
    let mut texts = doc.texts();
    let mut out = Vec::new();
    for d in doc.session.check(doc.file) {
        let span = d.primary.span;
        let overlaps = span.start <= range.end && range.start <= span.end;
        if d.primary.file != doc.path || !overlaps {
            continue;
        }
        let fixes: Vec<(Span, String, bool)> = if d.fixes.is_empty() {
            d.help
                .as_deref()
                .and_then(suggestion)
                .map(|r| (span, r.to_string(), true))
                .into_iter()
                .collect()
        } else {
            d.fixes
                .iter()
                .map(|f| (f.span, f.replacement.clone(), f.machine_applicable))
                .collect()
        };
        for (at, replacement, preferred) in fixes {
            let edit = TextEdit {
                range: doc.range(at),
                new_text: replacement.clone(),
            };
            let title = if replacement.is_empty() {
                format!("Remove `{}`", doc.text.get(at.range()).unwrap_or_default())
            } else if at.start == at.end {
                format!("Insert `{replacement}`")
            } else {
                format!("Replace with `{replacement}`")
            };
            let changes = HashMap::from([(uri_of_path(doc.path).into(), vec![edit])]);
            out.push(CodeAction {
                title,
                kind: Some(CodeActionKind::QuickFix),
                diagnostics: Some(vec![to_lsp(&d, &mut texts, doc.enc)]),
                is_preferred: Some(preferred),
                edit: Some(WorkspaceEdit {
                    changes: Some(changes),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::suggestion;

    #[test]
    fn reads_the_suggestion() {
        assert_eq!(suggestion("did you mean `TSC`?"), Some("TSC"));
        assert_eq!(suggestion("did you mean ``?"), None);
        assert_eq!(suggestion("known authorities: `A`"), None);
    }
}
