//! Tests of the inline read models and their rebuild on every backend, with events
//! decided by the domain.

use chrono::{Duration, Utc};
use countersign_domain::action_request::{self, Command, Context, Create};
use countersign_domain::approval::{approval_message, Decision};
use countersign_domain::device::{self, DeviceKind, Enrol};
use countersign_domain::values::{ActionName, Method, PublicKey, TtlSeconds, UserId};
use countersign_store::{Actor, ExpectedVersion, Metadata, NewEvent, StoreError};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;
use uuid::Uuid;

use crate::database::Database;
use crate::follow;
use crate::read::ReadModels;
use crate::rebuild;

const KEY: &[u8] = b"projection test key";

/// A fresh database of the backend, kept alive by the returned guard; `None`: skip.
async fn open(backend: &str) -> Option<(Box<dyn std::any::Any>, Database)> {
    if backend == "postgres" {
        let test_db = countersign_testing::TestDatabase::for_test().await?;
        let db = Database::open(&test_db.url, true).await.unwrap();
        return Some((Box::new(test_db), db));
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let db = Database::open(&url, true).await.unwrap();
    Some((Box::new(dir), db))
}

/// Runs a test once on SQLite and once on PostgreSQL.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_guard, db) = super::open("sqlite").await.unwrap();
                super::$name(db).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some((_guard, db)) = super::open("postgres").await {
                    super::$name(db).await;
                }
            })*
        }
    };
}

on_every_backend!(
    every_rebuilt_read_model_equals_the_live_one,
    rebuilds_keep_the_schema_the_migrations_made,
    a_rebuild_while_commands_append_and_projections_follow_misses_nothing,
    an_unknown_projection_is_refused_by_name,
    a_reused_idempotency_key_rejects_only_that_append,
    reads_serve_the_inbox_the_token_and_expiry,
    a_decision_on_a_request_with_a_callback_queues_one_message,
);

fn metadata() -> Metadata {
    Metadata::from_actor(Actor::system())
}

async fn append<E>(
    db: &Database,
    stream: &str,
    version: u64,
    events: &[E],
    encode: impl Fn(&E) -> (&'static str, u32, serde_json::Value),
) -> Result<u64, StoreError> {
    let batch = events
        .iter()
        .map(|e| {
            let (event_type, schema_version, data) = encode(e);
            NewEvent {
                event_id: Uuid::now_v7(),
                event_type: event_type.into(),
                schema_version,
                data,
                metadata: metadata(),
            }
        })
        .collect();
    let expected = if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(version)
    };
    Ok(db
        .events()
        .append(stream, expected, batch)
        .await?
        .stream_version)
}

/// Enrols a device for `uid` and returns its id and signing key.
async fn enrol(db: &Database, client: Uuid, uid: &str) -> (Uuid, SigningKey) {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let id = Uuid::now_v7();
    let command = device::Command::Enrol(Enrol {
        id,
        client_id: client,
        uid: UserId::parse(uid).unwrap(),
        kind: DeviceKind::Push,
        name: "phone".into(),
        public_key: Some(PublicKey::from_verifying_key(key.verifying_key())),
        secret: None,
        suite: None,
        token_hash: format!("{id}-token-hash"),
    });
    let events = device::decide(None, command, &device::Context { now: Utc::now() }).unwrap();
    append(db, &device::stream_id(id), 0, &events, |e| {
        (e.event_type(), e.schema_version(), e.data())
    })
    .await
    .unwrap();
    (id, key)
}

/// Creates a request addressed to `device`, then applies `steps` (true: confirm, false: reject).
async fn request(
    db: &Database,
    client: Uuid,
    device: (Uuid, &SigningKey),
    key: Option<&str>,
    confirm: Option<bool>,
    callback_url: Option<&str>,
) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    let create = Create {
        id,
        client_id: client,
        action: ActionName::parse("bank:transfers:create").unwrap(),
        uid: UserId::parse("anna").unwrap(),
        payload: json!({"amount": "1.00", "n": id.to_string()}),
        display: None,
        method: Method::Push,
        devices: vec![device.0],
        challenge: None,
        notify: Vec::new(),
        code_hash: None,
        destination: None,
        ttl: TtlSeconds::default(),
        nonce: "n".into(),
        idempotency_key: key.map(str::to_owned),
        request_hash: Some("h".into()),
        callback_url: callback_url.map(str::to_owned),
    };
    let ctx = Context::new(Utc::now(), KEY);
    let created = action_request::decide(None, Command::Create(create), &ctx).unwrap();
    let encode = |e: &action_request::Event| (e.event_type(), e.schema_version(), e.data());
    let stream = action_request::stream_id(id);
    append(db, &stream, 0, &created, encode).await?;
    if let Some(confirm) = confirm {
        let state = action_request::replay(created.iter()).unwrap();
        let decision = if confirm {
            Decision::Confirm
        } else {
            Decision::Reject
        };
        let message = approval_message(id, decision, &state.binding, &state.nonce);
        let signature: Signature = device.1.sign(message.as_bytes());
        let (device_id, public_key, signature) = (
            device.0,
            PublicKey::from_verifying_key(device.1.verifying_key()),
            signature.to_bytes().to_vec(),
        );
        let command = if confirm {
            Command::Confirm {
                device_id,
                public_key,
                signature,
            }
        } else {
            Command::Reject {
                device_id,
                public_key,
                signature,
            }
        };
        let events = action_request::decide(Some(&state), command, &ctx).unwrap();
        append(db, &stream, 1, &events, encode).await?;
    }
    Ok(id)
}

