//! Stable places: where the compiler holds a file's syntax trees.
//!
//! A file is cut into chunks (see [`crate::split`]) and each chunk is parsed
//! alone as if it started at its *stable place*, its base. Bases are
//! multiples of a stride (a power of two at least twice as long as any
//! chunk), in the chunks' order, with room between them: an edit inside one
//! chunk moves no other chunk's places, and a chunk added or removed
//! ([`PlaceMap::following`]) takes a base in the room between its
//! neighbours, so the chunks around it keep theirs and nothing read from
//! them changes. Trees, items and diagnostics stay in stable places;
//! [`PlaceMap::bytes`] is the one way back to byte offsets of the text,
//! taken where a place meets the text (rendering, the language server,
//! slicing the source).

use std::collections::BTreeMap;

use crate::span::{LineIndex, Place, Span};

/// How many strides apart a new file's chunks are at most: the room for
/// chunks added between two of them before the file's places are laid out
/// again.
const ROOM: u64 = 64;

/// Where the chunks of one text start, and the stable place of each.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PlaceMap {
    /// The first byte of each chunk, in order.
    starts: Vec<u32>,
    /// The stable place of each chunk, increasing, each a multiple of
    /// `stride`; empty when the text is too large for that (stable places
    /// are then byte offsets).
    bases: Vec<u32>,
    /// Every chunk is shorter than this; a chunk's places are
    /// `base..base + stride`.
    stride: u32,
}

impl PlaceMap {
    /// The map of a text cut into `chunks` (in order, covering the text):
    /// bases spread evenly with room between them.
    pub fn new(chunks: &[Span]) -> Self {
        let starts: Vec<u32> = chunks.iter().map(|s| s.start).collect();
        let Some(stride) = stride_for(chunks) else {
            return PlaceMap {
                starts,
                bases: Vec::new(),
                stride: 0,
            };
        };
        let slots = slots(stride);
        let room = (slots / (2 * (chunks.len() as u64 + 1))).min(ROOM);
        if room == 0 {
            return PlaceMap {
                starts,
                bases: Vec::new(),
                stride: 0,
            };
        }
        let bases = (0..chunks.len() as u64)
            .map(|i| ((i + 1) * room * u64::from(stride)) as u32)
            .collect();
        PlaceMap {
            starts,
            bases,
            stride,
        }
    }

    /// The map of `chunks` of `text`, after `old` was the map of `old_text`:
    /// the chunks both texts begin and end with keep their bases, and the
    /// chunks between take bases in the room their neighbours leave (the
    /// same bases when as many chunks were there before). A new layout
    /// ([`PlaceMap::new`]) when there is no room or a chunk outgrew the
    /// stride.
    pub fn following(old: &PlaceMap, old_text: &str, chunks: &[Span], text: &str) -> Self {
        let fresh = || PlaceMap::new(chunks);
        if old.bases.is_empty() || chunks.iter().any(|c| c.len() >= old.stride as usize) {
            return fresh();
        }
        let old_spans = old.spans(old_text.len() as u32);
        let old_text_of = |s: &Span| old_text.get(s.range());
        let text_of = |s: &Span| text.get(s.range());
        let same = |a: &Span, b: &Span| old_text_of(a).is_some() && old_text_of(a) == text_of(b);
        let prefix = old_spans
            .iter()
            .zip(chunks)
            .take_while(|(a, b)| same(a, b))
            .count();
        let most = old_spans.len().min(chunks.len()) - prefix;
        let suffix = old_spans
            .iter()
            .rev()
            .zip(chunks.iter().rev())
            .take(most)
            .take_while(|(a, b)| same(a, b))
            .count();
        let (old_mid, new_mid) = (
            old_spans.len() - prefix - suffix,
            chunks.len() - prefix - suffix,
        );
        let stride = u64::from(old.stride);
        let mut bases: Vec<u32> = Vec::with_capacity(chunks.len());
        bases.extend(old.bases.iter().take(prefix));
        if new_mid == old_mid {
            bases.extend(old.bases.iter().skip(prefix).take(old_mid));
        } else {
            // The first chunk between keeps its base when there was one
            // there (a declaration added after it splits it, one removed
            // joins it again: its items keep their places).
            let kept = (old_mid >= 1 && new_mid >= 1)
                .then(|| old.bases.get(prefix).copied())
                .flatten();
            bases.extend(kept);
            // Slots (places / stride) free between the neighbours.
            let before = kept.or_else(|| {
                prefix
                    .checked_sub(1)
                    .and_then(|i| old.bases.get(i).copied())
            });
            let lo = match before {
                Some(b) => u64::from(b) / stride + 1,
                None => 0,
            };
            let hi = match old.bases.get(prefix + old_mid) {
                Some(&b) if suffix > 0 => u64::from(b) / stride,
                _ => slots(old.stride),
            };
            let (room, k) = (
                hi.saturating_sub(lo),
                (new_mid - usize::from(kept.is_some())) as u64,
            );
            if room < k {
                return fresh();
            }
            // At the end, as a new file's chunks are spaced; elsewhere,
            // spread over the room (strictly increasing: room >= k).
            let step = room / (k + 1);
            for j in 0..k {
                let slot = if suffix == 0 && step >= 1 {
                    lo + (j + 1) * step.min(ROOM) - 1
                } else {
                    lo + (j + 1) * room / (k + 1)
                };
                bases.push((slot * stride) as u32);
            }
        }
        bases.extend(old.bases.iter().skip(prefix + old_mid));
        PlaceMap {
            starts: chunks.iter().map(|s| s.start).collect(),
            bases,
            stride: old.stride,
        }
    }

