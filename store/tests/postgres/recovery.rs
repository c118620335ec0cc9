//! Lost connections: the writer connects again (at once when it was idle, after one failed
//! batch when it was busy) and the listener listens again and catches the head up.

use std::time::Duration;

use countersign_store::{EventStore, ExpectedVersion, StoreError};
use sqlx::PgConnection;

use crate::support::{event, TestDatabase};
use crate::{open, PATIENCE};

/// Cuts every connection to the test's database but the one doing it.
async fn cut_connections(database: &TestDatabase) {
    let mut admin = <PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .unwrap();
    sqlx::query(
        "select pg_terminate_backend(pid) from pg_stat_activity \
         where datname = current_database() and pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_after_its_connections_are_cut() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let (writer, follower) = (open(&database).await, open(&database).await);
    writer
        .append("s", ExpectedVersion::Any, vec![event("A")])
        .await
        .unwrap();
    cut_connections(&database).await;

    let mut head = follower.watch_head();
    let mut position = None;
    for _ in 0..3 {
        match writer
            .append("s", ExpectedVersion::Any, vec![event("B")])
            .await
        {
            Ok(outcome) => {
                position = Some(outcome.last_position);
                break;
            }
            Err(StoreError::Unavailable(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(position, Some(2), "the writer connects again");
    tokio::time::timeout(PATIENCE, head.wait_for(|&h| h == 2))
        .await
        .expect("the follower listens again")
        .unwrap();
    assert_eq!(follower.read_all(0, 10).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_writer_notices_a_lost_connection_before_appending() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let store = open(&database).await;
    store
        .append("s", ExpectedVersion::Any, vec![event("A")])
        .await
        .unwrap();
    cut_connections(&database).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let outcome = store
        .append("s", ExpectedVersion::Any, vec![event("B")])
        .await
        .expect("the first append after a quiet spell succeeds");
    assert_eq!(outcome.last_position, 2);
}
