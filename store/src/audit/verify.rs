//! Recomputing the hash chain and the Merkle tree over every stored row, page by page, and
//! naming the first position where the stored log does not hold.

use std::collections::HashMap;

use countersign_audit::head::TreeHead;
use countersign_audit::merkle::stored_nodes;
use countersign_audit::verify::{Fault, LogVerifier, StoredEvent};
use countersign_audit::{Digest, EventFields};
use serde::Serialize;
use serde_json::Value;

use super::{AuditLog, RawEvent};
use crate::error::StoreError;

/// Rows read per page.
const PAGE: usize = 10_000;

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether the whole log holds (and extends the trusted head, when one was given).
    pub ok: bool,
    /// Events that passed, from position 1.
    pub verified_events: u64,
    /// The last stored position when the verification started.
    pub head_position: u64,
    /// The `hash` of the last event that passed (zeros when none did).
    pub head_hash: Digest,
    /// The first position where the log does not hold, if any.
    pub first_bad_position: Option<u64>,
    /// What is wrong there.
    pub reason: Option<String>,
    /// The Merkle tree size over the events that passed.
    pub tree_size: u64,
    /// Its root.
    pub root_hash: Digest,
}

/// Checks every stored row from position 1 up to the last one when the check starts, and,
/// with `against`, that the log's first `against.tree_size` events have the trusted root.
/// `progress` hears `(verified, last position)` after each page.
pub async fn verify_log(
    log: &dyn AuditLog,
    against: Option<&TreeHead>,
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<VerifyReport, StoreError> {
    let extent = log.extent().await?;
    let until = extent.last_position.unwrap_or(0);
    let head_position = until.max(0) as u64;
    let mut verifier = LogVerifier::new();
    let mut after = i64::MIN;
    // A trusted head of the empty tree has nothing to meet during the scan.
    let empty_mismatch = against
        .filter(|head| head.tree_size == 0 && head.root_hash != verifier.root())
        .map(rewritten);
    let fault = 'scan: loop {
        if empty_mismatch.is_some() {
            break 'scan empty_mismatch;
        }
        let rows = log.raw_events(after, until, PAGE).await?;
        let Some(last) = rows.last() else {
            break 'scan None;
        };
        after = last.position;
        let leaves = verifier.verified();
        let from = stored_nodes(leaves);
        let to = stored_nodes(leaves + rows.len() as u64);
        let stored: HashMap<u64, Vec<u8>> =
            log.nodes_between(from, to).await?.into_iter().collect();
        for row in &rows {
            if let Err(fault) = check_row(&mut verifier, row, &stored) {
                break 'scan Some(fault);
            }
            if let Some(head) = against {
                if verifier.verified() == head.tree_size && verifier.root() != head.root_hash {
                    break 'scan Some(rewritten(head));
                }
            }
        }
        progress(verifier.verified(), head_position);
    };
    let verified = verifier.verified();
    let fault = fault.or_else(|| {
        let expected = stored_nodes(verified);
        let stored = extent.last_node.map_or(0, |n| n.max(0) as u64 + 1);
        (stored > expected).then(|| Fault {
            position: verified + 1,
            reason: "the Merkle tree covers events beyond the last stored one: \
                     events were removed from the end of the log"
                .into(),
        })
    });
    let fault = fault.or_else(|| {
        let head = against?;
        (verified < head.tree_size).then(|| Fault {
            position: verified + 1,
            reason: format!(
                "the trusted tree head covers {} events but the log has only {verified}",
                head.tree_size
            ),
        })
    });
    Ok(VerifyReport {
        ok: fault.is_none(),
        verified_events: verified,
        head_position,
        head_hash: verifier.head_hash(),
        first_bad_position: fault.as_ref().map(|f| f.position),
        reason: fault.map(|f| f.reason),
        tree_size: verified,
        root_hash: verifier.root(),
    })
}

/// The fault of a log whose first events do not have the trusted root.
fn rewritten(head: &TreeHead) -> Fault {
    Fault {
        position: head.tree_size,
        reason: format!(
            "the first {} events do not have the root of the trusted tree head: \
             the log was rewritten at or before this position",
            head.tree_size
        ),
    }
}

/// Checks one row against the chain and its Merkle nodes against the stored ones.
fn check_row(
    verifier: &mut LogVerifier,
    row: &RawEvent,
    stored: &HashMap<u64, Vec<u8>>,
) -> Result<(), Fault> {
    let expected = verifier.verified() + 1;
    let bad = |reason: String| Fault {
        position: expected,
        reason,
    };
    let position = u64::try_from(row.position)
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| {
            bad(format!(
                "a row with position {} is in the log",
                row.position
            ))
        })?;
    let here = |reason: &str| Fault {
        position,
        reason: reason.to_owned(),
    };
    let stream_version =
        u64::try_from(row.stream_version).map_err(|_| here("its stream version is negative"))?;
    let schema_version = u32::try_from(row.schema_version)
        .map_err(|_| here("its schema version is out of range"))?;
    let data: Value =
        serde_json::from_str(&row.data).map_err(|_| here("its data is not valid JSON"))?;
    let metadata: Value =
        serde_json::from_str(&row.metadata).map_err(|_| here("its metadata is not valid JSON"))?;
    let digest = |column: &Option<Vec<u8>>, name: &str| {
        column
            .as_deref()
            .and_then(|bytes| Digest::from_slice(bytes).ok())
            .ok_or_else(|| here(&format!("its {name} is missing or not 32 bytes")))
    };
    let event = StoredEvent {
        fields: EventFields {
            position,
            stream_id: &row.stream_id,
            stream_version,
            event_id: &row.event_id,
            event_type: &row.event_type,
            schema_version,
            data: &data,
            metadata: &metadata,
            recorded_at: &row.recorded_at,
        },
        prev_hash: digest(&row.prev_hash, "prev_hash")?,
        hash: digest(&row.hash, "hash")?,
    };
    // The event counts as verified only once its stored nodes match too.
    let mut next = verifier.clone();
    for (number, hash) in next.push(&event)? {
        match stored.get(&number) {
            Some(bytes) if bytes.as_slice() == hash.as_bytes() => {}
            Some(_) => {
                return Err(here(&format!(
                    "the stored Merkle node {number} does not match the events"
                )))
            }
            None => return Err(here(&format!("the Merkle node {number} is missing"))),
        }
    }
    *verifier = next;
    Ok(())
}
