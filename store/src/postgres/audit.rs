//! The PostgreSQL side of the audit: plain reads of stored rows and Merkle nodes, loading the
//! links of the log's end, and linking events stored before the log carried links.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use countersign_audit::Digest;
use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, PgExecutor, Row};
use uuid::Uuid;

use super::append::insert_nodes;
use super::lock::{lock_log, BEGIN};
use super::PostgresStore;
use crate::append::to_i64;
use crate::audit::{AuditLog, Extent, RawEvent};
use crate::error::StoreError;
use crate::links::{digest_column, link_raw, peak_numbers, Links};
use sqlx::PgPool;

const RAW_COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
    schema_version, data, metadata, recorded_at, prev_hash, hash";

/// Stored rows after `after` up to `until`, in position order.
async fn raw_events<'e>(
    executor: impl PgExecutor<'e>,
    after: i64,
    until: i64,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let sql = format!(
        "select {RAW_COLUMNS} from events where position > $1 and position <= $2 \
         order by position limit $3"
    );
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(until)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode_raw).collect()
}

fn decode_raw(row: &PgRow) -> Result<RawEvent, StoreError> {
    let event_id: Uuid = row.try_get("event_id")?;
    let recorded_at: DateTime<Utc> = row.try_get("recorded_at")?;
    let schema_version: i32 = row.try_get("schema_version")?;
    Ok(RawEvent {
        position: row.try_get("position")?,
        stream_id: row.try_get("stream_id")?,
        stream_version: row.try_get("stream_version")?,
        event_id: event_id.to_string(),
        event_type: row.try_get("event_type")?,
        schema_version: i64::from(schema_version),
        data: row.try_get("data")?,
        metadata: row.try_get("metadata")?,
        recorded_at: crate::time::format(recorded_at),
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The stored nodes among `numbers`.
async fn nodes<'e>(
    executor: impl PgExecutor<'e>,
    numbers: &[u64],
) -> Result<HashMap<u64, Vec<u8>>, StoreError> {
    let numbers = numbers
        .iter()
        .map(|n| to_i64(*n))
        .collect::<Result<Vec<_>, _>>()?;
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("select number, hash from merkle_nodes where number = any($1)")
            .bind(numbers)
            .fetch_all(executor)
            .await?;
    Ok(rows.into_iter().map(|(n, h)| (n as u64, h)).collect())
}

/// The audit's reads of a PostgreSQL log, through a pool alone: it never writes, so it can
/// check a damaged log that a writer would refuse to open.
#[derive(Debug, Clone)]
pub struct PostgresAudit(pub(crate) PgPool);

impl PostgresStore {
    /// The audit's reads of this log.
    pub fn audit(&self) -> PostgresAudit {
        PostgresAudit(self.pool().clone())
    }
}

#[async_trait]
impl AuditLog for PostgresAudit {
    async fn raw_events(
        &self,
        after: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<RawEvent>, StoreError> {
        raw_events(&self.0, after, until, limit).await
    }

    async fn nodes_between(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "select number, hash from merkle_nodes where number >= $1 and number < $2 \
             order by number",
        )
        .bind(to_i64(from)?)
        .bind(to_i64(to)?)
        .fetch_all(&self.0)
        .await?;
        Ok(rows.into_iter().map(|(n, h)| (n as u64, h)).collect())
    }

    async fn nodes(&self, numbers: &[u64]) -> Result<HashMap<u64, Vec<u8>>, StoreError> {
        nodes(&self.0, numbers).await
    }

    async fn extent(&self) -> Result<Extent, StoreError> {
        let (last_position, last_node) = sqlx::query_as(
            "select (select max(position) from events), (select max(number) from merkle_nodes)",
        )
        .fetch_one(&self.0)
        .await?;
        Ok(Extent {
            last_position,
            last_node,
        })
    }
}

/// The links of the first `size` events, from the last one's hash and the tree's peaks.
pub(crate) async fn load_links(conn: &mut PgConnection, size: u64) -> Result<Links, StoreError> {
    if size == 0 {
        return Ok(Links::default());
    }
    let hash: Option<Vec<u8>> = sqlx::query_scalar("select hash from events where position = $1")
        .bind(to_i64(size)?)
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
    let numbers = peak_numbers(size);
    let mut stored = nodes(&mut *conn, &numbers).await?;
    let peaks = numbers
        .iter()
        .map(|n| digest_column("merkle node", stored.remove(n)))
        .collect::<Result<Vec<Digest>, _>>()?;
    Links::load(size, digest_column("hash", hash)?, peaks)
}

/// Links the events stored before the log carried links, under the log's lock (so processes
/// opening the database together link them once).
pub(crate) async fn link_unlinked(conn: &mut PgConnection) -> Result<(), StoreError> {
    let unlinked: Option<i64> =
        sqlx::query_scalar("select min(position) from events where hash is null")
            .fetch_one(&mut *conn)
            .await?;
    if unlinked.is_none() {
        return Ok(());
    }
    let mut tx = conn.begin_with(BEGIN).await?;
    lock_log(&mut tx).await?;
    let first: Option<i64> =
        sqlx::query_scalar("select min(position) from events where hash is null")
            .fetch_one(&mut *tx)
            .await?;
    let Some(first) = first else {
        return Ok(());
    };
    let start = u64::try_from(first - 1).map_err(|_| StoreError::Decode("bad position".into()))?;
    let mut links = load_links(&mut tx, start).await?;
    loop {
        let rows = raw_events(&mut *tx, to_i64(links.size())?, i64::MAX, 1_000).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let ((prev_hash, hash), nodes) = link_raw(&mut links, row)?;
            sqlx::query("update events set prev_hash = $1, hash = $2 where position = $3")
                .bind(prev_hash.as_bytes().as_slice())
                .bind(hash.as_bytes().as_slice())
                .bind(row.position)
                .execute(&mut *tx)
                .await?;
            insert_nodes(&mut tx, &nodes).await?;
        }
    }
    tx.commit().await?;
    tracing::info!(
        events = links.size(),
        "linked the events stored before the hash chain"
    );
    Ok(())
}
