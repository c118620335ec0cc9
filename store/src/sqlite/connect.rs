//! How connections to the SQLite file are configured: WAL journal, the chosen synchronous
//! mode, foreign keys and a busy timeout, for the read pool and the writer alike.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::StoreError;

/// How many connections the read pool keeps.
const READ_CONNECTIONS: u32 = 8;
/// How long a connection waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How the SQLite database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// `synchronous=FULL` (durable at every commit) when true, `NORMAL` (durable at checkpoints
    /// in WAL mode, faster) when false.
    pub synchronous_full: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous_full: true,
        }
    }
}

/// The connection settings for `url` (the file is created when missing).
pub(crate) fn connect_options(
    url: &str,
    options: SqliteOptions,
) -> Result<SqliteConnectOptions, StoreError> {
    let synchronous = if options.synchronous_full {
        SqliteSynchronous::Full
    } else {
        SqliteSynchronous::Normal
    };
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT))
}

/// The pool behind reads and read models.
pub(crate) async fn read_pool(connect: &SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    Ok(SqlitePoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        .connect_with(connect.clone())
        .await?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sqlite::test_support::url_in;
    use crate::sqlite::{NoInlineProjection, SqliteStore};

    #[tokio::test]
    async fn connections_use_wal_foreign_keys_and_the_chosen_synchronous_mode() {
        for (synchronous_full, expected) in [(true, 2), (false, 1)] {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(
                &url_in(&dir),
                SqliteOptions { synchronous_full },
                Arc::new(NoInlineProjection),
            )
            .await
            .unwrap();
            let mut conn = store.pool().acquire().await.unwrap();
            let mode: String = sqlx::query_scalar("pragma journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            let foreign_keys: i64 = sqlx::query_scalar("pragma foreign_keys")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            let synchronous: i64 = sqlx::query_scalar("pragma synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(
                (mode.as_str(), foreign_keys, synchronous),
                ("wal", 1, expected)
            );
        }
    }
}
