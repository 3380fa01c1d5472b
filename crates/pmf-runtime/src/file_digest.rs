//! The BLAKE3 of an input file, hashed on every core.
//!
//! A plan's header binds the partner file by the BLAKE3 of its bytes, and
//! the header is written before the first entry: the file is hashed
//! before planning starts, while nothing else runs. Read and hashed on one
//! thread, a partner file of a million partners (325 MB) kept a core busy
//! 0.15 s and left the other idle.
//!
//! BLAKE3 is a tree: the file is cut into the subtrees BLAKE3 itself
//! defines (`blake3::hazmat::left_subtree_len`), down to pieces of at most
//! [`PIECE`] bytes, each read with a positioned read and hashed on the
//! pool's threads, then their chaining values are merged up to the root.
//! The result is `blake3::hash` of the bytes (a test holds it so for
//! lengths around every boundary). Memory: one piece per thread.
//!
//! [`HeadLastHasher`] uses the same tree the other way round: it hashes a
//! file as it is written, piece by piece, but keeps its first bytes to the
//! end, so that they may still change (a plan's header gets the digest of
//! the partner file it was planned from once the last partner is read).

use std::fs::File;
use std::os::unix::fs::FileExt;

use blake3::hazmat::{ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root};

/// The largest piece read and hashed as one (a power of two).
const PIECE: u64 = 4 << 20;

/// The BLAKE3 (hex) of the first `len` bytes of `file` (its length when
/// it was opened; a file that is shorter by the time it is read is an
/// error, one that grew is hashed to `len`).
pub fn blake3_hex(file: &File, len: u64) -> std::io::Result<String> {
    hash_in_pieces(file, len, PIECE).map(|h| h.to_hex().to_string())
}

fn hash_in_pieces(file: &File, len: u64, piece: u64) -> std::io::Result<blake3::Hash> {
    if len <= piece {
        return read_at(file, 0, len, blake3::hash);
    }
    let left = left_subtree_len(len);
    let (a, b) = rayon::join(
        || subtree(file, 0, left, piece),
        || subtree(file, left, len - left, piece),
    );
    Ok(blake3::hazmat::merge_subtrees_root(&a?, &b?, Mode::Hash))
}

/// The chaining value of the subtree of `len` bytes at `offset` (a
/// subtree of the file's tree: `offset` a multiple of the largest power of
/// two chunks in `len`, or `len` the file's last bytes).
fn subtree(file: &File, offset: u64, len: u64, piece: u64) -> std::io::Result<ChainingValue> {
    if len <= piece {
        return read_at(file, offset, len, |bytes| subtree_cv(offset, bytes));
    }
    let left = left_subtree_len(len);
    let (a, b) = rayon::join(
        || subtree(file, offset, left, piece),
        || subtree(file, offset + left, len - left, piece),
    );
    Ok(merge_subtrees_non_root(&a?, &b?, Mode::Hash))
}

/// `hash` of the `len` bytes of `file` at `offset`, read into the
/// thread's buffer (kept: fresh pages for every piece cost more than the
/// hashing).
fn read_at<T>(
    file: &File,
    offset: u64,
    len: u64,
    hash: impl FnOnce(&[u8]) -> T,
) -> std::io::Result<T> {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        buffer.resize(len as usize, 0);
        file.read_exact_at(buffer, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                std::io::Error::other("the file became shorter while it was being read")
            } else {
                e
            }
        })?;
        Ok(hash(buffer))
    })
}

/// BLAKE3 of bytes given in order, whose first `head` bytes are kept and
/// may be changed until [`HeadLastHasher::finalize`]; the bytes after them
/// are hashed as they come, in pieces of `piece` bytes (a power of two
/// number of BLAKE3 chunks: each such piece at its offset is a subtree of
/// the file's tree, and so is the last, shorter one), and the head's
/// pieces when it is final. Memory: the head, a piece, and 32 bytes a
/// piece.
pub struct HeadLastHasher {
    piece: usize,
    head: Vec<u8>,
    /// Bytes the head holds at most (a multiple of `piece`).
    head_len: usize,
    /// Bytes after the head not yet a whole piece.
    pending: Vec<u8>,
    /// Chaining values of the whole pieces after the head, in order.
    pieces: Vec<ChainingValue>,
    /// Bytes given in all.
    total: u64,
}

impl HeadLastHasher {
    /// A hasher that keeps at least the first `keep` bytes, in pieces of
    /// `piece` bytes (a power of two, at least a BLAKE3 chunk).
    pub fn new(piece: usize, keep: usize) -> HeadLastHasher {
        // A BLAKE3 chunk is 1 KiB.
        let piece = piece.next_power_of_two().max(1024);
        let head_len = keep.div_ceil(piece).max(1) * piece;
        HeadLastHasher {
            piece,
            head: Vec::new(),
            head_len,
            pending: Vec::new(),
            pieces: Vec::new(),
            total: 0,
        }
    }

