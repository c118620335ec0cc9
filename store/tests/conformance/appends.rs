//! Conformance checks of appending and reading: expected versions, event ids, the log's order
//! and its protection against tampering. Each is written once against `&dyn EventStore` (and,
//! for tampering, SQL behind the store's back); `conformance.rs` runs each on every backend.

use countersign_store::{AppendOutcome, EventStore, ExpectedVersion, StoreError};

use crate::support::{event, RawSql};

fn assert_conflict(result: Result<AppendOutcome, StoreError>, actual_version: u64) {
    match result {
        Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, actual_version),
        other => panic!("expected a conflict at version {actual_version}, got {other:?}"),
    }
}

/// Appended events come back from every read exactly as the append recorded them.
pub async fn appended_events_read_back_as_recorded(store: &dyn EventStore) {
    let first = event("Created");
    let outcome = store
        .append(
            "ar-1",
            ExpectedVersion::NoStream,
            vec![first.clone(), event("Sent")],
        )
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, 2);
    assert_eq!((outcome.first_position, outcome.last_position), (1, 2));

    let read = store.read_stream("ar-1").await.unwrap();
    assert_eq!(read, outcome.events);
    assert_eq!(read[0].event_id, first.event_id);
    assert_eq!(read[0].event_type, "Created");
    assert_eq!(read[0].data, first.data);
    assert_eq!(read[0].metadata, first.metadata);
    assert_eq!((read[0].stream_version, read[1].stream_version), (1, 2));
    assert_eq!(store.read_all(0, 10).await.unwrap(), outcome.events);
    assert_eq!(store.head().await.unwrap(), 2);
    assert!(store.read_stream("nobody").await.unwrap().is_empty());
}

/// Every kind of wrong expectation is a conflict naming the actual version; right ones append.
pub async fn a_stale_expected_version_is_a_conflict(store: &dyn EventStore) {
    store
        .append("s", ExpectedVersion::NoStream, vec![event("A"), event("B")])
        .await
        .unwrap();
    assert_conflict(
        store
            .append("s", ExpectedVersion::Exact(1), vec![event("C")])
            .await,
        2,
    );
    assert_conflict(
        store
            .append("s", ExpectedVersion::Exact(3), vec![event("C")])
            .await,
        2,
    );
    assert_conflict(
        store
            .append("s", ExpectedVersion::NoStream, vec![event("C")])
            .await,
        2,
    );
    assert_conflict(
        store
            .append("new", ExpectedVersion::Exact(1), vec![event("C")])
            .await,
        0,
    );
    assert!(store.read_stream("new").await.unwrap().is_empty());

    let exact = store
        .append("s", ExpectedVersion::Exact(2), vec![event("C")])
        .await
        .unwrap();
    assert_eq!(exact.stream_version, 3);
    let any = store
        .append("s", ExpectedVersion::Any, vec![event("D")])
        .await
        .unwrap();
    assert_eq!((any.stream_version, any.last_position), (4, 4));
    assert_eq!(store.read_stream("s").await.unwrap().len(), 4);
}

/// An event id can be stored once: retrying an append is a conflict and takes no position.
pub async fn re_appending_the_same_event_ids_is_a_conflict(store: &dyn EventStore) {
    let once = event("A");
    store
        .append("s", ExpectedVersion::NoStream, vec![once.clone()])
        .await
        .unwrap();
    assert_conflict(
        store
            .append("s", ExpectedVersion::Any, vec![once.clone()])
            .await,
        1,
    );
    assert_conflict(
        store
            .append("s", ExpectedVersion::Exact(1), vec![once.clone()])
            .await,
        1,
    );
    assert_conflict(
        store
            .append("t", ExpectedVersion::NoStream, vec![once.clone()])
            .await,
        0,
    );
    let doubled = event("B");
    let twice_in_one = store
        .append(
            "u",
            ExpectedVersion::NoStream,
            vec![doubled.clone(), doubled],
        )
        .await;
    assert_conflict(twice_in_one, 0);
    assert!(store.read_stream("t").await.unwrap().is_empty());
    assert!(store.read_stream("u").await.unwrap().is_empty());
    assert_eq!(store.head().await.unwrap(), 1);
    let next = store
        .append("t", ExpectedVersion::NoStream, vec![event("C")])
        .await
        .unwrap();
    assert_eq!(next.first_position, 2, "a refused append takes no position");
}

/// An append without events checks the expectation and writes nothing.
pub async fn an_empty_append_only_checks_the_expected_version(store: &dyn EventStore) {
    let outcome = store
        .append("s", ExpectedVersion::NoStream, Vec::new())
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, 0);
    assert_eq!((outcome.first_position, outcome.last_position), (0, 0));
    assert_conflict(
        store
            .append("s", ExpectedVersion::Exact(4), Vec::new())
            .await,
        0,
    );
    assert_eq!(store.head().await.unwrap(), 0);
}

/// The global log pages through every stream in one gap-free order, with times never going back.
pub async fn read_all_pages_through_the_log_in_position_order(store: &dyn EventStore) {
    for i in 0..7 {
        let stream = format!("s-{}", i % 3);
        store
            .append(&stream, ExpectedVersion::Any, vec![event("E")])
            .await
            .unwrap();
        let _ = store
            .append(&stream, ExpectedVersion::NoStream, vec![event("Lost")])
            .await;
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_all(after, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().unwrap().position;
        seen.extend(page);
    }
    let positions: Vec<u64> = seen.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=7).collect::<Vec<_>>(),
        "no gaps after refused appends"
    );
    let streams: Vec<&str> = seen.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["s-0", "s-1", "s-2", "s-0", "s-1", "s-2", "s-0"]);
    assert!(seen
        .windows(2)
        .all(|w| w[0].recorded_at <= w[1].recorded_at));
    assert!(store.read_all(0, 0).await.unwrap().is_empty());
    assert!(store.read_all(7, 10).await.unwrap().is_empty());
}

/// Of many concurrent appends expecting the same version, exactly one succeeds.
pub async fn racing_appends_to_one_stream_have_exactly_one_winner(store: &dyn EventStore) {
    store
        .append("race", ExpectedVersion::NoStream, vec![event("Created")])
        .await
        .unwrap();
    let racers =
        (0..20).map(|_| store.append("race", ExpectedVersion::Exact(1), vec![event("Won")]));
    let results = futures::future::join_all(racers).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1);
    for result in results.into_iter().filter(Result::is_err) {
        assert_conflict(result, 2);
    }
    assert_eq!(store.read_stream("race").await.unwrap().len(), 2);
}

/// The database itself refuses to change or remove stored events.
pub async fn stored_events_cannot_be_updated_or_deleted(store: &dyn EventStore, raw: &RawSql) {
    store
        .append("s", ExpectedVersion::NoStream, vec![event("A"), event("B")])
        .await
        .unwrap();
    let before = store.read_all(0, 10).await.unwrap();
    for sql in [
        "update events set data = '{}' where position = 1",
        "update events set stream_version = stream_version + 10",
        "delete from events where position = 2",
        "delete from events",
    ] {
        let error = raw.execute(sql).await.expect_err(sql);
        assert!(error.contains("events are append-only"), "{sql}: {error}");
    }
    assert_eq!(store.read_all(0, 10).await.unwrap(), before);
}
