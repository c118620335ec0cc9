//! Asynchronous projections: each follows the log through a catch-up subscription from its
//! checkpoint, and commits the read-model changes of a batch of events together with the new
//! checkpoint in one transaction, so every event is applied exactly once.
//!
//! A projection that fails on an event commits the events before it, records the failing
//! position and the error (`state = stopped`), and tries that same event again after a pause:
//! it resumes as soon as the cause is fixed and never skips an event. Several server processes
//! may follow the same projection: each batch takes the projection's lock and goes ahead only if
//! the checkpoint is still where the batch starts, so no event is ever applied twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use countersign_store::{RecordedEvent, StoreError};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use crate::database::Database;
use crate::sql::{Param, Pool, Sql};
use crate::time;

/// Every asynchronous projection the server runs.
pub const ASYNC: &[&dyn AsyncProjection] = &[
    &crate::stats::DailyStats,
    &crate::search::AuditSearch,
    &crate::inbox::DeviceInbox,
];

/// The asynchronous projection called `name`.
pub fn find(name: &str) -> Option<&'static dyn AsyncProjection> {
    ASYNC.iter().copied().find(|p| p.name() == name)
}

/// Events applied per transaction at most.
const BATCH: usize = 500;

/// Which copy of a projection's tables an event is applied to: the live one, or the next
/// generation a rebuild fills beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// The tables that serve reads.
    Live,
    /// `<table>_next`, swapped in when the rebuild has caught up.
    Next,
}

impl Generation {
    /// The name of `table` in this generation.
    pub fn table(self, table: &str) -> String {
        match self {
            Generation::Live => table.to_owned(),
            Generation::Next => format!("{table}_next"),
        }
    }
}

