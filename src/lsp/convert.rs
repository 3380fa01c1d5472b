//! Positions: byte offsets of the compiler ↔ LSP line/character positions.
//!
//! LSP counts characters in the negotiated encoding: UTF-16 code units by
//! default, bytes when the client offers `utf-8`. The compiler counts bytes
//! (every span is a byte range). [`LineIndex`] converts between the two in
//! both directions and never panics: out-of-range positions are clamped.

use std::cell::Cell;

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
/// An index answers for the text it indexes (and, once edited, for the
/// edited text): it remembers its last UTF-16 answer to count the next
/// one on the same line from there.
#[derive(Clone, Debug)]
pub struct LineIndex {
    /// Byte offset of the start of every line (the first is 0; never empty).
    starts: Vec<u32>,
    /// The last UTF-16 position found ([`LineIndex::position`]).
    last: Cell<Counted>,
}

/// A UTF-16 column counted: in the text at `text` of `len` bytes, the
/// line starting at byte `line_start` holds `units` code units before
/// byte `offset`.
#[derive(Clone, Copy, Debug, Default)]
struct Counted {
    text: usize,
    len: usize,
    line_start: usize,
    offset: usize,
    units: usize,
}

impl PartialEq for LineIndex {
    /// Two indexes of the same lines are equal, whatever they last counted.
    fn eq(&self, other: &Self) -> bool {
        self.starts == other.starts
    }
}

impl Eq for LineIndex {}

impl Default for LineIndex {
    /// The index of the empty text.
    fn default() -> Self {
        LineIndex::of(vec![0])
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
        LineIndex::of(starts)
    }

    fn of(starts: Vec<u32>) -> Self {
        LineIndex {
            starts,
            last: Cell::default(),
        }
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
        // The text changed: what was counted in it no longer holds.
        self.last.take();
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
            Encoding::Utf16 => self.utf16_column(text, start, offset),
        };
        Position::new(line as u32, character as u32)
    }

    /// The UTF-16 code units of `text` between `line_start` and `offset`
    /// (both character boundaries, in that order). Counted on from the
    /// last column found when it is on the same line, before `offset`:
    /// the names or diagnostics of one long line are asked for in order,
    /// and each counted from the line's start made their positions
    /// quadratic in the line's length.
    fn utf16_column(&self, text: &str, line_start: usize, offset: usize) -> usize {
        let last = self.last.get();
        let same_text = last.text == text.as_ptr() as usize && last.len == text.len();
        let (from, before) = if same_text
            && last.line_start == line_start
            && (line_start..=offset).contains(&last.offset)
        {
            (last.offset, last.units)
        } else {
            (line_start, 0)
        };
        let units = before + utf16_len(text.get(from..offset).unwrap_or_default());
        self.last.set(Counted {
            text: text.as_ptr() as usize,
            len: text.len(),
            line_start,
            offset,
            units,
        });
        units
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

/// How many UTF-16 code units `s` takes: one per character, two for a
/// character beyond the Basic Multilingual Plane (its UTF-8 starts with a
/// byte of 0xF0 or more). Positions on one long line are asked for once
/// per name or diagnostic on it, each counted from the line's start, so
/// this counts eight bytes at a time (the standard library's ASCII test
/// and character count, and [`four_byte_leads`]) rather than decoding
/// characters: twenty to thirty times faster on a long line.
fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        return s.len();
    }
    s.chars().count() + four_byte_leads(s.as_bytes())
}

/// How many bytes of `bytes` are 0xF0 or more (the first bytes of UTF-8's
/// four-byte characters), a word at a time: a byte's top bit stays set in
/// `w & w << 1 & w << 2 & w << 3` when its four top bits are all set (a
/// shift carries a neighbour's bit only into bits the mask clears).
fn four_byte_leads(bytes: &[u8]) -> usize {
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut count = 0;
    for word in &mut words {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let w = u64::from_le_bytes(eight);
        count += (w & w << 1 & w << 2 & w << 3 & TOPS).count_ones() as usize;
    }
    count + words.remainder().iter().filter(|&&b| b >= 0xF0).count()
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
    fn utf16_len_counted_over_bytes_equals_it_counted_by_characters() {
        let pieces = [
            "a",
            "ñ",
            "→",
            "𝄞",
            "\u{feff}",
            "\u{10ffff}",
            "\u{7f}",
            "\u{80}",
            "\u{7ff}",
            "\u{800}",
            "\u{ffff}",
            "\u{10000}",
            "\r\n",
        ];
        let mut text = String::new();
        for round in 0..400 {
            text.push_str(pieces[(round * 7 + round / 3) % pieces.len()]);
            let by_chars: usize = text.chars().map(char::len_utf16).sum();
            assert_eq!(utf16_len(&text), by_chars, "{text:?}");
            assert_eq!(utf16_len(&text), text.encode_utf16().count());
        }
        // Every byte value, at every place in a word.
        let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for from in 0..8 {
            let slice = bytes.get(from..).unwrap_or_default();
            let by_bytes = slice.iter().filter(|&&b| b >= 0xF0).count();
            assert_eq!(four_byte_leads(slice), by_bytes, "from {from}");
        }
    }

    #[test]
    fn positions_counted_on_from_the_last_equal_those_counted_afresh() {
        let mut text = String::from("é x 𝄞 yy → z\nplain line here\n");
        text.push_str(&"ab ñ 𝄞 ".repeat(40));
        text.push('\n');
        let index = LineIndex::new(&text);
        let boundaries: Vec<usize> = (0..=text.len())
            .filter(|&o| text.is_char_boundary(o))
            .collect();
        // In order, backwards, and jumping about (lines and directions).
        let mut order = boundaries.clone();
        order.extend(boundaries.iter().rev());
        order.extend((0..boundaries.len()).map(|i| boundaries[(i * 37) % boundaries.len()]));
        for &offset in &order {
            assert_eq!(
                index.position(&text, offset, Encoding::Utf16),
                LineIndex::new(&text).position(&text, offset, Encoding::Utf16),
                "offset {offset}"
            );
        }
        // An edit of the same length in place (the text keeps its address
        // and length): what was counted before it no longer holds.
        let mut index = LineIndex::new(&text);
        let end = text.len() - 1;
        assert_eq!(
            index.position(&text, end, Encoding::Utf16),
            Position::new(2, 320)
        );
        let at = text.rfind("ñ").unwrap_or_default();
        text.replace_range(at..at + 2, "nn");
        index.edit(Span::new(at, at + 2), "nn");
        assert_eq!(
            index.position(&text, end, Encoding::Utf16),
            Position::new(2, 321)
        );
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
