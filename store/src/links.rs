//! The tamper-evident links an append writes beside its events: each event's place in the hash
//! chain and the Merkle tree nodes its leaf completes (see the `countersign-audit` crate).
//! The writer keeps the links of the log's end, and computes those of a new append from them
//! inside the append's own transaction.

use chrono::{DateTime, Utc};
use countersign_audit::merkle::{self, Frontier};
use countersign_audit::{canonical_bytes, chain_hash, leaf_hash, Digest, EventFields};
use serde_json::Value;

use crate::append::AppendRequest;
use crate::error::StoreError;

/// One event's `(prev_hash, hash)` and the Merkle nodes its leaf completes.
pub(crate) type Linked = ((Digest, Digest), Vec<(u64, Digest)>);

/// The end of the log as the chain and the tree see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Links {
    /// The last event's `hash` (zeros for the empty log).
    pub(crate) last_hash: Digest,
    /// The right edge of the Merkle tree, one leaf per event.
    pub(crate) frontier: Frontier,
}

/// What an append stores beside its events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sealed {
    /// `(prev_hash, hash)` of each event, in order.
    pub(crate) hashes: Vec<(Digest, Digest)>,
    /// The Merkle nodes the events complete, `(number, hash)` in increasing number.
    pub(crate) nodes: Vec<(u64, Digest)>,
}

/// One stored event's columns as text, as the canonical bytes cover them.
pub(crate) struct StoredColumns<'a> {
    pub(crate) position: u64,
    pub(crate) stream_id: &'a str,
    pub(crate) stream_version: u64,
    pub(crate) event_id: &'a str,
    pub(crate) event_type: &'a str,
    pub(crate) schema_version: u32,
    pub(crate) data: &'a Value,
    pub(crate) metadata: &'a Value,
    pub(crate) recorded_at: &'a str,
}

impl StoredColumns<'_> {
    fn canonical(&self) -> Vec<u8> {
        canonical_bytes(&EventFields {
            position: self.position,
            stream_id: self.stream_id,
            stream_version: self.stream_version,
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: self.schema_version,
            data: self.data,
            metadata: self.metadata,
            recorded_at: self.recorded_at,
        })
    }
}

impl Links {
    /// The links of a log of `size` events whose last hash is `last_hash` and whose Merkle
    /// tree has the given peaks (in [`merkle::peaks`] order).
    pub(crate) fn load(
        size: u64,
        last_hash: Digest,
        peaks: Vec<Digest>,
    ) -> Result<Self, StoreError> {
        let frontier = Frontier::from_peaks(size, peaks).map_err(|error| {
            StoreError::Decode(format!("the stored Merkle tree is incomplete: {error}"))
        })?;
        Ok(Self {
            last_hash,
            frontier,
        })
    }

    /// How many events the links cover.
    pub(crate) fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Links one more stored event; it must be the next position.
    pub(crate) fn push(&mut self, columns: &StoredColumns<'_>) -> Linked {
        debug_assert_eq!(columns.position, self.size() + 1);
        let canonical = columns.canonical();
        let prev = self.last_hash;
        let hash = chain_hash(&prev, &canonical);
        let nodes = self.frontier.push(leaf_hash(&canonical));
        self.last_hash = hash;
        ((prev, hash), nodes)
    }

    /// Links the events of `request`, numbered from `first_position` after stream version
    /// `actual`, all recorded at `now`.
    pub(crate) fn seal(
        &mut self,
        request: &AppendRequest,
        first_position: u64,
        actual: u64,
        now: DateTime<Utc>,
    ) -> Result<Sealed, StoreError> {
        let recorded_at = crate::time::format(now);
        let mut sealed = Sealed::default();
        for (offset, prepared) in (0u64..).zip(&request.events) {
            let event = &prepared.event;
            let metadata = serde_json::to_value(&event.metadata)
                .map_err(|e| StoreError::Decode(format!("cannot encode metadata: {e}")))?;
            let (hashes, nodes) = self.push(&StoredColumns {
                position: first_position + offset,
                stream_id: &request.stream_id,
                stream_version: actual + 1 + offset,
                event_id: &event.event_id.to_string(),
                event_type: &event.event_type,
                schema_version: event.schema_version,
                data: &event.data,
                metadata: &metadata,
                recorded_at: &recorded_at,
            });
            sealed.hashes.push(hashes);
            sealed.nodes.extend(nodes);
        }
        Ok(sealed)
    }
}

/// The node numbers of the peaks of a tree of `size` leaves.
pub(crate) fn peak_numbers(size: u64) -> Vec<u64> {
    merkle::peaks(size)
        .into_iter()
        .map(|(level, index)| merkle::node_number(level, index))
        .collect()
}

/// A stored digest column: 32 bytes.
pub(crate) fn digest_column(column: &str, bytes: Option<Vec<u8>>) -> Result<Digest, StoreError> {
    let bytes = bytes.ok_or_else(|| StoreError::Decode(format!("{column} is missing")))?;
    Digest::from_slice(&bytes).map_err(|_| StoreError::Decode(format!("{column} is not 32 bytes")))
}

/// Links a stored row (written before events carried links) as the next event.
pub(crate) fn link_raw(
    links: &mut Links,
    row: &crate::audit::RawEvent,
) -> Result<Linked, StoreError> {
    let bad = |what: &str| {
        StoreError::Decode(format!(
            "the event at position {} cannot be linked: {what}",
            row.position
        ))
    };
    let position = u64::try_from(row.position).map_err(|_| bad("negative position"))?;
    if position != links.size() + 1 {
        return Err(bad("the log has a gap before it"));
    }
    let data: Value = serde_json::from_str(&row.data).map_err(|_| bad("invalid data"))?;
    let metadata: Value =
        serde_json::from_str(&row.metadata).map_err(|_| bad("invalid metadata"))?;
    Ok(links.push(&StoredColumns {
        position,
        stream_id: &row.stream_id,
        stream_version: u64::try_from(row.stream_version).map_err(|_| bad("negative version"))?,
        event_id: &row.event_id,
        event_type: &row.event_type,
        schema_version: u32::try_from(row.schema_version)
            .map_err(|_| bad("schema version out of range"))?,
        data: &data,
        metadata: &metadata,
        recorded_at: &row.recorded_at,
    }))
}
