//! The Merkle tree over the log (RFC 9162 §2.1): hashing, how its nodes are numbered where
//! they are stored, and the frontier an appender keeps to extend it.
//!
//! Leaf `i` (0-based) is the event at position `i + 1`; its hash is `SHA-256(0x00 ‖ canonical
//! bytes)`, and an interior node's is `SHA-256(0x01 ‖ left ‖ right)`. Only complete subtrees
//! (`2^level` leaves starting at a multiple of `2^level`) are ever stored: they never change
//! once the log has grown past them. They are numbered in the order an appender completes
//! them (post-order, as in a Merkle mountain range), so the nodes of a stretch of the log are
//! one contiguous range of numbers: the first node of leaf `i` is number `2i - popcount(i)`.

use crate::digest::Digest;

/// The hash of a leaf: `SHA-256(0x00 ‖ canonical bytes)`.
pub fn leaf_hash(canonical: &[u8]) -> Digest {
    Digest::of(&[&[0x00], canonical])
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::of(&[&[0x01], left.as_bytes(), right.as_bytes()])
}

/// The root of the empty tree: `SHA-256()` of nothing.
pub fn empty_root() -> Digest {
    Digest::of(&[])
}

/// How many nodes are stored for a tree of `size` leaves; also the number of leaf `size`'s
/// own node, the first one stored when it is appended.
pub fn stored_nodes(size: u64) -> u64 {
    2 * size - u64::from(size.count_ones())
}

/// The number of the complete subtree of `2^level` leaves that starts at leaf
/// `index * 2^level`.
pub fn node_number(level: u32, index: u64) -> u64 {
    let last_leaf = ((index + 1) << level) - 1;
    stored_nodes(last_leaf) + u64::from(level)
}

/// The 1-based position of the event whose append stored node `number`: the inverse of the
/// numbering, so that a bad stored node can be blamed on an event.
pub fn first_position_of_node(number: u64) -> u64 {
    // Leaf `i` stores nodes `stored_nodes(i)` up to `stored_nodes(i + 1) - 1`; find the largest
    // `i` with `stored_nodes(i) <= number`. As `stored_nodes(i) >= 2i - 64`, it is at most
    // `number / 2 + 32`. The arithmetic is in u128 so that no size overflows.
    let first = |i: u128| 2 * i - u128::from(i.count_ones());
    let target = u128::from(number);
    let (mut low, mut high) = (0u128, target / 2 + 33);
    while high - low > 1 {
        let middle = (low + high) / 2;
        if first(middle) <= target {
            low = middle;
        } else {
            high = middle;
        }
    }
    u64::try_from(low + 1).expect("a node number's leaf fits in u64")
}

/// The largest complete subtrees a tree of `size` leaves splits into, left to right, as
/// `(level, index)`.
pub fn peaks(size: u64) -> Vec<(u32, u64)> {
    let mut start = 0;
    (0..u64::BITS)
        .rev()
        .filter(|level| size >> level & 1 == 1)
        .map(|level| {
            let peak = (level, start >> level);
            start += 1 << level;
            peak
        })
        .collect()
}

/// The right edge of the tree: the hashes of its [`peaks`], enough to append leaves and to
/// compute the root without the rest of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Digest>,
}

/// Why a frontier cannot be made from the given peaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tree of {size} leaves has {expected} peaks, not {given}")]
pub struct PeakCountError {
    size: u64,
    expected: usize,
    given: usize,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The frontier of a tree of `size` leaves, from its peaks' hashes in [`peaks`] order.
    pub fn from_peaks(size: u64, peaks: Vec<Digest>) -> Result<Self, PeakCountError> {
        let expected = size.count_ones() as usize;
        if peaks.len() != expected {
            return Err(PeakCountError {
                size,
                expected,
                given: peaks.len(),
            });
        }
        Ok(Self { size, peaks })
    }

