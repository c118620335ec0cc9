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

/// How many events a subscription reads per query while catching up.
const PAGE_SIZE: usize = 500;

/// The columns every read selects, in the order [`decode`] expects.
const COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
                       schema_version, data, metadata, recorded_at";

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

/// The stream behind [`EventStore::subscribe`](crate::EventStore::subscribe): pages through
/// the history, then waits on the head watch for commits and reads what they added.
pub(crate) fn subscribe(
    pool: SqlitePool,
    mut head: watch::Receiver<u64>,
    after: u64,
) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
    Box::pin(async_stream::try_stream! {
        let mut position = after;
        loop {
            // Mark the head as seen before reading, so a commit during the read wakes us.
            head.borrow_and_update();
            loop {
                let page = read_all(&pool, position, PAGE_SIZE).await?;
                let full = page.len() == PAGE_SIZE;
                for event in page {
                    position = event.position;
                    yield event;
                }
                if !full {
                    break;
                }
            }
            while *head.borrow_and_update() <= position {
                head.changed()
                    .await
                    .map_err(|_| StoreError::Unavailable("the event store has shut down".into()))?;
            }
        }
    })
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
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use futures::StreamExt;

    use super::*;
    use crate::sqlite::test_support::{event, temp_store};
    use crate::{EventStore, ExpectedVersion};

    #[test]
    fn times_are_stored_with_microseconds_in_utc() {
        let time =
            Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap() + chrono::Duration::microseconds(12);
        let text = crate::time::format(time);
        assert_eq!(text, "2024-05-06T07:08:09.000012Z");
        assert_eq!(parse_time(&text).unwrap(), time);
    }

    #[tokio::test]
    async fn read_all_pages_through_the_log_in_position_order() {
        let (_dir, store) = temp_store().await;
        for i in 0..7 {
            store
                .append(
                    &format!("s-{}", i % 3),
                    ExpectedVersion::Any,
                    vec![event("E")],
                )
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = store.read_all(after, 3).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 3);
            after = page.last().unwrap().position;
            seen.extend(page.into_iter().map(|e| e.position));
        }
        assert_eq!(seen, (1..=7).collect::<Vec<_>>());
        assert!(store.read_all(0, 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn read_stream_of_a_missing_stream_is_empty() {
        let (_dir, store) = temp_store().await;
        assert!(store.read_stream("nothing-here").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn subscribe_delivers_history_then_live_events_in_order_exactly_once() {
        let (_dir, store) = temp_store().await;
        for _ in 0..3 {
            store
                .append("history", ExpectedVersion::Any, vec![event("Old")])
                .await
                .unwrap();
        }
        let mut subscription = store.subscribe(1);
        let writer = store.clone();
        let appender = tokio::spawn(async move {
            for _ in 0..5 {
                writer
                    .append("live", ExpectedVersion::Any, vec![event("New")])
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        let mut positions = Vec::new();
        while positions.len() < 7 {
            let next =
                tokio::time::timeout(std::time::Duration::from_secs(10), subscription.next())
                    .await
                    .expect("the subscription stalled");
            positions.push(next.unwrap().unwrap().position);
        }
        appender.await.unwrap();
        assert_eq!(positions, (2..=8).collect::<Vec<_>>());
        let extra =
            tokio::time::timeout(std::time::Duration::from_millis(100), subscription.next()).await;
        assert!(extra.is_err(), "no event may be delivered twice");
    }
}