    /// Hash `bytes`, which follow those given before.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.head.len() < self.head_len {
            let (head, rest) = bytes.split_at((self.head_len - self.head.len()).min(bytes.len()));
            self.head.extend_from_slice(head);
            bytes = rest;
        }
        if !self.pending.is_empty() {
            let (more, rest) = bytes.split_at((self.piece - self.pending.len()).min(bytes.len()));
            self.pending.extend_from_slice(more);
            bytes = rest;
            if self.pending.len() < self.piece {
                return;
            }
            let cv = self.cv_of_next(&self.pending);
            self.pieces.push(cv);
            self.pending.clear();
        }
        // Whole pieces straight from the caller's bytes: no copy.
        let mut wholes = bytes.chunks_exact(self.piece);
        for whole in &mut wholes {
            let cv = self.cv_of_next(whole);
            self.pieces.push(cv);
        }
        self.pending.extend_from_slice(wholes.remainder());
    }

    /// The chaining value of the next piece after the head.
    fn cv_of_next(&self, bytes: &[u8]) -> ChainingValue {
        subtree_cv(self.next_offset(), bytes)
    }

    /// Where the next piece after the head starts.
    fn next_offset(&self) -> u64 {
        (self.head_len + self.pieces.len() * self.piece) as u64
    }

    /// The first bytes given (up to the head's length), to change in place.
    pub fn head_mut(&mut self) -> &mut [u8] {
        &mut self.head
    }

    /// The hash of the bytes given, the head as it is now.
    pub fn finalize(self) -> blake3::Hash {
        let total = self.total;
        if total <= self.piece as u64 {
            return blake3::hash(&self.head);
        }
        // Every piece's chaining value, the head's first, then the tree
        // merged over them as BLAKE3 cuts it.
        let piece = self.piece;
        let mut cvs: Vec<ChainingValue> = self
            .head
            .chunks(piece)
            .enumerate()
            .map(|(i, bytes)| subtree_cv((i * piece) as u64, bytes))
            .collect();
        cvs.extend(self.pieces.iter().copied());
        if !self.pending.is_empty() {
            cvs.push(subtree_cv(self.next_offset(), &self.pending));
        }
        let piece = piece as u64;
        let left = left_subtree_len(total);
        let (a, b) = (
            merged(&cvs, 0, left, piece),
            merged(&cvs, left, total - left, piece),
        );
        blake3::hazmat::merge_subtrees_root(&a, &b, Mode::Hash)
    }
}

/// The chaining value of `bytes` as the subtree of the file's tree that
/// starts at `offset`.
fn subtree_cv(offset: u64, bytes: &[u8]) -> ChainingValue {
    blake3::Hasher::new()
        .set_input_offset(offset)
        .update(bytes)
        .finalize_non_root()
}

/// The chaining value of the subtree of `len` bytes at `offset`, from the
/// chaining values of the pieces of `piece` bytes that make it up.
fn merged(cvs: &[ChainingValue], offset: u64, len: u64, piece: u64) -> ChainingValue {
    if len <= piece {
        return cvs
            .get((offset / piece) as usize)
            .copied()
            .unwrap_or_default();
    }
    let left = left_subtree_len(len);
    merge_subtrees_non_root(
        &merged(cvs, offset, left, piece),
        &merged(cvs, offset + left, len - left, piece),
        Mode::Hash,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Pieces of 2 KiB cut files of up to 70 KiB into deep trees: every
    /// length around a chunk, piece and subtree boundary hashes as
    /// `blake3::hash` does.
    #[test]
    fn the_hash_in_pieces_is_the_hash_of_the_bytes() {
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 131 % 253) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let piece = 2048;
        let mut lengths = vec![0, 1, 1023, 1024, 1025, 2047, 2048, 2049, 3072, 5000, 69_999];
        for k in 2..=6 {
            let b = 1024usize << k;
            lengths.extend([b - 1, b, b + 1, b + 1024]);
        }
        for len in lengths {
            let got = hash_in_pieces(&file, len as u64, piece).unwrap();
            assert_eq!(got, blake3::hash(&bytes[..len]), "length {len}");
        }
        // The whole file, with the real piece size too.
        assert_eq!(
            blake3_hex(&file, bytes.len() as u64).unwrap(),
            blake3::hash(&bytes).to_hex().to_string()
        );
    }

    /// The head-last hash is the hash of the bytes as they end up, head
    /// changed or not, for lengths around every piece and head boundary and
    /// whatever sizes the bytes come in.
    #[test]
    fn the_head_last_hash_is_the_hash_of_the_final_bytes() {
        let bytes: Vec<u8> = (0..40_000u32).map(|i| (i * 131 % 253) as u8).collect();
        let piece = 2048;
        let mut lengths = vec![0, 1, 1024, 2047, 2048, 2049, 4095, 4096, 4097, 6144, 39_999];
        for k in 1..=4 {
            let b = 2048usize << k;
            lengths.extend([b - 1, b, b + 1, b + 2048, b + 4096 + 7]);
        }
        for keep in [0, 100, 2048, 3000, 5000] {
            for &len in &lengths {
                for step in [1000, 2048, 4096, 7777, 40_000] {
                    let mut h = HeadLastHasher::new(piece, keep);
                    for part in bytes[..len].chunks(step) {
                        h.update(part);
                    }
                    let mut end = bytes[..len].to_vec();
                    // Change the kept bytes after they were given.
                    let kept = h.head_mut();
                    assert!(kept.len() >= keep.min(len), "keep {keep} length {len}");
                    for (i, b) in kept.iter_mut().enumerate().take(keep) {
                        *b = b.wrapping_add(1);
                        end[i] = *b;
                    }
                    assert_eq!(
                        h.finalize(),
                        blake3::hash(&end),
                        "keep {keep} length {len} step {step}"
                    );
                }
            }
        }
    }

    /// A file shorter than the length it was opened with is an error,
    /// never the hash of fewer bytes.
    #[test]
    fn a_file_that_shrank_is_an_error() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[7u8; 10_000]).unwrap();
        for piece in [2048, PIECE] {
            let e = hash_in_pieces(&file, 12_000, piece).unwrap_err();
            assert!(e.to_string().contains("shorter"), "{e}");
        }
    }
}
