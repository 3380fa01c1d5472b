//! Splits a file into top-level chunks before pest sees it.
//!
//! A chunk starts at every line that begins, in column 0 and outside any
//! comment or string, with a top-level keyword. Parsing chunk by chunk is how
//! the parser recovers: a syntax error in one declaration never hides the
//! next one. The same scan collects comments, finds unterminated comments and
//! strings, and measures bracket nesting so that pest's recursive descent is
//! never handed input deep enough to overflow the stack. The angle brackets
//! of set types (`set<set<T>>`) count as nesting too, apart from the other
//! brackets: they are the one recursion of the grammar without `(`, `[` or
//! `{`. (pest is built without its own stack probe, which cost a tenth of a
//! parse: these bounds are what keeps its recursion shallow.)

use super::span::Span;

/// Keywords that start a top-level declaration.
pub const TOP_LEVEL_KEYWORDS: &[&str] = &[
    "policy",
    "override",
    "authority",
    "category",
    "partner",
    "migration",
    "order",
    "compatibility",
    "sustainability",
    "validation",
    "health",
    "flow",
    "ceiling",
    "rite",
    "key",
    "test",
    "fixture",
];

/// Deepest bracket nesting a chunk may have (and, apart, deepest nesting
/// of set types).
pub(crate) const MAX_NESTING: usize = 64;

/// One top-level chunk of a file.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Where the chunk sits in the file.
    pub span: Span,
    /// Where its nesting first exceeded [`MAX_NESTING`], if it did.
    pub too_deep_at: Option<usize>,
    /// Where an unterminated comment or string starts in the chunk, if one does.
    pub unterminated_at: Option<usize>,
}

/// A lexical problem found while splitting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexProblem {
    /// `/*` without `*/`.
    UnterminatedComment(Span),
    /// `"` without a closing quote on the same line.
    UnterminatedString(Span),
}

/// What the scan found.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// The chunks, in order; together they cover the whole text.
    pub chunks: Vec<Chunk>,
    /// Every comment.
    pub comments: Vec<Span>,
    /// Unterminated comments and strings.
    pub problems: Vec<LexProblem>,
}

fn starts_top_level(text: &str, at: usize) -> bool {
    let Some(rest) = text.as_bytes().get(at..) else {
        return false;
    };
    // Most lines are indented or close a block: one byte tells.
    if !rest.first().is_some_and(u8::is_ascii_lowercase) {
        return false;
    }
    TOP_LEVEL_KEYWORDS.iter().any(|kw| {
        rest.starts_with(kw.as_bytes())
            && rest
                .get(kw.len())
                .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
    })
}

/// The bytes the scan stops at: line ends, comment and string starts,
/// brackets.
const fn is_special(b: u8) -> bool {
    matches!(
        b,
        b'\n' | b'/' | b'"' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>'
    )
}

/// True when the `<` at `at` follows the word `set`, with only white space
/// and the comments found so far (`comments`, in order) between them: it
/// may open a set type, one level of the grammar's recursion. Counting a
/// `<` that does not (a comparison of a field named `set`) only makes the
/// bound stricter.
fn opens_set(bytes: &[u8], at: usize, comments: &[Span]) -> bool {
    let mut j = at;
    let mut k = comments.len();
    loop {
        while j > 0
            && bytes
                .get(j - 1)
                .is_some_and(|&c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            j -= 1;
        }
        match k.checked_sub(1).and_then(|p| comments.get(p)) {
            Some(c) if c.end as usize == j => {
                j = c.start as usize;
                k -= 1;
            }
            _ => break,
        }
    }
    let word = j.checked_sub(3).and_then(|s| bytes.get(s..j));
    let before = j.checked_sub(4).and_then(|b| bytes.get(b));
    word == Some(b"set".as_slice())
        && !before.is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
}

