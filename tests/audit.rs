//! What auditors read, over real HTTP: a request's history with its links and its state at any
//! instant, signed tree heads with inclusion and consistency proofs, the global log page by page,
//! the search, the verification of the whole log, evidence bundles checked offline by the real
//! binary, the record of the auditors' own reads, and the absence of every secret from the log,
//! the database file and an export.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use common::device::Phone;
use common::process::binary;
use common::receiver::Receiver;
use common::{assert_problem, create_body, spawn_app, spawn_app_with, transfer, Auth, Reply};
use common::{TestApp, ACTION};
use countersign_api::channels::{Channel, ChannelsConfig};
use countersign_api::credentials::Role;
use countersign_audit::head::{parse_public_key, SignedTreeHead};
use countersign_audit::proof::{verify_consistency, verify_inclusion};
use countersign_audit::{canonical_bytes, chain_hash, leaf_hash, Digest, EventFields};
use countersign_domain::codes::{base32_decode, ocra, OcraInput, OcraSuite};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Helpers.

/// An auditor credential of `app`.
struct Auditor {
    id: Uuid,
    secret: String,
}

async fn auditor(app: &TestApp) -> Auditor {
    let (id, secret) = app.credential(Role::Auditor, "auditor", &[]).await;
    Auditor { id, secret }
}

impl Auditor {
    /// A GET of `path` as this auditor.
    async fn get(&self, app: &TestApp, path: &str) -> Reply {
        app.call(Method::GET, path, Auth::Basic(&self.id, &self.secret), None)
            .await
    }

    /// A GET of `path` that must answer 200; its body.
    async fn read(&self, app: &TestApp, path: &str) -> Value {
        let reply = self.get(app, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        reply.body
    }

    /// The raw bytes of a GET of `path`, which must answer 200.
    async fn bytes(&self, app: &TestApp, path: &str) -> Vec<u8> {
        let response = app
            .http
            .get(format!("{}{path}", app.base))
            .basic_auth(self.id, Some(&self.secret))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.bytes().await.unwrap().to_vec()
    }

    /// The signed tree head now, checked with the served public key.
    async fn tree_head(&self, app: &TestApp) -> SignedTreeHead {
        let body = self.read(app, "/v1/audit/tree-head").await;
        let head: SignedTreeHead = serde_json::from_value(body).expect("a signed tree head");
        let key = self.read(app, "/v1/audit/public-key").await;
        assert_eq!(key["algorithm"], "Ed25519");
        let key = parse_public_key(key["public_key"].as_str().unwrap()).expect("a public key");
        head.verify(&key)
            .expect("the head is signed with the audit key");
        head
    }
}

fn consume_body(token: &str, payload: &Value) -> Value {
    json!({"token": token, "action": ACTION, "payload": payload})
}

/// Creates a push request for `uid`, confirms it on `phone`, polls the token and consumes it;
/// returns the request id and the token.
async fn consumed_request(
    app: &TestApp,
    phone: &Phone,
    uid: &str,
    amount: &str,
) -> (String, String) {
    let payload = transfer(uid, amount);
    let (view, token) = app.confirmed_request(phone, uid, payload.clone()).await;
    assert_eq!(view["status"], "CONFIRMED");
    let consumed = app
        .client(
            Method::POST,
            "/v1/tokens/consume",
            Some(&consume_body(&token, &payload)),
        )
        .await;
    assert_eq!(consumed.status, StatusCode::OK, "{}", consumed.body);
    (view["id"].as_str().unwrap().to_owned(), token)
}

/// An RFC 3339 time as the API writes it.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(text: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn is_digest_text(value: &Value) -> bool {
    value.as_str().is_some_and(|t| {
        t.len() == 64
            && t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn digest(value: &Value) -> Digest {
    Digest::from_hex(value.as_str().expect("a digest")).expect("64 lowercase hex digits")
}

/// The canonical bytes of an event as the audit API shows it (docs/AUDIT.md).
fn canonical(event: &Value) -> Vec<u8> {
    canonical_bytes(&EventFields {
        position: event["position"].as_u64().unwrap(),
        stream_id: event["stream_id"].as_str().unwrap(),
        stream_version: event["stream_version"].as_u64().unwrap(),
        event_id: event["event_id"].as_str().unwrap(),
        event_type: event["type"].as_str().unwrap(),
        schema_version: event["schema_version"].as_u64().unwrap() as u32,
        data: &event["data"],
        metadata: &event["metadata"],
        recorded_at: event["recorded_at"].as_str().unwrap(),
    })
}

/// Every event of the log through `/v1/audit/events`. Each page read is itself recorded, so the
/// log always has one more event than the last page: it ends at the first short page.
async fn whole_log(app: &TestApp, auditor: &Auditor) -> Vec<Value> {
    const PAGE: usize = 1000;
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = auditor
            .read(app, &format!("/v1/audit/events?after={after}&limit={PAGE}"))
            .await;
        let batch = page["events"].as_array().unwrap().clone();
        let full = batch.len() == PAGE;
        if let Some(last) = batch.last() {
            assert_eq!(page["next_after"], last["position"], "{page}");
            after = last["position"].as_u64().unwrap();
        }
        events.extend(batch);
        if !full {
            return events;
        }
    }
}

fn types(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------------
// History and replay.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_lists_the_events_with_their_links_and_replays_any_instant() {
    let app = spawn_app().await;
    let auditor = auditor(&app).await;
    let phone = app.enrol_phone("anna").await;
    let (id, _) = consumed_request(&app, &phone, "anna", "234.00").await;

    let history = auditor
        .read(&app, &format!("/v1/audit/action-requests/{id}"))
        .await;
    assert_eq!(history["id"], id.as_str());
    assert!(history.get("at").is_none(), "{history}");
    assert_eq!(history["state"]["status"], "CONSUMED", "{history}");
    assert_eq!(history["state"]["id"], id.as_str());
    let events = history["events"].as_array().unwrap();
    let kinds = types(&history["events"]);
    assert_eq!(kinds, app.event_types(&id).await, "every event, in order");
    assert_eq!(kinds.first().unwrap(), "Created");
    assert!(kinds.contains(&"Confirmed".to_owned()), "{kinds:?}");
    assert_eq!(kinds.last().unwrap(), "TokenConsumed");
    let mut last_position = 0;
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["stream_id"], format!("action-request-{id}"));
        assert_eq!(event["stream_version"], n as u64 + 1);
        let position = event["position"].as_u64().unwrap();
        assert!(position > last_position, "positions increase");
        last_position = position;
        assert!(is_digest_text(&event["hash"]), "{event}");
        assert!(is_digest_text(&event["prev_hash"]), "{event}");
        assert_eq!(
            digest(&event["hash"]),
            chain_hash(&digest(&event["prev_hash"]), &canonical(event)),
            "the hash covers the event as shown: {event}"
        );
        assert!(event["event_id"].as_str().unwrap().parse::<Uuid>().is_ok());
        assert!(event["metadata"]["actor"]["kind"].is_string(), "{event}");
        assert!(event["recorded_at"].as_str().unwrap().ends_with('Z'));
    }

