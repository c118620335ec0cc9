//! One append inside the writer's batch: check the stream's expected version, insert the
//! events with their positions and versions, and apply the inline projection.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::inline::{InlineError, SqliteInlineProjection};
use crate::error::StoreError;
use crate::event::{AppendOutcome, ExpectedVersion, NewEvent, RecordedEvent};
use crate::time::format as format_time;

/// An append waiting for the writer, with its JSON already encoded by the caller's task.
pub(crate) struct AppendRequest {
    pub(crate) stream_id: String,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<PreparedEvent>,
}

/// A new event together with the text columns stored for it.
pub(crate) struct PreparedEvent {
    event: NewEvent,
    data: String,
    metadata: String,
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

/// The current time, cut to the microseconds the database keeps.
pub(crate) fn recorded_now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Checks the expected version, inserts the events and applies the inline projection.
pub(crate) async fn append_one(
    conn: &mut SqliteConnection,
    inline: &dyn SqliteInlineProjection,
    request: AppendRequest,
    first_position: u64,
    now: DateTime<Utc>,
) -> Result<AppendOutcome, StoreError> {
    let actual: i64 = sqlx::query_scalar(
        "select coalesce(max(stream_version), 0) from events where stream_id = ?",
    )
    .bind(&request.stream_id)
    .fetch_one(&mut *conn)
    .await?;
    let actual = u64::try_from(actual)
        .map_err(|_| StoreError::Decode(format!("negative stream version {actual}")))?;
    let conflict = || StoreError::Conflict {
        stream_id: request.stream_id.clone(),
        expected: request.expected,
        actual,
    };
    if !request.expected.accepts(actual) {
        return Err(conflict());
    }
    let mut recorded = Vec::with_capacity(request.events.len());
    for (offset, prepared) in (0u64..).zip(&request.events) {
        let position = first_position + offset;
        let stream_version = actual + 1 + offset;
        sqlx::query(
            "insert into events (position, stream_id, stream_version, event_id, event_type, \
             schema_version, data, metadata, recorded_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(to_i64(position)?)
        .bind(&request.stream_id)
        .bind(to_i64(stream_version)?)
        .bind(prepared.event.event_id.to_string())
        .bind(&prepared.event.event_type)
        .bind(i64::from(prepared.event.schema_version))
        .bind(&prepared.data)
        .bind(&prepared.metadata)
        .bind(format_time(now))
        .execute(&mut *conn)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => conflict(),
            _ => StoreError::Database(error),
        })?;
        recorded.push((position, stream_version));
    }
    let events: Vec<RecordedEvent> = request
        .events
        .into_iter()
        .zip(recorded)
        .map(|(prepared, (position, stream_version))| RecordedEvent {
            position,
            stream_id: request.stream_id.clone(),
            stream_version,
            event_id: prepared.event.event_id,
            event_type: prepared.event.event_type,
            schema_version: prepared.event.schema_version,
            data: prepared.event.data,
            metadata: prepared.event.metadata,
            recorded_at: now,
        })
        .collect();
    if !events.is_empty() {
        inline
            .apply(conn, &events)
            .await
            .map_err(|error| match error {
                InlineError::Rejected(reason) => StoreError::Rejected(reason),
                InlineError::Database(error) => StoreError::Database(error),
            })?;
    }
    Ok(AppendOutcome {
        stream_version: actual + events.len() as u64,
        first_position: events.first().map_or(0, |e| e.position),
        last_position: events.last().map_or(0, |e| e.position),
        events,
    })
}

/// Converts a position or version for binding; SQLite integers are signed 64-bit.
fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Decode(format!("{value} exceeds SQLite's range")))
}

#[cfg(test)]
mod tests {
    use crate::sqlite::test_support::{event, temp_store};
    use crate::{EventStore, ExpectedVersion, StoreError};

