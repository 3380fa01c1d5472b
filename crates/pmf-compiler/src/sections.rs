//! A file's chunks in *sections*: runs of at most [`SECTION_CHUNKS`]
//! consecutive chunks, each an input of its own ([`crate::db::Section`]).
//!
//! After an edit the session sets again only the sections the edit
//! touched: the queries that put a file's chunks together
//! ([`crate::db::stable_file`]) then read one summary per section, and the
//! section that changed reads its own chunks, so an edit costs about
//! `chunks / SECTION_CHUNKS + SECTION_CHUNKS` look-ups, not one per chunk of
//! the file (a 10,000-line file has thousands of chunks).
//!
//! This module only lays sections out; it knows nothing of salsa.

use std::ops::Range;

use pmf_syntax::{PlaceMap, Span};

/// How many chunks a section made after an edit holds at most.
pub const SECTION_CHUNKS: usize = 32;

/// One chunk of a section: where it starts in the section's text, and its
/// stable place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SectionChunk {
    /// Its first byte, counted from the section's first byte.
    pub start: u32,
    /// Its stable place ([`PlaceMap::base`]).
    pub base: u32,
}

/// A section as the previous text laid it out.
#[derive(Clone, Copy, Debug)]
pub struct OldSection<'a> {
    /// The length of its text.
    pub len: usize,
    /// Its chunks.
    pub chunks: &'a [SectionChunk],
}

/// One section of a new layout, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// The previous layout's section at this index: the same text and the
    /// same chunks at the same stable places.
    Kept(usize),
    /// A new section of these chunks of the new text (indices into its
    /// chunk list).
    Fresh(Range<usize>),
}

/// The sections of a new text cut into `chunks` (placed by `places`): the
/// previous sections it begins and ends with are kept, and the chunks
/// between are cut into fresh sections of at most [`SECTION_CHUNKS`].
///
/// `old` is the previous text's layout (`old_len` bytes), and `prefix` and
/// `suffix` how many bytes the two texts begin and end with alike
/// ([`pmf_syntax::split::common_ends`]). A section is kept only when its
/// bytes are among those and its chunks start where they started, at the
/// same stable places: whatever it was made of is unchanged.
pub fn relayout(
    old: &[OldSection<'_>],
    old_len: usize,
    (prefix, suffix): (usize, usize),
    text_len: usize,
    chunks: &[Span],
    places: &PlaceMap,
) -> Vec<Piece> {
    let old_chunks: usize = old.iter().map(|s| s.chunks.len()).sum();
    // Whether old section `s`, at byte `at` of the old text, is in the new
    // text at byte `at + shift` as chunks `first..` of the new list.
    let same = |s: &OldSection<'_>, at: usize, first: usize, shift: isize| {
        let moved = |x: usize| x.checked_add_signed(shift);
        let end_now = first + s.chunks.len();
        let next_start = match chunks.get(end_now) {
            Some(c) => Some(c.start as usize),
            None => (end_now == chunks.len()).then_some(text_len),
        };
        next_start.is_some()
            && next_start == moved(at + s.len)
            && s.chunks.iter().enumerate().all(|(k, c)| {
                chunks.get(first + k).map(|n| n.start as usize) == moved(at + c.start as usize)
                    && places.base(first + k) == c.base
            })
    };
    // The sections the texts begin with alike.
    let (mut front, mut front_bytes, mut front_chunks) = (0, 0, 0);
    for s in old {
        let end = front_bytes + s.len;
        if end > prefix || !same(s, front_bytes, front_chunks, 0) {
            break;
        }
        front += 1;
        front_bytes = end;
        front_chunks += s.chunks.len();
    }
    // The sections they end with alike (after those).
    let shift = text_len as isize - old_len as isize;
    let (mut back, mut back_bytes, mut back_chunks) = (0, 0, 0);
    for s in old.iter().skip(front).rev() {
        // The old sections cover the old text, so neither count goes below
        // zero; checked all the same.
        let (Some(at), Some(first_old)) = (
            old_len.checked_sub(back_bytes + s.len),
            old_chunks.checked_sub(back_chunks + s.chunks.len()),
        ) else {
            break;
        };
        let Some(first) = (first_old + chunks.len()).checked_sub(old_chunks) else {
            break;
        };
        if at < old_len.saturating_sub(suffix) || first < front_chunks || !same(s, at, first, shift)
        {
            break;
        }
        back += 1;
        back_bytes += s.len;
        back_chunks += s.chunks.len();
    }
    let gap = front_chunks..chunks.len().saturating_sub(back_chunks).max(front_chunks);
    let mut out: Vec<Piece> = (0..front).map(Piece::Kept).collect();
    // The chunks between, in runs of about equal count.
    let runs = gap.len().div_ceil(SECTION_CHUNKS);
    for r in 0..runs {
        let from = gap.start + gap.len() * r / runs;
        let to = gap.start + gap.len() * (r + 1) / runs;
        out.push(Piece::Fresh(from..to));
    }
    out.extend((old.len() - back..old.len()).map(Piece::Kept));
    out
}

