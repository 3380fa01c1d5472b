//! Positions: byte offsets of the compiler ↔ LSP line/character positions.
//!
//! LSP counts characters in the negotiated encoding: UTF-16 code units by
//! default, bytes when the client offers `utf-8`. The compiler counts bytes
//! (every span is a byte range). [`LineIndex`] converts between the two in
//! both directions and never panics: out-of-range positions are clamped.

use lsp_types::{Position, PositionEncodingKind, Range};

use crate::syntax::Span;

/// The position encoding negotiated with the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Characters are bytes of UTF-8.
    Utf8,
    /// Characters are UTF-16 code units (the LSP default).
    Utf16,
}

impl Encoding {
    /// The encoding to use given the client's `general.positionEncodings`:
    /// UTF-8 when offered, UTF-16 (always supported) otherwise.
    pub fn negotiate(offered: Option<&[PositionEncodingKind]>) -> Self {
        let utf8 = offered.is_some_and(|kinds| kinds.contains(&PositionEncodingKind::UTF8));
        if utf8 {
            Encoding::Utf8
        } else {
            Encoding::Utf16
        }
    }

    /// The encoding as announced in the server capabilities.
    pub fn kind(self) -> PositionEncodingKind {
        match self {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }
    }
}

/// The line starts of one text, for converting offsets and positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineIndex {
    /// Byte offset of the start of every line (the first is 0; never empty).
    starts: Vec<u32>,
}

impl Default for LineIndex {
    /// The index of the empty text.
    fn default() -> Self {
        LineIndex { starts: vec![0] }
    }
}

impl LineIndex {
    /// Index the lines of `text` (lines end at `\n`; a `\r` before it is
    /// part of the line ending).
    pub fn new(text: &str) -> Self {
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| (i + 1) as u32),
        );
        LineIndex { starts }
    }

    /// The index of the text after `replaced` (a byte range of the old
    /// text) became `inserted`: the line starts inside the range go, those
    /// of `inserted` come in, and the later ones move by the change in
    /// length. Equal to [`LineIndex::new`] of the new text, without
    /// reading all of it (an edit in a large document).
    pub fn edit(&mut self, replaced: Span, inserted: &str) {
        let (start, end) = (replaced.start, replaced.end.max(replaced.start));
        // A line start `s` follows a newline at `s - 1`: it goes when that
        // newline was in the replaced range.
        let first = self.starts.partition_point(|&s| s <= start);
        let last = self.starts.partition_point(|&s| s <= end);
        let added = inserted
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| start + i as u32 + 1);
        let grown = inserted.len() as i64 - i64::from(end - start);
        let later: Vec<u32> = self
            .starts
            .get(last..)
            .unwrap_or_default()
            .iter()
            .map(|&s| (i64::from(s) + grown) as u32)
            .collect();
        self.starts.truncate(first);
        self.starts.extend(added);
        self.starts.extend(later);
    }

    /// Number of lines (a text ending with a newline has an empty last line).
    pub fn line_count(&self) -> usize {
        self.starts.len()
    }

    /// Byte range of 0-based `line`, without its line ending, if the text
    /// has that line.
    fn line_bounds(&self, text: &str, line: usize) -> Option<(usize, usize)> {
        let start = (*self.starts.get(line)? as usize).min(text.len());
        let mut end = self
            .starts
            .get(line + 1)
            .map_or(text.len(), |&s| (s as usize).saturating_sub(1))
            .min(text.len())
            .max(start);
        if end > start && text.as_bytes().get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        Some((start, end))
    }

    /// The position of byte `offset` (clamped to the text and to a
    /// character boundary).
    pub fn position(&self, text: &str, offset: usize, enc: Encoding) -> Position {
        let offset = clamp_to_boundary(text, offset);
        let line = match self.starts.binary_search(&(offset as u32)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        // The first line starts at 0.
        let start = self.starts.get(line).map_or(0, |&s| s as usize).min(offset);
        let character = match enc {
            Encoding::Utf8 => offset - start,
            Encoding::Utf16 => text[start..offset].chars().map(char::len_utf16).sum(),
        };
        Position::new(line as u32, character as u32)
    }

    /// The byte offset of `pos`: a line past the end is the end of the text;
    /// a character past the end of its line is the end of the line.
    pub fn offset(&self, text: &str, pos: Position, enc: Encoding) -> usize {
        let Some((start, end)) = self.line_bounds(text, pos.line as usize) else {
            return text.len();
        };
        let wanted = pos.character as usize;
        match enc {
            Encoding::Utf8 => clamp_to_boundary(text, (start + wanted).min(end)),
            Encoding::Utf16 => {
                let mut units = 0;
                for (i, c) in text[start..end].char_indices() {
                    if units >= wanted {
                        return start + i;
                    }
                    units += c.len_utf16();
                    if units > wanted {
                        // Inside a surrogate pair: stay before the character.
                        return start + i;
                    }
                }
                end
            }
        }
    }

    /// The LSP range of `span`.
    pub fn range(&self, text: &str, span: Span, enc: Encoding) -> Range {
        Range::new(
            self.position(text, span.start as usize, enc),
            self.position(text, span.end as usize, enc),
        )
    }

    /// The byte span of an LSP range (start and end ordered).
    pub fn span(&self, text: &str, range: Range, enc: Encoding) -> Span {
        let a = self.offset(text, range.start, enc);
        let b = self.offset(text, range.end, enc);
        Span::new(a.min(b), a.max(b))
    }
}

