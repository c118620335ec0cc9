//! Callbacks (ping mode): a request's new status is POSTed, signed, to its `callback_url`
//! through the outbox, retried until the receiver takes it, and never lost across a restart.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::process::{client_credential, start};
use common::receiver::{free_port, Receiver};
use common::{create_body, spawn_app_with, transfer, Auth, ACTION};
use countersign_api::credentials::Role;
use countersign_api::delivery::signature;
use countersign_api::keys::ServerKeys;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Checks the `t=…,v1=…` header against the body and the client's callback key.
fn assert_signed(header: &str, body: &str, key: &[u8]) {
    let t: i64 = header
        .split(',')
        .find_map(|part| part.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .expect("a timestamp");
    let at = chrono::DateTime::from_timestamp(t, 0).unwrap();
    assert_eq!(header, signature(key, at, body), "the signature verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_is_posted_signed_after_two_refused_deliveries() {
    let app = spawn_app_with(|c| {
        c.delivery_backoff = Duration::from_millis(100);
        c.delivery_interval = Duration::from_millis(100);
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = Receiver {
        fail_first: 2,
        ..Receiver::default()
    };
    tokio::spawn(receiver.clone().serve(listener));

    let phone = app.enrol_phone("anna").await;
    let mut body = create_body("anna", transfer("anna", "5.00"));
    body["callback_url"] = url.into();
    let created = app
        .client(Method::POST, "/v1/action-requests", Some(&body))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let confirmed = app.sign_and_decide(&phone, &id, "confirm").await;
    assert_eq!(confirmed.status, StatusCode::OK);

    let (header, delivered) = common::eventually(Duration::from_secs(10), || async {
        receiver.deliveries().first().cloned()
    })
    .await;
    let delivered: Value = serde_json::from_str(&delivered).unwrap();
    assert_eq!(
        delivered,
        json!({"id": id, "status": "CONFIRMED", "version": 2})
    );
    let keys = ServerKeys::load_or_create(&app.dir.path().join("t.keys")).unwrap();
    assert_signed(
        &header,
        &delivered.to_string(),
        &keys.callback_key(app.client_id),
    );
    assert_eq!(
        receiver.calls.load(Ordering::SeqCst),
        3,
        "two refusals, then the delivery"
    );
    let attempts = app
        .state
        .pool()
        .rows("select outcome from outbox_attempts order by attempt", &[])
        .await
        .unwrap();
    let outcomes: Vec<_> = attempts
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["failed", "failed", "delivered"],
        "auditors see each attempt"
    );
    let (auditor, secret) = app.credential(Role::Auditor, "audit", &[]).await;
    let path = format!("/v1/audit/action-requests/{id}/deliveries");
    let record = app
        .call(Method::GET, &path, Auth::Basic(&auditor, &secret), None)
        .await;
    assert_eq!(record.status, StatusCode::OK, "{}", record.body);
    let delivery = &record.body[0];
    assert_eq!(delivery["kind"], "callback");
    assert_eq!(delivery["status"], "delivered");
    let seen: Vec<_> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(seen, [json!("failed"), json!("failed"), json!("delivered")]);
    assert_eq!(delivery["attempts"][0]["status_code"], 500);
    let as_client = app.client(Method::GET, &path, None).await;
    assert_eq!(as_client.status, StatusCode::FORBIDDEN, "auditors only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_for_a_while_still_gets_the_callback() {
    let app = spawn_app_with(|c| {
        c.delivery_backoff = Duration::from_millis(100);
        c.delivery_interval = Duration::from_millis(100);
    })
    .await;
    let address = free_port();
    app.enrol_phone("anna").await;
    let mut body = create_body("anna", transfer("anna", "6.00"));
    body["callback_url"] = format!("http://{address}/hook").into();
    let created = app
        .client(Method::POST, "/v1/action-requests", Some(&body))
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/action-requests/{id}/cancel");
    assert_eq!(
        app.client(Method::POST, &path, None).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let receiver = Receiver::default();
    tokio::spawn(
        receiver
            .clone()
            .serve(tokio::net::TcpListener::bind(address).await.unwrap()),
    );
    let (_, delivered) = common::eventually(Duration::from_secs(15), || async {
        receiver.deliveries().first().cloned()
    })
    .await;
    assert!(delivered.contains("\"REJECTED\""), "{delivered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_callback_url_is_refused_and_records_nothing() {
    let app = spawn_app_with(|_| {}).await;
    app.enrol_phone("anna").await;
    let head = app.head().await;
    for url in ["ftp://x/y", "not a url", "/relative"] {
        let mut body = create_body("anna", transfer("anna", "7.00"));
        body["callback_url"] = url.into();
        let reply = app
            .client(Method::POST, "/v1/action-requests", Some(&body))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(reply.body["code"], "invalid_request");
    }
    assert_eq!(app.head().await, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_queued_before_a_sigkill_is_delivered_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let (client_id, secret) = client_credential(&url, dir.path());
    let address = free_port();
    let server = start(&url, dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let auth = || Auth::Basic(&client_id, &secret);
    let call = |base: String, path: &str, body: Option<Value>| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            let body = body.map(|b| serde_json::to_vec(&b).unwrap());
            let headers: &[(&str, &str)] = &[("content-type", "application/json")];
            common::send(&http, Method::POST, &url, auth(), headers, body).await
        }
    };
    let phone_key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let public_key = common::device::b64(
        p256::pkcs8::EncodePublicKey::to_public_key_der(phone_key.verifying_key())
            .unwrap()
            .as_bytes(),
    );
    let enrol = json!({"kind": "push", "name": "phone", "public_key": public_key});
    let enrolled = call(server.base.clone(), "/v1/users/anna/devices", Some(enrol)).await;
    assert_eq!(enrolled.status, StatusCode::CREATED);
    let mut body = json!({"action": ACTION, "uid": "anna", "payload": transfer("anna", "8.00")});
    body["callback_url"] = format!("http://{address}/hook").into();
    let created = call(server.base.clone(), "/v1/action-requests", Some(body)).await;
    let id: Uuid = created.body["id"].as_str().unwrap().parse().unwrap();
    let cancelled = call(
        server.base.clone(),
        &format!("/v1/action-requests/{id}/cancel"),
        None,
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK);
    // Once the first attempt has failed (the receiver is down), SIGKILL the server: the
    // callback is still undelivered, and only the outbox remembers it.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    common::eventually(Duration::from_secs(10), || async {
        let attempts: (i64,) = sqlx::query_as("select count(*) from outbox_attempts")
            .fetch_one(&pool)
            .await
            .unwrap();
        (attempts.0 > 0).then_some(())
    })
    .await;
    drop(server);

    let receiver = Receiver::default();
    tokio::spawn(
        receiver
            .clone()
            .serve(tokio::net::TcpListener::bind(address).await.unwrap()),
    );
    let _restarted = start(&url, dir.path(), &[]).await;
    // The killed server may have held a lease (15 s) or scheduled its next try a few seconds
    // out; the restarted one honours both, then delivers.
    let (header, delivered) = common::eventually(Duration::from_secs(45), || async {
        receiver.deliveries().first().cloned()
    })
    .await;
    let delivered: Value = serde_json::from_str(&delivered).unwrap();
    assert_eq!(delivered["id"], id.to_string());
    assert_eq!(delivered["status"], "REJECTED");
    let keys = ServerKeys::load_or_create(&dir.path().join("t.keys")).unwrap();
    assert_signed(
        &header,
        &delivered.to_string(),
        &keys.callback_key(client_id),
    );
}