/// How far each asynchronous projection has come in this process, for reads that must see
/// what was committed before them: followers publish every checkpoint they commit or find.
#[derive(Clone, Debug)]
pub struct Progress(Arc<HashMap<&'static str, Followed>>);

/// One projection's position, and whether it is stopped on an event.
#[derive(Debug)]
struct Followed {
    position: watch::Sender<u64>,
    stopped: std::sync::atomic::AtomicBool,
}

impl Default for Progress {
    fn default() -> Self {
        Self(Arc::new(
            ASYNC
                .iter()
                .map(|p| {
                    let followed = Followed {
                        position: watch::Sender::new(0),
                        stopped: false.into(),
                    };
                    (p.name(), followed)
                })
                .collect(),
        ))
    }
}

impl Progress {
    /// Records whether `name` is stopped on an event: reads do not wait for a stopped
    /// projection.
    pub fn set_stopped(&self, name: &str, stopped: bool) {
        if let Some(followed) = self.0.get(name) {
            followed
                .stopped
                .store(stopped, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Records that `name` has applied the log up to `position` (it never moves back).
    pub fn publish(&self, name: &str, position: u64) {
        if let Some(followed) = self.0.get(name) {
            followed.position.send_if_modified(|known| {
                let moved = position > *known;
                if moved {
                    *known = position;
                }
                moved
            });
        }
    }

    /// Follows `name`'s position.
    pub fn watch(&self, name: &str) -> Option<watch::Receiver<u64>> {
        self.0.get(name).map(|f| f.position.subscribe())
    }

    /// Waits until `name` has applied the log up to `position`, at most `limit` (not at all
    /// while it is stopped on an event); whether it got there.
    pub async fn reached(&self, name: &str, position: u64, limit: Duration) -> bool {
        let Some(followed) = self.0.get(name) else {
            return false;
        };
        let mut watch = followed.position.subscribe();
        if followed.stopped.load(std::sync::atomic::Ordering::Relaxed) {
            return *watch.borrow() >= position;
        }
        tokio::time::timeout(limit, watch.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

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
    /// Its tables, the main one (whose rows the listing counts) first. A rebuild fills a copy
    /// of each ([`Generation::Next`]) and swaps them in together.
    fn tables(&self) -> &'static [&'static str];
    /// Applies one event to the tables of `generation`, inside the caller's transaction.
    async fn apply(
        &self,
        conn: &mut dyn Sql,
        generation: Generation,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError>;
}

/// The action request an event belongs to, and the event decoded; `None` for other streams.
pub(crate) fn action_request_event(
    recorded: &RecordedEvent,
) -> Result<Option<(&str, countersign_domain::action_request::Event)>, ApplyError> {
    use countersign_domain::action_request::{Event, STREAM_PREFIX};
    let Some(id) = recorded.stream_id.strip_prefix(STREAM_PREFIX) else {
        return Ok(None);
    };
    let event = Event::from_stored(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.data,
    )
    .map_err(|e| ApplyError::Event(format!("cannot decode {}: {e}", recorded.event_type)))?;
    Ok(Some((id, event)))
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
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// An event could not be applied.
    #[error("the event at position {position} cannot be applied: {error}")]
    Event {
        /// Its position.
        position: u64,
        /// Why.
        error: String,
    },
    /// Another process (or a rebuild) moved the checkpoint first.
    #[error("the checkpoint moved")]
    Moved,
    /// The store or the database failed.
    #[error("{0}")]
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
/// failure, and publishing each checkpoint to `progress`.
pub async fn follow(
    db: Database,
    projection: &'static dyn AsyncProjection,
    progress: Progress,
    mut stopping: watch::Receiver<bool>,
    retry: Duration,
) {
    let name = projection.name();
    // Store failures (a busy database, a lost connection) are retried soon, then less often.
    let mut store_failures = 0u32;
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        let started = tokio::time::Instant::now();
        let pause = match follow_once(&db, projection, &progress, &mut stopping).await {
            Ok(()) => return,
            Err(Failure::Moved) => continue,
            Err(Failure::Event { position, error }) => {
                progress.set_stopped(name, true);
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
                retry
            }
            Err(Failure::Store(error)) => {
                if started.elapsed() > retry {
                    store_failures = 0;
                }
                store_failures += 1;
                let pause = Duration::from_millis(50 << store_failures.min(10)).min(retry);
                tracing::warn!(projection = name, %error, ?pause, "projection paused: the store failed");
                pause
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopping.changed() => return,
        }
    }
}

/// One run: from the checkpoint to the first failure (or the server's stop).
async fn follow_once(
    db: &Database,
    projection: &'static dyn AsyncProjection,
    progress: &Progress,
    stopping: &mut watch::Receiver<bool>,
) -> Result<(), Failure> {
    let pool = db.pool();
    let checkpoint = load_or_create(&pool, projection.name()).await?;
    let mut position = checkpoint.position;
    progress.publish(projection.name(), position);
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
            Ok(last) => {
                position = last;
                progress.set_stopped(projection.name(), false);
                progress.publish(projection.name(), position);
            }
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
                    let last = commit(&pool, projection, position, &before).await?;
                    progress.publish(projection.name(), last);
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
            // One process at a time applies a projection's batch, and the checkpoint must still
            // be where this batch starts.
            lock(conn, name, postgres).await?;
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
                    .apply(conn, Generation::Live, event)
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

/// Takes the projection's lock for the rest of the transaction: on PostgreSQL a transaction
/// lock per projection (SQLite's `BEGIN IMMEDIATE` already serialises writers).
pub(crate) async fn lock(
    conn: &mut dyn Sql,
    name: &str,
    postgres: bool,
) -> Result<(), sqlx::Error> {
    if postgres {
        conn.execute(
            "select pg_advisory_xact_lock(hashtext('countersign-projection:' || $1))",
            &[name.into()],
        )
        .await?;
    }
    Ok(())
}

/// Sets the projection's checkpoint to `position`, running, inside the caller's transaction
/// (a rebuild's switch: the followers find it moved and go on from there).
pub(crate) async fn set_checkpoint(
    conn: &mut dyn Sql,
    name: &str,
    position: u64,
) -> Result<(), sqlx::Error> {
    conn.execute(
        "insert into projection_checkpoints (name, position, state, updated_at) \
         values ($1, $2, 'running', $3) on conflict (name) do update \
         set position = excluded.position, state = 'running', failed_position = null, \
         error = null, updated_at = excluded.updated_at",
        &[
            name.into(),
            Param::Int(position as i64),
            time::format(chrono::Utc::now()).into(),
        ],
    )
    .await?;
    Ok(())
}

/// Applies the log to `projection` from its checkpoint up to the head as it is now, in
/// batches, and returns the position reached: for tools and tests that need a projection
/// caught up without a running server. A failing event is reported, not skipped (nor recorded
/// as a stop).
pub async fn catch_up(
    db: &Database,
    projection: &'static dyn AsyncProjection,
) -> Result<u64, Failure> {
    let pool = db.pool();
    let events = db.events();
    let head = events.head().await?;
    let mut position = load_or_create(&pool, projection.name()).await?.position;
    while position < head {
        let batch = events.read_all(position, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        position = commit(&pool, projection, position, &batch).await?;
    }
    Ok(position)
}