/// Every row of every read model (inline and asynchronous), as text, in a fixed order.
async fn snapshot(db: &Database) -> Vec<String> {
    let tables = [
        (
            "action_request_status",
            "id, client_id, uid, action, status, version, expires_at, token_expires_at, \
             token_hash, idempotency_key, view, updated_at, created_at",
        ),
        (
            "devices",
            "id, client_id, uid, kind, name, public_key, token_hash, status, enrolled_at, \
             revoked_at, last_used_at, version",
        ),
        (
            "client_daily_stats",
            "client_id, day, requests, confirmed, rejected, expired, consumed",
        ),
        ("stats_requests", "request_id, client_id, day, created_at"),
        ("decision_times", "request_id, client_id, day, millis"),
        (
            "audit_search",
            "id, client_id, uid, action, status, created_at, updated_at",
        ),
        (
            "device_inbox",
            "device_id, request_id, expires_at, version, item",
        ),
    ];
    let numbers = [
        "version",
        "requests",
        "confirmed",
        "rejected",
        "expired",
        "consumed",
        "millis",
    ];
    let mut out = Vec::new();
    for (table, columns) in tables {
        let columns: Vec<String> = columns
            .split(", ")
            .map(|c| match numbers.contains(&c.trim()) {
                true => format!("cast({c} as text)"),
                false => c.trim().to_owned(),
            })
            .collect();
        let sql = format!("select {} from {table} order by 1, 2", columns.join(", "));
        for row in db.pool().rows(&sql, &[]).await.unwrap() {
            out.push(format!("{table} {row:?}"));
        }
    }
    out
}

/// Brings every asynchronous projection up to the log's head.
async fn catch_up(db: &Database) {
    for projection in follow::ASYNC {
        follow::catch_up(db, *projection).await.unwrap();
    }
}

async fn populate(db: &Database, client: Uuid, n: usize) {
    let (phone, key) = enrol(db, client, "anna").await;
    for i in 0..n {
        let outcome = [None, Some(true), Some(false)][i % 3];
        request(db, client, (phone, &key), None, outcome, None)
            .await
            .unwrap();
    }
}

async fn every_rebuilt_read_model_equals_the_live_one(db: Database) {
    let client = Uuid::now_v7();
    populate(&db, client, 30).await;
    catch_up(&db).await;
    let live = snapshot(&db).await;
    for table in ["audit_search", "device_inbox", "client_daily_stats"] {
        assert!(
            live.iter().any(|row| row.starts_with(&format!("{table} "))),
            "the fixture fills {table}"
        );
    }
    // Damage the live tables: only a replay of the log can restore them.
    for damage in [
        "delete from action_request_status where id in (select id from action_request_status limit 3)",
        "update action_request_status set status = 'BOGUS', view = '{}'",
        "update devices set last_used_at = null, name = 'x'",
        "update client_daily_stats set requests = 0",
        "delete from decision_times",
        "update audit_search set status = 'BOGUS'",
        "delete from device_inbox",
    ] {
        db.pool().run(damage, &[]).await.unwrap();
    }
    assert_ne!(snapshot(&db).await, live);
    let head = db.events().head().await.unwrap();
    for name in rebuild::names() {
        let mut calls = 0;
        let report = rebuild::rebuild(&db, name, |_, _| calls += 1)
            .await
            .unwrap();
        assert!(calls > 0, "{name} reports progress");
        assert_eq!(report.events, head, "{name} replayed the whole log");
        let expected_rows = match name {
            "status" | "audit_search" => 30,
            "devices" | "daily_stats" => 1,
            "device_inbox" => 10,
            other => panic!("a test for {other} is missing"),
        };
        assert_eq!(report.rows, expected_rows, "{name}");
    }
    assert_eq!(snapshot(&db).await, live);
    let checkpoints = follow::checkpoints(&db.pool()).await.unwrap();
    assert_eq!(checkpoints.len(), follow::ASYNC.len());
    assert!(checkpoints.iter().all(|c| c.position == head));
}

