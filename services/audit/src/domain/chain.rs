//! The hash chain.
//!
//! Each stored event gets the next sequence number (1, 2, …, no gaps) and
//! `hash = SHA-256(previous_hash ‖ canonical)`, where `previous_hash` is the
//! hash of the event before it (32 zero bytes for sequence 1) and `canonical`
//! is the event's canonical encoding (see [`crate::domain::event::canonical_encoding`]).
//! `previous_hash` has a fixed length, so the concatenation is unambiguous.
//!
//! [`Verifier`] walks stored links in sequence order and reports the first
//! one that does not hold: an altered row (its hash no longer matches what it
//! holds), a deleted row (a gap in the sequence), a row whose queryable
//! columns were changed without touching the chained bytes, or a re-linked row.

use sha2::{Digest, Sha256};

/// A chain hash.
pub type Hash = [u8; 32];

/// The previous hash of sequence 1.
pub const GENESIS: Hash = [0; 32];

/// `SHA-256(previous ‖ canonical)`.
pub fn link_hash(previous: &Hash, canonical: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical);
    hasher.finalize().into()
}

/// `bytes` as a hash, when it has the right length.
pub fn as_hash(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

/// Where the chain ends now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Last sequence stored; 0 for an empty chain.
    pub sequence: u64,
    /// Its hash; [`GENESIS`] for an empty chain.
    pub hash: Hash,
}

impl Head {
    /// The head of an empty chain.
    pub const EMPTY: Head = Head {
        sequence: 0,
        hash: GENESIS,
    };
}

/// One new link: its place and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Sequence number.
    pub sequence: u64,
    /// Hash of the link before it.
    pub previous_hash: Hash,
    /// This link's hash.
    pub hash: Hash,
}

/// Extends the chain from `head` by each canonical encoding, in order.
pub fn extend<'a>(head: Head, canonicals: impl IntoIterator<Item = &'a [u8]>) -> Vec<Link> {
    let mut previous = head;
    canonicals
        .into_iter()
        .map(|canonical| {
            let link = Link {
                sequence: previous.sequence + 1,
                previous_hash: previous.hash,
                hash: link_hash(&previous.hash, canonical),
            };
            previous = Head {
                sequence: link.sequence,
                hash: link.hash,
            };
            link
        })
        .collect()
}

/// What kind of break (mirrors `ChainBreakKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The stored hash differs from the recomputed one, or the queryable
    /// columns differ from the chained event (the row was altered).
    HashMismatch,
    /// `previous_hash` differs from the previous link's hash.
    PreviousHashMismatch,
    /// A sequence number is missing (a row was deleted).
    SequenceGap,
    /// The chain ends before a checkpoint's sequence (the tail was truncated).
    Truncated,
    /// The hash at a checkpoint's sequence differs from the signed head hash.
    CheckpointMismatch,
    /// A checkpoint's signature does not verify, or its key is not ours.
    CheckpointSignatureInvalid,
}

/// The first broken link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The first sequence that does not verify.
    pub sequence: u64,
    /// Why.
    pub kind: BreakKind,
    /// In words, for the operator.
    pub detail: String,
}

/// A stored link as read back for verification.
#[derive(Debug, Clone, Copy)]
pub struct StoredLink<'a> {
    /// Sequence number as stored.
    pub sequence: u64,
    /// Canonical encoding as stored.
    pub canonical: &'a [u8],
    /// Previous hash as stored.
    pub previous_hash: &'a [u8],
    /// Hash as stored.
    pub hash: &'a [u8],
    /// Whether the queryable columns match what `canonical` says.
    pub columns_match: bool,
}

/// Walks stored links in sequence order, from an expected start.
#[derive(Debug, Clone)]
pub struct Verifier {
    expected_sequence: u64,
    expected_previous: Hash,
    verified: u64,
}

impl Verifier {
    /// Starts at `sequence`, whose previous hash must be `previous_hash`.
    pub fn starting_at(sequence: u64, previous_hash: Hash) -> Self {
        Self {
            expected_sequence: sequence,
            expected_previous: previous_hash,
            verified: 0,
        }
    }

    /// Checks the next stored link.
    pub fn check(&mut self, link: StoredLink<'_>) -> Result<(), Break> {
        if link.sequence != self.expected_sequence {
            return Err(Break {
                sequence: self.expected_sequence,
                kind: BreakKind::SequenceGap,
                detail: format!(
                    "sequence {} is missing: the next stored event is {} (an event was deleted)",
                    self.expected_sequence, link.sequence
                ),
            });
        }
        if link.previous_hash != self.expected_previous {
            return Err(Break {
                sequence: link.sequence,
                kind: BreakKind::PreviousHashMismatch,
                detail: format!(
                    "sequence {}: previous_hash does not match the hash of sequence {}",
                    link.sequence,
                    link.sequence.saturating_sub(1)
                ),
            });
        }
        let recomputed = link_hash(&self.expected_previous, link.canonical);
        if link.hash != recomputed {
            return Err(Break {
                sequence: link.sequence,
                kind: BreakKind::HashMismatch,
                detail: format!(
                    "sequence {}: the stored event does not match its hash (it was altered)",
                    link.sequence
                ),
            });
        }
        if !link.columns_match {
            return Err(Break {
                sequence: link.sequence,
                kind: BreakKind::HashMismatch,
                detail: format!(
                    "sequence {}: the queryable columns differ from the chained event (they were altered)",
                    link.sequence
                ),
            });
        }
        self.expected_previous = recomputed;
        self.expected_sequence += 1;
        self.verified += 1;
        Ok(())
    }

