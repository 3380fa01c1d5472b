//! Inline suppressions: `// pmf-allow CODE[, CODE]: reason` silences those
//! codes on the declaration after the comment (at top level), on the next
//! line (inside a block), or on its own line (after code). The reason is
//! mandatory and the codes must exist.

use pmf_syntax::Span;
use pmf_syntax::ast::Comment;
use pmf_syntax::diagnostics::{Code, Diagnostic, closest};

/// One suppression: the codes and the byte range they apply to.
#[derive(Debug, Clone)]
pub(crate) struct Suppression {
    /// Codes silenced.
    pub codes: Vec<Code>,
    /// Where diagnostics are silenced (by their primary span's start).
    pub scope: Span,
}

fn line_bounds(text: &str, offset: usize) -> (usize, usize) {
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    (start, end)
}

/// The suppressions of a file, and diagnostics about malformed ones, from
/// its comments and the spans of its declarations (in order), all in byte
/// offsets of `text`.
pub(crate) fn suppressions(
    file: &str,
    text: &str,
    comments: &[Comment],
    decls: &[Span],
) -> (Vec<Suppression>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for c in comments {
        let body = c.text.trim_start_matches('/').trim_start_matches('*');
        let body = body.trim_end_matches('/').trim_end_matches('*').trim();
        let Some(rest) = body.strip_prefix("pmf-allow") else {
            continue;
        };
        let body_offset =
            c.span.start as usize + c.text.find("pmf-allow").unwrap_or(0) + "pmf-allow".len();
        let (codes_text, reason) = match rest.split_once(':') {
            Some((codes, reason)) => (codes, reason.trim()),
            None => (rest, ""),
        };
        if reason.is_empty() {
            diags.push(
                Diagnostic::new(
                    Code::SuppressionWithoutReason,
                    file,
                    c.span,
                    "suppression without a reason",
                )
                .with_label("say why the check does not apply here")
                .with_help("write `// pmf-allow CODE: the reason`"),
            );
            continue;
        }
        let mut codes = Vec::new();
        let mut search_from = body_offset;
        for word in codes_text
            .split(|ch: char| ch == ',' || ch.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            let at = text[search_from..]
                .find(word)
                .map_or(search_from, |i| search_from + i);
            search_from = at + word.len();
            match Code::from_id(word) {
                Some(code) => codes.push(code),
                None => {
                    let close =
                        closest(&word.to_ascii_uppercase(), Code::ALL.iter().map(|c| c.id()));
                    diags.push(
                        Diagnostic::new(
                            Code::UnknownCodeInConfig,
                            file,
                            Span::new(at, at + word.len()),
                            format!("unknown code `{word}` in a suppression"),
                        )
                        .with_label("no such code")
                        .with_help("`pmf explain --list` lists every code")
                        .with_suggestion(Span::new(at, at + word.len()), close),
                    );
                }
            }
        }
        if codes.is_empty() {
            continue;
        }
        let start = c.span.start as usize;
        let (line_start, line_end) = line_bounds(text, start);
        let code_before = !text[line_start..start].trim().is_empty();
        let scope = if code_before {
            Span::new(line_start, line_end)
        } else if let Some(decl) = decls
            .iter()
            .find(|d| d.start as usize <= start && start < d.end as usize)
        {
            // Inside a declaration: the next line with code on it.
            let mut next = c.span.end as usize;
            loop {
                let (ls, le) = line_bounds(text, next.min(text.len()));
                let line = text[ls..le].trim();
                if le >= text.len() || (!line.is_empty() && !line.starts_with("//") && ls > start) {
                    break Span::new(ls, le.min(decl.end as usize));
                }
                next = le + 1;
            }
        } else {
            // At top level: the next declaration.
            decls
                .iter()
                .find(|d| d.start >= c.span.end)
                .map_or(Span::new(start, start), |d| *d)
        };
        out.push(Suppression { codes, scope });
    }
    (out, diags)
}

/// Drop the diagnostics of `file` that a suppression covers.
pub fn apply(file: &str, diags: &mut Vec<Diagnostic>, suppressions: &[Suppression]) {
    diags.retain(|d| {
        d.primary.file != file
            || !suppressions.iter().any(|s| {
                s.codes.contains(&d.code)
                    && s.scope.start <= d.primary.span.start
                    && d.primary.span.start < s.scope.end.max(s.scope.start + 1)
            })
    });
}
