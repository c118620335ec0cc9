//! The PostgreSQL writer's batches and write locks: an inline projection's refusal stays inside
//! its own append, and a write lock excludes the appends of every process until it ends.

use std::sync::Arc;
use std::time::Duration;

use countersign_store::postgres::{InlineError, PgInlineProjection};
use countersign_store::{EventStore, ExpectedVersion, PostgresStore, RecordedEvent, StoreError};
use futures::future::{join_all, BoxFuture};
use sqlx::PgConnection;
use tokio::sync::oneshot;

use crate::open;
use crate::support::{event, TestDatabase};

/// Records every stream it sees, then refuses streams whose name starts with `reject`.
struct RejectSome;

impl PgInlineProjection for RejectSome {
    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), InlineError>> {
        Box::pin(async move {
            for event in events {
                sqlx::query("insert into inline_seen (stream_id) values ($1)")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_inline_projection_rolls_back_only_its_own_append_in_a_batch() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let store = PostgresStore::open(&database.url, Arc::new(RejectSome))
        .await
        .unwrap();
    sqlx::query("create table inline_seen (n serial primary key, stream_id text not null)")
        .execute(store.pool())
        .await
        .unwrap();

    // Hold the writer so that all the appends below queue up and form one batch.
    let (open_gate, gate_opened) = oneshot::channel::<()>();
    let mut gate = Box::pin(store.with_write_lock(move |_conn| {
        Box::pin(async move {
            let _ = gate_opened.await;
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
    open_gate.send(()).unwrap();
    gate.await.unwrap();
    let results = join_all(appends).await;

    assert_eq!(store.stats().batches - before.batches, 1);
    for (name, result) in names.iter().zip(&results) {
        match result {
            Ok(_) => assert!(name.starts_with("ok")),
            Err(StoreError::Rejected(reason)) => assert_eq!(reason, "key already taken"),
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
    assert_eq!(stored, ["ok-1", "ok-2", "ok-3"]);
    let seen: Vec<String> = sqlx::query_scalar("select stream_id from inline_seen order by n")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(seen, stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lock_commits_on_success_and_rolls_back_on_failure() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let store = open(&database).await;
    let create = store.with_write_lock(|conn| {
        Box::pin(async move {
            sqlx::query("create table swap (n integer)")
                .execute(&mut *conn)
                .await?;
            sqlx::query("insert into swap values (1)")
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    });
    create.await.unwrap();
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
    let rows: Vec<i32> = sqlx::query_scalar("select n from swap")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, [1]);
    store
        .append("after", ExpectedVersion::NoStream, vec![event("A")])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lock_holds_back_the_appends_of_other_processes() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let (locker, other) = (open(&database).await, open(&database).await);
    let (release, released) = oneshot::channel::<()>();
    let (locked, is_locked) = oneshot::channel::<()>();
    let holder = tokio::spawn(async move {
        locker
            .with_write_lock(move |_conn| {
                Box::pin(async move {
                    let _ = locked.send(());
                    let _ = released.await;
                    Ok(())
                })
            })
            .await
    });
    is_locked.await.unwrap();
    let mut append = Box::pin(other.append("s", ExpectedVersion::NoStream, vec![event("A")]));
    let waited = tokio::time::timeout(Duration::from_millis(300), append.as_mut()).await;
    assert!(
        waited.is_err(),
        "the append must wait for the other store's lock"
    );
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    assert_eq!(append.await.unwrap().first_position, 1);
}