    /// Links verified so far.
    pub fn verified(&self) -> u64 {
        self.verified
    }

    /// The hash of the last verified link (or the start's previous hash).
    pub fn last_hash(&self) -> Hash {
        self.expected_previous
    }

    /// The sequence expected next.
    pub fn next_sequence(&self) -> u64 {
        self.expected_sequence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(links: &[Link], canonicals: &[Vec<u8>]) -> Vec<(u64, Vec<u8>, Hash, Hash)> {
        links
            .iter()
            .zip(canonicals)
            .map(|(link, canonical)| {
                (
                    link.sequence,
                    canonical.clone(),
                    link.previous_hash,
                    link.hash,
                )
            })
            .collect()
    }

    fn verify(rows: &[(u64, Vec<u8>, Hash, Hash)]) -> Result<u64, Break> {
        let mut verifier = Verifier::starting_at(1, GENESIS);
        for (sequence, canonical, previous, hash) in rows {
            verifier.check(StoredLink {
                sequence: *sequence,
                canonical,
                previous_hash: previous,
                hash,
                columns_match: true,
            })?;
        }
        Ok(verifier.verified())
    }

    fn sample() -> (Vec<Vec<u8>>, Vec<Link>) {
        let canonicals: Vec<Vec<u8>> = (0..5_u8).map(|n| vec![n; 10]).collect();
        let links = extend(Head::EMPTY, canonicals.iter().map(Vec::as_slice));
        (canonicals, links)
    }

    #[test]
    fn the_first_link_chains_from_32_zero_bytes() {
        let links = extend(Head::EMPTY, [b"event".as_slice()]);
        assert_eq!(links[0].sequence, 1);
        assert_eq!(links[0].previous_hash, [0; 32]);
        let mut expected = Sha256::new();
        expected.update([0_u8; 32]);
        expected.update(b"event");
        assert_eq!(links[0].hash, <Hash>::from(expected.finalize()));
    }

    #[test]
    fn extending_continues_from_the_head() {
        let (canonicals, links) = sample();
        let head = Head {
            sequence: 2,
            hash: links[1].hash,
        };
        let continued = extend(head, canonicals[2..].iter().map(Vec::as_slice));
        assert_eq!(continued, links[2..].to_vec());
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (canonicals, links) = sample();
        assert_eq!(verify(&stored(&links, &canonicals)), Ok(5));
    }

    #[test]
    fn an_altered_event_breaks_at_its_sequence() {
        let (canonicals, links) = sample();
        let mut rows = stored(&links, &canonicals);
        rows[2].1[0] ^= 1;
        let broken = verify(&rows).err();
        assert_eq!(
            broken.map(|found| (found.sequence, found.kind)),
            Some((3, BreakKind::HashMismatch))
        );
    }

    #[test]
    fn a_deleted_event_is_a_gap_at_its_sequence() {
        let (canonicals, links) = sample();
        let mut rows = stored(&links, &canonicals);
        rows.remove(1);
        let broken = verify(&rows).err();
        assert_eq!(
            broken.map(|found| (found.sequence, found.kind)),
            Some((2, BreakKind::SequenceGap))
        );
    }

    #[test]
    fn a_rewritten_event_with_a_fresh_hash_breaks_the_next_link() {
        let (canonicals, links) = sample();
        let mut rows = stored(&links, &canonicals);
        rows[1].1 = b"forged".to_vec();
        rows[1].3 = link_hash(&rows[1].2, &rows[1].1);
        let broken = verify(&rows).err();
        assert_eq!(
            broken.map(|found| (found.sequence, found.kind)),
            Some((3, BreakKind::PreviousHashMismatch))
        );
    }

    #[test]
    fn altered_columns_are_a_hash_mismatch() {
        let (canonicals, links) = sample();
        let mut verifier = Verifier::starting_at(1, GENESIS);
        let outcome = verifier.check(StoredLink {
            sequence: 1,
            canonical: &canonicals[0],
            previous_hash: &links[0].previous_hash,
            hash: &links[0].hash,
            columns_match: false,
        });
        assert_eq!(
            outcome.map_err(|found| found.kind),
            Err(BreakKind::HashMismatch)
        );
    }
}
