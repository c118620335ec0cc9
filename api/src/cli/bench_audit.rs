//! `countersign bench --audit`: grows a log to each of the given sizes with events of a real
//! request's size, and at each size times a full `audit verify` and the generation of inclusion
//! and consistency proofs, to show that proofs do not grow with the log while verification
//! grows linearly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use countersign_projections::database::Database;
use countersign_store::audit::{self, verify_log};
use countersign_store::{Actor, ActorKind, EventStore, ExpectedVersion, Metadata, NewEvent};
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

/// Concurrent appenders while filling.
const APPENDERS: usize = 16;
/// Events per append while filling (one stream each).
const EVENTS_PER_APPEND: usize = 4;
/// Proofs timed at each size.
const PROOFS: usize = 1_000;

/// Fills the database at `database_url` (a fresh SQLite file when it is the default) up to each
/// of `sizes` events and prints the timings at each.
pub async fn run(database_url: Option<&str>, sizes: &[u64]) -> anyhow::Result<()> {
    anyhow::ensure!(!sizes.is_empty(), "give at least one size with --sizes");
    let dir = tempfile::tempdir()?;
    let url = match database_url {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}", dir.path().join("audit-bench.db").display()),
    };
    let db = Database::open(&url, false).await?;
    println!(
        "audit benchmark on {} ({} appenders, {} events per append)",
        db.backend(),
        APPENDERS,
        EVENTS_PER_APPEND
    );
    println!(
        "{:>10} {:>10} {:>12} {:>14} {:>14} {:>14}",
        "events", "fill ev/s", "verify s", "verify ev/s", "inclusion µs", "consistency µs"
    );
    let store = db.events();
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable();
    for size in sorted {
        let fill_rate = fill(&store, size).await?;
        let log = db.audit();
        let head = audit::size(log.as_ref()).await?;
        let started = Instant::now();
        let report = verify_log(log.as_ref(), None, |_, _| {}).await?;
        let verify = started.elapsed();
        anyhow::ensure!(report.ok, "the benchmark log does not verify: {report:?}");
        let inclusion = time_proofs(|rng| {
            let position = rng.gen_range(1..=head);
            let log = log.clone();
            async move { audit::inclusion_proof(log.as_ref(), position, head).await }
        })
        .await?;
        let consistency = time_proofs(|rng| {
            let first = rng.gen_range(1..=head);
            let log = log.clone();
            async move { audit::consistency_proof(log.as_ref(), first, head).await }
        })
        .await?;
        println!(
            "{:>10} {:>10.0} {:>12.2} {:>14.0} {:>14.0} {:>14.0}",
            head,
            fill_rate,
            verify.as_secs_f64(),
            head as f64 / verify.as_secs_f64(),
            inclusion.as_secs_f64() * 1e6,
            consistency.as_secs_f64() * 1e6,
        );
    }
    Ok(())
}

/// The mean time of one proof over [`PROOFS`] of them, made one after another.
async fn time_proofs<F, Fut, T, E>(mut make: F) -> anyhow::Result<Duration>
where
    F: FnMut(&mut rand::rngs::ThreadRng) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    for _ in 0..PROOFS {
        make(&mut rng).await?;
    }
    Ok(started.elapsed() / PROOFS as u32)
}

/// Appends until the log holds `target` events; the events per second it took.
async fn fill(store: &Arc<dyn EventStore>, target: u64) -> anyhow::Result<f64> {
    let start = store.head().await?;
    if start >= target {
        return Ok(0.0);
    }
    let appends = (target - start).div_ceil(EVENTS_PER_APPEND as u64);
    let bar = indicatif::ProgressBar::new(target - start).with_style(
        indicatif::ProgressStyle::with_template(
            "filling [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..APPENDERS {
        let (store, next, bar) = (Arc::clone(store), Arc::clone(&next), bar.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= appends {
                    return anyhow::Ok(());
                }
                let id = Uuid::now_v7();
                let events = lifecycle_events(id);
                store
                    .append(&format!("bench-{id}"), ExpectedVersion::NoStream, events)
                    .await?;
                bar.inc(EVENTS_PER_APPEND as u64);
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    bar.finish_and_clear();
    let done = store.head().await? - start;
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

/// Events shaped and sized like an approval's: creation with its display and payload, the
/// push, the signed confirmation and the consumption.
fn lifecycle_events(id: Uuid) -> Vec<NewEvent> {
    let metadata = Metadata {
        actor: Actor {
            kind: ActorKind::Client,
            id: Some(Uuid::now_v7().to_string()),
        },
        correlation_id: Some(Uuid::now_v7().to_string()),
        ip: Some("127.0.0.1".into()),
    };
    let data = [
        (
            "Created",
            json!({
                "id": id, "action": "bank:transfers:create", "uid": "user-42",
                "payload": {"amount": "234.00", "currency": "EUR", "to": "DE89370400440532013000"},
                "display": {"amount": "234.00 EUR", "payee": "ACME GmbH", "iban": "DE89 3704 0044 0532 0130 00"},
                "binding": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "method": "push", "expires_at": "2026-11-23T12:05:00.000000Z",
            }),
        ),
        (
            "PushSent",
            json!({"device_id": Uuid::now_v7(), "at": "2026-11-23T12:00:00.100000Z"}),
        ),
        (
            "Confirmed",
            json!({
                "device_id": Uuid::now_v7(),
                "signature": "MEUCIQDx8u1Yk6o2o7Q3R2Gm1V9r6q0b1mJvQ3lE8mZ2cW9pWQIgS3f0mE2k4tq7mJ2yP2bV9xg8m0l1QmXr8v2d1Qw9sE0",
                "token_hash": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                "at": "2026-11-23T12:00:03.000000Z",
            }),
        ),
        (
            "TokenConsumed",
            json!({"at": "2026-11-23T12:00:04.000000Z"}),
        ),
    ];
    data.into_iter()
        .map(|(event_type, data)| NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            data,
            metadata: metadata.clone(),
        })
        .collect()
}
