//! The lineage as a Merkle tree in the style of Certificate Transparency
//! (RFC 6962 §2.1, verification as in RFC 9162 §2.1.3–2.1.4).
//!
//! Leaf `i` is event `#i+1`; its input is the 32 bytes of the event's chain
//! hash (which covers the event's JSON and its partner's previous event).
//! Leaf hash = SHA-256(0x00 ‖ input); node hash = SHA-256(0x01 ‖ left ‖ right);
//! the root of no leaves is SHA-256 of nothing. A signed checkpoint names a
//! tree size and its root; an inclusion proof shows that an event is in the
//! tree of a checkpoint, a consistency proof that a later tree extends an
//! earlier one (nothing before it was changed, removed or reordered).

use sha2::{Digest, Sha256};

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// The hash of a leaf whose input is `data`.
pub(crate) fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an inner node.
pub(crate) fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree.
pub(crate) fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Lowercase hex of a hash.
pub fn to_hex(h: &Hash) -> String {
    hex::encode(h)
}

/// A hash from 64 hex digits.
pub(crate) fn from_hex(s: &str) -> Option<Hash> {
    hex::decode(s).ok().and_then(|b| b.try_into().ok())
}

/// The right edge of a growing tree: the roots of its perfect subtrees,
/// largest first (one per bit set in the size). Appending a leaf and taking
/// the root cost O(log n); it is all a writer keeps between transactions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves with these peaks, if they fit.
    pub(crate) fn from_parts(size: u64, peaks: Vec<Hash>) -> Option<Frontier> {
        (size.count_ones() as usize == peaks.len()).then_some(Frontier { size, peaks })
    }

    /// Number of leaves.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The peaks, largest first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Append the leaf whose input is `data`.
    pub fn push(&mut self, data: &[u8]) {
        let mut hash = leaf_hash(data);
        // Merge with the peaks of equal size: one per trailing one-bit.
        let mut n = self.size;
        while n & 1 == 1 {
            if let Some(left) = self.peaks.pop() {
                hash = node_hash(&left, &hash);
            }
            n >>= 1;
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// Append a perfect subtree of `2^height` leaves whose root is `root`
    /// ([`subtree_root`]): what pushing its leaves one by one would do.
    /// `None` (nothing appended) unless the size is a multiple of its
    /// leaves, where such a subtree starts.
    pub(crate) fn push_subtree(&mut self, root: Hash, height: u32) -> Option<()> {
        let leaves = 1u64.checked_shl(height)?;
        if !self.size.is_multiple_of(leaves) {
            return None;
        }
        let mut hash = root;
        // Merge with the peaks of its size and above: one per one-bit of
        // the size counted in such subtrees.
        let mut n = self.size >> height;
        while n & 1 == 1 {
            if let Some(left) = self.peaks.pop() {
                hash = node_hash(&left, &hash);
            }
            n >>= 1;
        }
        self.peaks.push(hash);
        self.size += leaves;
        Some(())
    }

    /// The tree's root.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(mut root) = peaks.next().copied() else {
            return empty_root();
        };
        for left in peaks {
            root = node_hash(left, &root);
        }
        root
    }
}

/// The root of the perfect subtree over leaf inputs `inputs` (a power of
/// two of them; `None` otherwise).
pub(crate) fn subtree_root(inputs: &[Hash]) -> Option<Hash> {
    if !inputs.len().is_power_of_two() {
        return None;
    }
    let n = inputs.len() as u64;
    Tree::of_leaf_hashes(inputs.iter().map(|i| leaf_hash(i)).collect()).root_of(n)
}

/// Every level of the tree over `leaves` (leaf hashes at level 0): node `i`
/// of level `h` is the root of leaves `i·2^h .. min((i+1)·2^h, n)`, an odd
/// last node being carried up as is, which is exactly RFC 6962's tree.
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The tree over these leaf inputs (tests; a store's log is hashed
    /// as it is read, [`Tree::of_leaf_hashes`]).
    #[cfg(test)]
    pub(crate) fn new<'a>(inputs: impl IntoIterator<Item = &'a [u8]>) -> Tree {
        Tree::of_leaf_hashes(inputs.into_iter().map(leaf_hash).collect())
    }

    /// The tree over leaves already hashed ([`leaf_hash`] of each input):
    /// a store's log is hashed as it is read, never held twice.
    pub(crate) fn of_leaf_hashes(leaves: Vec<Hash>) -> Tree {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let up: Vec<Hash> = below
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => node_hash(l, r),
                    [only] => *only,
                    _ => empty_root(),
                })
                .collect();
            levels.push(up);
        }
        Tree { levels }
    }

    /// Number of leaves.
    pub(crate) fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The root of the first `n` leaves (`None` past the tree's size).
    pub fn root_of(&self, n: u64) -> Option<Hash> {
        (n <= self.size()).then(|| self.mth(0, n))
    }

    /// The root of leaves `lo..hi`, where the range is a left part of a
    /// subtree as RFC 6962 splits it (`lo` aligned to the largest power of
    /// two not above `hi - lo`).
    fn mth(&self, lo: u64, hi: u64) -> Hash {
        let n = hi - lo;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() {
            let h = n.trailing_zeros() as usize;
            if let Some(node) = self
                .levels
                .get(h)
                .and_then(|level| level.get((lo >> h) as usize))
                && lo.is_multiple_of(n)
            {
                return *node;
            }
        }
        let k = split(n);
        node_hash(&self.mth(lo, lo + k), &self.mth(lo + k, hi))
    }

    /// The audit path of leaf `index` in the tree of the first `n` leaves
    /// (RFC 6962 PATH), or `None` when out of range.
    pub fn inclusion_proof(&self, index: u64, n: u64) -> Option<Vec<Hash>> {
        if index >= n || n > self.size() {
            return None;
        }
        let mut out = Vec::new();
        self.path(index, 0, n, &mut out);
        Some(out)
    }

    fn path(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, lo, lo + k, out);
            out.push(self.mth(lo + k, hi));
        } else {
            self.path(m - k, lo + k, hi, out);
            out.push(self.mth(lo, lo + k));
        }
    }

    /// The proof that the tree of `second` leaves extends the tree of
    /// `first` leaves (RFC 6962 PROOF), or `None` when out of range.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Option<Vec<Hash>> {
        if first > second || second > self.size() {
            return None;
        }
        let mut out = Vec::new();
        if first > 0 && first < second {
            self.subproof(first, 0, second, true, &mut out);
        }
        Some(out)
    }

    fn subproof(&self, m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(self.mth(lo, hi));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, lo, lo + k, whole, out);
            out.push(self.mth(lo + k, hi));
        } else {
            self.subproof(m - k, lo + k, hi, false, out);
            out.push(self.mth(lo, lo + k));
        }
    }
}