    /// The map of one chunk's own text, the chunk at stable place `base`:
    /// its places are mapped to offsets in that text.
    pub fn chunk(base: u32) -> Self {
        PlaceMap {
            starts: vec![0],
            bases: vec![base],
            stride: u32::MAX,
        }
    }

    /// The map of a text that is one chunk starting at byte 0: stable
    /// places are byte offsets.
    pub fn identity() -> Self {
        PlaceMap::default()
    }

    /// How many chunks there are.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The chunks' byte ranges in a text of `len` bytes.
    pub fn spans(&self, len: u32) -> Vec<Span> {
        let ends = self.starts.iter().skip(1).copied().chain([len]);
        self.starts
            .iter()
            .zip(ends)
            .map(|(&start, end)| Span {
                start,
                end: end.max(start),
            })
            .collect()
    }

    /// The stable place where chunk `i` starts.
    pub fn base(&self, i: usize) -> u32 {
        match self.bases.get(i) {
            Some(&b) => b,
            None => self.starts.get(i).copied().unwrap_or(0),
        }
    }

    /// The byte offset of stable place `at`.
    pub fn offset(&self, at: u32) -> u32 {
        if self.bases.is_empty() {
            return at;
        }
        let i = self.bases.partition_point(|&b| b <= at).saturating_sub(1);
        match (self.starts.get(i), self.bases.get(i)) {
            (Some(&start), Some(&base)) => start + at.saturating_sub(base),
            _ => at,
        }
    }

