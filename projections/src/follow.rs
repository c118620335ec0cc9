//! Asynchronous projections: each follows the log through a catch-up subscription from its
//! checkpoint, and commits the read-model changes of a batch of events together with the new
//! checkpoint in one transaction, so every event is applied exactly once.
//!
//! A projection that fails on an event commits the events before it, records the failing
//! position and the error (`state = stopped`), and tries that same event again after a pause:
//! it resumes as soon as the cause is fixed and never skips an event. Several server processes
//! may follow the same projection: each batch takes the projection's lock and goes ahead only if
//! the checkpoint is still where the batch starts, so no event is ever applied twice.

use std::time::Duration;

use async_trait::async_trait;
use countersign_store::{RecordedEvent, StoreError};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use crate::database::Database;
use crate::sql::{Param, Pool, Sql};
use crate::time;

/// Every asynchronous projection the server runs.
pub const ASYNC: &[&dyn AsyncProjection] = &[&crate::stats::DailyStats];

/// Events applied per transaction at most.
const BATCH: usize = 500;

/// Why a projection could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The read model's SQL failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The event cannot be applied as it is.
    #[error("{0}")]
    Event(String),
}

/// A read model that follows the log on its own.
#[async_trait]
pub trait AsyncProjection: Send + Sync + 'static {
    /// Its name, as listed and as its checkpoint is kept.
    fn name(&self) -> &'static str;
    /// Its main table, whose rows the listing counts.
    fn table(&self) -> &'static str;
    /// Applies one event inside the projection's transaction.
    async fn apply(&self, conn: &mut dyn Sql, event: &RecordedEvent) -> Result<(), ApplyError>;
}

/// Where a projection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The projection.
    pub name: String,
    /// The last position it applied.
    pub position: u64,
    /// `running`, or `stopped` after a failure.
    pub state: String,
    /// The event it failed on, while stopped.
    pub failed_position: Option<u64>,
    /// Why, while stopped.
    pub error: Option<String>,
}

/// What ended one run of a projection.
#[derive(Debug)]
enum Failure {
    /// An event could not be applied.
    Event { position: u64, error: String },
    /// Another process moved the checkpoint first.
    Moved,
    /// The store or the database failed.
    Store(String),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Failure::Store(error.to_string())
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error.to_string())
    }
}

/// Every projection's checkpoint, by name.
pub async fn checkpoints(pool: &Pool) -> Result<Vec<Checkpoint>, sqlx::Error> {
    let rows = pool
        .rows(
            "select name, cast(position as text), state, cast(failed_position as text), error \
             from projection_checkpoints order by name",
            &[],
        )
        .await?;
    Ok(rows.into_iter().map(checkpoint_of).collect())
}

fn checkpoint_of(row: Vec<Option<String>>) -> Checkpoint {
    let mut columns = row.into_iter();
    let mut next = || columns.next().flatten();
    Checkpoint {
        name: next().unwrap_or_default(),
        position: next().and_then(|p| p.parse().ok()).unwrap_or(0),
        state: next().unwrap_or_default(),
        failed_position: next().and_then(|p| p.parse().ok()),
        error: next(),
    }
}

/// The projection's checkpoint, created at 0 the first time.
async fn load_or_create(pool: &Pool, name: &str) -> Result<Checkpoint, sqlx::Error> {
    pool.run(
        "insert into projection_checkpoints (name, position, state, updated_at) \
         values ($1, 0, 'running', $2) on conflict (name) do nothing",
        &[name.into(), time::format(chrono::Utc::now()).into()],
    )
    .await?;
    let rows = pool
        .rows(
            "select name, cast(position as text), state, cast(failed_position as text), error \
             from projection_checkpoints where name = $1",
            &[name.into()],
        )
        .await?;
    Ok(rows
        .into_iter()
        .next()
        .map(checkpoint_of)
        .unwrap_or(Checkpoint {
            name: name.to_owned(),
            position: 0,
            state: "running".into(),
            failed_position: None,
            error: None,
        }))
}

