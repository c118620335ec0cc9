//! Reading the SQLite log through the read pool: one stream, a page of the global log, and
//! the catch-up-then-live subscription that projections follow.

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::links::digest_column;

/// The columns every read selects, in the order [`decode`] expects.
const COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
                       schema_version, data, metadata, recorded_at, prev_hash, hash";

/// Parses a stored time.
pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    crate::time::parse(text).ok_or_else(|| StoreError::Decode(format!("bad recorded_at {text:?}")))
}

/// Every event of one stream, in stream order.
pub(crate) async fn read_stream(
    pool: &SqlitePool,
    stream_id: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!("select {COLUMNS} from events where stream_id = ? order by stream_version");
    let rows = sqlx::query(&sql).bind(stream_id).fetch_all(pool).await?;
    rows.iter().map(decode).collect()
}

/// Up to `limit` events after position `after`, in position order, through any connection
/// (a projection rebuild reads on the writer's connection while it holds the write lock).
pub async fn read_all<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    after: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let sql = format!("select {COLUMNS} from events where position > ? order by position limit ?");
    let rows = sqlx::query(&sql)
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode).collect()
}

/// The stream behind [`EventStore::subscribe`](crate::EventStore::subscribe), read through
/// the read pool.
pub(crate) fn subscribe(
    pool: SqlitePool,
    head: watch::Receiver<u64>,
    after: u64,
) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
    let read_page = move |after: u64, limit: usize| {
        let pool = pool.clone();
        async move { read_all(&pool, after, limit).await }
    };
    crate::subscription::follow(read_page, head, after)
}

/// Turns one `events` row into a [`RecordedEvent`].
fn decode(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let unsigned = |column: &str| -> Result<u64, StoreError> {
        let value: i64 = row.try_get(column)?;
        u64::try_from(value).map_err(|_| StoreError::Decode(format!("negative {column} {value}")))
    };
    let event_id: String = row.try_get("event_id")?;
    let data: String = row.try_get("data")?;
    let metadata: String = row.try_get("metadata")?;
    let recorded_at: String = row.try_get("recorded_at")?;
    let schema_version = unsigned("schema_version")?;
    Ok(RecordedEvent {
        position: unsigned("position")?,
        stream_id: row.try_get("stream_id")?,
        stream_version: unsigned("stream_version")?,
        event_id: Uuid::parse_str(&event_id)
            .map_err(|e| StoreError::Decode(format!("bad event_id {event_id:?}: {e}")))?,
        event_type: row.try_get("event_type")?,
        schema_version: u32::try_from(schema_version).map_err(|_| {
            StoreError::Decode(format!("schema_version {schema_version} too large"))
        })?,
        data: serde_json::from_str(&data)
            .map_err(|e| StoreError::Decode(format!("bad data: {e}")))?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|e| StoreError::Decode(format!("bad metadata: {e}")))?,
        recorded_at: parse_time(&recorded_at)?,
        prev_hash: digest_column("prev_hash", row.try_get("prev_hash")?)?,
        hash: digest_column("hash", row.try_get("hash")?)?,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_are_stored_with_microseconds_in_utc() {
        let time =
            Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap() + chrono::Duration::microseconds(12);
        let text = crate::time::format(time);
        assert_eq!(text, "2024-05-06T07:08:09.000012Z");
        assert_eq!(parse_time(&text).unwrap(), time);
    }
}
