//! The log's lock: one transaction-scoped PostgreSQL advisory lock that every append batch and
//! every exclusive job of every process takes first and holds until it commits, so positions
//! are assigned and committed in one global order across processes.
//!
//! Exclusive jobs (projection rebuilds catching up and swapping tables) travel through the
//! writer's queue like appends and run in a transaction of their own under the same lock.

use futures::future::BoxFuture;
use sqlx::{Connection, PgConnection};

use crate::error::StoreError;
use crate::group_commit::Reply;

/// The advisory lock key: the ASCII bytes of "csevents".
pub(crate) const LOG_LOCK_KEY: i64 = 0x6373_6576_656e_7473;

/// How every writing transaction starts. The lock must be taken before the statement that
/// reads the last position, and read committed gives each statement a snapshot of its own,
/// so that read sees everything committed by the previous holder of the lock.
pub(crate) const BEGIN: &str = "begin isolation level read committed";

/// Work that runs alone on the writer connection, between two batches; it gets the error
/// instead when the writer cannot connect.
pub(crate) type ExclusiveJob =
    Box<dyn for<'c> FnOnce(Result<&'c mut PgConnection, StoreError>) -> BoxFuture<'c, ()> + Send>;

/// Waits for the log's lock; it is released when the surrounding transaction ends.
pub(crate) async fn lock_log(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(LOG_LOCK_KEY)
        .execute(conn)
        .await?;
    Ok(())
}

/// Wraps `f` as a job that runs it in one transaction holding the log's lock and sends the
/// result to `reply` (rolling back when `f` fails).
pub(crate) fn exclusive_job<T, F>(f: F, reply: Reply<T>) -> ExclusiveJob
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
        + Send
        + 'static,
{
    erase(move |conn| {
        Box::pin(async move {
            let result = match conn {
                Ok(conn) => run_exclusive(conn, f).await,
                Err(error) => Err(error),
            };
            let _ = reply.send(result);
        })
    })
}

/// Fixes the closure's signature to the higher-ranked one [`ExclusiveJob`] needs.
fn erase<J>(job: J) -> ExclusiveJob
where
    J: for<'c> FnOnce(Result<&'c mut PgConnection, StoreError>) -> BoxFuture<'c, ()>
        + Send
        + 'static,
{
    Box::new(job)
}

async fn run_exclusive<T, F>(conn: &mut PgConnection, f: F) -> Result<T, StoreError>
where
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
{
    let mut tx = conn.begin_with(BEGIN).await?;
    lock_log(&mut tx).await?;
    match f(&mut tx).await {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::error!(error = %rollback, "rolling back a locked write failed");
            }
            Err(error.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_spells_its_purpose() {
        assert_eq!(&LOG_LOCK_KEY.to_be_bytes(), b"csevents");
    }
}
