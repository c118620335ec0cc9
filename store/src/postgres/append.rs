//! One append inside the PostgreSQL writer's batch: check the stream's expected version, insert
//! the events with their positions and versions in one statement, and apply the inline
//! projection. The batch's transaction already holds the log's advisory lock.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::inline::PgInlineProjection;
use crate::append::{inline_failed, outcome, to_i64, to_u64, AppendRequest};
use crate::error::StoreError;
use crate::event::AppendOutcome;
use crate::links::Links;
use countersign_audit::Digest;

/// Inserts a whole append with one round trip: one array per column, unnested into rows.
const INSERT: &str = "insert into events (position, stream_id, stream_version, event_id, \
    event_type, schema_version, data, metadata, recorded_at, prev_hash, hash) \
    select e.position, $1, e.stream_version, e.event_id, e.event_type, e.schema_version, \
    e.data, e.metadata, $9, e.prev_hash, e.hash \
    from unnest($2::bigint[], $3::bigint[], $4::uuid[], $5::text[], $6::integer[], \
    $7::text[], $8::text[], $10::bytea[], $11::bytea[]) \
    as e(position, stream_version, event_id, event_type, schema_version, data, metadata, \
    prev_hash, hash)";

/// Stores the Merkle nodes an append completes, in one round trip.
const INSERT_NODES: &str = "insert into merkle_nodes (number, hash) \
    select * from unnest($1::bigint[], $2::bytea[])";

/// Checks the expected version, inserts the events and applies the inline projection.
/// `links` are those of the log's end; they move past the new events (the caller keeps them
/// only when the append's savepoint commits).
pub(crate) async fn append_one(
    conn: &mut PgConnection,
    inline: &dyn PgInlineProjection,
    request: AppendRequest,
    links: &mut Links,
    now: DateTime<Utc>,
) -> Result<AppendOutcome, StoreError> {
    let first_position = links.size() + 1;
    let actual: i64 = sqlx::query_scalar(
        "select coalesce(max(stream_version), 0) from events where stream_id = $1",
    )
    .bind(&request.stream_id)
    .fetch_one(&mut *conn)
    .await?;
    let actual = to_u64("stream version", actual)?;
    if !request.expected.accepts(actual) {
        return Err(request.conflict(actual));
    }
    let sealed = links.seal(&request, first_position, actual, now)?;
    if !request.events.is_empty() {
        insert(conn, &request, first_position, actual, now, &sealed.hashes).await?;
        insert_nodes(conn, &sealed.nodes).await?;
    }
    let events = request.into_recorded(first_position, actual, now, &sealed.hashes);
    if !events.is_empty() {
        inline.apply(conn, &events).await.map_err(inline_failed)?;
    }
    Ok(outcome(actual, events))
}

/// Inserts the request's events after stream version `actual`, from `first_position` on.
async fn insert(
    conn: &mut PgConnection,
    request: &AppendRequest,
    first_position: u64,
    actual: u64,
    now: DateTime<Utc>,
    hashes: &[(Digest, Digest)],
) -> Result<(), StoreError> {
    let offsets = 0..request.events.len() as u64;
    let positions = offsets
        .clone()
        .map(|offset| to_i64(first_position + offset))
        .collect::<Result<Vec<_>, _>>()?;
    let versions = offsets
        .map(|offset| to_i64(actual + 1 + offset))
        .collect::<Result<Vec<_>, _>>()?;
    let schema_versions = request
        .events
        .iter()
        .map(|p| {
            i32::try_from(p.event.schema_version).map_err(|_| {
                StoreError::Decode(format!(
                    "schema version {} too large",
                    p.event.schema_version
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<Uuid> = request.events.iter().map(|p| p.event.event_id).collect();
    let types: Vec<&str> = request
        .events
        .iter()
        .map(|p| p.event.event_type.as_str())
        .collect();
    let data: Vec<&str> = request.events.iter().map(|p| p.data.as_str()).collect();
    let metadata: Vec<&str> = request.events.iter().map(|p| p.metadata.as_str()).collect();
    let prev_hashes: Vec<&[u8]> = hashes
        .iter()
        .map(|(prev, _)| prev.as_bytes().as_slice())
        .collect();
    let own_hashes: Vec<&[u8]> = hashes
        .iter()
        .map(|(_, hash)| hash.as_bytes().as_slice())
        .collect();
    sqlx::query(INSERT)
        .bind(&request.stream_id)
        .bind(positions)
        .bind(versions)
        .bind(ids)
        .bind(types)
        .bind(schema_versions)
        .bind(data)
        .bind(metadata)
        .bind(now)
        .bind(prev_hashes)
        .bind(own_hashes)
        .execute(&mut *conn)
        .await
        .map_err(|error| match &error {
            // A taken position would mean an insert that bypassed the log's lock: not a race
            // between appenders, so it stays an error.
            sqlx::Error::Database(db)
                if db.is_unique_violation() && db.constraint() != Some("events_pkey") =>
            {
                request.conflict(actual)
            }
            _ => StoreError::Database(error),
        })?;
    Ok(())
}

/// Stores Merkle nodes.
pub(crate) async fn insert_nodes(
    conn: &mut PgConnection,
    nodes: &[(u64, Digest)],
) -> Result<(), StoreError> {
    if nodes.is_empty() {
        return Ok(());
    }
    let numbers = nodes
        .iter()
        .map(|(number, _)| to_i64(*number))
        .collect::<Result<Vec<_>, _>>()?;
    let hashes: Vec<&[u8]> = nodes.iter().map(|(_, h)| h.as_bytes().as_slice()).collect();
    sqlx::query(INSERT_NODES)
        .bind(numbers)
        .bind(hashes)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
