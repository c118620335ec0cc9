//! The stored form of events: a type name, a schema version and a JSON object of data.
//!
//! Event enums serialize adjacently tagged (`{"type": …, "data": …}`); these helpers split that
//! form into the parts the event store keeps and put it back together.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// The schema version of every event written today.
pub const SCHEMA_VERSION: u32 = 1;

/// Why a stored event could not be turned back into a domain event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventDecodeError {
    /// No event of this aggregate has this type.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// The event's schema version is not one this build can read.
    #[error("unsupported schema version {version} for event type {event_type:?}")]
    UnsupportedSchemaVersion {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        version: u32,
    },
    /// The data does not have the fields the event type needs.
    #[error("invalid data for event type {event_type:?}: {message}")]
    InvalidData {
        /// The stored type name.
        event_type: String,
        /// What was wrong with the data.
        message: String,
    },
}

/// The `data` part of an adjacently tagged event.
pub(crate) fn data_of<E: Serialize>(event: &E) -> Value {
    let mut tagged = serde_json::to_value(event).expect("events always serialize to JSON");
    tagged
        .get_mut("data")
        .map(Value::take)
        .unwrap_or_else(|| json!({}))
}

/// Rebuilds an adjacently tagged event from its stored parts; `known` lists the type names of
/// the aggregate's events.
pub(crate) fn decode<E: DeserializeOwned>(
    known: &[&str],
    event_type: &str,
    schema_version: u32,
    data: &Value,
) -> Result<E, EventDecodeError> {
    if !known.contains(&event_type) {
        return Err(EventDecodeError::UnknownType(event_type.to_owned()));
    }
    if schema_version != SCHEMA_VERSION {
        return Err(EventDecodeError::UnsupportedSchemaVersion {
            event_type: event_type.to_owned(),
            version: schema_version,
        });
    }
    serde_json::from_value(json!({"type": event_type, "data": data})).map_err(|e| {
        EventDecodeError::InvalidData {
            event_type: event_type.to_owned(),
            message: e.to_string(),
        }
    })
}
