//! What auditors read and take away, shared by the HTTP API and the command line: events as
//! stored with their links, a request's history and its state at any instant, signed tree
//! heads, proofs and self-contained evidence bundles.

use chrono::{DateTime, Utc};
use countersign_audit::evidence::{self, EvidenceBundle, EvidenceEvent};
use countersign_audit::head::{SignedTreeHead, TreeHead};
use countersign_audit::Digest;
use countersign_domain::action_request::{self, ActionRequest};
use countersign_projections::database::Database;
use countersign_store::audit::{self as store_audit, AuditError};
use countersign_store::{EventStore, RecordedEvent, StoreError};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::keys::ServerKeys;
use crate::time;
use crate::views::action_request_view;

/// One stored event as auditors see it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// Global position.
    pub position: u64,
    /// Its stream.
    pub stream_id: String,
    /// Its version in the stream.
    pub stream_version: u64,
    /// Its id.
    pub event_id: Uuid,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its data schema version.
    pub schema_version: u32,
    /// Its data.
    pub data: Value,
    /// Who acted, and in which context.
    pub metadata: Value,
    /// When it was recorded.
    pub recorded_at: String,
    /// Its link in the hash chain.
    pub hash: Digest,
    /// The previous event's link.
    pub prev_hash: Digest,
}

impl From<&RecordedEvent> for AuditEvent {
    fn from(event: &RecordedEvent) -> Self {
        Self {
            position: event.position,
            stream_id: event.stream_id.clone(),
            stream_version: event.stream_version,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            data: event.data.clone(),
            metadata: serde_json::to_value(&event.metadata).unwrap_or(Value::Null),
            recorded_at: time::format(event.recorded_at),
            hash: event.hash,
            prev_hash: event.prev_hash,
        }
    }
}

/// Why an audit read failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditReadError {
    /// The question does not fit the log.
    #[error("{0}")]
    Invalid(String),
    /// A stored event could not be replayed.
    #[error("stored event cannot be replayed: {0}")]
    Replay(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AuditError> for AuditReadError {
    fn from(error: AuditError) -> Self {
        match error {
            AuditError::Invalid(reason) => AuditReadError::Invalid(reason),
            AuditError::Store(error) => AuditReadError::Store(error),
        }
    }
}

/// The history of one action request: every event in order and the state rebuilt from those
/// recorded up to `at` (all of them without `at`); `None` when the request does not exist.
pub async fn history(
    store: &dyn EventStore,
    id: Uuid,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<Value>, AuditReadError> {
    let events = store.read_stream(&action_request::stream_id(id)).await?;
    if events.is_empty() {
        return Ok(None);
    }
    let shown: Vec<&RecordedEvent> = events
        .iter()
        .filter(|e| at.is_none_or(|at| e.recorded_at <= at))
        .collect();
    let mut state: Option<ActionRequest> = None;
    for recorded in &shown {
        let event = action_request::Event::from_stored(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.data,
        )
        .map_err(|e| AuditReadError::Replay(format!("position {}: {e}", recorded.position)))?;
        state = action_request::evolve(state, &event);
    }
    let view = state.map(|s| action_request_view(&s, at.unwrap_or(now), None));
    let events: Vec<AuditEvent> = shown.into_iter().map(AuditEvent::from).collect();
    let mut out = json!({ "id": id, "events": events, "state": view });
    if let Some(at) = at {
        out["at"] = time::format(at).into();
    }
    Ok(Some(out))
}

/// Up to `limit` events of the global log after `after`.
pub async fn events_page(
    store: &dyn EventStore,
    after: u64,
    limit: usize,
) -> Result<Vec<AuditEvent>, AuditReadError> {
    let events = store.read_all(after, limit).await?;
    Ok(events.iter().map(AuditEvent::from).collect())
}

/// The tree head over the whole log now, signed with the server's audit key.
pub async fn signed_head(
    db: &Database,
    keys: &ServerKeys,
    now: DateTime<Utc>,
) -> Result<SignedTreeHead, AuditReadError> {
    let log = db.audit();
    let size = store_audit::size(log.as_ref()).await?;
    let root = store_audit::root_at(log.as_ref(), size).await?;
    let head = TreeHead {
        tree_size: size,
        root_hash: root,
        timestamp: time::format(now),
    };
    Ok(head.sign(&keys.audit_key()))
}

/// The evidence bundle of one action request (compact JSON): its events with their links and
/// inclusion proofs, and a signed head of a tree that holds them all; `None` when the request
/// does not exist.
pub async fn evidence_bundle(
    db: &Database,
    keys: &ServerKeys,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Vec<u8>>, AuditReadError> {
    let events = db
        .events()
        .read_stream(&action_request::stream_id(id))
        .await?;
    if events.is_empty() {
        return Ok(None);
    }
    let head = signed_head(db, keys, now).await?;
    let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
    let proofs =
        store_audit::inclusion_proofs(db.audit().as_ref(), &positions, head.tree_size).await?;
    let bundled = events
        .iter()
        .zip(proofs)
        .map(|(event, proof)| {
            let audit = AuditEvent::from(event);
            EvidenceEvent {
                position: audit.position,
                stream_id: audit.stream_id,
                stream_version: audit.stream_version,
                event_id: audit.event_id.to_string(),
                event_type: audit.event_type,
                schema_version: audit.schema_version,
                data: audit.data,
                metadata: audit.metadata,
                recorded_at: audit.recorded_at,
                prev_hash: audit.prev_hash,
                hash: audit.hash,
                inclusion_proof: proof,
            }
        })
        .collect();
    let bundle = EvidenceBundle::signed(id.to_string(), head, bundled, &keys.audit_key());
    Ok(Some(evidence::to_bytes(&bundle)))
}