/// Every index and constraint of the database, by table and name, with its definition.
async fn schema(db: &Database) -> Vec<String> {
    let sql = match db {
        Database::Postgres(_) => {
            "select tablename || ' ' || indexname || ' ' || indexdef from pg_indexes \
             where schemaname = current_schema() \
             union all \
             select conrelid::regclass::text || ' ' || conname || ' ' || cast(contype as text) \
             from pg_constraint where connamespace = current_schema()::regnamespace \
             order by 1"
        }
        Database::Sqlite(_) => {
            "select tbl_name || ' ' || name || ' ' || coalesce(sql, '') from sqlite_master \
             where type = 'index' order by 1"
        }
    };
    let rows = db.pool().rows(sql, &[]).await.unwrap();
    rows.into_iter().filter_map(|row| row[0].clone()).collect()
}

async fn rebuilds_keep_the_schema_the_migrations_made(db: Database) {
    populate(&db, Uuid::now_v7(), 6).await;
    let migrated = schema(&db).await;
    assert!(
        migrated
            .iter()
            .any(|line| line.contains("action_request_status_pending_due")),
        "{migrated:#?}"
    );
    // Twice: a second rebuild copies what the first one left.
    for _ in 0..2 {
        for name in rebuild::names() {
            rebuild::rebuild(&db, name, |_, _| {}).await.unwrap();
        }
        assert_eq!(schema(&db).await, migrated);
    }
}

async fn a_rebuild_while_commands_append_and_projections_follow_misses_nothing(db: Database) {
    let client = Uuid::now_v7();
    populate(&db, client, 20).await;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let progress = follow::Progress::default();
    let followers: Vec<_> = follow::ASYNC
        .iter()
        .map(|projection| {
            tokio::spawn(follow::follow(
                db.clone(),
                *projection,
                progress.clone(),
                stopping.clone(),
                std::time::Duration::from_millis(50),
            ))
        })
        .collect();
    let writer = {
        let db = db.clone();
        tokio::spawn(async move { populate(&db, client, 60).await })
    };
    for name in rebuild::names() {
        rebuild::rebuild(&db, name, |_, _| {}).await.unwrap();
    }
    writer.await.unwrap();
    let head = db.events().head().await.unwrap();
    for projection in follow::ASYNC {
        let reached = progress
            .reached(projection.name(), head, std::time::Duration::from_secs(20))
            .await;
        assert!(reached, "{} follows to the head", projection.name());
    }
    stop.send_replace(true);
    for follower in followers {
        follower.await.unwrap();
    }
    let after_rebuild = snapshot(&db).await;
    for name in rebuild::names() {
        rebuild::rebuild(&db, name, |_, _| {}).await.unwrap();
    }
    assert_eq!(snapshot(&db).await, after_rebuild);
    let count = |sql: &'static str| {
        let pool = db.pool();
        async move { pool.rows(sql, &[]).await.unwrap()[0][0].clone().unwrap() }
    };
    assert_eq!(
        count("select cast(count(*) as text) from action_request_status").await,
        "80"
    );
    assert_eq!(
        count("select cast(count(*) as text) from audit_search").await,
        "80"
    );
    assert_eq!(
        count("select cast(sum(requests) as text) from client_daily_stats").await,
        "80",
        "every creation counted once"
    );
}

async fn an_unknown_projection_is_refused_by_name(db: Database) {
    let error = rebuild::rebuild(&db, "nope", |_, _| {}).await.unwrap_err();
    assert!(error.to_string().contains("unknown projection \"nope\""));
}

async fn a_reused_idempotency_key_rejects_only_that_append(db: Database) {
    let client = Uuid::now_v7();
    let (phone, key) = enrol(&db, client, "anna").await;
    request(&db, client, (phone, &key), Some("k1"), None, None)
        .await
        .unwrap();
    let head = db.events().head().await.unwrap();
    let error = request(&db, client, (phone, &key), Some("k1"), None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Rejected(_)), "{error:?}");
    assert_eq!(
        db.events().head().await.unwrap(),
        head,
        "nothing was appended"
    );
    let other_client = Uuid::now_v7();
    request(&db, other_client, (phone, &key), Some("k1"), None, None)
        .await
        .unwrap();
}

