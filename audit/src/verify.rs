//! The streaming check of a whole stored log: the store feeds its rows in position order, and
//! [`LogVerifier`] recomputes the chain and the Merkle tree, naming the first bad position.
//!
//! The verifier keeps only the last hash and the tree's [`Frontier`], so memory stays
//! O(log n) however long the log is. For each event it returns the Merkle nodes that event
//! completes; the caller compares them with the stored ones, and can name the position of a
//! bad stored node with [`first_position_of_node`].

use std::fmt;

use crate::canonical::{canonical_bytes, chain_hash, EventFields};
use crate::digest::Digest;
pub use crate::merkle::first_position_of_node;
use crate::merkle::{leaf_hash, Frontier};

/// One stored event: its covered fields and its two links.
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    /// The columns its canonical bytes cover.
    pub fields: EventFields<'a>,
    /// The stored `prev_hash`.
    pub prev_hash: Digest,
    /// The stored `hash`.
    pub hash: Digest,
}

/// The first problem found in a log, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The first position that is not as it should be.
    pub position: u64,
    /// What is wrong there.
    pub reason: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "position {}: {}", self.position, self.reason)
    }
}

impl std::error::Error for Fault {}

/// Checks a log fed in position order, one event at a time.
#[derive(Debug, Clone, Default)]
pub struct LogVerifier {
    verified: u64,
    head_hash: Digest,
    frontier: Frontier,
}

impl LogVerifier {
    /// A verifier before the first event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event: it must be at the next position, link to the previous event's
    /// stored hash (zero for position 1) and have the hash of its content. Returns the Merkle
    /// nodes it completes as `(number, hash)`, for the caller to compare with the stored ones.
    /// After a fault, the verifier is unchanged.
    pub fn push(&mut self, event: &StoredEvent<'_>) -> Result<Vec<(u64, Digest)>, Fault> {
        let expected = self.verified + 1;
        let position = event.fields.position;
        let fault = |position, reason: String| Err(Fault { position, reason });
        if position > expected {
            return fault(
                expected,
                format!("event missing: the next stored event is at position {position}"),
            );
        }
        if position < expected {
            return fault(
                position,
                format!("out of order or duplicated: position {expected} was expected"),
            );
        }
        if event.prev_hash != self.head_hash {
            return fault(position, "does not link to the previous event".to_owned());
        }
        let canonical = canonical_bytes(&event.fields);
        if chain_hash(&event.prev_hash, &canonical) != event.hash {
            return fault(
                position,
                "hash does not match the event's content".to_owned(),
            );
        }
        self.verified = position;
        self.head_hash = event.hash;
        Ok(self.frontier.push(leaf_hash(&canonical)))
    }

    /// How many events have been checked: the last good position.
    pub fn verified(&self) -> u64 {
        self.verified
    }

    /// The last checked event's hash (zero before the first).
    pub fn head_hash(&self) -> Digest {
        self.head_hash
    }

    /// The root of the tree over the checked events.
    pub fn root(&self) -> Digest {
        self.frontier.root()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::{json, Value};

    use super::*;

    /// An event as a store row holds it.
    #[derive(Clone)]
    struct Row {
        position: u64,
        stream_id: String,
        stream_version: u64,
        event_id: String,
        data: Value,
        metadata: Value,
        prev_hash: Digest,
        hash: Digest,
    }

    impl Row {
        fn stored(&self) -> StoredEvent<'_> {
            StoredEvent {
                fields: EventFields {
                    position: self.position,
                    stream_id: &self.stream_id,
                    stream_version: self.stream_version,
                    event_id: &self.event_id,
                    event_type: "Happened",
                    schema_version: 1,
                    data: &self.data,
                    metadata: &self.metadata,
                    recorded_at: "2026-11-23T12:00:00.000000Z",
                },
                prev_hash: self.prev_hash,
                hash: self.hash,
            }
        }

        /// Recomputes the hash from the row's content and `prev_hash`.
        fn rehash(&mut self) {
            self.hash = chain_hash(&self.prev_hash, &canonical_bytes(&self.stored().fields));
        }
    }

    fn event(position: u64, prev_hash: Digest) -> Row {
        let mut row = Row {
            position,
            stream_id: format!("stream-{}", position % 4),
            stream_version: position.div_ceil(4),
            event_id: format!("event-{position}"),
            data: json!({"n": position}),
            metadata: json!({"actor": null}),
            prev_hash,
            hash: Digest::ZERO,
        };
        row.rehash();
        row
    }

