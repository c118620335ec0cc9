//! The SQLite writer: it owns the one writing connection and writes each batch the group-commit
//! loop hands it as one `BEGIN IMMEDIATE` transaction, so positions are assigned, and
//! committed, strictly in order.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};

use super::append::append_one;
use super::inline::SqliteInlineProjection;
use crate::append::{recorded_now, AppendRequest};
use crate::group_commit::{BatchResult, BatchWriter};
use crate::links::Links;

/// Work that runs alone on the writer connection, between two batches.
pub(crate) type ExclusiveJob =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, ()> + Send>;

/// The writer's state; the group-commit loop drives it.
pub(crate) struct Writer {
    pub(crate) conn: SqliteConnection,
    pub(crate) inline: Arc<dyn SqliteInlineProjection>,
    /// The links of the log's end; the next event gets position `links.size() + 1`.
    pub(crate) links: Links,
    /// The latest `recorded_at` written, so recorded times never go backwards.
    pub(crate) last_recorded: DateTime<Utc>,
}

impl BatchWriter for Writer {
    type Job = ExclusiveJob;

    async fn write_batch(&mut self, requests: Vec<AppendRequest>) -> BatchResult {
        let start_links = self.links.clone();
        let start_recorded = self.last_recorded;
        let written = self.try_write_batch(requests).await;
        if written.is_err() {
            self.links = start_links;
            self.last_recorded = start_recorded;
        }
        written
    }

    async fn run_job(&mut self, job: ExclusiveJob) {
        job(&mut self.conn).await;
    }

    async fn close(self) {
        if let Err(error) = self.conn.close().await {
            tracing::warn!(%error, "closing the writer connection failed");
        }
    }
}

impl Writer {
    /// Runs every append of the batch in its own savepoint inside one transaction.
    async fn try_write_batch(&mut self, requests: Vec<AppendRequest>) -> BatchResult {
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            let now = recorded_now().max(self.last_recorded);
            let mut savepoint = tx.begin().await?;
            let mut links = self.links.clone();
            let attempt = append_one(
                &mut savepoint,
                self.inline.as_ref(),
                request,
                &mut links,
                now,
            )
            .await;
            match attempt {
                Ok(outcome) => {
                    savepoint.commit().await?;
                    self.links = links;
                    self.last_recorded = now;
                    results.push(Ok(outcome));
                }
                Err(error) => {
                    savepoint.rollback().await?;
                    results.push(Err(error));
                }
            }
        }
        tx.commit().await?;
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::future::{join_all, BoxFuture};
    use sqlx::SqliteConnection;
    use tokio::sync::oneshot;

    use crate::sqlite::test_support::{event, temp_store, temp_store_with};
    use crate::sqlite::{InlineError, SqliteInlineProjection};
    use crate::{EventStore, ExpectedVersion, RecordedEvent, StoreError};

    /// Records every stream it sees, then refuses streams whose name starts with `reject`.
    struct RejectSome;

    impl SqliteInlineProjection for RejectSome {
        fn apply<'c>(
            &'c self,
            conn: &'c mut SqliteConnection,
            events: &'c [RecordedEvent],
        ) -> BoxFuture<'c, Result<(), InlineError>> {
            Box::pin(async move {
                for event in events {
                    sqlx::query("insert into inline_seen (stream_id) values (?)")
                        .bind(&event.stream_id)
                        .execute(&mut *conn)
                        .await?;
                }
                if events[0].stream_id.starts_with("reject") {
                    return Err(InlineError::Rejected("key already taken".into()));
                }
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn concurrent_appends_share_commits() {
        let (_dir, store) = temp_store().await;
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .append(
                            &format!("s-{i}"),
                            ExpectedVersion::NoStream,
                            vec![event("A")],
                        )
                        .await
                })
            })
            .collect();
        for task in join_all(tasks).await {
            task.unwrap().unwrap();
        }
        let stats = store.stats();
        assert_eq!((stats.appends, stats.events), (200, 200));
        assert!(stats.batches < 200, "{} batches", stats.batches);
        assert_eq!(store.head().await.unwrap(), 200);
        let positions: Vec<u64> = store
            .read_all(0, 500)
            .await
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(positions, (1..=200).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_rejected_inline_projection_rolls_back_only_its_own_append_in_a_batch() {
        let (_dir, store) = temp_store_with(Arc::new(RejectSome)).await;
        sqlx::query("create table inline_seen (stream_id text not null)")
            .execute(store.pool())
            .await
            .unwrap();

        // Hold the writer so that all the appends below queue up and form one batch.
        let (open, opened) = oneshot::channel::<()>();
        let mut gate = Box::pin(store.with_write_lock(move |_conn| {
            Box::pin(async move {
                let _ = opened.await;
                Ok(())
            })
        }));
        assert!(futures::poll!(gate.as_mut()).is_pending());
        let names = ["ok-1", "reject-1", "ok-2", "reject-2", "ok-3"];
        let mut appends: Vec<_> = names
            .iter()
            .map(|name| store.append(name, ExpectedVersion::NoStream, vec![event("A")]))
            .collect();
        for append in &mut appends {
            assert!(futures::poll!(append.as_mut()).is_pending());
        }
        let before = store.stats();
        open.send(()).unwrap();
        gate.await.unwrap();
        let results = join_all(appends).await;

        assert_eq!(store.stats().batches - before.batches, 1);
        for (name, result) in names.iter().zip(&results) {
            match result {
                Ok(_) => assert!(name.starts_with("ok")),
                Err(StoreError::Rejected(reason)) => {
                    assert!(name.starts_with("reject"));
                    assert_eq!(reason, "key already taken");
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        let stored: Vec<String> = store
            .read_all(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.stream_id)
            .collect();
        assert_eq!(stored, vec!["ok-1", "ok-2", "ok-3"]);
        let seen: Vec<String> = sqlx::query_scalar("select stream_id from inline_seen")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(seen, stored);
    }
}