    // Between Created and Confirmed: pending, and only the events recorded up to then.
    let at_of = |kind: &str| {
        let event = events.iter().find(|e| e["type"] == kind).unwrap();
        parse_time(&event["recorded_at"])
    };
    let created = at_of("Created");
    let confirmed = at_of("Confirmed");
    assert!(created < confirmed);
    let between = created + (confirmed - created) / 2;
    let then = auditor
        .read(
            &app,
            &format!("/v1/audit/action-requests/{id}?at={}", rfc3339(between)),
        )
        .await;
    assert_eq!(then["at"], rfc3339(between));
    assert_eq!(then["state"]["status"], "PENDING", "{then}");
    let expected: Vec<&Value> = events
        .iter()
        .filter(|e| parse_time(&e["recorded_at"]) <= between)
        .collect();
    let shown: Vec<&Value> = then["events"].as_array().unwrap().iter().collect();
    assert_eq!(shown, expected);
    assert_eq!(shown[0]["type"], "Created");
    assert!(shown.iter().all(|e| e["type"] != "Confirmed"));

    // At the instant of Confirmed itself, it is confirmed.
    let at_confirmed = auditor
        .read(
            &app,
            &format!("/v1/audit/action-requests/{id}?at={}", rfc3339(confirmed)),
        )
        .await;
    assert_eq!(
        at_confirmed["state"]["status"], "CONFIRMED",
        "{at_confirmed}"
    );

    // Before the request existed: no state, no events.
    let before = created - chrono::Duration::seconds(1);
    let earlier = auditor
        .read(
            &app,
            &format!("/v1/audit/action-requests/{id}?at={}", rfc3339(before)),
        )
        .await;
    assert!(earlier["state"].is_null(), "{earlier}");
    assert_eq!(earlier["events"], json!([]));
    assert_eq!(earlier["id"], id.as_str());

