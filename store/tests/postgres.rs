//! What only the PostgreSQL backend promises, beyond the conformance suite: several stores
//! (standing in for server processes) on one database share one log, migrate safely together,
//! serialize with each other's write locks and survive lost connections.

mod support;

#[path = "postgres/recovery.rs"]
mod recovery;
#[path = "postgres/writes.rs"]
mod writes;

use std::sync::Arc;
use std::time::Duration;

use countersign_store::{EventStore, ExpectedVersion, NoInlineProjection, PostgresStore};
use futures::future::join_all;
use futures::StreamExt;
use support::{event, TestDatabase};

/// How long a store may take to hear of another's commits before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// A store without inline projection on the test's database.
async fn open(database: &TestDatabase) -> PostgresStore {
    PostgresStore::open(&database.url, Arc::new(NoInlineProjection))
        .await
        .expect("the store opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_opening_a_fresh_database_at_once_apply_each_migration_once() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let stores = join_all((0..4).map(|_| open(&database))).await;
    let applied: Vec<i64> = sqlx::query_scalar("select version from _sqlx_migrations order by 1")
        .fetch_all(stores[0].pool())
        .await
        .unwrap();
    let files = std::fs::read_dir("../migrations/postgres").unwrap().count();
    assert_eq!(applied.len(), files);
    assert_eq!(applied[0], 1);
    for (i, store) in stores.iter().enumerate() {
        let outcome = store
            .append(
                &format!("s-{i}"),
                ExpectedVersion::NoStream,
                vec![event("A")],
            )
            .await
            .unwrap();
        assert_eq!(outcome.last_position, i as u64 + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_follows_the_commits_of_another() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let (writer, follower) = (open(&database).await, open(&database).await);
    let mut subscription = follower.subscribe(0);
    let mut head = follower.watch_head();
    for _ in 0..5 {
        writer
            .append("s", ExpectedVersion::Any, vec![event("A")])
            .await
            .unwrap();
    }
    tokio::time::timeout(PATIENCE, head.wait_for(|&h| h == 5))
        .await
        .expect("the follower heard of the commits")
        .unwrap();
    for position in 1..=5 {
        let next = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .unwrap();
        assert_eq!(next.unwrap().unwrap().position, position);
    }
    let own = follower
        .append("s", ExpectedVersion::Exact(5), vec![event("B")])
        .await
        .unwrap();
    assert_eq!(own.first_position, 6, "both writers number one log");
    assert_eq!(writer.head().await.unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncating_the_log_is_refused() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let store = open(&database).await;
    store
        .append("s", ExpectedVersion::NoStream, vec![event("A")])
        .await
        .unwrap();
    let error = sqlx::query("truncate events")
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("events are append-only"),
        "{error}"
    );
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_is_stored_as_the_exact_text_appended() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let store = open(&database).await;
    let appended = event("A");
    store
        .append("s", ExpectedVersion::NoStream, vec![appended.clone()])
        .await
        .unwrap();
    let (data, metadata): (String, String) =
        sqlx::query_as("select data, metadata from events where position = 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(data, serde_json::to_string(&appended.data).unwrap());
    assert_eq!(metadata, serde_json::to_string(&appended.metadata).unwrap());
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let store = open(&database).await;
    let appends = (0..200).map(|i| {
        let store = store.clone();
        async move {
            store
                .append(
                    &format!("s-{i}"),
                    ExpectedVersion::NoStream,
                    vec![event("A")],
                )
                .await
        }
    });
    for result in join_all(appends).await {
        result.unwrap();
    }
    let stats = store.stats();
    assert_eq!((stats.appends, stats.events), (200, 200));
    assert!(stats.batches < 200, "{} batches", stats.batches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_indexes_migrate_a_database_whose_rebuild_renamed_the_old_one() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    // The database as a version before the expiry indexes left it after a rebuild of the
    // status model: the old index named after the table the rebuild filled.
    let mut migrator = sqlx::migrate!("../migrations/postgres");
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 8)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    sqlx::query(
        "alter index action_request_status_due \
         rename to action_request_status_next_status_expires_at_idx",
    )
    .execute(&pool)
    .await
    .unwrap();

    let store = open(&database).await;
    let indexes: Vec<String> = sqlx::query_scalar(
        "select indexdef from pg_indexes where tablename = 'action_request_status' \
         and indexname not like '%key' and indexname not like '%pkey' order by indexname",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "CREATE INDEX action_request_status_pending_due ON public.action_request_status \
             USING btree (expires_at) WHERE (status = 'PENDING'::text)",
            "CREATE INDEX action_request_status_token_due ON public.action_request_status \
             USING btree (token_expires_at) WHERE (status = 'CONFIRMED'::text)",
        ]
    );
}
