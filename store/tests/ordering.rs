//! The proof that no event is skipped when several processes append to one PostgreSQL log: three
//! OS processes append concurrently for seconds while a subscriber in this process follows the
//! log from the start; the subscriber's sequence must then equal a full read of the log.
//!
//! The appender processes are this test binary run again with the test's name and
//! [`APPENDER_VAR`] set to the database URL, so no separate binary is needed.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use countersign_store::{
    EventStore, ExpectedVersion, NoInlineProjection, PostgresStore, RecordedEvent, StoreError,
};
use futures::StreamExt;
use serde_json::json;
use support::{event, TestDatabase};
use tokio::sync::watch;

/// Set (to the database URL) in the appender processes.
const APPENDER_VAR: &str = "COUNTERSIGN_ORDERING_APPENDER";
/// The appender process's number.
const PROCESS_VAR: &str = "COUNTERSIGN_ORDERING_PROCESS";
const TEST_NAME: &str = "a_follower_sees_every_event_of_concurrent_processes_in_log_order";
const PROCESSES: usize = 3;
const TASKS_PER_PROCESS: u64 = 8;
const APPEND_FOR: Duration = Duration::from_secs(4);
/// How long the appenders may overrun, and the follower take to catch up once they are done.
const CATCH_UP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_every_event_of_concurrent_processes_in_log_order() {
    if let Ok(url) = std::env::var(APPENDER_VAR) {
        let process: u64 = std::env::var(PROCESS_VAR).unwrap().parse().unwrap();
        let appended = append_until_time_is_up(&url, process).await;
        println!("appended {appended} events");
        return;
    }
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let store = PostgresStore::open(&database.url, Arc::new(NoInlineProjection))
        .await
        .unwrap();
    let (seen, progress) = follow(&store);

    let started = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|process| {
            Command::new(std::env::current_exe().unwrap())
                .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
                .env(APPENDER_VAR, &database.url)
                .env(PROCESS_VAR, process.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .expect("an appender process starts")
        })
        .collect();
    let waiting = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    });
    let outputs = tokio::time::timeout(APPEND_FOR + CATCH_UP, waiting)
        .await
        .expect("the appender processes finish")
        .unwrap();
    let elapsed = started.elapsed();
    let reported: Vec<usize> = outputs
        .iter()
        .map(|output| {
            assert!(output.status.success(), "an appender failed: {output:?}");
            let stdout = String::from_utf8_lossy(&output.stdout);
            // The harness may print its own text on the same line.
            let (_, rest) = stdout
                .split_once("appended ")
                .expect("the appender reports");
            rest.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();

    let log = read_everything(&store).await;
    let last = log.last().map_or(0, |e| e.position);
    let mut progress = progress;
    tokio::time::timeout(CATCH_UP, progress.wait_for(|&p| p >= last))
        .await
        .expect("the follower caught up")
        .unwrap();
    let seen = seen.lock().unwrap().clone();

    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=last).collect::<Vec<_>>(),
        "the log has no gaps"
    );
    assert_eq!(
        seen.len(),
        log.len(),
        "the follower saw each event exactly once"
    );
    assert!(
        seen == log,
        "the follower saw the log's events in the log's order"
    );
    for (process, count) in reported.iter().enumerate() {
        let in_log = log
            .iter()
            .filter(|e| process_of(e) == process as u64)
            .count();
        assert_eq!(
            in_log, *count,
            "process {process} committed what it reported"
        );
        assert!(*count > 0, "process {process} appended nothing");
    }
    let switches = log
        .windows(2)
        .filter(|w| process_of(&w[0]) != process_of(&w[1]))
        .count();
    assert!(
        switches >= PROCESSES * 10,
        "the processes' appends interleaved"
    );
    let _ = writeln!(
        std::io::stderr(),
        "ordering: {PROCESSES} processes appended {} events in {:.1} s ({switches} switches \
         between processes); the follower saw all of them in log order",
        log.len(),
        elapsed.as_secs_f64(),
    );
}

/// Follows the store from the start, collecting what it sees and announcing its position.
fn follow(store: &PostgresStore) -> (Arc<Mutex<Vec<RecordedEvent>>>, watch::Receiver<u64>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (position, progress) = watch::channel(0);
    let mut subscription = store.subscribe(0);
    let collected = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(event) = subscription.next().await {
            let event = event.unwrap();
            let at = event.position;
            collected.lock().unwrap().push(event);
            position.send_replace(at);
        }
    });
    (seen, progress)
}

async fn read_everything(store: &PostgresStore) -> Vec<RecordedEvent> {
    let mut log = Vec::new();
    loop {
        let page = store.read_all(log.last().map_or(0, |e: &RecordedEvent| e.position), 5_000);
        let page = page.await.unwrap();
        if page.is_empty() {
            return log;
        }
        log.extend(page);
    }
}

fn process_of(event: &RecordedEvent) -> u64 {
    event.data["process"].as_u64().unwrap()
}

/// The appender process: many tasks appending until time is up; returns the events committed.
async fn append_until_time_is_up(url: &str, process: u64) -> usize {
    let store = PostgresStore::open(url, Arc::new(NoInlineProjection))
        .await
        .unwrap();
    let deadline = Instant::now() + APPEND_FOR;
    let tasks = (0..TASKS_PER_PROCESS).map(|task| {
        let store = store.clone();
        tokio::spawn(async move { append_as_one_task(&store, process, task, deadline).await })
    });
    let mut appended = 0;
    for task in futures::future::join_all(tasks).await {
        appended += task.unwrap();
    }
    appended
}

/// Appends to a stream of its own (1 to 3 events at a time, with the exact version), now and
/// then to a stream every process shares, and now and then a stale append that must fail.
async fn append_as_one_task(
    store: &PostgresStore,
    process: u64,
    task: u64,
    deadline: Instant,
) -> usize {
    let own = format!("p{process}-t{task}");
    let (mut version, mut appended, mut round) = (0, 0, 0u64);
    let tagged = |n: u64| -> Vec<_> {
        (0..n)
            .map(|_| {
                let mut new = event("Appended");
                new.data = json!({ "process": process, "task": task });
                new
            })
            .collect()
    };
    while Instant::now() < deadline {
        round += 1;
        if round % 5 == 0 {
            let outcome = store
                .append("shared", ExpectedVersion::Any, tagged(1))
                .await;
            appended += outcome.unwrap().events.len();
        } else if round % 7 == 0 {
            let stale = store
                .append(&own, ExpectedVersion::NoStream, tagged(1))
                .await;
            assert!(
                matches!(stale, Err(StoreError::Conflict { .. })),
                "{stale:?}"
            );
        } else {
            let count = 1 + round % 3;
            let outcome = store
                .append(&own, ExpectedVersion::Exact(version), tagged(count))
                .await
                .unwrap();
            version = outcome.stream_version;
            appended += outcome.events.len();
        }
    }
    appended
}