    // A time that is not one, an unknown field, an unknown request.
    let path = format!("/v1/audit/action-requests/{id}?at=yesterday");
    assert_problem(&auditor.get(&app, &path).await, 400, "invalid_request");
    let path = format!("/v1/audit/action-requests/{id}?when=now");
    assert_problem(&auditor.get(&app, &path).await, 400, "invalid_request");
    let path = format!("/v1/audit/action-requests/{}", Uuid::now_v7());
    assert_problem(&auditor.get(&app, &path).await, 404, "not_found");
}

// ---------------------------------------------------------------------------------------------
// Tree heads and proofs.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_tree_heads_prove_inclusion_and_consistency() {
    let app = spawn_app().await;
    let auditor = auditor(&app).await;
    let phone = app.enrol_phone("anna").await;
    consumed_request(&app, &phone, "anna", "1.00").await;
    let older = auditor.tree_head(&app).await;
    assert!(older.tree_size >= 4, "{older:?}");
    assert!(older.timestamp.ends_with('Z'));
    let (id, _) = consumed_request(&app, &phone, "anna", "2.00").await;
    let newer = auditor.tree_head(&app).await;
    assert!(newer.tree_size > older.tree_size);

    // Every event of the request is in the newer tree, under the leaf hash of its content.
    let history = auditor
        .read(&app, &format!("/v1/audit/action-requests/{id}"))
        .await;
    let events = history["events"].as_array().unwrap();
    assert!(events.len() >= 3);
    for event in events {
        let position = event["position"].as_u64().unwrap();
        let path = format!(
            "/v1/audit/proofs/inclusion?position={position}&tree_size={}",
            newer.tree_size
        );
        let proof = auditor.read(&app, &path).await;
        assert_eq!(proof["position"], position);
        assert_eq!(proof["leaf_index"], position - 1);
        assert_eq!(proof["tree_size"], newer.tree_size);
        let leaf = digest(&proof["leaf_hash"]);
        assert_eq!(leaf, leaf_hash(&canonical(event)), "{event}");
        let audit_path: Vec<Digest> = proof["audit_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(digest)
            .collect();
        verify_inclusion(
            position - 1,
            newer.tree_size,
            &leaf,
            &audit_path,
            &newer.root_hash,
        )
        .unwrap_or_else(|e| panic!("inclusion of {position}: {e}"));
        // The same path does not prove another leaf.
        let mut other = leaf;
        other.0[0] ^= 1;
        assert!(verify_inclusion(
            position - 1,
            newer.tree_size,
            &other,
            &audit_path,
            &newer.root_hash
        )
        .is_err());
    }

    // The newer tree extends the older one.
    let path = format!(
        "/v1/audit/proofs/consistency?first={}&second={}",
        older.tree_size, newer.tree_size
    );
    let proof = auditor.read(&app, &path).await;
    assert_eq!(proof["first"], older.tree_size);
    assert_eq!(proof["second"], newer.tree_size);
    let consistency: Vec<Digest> = proof["consistency_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(digest)
        .collect();
    verify_consistency(
        older.tree_size,
        newer.tree_size,
        &older.root_hash,
        &newer.root_hash,
        &consistency,
    )
    .expect("the newer tree extends the older one");
    let mut forged = older.root_hash;
    forged.0[31] ^= 1;
    assert!(verify_consistency(
        older.tree_size,
        newer.tree_size,
        &forged,
        &newer.root_hash,
        &consistency
    )
    .is_err());

    // Questions that do not fit the log.
    let beyond = newer.tree_size + 1000;
    let path = format!("/v1/audit/proofs/inclusion?position={beyond}&tree_size={beyond}");
    assert_problem(&auditor.get(&app, &path).await, 400, "invalid_request");
    let path = format!(
        "/v1/audit/proofs/inclusion?position={}&tree_size=1",
        newer.tree_size
    );
    assert_problem(&auditor.get(&app, &path).await, 400, "invalid_request");
    let path = format!(
        "/v1/audit/proofs/consistency?first={}&second={}",
        newer.tree_size, older.tree_size
    );
    assert_problem(&auditor.get(&app, &path).await, 400, "invalid_request");
    for query in [
        "inclusion?position=0".to_owned(),
        "inclusion?position=0&tree_size=1".to_owned(),
        format!("inclusion?position=1&tree_size={beyond}"),
        "consistency?first=0".to_owned(),
        format!("consistency?first=1&second={beyond}"),
    ] {
        let reply = auditor
            .get(&app, &format!("/v1/audit/proofs/{query}"))
            .await;
        assert_problem(&reply, 400, "invalid_request");
    }
}

// ---------------------------------------------------------------------------------------------
// The global log.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_log_pages_by_position_with_its_links() {
    let app = spawn_app().await;
    let auditor = auditor(&app).await;
    let phone = app.enrol_phone("anna").await;
    consumed_request(&app, &phone, "anna", "3.00").await;

    let first = auditor.read(&app, "/v1/audit/events?after=0&limit=2").await;
    let positions = |page: &Value| -> Vec<u64> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(positions(&first), [1, 2]);
    assert_eq!(first["next_after"], 2);
    let second = auditor.read(&app, "/v1/audit/events?after=2&limit=2").await;
    assert_eq!(positions(&second), [3, 4]);
    assert_eq!(second["next_after"], 4);
    let past = auditor
        .read(&app, "/v1/audit/events?after=1000000&limit=5")
        .await;
    assert_eq!(past["events"], json!([]));
    assert!(past["next_after"].is_null());
    for bad in [
        "limit=0",
        "limit=1001",
        "after=-1",
        "after=x",
        "limit=2&extra=1",
    ] {
        let reply = auditor.get(&app, &format!("/v1/audit/events?{bad}")).await;
        assert_problem(&reply, 400, "invalid_request");
    }

    // The whole log links up, and each hash covers the event as shown.
    let log = whole_log(&app, &auditor).await;
    let mut prev = Digest::ZERO;
    for (n, event) in log.iter().enumerate() {
        assert_eq!(event["position"], n as u64 + 1);
        assert_eq!(digest(&event["prev_hash"]), prev, "{event}");
        let hash = digest(&event["hash"]);
        assert_eq!(hash, chain_hash(&prev, &canonical(event)), "{event}");
        prev = hash;
    }
}

