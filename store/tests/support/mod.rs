//! What the store's integration tests share: a fresh store of each backend, a PostgreSQL
//! database of its own for every test, and ready-made events.
//!
//! PostgreSQL tests need `COUNTERSIGN_TEST_POSTGRES_URL` (a server URL whose user may create
//! databases). Without it they say so and pass, unless `COUNTERSIGN_REQUIRE_POSTGRES=1`, which
//! makes them fail instead, so that a CI job meant to cover PostgreSQL cannot skip silently.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::sync::Arc;

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
}

/// A fresh store of one backend, with what keeps its database alive.
pub struct Backend {
    /// The store under test.
    pub store: Arc<dyn EventStore>,
    raw: RawSql,
    _database: Box<dyn Send>,
}

impl Backend {
    /// The store under test.
    pub fn store(&self) -> &dyn EventStore {
        self.store.as_ref()
    }

    /// SQL behind the store's back.
    pub fn raw(&self) -> &RawSql {
        &self.raw
    }
}

/// A SQLite store on a new temporary file.
pub async fn sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let store = SqliteStore::open(&url, SqliteOptions::default(), Arc::new(NoInlineProjection))
        .await
        .expect("the SQLite store opens");
    Some(Backend {
        raw: RawSql::Sqlite(store.pool().clone()),
        store: Arc::new(store),
        _database: Box::new(dir),
    })
}

/// A PostgreSQL store on a new database, or `None` when PostgreSQL tests are skipped.
pub async fn postgres() -> Option<Backend> {
    let database = TestDatabase::for_test().await?;
    let store = PostgresStore::open(&database.url, Arc::new(NoInlineProjection))
        .await
        .expect("the PostgreSQL store opens");
    Some(Backend {
        raw: RawSql::Postgres(store.pool().clone()),
        store: Arc::new(store),
        _database: Box::new(database),
    })
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
