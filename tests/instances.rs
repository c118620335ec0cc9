//! Two `countersign serve` processes on one PostgreSQL database behave as one server: one
//! outcome per race, one consume per token, long polls woken by the other instance's commits,
//! and expiry recorded once.
//!
//! Needs `COUNTERSIGN_TEST_POSTGRES_URL`; see `countersign_testing`.

mod common;

use std::time::{Duration, Instant};

use common::device::{b64, Phone};
use common::process::{client_credential, start, Server};
use common::{send, transfer, Auth, Reply, ACTION};
use countersign_projections::database::Database;
use countersign_testing::TestDatabase;
use p256::pkcs8::EncodePublicKey;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Two servers on one fresh database, sharing one key file, and a client credential.
struct Pair {
    a: Server,
    b: Server,
    client: (Uuid, String),
    http: reqwest::Client,
    db: Database,
    _dir: tempfile::TempDir,
    _database: TestDatabase,
}

impl Pair {
    async fn start(extra: &[&str]) -> Option<Self> {
        let database = TestDatabase::for_test().await?;
        let dir = tempfile::tempdir().unwrap();
        let client = client_credential(&database.url, dir.path());
        let a = start(&database.url, dir.path(), extra).await;
        let b = start(&database.url, dir.path(), extra).await;
        let db = Database::open(&database.url, true).await.unwrap();
        Some(Self {
            a,
            b,
            client,
            http: reqwest::Client::new(),
            db,
            _dir: dir,
            _database: database,
        })
    }

    async fn client(
        &self,
        server: &Server,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let auth = Auth::Basic(&self.client.0, &self.client.1);
        let body = body.map(|b| serde_json::to_vec(b).unwrap());
        let headers: &[(&str, &str)] = &[("content-type", "application/json")];
        send(
            &self.http,
            method,
            &format!("{}{path}", server.base),
            auth,
            headers,
            body,
        )
        .await
    }

    async fn device(&self, server: &Server, phone: &Phone, path: &str, body: &Value) -> Reply {
        let body = Some(serde_json::to_vec(body).unwrap());
        let headers: &[(&str, &str)] = &[("content-type", "application/json")];
        let url = format!("{}{path}", server.base);
        send(
            &self.http,
            Method::POST,
            &url,
            Auth::Bearer(&phone.token),
            headers,
            body,
        )
        .await
    }

    /// Enrols a phone for `uid` through instance A.
    async fn phone(&self, uid: &str) -> Phone {
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let public_key = b64(key.verifying_key().to_public_key_der().unwrap().as_bytes());
        let body = json!({"kind": "push", "name": "phone", "public_key": public_key});
        let reply = self
            .client(
                &self.a,
                Method::POST,
                &format!("/v1/users/{uid}/devices"),
                Some(&body),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        Phone {
            id: reply.body["device_id"].as_str().unwrap().parse().unwrap(),
            token: reply.body["device_token"].as_str().unwrap().to_owned(),
            key,
        }
    }

    /// Creates a request through A; returns its view and the inbox item B shows the phone.
    async fn request(&self, phone: &Phone, uid: &str, amount: &str) -> (Value, Value) {
        let body = json!({"action": ACTION, "uid": uid, "payload": transfer(uid, amount)});
        let created = self
            .client(&self.a, Method::POST, "/v1/action-requests", Some(&body))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let url = format!("{}/v1/devices/{}/inbox", self.b.base, phone.id);
        let inbox = send(
            &self.http,
            Method::GET,
            &url,
            Auth::Bearer(&phone.token),
            &[],
            None,
        )
        .await;
        let item = inbox
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == created.body["id"]);
        (
            created.body.clone(),
            item.expect("B's inbox has A's request").clone(),
        )
    }

    async fn event_types(&self, id: &str) -> Vec<String> {
        let events = self
            .db
            .events()
            .read_stream(&format!("action-request-{id}"))
            .await
            .unwrap();
        events.into_iter().map(|e| e.event_type).collect()
    }
}

