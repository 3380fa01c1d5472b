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

/// [`is_special`] of every byte, looked up rather than compared.
// Evaluated at compile time: an index out of bounds fails the build.
#[allow(clippy::indexing_slicing)]
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_special(b as u8);
        b += 1;
    }
    table
};

/// Where the first byte of `bytes` the scan stops at is (its length when
/// there is none).
fn next_special(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&c| SPECIAL.get(usize::from(c)).copied().unwrap_or(false))
        .unwrap_or(bytes.len())
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
    scan(text, 0, |_| false).0
}

/// Where the chunks of `text` are, after `old` were those of `old_text`:
/// what [`split`] finds, scanning only from the chunk before the first
/// changed byte to the first chunk start past the last one where the old
/// text had a chunk start too (the scan is in the same state there, so the
/// rest is the old chunks, moved). `ends` are how many bytes the two
/// texts begin and end with alike ([`common_ends`]).
pub fn chunk_spans_after(
    old: &[Span],
    old_text: &str,
    text: &str,
    (prefix, suffix): (usize, usize),
) -> Vec<Span> {
    let (was, now) = (old_text.as_bytes(), text.as_bytes());
    // A chunk start depends on the bytes of its keyword and the one after:
    // the scan starts at the last chunk start those are all unchanged for
    // (the text's start is one whatever follows).
    let reach = TOP_LEVEL_KEYWORDS
        .iter()
        .map(|k| k.len())
        .max()
        .unwrap_or(0)
        + 1;
    let first = old
        .partition_point(|s| s.start as usize + reach <= prefix)
        .saturating_sub(1);
    let restart = old.get(first).map_or(0, |s| s.start as usize);
    // The first byte of the unchanged end, in the new text; a chunk start
    // there depends on the byte before it, so only later ones are the old.
    let settled = now.len() - suffix + 1;
    let moved = |at: usize| (at + was.len()).checked_sub(now.len());
    let old_start =
        |at: usize| moved(at).and_then(|q| old.binary_search_by_key(&q, |s| s.start as usize).ok());
    let (found, stopped) = scan(text, restart, |at| at >= settled && old_start(at).is_some());
    let mut out: Vec<Span> = old.iter().take(first).copied().collect();
    out.extend(found.chunks.iter().map(|c| c.span));
    if let Some(j) = stopped.and_then(old_start) {
        let shift = |x: u32| (x as usize + now.len() - was.len()) as u32;
        out.extend(old.iter().skip(j).map(|s| Span {
            start: shift(s.start),
            end: shift(s.end),
        }));
    }
    out
}

/// How many bytes `was` and `now` begin with alike, and how many of the
/// rest they end with alike (the two never overlap in either text).
pub fn common_ends(was: &str, now: &str) -> (usize, usize) {
    let (was, now) = (was.as_bytes(), now.as_bytes());
    let prefix = common_prefix(was, now);
    let most = was.len().min(now.len()) - prefix;
    (prefix, common_suffix(was, now, most))
}

/// Bytes compared at once while looking for the first difference (slices
/// compare as one `memcmp`).
const BLOCK: usize = 4096;

/// How many bytes `a` and `b` begin with alike.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut n = 0;
    while let (Some(x), Some(y)) = (a.get(n..n + BLOCK), b.get(n..n + BLOCK))
        && x == y
    {
        n += BLOCK;
    }
    n + (a.iter().skip(n).zip(b.iter().skip(n)))
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many bytes `a` and `b` end with alike, at most `most`.
fn common_suffix(a: &[u8], b: &[u8], most: usize) -> usize {
    let mut n = 0;
    while n + BLOCK <= most
        && let (Some(x), Some(y)) = (
            a.get(a.len() - n - BLOCK..a.len() - n),
            b.get(b.len() - n - BLOCK..b.len() - n),
        )
        && x == y
    {
        n += BLOCK;
    }
    n + (a.iter().rev().skip(n).zip(b.iter().rev().skip(n)))
        .take(most - n)
        .take_while(|(x, y)| x == y)
        .count()
}

/// Scan `text` from byte `from` (a chunk start, or 0) until its end, or
/// until a chunk start that `stop` accepts (returned: the chunks found end
/// there).
fn scan(text: &str, from: usize, mut stop: impl FnMut(usize) -> bool) -> (Split, Option<usize>) {
    let bytes = text.as_bytes();
    let mut out = Split::default();
    let mut chunk_start = from;
    let mut depth = 0usize;
    // Open set types (`set<`), a nesting of their own.
    let mut angles = 0usize;
    let mut too_deep_at = None;
    let mut unterminated: Option<usize> = None;
    let mut i = from;
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
            if stop(i) {
                return (out, Some(i));
            }
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
                i += bytes.get(i..).map_or(0, next_special);
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
    (out, None)
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
    fn chunks_after_an_edit_are_the_chunks_of_the_text() {
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
        let mut texts: Vec<String> = std::fs::read_dir(examples)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pmf"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        texts.push(String::new());
        assert!(texts.len() > 3);
        // What edits insert: keywords at line starts, line ends, comment
        // and string marks, whole declarations.
        let pieces = [
            "\n",
            "authority X \"x\" governs y\n",
            "rite",
            "\nrite q \"w\"\n",
            "/*",
            "*/",
            "\"",
            "//",
            "  ",
            "{",
            "}",
            "x",
            "\ncategory c \"c\" covers power\n",
        ];
        let mut seed = 0x2545_f491_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        for text in texts {
            let mut text = text;
            let mut spans: Vec<Span> = split(&text).chunks.iter().map(|c| c.span).collect();
            for step in 0..400 {
                let mut at = next(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let mut edited = text.clone();
                if next(2) == 0 {
                    edited.insert_str(at, pieces[next(pieces.len())]);
                } else {
                    let mut end = (at + next(40)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    edited.replace_range(at..end, "");
                }
                let after = chunk_spans_after(&spans, &text, &edited, common_ends(&text, &edited));
                let whole: Vec<Span> = split(&edited).chunks.iter().map(|c| c.span).collect();
                assert_eq!(
                    after, whole,
                    "step {step} at {at}: {:?} -> {:?}",
                    &text, &edited
                );
                text = edited;
                spans = after;
            }
        }
    }

    #[test]
    fn common_ends_are_found_across_blocks() {
        let a: Vec<u8> = (0..3 * BLOCK + 17).map(|i| (i % 251) as u8).collect();
        for at in [0, 1, BLOCK - 1, BLOCK, BLOCK + 5, 2 * BLOCK, a.len() - 1] {
            let mut b = a.clone();
            b.insert(at, 255);
            assert_eq!(common_prefix(&a, &b), at, "{at}");
            let most = a.len() - at;
            assert_eq!(common_suffix(&a, &b, most), a.len() - at, "{at}");
            assert_eq!(common_suffix(&a, &b, 3), 3.min(a.len() - at), "{at}");
        }
        assert_eq!(common_prefix(&a, &a), a.len());
        assert_eq!(common_suffix(&a, &a, a.len()), a.len());
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