/// The chunks `range` of a text cut into `chunks` (placed by `places`) as
/// a section: its bytes and its chunks.
pub fn fresh_section(
    text_len: usize,
    chunks: &[Span],
    places: &PlaceMap,
    range: Range<usize>,
) -> (Range<usize>, Vec<SectionChunk>) {
    let start_of = |i: usize| chunks.get(i).map_or(text_len, |c| c.start as usize);
    let (from, to) = (start_of(range.start), start_of(range.end));
    let section = range
        .map(|i| SectionChunk {
            start: (start_of(i) - from) as u32,
            base: places.base(i),
        })
        .collect();
    (from..to, section)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmf_syntax::split::{chunk_spans_after, common_ends};

    /// A section laid out from the pieces and texts, as the session keeps it.
    struct Laid {
        text: String,
        chunks: Vec<SectionChunk>,
    }

    fn lay_out(
        text: &str,
        chunks: &[Span],
        places: &PlaceMap,
        pieces: &[Piece],
        old: &[Laid],
    ) -> Vec<Laid> {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Kept(i) => Laid {
                    text: old[*i].text.clone(),
                    chunks: old[*i].chunks.clone(),
                },
                Piece::Fresh(r) => {
                    let (bytes, chunks) = fresh_section(text.len(), chunks, places, r.clone());
                    Laid {
                        text: text[bytes].to_string(),
                        chunks,
                    }
                }
            })
            .collect()
    }

    fn first_layout(text: &str) -> (Vec<Span>, PlaceMap, Vec<Laid>) {
        let chunks = pmf_syntax::parser::chunk_spans(text);
        let places = PlaceMap::new(&chunks);
        let pieces = relayout(&[], 0, (0, 0), text.len(), &chunks, &places);
        let laid = lay_out(text, &chunks, &places, &pieces, &[]);
        (chunks, places, laid)
    }

    /// The layout's sections, read back: the text and every chunk's start
    /// in it and stable place.
    fn read_back(laid: &[Laid]) -> (String, Vec<(u32, u32)>) {
        let mut text = String::new();
        let mut chunks = Vec::new();
        for s in laid {
            assert!(!s.chunks.is_empty() && s.chunks.len() <= SECTION_CHUNKS);
            assert_eq!(s.chunks[0].start, 0);
            for c in &s.chunks {
                chunks.push((text.len() as u32 + c.start, c.base));
            }
            text.push_str(&s.text);
        }
        (text, chunks)
    }

    fn policy(decls: usize) -> String {
        let mut out = String::from("policy p extends kwanus\n");
        for i in 0..decls {
            out.push_str(&format!("authority A{i} \"A\" governs c{i} // {i}\n"));
        }
        out
    }

    /// Every edit's layout covers the new text exactly, chunk for chunk at
    /// the stable places of the file's map, and keeps the sections the edit
    /// did not reach.
    #[test]
    fn an_edit_keeps_the_sections_it_does_not_reach() {
        let text = policy(200);
        let (_, places, laid) = first_layout(&text);
        assert_eq!(laid.len(), 201usize.div_ceil(SECTION_CHUNKS));
        let edits: Vec<(usize, usize, &str)> = vec![
            (text.find("// 100").unwrap(), 0, "x"),
            (text.find("// 100").unwrap(), 6, ""),
            (
                text.find("authority A57").unwrap(),
                0,
                "category z \"Z\" covers power\n",
            ),
            (
                text.find("authority A31").unwrap(),
                text.find("authority A90").unwrap() - text.find("authority A31").unwrap(),
                "",
            ),
            (0, 0, "// top\n"),
            (text.len(), 0, "authority Last \"L\"\n"),
            (0, text.len(), "policy q\n"),
        ];
        for (at, len, with) in edits {
            let mut new = text.clone();
            new.replace_range(at..at + len, with);
            let old_spans = places.spans(text.len() as u32);
            let ends = common_ends(&text, &new);
            let new_chunks = chunk_spans_after(&old_spans, &text, &new, ends);
            let new_places = PlaceMap::following(&places, &text, &new_chunks, &new);
            let old: Vec<OldSection<'_>> = laid
                .iter()
                .map(|s| OldSection {
                    len: s.text.len(),
                    chunks: &s.chunks,
                })
                .collect();
            let pieces = relayout(&old, text.len(), ends, new.len(), &new_chunks, &new_places);
            let now = lay_out(&new, &new_chunks, &new_places, &pieces, &laid);
            let (back, placed) = read_back(&now);
            assert_eq!(back, new, "edit at {at}");
            let expected: Vec<(u32, u32)> = new_chunks
                .iter()
                .enumerate()
                .map(|(i, c)| (c.start, new_places.base(i)))
                .collect();
            assert_eq!(placed, expected, "edit at {at}");
            let fresh = pieces
                .iter()
                .filter(|p| matches!(p, Piece::Fresh(_)))
                .count();
            let kept = pieces.len() - fresh;
            if len + with.len() < 40 && at > 0 && at < text.len() {
                // A small edit inside the text: one section made again.
                assert_eq!(fresh, 1, "edit at {at}: {pieces:?}");
                assert_eq!(kept, laid.len() - 1, "edit at {at}: {pieces:?}");
            }
        }
    }

    /// A text laid out afresh (no previous sections) is cut into runs of at
    /// most [`SECTION_CHUNKS`], about equal.
    #[test]
    fn a_new_text_is_cut_into_runs_of_about_equal_count() {
        for decls in [0, 1, 30, 31, 32, 100] {
            let text = policy(decls);
            let (chunks, _, laid) = first_layout(&text);
            let sizes: Vec<usize> = laid.iter().map(|s| s.chunks.len()).collect();
            assert_eq!(sizes.iter().sum::<usize>(), chunks.len());
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(
                *max <= SECTION_CHUNKS && max - min <= 1,
                "{decls}: {sizes:?}"
            );
            assert_eq!(read_back(&laid).0, text);
        }
    }
}