fn decision(phone: &Phone, item: &Value, verb: &str) -> Value {
    json!({"device_id": phone.id, "signature": phone.sign(item, verb)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_consumes_over_two_instances_spend_the_token_once() {
    let Some(pair) = Pair::start(&[]).await else {
        return;
    };
    let phone = pair.phone("anna").await;
    let (view, item) = pair.request(&phone, "anna", "10.00").await;
    let id = view["id"].as_str().unwrap();
    let confirmed = pair
        .device(
            &pair.b,
            &phone,
            &format!("/v1/action-requests/{id}/confirm"),
            &decision(&phone, &item, "confirm"),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let polled = pair
        .client(
            &pair.a,
            Method::GET,
            &format!("/v1/action-requests/{id}"),
            None,
        )
        .await;
    let body = json!({"token": polled.body["token"], "action": ACTION, "payload": transfer("anna", "10.00")});
    let attempts = (0..40).map(|n| {
        let (pair, body) = (&pair, &body);
        async move {
            let server = if n % 2 == 0 { &pair.a } else { &pair.b };
            pair.client(server, Method::POST, "/v1/tokens/consume", Some(body))
                .await
        }
    });
    let replies = futures::future::join_all(attempts).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let spent = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT && r.body["code"] == "token_already_consumed")
        .count();
    assert_eq!((ok, spent), (1, 39));
    let consumed = pair
        .event_types(id)
        .await
        .iter()
        .filter(|t| *t == "TokenConsumed")
        .count();
    assert_eq!(consumed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_reject_and_cancel_racing_over_two_instances_end_with_one_outcome() {
    let Some(pair) = Pair::start(&[]).await else {
        return;
    };
    let phone = pair.phone("anna").await;
    for round in 0..10 {
        let (view, item) = pair.request(&phone, "anna", &format!("{round}.50")).await;
        let id = view["id"].as_str().unwrap();
        let (confirm, reject) = (
            decision(&phone, &item, "confirm"),
            decision(&phone, &item, "reject"),
        );
        let paths =
            ["confirm", "reject", "cancel"].map(|v| format!("/v1/action-requests/{id}/{v}"));
        let (a, b, c) = tokio::join!(
            pair.device(&pair.a, &phone, &paths[0], &confirm),
            pair.device(&pair.b, &phone, &paths[1], &reject),
            pair.client(&pair.b, Method::POST, &paths[2], None),
        );
        let replies = [a, b, c];
        let winners = replies
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert_eq!(winners, 1, "round {round}: {replies:?}");
        for loser in replies.iter().filter(|r| r.status != StatusCode::OK) {
            assert_eq!(
                loser.status,
                StatusCode::CONFLICT,
                "round {round}: {}",
                loser.body
            );
            assert_eq!(loser.body["code"], "not_pending");
        }
        let types = pair.event_types(id).await;
        let outcomes = types
            .iter()
            .filter(|t| *t == "Confirmed" || *t == "Rejected")
            .count();
        assert_eq!(outcomes, 1, "round {round}: {types:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_on_one_instance_wakes_on_a_change_made_through_the_other() {
    let Some(pair) = Pair::start(&[]).await else {
        return;
    };
    let phone = pair.phone("anna").await;
    let (view, item) = pair.request(&phone, "anna", "20.00").await;
    let id = view["id"].as_str().unwrap().to_owned();
    let etag = format!("\"v{}\"", view["version"]);
    let url = format!("{}/v1/action-requests/{id}?wait=20", pair.a.base);
    let waiting = {
        let (http, client) = (pair.http.clone(), pair.client.clone());
        tokio::spawn(async move {
            let auth = Auth::Basic(&client.0, &client.1);
            let reply = send(
                &http,
                Method::GET,
                &url,
                auth,
                &[("if-none-match", &etag)],
                None,
            )
            .await;
            (reply, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "the poll waits while nothing changes"
    );
    let changed_at = Instant::now();
    let confirmed = pair
        .device(
            &pair.b,
            &phone,
            &format!("/v1/action-requests/{id}/confirm"),
            &decision(&phone, &item, "confirm"),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK);
    let (reply, answered_at) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "CONFIRMED");
    let delay = answered_at.duration_since(changed_at);
    assert!(
        delay < Duration::from_secs(1),
        "answered {delay:?} after the change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_running_on_both_instances_records_each_expiry_once() {
    let Some(pair) = Pair::start(&["--token-ttl", "5"]).await else {
        return;
    };
    let phone = pair.phone("anna").await;
    let mut ids = Vec::new();
    for n in 0..6 {
        let (view, item) = pair.request(&phone, "anna", &format!("3{n}.00")).await;
        let id = view["id"].as_str().unwrap().to_owned();
        let server = if n % 2 == 0 { &pair.a } else { &pair.b };
        let confirmed = pair
            .device(
                server,
                &phone,
                &format!("/v1/action-requests/{id}/confirm"),
                &decision(&phone, &item, "confirm"),
            )
            .await;
        assert_eq!(confirmed.status, StatusCode::OK);
        ids.push(id);
    }
    for id in &ids {
        common::eventually(Duration::from_secs(20), || async {
            pair.event_types(id)
                .await
                .contains(&"Expired".to_owned())
                .then_some(())
        })
        .await;
    }
    // Both sweepers have run several more times since: still one event each.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &ids {
        let types = pair.event_types(id).await;
        assert_eq!(
            types.iter().filter(|t| *t == "Expired").count(),
            1,
            "{types:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_instances_follow_the_statistics_and_count_each_event_once() {
    let Some(pair) = Pair::start(&[]).await else {
        return;
    };
    pair.phone("stats").await;
    let create = |n: usize| json!({"action": ACTION, "uid": "stats", "payload": transfer("stats", &format!("{n}.00"))});
    let bodies: Vec<Value> = (0..30).map(create).collect();
    let mut creates = Vec::new();
    for (n, body) in bodies.iter().enumerate() {
        let server = if n % 2 == 0 { &pair.a } else { &pair.b };
        creates.push(pair.client(server, Method::POST, "/v1/action-requests", Some(body)));
    }
    for reply in futures::future::join_all(creates).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let head = pair.db.events().head().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // The checkpoint first: statistics read after it include at least what it covers.
        let checkpoints = countersign_projections::follow::checkpoints(&pair.db.pool())
            .await
            .unwrap();
        let reply = pair
            .client(&pair.b, Method::GET, "/v1/stats/daily", None)
            .await;
        let requests = reply
            .body
            .as_array()
            .and_then(|d| d.last())
            .map(|d| d["requests"].clone());
        if checkpoints.first().is_some_and(|c| c.position >= head) {
            assert_eq!(requests, Some(json!(30)), "every request counted once");
            assert_eq!(checkpoints[0].state, "running", "{checkpoints:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the statistics did not reach the head: {checkpoints:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
