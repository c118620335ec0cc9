//! What the store's integration tests share: a fresh store of each backend, a PostgreSQL
//! database of its own for every test, and ready-made events.
//!
//! PostgreSQL tests need `COUNTERSIGN_TEST_POSTGRES_URL` (a server URL whose user may create
//! databases). Without it they say so and pass, unless `COUNTERSIGN_REQUIRE_POSTGRES=1`, which
//! makes them fail instead, so that a CI job meant to cover PostgreSQL cannot skip silently.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use countersign_store::audit::AuditLog;
use countersign_store::{
    Actor, EventStore, Metadata, NewEvent, NoInlineProjection, PostgresStore, SqliteOptions,
    SqliteStore,
};
use serde_json::json;
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

pub use countersign_testing::TestDatabase;

/// A way to run SQL behind the store's back, to try to tamper with the log.
pub enum RawSql {
    /// Through the SQLite store's pool.
    Sqlite(SqlitePool),
    /// Through the PostgreSQL store's pool.
    Postgres(PgPool),
}

impl RawSql {
    /// Runs `sql`; the database's error message when it fails.
    pub async fn execute(&self, sql: &str) -> Result<u64, String> {
        let done = match self {
            Self::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Self::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        };
        done.map_err(|error| error.to_string())
    }

    /// Runs `statements` in one transaction with the append-only triggers of `events` and
    /// `merkle_nodes` out of the way, as someone with full access to the database could, and
    /// puts the triggers back before committing. PostgreSQL disables them for the transaction;
    /// SQLite (where no pragma switches triggers off) drops them and creates them again from
    /// their stored SQL.
    pub async fn bypassing_triggers(&self, statements: &[String]) -> Result<(), String> {
        let text = |error: sqlx::Error| error.to_string();
        match self {
            Self::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(text)?;
                let triggers: Vec<(String, String)> = sqlx::query_as(
                    "select name, sql from sqlite_master \
                     where type = 'trigger' and tbl_name in ('events', 'merkle_nodes')",
                )
                .fetch_all(&mut *tx)
                .await
                .map_err(text)?;
                assert!(triggers.len() >= 4, "the append-only triggers exist");
                for (name, _) in &triggers {
                    sqlx::query(&format!("drop trigger {name}"))
                        .execute(&mut *tx)
                        .await
                        .map_err(text)?;
                }
                for sql in statements {
                    sqlx::query(sql).execute(&mut *tx).await.map_err(text)?;
                }
                for (_, sql) in &triggers {
                    sqlx::query(sql).execute(&mut *tx).await.map_err(text)?;
                }
                tx.commit().await.map_err(text)
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(text)?;
                for table in ["events", "merkle_nodes"] {
                    sqlx::query(&format!("alter table {table} disable trigger user"))
                        .execute(&mut *tx)
                        .await
                        .map_err(text)?;
                }
                for sql in statements {
                    sqlx::query(sql).execute(&mut *tx).await.map_err(text)?;
                }
                for table in ["events", "merkle_nodes"] {
                    sqlx::query(&format!("alter table {table} enable trigger user"))
                        .execute(&mut *tx)
                        .await
                        .map_err(text)?;
                }
                tx.commit().await.map_err(text)
            }
        }
    }

    /// `bytes` as a literal of this database's binary type.
    pub fn bytes_literal(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match self {
            Self::Sqlite(_) => format!("x'{hex}'"),
            Self::Postgres(_) => format!("decode('{hex}', 'hex')"),
        }
    }

    /// Closes the pool (waiting a little for its connections to come back).
    async fn close(&self) {
        let closing = async {
            match self {
                Self::Sqlite(pool) => pool.close().await,
                Self::Postgres(pool) => pool.close().await,
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
    }
}

/// Where a backend's database is, to open it again or beside the store under test.
#[derive(Debug, Clone)]
pub enum Site {
    /// A SQLite file, by URL.
    Sqlite(String),
    /// A PostgreSQL database, by URL.
    Postgres(String),
}

impl Site {
    /// Opens the store on this database the way the server does, with SQL and the audit's
    /// reads through its pool.
    pub async fn open(&self) -> (Arc<dyn EventStore>, RawSql, Arc<dyn AuditLog>) {
        match self {
            Self::Sqlite(url) => {
                let store =
                    SqliteStore::open(url, SqliteOptions::default(), Arc::new(NoInlineProjection))
                        .await
                        .expect("the SQLite store opens");
                let audit: Arc<dyn AuditLog> = Arc::new(store.audit());
                (
                    Arc::new(store.clone()),
                    RawSql::Sqlite(store.pool().clone()),
                    audit,
                )
            }
            Self::Postgres(url) => {
                let store = PostgresStore::open(url, Arc::new(NoInlineProjection))
                    .await
                    .expect("the PostgreSQL store opens");
                let audit: Arc<dyn AuditLog> = Arc::new(store.audit());
                (
                    Arc::new(store.clone()),
                    RawSql::Postgres(store.pool().clone()),
                    audit,
                )
            }
        }
    }

    /// A reader of this database for the audit alone, without a writer, as the command
    /// line's `audit verify` opens it.
    pub async fn open_audit(&self) -> Arc<dyn AuditLog> {
        match self {
            Self::Sqlite(url) => Arc::new(
                SqliteStore::open_audit(url)
                    .await
                    .expect("the SQLite log opens for the audit"),
            ),
            Self::Postgres(url) => Arc::new(
                PostgresStore::open_audit(url)
                    .await
                    .expect("the PostgreSQL log opens for the audit"),
            ),
        }
    }

    /// A fresh store of the same backend on a database of its own.
    pub async fn fresh(&self) -> Backend {
        let fresh = match self {
            Self::Sqlite(_) => sqlite().await,
            Self::Postgres(_) => postgres().await,
        };
        fresh.expect("a backend that ran once runs again")
    }
}

/// A fresh store of one backend, with what keeps its database alive.
pub struct Backend {
    /// The store under test.
    pub store: Arc<dyn EventStore>,
    raw: RawSql,
    audit: Arc<dyn AuditLog>,
    site: Site,
    _database: Box<dyn Send>,
}

impl Backend {
    /// Opens a store on `site`, kept alive by `database`.
    async fn open(site: Site, database: Box<dyn Send>) -> Self {
        let (store, raw, audit) = site.open().await;
        Self {
            store,
            raw,
            audit,
            site,
            _database: database,
        }
    }

    /// The store under test.
    pub fn store(&self) -> &dyn EventStore {
        self.store.as_ref()
    }

    /// SQL behind the store's back.
    pub fn raw(&self) -> &RawSql {
        &self.raw
    }

    /// The audit's reads of the same database, through the store's pool.
    pub fn audit(&self) -> Arc<dyn AuditLog> {
        Arc::clone(&self.audit)
    }

    /// Where the database is.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// Closes the store (its writer stops once the last handle is gone) and opens the same
    /// database again, as a restarted server would.
    pub async fn reopen(self) -> Self {
        let Self {
            store,
            raw,
            audit,
            site,
            _database: database,
        } = self;
        assert_eq!(
            Arc::strong_count(&store),
            1,
            "nothing else holds the store being closed"
        );
        drop((store, audit));
        raw.close().await;
        Self::open(site, database).await
    }
}

/// A SQLite store on a new temporary file.
pub async fn sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    Some(Backend::open(Site::Sqlite(url), Box::new(dir)).await)
}

/// A PostgreSQL store on a new database, or `None` when PostgreSQL tests are skipped.
pub async fn postgres() -> Option<Backend> {
    let database = TestDatabase::for_test().await?;
    let site = Site::Postgres(database.url.clone());
    Some(Backend::open(site, Box::new(database)).await)
}

/// A new event of type `event_type` with a fresh id.
pub fn event(event_type: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        data: json!({ "kind": event_type, "amount": "234.00", "payee": { "iban": "DE02" } }),
        metadata: Metadata::from_actor(Actor::system()),
    }
}