    fn assert_conflict(result: Result<crate::AppendOutcome, StoreError>, actual_version: u64) {
        match result {
            Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, actual_version),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn appended_events_read_back_as_recorded() {
        let (_dir, store) = temp_store().await;
        let first = event("Created");
        let outcome = store
            .append(
                "ar-1",
                ExpectedVersion::NoStream,
                vec![first.clone(), event("Sent")],
            )
            .await
            .unwrap();
        assert_eq!(outcome.stream_version, 2);
        assert_eq!((outcome.first_position, outcome.last_position), (1, 2));

        let read = store.read_stream("ar-1").await.unwrap();
        assert_eq!(read, outcome.events);
        assert_eq!(read[0].event_id, first.event_id);
        assert_eq!(read[0].data, first.data);
        assert_eq!(read[0].metadata, first.metadata);
        assert_eq!(read[0].stream_version, 1);
        assert_eq!(read[1].stream_version, 2);
        assert_eq!(store.head().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_stale_exact_version_is_a_conflict() {
        let (_dir, store) = temp_store().await;
        store
            .append("s", ExpectedVersion::NoStream, vec![event("A"), event("B")])
            .await
            .unwrap();
        let stale = store
            .append("s", ExpectedVersion::Exact(1), vec![event("C")])
            .await;
        assert_conflict(stale, 2);
        store
            .append("s", ExpectedVersion::Exact(2), vec![event("C")])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn no_stream_on_an_existing_stream_is_a_conflict() {
        let (_dir, store) = temp_store().await;
        store
            .append("s", ExpectedVersion::NoStream, vec![event("A")])
            .await
            .unwrap();
        let again = store
            .append("s", ExpectedVersion::NoStream, vec![event("A")])
            .await;
        assert_conflict(again, 1);
    }

    #[tokio::test]
    async fn exact_on_a_missing_stream_is_a_conflict() {
        let (_dir, store) = temp_store().await;
        let missing = store
            .append("nobody", ExpectedVersion::Exact(1), vec![event("A")])
            .await;
        assert_conflict(missing, 0);
        assert!(store.read_stream("nobody").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn any_appends_whatever_the_version() {
        let (_dir, store) = temp_store().await;
        for expected_version in 1..=3 {
            let outcome = store
                .append("s", ExpectedVersion::Any, vec![event("A")])
                .await
                .unwrap();
            assert_eq!(outcome.stream_version, expected_version);
        }
    }

    #[tokio::test]
    async fn positions_are_gap_free_and_ascending_across_streams() {
        let (_dir, store) = temp_store().await;
        store
            .append("a", ExpectedVersion::NoStream, vec![event("A")])
            .await
            .unwrap();
        let _ = store
            .append("a", ExpectedVersion::NoStream, vec![event("A")])
            .await
            .unwrap_err();
        store
            .append("b", ExpectedVersion::NoStream, vec![event("B"), event("B")])
            .await
            .unwrap();
        store
            .append("a", ExpectedVersion::Exact(1), vec![event("A")])
            .await
            .unwrap();
        let all = store.read_all(0, 100).await.unwrap();
        let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
        assert_eq!(positions, vec![1, 2, 3, 4]);
        let streams: Vec<&str> = all.iter().map(|e| e.stream_id.as_str()).collect();
        assert_eq!(streams, vec!["a", "b", "b", "a"]);
        assert!(all.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at));
    }

    #[tokio::test]
    async fn a_duplicate_event_id_is_refused_as_a_conflict() {
        let (_dir, store) = temp_store().await;
        let once = event("A");
        store
            .append("s", ExpectedVersion::NoStream, vec![once.clone()])
            .await
            .unwrap();
        let retried = store
            .append("s", ExpectedVersion::Any, vec![once.clone()])
            .await;
        assert_conflict(retried, 1);
        let elsewhere = store
            .append("t", ExpectedVersion::NoStream, vec![once.clone()])
            .await;
        assert_conflict(elsewhere, 0);
        let doubled = event("B");
        let twice_in_one = store
            .append(
                "u",
                ExpectedVersion::NoStream,
                vec![doubled.clone(), doubled],
            )
            .await;
        assert_conflict(twice_in_one, 0);
        assert!(store.read_stream("u").await.unwrap().is_empty());
        assert_eq!(store.head().await.unwrap(), 1);
        assert_eq!(store.read_all(0, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_empty_append_only_checks_the_expected_version() {
        let (_dir, store) = temp_store().await;
        let outcome = store
            .append("s", ExpectedVersion::NoStream, Vec::new())
            .await
            .unwrap();
        assert_eq!(outcome.stream_version, 0);
        assert_eq!((outcome.first_position, outcome.last_position), (0, 0));
        assert_conflict(
            store
                .append("s", ExpectedVersion::Exact(4), Vec::new())
                .await,
            0,
        );
        assert_eq!(store.head().await.unwrap(), 0);
    }
}
