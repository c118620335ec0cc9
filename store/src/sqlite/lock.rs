//! Work that must not interleave with appends (projection rebuilds catching up and swapping
//! tables): it travels through the writer's queue and runs alone on the writer connection,
//! inside one `BEGIN IMMEDIATE … COMMIT` transaction, between two batches.

use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};

use super::writer::ExclusiveJob;
use crate::error::StoreError;
use crate::group_commit::Reply;

/// Wraps `f` as a job that runs it in one `BEGIN IMMEDIATE … COMMIT` transaction and sends
/// the result to `reply` (rolling back when `f` fails).
pub(crate) fn exclusive_job<T, F>(f: F, reply: Reply<T>) -> ExclusiveJob
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
        + Send
        + 'static,
{
    erase(move |conn| {
        Box::pin(async move {
            let _ = reply.send(run_exclusive(conn, f).await);
        })
    })
}

/// Fixes the closure's signature to the higher-ranked one [`ExclusiveJob`] needs.
fn erase<J>(job: J) -> ExclusiveJob
where
    J: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, ()> + Send + 'static,
{
    Box::new(job)
}

async fn run_exclusive<T, F>(conn: &mut SqliteConnection, f: F) -> Result<T, StoreError>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
{
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
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
    use crate::sqlite::test_support::{event, temp_store};
    use crate::{EventStore, ExpectedVersion, StoreError};

    #[tokio::test]
    async fn a_write_lock_commits_on_success_and_rolls_back_on_failure() {
        let (_dir, store) = temp_store().await;
        store
            .with_write_lock(|conn| {
                Box::pin(async move {
                    sqlx::query("create table swap (n integer)")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("insert into swap values (1)")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        let failed = store
            .with_write_lock(|conn| {
                Box::pin(async move {
                    sqlx::query("insert into swap values (2)")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("insert into no_such_table values (3)")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await;
        assert!(matches!(failed, Err(StoreError::Database(_))));
        let rows: Vec<i64> = sqlx::query_scalar("select n from swap")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(rows, vec![1]);
        store
            .append("after", ExpectedVersion::NoStream, vec![event("A")])
            .await
            .unwrap();
    }
}
