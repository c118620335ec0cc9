//! The shapes that go into and come out of the event store: events to append, recorded
//! events with their global position, their metadata, and the expected-version rule of
//! optimistic concurrency.

use std::fmt;

use chrono::{DateTime, Utc};
use countersign_audit::Digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What kind of party caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A bank's back end calling the API with client credentials.
    Client,
    /// A registered authenticator app.
    Device,
    /// The server itself (expiry, scheduled work).
    System,
    /// An auditor reading or verifying the log.
    Auditor,
    /// An operator using the administrative interface.
    Admin,
}

/// The party that caused an event, and its identifier when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// What kind of party it is.
    pub kind: ActorKind,
    /// Its identifier (client id, device id …); `None` for the system.
    pub id: Option<String>,
}

impl Actor {
    /// The server itself, acting on its own (expiry and the like).
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
        }
    }
}

/// Context stored beside every event (as JSON in the database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Who caused the event.
    pub actor: Actor,
    /// The request or command that led to it, to tie related events together.
    pub correlation_id: Option<String>,
    /// The remote address of the caller, when there was one.
    pub ip: Option<String>,
}

impl Metadata {
    /// Metadata naming only the actor.
    pub fn from_actor(actor: Actor) -> Self {
        Self {
            actor,
            correlation_id: None,
            ip: None,
        }
    }
}

/// An event the caller wants to append to a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// A unique identifier chosen by the caller; appending the same id twice is refused.
    pub event_id: Uuid,
    /// The stable name of the event's type, such as `Confirmed`.
    pub event_type: String,
    /// The version of the event's data schema, for upcasting old events.
    pub schema_version: u32,
    /// The event's data.
    pub data: Value,
    /// Who caused it and in which context.
    pub metadata: Metadata,
}

/// An event as stored: the appended event plus its place in the log and the time it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Global position in the log: 1-based, strictly increasing in commit order.
    pub position: u64,
    /// The stream (aggregate) the event belongs to.
    pub stream_id: String,
    /// The event's version within its stream: 1-based, without gaps.
    pub stream_version: u64,
    /// The identifier the appender chose.
    pub event_id: Uuid,
    /// The stable name of the event's type.
    pub event_type: String,
    /// The version of the event's data schema.
    pub schema_version: u32,
    /// The event's data.
    pub data: Value,
    /// Who caused it and in which context.
    pub metadata: Metadata,
    /// When the store recorded it (UTC, microsecond precision).
    pub recorded_at: DateTime<Utc>,
    /// The previous event's `hash` (zeros for position 1).
    pub prev_hash: Digest,
    /// Its link in the hash chain: SHA-256 of `prev_hash` and its canonical bytes.
    pub hash: Digest,
}

/// What the appender believes the stream's version to be (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// The stream must not exist yet (it has no events).
    NoStream,
    /// The stream must have exactly this many events now.
    Exact(u64),
    /// Append whatever the stream's version is.
    Any,
}

impl ExpectedVersion {
    /// Whether a stream currently holding `actual` events satisfies this expectation.
    pub fn accepts(self, actual: u64) -> bool {
        match self {
            Self::NoStream => actual == 0,
            Self::Exact(expected) => actual == expected,
            Self::Any => true,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(version) => write!(f, "version {version}"),
            Self::Any => f.write_str("any version"),
        }
    }
}

/// The result of a successful append.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendOutcome {
    /// The stream's version after the append (unchanged when no events were given).
    pub stream_version: u64,
    /// The position of the first appended event (0 when no events were given).
    pub first_position: u64,
    /// The position of the last appended event (0 when no events were given).
    pub last_position: u64,
    /// The events as recorded, in order.
    pub events: Vec<RecordedEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_stream_accepts_only_an_empty_stream() {
        assert!(ExpectedVersion::NoStream.accepts(0));
        assert!(!ExpectedVersion::NoStream.accepts(1));
    }

    #[test]
    fn exact_accepts_only_the_same_version() {
        assert!(ExpectedVersion::Exact(3).accepts(3));
        assert!(!ExpectedVersion::Exact(3).accepts(2));
        assert!(!ExpectedVersion::Exact(0).accepts(1));
    }

    #[test]
    fn any_accepts_every_version() {
        assert!(ExpectedVersion::Any.accepts(0));
        assert!(ExpectedVersion::Any.accepts(42));
    }

    #[test]
    fn metadata_serialises_the_actor_kind_in_lowercase() {
        let metadata = Metadata {
            actor: Actor {
                kind: ActorKind::Device,
                id: Some("d-1".into()),
            },
            correlation_id: Some("c-1".into()),
            ip: None,
        };
        let json = serde_json::to_value(&metadata).unwrap();
        assert_eq!(json["actor"]["kind"], "device");
        assert_eq!(json["actor"]["id"], "d-1");
        let back: Metadata = serde_json::from_value(json).unwrap();
        assert_eq!(back, metadata);
    }
}
