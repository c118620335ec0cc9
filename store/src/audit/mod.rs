//! The tamper-evident side of the log, for auditors: reading stored rows exactly as they are,
//! recomputing the hash chain and the Merkle tree over them, tree roots at any size, and
//! inclusion and consistency proofs built from the stored nodes alone.
//!
//! Backends implement [`AuditLog`] (plain reads); everything else here is written once.

mod verify;

use std::collections::HashMap;

use async_trait::async_trait;
use countersign_audit::merkle::Frontier;
use countersign_audit::proof::{self, ProofError};
use countersign_audit::Digest;

use crate::error::StoreError;
use crate::links::peak_numbers;

pub use verify::{verify_log, VerifyReport};

/// One stored event, column by column, as the database holds it (nothing decoded that could
/// fail, so that a damaged row is reported rather than refused).
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// The stored position.
    pub position: i64,
    /// The stream.
    pub stream_id: String,
    /// The stored stream version.
    pub stream_version: i64,
    /// The event id as text (lowercase, hyphenated).
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: i64,
    /// The data as stored JSON text.
    pub data: String,
    /// The metadata as stored JSON text.
    pub metadata: String,
    /// The recorded time as RFC 3339 text with microseconds.
    pub recorded_at: String,
    /// The stored `prev_hash`, if any.
    pub prev_hash: Option<Vec<u8>>,
    /// The stored `hash`, if any.
    pub hash: Option<Vec<u8>>,
}

/// How far the stored log reaches, read in one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extent {
    /// The greatest stored position (`None` for an empty log).
    pub last_position: Option<i64>,
    /// The greatest stored Merkle node number (`None` when there is none).
    pub last_node: Option<i64>,
}

/// The plain reads the audit needs from a backend.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Up to `limit` stored rows with a position greater than `after` and at most `until`, in
    /// position order.
    async fn raw_events(
        &self,
        after: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<RawEvent>, StoreError>;

    /// The stored Merkle nodes numbered from `from` (inclusive) to `to` (exclusive), in order.
    async fn nodes_between(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// The stored Merkle nodes among `numbers`.
    async fn nodes(&self, numbers: &[u64]) -> Result<HashMap<u64, Vec<u8>>, StoreError>;

    /// The last stored position and node number, in one snapshot.
    async fn extent(&self) -> Result<Extent, StoreError>;
}

/// Why a proof or a root cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The request does not fit the log (a size beyond its end, an index beyond the size).
    #[error("{0}")]
    Invalid(String),
    /// The store failed or holds a damaged tree.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ProofError> for AuditError {
    fn from(error: ProofError) -> Self {
        AuditError::Invalid(error.to_string())
    }
}

/// The number of events in the log: its last position.
pub async fn size(log: &dyn AuditLog) -> Result<u64, StoreError> {
    let extent = log.extent().await?;
    Ok(extent.last_position.map_or(0, |p| p.max(0) as u64))
}

/// The stored nodes among `numbers`, all of which must be there.
async fn fetch(log: &dyn AuditLog, numbers: &[u64]) -> Result<HashMap<u64, Digest>, StoreError> {
    let stored = log.nodes(numbers).await?;
    numbers
        .iter()
        .map(|number| {
            let bytes = stored.get(number).ok_or_else(|| {
                StoreError::Decode(format!("Merkle node {number} is missing from the store"))
            })?;
            let digest = Digest::from_slice(bytes)
                .map_err(|_| StoreError::Decode(format!("Merkle node {number} is not 32 bytes")))?;
            Ok((*number, digest))
        })
        .collect()
}

/// Refuses a tree size beyond the log's end.
async fn check_size(log: &dyn AuditLog, tree_size: u64) -> Result<(), AuditError> {
    let size = size(log).await?;
    if tree_size > size {
        return Err(AuditError::Invalid(format!(
            "the log has {size} events, fewer than the tree size {tree_size}"
        )));
    }
    Ok(())
}

/// The root of the tree over the first `tree_size` events, from its stored peaks.
pub async fn root_at(log: &dyn AuditLog, tree_size: u64) -> Result<Digest, AuditError> {
    check_size(log, tree_size).await?;
    let numbers = peak_numbers(tree_size);
    let nodes = fetch(log, &numbers).await?;
    let peaks = numbers.iter().map(|number| nodes[number]).collect();
    let frontier = Frontier::from_peaks(tree_size, peaks)
        .map_err(|error| StoreError::Decode(error.to_string()))?;
    Ok(frontier.root())
}

/// The stored leaf hash of the event at `position` (1-based).
pub async fn leaf_at(log: &dyn AuditLog, position: u64) -> Result<Digest, AuditError> {
    if position == 0 {
        return Err(AuditError::Invalid("positions start at 1".into()));
    }
    check_size(log, position).await?;
    let number = countersign_audit::merkle::stored_nodes(position - 1);
    Ok(fetch(log, &[number]).await?[&number])
}

/// The audit path of the event at `position` (1-based) in the tree of `tree_size` events
/// (RFC 9162 §2.1.3.1), from the stored nodes it needs.
pub async fn inclusion_proof(
    log: &dyn AuditLog,
    position: u64,
    tree_size: u64,
) -> Result<Vec<Digest>, AuditError> {
    let mut proofs = inclusion_proofs(log, &[position], tree_size).await?;
    Ok(proofs.pop().unwrap_or_default())
}

/// The audit paths of several events in one tree, with one check of the tree's size and one
/// read of every stored node they need.
pub async fn inclusion_proofs(
    log: &dyn AuditLog,
    positions: &[u64],
    tree_size: u64,
) -> Result<Vec<Vec<Digest>>, AuditError> {
    if positions.contains(&0) {
        return Err(AuditError::Invalid("positions start at 1".into()));
    }
    check_size(log, tree_size).await?;
    let plans = positions
        .iter()
        .map(|position| proof::inclusion_plan(position - 1, tree_size))
        .collect::<Result<Vec<_>, _>>()?;
    let needed: Vec<_> = plans.iter().flatten().cloned().collect();
    let nodes = fetch(log, &proof::nodes_needed(&needed)).await?;
    Ok(plans
        .iter()
        .map(|plan| proof::assemble(plan, &nodes))
        .collect::<Result<_, _>>()?)
}

/// The proof that the tree of `second` events extends that of `first` (RFC 9162 §2.1.4.1).
pub async fn consistency_proof(
    log: &dyn AuditLog,
    first: u64,
    second: u64,
) -> Result<Vec<Digest>, AuditError> {
    check_size(log, second).await?;
    let plan = proof::consistency_plan(first, second)?;
    let nodes = fetch(log, &proof::nodes_needed(&plan)).await?;
    Ok(proof::assemble(&plan, &nodes)?)
}
