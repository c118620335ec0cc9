//! RFC 9162 inclusion and consistency proofs (§2.1.3, §2.1.4), built from stored complete
//! subtrees, and their verification.
//!
//! Making a proof takes three steps, so that the store reads only what it needs:
//!
//! 1. A plan ([`inclusion_plan`], [`consistency_plan`]) lists the leaf ranges `D[a:b]` whose
//!    Merkle tree hashes form the proof, in proof order.
//! 2. [`nodes_needed`] names the stored nodes ([`merkle::node_number`]) those ranges split into;
//!    the store fetches exactly those, in one query.
//! 3. [`assemble`] hashes the fetched nodes into the proof.
//!
//! Every range of a plan is a node of the RFC 9162 tree. Such a range splits into at most
//! O(log n) complete subtrees, and its hash is their right fold ([`subtrees`]).

use std::collections::HashMap;
use std::ops::Range;

use crate::digest::Digest;
use crate::merkle::{self, node_hash};

/// Why a proof cannot be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf is not in the tree.
    #[error("leaf {leaf_index} is not in a tree of {tree_size} leaves")]
    LeafOutOfRange {
        /// The 0-based leaf index.
        leaf_index: u64,
        /// The tree size.
        tree_size: u64,
    },
    /// The sizes of a consistency proof are not `0 < first <= second`.
    #[error("a consistency proof needs 0 < first size <= second size, not {first} and {second}")]
    BadSizes {
        /// The first (older) tree size.
        first: u64,
        /// The second (newer) tree size.
        second: u64,
    },
    /// A stored node the proof needs was not given.
    #[error("the stored Merkle node {0} is missing")]
    MissingNode(u64),
    /// The proof has the wrong number of hashes.
    #[error("the proof has {given} hashes where {expected} are needed")]
    WrongLength {
        /// How many hashes such a proof has.
        expected: usize,
        /// How many it has.
        given: usize,
    },
    /// The inclusion proof does not lead from the leaf to the root.
    #[error("the inclusion proof does not lead from the leaf hash to the root hash")]
    InclusionMismatch,
    /// The consistency proof does not lead to the first tree's root.
    #[error("the consistency proof does not lead to the first tree's root hash")]
    FirstRootMismatch,
    /// The consistency proof does not lead to the second tree's root.
    #[error("the consistency proof does not lead to the second tree's root hash")]
    SecondRootMismatch,
}

/// The largest power of two smaller than `n` (`n >= 2`): where RFC 9162 splits `D[n]`.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// The ranges whose hashes form `PATH(leaf_index, D[tree_size])` (RFC 9162 §2.1.3.1), bottom-up.
pub fn inclusion_plan(leaf_index: u64, tree_size: u64) -> Result<Vec<Range<u64>>, ProofError> {
    if leaf_index >= tree_size {
        return Err(ProofError::LeafOutOfRange {
            leaf_index,
            tree_size,
        });
    }
    // Walk down from the root, noting each sibling; the proof lists them bottom-up.
    let mut siblings = Vec::new();
    let (mut start, mut end) = (0, tree_size);
    while end - start > 1 {
        let middle = start + split(end - start);
        if leaf_index < middle {
            siblings.push(middle..end);
            end = middle;
        } else {
            siblings.push(start..middle);
            start = middle;
        }
    }
    siblings.reverse();
    Ok(siblings)
}

/// The ranges whose hashes form `PROOF(first, D[second])` (RFC 9162 §2.1.4.1), in proof order.
/// Equal sizes give an empty proof.
pub fn consistency_plan(first: u64, second: u64) -> Result<Vec<Range<u64>>, ProofError> {
    if first == 0 || first > second {
        return Err(ProofError::BadSizes { first, second });
    }
    // SUBPROOF(m, D[start:end], b), unrolled from the top.
    let mut siblings = Vec::new();
    let (mut start, mut end) = (0, second);
    let mut m = first;
    let mut whole = true;
    while m != end - start {
        let k = split(end - start);
        if m <= k {
            siblings.push(start + k..end);
            end = start + k;
        } else {
            siblings.push(start..start + k);
            start += k;
            m -= k;
            whole = false;
        }
    }
    if !whole {
        siblings.push(start..end);
    }
    siblings.reverse();
    Ok(siblings)
}