    /// How many leaves the tree has.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; returns the nodes it completes as `(number, hash)`, the leaf first, in
    /// increasing number.
    pub fn push(&mut self, leaf: Digest) -> Vec<(u64, Digest)> {
        let mut level = 0;
        let mut index = self.size;
        let mut hash = leaf;
        let mut completed = vec![(node_number(0, index), leaf)];
        while self.size >> level & 1 == 1 {
            let left = self.peaks.pop().expect("a set bit of the size has a peak");
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            completed.push((node_number(level, index), hash));
        }
        self.peaks.push(hash);
        self.size += 1;
        completed
    }

    /// The tree's root (RFC 9162 MTH).
    pub fn root(&self) -> Digest {
        let mut peaks = self.peaks.iter().rev();
        match peaks.next() {
            None => empty_root(),
            Some(last) => peaks.fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH exactly as RFC 9162 §2.1.1 defines it, over all leaves.
    fn reference_root(leaves: &[Digest]) -> Digest {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                // The largest power of two smaller than n.
                let k = n.next_power_of_two() / 2;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Digest> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn the_frontier_root_is_the_merkle_tree_hash_at_every_size() {
        let all = leaves(70);
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for (n, leaf) in all.iter().enumerate() {
            frontier.push(*leaf);
            assert_eq!(
                frontier.root(),
                reference_root(&all[..=n]),
                "size {}",
                n + 1
            );
        }
    }

    #[test]
    fn nodes_are_numbered_in_the_order_they_are_completed() {
        let mut frontier = Frontier::new();
        let mut numbers = Vec::new();
        for leaf in leaves(100) {
            numbers.extend(frontier.push(leaf).into_iter().map(|(number, _)| number));
        }
        assert_eq!(numbers, (0..stored_nodes(100)).collect::<Vec<_>>());
        assert_eq!(node_number(0, 4), 7);
        assert_eq!(node_number(2, 0), 6);
        assert_eq!(node_number(1, 1), 5);
    }

    #[test]
    fn a_frontier_rebuilt_from_stored_peaks_continues_the_same_tree() {
        let all = leaves(45);
        let mut stored = std::collections::HashMap::new();
        let mut frontier = Frontier::new();
        for leaf in &all[..37] {
            stored.extend(frontier.push(*leaf));
        }
        let peak_hashes = peaks(37)
            .into_iter()
            .map(|(level, index)| stored[&node_number(level, index)])
            .collect();
        let mut reloaded = Frontier::from_peaks(37, peak_hashes).unwrap();
        assert_eq!(reloaded, frontier);
        for leaf in &all[37..] {
            assert_eq!(reloaded.push(*leaf), frontier.push(*leaf));
        }
        assert_eq!(reloaded.root(), reference_root(&all));
        assert!(Frontier::from_peaks(37, vec![]).is_err());
    }

    #[test]
    fn a_node_number_names_the_event_that_stored_it() {
        let mut frontier = Frontier::new();
        for position in 1..=2000 {
            for (number, _) in frontier.push(leaf_hash(&[0])) {
                assert_eq!(first_position_of_node(number), position, "node {number}");
            }
        }
        assert_eq!(first_position_of_node(0), 1);
        let first = |i: u64| 2 * u128::from(i) - u128::from(i.count_ones());
        for number in [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 40) + 12345] {
            let leaf = first_position_of_node(number) - 1;
            assert!(first(leaf) <= u128::from(number), "node {number}");
            assert!(first(leaf + 1) > u128::from(number), "node {number}");
        }
    }

    #[test]
    fn peaks_cover_the_tree_left_to_right() {
        assert_eq!(peaks(0), vec![]);
        assert_eq!(peaks(1), vec![(0, 0)]);
        assert_eq!(peaks(6), vec![(2, 0), (1, 2)]);
        assert_eq!(peaks(7), vec![(2, 0), (1, 2), (0, 6)]);
    }
}