    /// The place of byte range `span` of the text (the inverse of
    /// [`PlaceMap::bytes`]; a span over several chunks keeps its length).
    pub fn place(&self, span: Span) -> Place {
        if self.bases.is_empty() {
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
        if self.bases.is_empty() {
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

/// The stride for `chunks`: a power of two at least twice as long as the
/// longest (room to grow in place); `None` when not even one fits in u32.
fn stride_for(chunks: &[Span]) -> Option<u32> {
    let longest = chunks.iter().map(|s| s.len()).max().unwrap_or(0) as u64;
    let stride = (2 * longest + 2).next_power_of_two();
    u32::try_from(stride).ok()
}

/// How many strides fit in u32 (a chunk's places end within it).
fn slots(stride: u32) -> u64 {
    (1u64 << 32) / u64::from(stride.max(1))
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
        // Chunks of 10, 3 and 7 bytes: the stride is 32 (twice the longest,
        // rounded up to a power of two), and the chunks 64 strides apart.
        let map = PlaceMap::new(&[Span::new(0, 10), Span::new(10, 13), Span::new(13, 20)]);
        assert_eq!((map.base(0), map.base(1), map.base(2)), (2048, 4096, 6144));
        assert_eq!(map.bytes(Place::new(4097, 4099)), Span::new(11, 13));
        assert_eq!(map.bytes(Place::new(6145, 6147)), Span::new(14, 16));
        // A span over two chunks maps each end in its own chunk.
        assert_eq!(map.bytes(Place::new(2050, 6147)), Span::new(2, 16));
        // Empty spans stay empty.
        assert_eq!(map.bytes(Place::new(4098, 4098)), Span::new(12, 12));
    }

    #[test]
    fn bytes_map_to_places_and_back() {
        let map = PlaceMap::new(&[Span::new(0, 10), Span::new(10, 13), Span::new(13, 20)]);
        for (start, end) in [(0, 3), (10, 12), (14, 20), (13, 13)] {
            let span = Span::new(start, end);
            assert_eq!(map.bytes(map.place(span)), span, "{span:?}");
        }
        assert_eq!(map.place(Span::new(11, 12)), Place::new(4097, 4098));
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

    /// Chunks of `text` cut before every `|` (the `|` stays in the chunk).
    fn cut(text: &str) -> Vec<Span> {
        let mut starts: Vec<u32> = text.match_indices('|').map(|(i, _)| i as u32).collect();
        if starts.first() != Some(&0) {
            starts.insert(0, 0);
        }
        let ends = starts.iter().skip(1).copied().chain([text.len() as u32]);
        starts
            .iter()
            .zip(ends)
            .map(|(&s, e)| Span::new(s as usize, e as usize))
            .collect()
    }

    fn follow(old: &PlaceMap, old_text: &str, text: &str) -> PlaceMap {
        PlaceMap::following(old, old_text, &cut(text), text)
    }

    #[test]
    fn chunks_an_edit_leaves_alone_keep_their_places() {
        let a = "|aa|bbb|cc|dd";
        let map = PlaceMap::new(&cut(a));
        let bases = |m: &PlaceMap| (0..m.len()).map(|i| m.base(i)).collect::<Vec<_>>();
        let before = bases(&map);
        // A chunk added in the middle: the others keep their bases, the new
        // one takes one between its neighbours.
        let b = "|aa|bbb|new|cc|dd";
        let added = follow(&map, a, b);
        let after = bases(&added);
        assert_eq!(&after[..2], &before[..2]);
        assert_eq!(&after[3..], &before[2..]);
        assert!(after[1] < after[2] && after[2] < after[3], "{after:?}");
        // Removed again: the bases are the first ones.
        assert_eq!(bases(&follow(&added, b, a)), before);
        // An edit inside a chunk keeps every base.
        assert_eq!(bases(&follow(&map, a, "|aa|bXbb|cc|dd")), before);
        // A chunk split in two keeps its base for its first part; joined
        // again, it is where it was.
        let split = "|aa|bb|b|cc|dd";
        let parts = follow(&map, a, split);
        let after = bases(&parts);
        assert_eq!((&after[..2], &after[3..]), (&before[..2], &before[2..]));
        assert!(after[1] < after[2] && after[2] < after[3], "{after:?}");
        assert_eq!(bases(&follow(&parts, split, a)), before);
        // Added at the end and at the start.
        let end = bases(&follow(&map, a, "|aa|bbb|cc|dd|ee"));
        assert_eq!(&end[..4], &before[..]);
        let start = bases(&follow(&map, a, "|zz|aa|bbb|cc|dd"));
        assert_eq!(&start[1..], &before[..]);
        assert!(start[0] < start[1]);
        // A chunk that outgrows the stride lays the file out again.
        let long = format!("|aa|{}|cc|dd", "b".repeat(40));
        let again = follow(&map, a, &long);
        assert_eq!(bases(&again), bases(&PlaceMap::new(&cut(&long))));
    }

    #[test]
    fn places_stay_ordered_and_map_back_through_many_edits() {
        // A seeded walk of insertions and removals of chunks anywhere,
        // many at one place (the room between two chunks runs out, and the
        // file is laid out again).
        let mut seed = 0x9e37_79b9_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n.max(1)
        };
        let mut chunks: Vec<String> = (0..8).map(|i| format!("|c{i}")).collect();
        let mut text = chunks.concat();
        let mut map = PlaceMap::new(&cut(&text));
        for step in 0..3000 {
            let at = if step % 3 == 0 {
                4.min(chunks.len())
            } else {
                next(chunks.len() as u64 + 1) as usize
            };
            if next(3) == 0 && chunks.len() > 1 {
                chunks.remove(at.min(chunks.len() - 1));
            } else {
                chunks.insert(at, format!("|n{step}"));
            }
            let new_text = chunks.concat();
            map = follow(&map, &text, &new_text);
            text = new_text;
            let spans = cut(&text);
            assert_eq!(map.spans(text.len() as u32), spans, "step {step}");
            for (i, span) in spans.iter().enumerate() {
                if i > 0 {
                    assert!(
                        map.base(i - 1) + map.stride <= map.base(i),
                        "step {step}: chunk {i}"
                    );
                }
                assert_eq!(map.bytes(map.place(*span)), *span, "step {step}");
                let inner = Span::new(span.start as usize + 1, span.end as usize);
                assert_eq!(map.bytes(map.place(inner)), inner, "step {step}");
            }
        }
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
        // Stride 16, 64 strides apart: "cd" is at stable place 2048.
        assert_eq!(texts.slice("f.pmf", Place::new(2048, 2050)), "cd");
        assert_eq!(texts.line("f.pmf", Place::new(2051, 2052)), 3);
        assert_eq!(texts.slice("other.pmf", Place::new(0, 1)), "");
        assert_eq!(texts.line("other.pmf", Place::new(0, 1)), 1);
    }
}