// ---------------------------------------------------------------------------------------------
// Search.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_filters_by_user_status_client_and_period_and_pages() {
    let app = spawn_app().await;
    let auditor = auditor(&app).await;
    let anna = app.enrol_phone("anna").await;
    app.enrol_phone("bob").await;
    let (consumed, _) = consumed_request(&app, &anna, "anna", "4.00").await;
    let pending = app.create_request("bob", transfer("bob", "5.00")).await;
    let pending = pending["id"].as_str().unwrap().to_owned();
    let (shop, shop_secret) = app
        .credential(Role::Client, "shop", &["bank:transfers:*"])
        .await;
    let shop_auth = Auth::Basic(&shop, &shop_secret);
    app.enrol_phone_as(shop_auth, "carl").await;
    let body = create_body("carl", transfer("carl", "6.00"));
    let by_shop = app
        .call(Method::POST, "/v1/action-requests", shop_auth, Some(&body))
        .await;
    assert_eq!(by_shop.status, StatusCode::CREATED, "{}", by_shop.body);
    let by_shop = by_shop.body["id"].as_str().unwrap().to_owned();
    let all = [consumed.clone(), pending.clone(), by_shop.clone()];

    let ids = |body: &Value| -> Vec<String> {
        body["action_requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let everything = auditor.read(&app, "/v1/audit/action-requests").await;
    assert_eq!(ids(&everything), all, "in creation order");
    assert!(everything["next_cursor"].is_null());
    let hits = everything["action_requests"].as_array().unwrap();
    assert_eq!(hits[0]["uid"], "anna");
    assert_eq!(hits[0]["status"], "CONSUMED");
    assert_eq!(hits[0]["action"], ACTION);
    assert_eq!(hits[0]["client_id"], app.client_id.to_string());
    assert_eq!(hits[1]["status"], "PENDING");
    assert_eq!(hits[2]["client_id"], shop.to_string());

    let search = |query: String| {
        let auditor = &auditor;
        let app = &app;
        async move {
            let body = auditor
                .read(app, &format!("/v1/audit/action-requests?{query}"))
                .await;
            ids(&body)
        }
    };
    assert_eq!(search("uid=anna".into()).await, [consumed.as_str()]);
    assert_eq!(search("uid=bob".into()).await, [pending.as_str()]);
    assert_eq!(search("uid=nobody".into()).await, Vec::<String>::new());
    assert_eq!(search("status=CONSUMED".into()).await, [consumed.as_str()]);
    assert_eq!(
        search("status=PENDING".into()).await,
        [pending.as_str(), by_shop.as_str()]
    );
    assert_eq!(search(format!("client={shop}")).await, [by_shop.as_str()]);
    assert_eq!(
        search(format!("client={}", app.client_id)).await,
        [consumed.as_str(), pending.as_str()]
    );
    assert_eq!(
        search(format!("client={shop}&status=CONSUMED")).await,
        Vec::<String>::new()
    );

    // A creation period: from is inclusive, to exclusive.
    let created = |n: usize| hits[n]["created_at"].as_str().unwrap().to_owned();
    assert_eq!(
        search(format!("from={}&to={}", created(1), created(2))).await,
        [pending.as_str()]
    );
    assert_eq!(
        search(format!("from={}", created(1))).await,
        [pending.as_str(), by_shop.as_str()]
    );
    assert_eq!(
        search(format!("to={}", created(1))).await,
        [consumed.as_str()]
    );

    // One at a time, with the cursor.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let query = match &cursor {
            None => "limit=1".to_owned(),
            Some(cursor) => format!("limit=1&cursor={cursor}"),
        };
        let page = auditor
            .read(&app, &format!("/v1/audit/action-requests?{query}"))
            .await;
        let found = ids(&page);
        assert!(found.len() <= 1, "{page}");
        paged.extend(found);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all);

    for bad in [
        "status=DONE",
        "status=pending",
        "client=not-a-uuid",
        "from=yesterday",
        "limit=0",
        "limit=1001",
        "cursor=nonsense",
    ] {
        let reply = auditor
            .get(&app, &format!("/v1/audit/action-requests?{bad}"))
            .await;
        assert_problem(&reply, 400, "invalid_request");
    }
}