/// Scan `text` into chunks, comments and lexical problems.
pub fn split(text: &str) -> Split {
    let bytes = text.as_bytes();
    let mut out = Split::default();
    let mut chunk_start = 0usize;
    let mut depth = 0usize;
    // Open set types (`set<`), a nesting of their own.
    let mut angles = 0usize;
    let mut too_deep_at = None;
    let mut unterminated: Option<usize> = None;
    let mut i = 0usize;
    let mut line_start = true;

    let close_chunk = |out: &mut Split,
                       start: usize,
                       end: usize,
                       deep: &mut Option<usize>,
                       unt: &mut Option<usize>| {
        if end > start || out.chunks.is_empty() {
            out.chunks.push(Chunk {
                span: Span::new(start, end),
                too_deep_at: deep.take(),
                unterminated_at: unt.take(),
            });
        }
    };

    while let Some(&b) = bytes.get(i) {
        if line_start && i > chunk_start && starts_top_level(text, i) {
            close_chunk(
                &mut out,
                chunk_start,
                i,
                &mut too_deep_at,
                &mut unterminated,
            );
            chunk_start = i;
            depth = 0;
            angles = 0;
        }
        line_start = false;
        match b {
            b'\n' => {
                line_start = true;
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                out.comments.push(Span::new(i, end));
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => match text[i + 2..].find("*/") {
                Some(n) => {
                    let end = i + 2 + n + 2;
                    out.comments.push(Span::new(i, end));
                    i = end;
                }
                None => {
                    let line_end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                    out.problems
                        .push(LexProblem::UnterminatedComment(Span::new(i, line_end)));
                    out.comments.push(Span::new(i, bytes.len()));
                    unterminated.get_or_insert(i);
                    i = bytes.len();
                }
            },
            b'"' => {
                let mut j = i + 1;
                let mut closed = false;
                while let Some(&c) = bytes.get(j) {
                    match c {
                        b'\\' => j += 2,
                        b'"' => {
                            closed = true;
                            j += 1;
                            break;
                        }
                        b'\n' => break,
                        _ => j += 1,
                    }
                }
                let j = j.min(bytes.len());
                if !closed {
                    out.problems
                        .push(LexProblem::UnterminatedString(Span::new(i, j)));
                    unterminated.get_or_insert(i);
                }
                i = j;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING && too_deep_at.is_none() {
                    too_deep_at = Some(i);
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'<' => {
                if opens_set(bytes, i, &out.comments) {
                    angles += 1;
                    if angles > MAX_NESTING && too_deep_at.is_none() {
                        too_deep_at = Some(i);
                    }
                }
                i += 1;
            }
            b'>' => {
                angles = angles.saturating_sub(1);
                i += 1;
            }
            _ => {
                // Skip to the next byte the scan cares about.
                i += 1;
                while bytes.get(i).is_some_and(|&c| !is_special(c)) {
                    i += 1;
                }
            }
        }
    }
    close_chunk(
        &mut out,
        chunk_start,
        bytes.len(),
        &mut too_deep_at,
        &mut unterminated,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_unindented_keywords_only() {
        let text = "policy a\nauthority X governs y\n  rite z \"w\"\n/* rite q */\nrite p \"w\"\n";
        let s = split(text);
        let starts: Vec<u32> = s.chunks.iter().map(|c| c.span.start).collect();
        assert_eq!(starts, vec![0, 9, 57]);
        assert_eq!(s.comments.len(), 1);
    }

    #[test]
    fn keyword_inside_block_comment_does_not_split() {
        let s = split("policy a\n/*\npolicy b\n*/\n");
        assert_eq!(s.chunks.len(), 1);
    }

    #[test]
    fn reports_unterminated_tokens() {
        let s = split("policy a\nrite x \"open\n/* never closed");
        assert_eq!(s.problems.len(), 2);
    }

    #[test]
    fn measures_nesting() {
        let deep = format!(
            "policy a\nceiling x < {}1{}",
            "(".repeat(100),
            ")".repeat(100)
        );
        let s = split(&deep);
        assert!(s.chunks[1].too_deep_at.is_some());
        assert!(s.chunks[0].too_deep_at.is_none());
    }

    #[test]
    fn measures_the_nesting_of_set_types() {
        let nested = |n: usize, open: &str| {
            format!(
                "policy a\npartner {{\n  x: {}number{}\n}}\n",
                open.repeat(n),
                ">".repeat(n)
            )
        };
        // Comments and white space between `set` and `<` still open a level.
        for open in ["set<", "set <", "set/* c */<", "set // c\n<"] {
            let s = split(&nested(MAX_NESTING, open));
            assert!(s.chunks[1].too_deep_at.is_none(), "{open:?}");
            let s = split(&nested(MAX_NESTING + 1, open));
            assert!(s.chunks[1].too_deep_at.is_some(), "{open:?}");
        }
        // Comparisons and arrows are not nesting, however many.
        let many = format!(
            "policy a\nceiling x < {}1\nflow f {{\n{}}}\n",
            "partner.offset < 1 and ".repeat(200),
            "  a -> b\n".repeat(200)
        );
        assert!(split(&many).chunks.iter().all(|c| c.too_deep_at.is_none()));
        // Closed levels do not add up.
        let siblings = format!(
            "policy a\npartner {{\n{}}}\n",
            "  x: set<set<string>>\n".repeat(200)
        );
        assert!(
            split(&siblings)
                .chunks
                .iter()
                .all(|c| c.too_deep_at.is_none())
        );
    }
}
