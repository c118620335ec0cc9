//! Rebuilding a read model from the log, into a new generation of its tables that is swapped in.
//!
//! The new generation (`<table>_next`) is filled from position 0 in pages while the live tables
//! keep serving, the writer keeps appending and asynchronous projections keep following. The
//! last stretch runs under the writer's lock (on PostgreSQL the log's lock, which holds back
//! every instance) and, for an asynchronous projection, its own lock: it applies the events
//! committed meanwhile, drops the old tables, renames the new ones and (asynchronous
//! projections) moves the checkpoint to the new generation's position, in one transaction. No
//! append is missed, no event is applied twice, and readers see either generation, never a mix;
//! the new generation is at least as far along as the one it replaces.

use std::time::Instant;

use async_trait::async_trait;
use countersign_store::{postgres, sqlite, RecordedEvent, StoreError};
use futures::future::BoxFuture;
use sqlx::{PgConnection, SqliteConnection};

use crate::database::Database;
use crate::follow::{self, AsyncProjection, Generation};
use crate::inline::{apply, Tables};
use crate::sql::{Pool, Sql};

/// The inline read models.
pub const INLINE: &[&str] = &["status", "devices"];

/// Every rebuildable read model: the inline ones, then the asynchronous ones.
pub fn names() -> Vec<&'static str> {
    INLINE
        .iter()
        .copied()
        .chain(follow::ASYNC.iter().map(|p| p.name()))
        .collect()
}

/// Events read from the log at a time.
const PAGE: usize = 2_000;

/// The longest one transaction of a rebuild's fill applies events before it commits.
const FILL_SLICE: std::time::Duration = std::time::Duration::from_millis(50);

/// Why a rebuild or a listing failed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// No read model has that name.
    #[error("unknown projection {0:?} (known: {known})", known = names().join(", "))]
    Unknown(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The read model's SQL failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An event could not be applied.
    #[error("{0}")]
    Apply(String),
}

/// A read model's place in the log.
#[derive(Clone, Debug)]
pub struct ProjectionInfo {
    /// Its name.
    pub name: &'static str,
    /// The last position it has applied.
    pub checkpoint: u64,
    /// The log's head.
    pub head: u64,
    /// Rows in its main table (counted by [`list`] only; `None` when it cannot be read).
    pub rows: Option<u64>,
    /// `live` (inline models are always at the head), `running` or `stopped` (asynchronous ones).
    pub state: &'static str,
    /// Where an asynchronous projection stopped, and why.
    pub failure: Option<(u64, String)>,
}

