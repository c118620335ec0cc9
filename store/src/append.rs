//! What every backend's append path shares: an append waiting for the writer with its JSON
//! already encoded, the recorded time, and turning inserted rows into recorded events.

use chrono::{DateTime, Utc};
use countersign_audit::Digest;

use crate::error::StoreError;
use crate::event::{AppendOutcome, ExpectedVersion, NewEvent, RecordedEvent};
use crate::inline::InlineError;

/// An append waiting for the writer, with its JSON already encoded by the caller's task.
pub(crate) struct AppendRequest {
    pub(crate) stream_id: String,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<PreparedEvent>,
}

impl AppendRequest {
    /// Encodes the events of an append to `stream_id`.
    pub(crate) fn new(
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            stream_id: stream_id.to_owned(),
            expected,
            events: events
                .into_iter()
                .map(PreparedEvent::new)
                .collect::<Result<_, _>>()?,
        })
    }

    /// The conflict this append meets when its stream is at version `actual`.
    pub(crate) fn conflict(&self, actual: u64) -> StoreError {
        StoreError::Conflict {
            stream_id: self.stream_id.clone(),
            expected: self.expected,
            actual,
        }
    }

    /// The events as recorded: positions from `first_position`, stream versions after
    /// `actual`, all recorded at `now`, with their links in the chain.
    pub(crate) fn into_recorded(
        self,
        first_position: u64,
        actual: u64,
        now: DateTime<Utc>,
        hashes: &[(Digest, Digest)],
    ) -> Vec<RecordedEvent> {
        let stream_id = self.stream_id;
        (0u64..)
            .zip(self.events)
            .zip(hashes)
            .map(|((offset, prepared), (prev_hash, hash))| RecordedEvent {
                position: first_position + offset,
                stream_id: stream_id.clone(),
                stream_version: actual + 1 + offset,
                event_id: prepared.event.event_id,
                event_type: prepared.event.event_type,
                schema_version: prepared.event.schema_version,
                data: prepared.event.data,
                metadata: prepared.event.metadata,
                recorded_at: now,
                prev_hash: *prev_hash,
                hash: *hash,
            })
            .collect()
    }
}

/// A new event together with the text columns stored for it.
pub(crate) struct PreparedEvent {
    pub(crate) event: NewEvent,
    /// The event's data as JSON text, stored byte for byte.
    pub(crate) data: String,
    /// The event's metadata as JSON text, stored byte for byte.
    pub(crate) metadata: String,
}

impl PreparedEvent {
    /// Encodes the event's data and metadata as JSON text.
    pub(crate) fn new(event: NewEvent) -> Result<Self, StoreError> {
        let encode = |e: serde_json::Error| StoreError::Decode(format!("cannot encode event: {e}"));
        let data = serde_json::to_string(&event.data).map_err(encode)?;
        let metadata = serde_json::to_string(&event.metadata).map_err(encode)?;
        Ok(Self {
            event,
            data,
            metadata,
        })
    }
}

/// The current time, cut to the microseconds the databases keep.
pub(crate) fn recorded_now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// The outcome of an append that left its stream at `actual + events.len()`.
pub(crate) fn outcome(actual: u64, events: Vec<RecordedEvent>) -> AppendOutcome {
    AppendOutcome {
        stream_version: actual + events.len() as u64,
        first_position: events.first().map_or(0, |e| e.position),
        last_position: events.last().map_or(0, |e| e.position),
        events,
    }
}

/// The store error an inline projection's failure becomes.
pub(crate) fn inline_failed(error: InlineError) -> StoreError {
    match error {
        InlineError::Rejected(reason) => StoreError::Rejected(reason),
        InlineError::Database(error) => StoreError::Database(error),
    }
}

/// Converts a position or version for binding; both databases store signed 64-bit integers.
pub(crate) fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Decode(format!("{value} exceeds the 64-bit range")))
}

/// Converts a stored position or version back, refusing negative values.
pub(crate) fn to_u64(column: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Decode(format!("negative {column} {value}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::event::{Actor, Metadata};

    fn new_event(event_type: &str) -> NewEvent {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            schema_version: 2,
            data: json!({ "b": 1, "a": [true, null] }),
            metadata: Metadata::from_actor(Actor::system()),
        }
    }

    #[test]
    fn recorded_events_follow_the_given_position_and_version() {
        let request = AppendRequest::new(
            "s",
            ExpectedVersion::Exact(4),
            vec![new_event("A"), new_event("B")],
        )
        .unwrap();
        let now = recorded_now();
        let hashes = [(Digest::ZERO, Digest::ZERO); 2];
        let events = request.into_recorded(10, 4, now, &hashes);
        let places: Vec<(u64, u64)> = events
            .iter()
            .map(|e| (e.position, e.stream_version))
            .collect();
        assert_eq!(places, vec![(10, 5), (11, 6)]);
        let outcome = outcome(4, events);
        assert_eq!(
            (
                outcome.stream_version,
                outcome.first_position,
                outcome.last_position
            ),
            (6, 10, 11)
        );
    }

    #[test]
    fn data_is_encoded_in_the_order_it_was_given() {
        let prepared = PreparedEvent::new(new_event("A")).unwrap();
        assert_eq!(prepared.data, r#"{"b":1,"a":[true,null]}"#);
    }

    #[test]
    fn the_recorded_time_keeps_whole_microseconds() {
        assert_eq!(recorded_now().timestamp_subsec_nanos() % 1_000, 0);
    }

    #[test]
    fn negative_stored_numbers_are_refused() {
        assert!(to_u64("position", -1).is_err());
        assert_eq!(to_i64(7).unwrap(), 7);
        assert!(to_i64(u64::MAX).is_err());
    }
}
