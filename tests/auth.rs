//! Who may do what: client isolation, bad and revoked credentials, roles, action patterns, and
//! devices acting only on what was addressed to them.

mod common;

use common::{assert_problem, create_body, spawn_app, transfer, Auth, Reply};
use countersign_api::credentials::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn assert_unauthorized(reply: &Reply) {
    assert_problem(reply, 401, "unauthorized");
    assert!(
        reply.header("www-authenticate").starts_with("Basic"),
        "{:?}",
        reply.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_see_or_touch_another_clients_objects() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "1.00")).await;
    let id = created["id"].as_str().unwrap();
    let (other, secret) = app
        .credential(Role::Client, "other bank", &["bank:*"])
        .await;
    let b = Auth::Basic(&other, &secret);
    let poll = app
        .call(Method::GET, &format!("/v1/action-requests/{id}"), b, None)
        .await;
    assert_problem(&poll, 404, "not_found");
    let cancel = app
        .call(
            Method::POST,
            &format!("/v1/action-requests/{id}/cancel"),
            b,
            None,
        )
        .await;
    assert_problem(&cancel, 404, "not_found");
    let revoke = app
        .call(
            Method::DELETE,
            &format!("/v1/users/anna/devices/{}", phone.id),
            b,
            None,
        )
        .await;
    assert_problem(&revoke, 404, "not_found");
    let listed = app
        .call(Method::GET, "/v1/users/anna/devices", b, None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body, json!([]), "another client's users are its own");
    let mine = app
        .client(Method::GET, "/v1/users/anna/devices", None)
        .await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    assert!(
        mine.body[0].get("device_token").is_none(),
        "no secrets in the list"
    );
    assert_eq!(
        app.poll(id).await.body["status"],
        "PENDING",
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_credentials_are_challenged() {
    let app = spawn_app().await;
    let body = create_body("anna", transfer("anna", "1.00"));
    let wrong = app
        .call(
            Method::POST,
            "/v1/action-requests",
            Auth::Basic(&app.client_id, "css_wrong"),
            Some(&body),
        )
        .await;
    assert_unauthorized(&wrong);
    let none = app
        .call(Method::POST, "/v1/action-requests", Auth::None, Some(&body))
        .await;
    assert_unauthorized(&none);
    let unknown = uuid::Uuid::now_v7();
    let stranger = app
        .call(
            Method::GET,
            "/v1/users/anna/devices",
            Auth::Basic(&unknown, &app.secret),
            None,
        )
        .await;
    assert_unauthorized(&stranger);
    let bearer = app
        .call(
            Method::GET,
            "/v1/users/anna/devices",
            Auth::Bearer(&app.secret),
            None,
        )
        .await;
    assert_problem(&bearer, 401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_action_patterns_are_enforced() {
    let app = spawn_app().await;
    app.enrol_phone("anna").await;
    let head = app.head().await;
    let (auditor, secret) = app.credential(Role::Auditor, "auditor", &[]).await;
    let body = create_body("anna", transfer("anna", "1.00"));
    let as_auditor = app
        .call(
            Method::POST,
            "/v1/action-requests",
            Auth::Basic(&auditor, &secret),
            Some(&body),
        )
        .await;
    assert_problem(&as_auditor, 403, "forbidden");
    let mut other_action = body.clone();
    other_action["action"] = json!("bank:cards:block");
    let outside = app
        .client(Method::POST, "/v1/action-requests", Some(&other_action))
        .await;
    assert_problem(&outside, 403, "forbidden");
    assert_eq!(app.head().await, head, "nothing recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_credential_is_refused_at_once() {
    let app = spawn_app().await;
    let listed = app
        .client(Method::GET, "/v1/users/anna/devices", None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args([
            "--database-url",
            &app.url,
            "credentials",
            "revoke",
            &app.client_id.to_string(),
        ])
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let refused = app
        .client(Method::GET, "/v1/users/anna/devices", None)
        .await;
    assert_unauthorized(&refused);

    let (other, secret) = app.credential(Role::Client, "second", &["bank:*"]).await;
    let b = Auth::Basic(&other, &secret);
    assert_eq!(
        app.call(Method::GET, "/v1/users/x/devices", b, None)
            .await
            .status,
        StatusCode::OK
    );
    countersign_api::credentials::revoke(app.state.pool(), other)
        .await
        .unwrap();
    assert_unauthorized(&app.call(Method::GET, "/v1/users/x/devices", b, None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_addressed_device_may_decide() {
    let app = spawn_app().await;
    let anna = app.enrol_phone("anna").await;
    let bob = app.enrol_phone("bob").await;
    let (other, secret) = app
        .credential(Role::Client, "other bank", &["bank:*"])
        .await;
    let foreign = app
        .enrol_phone_as(Auth::Basic(&other, &secret), "anna")
        .await;
    let created = app.create_request("anna", transfer("anna", "1.00")).await;
    let id = created["id"].as_str().unwrap();
    let item = app.inbox_item(&anna, id).await;
    let head = app.head().await;
    for intruder in [&bob, &foreign] {
        let reply = app
            .decide(intruder, id, "confirm", &intruder.sign(&item, "confirm"))
            .await;
        assert_problem(&reply, 404, "not_found");
    }
    let mismatched = json!({"device_id": bob.id, "signature": anna.sign(&item, "confirm")});
    let path = format!("/v1/action-requests/{id}/confirm");
    let reply = app
        .call(
            Method::POST,
            &path,
            Auth::Bearer(&anna.token),
            Some(&mismatched),
        )
        .await;
    assert_problem(&reply, 404, "not_found");
    let inbox = app
        .call(
            Method::GET,
            &format!("/v1/devices/{}/inbox", anna.id),
            Auth::Bearer(&bob.token),
            None,
        )
        .await;
    assert_problem(&inbox, 404, "not_found");
    assert_eq!(app.head().await, head, "nothing recorded");
    assert_eq!(app.poll(id).await.body["status"], "PENDING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_can_do_nothing() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "1.00")).await;
    let id = created["id"].as_str().unwrap();
    let item = app.inbox_item(&phone, id).await;
    let path = format!("/v1/users/anna/devices/{}", phone.id);
    let revoked = app.client(Method::DELETE, &path, None).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{:?}", revoked.body);
    let inbox = app
        .call(
            Method::GET,
            &format!("/v1/devices/{}/inbox", phone.id),
            Auth::Bearer(&phone.token),
            None,
        )
        .await;
    assert_problem(&inbox, 401, "unauthorized");
    assert!(!inbox.header("www-authenticate").is_empty());
    let reply = app
        .decide(&phone, id, "confirm", &phone.sign(&item, "confirm"))
        .await;
    assert_problem(&reply, 401, "unauthorized");
    assert_eq!(app.poll(id).await.body["status"], "PENDING");
    let listed = app
        .client(Method::GET, "/v1/users/anna/devices", None)
        .await;
    let statuses: Vec<_> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].clone())
        .collect();
    assert!(statuses.contains(&json!("revoked")) && statuses.contains(&json!("active")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_unknown_to_any_other_client() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    let payload = transfer("anna", "1.00");
    let (_, token) = app.confirmed_request(&phone, "anna", payload.clone()).await;
    let (other, secret) = app.credential(Role::Client, "other", &["bank:*"]).await;
    let body = json!({"token": token, "action": common::ACTION, "payload": payload});
    let b = Auth::Basic(&other, &secret);
    let stolen = app
        .call(Method::POST, "/v1/tokens/consume", b, Some(&body))
        .await;
    assert_problem(&stolen, 401, "invalid_token");
    let own = app
        .client(Method::POST, "/v1/tokens/consume", Some(&body))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{:?}", own.body);
}