/// The complete subtrees, as `(level, index)`, that make up `range`, left to right: from each
/// start, the largest aligned power of two that fits. For a range of a plan (a node of the
/// RFC 9162 tree), its hash is the right fold `node_hash(s1, node_hash(s2, … sk))`.
pub fn subtrees(range: &Range<u64>) -> Vec<(u32, u64)> {
    let mut parts = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let fits = u64::BITS - 1 - (range.end - start).leading_zeros();
        let level = fits.min(start.trailing_zeros());
        parts.push((level, start >> level));
        start += 1 << level;
    }
    parts
}

/// The stored node numbers ([`merkle::node_number`]) that `plan` needs, sorted, each once.
pub fn nodes_needed(plan: &[Range<u64>]) -> Vec<u64> {
    let mut numbers: Vec<u64> = plan
        .iter()
        .flat_map(subtrees)
        .map(|(level, index)| merkle::node_number(level, index))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

/// The proof of `plan`: each range's hash, from the stored nodes it splits into.
pub fn assemble(
    plan: &[Range<u64>],
    nodes: &HashMap<u64, Digest>,
) -> Result<Vec<Digest>, ProofError> {
    plan.iter()
        .map(|range| {
            let hashes = subtrees(range)
                .into_iter()
                .map(|(level, index)| {
                    let number = merkle::node_number(level, index);
                    nodes
                        .get(&number)
                        .copied()
                        .ok_or(ProofError::MissingNode(number))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut hashes = hashes.iter().rev();
            Ok(match hashes.next() {
                None => merkle::empty_root(),
                Some(last) => hashes.fold(*last, |right, left| node_hash(left, &right)),
            })
        })
        .collect()
}

/// Checks that `path` proves the leaf `leaf_hash` at `leaf_index` is in the tree of
/// `tree_size` leaves with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Digest,
    path: &[Digest],
    root: &Digest,
) -> Result<(), ProofError> {
    let expected = inclusion_plan(leaf_index, tree_size)?.len();
    if path.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            given: path.len(),
        });
    }
    let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
    let mut r = *leaf_hash;
    for p in path {
        if sn == 0 {
            return Err(ProofError::InclusionMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 || r != *root {
        return Err(ProofError::InclusionMismatch);
    }
    Ok(())
}

/// Checks that `proof` shows the tree of `second` leaves with root `second_root` extends the
/// tree of `first` leaves with root `first_root` (RFC 9162 §2.1.4.2). Equal sizes need an
/// empty proof and equal roots.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Digest,
    second_root: &Digest,
    proof: &[Digest],
) -> Result<(), ProofError> {
    let expected = consistency_plan(first, second)?.len();
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            given: proof.len(),
        });
    }
    if first == second {
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::SecondRootMismatch)
        };
    }
    // When the first tree is a complete subtree, the proof starts with its own root.
    let mut hashes = proof.iter();
    let start = if first.is_power_of_two() {
        first_root
    } else {
        hashes.next().ok_or(ProofError::FirstRootMismatch)?
    };
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*start, *start);
    for c in hashes {
        if sn == 0 {
            return Err(ProofError::SecondRootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if fr != *first_root {
        return Err(ProofError::FirstRootMismatch);
    }
    if sn != 0 || sr != *second_root {
        return Err(ProofError::SecondRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;
    use crate::merkle::{empty_root, leaf_hash, Frontier};

    /// MTH as RFC 9162 §2.1.1 defines it.
    fn mth(leaves: &[Digest]) -> Digest {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// PATH as RFC 9162 §2.1.3.1 defines it.
    fn path(m: usize, leaves: &[Digest]) -> Vec<Digest> {
        let n = leaves.len();
        if n == 1 {
            return vec![];
        }
        let k = n.next_power_of_two() / 2;
        if m < k {
            let mut proof = path(m, &leaves[..k]);
            proof.push(mth(&leaves[k..]));
            proof
        } else {
            let mut proof = path(m - k, &leaves[k..]);
            proof.push(mth(&leaves[..k]));
            proof
        }
    }

    /// SUBPROOF as RFC 9162 §2.1.4.1 defines it.
    fn subproof(m: usize, leaves: &[Digest], whole: bool) -> Vec<Digest> {
        let n = leaves.len();
        if m == n {
            return if whole { vec![] } else { vec![mth(leaves)] };
        }
        let k = n.next_power_of_two() / 2;
        if m <= k {
            let mut proof = subproof(m, &leaves[..k], whole);
            proof.push(mth(&leaves[k..]));
            proof
        } else {
            let mut proof = subproof(m - k, &leaves[k..], false);
            proof.push(mth(&leaves[..k]));
            proof
        }
    }

    /// A log of `n` leaves and every node its appender stores.
    struct Log {
        leaves: Vec<Digest>,
        nodes: HashMap<u64, Digest>,
    }

    impl Log {
        fn new(n: u64) -> Self {
            let leaves: Vec<Digest> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let mut frontier = Frontier::new();
            let mut nodes = HashMap::new();
            for leaf in &leaves {
                nodes.extend(frontier.push(*leaf));
            }
            Log { leaves, nodes }
        }

        fn root(&self, size: u64) -> Digest {
            mth(&self.leaves[..size as usize])
        }

        fn inclusion(&self, index: u64, size: u64) -> Vec<Digest> {
            let plan = inclusion_plan(index, size).unwrap();
            self.fetch_and_assemble(&plan, size)
        }

        fn consistency(&self, first: u64, second: u64) -> Vec<Digest> {
            let plan = consistency_plan(first, second).unwrap();
            self.fetch_and_assemble(&plan, second)
        }

        /// Assembles from only the nodes the plan names, all of which a tree of `size` leaves
        /// has stored.
        fn fetch_and_assemble(&self, plan: &[Range<u64>], size: u64) -> Vec<Digest> {
            let fetched: HashMap<u64, Digest> = nodes_needed(plan)
                .into_iter()
                .map(|number| {
                    assert!(
                        number < merkle::stored_nodes(size),
                        "node {number} not yet stored"
                    );
                    (number, self.nodes[&number])
                })
                .collect();
            assemble(plan, &fetched).unwrap()
        }
    }

    fn big_log() -> &'static Log {
        static LOG: OnceLock<Log> = OnceLock::new();
        LOG.get_or_init(|| Log::new(4096))
    }

    fn check_inclusion(log: &Log, index: u64, size: u64) {
        let proof = log.inclusion(index, size);
        assert_eq!(
            proof,
            path(index as usize, &log.leaves[..size as usize]),
            "PATH({index}, D[{size}])"
        );
        let root = log.root(size);
        let leaf = log.leaves[index as usize];
        assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root), Ok(()));
    }

    fn check_consistency(log: &Log, first: u64, second: u64) {
        let proof = log.consistency(first, second);
        assert_eq!(
            proof,
            subproof(first as usize, &log.leaves[..second as usize], true),
            "PROOF({first}, D[{second}])"
        );
        let (first_root, second_root) = (log.root(first), log.root(second));
        assert_eq!(
            verify_consistency(first, second, &first_root, &second_root, &proof),
            Ok(())
        );
    }

    #[test]
    fn proofs_match_the_rfc_definitions_for_every_small_tree() {
        let log = Log::new(70);
        for size in 1..=70 {
            for index in 0..size {
                check_inclusion(&log, index, size);
            }
            for first in 1..=size {
                check_consistency(&log, first, size);
            }
        }
    }

    #[test]
    fn proofs_match_the_rfc_definitions_around_powers_of_two() {
        let log = big_log();
        for size in [127, 128, 129, 255, 256, 257, 1023, 1024, 1025] {
            let samples = [
                0,
                1,
                2,
                63,
                64,
                100,
                126,
                127,
                128,
                size / 2,
                size - 2,
                size - 1,
            ];
            for index in samples.into_iter().filter(|i| *i < size) {
                check_inclusion(log, index, size);
            }
            for first in samples.into_iter().filter(|f| *f >= 1 && *f <= size) {
                check_consistency(log, first, size);
            }
            check_consistency(log, size, size);
        }
    }

    #[test]
    fn subtrees_split_plan_ranges_into_aligned_powers_of_two() {
        assert_eq!(subtrees(&(0..8)), vec![(3, 0)]);
        assert_eq!(subtrees(&(8..13)), vec![(2, 2), (0, 12)]);
        assert_eq!(subtrees(&(4..7)), vec![(1, 2), (0, 6)]);
        assert_eq!(subtrees(&(64..70)), vec![(2, 16), (1, 34)]);
        assert!(subtrees(&(5..5)).is_empty());
    }

    #[test]
    fn plans_name_few_nodes() {
        let plan = inclusion_plan(5, 1000).unwrap();
        assert_eq!(plan.len(), 10);
        let needed = nodes_needed(&plan);
        assert!(needed.len() <= 10 * 10, "{}", needed.len());
        assert!(needed.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn plans_refuse_impossible_sizes() {
        assert_eq!(
            inclusion_plan(3, 3),
            Err(ProofError::LeafOutOfRange {
                leaf_index: 3,
                tree_size: 3
            })
        );
        assert!(inclusion_plan(0, 0).is_err());
        assert_eq!(inclusion_plan(0, 1), Ok(vec![]));
        assert!(consistency_plan(0, 5).is_err());
        assert!(consistency_plan(6, 5).is_err());
        assert_eq!(consistency_plan(5, 5), Ok(vec![]));
    }

    #[test]
    fn assembling_names_a_missing_node() {
        let plan = inclusion_plan(0, 4).unwrap();
        let mut nodes = Log::new(4).nodes;
        nodes.remove(&merkle::node_number(1, 1));
        assert_eq!(
            assemble(&plan, &nodes),
            Err(ProofError::MissingNode(merkle::node_number(1, 1)))
        );
    }

    fn flip(hash: &Digest, bit: usize) -> Digest {
        let mut bytes = hash.0;
        bytes[bit / 8] ^= 1 << (bit % 8);
        Digest(bytes)
    }

    #[test]
    fn inclusion_checks_refuse_any_change() {
        let log = big_log();
        for (index, size) in [
            (0, 1),
            (0, 2),
            (1, 2),
            (5, 7),
            (6, 7),
            (12, 13),
            (31, 64),
            (100, 129),
        ] {
            let proof = log.inclusion(index, size);
            let root = log.root(size);
            let leaf = log.leaves[index as usize];
            let ok = |i: u64, s: u64, l: &Digest, p: &[Digest], r: &Digest| {
                verify_inclusion(i, s, l, p, r).is_ok()
            };
            assert!(ok(index, size, &leaf, &proof, &root));
            for position in 0..proof.len() {
                for bit in [0, 77, 255] {
                    let mut bad = proof.clone();
                    bad[position] = flip(&bad[position], bit);
                    assert!(!ok(index, size, &leaf, &bad, &root));
                }
            }
            assert!(!ok(index, size, &flip(&leaf, 3), &proof, &root));
            assert!(!ok(index, size, &leaf, &proof, &flip(&root, 200)));
            for other in (0..size + 2).filter(|i| *i != index) {
                assert!(!ok(other, size, &leaf, &proof, &root), "index {other}");
            }
            // A proof for one tree does not verify in a tree of another size. (With the same
            // root it may: RFC 9162 binds a size to its root by the signed head, not the proof.)
            for other in (1..size + 3).filter(|s| *s != size) {
                let other_root = log.root(other);
                assert!(
                    !ok(index, other, &leaf, &proof, &other_root),
                    "size {other}"
                );
            }
            if !proof.is_empty() {
                assert!(!ok(index, size, &leaf, &proof[..proof.len() - 1], &root));
                assert!(!ok(index, size, &leaf, &proof[1..], &root));
            }
            let mut longer = proof.clone();
            longer.push(root);
            assert!(!ok(index, size, &leaf, &longer, &root));
            if size > 1 {
                assert!(!ok(index, size, &leaf, &proof, &leaf));
            }
        }
    }

    #[test]
    fn consistency_checks_refuse_any_change() {
        let log = big_log();
        for (first, second) in [
            (1, 2),
            (1, 8),
            (3, 7),
            (4, 7),
            (6, 8),
            (7, 13),
            (32, 33),
            (33, 129),
        ] {
            let proof = log.consistency(first, second);
            let (r1, r2) = (log.root(first), log.root(second));
            let ok = |f: u64, s: u64, a: &Digest, b: &Digest, p: &[Digest]| {
                verify_consistency(f, s, a, b, p).is_ok()
            };
            assert!(ok(first, second, &r1, &r2, &proof));
            for position in 0..proof.len() {
                for bit in [0, 100, 255] {
                    let mut bad = proof.clone();
                    bad[position] = flip(&bad[position], bit);
                    assert!(!ok(first, second, &r1, &r2, &bad));
                }
            }
            assert!(!ok(first, second, &flip(&r1, 9), &r2, &proof));
            assert!(!ok(first, second, &r1, &flip(&r2, 9), &proof));
            assert!(!ok(first, second, &r2, &r1, &proof));
            for other in (1..=second).filter(|f| *f != first) {
                assert!(
                    !ok(other, second, &log.root(other), &r2, &proof),
                    "first {other}"
                );
            }
            for other in (first..second + 3).filter(|s| *s != second) {
                assert!(
                    !ok(first, other, &r1, &log.root(other), &proof),
                    "second {other}"
                );
            }
            assert!(!ok(first, second, &r1, &r2, &proof[..proof.len() - 1]));
            assert!(!ok(first, second, &r1, &r2, &proof[1..]));
            let mut longer = proof.clone();
            longer.push(r2);
            assert!(!ok(first, second, &r1, &r2, &longer));
            assert!(!ok(first, second, &r1, &r2, &[]));
        }
    }

    #[test]
    fn equal_sizes_need_an_empty_proof_and_equal_roots() {
        let log = big_log();
        let root = log.root(9);
        assert_eq!(verify_consistency(9, 9, &root, &root, &[]), Ok(()));
        assert!(verify_consistency(9, 9, &root, &log.root(8), &[]).is_err());
        assert!(verify_consistency(9, 9, &root, &root, &[root]).is_err());
        assert!(verify_consistency(0, 9, &root, &root, &[]).is_err());
        assert!(verify_consistency(0, 0, &empty_root(), &empty_root(), &[]).is_err());
    }

    proptest! {
        #[test]
        fn random_proofs_match_the_rfc_and_verify(
            (first, second, index) in (1u64..=3000).prop_flat_map(|second| {
                (1..=second, Just(second), 0..second)
            })
        ) {
            let log = big_log();
            check_inclusion(log, index, second);
            check_consistency(log, first, second);
            // Proofs for another pair of sizes do not verify.
            if first < second {
                let other = log.consistency(first, second);
                let bad_first = if first > 1 { first - 1 } else { first + 1 };
                prop_assert!(verify_consistency(
                    bad_first, second, &log.root(bad_first), &log.root(second), &other
                ).is_err());
            }
        }
    }
}