/// Follows the log with `projection` until `stopping` turns true, retrying `retry` after a
/// failure.
pub async fn follow(
    db: Database,
    projection: &'static dyn AsyncProjection,
    mut stopping: watch::Receiver<bool>,
    retry: Duration,
) {
    let name = projection.name();
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        match follow_once(&db, projection, &mut stopping).await {
            Ok(()) => return,
            Err(Failure::Moved) => continue,
            Err(Failure::Event { position, error }) => {
                tracing::error!(projection = name, position, %error, "projection stopped on an event");
                let stopped = db
                    .pool()
                    .run(
                        "update projection_checkpoints set state = 'stopped', \
                         failed_position = $1, error = $2, updated_at = $3 where name = $4",
                        &[
                            Param::Int(position as i64),
                            error.into(),
                            time::format(chrono::Utc::now()).into(),
                            name.into(),
                        ],
                    )
                    .await;
                if let Err(error) = stopped {
                    tracing::error!(projection = name, %error, "cannot record the failure");
                }
            }
            Err(Failure::Store(error)) => {
                tracing::warn!(projection = name, %error, "projection paused: the store failed");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            _ = stopping.changed() => return,
        }
    }
}

/// One run: from the checkpoint to the first failure (or the server's stop).
async fn follow_once(
    db: &Database,
    projection: &'static dyn AsyncProjection,
    stopping: &mut watch::Receiver<bool>,
) -> Result<(), Failure> {
    let pool = db.pool();
    let checkpoint = load_or_create(&pool, projection.name()).await?;
    let mut position = checkpoint.position;
    let mut events = db.events().subscribe(position);
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            _ = stopping.changed() => return Ok(()),
        };
        let first = next.ok_or_else(|| Failure::Store("the subscription ended".into()))??;
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match events.next().now_or_never() {
                Some(Some(event)) => batch.push(event?),
                Some(None) | None => break,
            }
        }
        match commit(&pool, projection, position, &batch).await {
            Ok(last) => position = last,
            Err(Failure::Event {
                position: failed,
                error,
            }) => {
                // Keep what came before the failing event, then report it.
                let before: Vec<RecordedEvent> = batch
                    .into_iter()
                    .take_while(|e| e.position < failed)
                    .collect();
                if !before.is_empty() {
                    commit(&pool, projection, position, &before).await?;
                }
                return Err(Failure::Event {
                    position: failed,
                    error,
                });
            }
            Err(other) => return Err(other),
        }
    }
}

/// Applies `batch` and moves the checkpoint from `from` to its last event, in one transaction.
async fn commit(
    pool: &Pool,
    projection: &'static dyn AsyncProjection,
    from: u64,
    batch: &[RecordedEvent],
) -> Result<u64, Failure> {
    let last = batch.last().map_or(from, |e| e.position);
    let name = projection.name();
    // The transaction's future may outlive this borrow: it gets its own copy.
    let batch = batch.to_vec();
    let postgres = matches!(pool, Pool::Postgres(_));
    pool.transaction(move |conn| {
        Box::pin(async move {
            // One process at a time applies a projection's batch: on PostgreSQL a transaction
            // lock per projection (SQLite's `BEGIN IMMEDIATE` already serialises writers), and
            // the checkpoint must still be where this batch starts.
            if postgres {
                conn.execute(
                    "select pg_advisory_xact_lock(hashtext('countersign-projection:' || $1))",
                    &[name.into()],
                )
                .await?;
            }
            let current = conn
                .fetch(
                    "select cast(position as text) from projection_checkpoints where name = $1",
                    &[name.into()],
                )
                .await?;
            let current = current
                .into_iter()
                .next()
                .and_then(|row| row.into_iter().next().flatten())
                .and_then(|p| p.parse::<u64>().ok());
            if current != Some(from) {
                return Err(Failure::Moved);
            }
            for event in &batch {
                projection
                    .apply(conn, event)
                    .await
                    .map_err(|error| Failure::Event {
                        position: event.position,
                        error: error.to_string(),
                    })?;
            }
            let moved = conn
                .execute(
                    "update projection_checkpoints set position = $1, state = 'running', \
                     failed_position = null, error = null, updated_at = $2 \
                     where name = $3 and position = $4",
                    &[
                        Param::Int(last as i64),
                        time::format(chrono::Utc::now()).into(),
                        name.into(),
                        Param::Int(from as i64),
                    ],
                )
                .await?;
            if moved != 1 {
                return Err(Failure::Moved);
            }
            Ok(last)
        })
    })
    .await
}
