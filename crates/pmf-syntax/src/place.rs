//! Stable places: where the compiler holds a file's syntax trees.
//!
//! A file is cut into chunks (see [`crate::split`]) and each chunk is parsed
//! alone as if it started at its *stable place*: chunk `i` at `i * stride`,
//! the stride a power of two longer than any chunk. An edit inside one
//! chunk then moves no other chunk's places, so nothing read from the other
//! chunks changes. Trees, items and diagnostics stay in stable places;
//! [`PlaceMap::bytes`] is the one way back to byte offsets of the text,
//! taken where a place meets the text (rendering, the language server,
//! slicing the source).

use std::collections::BTreeMap;

use crate::span::{LineIndex, Place, Span};

/// Where the chunks of one text start, and the stable place of each.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PlaceMap {
    /// The first byte of each chunk, in order.
    starts: Vec<u32>,
    /// Chunk `i` starts at stable place `origin + i * stride`; 0 when the
    /// text is too large for that (stable places are then byte offsets).
    stride: u32,
    /// The stable place of the first chunk.
    origin: u32,
}

impl PlaceMap {
    /// The map of a text cut into `chunks` (in order, covering the text).
    pub fn new(chunks: &[Span]) -> Self {
        let longest = chunks.iter().map(|s| s.len()).max().unwrap_or(0) as u64;
        let stride = (longest + 1).next_power_of_two();
        let stride = if stride.saturating_mul(chunks.len() as u64) <= u64::from(u32::MAX) {
            stride as u32
        } else {
            0
        };
        PlaceMap {
            starts: chunks.iter().map(|s| s.start).collect(),
            stride,
            origin: 0,
        }
    }

    /// The map of one chunk's own text, the chunk at stable place `base`:
    /// its places are mapped to offsets in that text.
    pub fn chunk(base: u32) -> Self {
        PlaceMap {
            starts: vec![0],
            stride: u32::MAX,
            origin: base,
        }
    }

    /// The map of a text that is one chunk starting at byte 0: stable
    /// places are byte offsets.
    pub fn identity() -> Self {
        PlaceMap::default()
    }

    /// The stable place where chunk `i` starts.
    pub fn base(&self, i: usize) -> u32 {
        if self.stride == 0 {
            self.starts.get(i).copied().unwrap_or(0)
        } else {
            self.origin + i as u32 * self.stride
        }
    }

    /// The byte offset of stable place `at`.
    pub fn offset(&self, at: u32) -> u32 {
        if self.stride == 0 || self.starts.is_empty() {
            return at;
        }
        let i =
            ((at.saturating_sub(self.origin) / self.stride) as usize).min(self.starts.len() - 1);
        match self.starts.get(i) {
            Some(&start) => start + at.saturating_sub(self.base(i)),
            None => at,
        }
    }

    /// The place of byte range `span` of the text (the inverse of
    /// [`PlaceMap::bytes`]; a span over several chunks keeps its length).
    pub fn place(&self, span: Span) -> Place {
        if self.stride == 0 {
            return Place::new(span.start as usize, span.end as usize);
        }
        let i = self
            .starts
            .partition_point(|&s| s <= span.start)
            .saturating_sub(1);
        let start = self.starts.get(i).copied().unwrap_or(0);
        let at = (self.base(i) + span.start.saturating_sub(start)) as usize;
        Place::new(at, at + span.len())
    }

    /// The byte range a place names. Each end is mapped on its own: a
    /// place may cover several chunks (a test and its fixtures).
    pub fn bytes(&self, span: Place) -> Span {
        if self.stride == 0 {
            return Span {
                start: span.start,
                end: span.end,
            };
        }
        let start = self.offset(span.start);
        let end = if span.end > span.start {
            self.offset(span.end - 1) + 1
        } else {
            start
        };
        Span {
            start,
            end: end.max(start),
        }
    }
}

/// Texts by file name, each with its [`PlaceMap`]: what turns the places
/// that items, graphs and diagnostics hold into the text they name.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PlacedTexts {
    files: BTreeMap<String, (String, PlaceMap)>,
}

impl PlacedTexts {
    /// Add `file`'s text and its place map.
    pub fn insert(&mut self, file: String, text: String, places: PlaceMap) {
        self.files.insert(file, (text, places));
    }

    /// Add the files of `other` (replacing any of the same name).
    pub fn extend(&mut self, other: PlacedTexts) {
        self.files.extend(other.files);
    }

