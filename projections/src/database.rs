//! The database a server runs on, chosen by its URL, with the inline read models attached.

use std::sync::Arc;

use countersign_store::audit::AuditLog;
use countersign_store::postgres::PostgresStore;
use countersign_store::sqlite::{SqliteOptions, SqliteStore};
use countersign_store::{CommitObserver, EventStore, StoreError, WriterStats};

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
        if is_postgres(url) {
            let store = PostgresStore::open(url, Arc::new(InlineProjections)).await?;
            Ok(Database::Postgres(store))
        } else if url.starts_with("sqlite:") {
            let options = SqliteOptions {
                synchronous_full: durable,
            };
            let store = SqliteStore::open(url, options, Arc::new(InlineProjections)).await?;
            Ok(Database::Sqlite(store))
        } else {
            Err(unsupported(url))
        }
    }

    /// The event log.
    pub fn events(&self) -> Arc<dyn EventStore> {
        match self {
            Database::Sqlite(store) => Arc::new(store.clone()),
            Database::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// The log's tamper-evident side, for auditors.
    pub fn audit(&self) -> Arc<dyn AuditLog> {
        match self {
            Database::Sqlite(store) => Arc::new(store.audit()),
            Database::Postgres(store) => Arc::new(store.audit()),
        }
    }

    /// Opens only the audit's reads of the log at `url`, with no writer: it works on a log
    /// whose end is damaged, and writes nothing but pending migrations.
    pub async fn open_audit(url: &str) -> Result<Arc<dyn AuditLog>, StoreError> {
        if is_postgres(url) {
            Ok(Arc::new(PostgresStore::open_audit(url).await?))
        } else if url.starts_with("sqlite:") {
            Ok(Arc::new(SqliteStore::open_audit(url).await?))
        } else {
            Err(unsupported(url))
        }
    }

    /// The pool read models are read through.
    pub fn pool(&self) -> Pool {
        match self {
            Database::Sqlite(store) => Pool::Sqlite(store.pool().clone()),
            Database::Postgres(store) => Pool::Postgres(store.pool().clone()),
        }
    }

    /// Tells `observer` of every batch this process commits.
    pub fn observe_commits(&self, observer: Arc<dyn CommitObserver>) {
        match self {
            Database::Sqlite(store) => store.observe_commits(observer),
            Database::Postgres(store) => store.observe_commits(observer),
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

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn unsupported(url: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "unsupported database URL {url:?}: use sqlite://PATH or postgres://HOST/DB"
    ))
}
