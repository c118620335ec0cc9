//! Polling: ETags and 304, long polls woken by a change, idempotent creation, and expiry.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{
    assert_problem, create_body, send, spawn_app, spawn_app_with, transfer, Auth, TestApp,
};
use countersign_store::ActorKind;
use futures::future::join_all;
use reqwest::{Method, StatusCode};

async fn poll_with(app: &TestApp, id: &str, query: &str, etag: &str) -> common::Reply {
    let url = format!("{}/v1/action-requests/{id}{query}", app.base);
    let auth = Auth::Basic(&app.client_id, &app.secret);
    send(
        &app.http,
        Method::GET,
        &url,
        auth,
        &[("if-none-match", etag)],
        None,
    )
    .await
}

async fn idempotent_create(app: &TestApp, key: &str, amount: &str) -> common::Reply {
    let body = serde_json::to_vec(&create_body("anna", transfer("anna", amount))).unwrap();
    let url = format!("{}/v1/action-requests", app.base);
    let headers = [
        ("content-type", "application/json"),
        ("idempotency-key", key),
    ];
    let auth = Auth::Basic(&app.client_id, &app.secret);
    send(&app.http, Method::POST, &url, auth, &headers, Some(body)).await
}

fn time(text: &serde_json::Value) -> DateTime<Utc> {
    text.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etag_is_the_version_and_a_matching_one_gives_304() {
    let app = spawn_app().await;
    app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "1.00")).await;
    let id = created["id"].as_str().unwrap();
    let polled = app.poll(id).await;
    let etag = format!("\"v{}\"", created["version"]);
    assert_eq!(polled.header("etag"), etag);
    let same = poll_with(&app, id, "", &etag).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    assert_eq!(same.body, serde_json::Value::Null);
    let stale = poll_with(&app, id, "", "\"v0\"").await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body["id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_soon_after_a_change_and_not_before() {
    let app = Arc::new(spawn_app().await);
    let phone = app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "1.00")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let item = app.inbox_item(&phone, &id).await;
    let etag = app.poll(&id).await.header("etag").to_owned();
    let waiting = {
        let (app, id) = (app.clone(), id.clone());
        tokio::spawn(async move {
            let reply = poll_with(&app, &id, "?wait=10", &etag).await;
            (reply, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "the long poll answered before any change"
    );
    let changing = Instant::now();
    let reply = app
        .decide(&phone, &id, "confirm", &phone.sign(&item, "confirm"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let changed = Instant::now();
    let (reply, answered) = waiting.await.unwrap();
    assert!(answered >= changing, "answered before the change");
    assert!(
        answered - changed < Duration::from_millis(1500),
        "answered {:?} after the change",
        answered - changed
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "CONFIRMED");
    assert!(reply.body["token"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_without_change_ends_with_304_after_the_wait() {
    let app = spawn_app().await;
    app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "1.00")).await;
    let id = created["id"].as_str().unwrap();
    let etag = app.poll(id).await.header("etag").to_owned();
    let started = Instant::now();
    let reply = poll_with(&app, id, "?wait=1", &etag).await;
    let took = started.elapsed();
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert_problem(
        &poll_with(&app, id, "?wait=31", &etag).await,
        400,
        "invalid_request",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_same_body_and_refuses_another() {
    let app = spawn_app().await;
    app.enrol_phone("anna").await;
    let first = idempotent_create(&app, "transfer-1", "5.00").await;
    assert_eq!(first.status, StatusCode::CREATED);
    let head = app.head().await;
    let again = idempotent_create(&app, "transfer-1", "5.00").await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    let other = idempotent_create(&app, "transfer-1", "6.00").await;
    assert_problem(&other, 422, "idempotency_key_reused");
    assert_eq!(app.head().await, head, "repeats record nothing");
    let fresh = idempotent_create(&app, "transfer-2", "5.00").await;
    assert_eq!(fresh.status, StatusCode::CREATED);
    assert_ne!(fresh.body["id"], first.body["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_with_one_key_make_one_request() {
    let app = Arc::new(spawn_app().await);
    app.enrol_phone("anna").await;
    let replies = join_all((0..10).map(|_| {
        let app = app.clone();
        tokio::spawn(async move { idempotent_create(&app, "same-key", "7.00").await })
    }))
    .await;
    let replies: Vec<_> = replies.into_iter().map(|r| r.unwrap()).collect();
    let created: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "{replies:?}");
    for reply in &replies {
        assert!(
            reply.status == StatusCode::CREATED || reply.status == StatusCode::OK,
            "{reply:?}"
        );
        assert_eq!(reply.body["id"], created[0].body["id"]);
    }
    let events = app.state.store.read_all(0, 1000).await.unwrap();
    let creations = events.iter().filter(|e| e.event_type == "Created").count();
    assert_eq!(creations, 1, "one Created event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_lives_for_its_ttl() {
    let app = spawn_app().await;
    app.enrol_phone("anna").await;
    let mut body = create_body("anna", transfer("anna", "1.00"));
    body["ttl_seconds"] = 45.into();
    let reply = app
        .client(Method::POST, "/v1/action-requests", Some(&body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let lifetime = time(&reply.body["expires_at"]) - time(&reply.body["created_at"]);
    assert_eq!(lifetime, chrono::Duration::seconds(45));
    let default = app.create_request("anna", transfer("anna", "2.00")).await;
    let lifetime = time(&default["expires_at"]) - time(&default["created_at"]);
    assert_eq!(lifetime, chrono::Duration::seconds(180));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_task_records_an_unspent_token_as_expired() {
    let app = spawn_app_with(|c| {
        c.settings.token_ttl = chrono::Duration::seconds(1);
        c.expiry_interval = Duration::from_millis(200);
    })
    .await;
    let phone = app.enrol_phone("anna").await;
    let payload = transfer("anna", "3.00");
    let (view, token) = app.confirmed_request(&phone, "anna", payload.clone()).await;
    let id = view["id"].as_str().unwrap().to_owned();
    let stream = format!("action-request-{id}");
    let expired = common::eventually(Duration::from_secs(5), || async {
        let events = app.state.store.read_stream(&stream).await.unwrap();
        events.into_iter().find(|e| e.event_type == "Expired")
    })
    .await;
    assert_eq!(
        expired.metadata.actor.kind,
        ActorKind::System,
        "written by the task"
    );
    let polled = app.poll(&id).await;
    assert_eq!(polled.body["status"], "EXPIRED");
    assert!(polled.body.get("token").is_none());
    let body = serde_json::json!({"token": token, "action": common::ACTION, "payload": payload});
    let reply = app
        .client(Method::POST, "/v1/tokens/consume", Some(&body))
        .await;
    assert_problem(&reply, 410, "token_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_request_reads_expired_at_once_and_the_task_records_it() {
    let app = spawn_app_with(|c| c.expiry_interval = Duration::from_millis(100)).await;
    app.enrol_phone("anna").await;
    let view = app.create_request("anna", transfer("anna", "4.00")).await;
    let id = view["id"].as_str().unwrap().to_owned();
    let etag = format!("\"v{}\"", view["version"]);
    let waiting = {
        let (base, http) = (app.base.clone(), app.http.clone());
        let (user, secret, id) = (app.client_id.to_string(), app.secret.clone(), id.clone());
        tokio::spawn(async move {
            http.get(format!("{base}/v1/action-requests/{id}?wait=20"))
                .basic_auth(user, Some(secret))
                .header("if-none-match", etag)
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.state
        .settings
        .clock
        .advance(chrono::Duration::seconds(181));
    let polled = app.poll(&id).await;
    assert_eq!(
        polled.body["status"], "EXPIRED",
        "reported before any event"
    );
    let answered = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("the long poll ends when the request expires")
        .unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    let stream = format!("action-request-{id}");
    let expired = common::eventually(Duration::from_secs(5), || async {
        let events = app.state.store.read_stream(&stream).await.unwrap();
        events.into_iter().find(|e| e.event_type == "Expired")
    })
    .await;
    assert_eq!(expired.data["from"], "PENDING");
    let reply = app
        .client(
            Method::POST,
            &format!("/v1/action-requests/{id}/cancel"),
            None,
        )
        .await;
    assert_problem(&reply, 409, "not_pending");
}
