//! The push approval flow end to end: enrol, create, inbox, confirm or reject, poll, consume.

mod common;

use common::device::{canonical, sha256_hex};
use common::{assert_problem, spawn_app, spawn_app_with, transfer, ACTION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn consume_body(token: &str, action: &str, payload: &Value) -> Value {
    json!({"token": token, "action": action, "payload": payload})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_request_yields_a_token_that_is_consumed_exactly_once() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    let payload = transfer("anna", "234.00");
    let created = app.create_request("anna", payload.clone()).await;

    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["action"], ACTION);
    assert_eq!(created["uid"], "anna");
    assert_eq!(created["payload"], payload);
    assert_eq!(created["method"], "push");
    assert_eq!(created["attempts_left"], 5);
    assert_eq!(created["devices"], json!([phone.id]));
    assert!(created["version"].as_u64().unwrap() >= 1);
    for field in ["created_at", "updated_at", "expires_at"] {
        assert!(created[field].as_str().unwrap().ends_with('Z'), "{field}");
    }
    assert!(created.get("token").is_none());
    let display = json!({"amount": "234.00", "currency": "EUR", "bankTransferRecipientId": "R1", "uid": "anna"});
    assert_eq!(created["display"], display);
    let linked = json!({"action": ACTION, "display": display, "payload": payload, "uid": "anna"});
    assert_eq!(created["binding"], sha256_hex(&canonical(&linked)));

    let item = app.inbox_item(&phone, &id).await;
    assert_eq!(item["binding"], created["binding"]);
    assert_eq!(item["display"], display);
    assert_eq!(item["action"], ACTION);
    assert!(!item["nonce"].as_str().unwrap().is_empty());

    let confirmed = app
        .decide(&phone, &id, "confirm", &phone.sign(&item, "confirm"))
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{:?}", confirmed.body);
    assert_eq!(confirmed.body["status"], "CONFIRMED");
    assert!(
        confirmed.body.get("token").is_none(),
        "the device never sees the token"
    );

    let polled = app.poll(&id).await;
    assert_eq!(polled.body["status"], "CONFIRMED");
    let token = polled.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cst_"));
    assert!(polled.body["token_expires_at"].is_string());

    let consumed = app
        .client(
            Method::POST,
            "/v1/tokens/consume",
            Some(&consume_body(&token, ACTION, &payload)),
        )
        .await;
    assert_eq!(consumed.status, StatusCode::OK, "{:?}", consumed.body);
    assert_eq!(consumed.body["action_request_id"], id.as_str());
    assert_eq!(consumed.body["uid"], "anna");
    assert_eq!(consumed.body["action"], ACTION);
    assert_eq!(consumed.body["binding"], created["binding"]);
    assert!(consumed.body["consumed_at"].is_string());

    let again = app
        .client(
            Method::POST,
            "/v1/tokens/consume",
            Some(&consume_body(&token, ACTION, &payload)),
        )
        .await;
    assert_problem(&again, 409, "token_already_consumed");
    let polled = app.poll(&id).await;
    assert_eq!(polled.body["status"], "CONSUMED");
    assert!(polled.body.get("token").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_der_signature_confirms_as_well_as_a_raw_one() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "10.00")).await;
    let id = created["id"].as_str().unwrap();
    let item = app.inbox_item(&phone, id).await;
    let reply = app
        .decide(&phone, id, "confirm", &phone.sign_der(&item, "confirm"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(app.poll(id).await.body["status"], "CONFIRMED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_request_has_a_reason_and_no_token() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "10.00")).await;
    let id = created["id"].as_str().unwrap();
    let reply = app.sign_and_decide(&phone, id, "reject").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "REJECTED");
    let polled = app.poll(id).await;
    assert_eq!(polled.body["status"], "REJECTED");
    assert_eq!(polled.body["reason"], "declined_by_user");
    assert!(polled.body.get("token").is_none());
    let inbox = app
        .call(
            Method::GET,
            &format!("/v1/devices/{}/inbox", phone.id),
            common::Auth::Bearer(&phone.token),
            None,
        )
        .await;
    assert_eq!(inbox.body, json!([]), "a decided request leaves the inbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cancels_a_pending_request_once() {
    let app = spawn_app().await;
    app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "10.00")).await;
    let path = format!(
        "/v1/action-requests/{}/cancel",
        created["id"].as_str().unwrap()
    );
    let cancelled = app.client(Method::POST, &path, None).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["status"], "REJECTED");
    assert_eq!(cancelled.body["reason"], "cancelled_by_client");
    let again = app.client(Method::POST, &path, None).await;
    assert_problem(&again, 409, "not_pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_only_works_for_its_own_action_and_payload() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    let payload = transfer("anna", "234.00");
    let (_, token) = app.confirmed_request(&phone, "anna", payload.clone()).await;
    let tampered = transfer("anna", "2340.00");
    for (action, body) in [(ACTION, &tampered), ("bank:transfers:delete", &payload)] {
        let reply = app
            .client(
                Method::POST,
                "/v1/tokens/consume",
                Some(&consume_body(&token, action, body)),
            )
            .await;
        assert_problem(&reply, 422, "binding_mismatch");
    }
    let reordered = json!({"uid": "anna", "bankTransferRecipientId": "R1", "currency": "EUR", "amount": "234.00"});
    let reply = app
        .client(
            Method::POST,
            "/v1/tokens/consume",
            Some(&consume_body(&token, ACTION, &reordered)),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "key order does not matter: {:?}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_refused() {
    let app = spawn_app().await;
    let payload = transfer("anna", "1.00");
    for token in [
        "cst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "nonsense",
    ] {
        let reply = app
            .client(
                Method::POST,
                "/v1/tokens/consume",
                Some(&consume_body(token, ACTION, &payload)),
            )
            .await;
        assert_problem(&reply, 401, "invalid_token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_past_its_lifetime_is_gone() {
    let app = spawn_app_with(|c| c.settings.token_ttl = chrono::Duration::seconds(2)).await;
    let phone = app.enrol_phone("anna").await;
    let payload = transfer("anna", "5.00");
    let (view, token) = app.confirmed_request(&phone, "anna", payload.clone()).await;
    let expires: chrono::DateTime<chrono::Utc> =
        view["token_expires_at"].as_str().unwrap().parse().unwrap();
    let confirmed: chrono::DateTime<chrono::Utc> =
        view["updated_at"].as_str().unwrap().parse().unwrap();
    let lifetime = (expires - confirmed).num_milliseconds();
    assert!(
        (1900..=2100).contains(&lifetime),
        "token_ttl is honoured: {lifetime} ms"
    );
    let left = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + std::time::Duration::from_millis(100)).await;
    let reply = app
        .client(
            Method::POST,
            "/v1/tokens/consume",
            Some(&consume_body(&token, ACTION, &payload)),
        )
        .await;
    assert_problem(&reply, 410, "token_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_device_means_the_most_recently_used_active_one() {
    let app = spawn_app().await;
    let used = app.enrol_phone("anna").await;
    let newer = app.enrol_phone("anna").await;
    let both = app.create_request("anna", transfer("anna", "1.00")).await;
    assert_eq!(
        both["devices"].as_array().unwrap().len(),
        2,
        "devices default to all"
    );
    let reply = app
        .sign_and_decide(&used, both["id"].as_str().unwrap(), "reject")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut body = common::create_body("anna", transfer("anna", "2.00"));
    body["devices"] = json!("one");
    let one = app
        .client(Method::POST, "/v1/action-requests", Some(&body))
        .await;
    assert_eq!(one.status, StatusCode::CREATED, "{:?}", one.body);
    assert_eq!(one.body["devices"], json!([used.id]));
    let revoke = format!("/v1/users/anna/devices/{}", used.id);
    assert_eq!(
        app.client(Method::DELETE, &revoke, None).await.status,
        StatusCode::NO_CONTENT
    );
    let after = app.create_request("anna", transfer("anna", "3.00")).await;
    assert_eq!(
        after["devices"],
        json!([newer.id]),
        "revoked devices are skipped"
    );
}