/// The largest character boundary of `text` that is `<= offset`.
pub fn clamp_to_boundary(text: &str, offset: usize) -> usize {
    crate::syntax::span::clamp_to_char_boundary(text, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index edited in place equals the index of the edited text, for
    /// edits that add, remove and replace newlines anywhere (a seeded
    /// xorshift walk over a text with CRLF and multibyte characters).
    #[test]
    fn an_edited_index_is_the_index_of_the_edited_text() {
        let mut text = String::from("policy a\r\n  x: é\n\nlast");
        let mut index = LineIndex::new(&text);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below.max(1) as u64) as usize
        };
        let pieces = ["", "\n", "a", "\r\n", "é\n\nz", "\n\n\n", "word"];
        for _ in 0..2000 {
            let mut a = clamp_to_boundary(&text, next(text.len() + 1));
            let mut b = clamp_to_boundary(&text, next(text.len() + 1));
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            if next(3) == 0 {
                b = a;
            }
            let inserted = pieces[next(pieces.len())];
            text.replace_range(a..b, inserted);
            index.edit(Span::new(a, b), inserted);
            assert_eq!(index, LineIndex::new(&text), "{text:?}");
        }
    }

    #[test]
    fn ascii_round_trip() {
        let text = "policy a\n  x\n";
        let idx = LineIndex::new(text);
        for enc in [Encoding::Utf8, Encoding::Utf16] {
            for off in 0..=text.len() {
                let p = idx.position(text, off, enc);
                assert_eq!(idx.offset(text, p, enc), off, "{off} {p:?}");
            }
        }
        assert_eq!(idx.position(text, 11, Encoding::Utf16), Position::new(1, 2));
    }

    #[test]
    fn utf16_counts_code_units() {
        // `ñ` is 2 bytes and 1 unit, `→` 3 bytes and 1 unit, `𝄞` 4 bytes and 2 units.
        let text = "// ñandú → 𝄞 x\nnext";
        let idx = LineIndex::new(text);
        let x = text.find('x').unwrap_or_default();
        assert_eq!(idx.position(text, x, Encoding::Utf16), Position::new(0, 14));
        assert_eq!(
            idx.position(text, x, Encoding::Utf8),
            Position::new(0, x as u32)
        );
        assert_eq!(idx.offset(text, Position::new(0, 14), Encoding::Utf16), x);
        // Past the end of the line: the end of the line.
        assert_eq!(
            idx.offset(text, Position::new(0, 99), Encoding::Utf16),
            x + 1
        );
        // Past the last line: the end of the text.
        assert_eq!(
            idx.offset(text, Position::new(9, 0), Encoding::Utf16),
            text.len()
        );
        // Inside a character: its start.
        let clef = text.find('𝄞').unwrap_or_default();
        assert_eq!(
            idx.offset(text, Position::new(0, 12), Encoding::Utf16),
            clef
        );
        assert_eq!(
            idx.position(text, clef + 1, Encoding::Utf8).character,
            clef as u32
        );
    }

    #[test]
    fn crlf_line_end_is_not_part_of_the_line() {
        let text = "ab\r\ncd";
        let idx = LineIndex::new(text);
        assert_eq!(idx.offset(text, Position::new(0, 9), Encoding::Utf16), 2);
        assert_eq!(idx.offset(text, Position::new(1, 1), Encoding::Utf16), 5);
    }
}
