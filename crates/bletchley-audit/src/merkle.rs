//! Merkle tree hashing, inclusion and consistency proofs as in RFC 9162 §2.1.

use bletchley_crypto::{sha256, sha256_parts};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// `HASH(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256_parts(&[&[0x00], data])
}

/// `HASH(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256_parts(&[&[0x01], left, right])
}

fn split(n: usize) -> usize {
    // Largest power of two strictly smaller than n (n >= 2).
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH(D[n]) over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the audit path of leaf `m`.
pub fn inclusion_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 || m >= n {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut p = inclusion_proof(m, &leaves[..k]);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = inclusion_proof(m - k, &leaves[k..]);
        p.push(root(&leaves[..k]));
        p
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnn, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node_hash(p, &r);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == root
}

fn subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if b { Vec::new() } else { vec![root(leaves)] };
    }
    let k = split(n);
    if m <= k {
        let mut p = subproof(m, &leaves[..k], b);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = subproof(m - k, &leaves[k..], false);
        p.push(root(&leaves[..k]));
        p
    }
}

/// PROOF(m, D[n]): proves the tree of the first `m` leaves is a prefix.
pub fn consistency_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if m == 0 || m >= leaves.len() {
        return Vec::new();
    }
    subproof(m, leaves, true)
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
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
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fnn, mut sn) = (first - 1, second - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    &fr == first_root && &sr == second_root && sn == 0
}

/// The right edge of a growing tree: roots of its perfect subtrees, largest
/// first. Appending is amortised O(1) and the root is O(log n), so a writer
/// need not keep every leaf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, hash), heights strictly decreasing.
    nodes: Vec<(u32, Hash)>,
}

impl Frontier {
    /// Adds a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.nodes.push((0, leaf));
        self.size += 1;
        while self.nodes.len() >= 2 {
            let (h2, r) = self.nodes[self.nodes.len() - 1];
            let (h1, l) = self.nodes[self.nodes.len() - 2];
            if h1 != h2 {
                break;
            }
            self.nodes.truncate(self.nodes.len() - 2);
            self.nodes.push((h1 + 1, node_hash(&l, &r)));
        }
    }

    /// The perfect subtrees as (height, root), largest first: enough to
    /// resume appending without rereading the leaves.
    pub fn nodes(&self) -> &[(u32, Hash)] {
        &self.nodes
    }

    /// Rebuilds a frontier from [`Frontier::nodes`]; `None` if the heights
    /// are not strictly decreasing.
    pub fn from_nodes(nodes: Vec<(u32, Hash)>) -> Option<Frontier> {
        if nodes.windows(2).any(|w| w[0].0 <= w[1].0) || nodes.iter().any(|(h, _)| *h >= 64) {
            return None;
        }
        let size = nodes.iter().map(|(h, _)| 1u64 << h).sum();
        Some(Frontier { size, nodes })
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// MTH of the leaves so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some((_, last)) = it.next() else {
            return sha256(&[]);
        };
        let mut r = *last;
        for (_, h) in it {
            r = node_hash(h, &r);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    #[test]
    fn known_answer_empty_and_single() {
        // RFC 9162: the hash of an empty list is the hash of an empty string.
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Leaf of the empty string, as in the Certificate Transparency test vectors.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    proptest! {
        #[test]
        fn frontier_matches_recursive_root(n in 0usize..300) {
            let l = leaves(n);
            let mut f = Frontier::default();
            for h in &l { f.push(*h); }
            prop_assert_eq!(f.root(), root(&l));
        }

        #[test]
        fn inclusion_proofs_verify(n in 1usize..200, m in any::<prop::sample::Index>()) {
            let l = leaves(n);
            let m = m.index(n);
            let r = root(&l);
            let p = inclusion_proof(m, &l);
            prop_assert!(verify_inclusion(m as u64, n as u64, &l[m], &p, &r));
            // Wrong leaf, wrong index or a bent proof fail.
            prop_assert!(!verify_inclusion(m as u64, n as u64, &leaf_hash(b"x"), &p, &r));
            if n > 1 {
                prop_assert!(!verify_inclusion(((m + 1) % n) as u64, n as u64, &l[m], &p, &r));
                let mut bad = p.clone();
                bad[0][0] ^= 1;
                prop_assert!(!verify_inclusion(m as u64, n as u64, &l[m], &bad, &r));
            }
        }

        #[test]
        fn consistency_proofs_verify(n in 1usize..200, m in any::<prop::sample::Index>()) {
            let l = leaves(n);
            let m = m.index(n) + 1;
            let p = consistency_proof(m, &l);
            let (r1, r2) = (root(&l[..m]), root(&l));
            prop_assert!(verify_consistency(m as u64, n as u64, &r1, &r2, &p));
            if m < n {
                // A rewritten history fails.
                let mut forked = l.clone();
                forked[m - 1] = leaf_hash(b"forged");
                prop_assert!(!verify_consistency(m as u64, n as u64, &root(&forked[..m]), &r2, &p));
            }
        }
    }
}
