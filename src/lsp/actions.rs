//! Code actions: a quick fix for every structured fix of a diagnostic
//! ([`crate::diagnostics::Fix`]; preferred when it is machine-applicable).
//! Every check that proposes a name or an edit gives it as a fix, so
//! nothing here reads a help's words.

use std::collections::HashMap;

use lsp_types::{CodeAction, CodeActionKind, TextEdit, WorkspaceEdit};

use super::diagnostics::to_lsp;
use super::workspace::{DocRef, uri_of_path};
use crate::syntax::Span;

/// `textDocument/codeAction` for the byte range `range` of the document.
pub fn code_actions(doc: &DocRef<'_>, range: Span) -> Vec<CodeAction> {
    let mut texts = doc.texts();
    let mut out = Vec::new();
    for d in doc.check() {
        let span = doc.bytes(d.primary.span);
        let overlaps = span.start <= range.end && range.start <= span.end;
        if d.primary.file != doc.path || !overlaps {
            continue;
        }
        let fixes = d.fixes.iter().map(|f| {
            (
                doc.bytes(f.span),
                f.replacement.clone(),
                f.machine_applicable,
            )
        });
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
