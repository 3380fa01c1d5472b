//! Inline suppressions: `// pmf-allow CODE[, CODE]: reason` silences those
//! codes on the declaration after the comment (at top level), on the next
//! line (inside a block), or on its own line (after code). The reason is
//! mandatory, the codes must exist, and only warnings may be silenced
//! ([`Code::can_be_silenced`]): a suppression naming an error is PMF906.

use pmf_syntax::ast::Comment;
use pmf_syntax::diagnostics::config::not_silenceable;
use pmf_syntax::diagnostics::{Code, Diagnostic, closest};
use pmf_syntax::{Place, PlaceMap, Span};

/// One suppression: the codes and the byte range they apply to.
#[derive(Debug, Clone)]
pub(crate) struct Suppression {
    /// Codes silenced.
    pub codes: Vec<Code>,
    /// Where diagnostics are silenced (by their primary place's start), in
    /// byte offsets.
    pub scope: Span,
}

fn line_bounds(text: &str, offset: usize) -> (usize, usize) {
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    (start, end)
}

/// The suppressions of a file, and diagnostics about malformed ones, from
/// its comments and the places of its declarations (in order); `places`
/// maps them into `text`.
pub(crate) fn suppressions(
    file: &str,
    text: &str,
    places: &PlaceMap,
    comments: &[Comment],
    decls: &[Place],
) -> (Vec<Suppression>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    let decls: Vec<Span> = decls.iter().map(|d| places.bytes(*d)).collect();
    for c in comments {
        let c_span = places.bytes(c.span);
        let body = c.text.trim_start_matches('/').trim_start_matches('*');
        let body = body.trim_end_matches('/').trim_end_matches('*').trim();
        let Some(rest) = body.strip_prefix("pmf-allow") else {
            continue;
        };
        let body_offset =
            c_span.start as usize + c.text.find("pmf-allow").unwrap_or(0) + "pmf-allow".len();
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
                Some(code) if !code.can_be_silenced() => {
                    let place = places.place(Span::new(at, at + word.len()));
                    diags.push(not_silenceable(
                        file,
                        place,
                        code,
                        "and take it out of the suppression",
                    ));
                }
                Some(code) => codes.push(code),
                None => {
                    let close =
                        closest(&word.to_ascii_uppercase(), Code::ALL.iter().map(|c| c.id()));
                    let place = places.place(Span::new(at, at + word.len()));
                    diags.push(
                        Diagnostic::new(
                            Code::UnknownCodeInConfig,
                            file,
                            place,
                            format!("unknown code `{word}` in a suppression"),
                        )
                        .with_label("no such code")
                        .with_help("`pmf explain --list` lists every code")
                        .with_suggestion(place, close),
                    );
                }
            }
        }
        if codes.is_empty() {
            continue;
        }
        let start = c_span.start as usize;
        let (line_start, line_end) = line_bounds(text, start);
        let code_before = !text[line_start..start].trim().is_empty();
        let scope = if code_before {
            Span::new(line_start, line_end)
        } else if let Some(decl) = decls
            .iter()
            .find(|d| d.start as usize <= start && start < d.end as usize)
        {
            // Inside a declaration: the next line with code on it.
            let mut next = c_span.end as usize;
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
                .find(|d| d.start >= c_span.end)
                .map_or(Span::new(start, start), |d| *d)
        };
        out.push(Suppression { codes, scope });
    }
    (out, diags)
}

/// Drop the diagnostics of `file` that a suppression covers (`places`
/// maps `file`'s places to the bytes the scopes are in); never an error
/// ([`Code::can_be_silenced`]).
pub fn apply(
    file: &str,
    places: &PlaceMap,
    diags: &mut Vec<Diagnostic>,
    suppressions: &[Suppression],
) {
    diags.retain(|d| {
        let start = places.bytes(d.primary.span).start;
        d.primary.file != file
            || !d.code.can_be_silenced()
            || !suppressions.iter().any(|s| {
                s.codes.contains(&d.code)
                    && s.scope.start <= start
                    && start < s.scope.end.max(s.scope.start + 1)
            })
    });
}
