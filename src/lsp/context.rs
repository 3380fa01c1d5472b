//! The lexical context of a cursor: the declaration it sits in, the brace
//! depth, the text before it on its line, and whether it is inside a
//! comment or a string. Completion and keyword hover work on text that does
//! not parse yet, so this reads the text, not the syntax tree.

use crate::syntax::split::TOP_LEVEL_KEYWORDS;

/// Where a cursor is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor<'a> {
    /// The keyword of the enclosing top-level declaration (after
    /// `override`), if any.
    pub decl: Option<&'static str>,
    /// Brace depth at the cursor inside that declaration.
    pub depth: usize,
    /// Text from the start of the line to the start of the word at the cursor.
    pub before: &'a str,
    /// The part of the word at the cursor before the cursor.
    pub word: &'a str,
    /// Byte offset where that word starts.
    pub word_start: usize,
    /// True inside a comment or a string literal.
    pub in_comment_or_string: bool,
    /// The whole text of the line up to the cursor.
    pub line: &'a str,
}

/// True for the characters of an identifier.
pub fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier around byte `offset`, with its start.
pub fn word_at(text: &str, offset: usize) -> Option<(usize, &str)> {
    let offset = super::convert::clamp_to_boundary(text, offset);
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident_char(c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .char_indices()
        .find(|&(_, c)| !is_ident_char(c))
        .map_or(text.len(), |(i, _)| offset + i);
    (start < end).then(|| (start, &text[start..end]))
}

/// The top-level keyword at the start of the line beginning at `at`.
fn top_level_keyword(text: &str, at: usize) -> Option<&'static str> {
    let rest = text.as_bytes().get(at..)?;
    TOP_LEVEL_KEYWORDS.iter().copied().find(|kw| {
        rest.starts_with(kw.as_bytes())
            && rest
                .get(kw.len())
                .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
    })
}

/// The context of byte `offset` in `text`.
pub fn cursor(text: &str, offset: usize) -> Cursor<'_> {
    let offset = super::convert::clamp_to_boundary(text, offset);
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..offset];
    let word_start = line
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident_char(c))
        .last()
        .map_or(offset, |(i, _)| line_start + i);

    // The enclosing declaration starts at the nearest line above (or this
    // one) that begins with a top-level keyword.
    let mut chunk_start = None;
    let mut at = line_start;
    loop {
        if let Some(kw) = top_level_keyword(text, at) {
            chunk_start = Some((at, kw));
            break;
        }
        if at == 0 {
            break;
        }
        at = text[..at - 1].rfind('\n').map_or(0, |i| i + 1);
    }
    let (scan_from, mut decl) = match chunk_start {
        Some((s, kw)) => (s, Some(kw)),
        None => (0, None),
    };
    if decl == Some("override") {
        let rest = text
            .get(scan_from + "override".len()..offset)
            .unwrap_or_default()
            .trim_start();
        decl = TOP_LEVEL_KEYWORDS
            .iter()
            .copied()
            .filter(|k| *k != "override")
            .find(|k| {
                rest.starts_with(k) && !rest[k.len()..].starts_with(|c: char| is_ident_char(c))
            });
    }
    let (depth, in_comment_or_string) = scan(&text[scan_from..offset]);
    Cursor {
        decl,
        depth,
        before: &text[line_start..word_start],
        word: &text[word_start..offset],
        word_start,
        in_comment_or_string,
        line,
    }
}

/// Brace depth at the end of `chunk`, and whether the end is inside a
/// comment or a string.
fn scan(chunk: &str) -> (usize, bool) {
    #[derive(PartialEq)]
    enum State {
        Code,
        Line,
        Block,
        Str,
    }
    let mut state = State::Code;
    let mut depth: usize = 0;
    let bytes = chunk.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        match state {
            State::Code => match b {
                b'/' if next == Some(b'/') => {
                    state = State::Line;
                    i += 1;
                }
                b'/' if next == Some(b'*') => {
                    state = State::Block;
                    i += 1;
                }
                b'"' => state = State::Str,
                b'{' => depth += 1,
                b'}' => depth = depth.saturating_sub(1),
                _ => {}
            },
            State::Line => {
                if b == b'\n' {
                    state = State::Code;
                }
            }
            State::Block => {
                if b == b'*' && next == Some(b'/') {
                    state = State::Code;
                    i += 1;
                }
            }
            State::Str => match b {
                b'\\' => i += 1,
                b'"' | b'\n' => state = State::Code,
                _ => {}
            },
        }
        i += 1;
    }
    (depth, state != State::Code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_declaration_and_depth() {
        let text = "policy a\n\noverride validation {\n  version {\n    x: par";
        let c = cursor(text, text.len());
        assert_eq!(c.decl, Some("validation"));
        assert_eq!(c.depth, 2);
        assert_eq!(c.word, "par");
        assert_eq!(c.before, "    x: ");
        assert!(!c.in_comment_or_string);
        // Inside the word `override` itself.
        let c = cursor("policy a\noverride ceiling x", 12);
        assert_eq!(c.decl, None);
        let c = cursor("policy a // x", 13);
        assert!(c.in_comment_or_string);
        let c = cursor("rite x \"wor", 11);
        assert!(c.in_comment_or_string);
        assert_eq!(word_at("a partner.x", 4), Some((2, "partner")));
        assert_eq!(word_at("a  b", 2), None);
    }
}
