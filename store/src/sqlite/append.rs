//! One append inside the SQLite writer's batch: check the stream's expected version, insert
//! the events with their positions and versions, and apply the inline projection.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::inline::SqliteInlineProjection;
use crate::append::{inline_failed, outcome, to_i64, to_u64, AppendRequest};
use crate::error::StoreError;
use crate::event::AppendOutcome;
use crate::time::format as format_time;

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
    let actual = to_u64("stream version", actual)?;
    if !request.expected.accepts(actual) {
        return Err(request.conflict(actual));
    }
    for (offset, prepared) in (0u64..).zip(&request.events) {
        sqlx::query(
            "insert into events (position, stream_id, stream_version, event_id, event_type, \
             schema_version, data, metadata, recorded_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(to_i64(first_position + offset)?)
        .bind(&request.stream_id)
        .bind(to_i64(actual + 1 + offset)?)
        .bind(prepared.event.event_id.to_string())
        .bind(&prepared.event.event_type)
        .bind(i64::from(prepared.event.schema_version))
        .bind(&prepared.data)
        .bind(&prepared.metadata)
        .bind(format_time(now))
        .execute(&mut *conn)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => request.conflict(actual),
            _ => StoreError::Database(error),
        })?;
    }
    let events = request.into_recorded(first_position, actual, now);
    if !events.is_empty() {
        inline.apply(conn, &events).await.map_err(inline_failed)?;
    }
    Ok(outcome(actual, events))
}