    fn clean_log(n: u64) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        for position in 1..=n {
            let prev = rows.last().map_or(Digest::ZERO, |row| row.hash);
            rows.push(event(position, prev));
        }
        rows
    }

    fn check(rows: &[Row]) -> Result<LogVerifier, Fault> {
        let mut verifier = LogVerifier::new();
        for row in rows {
            verifier.push(&row.stored())?;
        }
        Ok(verifier)
    }

    fn first_fault(rows: &[Row]) -> Fault {
        check(rows).expect_err("the log should have a fault")
    }

    #[test]
    fn a_clean_log_passes_with_its_nodes_and_root() {
        let rows = clean_log(30);
        let mut verifier = LogVerifier::new();
        let mut frontier = Frontier::new();
        let mut nodes = HashMap::new();
        for row in &rows {
            let completed = verifier.push(&row.stored()).unwrap();
            let canonical = canonical_bytes(&row.stored().fields);
            assert_eq!(completed, frontier.push(leaf_hash(&canonical)));
            nodes.extend(completed);
        }
        assert_eq!(verifier.verified(), 30);
        assert_eq!(verifier.head_hash(), rows[29].hash);
        assert_eq!(verifier.root(), frontier.root());
        assert_eq!(nodes.len() as u64, crate::merkle::stored_nodes(30));
        assert_eq!(LogVerifier::new().head_hash(), Digest::ZERO);
    }

    #[test]
    fn an_edited_field_is_found_where_it_is() {
        let mut rows = clean_log(30);
        rows[11].data = json!({"n": 999});
        let fault = first_fault(&rows);
        assert_eq!(fault.position, 12);
        assert_eq!(fault.reason, "hash does not match the event's content");
        assert_eq!(
            fault.to_string(),
            "position 12: hash does not match the event's content"
        );
        // Recomputing the edited event's hash moves the break to the next link.
        rows[11].rehash();
        let fault = first_fault(&rows);
        assert_eq!(fault.position, 13);
        assert_eq!(fault.reason, "does not link to the previous event");
    }

    #[test]
    fn a_removed_event_is_missing_at_its_position() {
        let mut rows = clean_log(30);
        rows.remove(11);
        let fault = first_fault(&rows);
        assert_eq!(fault.position, 12);
        assert!(fault.reason.starts_with("event missing"), "{fault}");
        let mut first_gone = clean_log(5);
        first_gone.remove(0);
        assert_eq!(first_fault(&first_gone).position, 1);
    }

    #[test]
    fn swapped_events_are_found_at_the_first_of_them() {
        // Rows swapped in the order they come.
        let mut rows = clean_log(30);
        rows.swap(11, 12);
        assert_eq!(first_fault(&rows).position, 12);
        // Contents swapped between two positions.
        let mut rows = clean_log(30);
        let (twelve, thirteen) = (rows[11].clone(), rows[12].clone());
        rows[11] = Row {
            position: 12,
            ..thirteen
        };
        rows[12] = Row {
            position: 13,
            ..twelve
        };
        let fault = first_fault(&rows);
        assert_eq!(fault.position, 12);
        assert_eq!(fault.reason, "does not link to the previous event");
    }

    #[test]
    fn an_inserted_forgery_is_found() {
        // A well-linked forgery at 12, with the later rows renumbered.
        let mut rows = clean_log(30);
        let forged = event(12, rows[10].hash);
        rows.insert(11, forged);
        for row in &mut rows[12..] {
            row.position += 1;
        }
        let fault = first_fault(&rows);
        assert_eq!(fault.position, 13);
        // A second row at position 12.
        let mut rows = clean_log(30);
        let forged = event(12, rows[11].hash);
        rows.insert(12, forged);
        let fault = first_fault(&rows);
        assert_eq!(fault.position, 12);
        assert!(
            fault.reason.starts_with("out of order or duplicated"),
            "{fault}"
        );
        // A forged first event.
        let mut rows = clean_log(3);
        rows[0].prev_hash = Digest::of(&[b"x"]);
        rows[0].rehash();
        assert_eq!(
            first_fault(&rows),
            Fault {
                position: 1,
                reason: "does not link to the previous event".to_owned()
            }
        );
    }

    #[test]
    fn a_fault_leaves_the_verifier_as_it_was() {
        let rows = clean_log(5);
        let mut verifier = check(&rows[..3]).unwrap();
        let mut bad = rows[3].clone();
        bad.hash = Digest::ZERO;
        assert!(verifier.push(&bad.stored()).is_err());
        assert_eq!(verifier.verified(), 3);
        verifier.push(&rows[3].stored()).unwrap();
        verifier.push(&rows[4].stored()).unwrap();
        assert_eq!(verifier.root(), check(&rows).unwrap().root());
    }
}
