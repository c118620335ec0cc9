//! Rebuilding the inline read models from the log, into fresh tables that are swapped in.
//!
//! The new generation is filled from position 0 in pages while the live tables keep serving and
//! the writer keeps appending. The last stretch runs under the writer's lock: it applies the
//! events committed meanwhile, drops the old tables and renames the new ones, in one
//! transaction, so no append is missed and readers see either generation, never a mix.

use std::time::Instant;

use countersign_store::sqlite::{read_all_on, SqliteStore};
use countersign_store::{EventStore, StoreError};
use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};

use crate::inline::{apply, Tables};

/// The rebuildable read models.
pub const NAMES: &[&str] = &["status", "devices"];

/// Events applied per transaction while catching up.
const PAGE: usize = 2_000;

/// Why a rebuild or a listing failed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// No read model has that name.
    #[error("unknown projection {0:?} (known: {known})", known = NAMES.join(", "))]
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
    /// Rows in its main table.
    pub rows: u64,
    /// `live` (inline models are always at the head).
    pub state: &'static str,
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

/// The live tables of a read model and the generation a rebuild fills.
fn generation(name: &str) -> Result<(Vec<&'static str>, Tables), RebuildError> {
    match name {
        "status" => Ok((
            vec!["action_request_status", "action_request_devices"],
            Tables {
                status: Some("action_request_status_next"),
                links: Some("action_request_devices_next"),
                devices: None,
            },
        )),
        "devices" => Ok((
            vec!["devices"],
            Tables {
                status: None,
                links: None,
                devices: Some("devices_next"),
            },
        )),
        other => Err(RebuildError::Unknown(other.to_owned())),
    }
}

/// Every read model with its checkpoint and size.
pub async fn list(store: &SqliteStore) -> Result<Vec<ProjectionInfo>, RebuildError> {
    let head = store.head().await?;
    let mut out = Vec::new();
    for name in NAMES {
        let (live, _) = generation(name)?;
        let (rows,): (i64,) = sqlx::query_as(&format!("select count(*) from {}", live[0]))
            .fetch_one(store.pool())
            .await?;
        out.push(ProjectionInfo {
            name,
            checkpoint: head,
            head,
            rows: rows as u64,
            state: "live",
        });
    }
    Ok(out)
}

/// The DDL of a live table and its indexes, rewritten for its next generation.
struct Ddl {
    table: String,
    next_table: String,
    indexes: Vec<(String, String)>,
}

async fn ddl(conn: &mut SqliteConnection, table: &str) -> Result<Ddl, RebuildError> {
    let (sql,): (String,) =
        sqlx::query_as("select sql from sqlite_master where type = 'table' and name = ?")
            .bind(table)
            .fetch_one(&mut *conn)
            .await?;
    let body = &sql[sql
        .find('(')
        .ok_or_else(|| RebuildError::Apply(sql.clone()))?..];
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "select name, sql from sqlite_master where type = 'index' and tbl_name = ? and sql is not null",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Ddl {
        table: table.to_owned(),
        next_table: format!("create table {table}_next {body}"),
        indexes,
    })
}

/// `create [unique] index NAME on TABLE (cols)` for another name and table.
fn index_sql(sql: &str, name: &str, table: &str) -> String {
    let unique = if sql.to_ascii_lowercase().starts_with("create unique") {
        "unique "
    } else {
        ""
    };
    let columns = sql.find('(').map(|i| &sql[i..]).unwrap_or("");
    format!("create {unique}index {name} on {table} {columns}")
}

async fn begin_immediate(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("begin immediate").execute(&mut *conn).await?;
    Ok(())
}

async fn apply_page(
    conn: &mut SqliteConnection,
    tables: Tables,
    events: &[countersign_store::RecordedEvent],
) -> Result<(), RebuildError> {
    for event in events {
        apply(conn, tables, event)
            .await
            .map_err(|e| RebuildError::Apply(e.to_string()))?;
    }
    Ok(())
}

/// Rebuilds one read model; `progress(applied, head)` is called after every page.
pub async fn rebuild(
    store: &SqliteStore,
    name: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<RebuildReport, RebuildError> {
    let started = Instant::now();
    let (live, tables) = generation(name)?;
    let mut conn = store.pool().acquire().await?;
    let mut ddls = Vec::new();
    for table in &live {
        let ddl = ddl(&mut conn, table).await?;
        sqlx::query(&format!("drop table if exists {table}_next"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&ddl.next_table).execute(&mut *conn).await?;
        ddls.push(ddl);
    }
    let mut position = 0;
    loop {
        let head = store.head().await?;
        let page = store.read_all(position, PAGE).await?;
        let Some(last) = page.last() else { break };
        let last = last.position;
        begin_immediate(&mut conn).await?;
        if let Err(e) = apply_page(&mut conn, tables, &page).await {
            sqlx::query("rollback").execute(&mut *conn).await?;
            return Err(e);
        }
        sqlx::query("commit").execute(&mut *conn).await?;
        position = last;
        progress(position, head.max(position));
    }
    drop(conn);
    let applied = store
        .with_write_lock(move |conn| swap(conn, tables, ddls, position))
        .await??;
    let (rows,): (i64,) = sqlx::query_as(&format!("select count(*) from {}", live[0]))
        .fetch_one(store.pool())
        .await?;
    progress(applied, applied);
    Ok(RebuildReport {
        events: applied,
        rows: rows as u64,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Under the writer's lock: applies what committed since `position`, then swaps the tables.
fn swap(
    conn: &mut SqliteConnection,
    tables: Tables,
    ddls: Vec<Ddl>,
    mut position: u64,
) -> BoxFuture<'_, Result<Result<u64, RebuildError>, sqlx::Error>> {
    Box::pin(async move {
        loop {
            let page = match read_all_on(&mut *conn, position, PAGE).await {
                Ok(page) => page,
                Err(e) => return Ok(Err(e.into())),
            };
            let Some(last) = page.last() else { break };
            position = last.position;
            let mut savepoint = conn.begin().await?;
            if let Err(e) = apply_page(&mut savepoint, tables, &page).await {
                return Ok(Err(e));
            }
            savepoint.commit().await?;
        }
        for ddl in &ddls {
            let table = &ddl.table;
            sqlx::query(&format!("drop table {table}"))
                .execute(&mut *conn)
                .await?;
            sqlx::query(&format!("alter table {table}_next rename to {table}"))
                .execute(&mut *conn)
                .await?;
            for (index, sql) in &ddl.indexes {
                sqlx::query(&index_sql(sql, index, table))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(Ok(position))
    })
}
