//! The SQLite side of the audit: plain reads of stored rows and Merkle nodes, loading the
//! links of the log's end when the store opens, and linking events stored before the log
//! carried links.

use std::collections::HashMap;

use async_trait::async_trait;
use countersign_audit::Digest;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row, SqliteConnection, SqliteExecutor};

use super::append::insert_nodes;
use super::SqliteStore;
use crate::append::to_i64;
use crate::audit::{AuditLog, Extent, RawEvent};
use crate::error::StoreError;
use crate::links::{digest_column, link_raw, peak_numbers, Links};
use sqlx::SqlitePool;

const RAW_COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
    schema_version, data, metadata, recorded_at, prev_hash, hash";

/// Stored rows after `after` up to `until`, in position order.
async fn raw_events<'e>(
    executor: impl SqliteExecutor<'e>,
    after: i64,
    until: i64,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let sql = format!(
        "select {RAW_COLUMNS} from events where position > ? and position <= ? \
         order by position limit ?"
    );
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(until)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode_raw).collect()
}

fn decode_raw(row: &SqliteRow) -> Result<RawEvent, StoreError> {
    Ok(RawEvent {
        position: row.try_get("position")?,
        stream_id: row.try_get("stream_id")?,
        stream_version: row.try_get("stream_version")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: row.try_get("schema_version")?,
        data: row.try_get("data")?,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The stored nodes among `numbers`.
async fn nodes<'e>(
    executor: impl SqliteExecutor<'e>,
    numbers: &[u64],
) -> Result<HashMap<u64, Vec<u8>>, StoreError> {
    let list = serde_json::to_string(numbers).expect("numbers serialize");
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "select number, hash from merkle_nodes where number in (select value from json_each(?))",
    )
    .bind(list)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|(n, h)| (n as u64, h)).collect())
}

/// The audit's reads of a SQLite log, through a pool alone: it never writes, so it can
/// check a damaged log that a writer would refuse to open.
#[derive(Debug, Clone)]
pub struct SqliteAudit(pub(crate) SqlitePool);

impl SqliteStore {
    /// The audit's reads of this log.
    pub fn audit(&self) -> SqliteAudit {
        SqliteAudit(self.pool().clone())
    }
}

#[async_trait]
impl AuditLog for SqliteAudit {
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
            "select number, hash from merkle_nodes where number >= ? and number < ? \
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

/// The links of the log's end, linking first any events stored before the log carried links.
pub(crate) async fn open_links(conn: &mut SqliteConnection) -> Result<Links, StoreError> {
    let unlinked: Option<i64> =
        sqlx::query_scalar("select min(position) from events where hash is null")
            .fetch_one(&mut *conn)
            .await?;
    if let Some(first) = unlinked {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut links = load_links(&mut tx, first - 1).await?;
        link_stored(&mut tx, &mut links).await?;
        tx.commit().await?;
        tracing::info!(
            events = links.size(),
            "linked the events stored before the hash chain"
        );
        return Ok(links);
    }
    let size: Option<i64> = sqlx::query_scalar("select max(position) from events")
        .fetch_one(&mut *conn)
        .await?;
    load_links(conn, size.unwrap_or(0)).await
}

/// The links of the first `size` events, from the last one's hash and the tree's peaks.
async fn load_links(conn: &mut SqliteConnection, size: i64) -> Result<Links, StoreError> {
    let size = u64::try_from(size).map_err(|_| StoreError::Decode("negative position".into()))?;
    if size == 0 {
        return Ok(Links::default());
    }
    let hash: Option<Vec<u8>> = sqlx::query_scalar("select hash from events where position = ?")
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

/// Links every stored event after `links`, in pages.
async fn link_stored(conn: &mut SqliteConnection, links: &mut Links) -> Result<(), StoreError> {
    loop {
        let after = to_i64(links.size())?;
        let rows = raw_events(&mut *conn, after, i64::MAX, 1_000).await?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in &rows {
            let ((prev_hash, hash), nodes) = link_raw(links, row)?;
            sqlx::query("update events set prev_hash = ?, hash = ? where position = ?")
                .bind(prev_hash.as_bytes().as_slice())
                .bind(hash.as_bytes().as_slice())
                .bind(row.position)
                .execute(&mut *conn)
                .await?;
            insert_nodes(conn, &nodes).await?;
        }
    }
}