// ---------------------------------------------------------------------------------------------
// Verification.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_log_verifies_up_to_its_head() {
    let app = spawn_app().await;
    let auditor = auditor(&app).await;
    let phone = app.enrol_phone("anna").await;
    consumed_request(&app, &phone, "anna", "7.00").await;
    consumed_request(&app, &phone, "anna", "8.00").await;
    let head = app.head().await;
    let report = auditor.read(&app, "/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["verified_events"], head, "{report}");
    assert_eq!(report["head_position"], head, "{report}");
    assert_eq!(report["tree_size"], head, "{report}");
    assert!(report["first_bad_position"].is_null(), "{report}");
    assert!(report["reason"].is_null(), "{report}");
    let last = app.state.store.read_all(head - 1, 1).await.unwrap();
    assert_eq!(digest(&report["head_hash"]), last[0].hash);
    assert!(is_digest_text(&report["root_hash"]));
    // Its own read was recorded after the answer: the log grew by one, and still holds.
    assert_eq!(app.head().await, head + 1);
    let again = auditor.read(&app, "/v1/audit/verify").await;
    assert_eq!(again["ok"], true);
    assert_eq!(again["verified_events"], head + 1);
}

// ---------------------------------------------------------------------------------------------
// Evidence bundles, checked offline by the real binary.

/// `countersign audit verify-evidence FILE --public-key KEY` (a base64url key may start with
/// `-`; the command line takes it as the key all the same).
fn verify_evidence(dir: &Path, file: &Path, key: &str) -> Output {
    binary()
        .current_dir(dir)
        .args(["audit", "verify-evidence"])
        .arg(file)
        .args(["--public-key", key])
        .output()
        .expect("the CLI runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evidence_bundle_verifies_offline_and_any_altered_byte_is_refused() {
    let app = spawn_app().await;
    let auditor = auditor(&app).await;
    let phone = app.enrol_phone("anna").await;
    let (id, _) = consumed_request(&app, &phone, "anna", "9.00").await;
    let bundle = auditor
        .bytes(&app, &format!("/v1/audit/action-requests/{id}/evidence"))
        .await;
    let parsed: Value = serde_json::from_slice(&bundle).expect("JSON");
    assert_eq!(parsed["format"], "countersign-evidence/1");
    assert_eq!(parsed["action_request_id"], id.as_str());
    let kinds: Vec<&str> = parsed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, app.event_types(&id).await);
    let unknown = format!("/v1/audit/action-requests/{}/evidence", Uuid::now_v7());
    assert_problem(&auditor.get(&app, &unknown).await, 404, "not_found");

    let key = auditor.read(&app, "/v1/audit/public-key").await;
    let key = key["public_key"].as_str().unwrap().to_owned();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("evidence.json");
    std::fs::write(&file, &bundle).unwrap();
    let key_file = work.path().join("audit.pub");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();

    let out = verify_evidence(work.path(), &file, &key);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("evidence holds"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains(&id), "{}", text(&out.stdout));
    let out = verify_evidence(work.path(), &file, key_file.to_str().unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Another server's key refuses it.
    let other = spawn_app().await;
    let other_key = auditor_key(&other).await;
    assert_ne!(other_key, key);
    let out = verify_evidence(work.path(), &file, &other_key);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));

    // Any byte changed, anywhere in the bundle, is refused.
    let altered = work.path().join("altered.json");
    let last = bundle.len() - 1;
    for n in 0..15 {
        let offset = n * last / 14;
        let mut bytes = bundle.clone();
        bytes[offset] ^= 0x01;
        std::fs::write(&altered, &bytes).unwrap();
        let out = verify_evidence(work.path(), &altered, &key);
        assert_eq!(
            out.status.code(),
            Some(1),
            "byte {offset} ({:?} → {:?}) altered: {}",
            bundle[offset] as char,
            bytes[offset] as char,
            text(&out.stdout)
        );
        assert!(
            text(&out.stderr).contains("evidence does not hold"),
            "{}",
            text(&out.stderr)
        );
    }
}