/// What a rebuild did.
#[derive(Clone, Debug)]
pub struct RebuildReport {
    /// Events replayed.
    pub events: u64,
    /// Rows in the new main table.
    pub rows: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What a rebuild fills: the next generation of inline tables, or an asynchronous projection's.
#[derive(Clone, Copy)]
enum Target {
    Inline(Tables),
    Async(&'static dyn AsyncProjection),
}

/// The live tables of a read model and the target a rebuild fills.
fn generation(name: &str) -> Result<(Vec<&'static str>, Target), RebuildError> {
    match name {
        "status" => Ok((
            vec!["action_request_status"],
            Target::Inline(Tables {
                status: Some("action_request_status_next"),
                devices: None,
                outbox: None,
            }),
        )),
        "devices" => Ok((
            vec!["devices"],
            Target::Inline(Tables {
                status: None,
                devices: Some("devices_next"),
                outbox: None,
            }),
        )),
        other => match follow::find(other) {
            Some(projection) => Ok((projection.tables().to_vec(), Target::Async(projection))),
            None => Err(RebuildError::Unknown(other.to_owned())),
        },
    }
}

async fn count(pool: &Pool, table: &str) -> Result<u64, RebuildError> {
    let rows = pool
        .rows(&format!("select cast(count(*) as text) from {table}"), &[])
        .await?;
    Ok(rows
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Every read model with its checkpoint, without counting rows: cheap enough for readiness
/// probes and metrics scrapes.
pub async fn positions(db: &Database) -> Result<Vec<ProjectionInfo>, RebuildError> {
    let head = db.events().head().await?;
    let mut out: Vec<ProjectionInfo> = INLINE
        .iter()
        .map(|name| ProjectionInfo {
            name,
            checkpoint: head,
            head,
            rows: None,
            state: "live",
            failure: None,
        })
        .collect();
    for checkpoint in crate::follow::checkpoints(&db.pool()).await? {
        let Some(projection) = crate::follow::ASYNC
            .iter()
            .find(|p| p.name() == checkpoint.name)
        else {
            continue;
        };
        let stopped = checkpoint.state == "stopped";
        out.push(ProjectionInfo {
            name: projection.name(),
            checkpoint: checkpoint.position,
            head,
            rows: None,
            state: if stopped { "stopped" } else { "running" },
            failure: checkpoint
                .failed_position
                .filter(|_| stopped)
                .map(|p| (p, checkpoint.error.clone().unwrap_or_default())),
        });
    }
    Ok(out)
}

/// Every read model with its checkpoint and the rows of its main table.
pub async fn list(db: &Database) -> Result<Vec<ProjectionInfo>, RebuildError> {
    let mut out = positions(db).await?;
    for info in &mut out {
        let table = generation(info.name)?.0[0];
        // A stopped projection's table may be what is broken: the listing still answers.
        info.rows = count(&db.pool(), table).await.ok();
    }
    Ok(out)
}

/// A connection that can read the log and run read-model SQL, inside the writer's lock.
#[async_trait]
trait LockedConnection: Sql {
    async fn page(&mut self, after: u64) -> Result<Vec<RecordedEvent>, StoreError>;
}

#[async_trait]
impl LockedConnection for SqliteConnection {
    async fn page(&mut self, after: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        sqlite::read_all_on(self, after, PAGE).await
    }
}

#[async_trait]
impl LockedConnection for PgConnection {
    async fn page(&mut self, after: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        postgres::read_all_on(self, after, PAGE).await
    }
}

async fn apply_one(
    conn: &mut dyn Sql,
    target: Target,
    event: &RecordedEvent,
) -> Result<(), RebuildError> {
    let applied = match target {
        Target::Inline(tables) => apply(conn, tables, event).await.map_err(|e| e.to_string()),
        Target::Async(projection) => projection
            .apply(conn, Generation::Next, event)
            .await
            .map_err(|e| e.to_string()),
    };
    applied.map_err(|error| {
        RebuildError::Apply(format!("event at position {}: {error}", event.position))
    })
}

async fn apply_page(
    conn: &mut dyn Sql,
    target: Target,
    events: &[RecordedEvent],
) -> Result<(), RebuildError> {
    for event in events {
        apply_one(conn, target, event).await?;
    }
    Ok(())
}

/// Creates the next generation of `table` (empty), and returns the statements that swap it in.
///
/// The swapped-in table carries the live table's index and constraint names, so that the schema
/// a rebuild leaves is the one the migrations made, and later migrations find what they name.
async fn prepare(db: &Database, table: &str) -> Result<Vec<String>, RebuildError> {
    let pool = db.pool();
    pool.run(&format!("drop table if exists {table}_next"), &[])
        .await?;
    let mut swap = vec![
        format!("drop table {table}"),
        format!("alter table {table}_next rename to {table}"),
    ];
    match db {
        Database::Postgres(_) => {
            // `like … including all` names the copied indexes (and the constraints they back)
            // after the new table; each is renamed back to the live index it copies.
            pool.run(
                &format!("create table {table}_next (like {table} including all)"),
                &[],
            )
            .await?;
            let mut live = pg_indexes(&pool, table).await?;
            for (name, definition) in pg_indexes(&pool, &format!("{table}_next")).await? {
                if let Some(i) = live.iter().position(|(_, d)| *d == definition) {
                    let (original, _) = live.swap_remove(i);
                    swap.push(format!("alter index \"{name}\" rename to \"{original}\""));
                }
            }
        }
        Database::Sqlite(_) => {
            // SQLite has no `create table … like`: the table's own DDL is reused, and its
            // indexes are made again under their names once the new table has the live name.
            let rows = pool
                .rows(
                    "select type, sql from sqlite_master where tbl_name = $1 and sql is not null \
                     order by type desc",
                    &[table.into()],
                )
                .await?;
            for row in rows {
                let mut columns = row.into_iter().flatten();
                let (Some(kind), Some(sql)) = (columns.next(), columns.next()) else {
                    continue;
                };
                let columns = sql.find('(').map(|i| &sql[i..]).unwrap_or("");
                if kind == "table" {
                    pool.run(&format!("create table {table}_next {columns}"), &[])
                        .await?;
                } else {
                    let head = &sql[..sql.find(" on ").unwrap_or(sql.len())];
                    swap.push(format!("{head} on {table} {columns}"));
                }
            }
        }
    }
    Ok(swap)
}

/// A PostgreSQL table's indexes: each one's name, and its definition without name or table
/// (uniqueness, method, columns, predicate), by which a copy is matched to its original.
async fn pg_indexes(pool: &Pool, table: &str) -> Result<Vec<(String, String)>, RebuildError> {
    let rows = pool
        .rows(
            "select indexname, indexdef from pg_indexes \
             where schemaname = current_schema() and tablename = $1",
            &[table.into()],
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let mut columns = row.into_iter().flatten();
            let (name, definition) = (columns.next()?, columns.next()?);
            let unique = definition.starts_with("CREATE UNIQUE");
            let body = definition.split_once(" USING ").map_or("", |(_, b)| b);
            Some((name, format!("{unique} {body}")))
        })
        .collect())
}

/// Rebuilds one read model; `progress(applied, head)` is called after every page.
pub async fn rebuild(
    db: &Database,
    name: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<RebuildReport, RebuildError> {
    let started = Instant::now();
    let (live, target) = generation(name)?;
    let pool = db.pool();
    let mut swap = Vec::new();
    for table in &live {
        swap.extend(prepare(db, table).await?);
    }
    let events = db.events();
    let mut position = 0;
    loop {
        let head = events.head().await?;
        let page = events.read_all(position, PAGE).await?;
        let Some(last) = page.last().map(|e| e.position) else {
            break;
        };
        fill(db, target, &page).await?;
        position = last;
        progress(position, head.max(position));
    }
    let applied = match db {
        Database::Sqlite(store) => {
            store
                .with_write_lock(move |conn| catch_up_and_swap(conn, false, target, swap, position))
                .await??
        }
        Database::Postgres(store) => {
            store
                .with_write_lock(move |conn| catch_up_and_swap(conn, true, target, swap, position))
                .await??
        }
    };
    progress(applied, applied);
    Ok(RebuildReport {
        events: applied,
        rows: count(&pool, live[0]).await?,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Applies one page to the new tables, in transactions that each hold the write lock for at most
/// [`FILL_SLICE`]: on SQLite the writer and the asynchronous projections wait for that lock, so
/// commands and reads go on at their pace while a rebuild fills its tables.
async fn fill(db: &Database, target: Target, page: &[RecordedEvent]) -> Result<(), RebuildError> {
    async fn run(
        conn: &mut dyn Sql,
        begin: &str,
        target: Target,
        mut rest: &[RecordedEvent],
    ) -> Result<(), RebuildError> {
        while !rest.is_empty() {
            conn.execute(begin, &[]).await?;
            let started = Instant::now();
            let mut applied = 0;
            let mut outcome = Ok(());
            for event in rest {
                if let Err(e) = apply_one(conn, target, event).await {
                    outcome = Err(e);
                    break;
                }
                applied += 1;
                if started.elapsed() >= FILL_SLICE {
                    break;
                }
            }
            if let Err(e) = outcome {
                conn.execute("rollback", &[]).await?;
                return Err(e);
            }
            conn.execute("commit", &[]).await?;
            rest = &rest[applied..];
        }
        Ok(())
    }
    match db {
        // `begin immediate`: take SQLite's write lock up front, so the transaction never has
        // to upgrade a read snapshot that the writer has moved past.
        Database::Sqlite(store) => {
            let mut conn = store.pool().acquire().await?;
            run(&mut *conn, "begin immediate", target, page).await
        }
        Database::Postgres(store) => {
            let mut conn = store.pool().acquire().await?;
            run(&mut *conn, "begin", target, page).await
        }
    }
}

/// Under the writer's lock: applies what committed since `position`, then swaps the tables
/// (and, for an asynchronous projection, under its lock, moves its checkpoint there).
fn catch_up_and_swap<C: LockedConnection>(
    conn: &mut C,
    postgres: bool,
    target: Target,
    swap: Vec<String>,
    mut position: u64,
) -> BoxFuture<'_, Result<Result<u64, RebuildError>, sqlx::Error>> {
    Box::pin(async move {
        if let Target::Async(projection) = target {
            // Wait for the batch a follower may be applying to the live tables, and keep the
            // followers out until the switch commits.
            follow::lock(conn, projection.name(), postgres).await?;
        }
        loop {
            let page = match conn.page(position).await {
                Ok(page) => page,
                Err(e) => return Ok(Err(e.into())),
            };
            let Some(last) = page.last().map(|e| e.position) else {
                break;
            };
            if let Err(e) = apply_page(conn, target, &page).await {
                return Ok(Err(e));
            }
            position = last;
        }
        for statement in &swap {
            conn.execute(statement, &[]).await?;
        }
        if let Target::Async(projection) = target {
            follow::set_checkpoint(conn, projection.name(), position).await?;
        }
        Ok(Ok(position))
    })
}
