//! OCRA (RFC 6287) devices and requests: enrolment shows the secret once, the code the user
//! computes over the request's challenge confirms it (relayed by the bank or sent by the device),
//! and wrong, foreign or stale codes are failed attempts, five of which reject the request.

mod common;

use common::{assert_problem, create_body, spawn_app, transfer, Auth, TestApp, ACTION};
use countersign_domain::codes::{base32_decode, ocra, OcraInput, OcraSuite};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// An enrolled OCRA token: its id, bearer token, suite and secret.
struct Token {
    id: String,
    bearer: String,
    suite: OcraSuite,
    key: Vec<u8>,
    secret_text: String,
}

impl Token {
    /// The code for `challenge`, `steps` time steps away from now.
    fn code(&self, challenge: &str, steps: i64) -> String {
        let step = self.suite.time_step_seconds().unwrap() as i64;
        let t = (chrono::Utc::now().timestamp() / step + steps) as u64;
        let input = OcraInput {
            question: challenge,
            timestamp: Some(t),
            ..OcraInput::default()
        };
        ocra(&self.suite, &self.key, &input).unwrap()
    }
}

async fn enrol(app: &TestApp, uid: &str) -> Token {
    let body = json!({"kind": "ocra", "name": "Card reader"});
    let reply = app
        .client(
            Method::POST,
            &format!("/v1/users/{uid}/devices"),
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let ocra = &reply.body["ocra"];
    assert_eq!(ocra["suite"], "OCRA-1:HOTP-SHA256-8:QN08-T1M");
    let secret = ocra["secret"].as_str().unwrap().to_owned();
    let uri = ocra["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://ocra/") && uri.contains(&secret),
        "{uri}"
    );
    Token {
        id: reply.body["device_id"].as_str().unwrap().to_owned(),
        bearer: reply.body["device_token"].as_str().unwrap().to_owned(),
        suite: OcraSuite::parse(ocra["suite"].as_str().unwrap()).unwrap(),
        key: base32_decode(&secret).unwrap(),
        secret_text: secret,
    }
}

async fn ocra_request(app: &TestApp, amount: &str) -> Value {
    let mut body = create_body("anna", transfer("anna", amount));
    body["method"] = "ocra".into();
    let reply = app
        .client(Method::POST, "/v1/action-requests", Some(&body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let challenge = reply.body["challenge"].as_str().unwrap();
    assert!(challenge.len() == 8 && challenge.chars().all(|c| c.is_ascii_digit()));
    reply.body
}

async fn verify(app: &TestApp, view: &Value, otp: &str) -> common::Reply {
    let path = format!(
        "/v1/action-requests/{}/verify",
        view["id"].as_str().unwrap()
    );
    app.client(Method::POST, &path, Some(&json!({"otp": otp})))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_over_the_challenge_relayed_by_the_bank_confirms_and_the_token_is_spent() {
    let app = spawn_app().await;
    let token = enrol(&app, "anna").await;
    let view = ocra_request(&app, "12.00").await;
    let challenge = view["challenge"].as_str().unwrap();
    let wrong = verify(&app, &view, "00000000").await;
    assert_problem(&wrong, 422, "invalid_otp");
    assert_eq!(wrong.body["attempts_left"], 4);
    let confirmed = verify(&app, &view, &token.code(challenge, 0)).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "CONFIRMED");
    let again = verify(&app, &view, &token.code(challenge, 0)).await;
    assert_problem(&again, 409, "not_pending");
    let consume = json!({"token": confirmed.body["token"], "action": ACTION, "payload": transfer("anna", "12.00")});
    let consumed = app
        .client(Method::POST, "/v1/tokens/consume", Some(&consume))
        .await;
    assert_eq!(consumed.status, StatusCode::OK, "{}", consumed.body);
    // The secret never reaches the log, in base32 or in hex.
    let log = app.state.store.read_all(0, 1000).await.unwrap();
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(&token.secret_text));
    assert!(!text.contains(&hex(&token.key)));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_itself_may_confirm_with_its_code_within_one_time_step() {
    let app = spawn_app().await;
    let token = enrol(&app, "anna").await;
    let view = ocra_request(&app, "13.00").await;
    let challenge = view["challenge"].as_str().unwrap();
    let path = format!(
        "/v1/action-requests/{}/confirm",
        view["id"].as_str().unwrap()
    );
    // A code one step old must not turn two steps old before the server checks it.
    let into_step = chrono::Utc::now().timestamp() % 60;
    if into_step > 55 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - into_step) as u64)).await;
    }
    let stale = json!({"device_id": token.id, "otp": token.code(challenge, -2)});
    let reply = app
        .call(
            Method::POST,
            &path,
            Auth::Bearer(&token.bearer),
            Some(&stale),
        )
        .await;
    assert_problem(&reply, 422, "invalid_otp");
    let previous_step = json!({"device_id": token.id, "otp": token.code(challenge, -1)});
    let reply = app
        .call(
            Method::POST,
            &path,
            Auth::Bearer(&token.bearer),
            Some(&previous_step),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "CONFIRMED");
    assert!(
        reply.body.get("token").is_none(),
        "the device never sees the token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_for_another_transaction_is_refused_and_five_failures_reject() {
    let app = spawn_app().await;
    let token = enrol(&app, "anna").await;
    let view = ocra_request(&app, "14.00").await;
    let other = ocra_request(&app, "99.00").await;
    assert_ne!(
        view["challenge"], other["challenge"],
        "the amount changes the challenge"
    );
    let foreign = token.code(other["challenge"].as_str().unwrap(), 0);
    for left in [4, 3, 2, 1, 0] {
        let reply = verify(&app, &view, &foreign).await;
        assert_problem(&reply, 422, "invalid_otp");
        assert_eq!(reply.body["attempts_left"], left);
    }
    let polled = app.poll(view["id"].as_str().unwrap()).await;
    assert_eq!(polled.body["status"], "REJECTED");
    assert_eq!(polled.body["reason"], "too_many_attempts");
    let right = token.code(view["challenge"].as_str().unwrap(), 0);
    assert_problem(&verify(&app, &view, &right).await, 409, "not_pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_request_with_an_ocra_fallback_can_be_confirmed_offline() {
    let app = spawn_app().await;
    app.enrol_phone("anna").await;
    let token = enrol(&app, "anna").await;
    let mut body = create_body("anna", transfer("anna", "15.00"));
    body["fallback"] = "ocra".into();
    let view = app
        .client(Method::POST, "/v1/action-requests", Some(&body))
        .await
        .body;
    assert_eq!(view["method"], "push");
    let challenge = view["challenge"].as_str().expect("a fallback challenge");
    let confirmed = verify(&app, &view, &token.code(challenge, 0)).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let mut no_fallback = create_body("anna", transfer("anna", "16.00"));
    no_fallback["fallback"] = "sms".into();
    let reply = app
        .client(Method::POST, "/v1/action-requests", Some(&no_fallback))
        .await;
    assert_problem(&reply, 400, "invalid_request");
}