    /// Keep only the files whose names `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.files.retain(|f, _| keep(f));
    }

    /// The place map of `file`, if it is known.
    pub fn map(&self, file: &str) -> Option<&PlaceMap> {
        self.files.get(file).map(|(_, m)| m)
    }

    /// The text of `file`, if it is known.
    pub fn text(&self, file: &str) -> Option<&str> {
        self.files.get(file).map(|(t, _)| t.as_str())
    }

    /// The byte range in `file`'s text of `place`; for a file never cut
    /// into chunks, its byte offsets.
    pub fn bytes(&self, file: &str, place: Place) -> Span {
        match self.files.get(file) {
            Some((_, places)) => places.bytes(place),
            None => PlaceMap::identity().bytes(place),
        }
    }

    /// The text at `span` of `file`; empty when the file or the range is
    /// unknown.
    pub fn slice(&self, file: &str, span: Place) -> &str {
        self.text(file)
            .and_then(|t| t.get(self.bytes(file, span).range()))
            .unwrap_or("")
    }

    /// The 1-based line where `span` starts in `file`; 1 for an unknown
    /// file.
    pub fn line(&self, file: &str, span: Place) -> usize {
        self.text(file).map_or(1, |t| {
            let at = self.bytes(file, span).start as usize;
            LineIndex::new(t).line_col(t, at).line
        })
    }

    /// Every file's name, text and place map, in name order.
    pub fn into_files(self) -> impl Iterator<Item = (String, String, PlaceMap)> {
        self.files.into_iter().map(|(f, (t, m))| (f, t, m))
    }

    /// File name → text, for rendering.
    pub fn texts(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .map(|(f, (t, _))| (f.clone(), t.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_map_back_to_the_bytes_of_each_chunk() {
        // Chunks of 10, 3 and 7 bytes: the stride is 16.
        let map = PlaceMap::new(&[Span::new(0, 10), Span::new(10, 13), Span::new(13, 20)]);
        assert_eq!((map.base(0), map.base(1), map.base(2)), (0, 16, 32));
        assert_eq!(map.bytes(Place::new(17, 19)), Span::new(11, 13));
        assert_eq!(map.bytes(Place::new(33, 35)), Span::new(14, 16));
        // A span over two chunks maps each end in its own chunk.
        assert_eq!(map.bytes(Place::new(2, 35)), Span::new(2, 16));
        // Empty spans stay empty.
        assert_eq!(map.bytes(Place::new(18, 18)), Span::new(12, 12));
    }

    #[test]
    fn bytes_map_to_places_and_back() {
        let map = PlaceMap::new(&[Span::new(0, 10), Span::new(10, 13), Span::new(13, 20)]);
        for (start, end) in [(0, 3), (10, 12), (14, 20), (13, 13)] {
            let span = Span::new(start, end);
            assert_eq!(map.bytes(map.place(span)), span, "{span:?}");
        }
        assert_eq!(map.place(Span::new(11, 12)), Place::new(17, 18));
    }

    #[test]
    fn a_chunk_map_maps_to_the_chunk_text() {
        let map = PlaceMap::chunk(4096);
        assert_eq!(map.bytes(Place::new(4100, 4107)), Span::new(4, 11));
        // Where the chunk starts in a file map, its text starts in its own.
        let file = PlaceMap::new(&[Span::new(0, 5), Span::new(5, 9)]);
        let second = PlaceMap::chunk(file.base(1));
        let place = Place::new(file.base(1) as usize + 1, file.base(1) as usize + 3);
        assert_eq!(second.bytes(place), Span::new(1, 3));
        assert_eq!(file.bytes(place), Span::new(6, 8));
    }

    #[test]
    fn a_text_too_large_for_strides_keeps_byte_offsets() {
        // Two chunks of 1.5 GiB: two strides of 2 GiB do not fit in u32.
        let chunks = [
            Span::new(0, 0x6000_0000),
            Span::new(0x6000_0000, 0xC000_0000),
        ];
        let map = PlaceMap::new(&chunks);
        assert_eq!(map.base(1), 0x6000_0000);
        assert_eq!(map.bytes(Place::new(5, 9)), Span::new(5, 9));
    }

    #[test]
    fn placed_texts_slice_and_count_lines_through_the_map() {
        let text = "ab\ncd\nef";
        let mut texts = PlacedTexts::default();
        texts.insert(
            "f.pmf".into(),
            text.into(),
            PlaceMap::new(&[Span::new(0, 3), Span::new(3, 8)]),
        );
        // Stride 8: "cd" is at stable place 8.
        assert_eq!(texts.slice("f.pmf", Place::new(8, 10)), "cd");
        assert_eq!(texts.line("f.pmf", Place::new(11, 12)), 3);
        assert_eq!(texts.slice("other.pmf", Place::new(0, 1)), "");
        assert_eq!(texts.line("other.pmf", Place::new(0, 1)), 1);
    }
}
