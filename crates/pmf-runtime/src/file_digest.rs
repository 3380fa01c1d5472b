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
        return read_at(file, offset, len, |bytes| {
            blake3::Hasher::new()
                .set_input_offset(offset)
                .update(bytes)
                .finalize_non_root()
        });
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
