//! `countersign bench`: full approval lifecycles (create, inbox, signed confirm, poll, consume)
//! by concurrent clients over loopback HTTP against an in-process server on a fresh SQLite file.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use countersign_domain::approval::Decision;
use reqwest::Method;
use serde_json::json;

use super::local::LocalServer;
use super::phone::{Bank, Phone};

/// What to measure.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Lifecycles to run.
    #[arg(long, short = 'n', default_value_t = 2000)]
    requests: usize,
    /// Concurrent clients (each with its own user and device).
    #[arg(long, short = 'c', default_value_t = 64)]
    concurrency: usize,
    /// SQLite durability (`full` is the server's default).
    #[arg(long, default_value = "full")]
    synchronous: String,
    /// Measures the audit instead: grows a log to each of `--sizes` events and times a full
    /// verification and proof generation at each size.
    #[arg(long)]
    audit: bool,
    /// Log sizes for `--audit`, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<u64>,
    /// Runs on the SQLite database `--database-url` names, and keeps it, instead of a new
    /// temporary file (PostgreSQL databases are always kept): a log of real approvals to
    /// rebuild or audit afterwards.
    #[arg(long)]
    keep: bool,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs the benchmark and prints its figures: on a new SQLite file, or on the PostgreSQL
/// database `database_url` names (which it fills with benchmark data).
pub async fn run(args: BenchArgs, database_url: &str) -> anyhow::Result<()> {
    if args.audit {
        let postgres = database_url.starts_with("postgres");
        return super::bench_audit::run(postgres.then_some(database_url), &args.sizes).await;
    }
    anyhow::ensure!(
        args.requests > 0 && args.concurrency > 0,
        "--requests and --concurrency must be positive"
    );
    let durable = match args.synchronous.as_str() {
        "full" => true,
        "normal" => false,
        other => anyhow::bail!("--synchronous must be full or normal, not {other}"),
    };
    let postgres = database_url.starts_with("postgres");
    let server = LocalServer::start(
        "bench",
        "bench:*",
        durable,
        (postgres || args.keep).then_some(database_url),
    )
    .await?;
    let (base, client, db) = (&server.base, &server.client, server.db.clone());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let bank = Bank::new(http.clone(), base, &client.id.to_string(), &client.secret);

    let mut phones = Vec::new();
    for worker in 0..args.concurrency {
        let mut phone = Phone::new(http.clone(), base);
        let answer = bank
            .enrol(
                &format!("user-{worker}"),
                "bench phone",
                &phone.public_key(),
            )
            .await?;
        phone.enrolled(&answer)?;
        phones.push(phone);
    }
    let before = db.stats();
    println!(
        "bench: {} lifecycles, {} concurrent clients, {}",
        args.requests,
        args.concurrency,
        if postgres {
            "PostgreSQL".to_owned()
        } else {
            format!("SQLite synchronous={}", args.synchronous)
        }
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for (worker, phone) in phones.into_iter().enumerate() {
        let (bank, next, total) = (bank.clone(), next.clone(), args.requests);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                lifecycle(&bank, &phone, worker, &mut latencies).await?;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = db.stats();
    drop(server);
    latencies.sort();
    let commands = latencies.len();
    let batches = after.batches - before.batches;
    println!("lifecycles/s:     {:.0}", args.requests as f64 / elapsed);
    println!(
        "commands/s:       {:.0}  (create, confirm, consume)",
        commands as f64 / elapsed
    );
    println!(
        "command latency:  p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99))
    );
    println!(
        "group commit:     {} transactions for {} appends ({:.1} appends per fsync)",
        batches,
        after.appends - before.appends,
        (after.appends - before.appends) as f64 / batches.max(1) as f64
    );
    println!("elapsed:          {elapsed:.2} s");
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn timed<T>(latencies: &mut Vec<Duration>, f: impl std::future::Future<Output = T>) -> T {
    let start = Instant::now();
    let out = f.await;
    latencies.push(start.elapsed());
    out
}

async fn lifecycle(
    bank: &Bank,
    phone: &Phone,
    worker: usize,
    latencies: &mut Vec<Duration>,
) -> anyhow::Result<()> {
    let payload = json!({"amount": "10.00", "currency": "EUR", "to": format!("R{worker}")});
    let body =
        json!({"action": "bench:transfer", "uid": format!("user-{worker}"), "payload": payload});
    let created = timed(
        latencies,
        bank.call(Method::POST, "/v1/action-requests", Some(&body)),
    )
    .await?;
    anyhow::ensure!(
        created.status.as_u16() == 201,
        "create failed: {}",
        created.body
    );
    let id = created.body["id"].clone();
    let inbox = phone.inbox().await?;
    let item = inbox
        .body
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == id))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("request {id} not in the inbox"))?;
    let confirmed = timed(latencies, phone.decide(&item, Decision::Confirm)).await?;
    anyhow::ensure!(
        confirmed.status.as_u16() == 200,
        "confirm failed: {}",
        confirmed.body
    );
    let path = format!("/v1/action-requests/{}", id.as_str().unwrap_or_default());
    let polled = bank.call(Method::GET, &path, None).await?;
    let consume =
        json!({"token": polled.body["token"], "action": "bench:transfer", "payload": payload});
    let consumed = timed(
        latencies,
        bank.call(Method::POST, "/v1/tokens/consume", Some(&consume)),
    )
    .await?;
    anyhow::ensure!(
        consumed.status.as_u16() == 200,
        "consume failed: {}",
        consumed.body
    );
    Ok(())
}