async fn auditor_key(app: &TestApp) -> String {
    let auditor = auditor(app).await;
    let key = auditor.read(app, "/v1/audit/public-key").await;
    key["public_key"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Audit of the auditors.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_reads_are_recorded_in_streams_of_their_own() {
    let app = spawn_app().await;
    let auditor = auditor(&app).await;
    let phone = app.enrol_phone("anna").await;
    let (id, _) = consumed_request(&app, &phone, "anna", "10.00").await;
    let before = app.event_types(&id).await;
    let head = app.head().await;

    let history_path = format!("/v1/audit/action-requests/{id}");
    let evidence_path = format!("{history_path}/evidence");
    let reads = [
        history_path.clone(),
        format!("{history_path}?at=2000-01-01T00:00:00Z"),
        evidence_path.clone(),
        "/v1/audit/tree-head".to_owned(),
        "/v1/audit/events?after=0&limit=3".to_owned(),
    ];
    for path in &reads {
        auditor.read(&app, path).await;
    }
    let history = auditor.read(&app, &history_path).await;
    assert_eq!(
        types(&history["events"]),
        before,
        "the history is unchanged"
    );
    assert_eq!(app.event_types(&id).await, before);
    assert_eq!(app.head().await, head + reads.len() as u64 + 1);

    // A failed read records nothing; other roles and strangers are refused and leave no trace.
    let head = app.head().await;
    let reply = auditor.get(&app, "/v1/audit/events?limit=0").await;
    assert_problem(&reply, 400, "invalid_request");
    let reply = auditor
        .get(
            &app,
            &format!("/v1/audit/action-requests/{}", Uuid::now_v7()),
        )
        .await;
    assert_problem(&reply, 404, "not_found");
    for path in [
        history_path.as_str(),
        "/v1/audit/events",
        "/v1/audit/verify",
        "/v1/audit/tree-head",
    ] {
        let as_client = app.client(Method::GET, path, None).await;
        assert_problem(&as_client, 403, "forbidden");
        let stranger = app.call(Method::GET, path, Auth::None, None).await;
        assert_problem(&stranger, 401, "unauthorized");
        let wrong = app
            .call(
                Method::GET,
                path,
                Auth::Basic(&auditor.id, "css_wrong"),
                None,
            )
            .await;
        assert_problem(&wrong, 401, "unauthorized");
    }
    assert_eq!(app.head().await, head, "nothing recorded");

    // The reads are in the auditor's stream, naming what was read and who read it.
    let log = whole_log(&app, &auditor).await;
    let stream = format!("auditor-{}", auditor.id);
    let recorded: Vec<&Value> = log.iter().filter(|e| e["stream_id"] == stream).collect();
    // One event per successful read, then those of `whole_log`'s own pages.
    assert!(recorded.len() > reads.len(), "{}", recorded.len());
    let (recorded, paging) = recorded.split_at(reads.len() + 1);
    for event in paging {
        assert_eq!(event["data"]["path"], "/v1/audit/events", "{event}");
        assert_eq!(event["data"]["query"], "after=0&limit=1000", "{event}");
    }
    assert!(
        log.iter()
            .filter(|e| e["type"] == "AuditRead")
            .all(|e| e["stream_id"] == stream),
        "only this auditor read"
    );
    let mut expected: Vec<(String, Value)> = reads
        .iter()
        .map(|r| match r.split_once('?') {
            Some((path, query)) => (path.to_owned(), json!(query)),
            None => (r.clone(), Value::Null),
        })
        .collect();
    expected.push((history_path.clone(), Value::Null));
    for ((path, query), event) in expected.iter().zip(recorded) {
        assert_eq!(event["type"], "AuditRead", "{event}");
        assert_eq!(event["data"]["method"], "GET", "{event}");
        assert_eq!(&event["data"]["path"], path, "{event}");
        assert_eq!(&event["data"]["query"], query, "{event}");
        assert_eq!(event["data"]["status"], 200, "{event}");
        let actor = &event["metadata"]["actor"];
        assert_eq!(
            actor,
            &json!({"kind": "auditor", "id": auditor.id.to_string()}),
            "{event}"
        );
    }
    let versions: Vec<u64> = recorded
        .iter()
        .map(|e| e["stream_version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=recorded.len() as u64).collect::<Vec<_>>());
    // None of them is in the request's history.
    assert!(recorded
        .iter()
        .all(|e| e["stream_id"] != format!("action-request-{id}")));
}

// ---------------------------------------------------------------------------------------------
// No secret in the log, the database file or an export.

/// The forms a secret may take: itself, and for `xxx_<base64url>` tokens and raw keys, the
/// encodings of its bytes.
fn forms(secret: &str, bytes: Option<&[u8]>) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    let decoded = match bytes {
        Some(bytes) => Some(bytes.to_vec()),
        None => secret
            .split_once('_')
            .and_then(|(_, rest)| URL_SAFE_NO_PAD.decode(rest).ok().map(|b| (rest, b)))
            .map(|(rest, b)| {
                out.push(rest.to_owned());
                b
            }),
    };
    if let Some(bytes) = decoded {
        assert!(bytes.len() >= 16, "{secret}");
        out.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
        out.push(bytes.iter().map(|b| format!("{b:02X}")).collect());
        out.push(URL_SAFE_NO_PAD.encode(&bytes));
        out.push(STANDARD.encode(&bytes));
    }
    out
}

fn assert_absent(haystack: &[u8], secrets: &[(String, Vec<String>)], what: &str) {
    for (name, forms) in secrets {
        for form in forms {
            assert!(
                !haystack
                    .windows(form.len())
                    .any(|window| window == form.as_bytes()),
                "{name} ({form}) is in {what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_the_database_file_or_an_export() {
    const GATEWAY_SECRET: &str = "sms gateway secret, 32+ chars";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let gateway = Receiver::default();
    tokio::spawn(gateway.clone().serve(listener));
    let app = spawn_app_with(|c| {
        c.delivery_backoff = Duration::from_millis(100);
        c.delivery_interval = Duration::from_millis(100);
        c.channels = ChannelsConfig {
            channels: [(
                "sms".to_owned(),
                Channel::Webhook {
                    url: hook,
                    secret: GATEWAY_SECRET.into(),
                },
            )]
            .into(),
        };
    })
    .await;
    let auditor = auditor(&app).await;
    let mut secrets: Vec<(String, Vec<String>)> = vec![
        ("the client secret".into(), forms(&app.secret, None)),
        ("the auditor secret".into(), forms(&auditor.secret, None)),
    ];

    // Push: the device token, and a consumption token shown in the CONFIRMED view.
    let phone = app.enrol_phone("anna").await;
    assert!(phone.token.starts_with("cdt_"));
    secrets.push(("a device token".into(), forms(&phone.token, None)));
    let (_, token) = consumed_request(&app, &phone, "anna", "11.00").await;
    assert!(token.starts_with("cst_"));
    secrets.push(("a consumption token".into(), forms(&token, None)));

    // OCRA: the secret shown once at enrolment, its bearer token, and a code.
    let enrolled = app
        .client(
            Method::POST,
            "/v1/users/anna/devices",
            Some(&json!({"kind": "ocra", "name": "Card reader"})),
        )
        .await;
    assert_eq!(enrolled.status, StatusCode::CREATED, "{}", enrolled.body);
    let ocra_secret = enrolled.body["ocra"]["secret"].as_str().unwrap().to_owned();
    let ocra_key = base32_decode(&ocra_secret).unwrap();
    let suite = OcraSuite::parse(enrolled.body["ocra"]["suite"].as_str().unwrap()).unwrap();
    secrets.push((
        "an OCRA secret".into(),
        forms(&ocra_secret, Some(&ocra_key)),
    ));
    let ocra_bearer = enrolled.body["device_token"].as_str().unwrap().to_owned();
    secrets.push(("an OCRA device token".into(), forms(&ocra_bearer, None)));
    let payload = transfer("anna", "12.00");
    let mut body = create_body("anna", payload.clone());
    body["method"] = "ocra".into();
    let created = app
        .client(Method::POST, "/v1/action-requests", Some(&body))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let ocra_id = created.body["id"].as_str().unwrap().to_owned();
    let challenge = created.body["challenge"].as_str().unwrap().to_owned();
    let step = suite.time_step_seconds().unwrap() as i64;
    let code = ocra(
        &suite,
        &ocra_key,
        &OcraInput {
            question: &challenge,
            timestamp: Some((Utc::now().timestamp() / step) as u64),
            ..OcraInput::default()
        },
    )
    .unwrap();
    let verified = app
        .client(
            Method::POST,
            &format!("/v1/action-requests/{ocra_id}/verify"),
            Some(&json!({"otp": code})),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    let ocra_token = verified.body["token"].as_str().unwrap().to_owned();
    let consumed = app
        .client(
            Method::POST,
            "/v1/tokens/consume",
            Some(&consume_body(&ocra_token, &payload)),
        )
        .await;
    assert_eq!(consumed.status, StatusCode::OK, "{}", consumed.body);
    secrets.push(("an OCRA code".into(), vec![code]));
    secrets.push(("an OCRA request's token".into(), forms(&ocra_token, None)));

    // SMS: the code the gateway received.
    let payload = transfer("anna", "13.00");
    let mut body = create_body("anna", payload.clone());
    body["method"] = "sms".into();
    body["to"] = "+33612345678".into();
    let created = app
        .client(Method::POST, "/v1/action-requests", Some(&body))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let sms_id = created.body["id"].as_str().unwrap().to_owned();
    let (_, message) = common::eventually(Duration::from_secs(10), || async {
        gateway.deliveries().first().cloned()
    })
    .await;
    let message: Value = serde_json::from_str(&message).unwrap();
    assert_eq!(message["request_id"], sms_id.as_str());
    let sms_code = message["code"].as_str().unwrap().to_owned();
    let verified = app
        .client(
            Method::POST,
            &format!("/v1/action-requests/{sms_id}/verify"),
            Some(&json!({"otp": sms_code})),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    let sms_token = verified.body["token"].as_str().unwrap().to_owned();
    let consumed = app
        .client(
            Method::POST,
            "/v1/tokens/consume",
            Some(&consume_body(&sms_token, &payload)),
        )
        .await;
    assert_eq!(consumed.status, StatusCode::OK, "{}", consumed.body);
    secrets.push(("an SMS code".into(), vec![sms_code]));
    secrets.push(("an SMS request's token".into(), forms(&sms_token, None)));
    // Let the delivery worker record the delivery before the files are read.
    let deliveries = common::eventually(Duration::from_secs(10), || async {
        let body = auditor
            .read(
                &app,
                &format!("/v1/audit/action-requests/{sms_id}/deliveries"),
            )
            .await;
        let delivered = body.as_array().is_some_and(|d| !d.is_empty());
        delivered.then_some(body)
    })
    .await;
    assert_absent(
        deliveries.to_string().as_bytes(),
        &secrets,
        "the delivery record",
    );

    // The log as the API shows it.
    let log = whole_log(&app, &auditor).await;
    assert!(log.len() >= 13, "{} events", log.len());
    assert_absent(
        serde_json::to_string(&log).unwrap().as_bytes(),
        &secrets,
        "the audit API's log",
    );

    // The raw database files: the main file and its write-ahead log.
    let mut files = Vec::new();
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("t.db") && !name.ends_with("-shm") {
            let bytes = std::fs::read(&path).unwrap();
            assert_absent(&bytes, &secrets, &name);
            files.push(bytes);
        }
    }
    // The scan sees the stored data: the last request's id and the OCRA challenge are there.
    let stored = files.concat();
    for known in [sms_id.as_str(), challenge.as_str()] {
        assert!(
            stored.windows(known.len()).any(|w| w == known.as_bytes()),
            "{known} is stored"
        );
    }

    // An export by the real binary.
    let out = binary()
        .current_dir(app.dir.path())
        .arg("--key-file")
        .arg(app.dir.path().join("t.keys"))
        .args(["--database-url", &app.url, "audit", "export"])
        .output()
        .expect("the CLI runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON event per line"))
        .collect();
    assert!(lines.len() >= log.len(), "{} lines", lines.len());
    for (n, event) in lines.iter().enumerate() {
        assert_eq!(event["position"], n as u64 + 1);
        assert!(is_digest_text(&event["hash"]), "{event}");
    }
    assert_eq!(&lines[..log.len()], &log[..], "the export is the log");
    assert_absent(&out.stdout, &secrets, "the export");
    assert!(text(&out.stdout).contains(&sms_id));
    // An export after a position starts there.
    let out = binary()
        .current_dir(app.dir.path())
        .args([
            "--database-url",
            &app.url,
            "audit",
            "export",
            "--after",
            "5",
        ])
        .output()
        .expect("the CLI runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first: Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["position"], 6);
}