async fn reads_serve_the_inbox_the_token_and_expiry(db: Database) {
    let reads = ReadModels::new(db.pool());
    let client = Uuid::now_v7();
    let (phone, key) = enrol(&db, client, "anna").await;
    let pending = request(&db, client, (phone, &key), None, None, None)
        .await
        .unwrap();
    // Its token, confirmed after the pending request was made, expires long before it.
    let confirmed = request(&db, client, (phone, &key), None, Some(true), None)
        .await
        .unwrap();
    let rejected = request(&db, client, (phone, &key), None, Some(false), None)
        .await
        .unwrap();
    catch_up(&db).await;
    let now = Utc::now();
    let inbox = reads.inbox(phone, now).await.unwrap();
    assert_eq!(
        inbox.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![pending]
    );
    assert!(reads
        .inbox(phone, now + Duration::hours(1))
        .await
        .unwrap()
        .is_empty());
    let state = reads.action_request(confirmed).await.unwrap().unwrap();
    let by_token = reads
        .by_token_hash(state.token_hash.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_token.id, confirmed);
    // The expiry sweep takes the longest overdue first.
    assert!(reads.due_for_expiry(now, 10).await.unwrap().is_empty());
    let token_due = now + Duration::seconds(Context::DEFAULT_TOKEN_TTL_SECONDS + 1);
    assert_eq!(
        reads.due_for_expiry(token_due, 10).await.unwrap(),
        [confirmed],
        "only the token is due"
    );
    let later = now + Duration::hours(1);
    assert_eq!(reads.due_for_expiry(later, 1).await.unwrap(), [confirmed]);
    assert_eq!(
        reads.due_for_expiry(later, 10).await.unwrap(),
        [confirmed, pending],
        "a rejected request ({rejected}) never expires"
    );
    let devices = reads.devices_of_user(client, "anna").await.unwrap();
    assert_eq!(devices.len(), 1);
    assert!(
        devices[0].last_used_at.is_some(),
        "the confirm touched the device"
    );
    assert!(reads
        .devices_of_user(Uuid::now_v7(), "anna")
        .await
        .unwrap()
        .is_empty());
}

async fn a_decision_on_a_request_with_a_callback_queues_one_message(db: Database) {
    use crate::outbox::{self, Attempt};
    let client = Uuid::now_v7();
    let (phone, key) = enrol(&db, client, "anna").await;
    let hook = Some("http://127.0.0.1:9/hook");
    request(&db, client, (phone, &key), None, None, hook)
        .await
        .unwrap();
    let confirmed = request(&db, client, (phone, &key), None, Some(true), hook)
        .await
        .unwrap();
    request(&db, client, (phone, &key), None, Some(false), None)
        .await
        .unwrap();
    let pool = db.pool();
    let now = Utc::now() + Duration::seconds(1);
    let due = outbox::due(&pool, now, 10).await.unwrap();
    assert_eq!(due.len(), 1, "only the decided request with a callback");
    let item = &due[0];
    assert_eq!((item.request_id, item.client_id), (confirmed, client));
    let body: serde_json::Value = serde_json::from_str(&item.body).unwrap();
    assert_eq!(body["status"], "CONFIRMED");
    assert!(
        outbox::claim(&pool, item.id, now, now + Duration::seconds(60))
            .await
            .unwrap()
    );
    assert!(
        !outbox::claim(&pool, item.id, now, now + Duration::seconds(60))
            .await
            .unwrap()
    );
    assert!(
        outbox::due(&pool, now, 10).await.unwrap().is_empty(),
        "leased"
    );
    let retry_at = now + Duration::seconds(5);
    let failed = Attempt::Failed {
        status_code: Some(503),
        error: "busy".into(),
        retry_at,
    };
    outbox::record(&pool, item, now, &failed).await.unwrap();
    assert!(
        outbox::due(&pool, now, 10).await.unwrap().is_empty(),
        "waits for its retry"
    );
    let again = outbox::due(&pool, retry_at, 10).await.unwrap();
    assert_eq!(again[0].attempts, 1);
    outbox::record(
        &pool,
        &again[0],
        retry_at,
        &Attempt::Delivered { status_code: 204 },
    )
    .await
    .unwrap();
    assert!(outbox::due(&pool, retry_at + Duration::hours(1), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(outbox::backlog(&pool).await.unwrap(), 0);
    let report = rebuild::rebuild(&db, "status", |_, _| {}).await.unwrap();
    assert_eq!(report.rows, 3);
    let rows = pool
        .rows("select cast(count(*) as text) from outbox", &[])
        .await
        .unwrap();
    assert_eq!(
        rows[0][0].as_deref(),
        Some("1"),
        "a rebuild queues nothing again"
    );
}
