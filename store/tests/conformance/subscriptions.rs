//! Conformance checks of following the log: catch-up-then-live subscriptions and the head
//! watch. Each is written once against `&dyn EventStore`; `conformance.rs` runs each on every
//! backend.

use std::time::Duration;

use countersign_store::{EventStore, ExpectedVersion};
use futures::StreamExt;

use crate::support::event;

/// How long a subscription may take to deliver an event before the check fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// A subscription delivers the history after its position, then new commits, each once.
pub async fn a_subscription_from_a_position_continues_live(store: &dyn EventStore) {
    for _ in 0..3 {
        store
            .append("history", ExpectedVersion::Any, vec![event("Old")])
            .await
            .unwrap();
    }
    let mut subscription = store.subscribe(1);
    let mut positions = Vec::new();
    for _ in 0..5 {
        store
            .append("live", ExpectedVersion::Any, vec![event("New")])
            .await
            .unwrap();
    }
    while positions.len() < 7 {
        let next = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .expect("the subscription stalled");
        positions.push(next.unwrap().unwrap().position);
        if positions.len() == 4 {
            store
                .append("late", ExpectedVersion::Any, vec![event("Late")])
                .await
                .unwrap();
        }
    }
    assert_eq!(positions, (2..=8).collect::<Vec<_>>());
    let late = tokio::time::timeout(PATIENCE, subscription.next())
        .await
        .expect("the subscription stalled");
    assert_eq!(late.unwrap().unwrap().event_type, "Late");
    let extra = tokio::time::timeout(Duration::from_millis(200), subscription.next()).await;
    assert!(extra.is_err(), "no event may be delivered twice");
}

/// A subscriber following concurrent appenders sees exactly the log, in its order.
pub async fn a_subscriber_sees_concurrent_appends_in_log_order(store: &dyn EventStore) {
    const TASKS: u64 = 16;
    const APPENDS: u64 = 15;
    let total = TASKS * APPENDS * 2;
    let mut subscription = store.subscribe(0);
    let appends = (0..TASKS).map(|task| async move {
        for version in 0..APPENDS {
            store
                .append(
                    &format!("task-{task}"),
                    ExpectedVersion::Exact(version * 2),
                    vec![event("A"), event("B")],
                )
                .await
                .unwrap();
        }
    });
    let follow = async {
        let mut seen = Vec::new();
        while (seen.len() as u64) < total {
            let next = tokio::time::timeout(PATIENCE, subscription.next())
                .await
                .expect("the subscription stalled");
            seen.push(next.unwrap().unwrap());
        }
        seen
    };
    let (_, seen) = tokio::join!(futures::future::join_all(appends), follow);
    let log = store.read_all(0, 10_000).await.unwrap();
    assert_eq!(log.len() as u64, total);
    assert_eq!(seen, log);
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=total).collect::<Vec<_>>());
    assert_eq!(store.head().await.unwrap(), total);
}

/// The head watch and the head reach an append's last position once it has committed.
pub async fn the_head_watch_moves_after_each_commit(store: &dyn EventStore) {
    let mut head = store.watch_head();
    assert_eq!(*head.borrow_and_update(), 0);
    let outcome = store
        .append("s", ExpectedVersion::NoStream, vec![event("A"), event("B")])
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, head.wait_for(|&h| h >= outcome.last_position))
        .await
        .expect("the head watch did not move")
        .unwrap();
    assert_eq!(*head.borrow_and_update(), 2);
    assert_eq!(store.head().await.unwrap(), 2);
}
