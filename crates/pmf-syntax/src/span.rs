//! Byte spans into a source text and the line index that turns them into
//! 1-based line/column positions.

/// A half-open byte range `start..end` into one source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// First byte of the range.
    pub start: u32,
    /// One past the last byte of the range.
    pub end: u32,
}

impl Span {
    /// A span from byte offsets.
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end.max(start) as u32,
        }
    }

    /// The span shifted right by `offset` bytes.
    pub fn shifted(self, offset: usize) -> Self {
        Span::new(self.start as usize + offset, self.end as usize + offset)
    }

    /// The smallest span that covers both.
    pub fn cover(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Length in bytes.
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// True when the span covers no byte.
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The span as a `Range<usize>`.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A place in a file as its syntax tree holds it: the byte range a chunk
/// of the text covers, moved to the chunk's stable place (see
/// [`crate::place`]). A text parsed whole, or never cut into chunks (an
/// input file, a configuration), has its places at its byte offsets.
///
/// A place indexes no text: [`crate::PlaceMap::bytes`] is the one way to
/// the [`Span`] it names. Places of one file keep the order of the bytes
/// they name, so they can be compared and covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    /// Where it starts.
    pub start: u32,
    /// Where it ends (exclusive).
    pub end: u32,
}

impl Place {
    /// A place from its two ends.
    pub fn new(start: usize, end: usize) -> Self {
        Place {
            start: start as u32,
            end: end.max(start) as u32,
        }
    }

    /// The place of byte range `span` of a chunk whose first byte is at
    /// place `base`.
    pub fn at(span: Span, base: usize) -> Self {
        Place::new(span.start as usize + base, span.end as usize + base)
    }

    /// The smallest place that covers both.
    pub fn cover(self, other: Place) -> Place {
        Place {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// True when the place covers no byte.
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The empty place where this one starts.
    pub fn head(self) -> Place {
        Place {
            start: self.start,
            end: self.start,
        }
    }
}

/// A 1-based line and column (columns counted in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCol {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in Unicode scalar values.
    pub column: usize,
}

/// Maps byte offsets of one text to lines and columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    /// Index the line starts of `text`.
    pub fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { line_starts }
    }

    /// The 1-based line and character column of byte `offset` in `text`.
    pub fn line_col(&self, text: &str, offset: usize) -> LineCol {
        let offset = clamp_to_char_boundary(text, offset);
        // The last line starting at or before `offset` (the first starts at 0).
        let line = self
            .line_starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let column = text[start..offset].chars().count() - bom_before(text, start, offset) + 1;
        LineCol {
            line: line + 1,
            column,
        }
    }

    /// Byte offset where 0-based `line` starts, if the text has that line.
    pub fn line_start(&self, line: usize) -> Option<usize> {
        self.line_starts.get(line).copied()
    }

    /// Number of lines in the text.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }
}

/// 1 when the characters of `text` from `line_start` to `offset` begin with
/// a byte-order mark (at the start of the file), else 0: a byte-order mark
/// is no column.
pub(crate) fn bom_before(text: &str, line_start: usize, offset: usize) -> usize {
    let bom = '\u{feff}'.len_utf8();
    usize::from(line_start == 0 && offset >= bom && text.starts_with('\u{feff}'))
}

/// The largest char boundary of `text` that is `<= offset`.
pub fn clamp_to_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}
