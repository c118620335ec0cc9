//! The database a server runs on, chosen by its URL, with the inline read models attached.

use std::sync::Arc;

use countersign_store::postgres::PostgresStore;
use countersign_store::sqlite::{SqliteOptions, SqliteStore};
use countersign_store::{EventStore, StoreError, WriterStats};

use crate::inline::InlineProjections;
use crate::sql::Pool;

/// One of the supported backends, opened and migrated.
#[derive(Clone, Debug)]
pub enum Database {
    /// `sqlite://PATH`: embedded, one process.
    Sqlite(SqliteStore),
    /// `postgres://…`: several processes may share it.
    Postgres(PostgresStore),
}

impl Database {
    /// Opens the database at `url` (creating a SQLite file if missing) and applies migrations.
    /// `durable` selects SQLite's `synchronous=FULL`; PostgreSQL commits are always durable.
    pub async fn open(url: &str, durable: bool) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let store = PostgresStore::open(url, Arc::new(InlineProjections)).await?;
            Ok(Database::Postgres(store))
        } else if url.starts_with("sqlite:") {
            let options = SqliteOptions {
                synchronous_full: durable,
            };
            let store = SqliteStore::open(url, options, Arc::new(InlineProjections)).await?;
            Ok(Database::Sqlite(store))
        } else {
            Err(StoreError::Unavailable(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://HOST/DB"
            )))
        }
    }

    /// The event log.
    pub fn events(&self) -> Arc<dyn EventStore> {
        match self {
            Database::Sqlite(store) => Arc::new(store.clone()),
            Database::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// The pool read models are read through.
    pub fn pool(&self) -> Pool {
        match self {
            Database::Sqlite(store) => Pool::Sqlite(store.pool().clone()),
            Database::Postgres(store) => Pool::Postgres(store.pool().clone()),
        }
    }

    /// What the writer has committed since the database was opened.
    pub fn stats(&self) -> WriterStats {
        match self {
            Database::Sqlite(store) => store.stats(),
            Database::Postgres(store) => store.stats(),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }
}
