//! Reading the PostgreSQL log through the read pool: one stream, a page of the global log, the
//! head, and the catch-up-then-live subscription that projections follow.

use futures::stream::BoxStream;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, PgPool, Row};
use tokio::sync::watch;

use crate::append::to_u64;
use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::links::digest_column;

/// The columns every read selects, in the order [`decode`] expects.
const COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
                       schema_version, data, metadata, recorded_at, prev_hash, hash";

/// Every event of one stream, in stream order.
pub(crate) async fn read_stream(
    pool: &PgPool,
    stream_id: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!("select {COLUMNS} from events where stream_id = $1 order by stream_version");
    let rows = sqlx::query(&sql).bind(stream_id).fetch_all(pool).await?;
    rows.iter().map(decode).collect()
}

/// Up to `limit` events after position `after`, in position order, through any connection
/// (a projection rebuild reads on the writer's connection while it holds the write lock).
pub async fn read_all<'e>(
    executor: impl PgExecutor<'e>,
    after: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let sql =
        format!("select {COLUMNS} from events where position > $1 order by position limit $2");
    let rows = sqlx::query(&sql)
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode).collect()
}

/// The position of the last committed event (0 when the log is empty).
pub(crate) async fn head<'e>(executor: impl PgExecutor<'e>) -> Result<u64, StoreError> {
    let head: i64 = sqlx::query_scalar("select coalesce(max(position), 0) from events")
        .fetch_one(executor)
        .await?;
    to_u64("position", head)
}

/// The stream behind [`EventStore::subscribe`](crate::EventStore::subscribe), read through
/// the read pool.
pub(crate) fn subscribe(
    pool: PgPool,
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
fn decode(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let data: String = row.try_get("data")?;
    let metadata: String = row.try_get("metadata")?;
    let schema_version: i32 = row.try_get("schema_version")?;
    Ok(RecordedEvent {
        position: to_u64("position", row.try_get("position")?)?,
        stream_id: row.try_get("stream_id")?,
        stream_version: to_u64("stream_version", row.try_get("stream_version")?)?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| StoreError::Decode(format!("negative schema_version {schema_version}")))?,
        data: serde_json::from_str(&data)
            .map_err(|e| StoreError::Decode(format!("bad data: {e}")))?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|e| StoreError::Decode(format!("bad metadata: {e}")))?,
        recorded_at: row.try_get("recorded_at")?,
        prev_hash: digest_column("prev_hash", row.try_get("prev_hash")?)?,
        hash: digest_column("hash", row.try_get("hash")?)?,
    })
}
