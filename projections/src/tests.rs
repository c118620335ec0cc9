//! Tests of the inline read models and their rebuild against a real SQLite store, with events
//! decided by the domain.

use std::sync::Arc;

use chrono::{Duration, Utc};
use countersign_domain::action_request::{self, Command, Context, Create};
use countersign_domain::approval::{approval_message, Decision};
use countersign_domain::device::{self, DeviceKind, Enrol};
use countersign_domain::values::{ActionName, Method, PublicKey, TtlSeconds, UserId};
use countersign_store::sqlite::{SqliteOptions, SqliteStore};
use countersign_store::{Actor, EventStore, ExpectedVersion, Metadata, NewEvent, StoreError};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;
use uuid::Uuid;

use crate::inline::InlineProjections;
use crate::read::ReadModels;
use crate::rebuild;

const KEY: &[u8] = b"projection test key";

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let store = SqliteStore::open(&url, SqliteOptions::default(), Arc::new(InlineProjections))
        .await
        .unwrap();
    (dir, store)
}

fn metadata() -> Metadata {
    Metadata::from_actor(Actor::system())
}

async fn append<E>(
    store: &SqliteStore,
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
    Ok(store.append(stream, expected, batch).await?.stream_version)
}

/// Enrols a device for `uid` and returns its id and signing key.
async fn enrol(store: &SqliteStore, client: Uuid, uid: &str) -> (Uuid, SigningKey) {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let id = Uuid::now_v7();
    let command = device::Command::Enrol(Enrol {
        id,
        client_id: client,
        uid: UserId::parse(uid).unwrap(),
        kind: DeviceKind::Push,
        name: "phone".into(),
        public_key: Some(PublicKey::from_verifying_key(key.verifying_key())),
        token_hash: format!("{id}-token-hash"),
    });
    let events = device::decide(None, command, &device::Context { now: Utc::now() }).unwrap();
    append(store, &device::stream_id(id), 0, &events, |e| {
        (e.event_type(), e.schema_version(), e.data())
    })
    .await
    .unwrap();
    (id, key)
}

/// Creates a request addressed to `device`, then applies `steps` (true: confirm, false: reject).
async fn request(
    store: &SqliteStore,
    client: Uuid,
    device: (Uuid, &SigningKey),
    key: Option<&str>,
    confirm: Option<bool>,
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
        ttl: TtlSeconds::default(),
        nonce: "n".into(),
        idempotency_key: key.map(str::to_owned),
        request_hash: Some("h".into()),
        callback_url: None,
    };
    let ctx = Context::new(Utc::now(), KEY);
    let created = action_request::decide(None, Command::Create(create), &ctx).unwrap();
    let encode = |e: &action_request::Event| (e.event_type(), e.schema_version(), e.data());
    let stream = action_request::stream_id(id);
    append(store, &stream, 0, &created, encode).await?;
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
        append(store, &stream, 1, &events, encode).await?;
    }
    Ok(id)
}

/// Every row of the inline read models, as JSON text, in a fixed order.
async fn snapshot(store: &SqliteStore) -> Vec<String> {
    let tables = [
        (
            "action_request_status",
            "id, client_id, uid, action, status, version, expires_at, token_expires_at, \
             token_hash, idempotency_key, view, updated_at",
        ),
        ("action_request_devices", "device_id, request_id"),
        (
            "devices",
            "id, client_id, uid, kind, name, public_key, token_hash, status, enrolled_at, \
             revoked_at, last_used_at, version",
        ),
    ];
    let mut out = Vec::new();
    for (table, columns) in tables {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "select '{table}' || json_array({columns}) from {table} order by 1"
        ))
        .fetch_all(store.pool())
        .await
        .unwrap();
        out.extend(rows.into_iter().map(|(row,)| row));
    }
    out
}

async fn populate(store: &SqliteStore, client: Uuid, n: usize) {
    let (phone, key) = enrol(store, client, "anna").await;
    for i in 0..n {
        let outcome = [None, Some(true), Some(false)][i % 3];
        request(store, client, (phone, &key), None, outcome)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_rebuilt_status_model_equals_the_live_one() {
    let (_dir, store) = open().await;
    let client = Uuid::now_v7();
    populate(&store, client, 30).await;
    let live = snapshot(&store).await;
    assert!(live.len() > 60, "the fixture fills the tables");
    // Damage the live tables: only a replay of the log can restore them.
    for damage in [
        "delete from action_request_status where id in (select id from action_request_status limit 3)",
        "update action_request_status set status = 'BOGUS', view = '{}'",
        "delete from action_request_devices",
        "update devices set last_used_at = null, name = 'x'",
    ] {
        sqlx::query(damage).execute(store.pool()).await.unwrap();
    }
    assert_ne!(snapshot(&store).await, live);
    let mut calls = 0;
    let report = rebuild::rebuild(&store, "status", |_, _| calls += 1)
        .await
        .unwrap();
    assert_eq!(report.rows, 30);
    assert!(calls > 0);
    assert_ne!(snapshot(&store).await, live, "devices are still damaged");
    let report = rebuild::rebuild(&store, "devices", |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.rows, 1);
    assert_eq!(snapshot(&store).await, live);
}

#[tokio::test]
async fn a_rebuild_while_commands_append_misses_nothing() {
    let (_dir, store) = open().await;
    let client = Uuid::now_v7();
    populate(&store, client, 20).await;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { populate(&store, client, 60).await })
    };
    rebuild::rebuild(&store, "status", |_, _| {}).await.unwrap();
    writer.await.unwrap();
    let after_rebuild = snapshot(&store).await;
    rebuild::rebuild(&store, "status", |_, _| {}).await.unwrap();
    assert_eq!(snapshot(&store).await, after_rebuild);
    let rows: (i64,) = sqlx::query_as("select count(*) from action_request_status")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows.0, 80);
}

#[tokio::test]
async fn an_unknown_projection_is_refused_by_name() {
    let (_dir, store) = open().await;
    let error = rebuild::rebuild(&store, "nope", |_, _| {})
        .await
        .unwrap_err();
    assert!(error.to_string().contains("unknown projection \"nope\""));
}

#[tokio::test]
async fn a_reused_idempotency_key_rejects_only_that_append() {
    let (_dir, store) = open().await;
    let client = Uuid::now_v7();
    let (phone, key) = enrol(&store, client, "anna").await;
    request(&store, client, (phone, &key), Some("k1"), None)
        .await
        .unwrap();
    let head = store.head().await.unwrap();
    let error = request(&store, client, (phone, &key), Some("k1"), None)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Rejected(_)), "{error:?}");
    assert_eq!(store.head().await.unwrap(), head, "nothing was appended");
    let other_client = Uuid::now_v7();
    request(&store, other_client, (phone, &key), Some("k1"), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn reads_serve_the_inbox_the_token_and_expiry() {
    let (_dir, store) = open().await;
    let reads = ReadModels::new(crate::sql::Pool::Sqlite(store.pool().clone()));
    let client = Uuid::now_v7();
    let (phone, key) = enrol(&store, client, "anna").await;
    let pending = request(&store, client, (phone, &key), None, None)
        .await
        .unwrap();
    let confirmed = request(&store, client, (phone, &key), None, Some(true))
        .await
        .unwrap();
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
    let due = reads
        .due_for_expiry(now + Duration::hours(1), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    assert!(reads.due_for_expiry(now, 10).await.unwrap().is_empty());
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
