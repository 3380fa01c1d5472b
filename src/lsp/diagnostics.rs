//! PMF diagnostics as LSP diagnostics: the same code, range, message and
//! help as `pmf check`. The help goes at the end of the message
//! (`help: ...`); secondary labels become `relatedInformation`.

use std::collections::BTreeMap;

use lsp_types::{
    Code, DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag, Location, Message,
};

use super::convert::Encoding;
use super::workspace::{Texts, uri_of_path};
use crate::diagnostics::{Code as PmfCode, Diagnostic, Severity};

/// The `source` of every diagnostic.
pub const SOURCE: &str = "pmf";

/// The LSP form of `d` (its primary place is in the file whose text and
/// index are given by `texts`).
pub fn to_lsp(d: &Diagnostic, texts: &mut Texts<'_>, enc: Encoding) -> lsp_types::Diagnostic {
    let range = texts
        .range(&d.primary.file, d.primary.span, enc)
        .unwrap_or_default();
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    let mut related = Vec::new();
    if !d.primary.message.is_empty() {
        related.push(DiagnosticRelatedInformation {
            location: Location {
                uri: uri_of_path(&d.primary.file).into(),
                range,
            },
            message: d.primary.message.clone(),
        });
    }
    for label in &d.labels {
        let Some(range) = texts.range(&label.file, label.span, enc) else {
            continue;
        };
        related.push(DiagnosticRelatedInformation {
            location: Location {
                uri: uri_of_path(&label.file).into(),
                range,
            },
            message: if label.message.is_empty() {
                "here".into()
            } else {
                label.message.clone()
            },
        });
    }
    lsp_types::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::Error,
            Severity::Warning => DiagnosticSeverity::Warning,
        }),
        code: Some(Code::String(d.code.id().to_string())),
        source: Some(SOURCE.to_string()),
        message: Message::String(message),
        tags: (d.code == PmfCode::UnusedDeclaration).then(|| vec![DiagnosticTag::Unnecessary]),
        related_information: (!related.is_empty()).then_some(related),
        ..Default::default()
    }
}

/// Diagnostics grouped by the file of their primary place, duplicates
/// removed, each group in `pmf check`'s order.
pub fn group_by_file(
    diags: impl IntoIterator<Item = Diagnostic>,
) -> BTreeMap<String, Vec<Diagnostic>> {
    let mut groups: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();
    for d in diags {
        groups.entry(d.primary.file.clone()).or_default().push(d);
    }
    for list in groups.values_mut() {
        crate::diagnostics::sort_and_dedup(list);
    }
    groups
}
