//! One append inside the SQLite writer's batch: check the stream's expected version, insert
//! the events with their positions, versions and links, store the Merkle nodes they complete,
//! and apply the inline projection.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::inline::SqliteInlineProjection;
use crate::append::{inline_failed, outcome, to_i64, to_u64, AppendRequest};
use crate::error::StoreError;
use crate::event::AppendOutcome;
use crate::links::Links;
use crate::time::format as format_time;

/// Checks the expected version, inserts the events and applies the inline projection.
/// `links` are those of the log's end; they move past the new events (the caller keeps them
/// only when the append's savepoint commits).
pub(crate) async fn append_one(
    conn: &mut SqliteConnection,
    inline: &dyn SqliteInlineProjection,
    request: AppendRequest,
    links: &mut Links,
    now: DateTime<Utc>,
) -> Result<AppendOutcome, StoreError> {
    let first_position = links.size() + 1;
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
    let sealed = links.seal(&request, first_position, actual, now)?;
    for ((offset, prepared), (prev_hash, hash)) in (0u64..).zip(&request.events).zip(&sealed.hashes)
    {
        sqlx::query(
            "insert into events (position, stream_id, stream_version, event_id, event_type, \
             schema_version, data, metadata, recorded_at, prev_hash, hash) \
             values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(prev_hash.as_bytes().as_slice())
        .bind(hash.as_bytes().as_slice())
        .execute(&mut *conn)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => request.conflict(actual),
            _ => StoreError::Database(error),
        })?;
    }
    insert_nodes(conn, &sealed.nodes).await?;
    let events = request.into_recorded(first_position, actual, now, &sealed.hashes);
    if !events.is_empty() {
        inline.apply(conn, &events).await.map_err(inline_failed)?;
    }
    Ok(outcome(actual, events))
}

/// Stores Merkle nodes, up to [`NODES_PER_STATEMENT`] per statement.
pub(crate) async fn insert_nodes(
    conn: &mut SqliteConnection,
    nodes: &[(u64, countersign_audit::Digest)],
) -> Result<(), StoreError> {
    for chunk in nodes.chunks(NODES_PER_STATEMENT) {
        let values = vec!["(?, ?)"; chunk.len()].join(", ");
        let sql = format!("insert into merkle_nodes (number, hash) values {values}");
        let mut query = sqlx::query(&sql);
        for (number, hash) in chunk {
            query = query.bind(to_i64(*number)?).bind(hash.as_bytes().to_vec());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Nodes per insert statement (two parameters each, well under SQLite's limit).
const NODES_PER_STATEMENT: usize = 256;