/// The largest power of two below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// Whether `proof` shows leaf `index` (with hash `leaf`) in the tree of
/// `size` leaves with root `root` (RFC 9162 §2.1.3.2).
#[cfg(test)]
fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Whether `proof` shows that the tree of `second` leaves (root
/// `second_root`) extends the tree of `first` leaves (root `first_root`)
/// (RFC 9162 §2.1.4.2).
#[cfg(test)]
fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty() && *first_root == empty_root();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((head, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*head, *head);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *first_root && sr == *second_root && s == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(n: u64) -> Vec<Vec<u8>> {
        (0..n).map(|i| i.to_le_bytes().to_vec()).collect()
    }

    /// RFC 6962's MTH, written straight from its definition.
    fn reference_root(leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn frontier_and_tree_agree_with_the_definition() {
        let all = inputs(70);
        let tree = Tree::new(all.iter().map(Vec::as_slice));
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), empty_root());
        for n in 1..=all.len() {
            frontier.push(&all[n - 1]);
            let want = reference_root(&all[..n]);
            assert_eq!(frontier.root(), want, "frontier, size {n}");
            assert_eq!(tree.root_of(n as u64), Some(want), "tree, size {n}");
            let again =
                Frontier::from_parts(frontier.size(), frontier.peaks().to_vec()).expect("fits");
            assert_eq!(again.root(), want);
        }
        assert!(Frontier::from_parts(3, vec![empty_root()]).is_none());
    }

    #[test]
    fn subtrees_pushed_whole_give_the_frontier_of_their_leaves() {
        let all: Vec<Hash> = inputs(100)
            .iter()
            .map(|i| Sha256::digest(i).into())
            .collect();
        for height in 0..4u32 {
            let block = 1usize << height;
            for n in 0..=all.len() {
                let mut one_by_one = Frontier::default();
                all[..n].iter().for_each(|i| one_by_one.push(i));
                let mut whole = Frontier::default();
                let chunks = all[..n].chunks_exact(block);
                let tail = chunks.remainder();
                for chunk in chunks {
                    let root = subtree_root(chunk).expect("a power of two");
                    whole.push_subtree(root, height).expect("at a multiple");
                }
                tail.iter().for_each(|i| whole.push(i));
                assert_eq!(whole, one_by_one, "height {height}, {n} leaves");
            }
        }
        // Not where a subtree of its size starts, or not a power of two.
        let mut f = Frontier::default();
        f.push(&all[0]);
        assert!(f.push_subtree(all[1], 1).is_none());
        assert!(subtree_root(&all[..3]).is_none());
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_changed_one_does_not() {
        let all = inputs(33);
        let tree = Tree::new(all.iter().map(Vec::as_slice));
        for n in 1..=33u64 {
            let root = tree.root_of(n).expect("in range");
            for i in 0..n {
                let proof = tree.inclusion_proof(i, n).expect("in range");
                let leaf = leaf_hash(&all[i as usize]);
                assert!(verify_inclusion(i, n, &leaf, &proof, &root), "{i} in {n}");
                let other = leaf_hash(b"forged");
                assert!(!verify_inclusion(i, n, &other, &proof, &root));
                if n > 1 {
                    assert!(!verify_inclusion((i + 1) % n, n, &leaf, &proof, &root) || n == 1);
                }
            }
        }
        assert!(tree.inclusion_proof(5, 5).is_none());
        assert!(tree.root_of(34).is_none());
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_rewrite_does_not() {
        let all = inputs(33);
        let tree = Tree::new(all.iter().map(Vec::as_slice));
        let mut forged = all.clone();
        forged[2] = b"rewritten".to_vec();
        let forged_tree = Tree::new(forged.iter().map(Vec::as_slice));
        for second in 0..=33u64 {
            for first in 0..=second {
                let proof = tree.consistency_proof(first, second).expect("in range");
                let (r1, r2) = (tree.root_of(first).unwrap(), tree.root_of(second).unwrap());
                assert!(
                    verify_consistency(first, second, &r1, &r2, &proof),
                    "{first} -> {second}"
                );
                // A log rewritten at event 3 does not extend a checkpoint past it.
                if first > 2 && first < second {
                    let p = forged_tree
                        .consistency_proof(first, second)
                        .expect("in range");
                    let f2 = forged_tree.root_of(second).unwrap();
                    assert!(!verify_consistency(first, second, &r1, &f2, &p));
                }
            }
        }
    }
}
