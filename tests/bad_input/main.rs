//! Malformed and hostile input: every bad request gets a problem document with the right status
//! and code, never a 500, and records nothing unless a failed attempt is legitimately counted.

#[path = "../common/mod.rs"]
mod common;
mod rows;

use common::device::Phone;
use common::{assert_problem, send, spawn_app, transfer, Auth, TestApp};
use reqwest::StatusCode;
use rows::{create_rows, other_rows, Row, Who};

async fn send_row(app: &TestApp, phone: &Phone, row: &Row) -> common::Reply {
    let auth = match row.who {
        Who::Client => Auth::Basic(&app.client_id, &app.secret),
        Who::Device => Auth::Bearer(&phone.token),
    };
    let headers: Vec<(&str, &str)> = row.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let url = format!("{}{}", app.base, row.path);
    send(
        &app.http,
        row.method.clone(),
        &url,
        auth,
        &headers,
        row.body.clone(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_request_is_a_problem_that_records_nothing() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "1.00")).await;
    let id = created["id"].as_str().unwrap();
    let item = app.inbox_item(&phone, id).await;
    let mut failures = Vec::new();
    for row in create_rows()
        .into_iter()
        .chain(other_rows(id, &phone, &item))
    {
        let head = app.head().await;
        let reply = send_row(&app, &phone, &row).await;
        assert_ne!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}: {:?}",
            row.name,
            reply.body
        );
        let problem = reply.header("content-type") == "application/problem+json"
            && reply.body["type"] == format!("urn:countersign:problem:{}", row.code);
        if reply.status.as_u16() != row.status || reply.body["code"] != row.code || !problem {
            failures.push(format!(
                "{}: expected {} {}, got {} {}",
                row.name, row.status, row.code, reply.status, reply.body
            ));
        }
        if app.head().await != head {
            failures.push(format!("{}: the event log grew", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let polled = app.poll(id).await;
    assert_eq!(polled.body["status"], "PENDING");
    assert_eq!(polled.body["attempts_left"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_signatures_count_as_attempts_or_conflict() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    let first = app.create_request("anna", transfer("anna", "1.00")).await;
    let second = app.create_request("anna", transfer("anna", "2.00")).await;
    let (a, b) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    let item = app.inbox_item(&phone, a).await;
    let confirm = phone.sign(&item, "confirm");

    let head = app.head().await;
    let forged = common::device::b64(&[7u8; 64]);
    let reply = app.decide(&phone, a, "confirm", &forged).await;
    assert_problem(&reply, 422, "invalid_signature");
    assert_eq!(reply.body["attempts_left"], 4);
    let reply = app.decide(&phone, a, "reject", &confirm).await;
    assert_problem(&reply, 422, "invalid_signature");
    assert_eq!(
        reply.body["attempts_left"], 3,
        "a confirm signature is no reject"
    );
    let reply = app.decide(&phone, b, "confirm", &confirm).await;
    assert_problem(&reply, 422, "invalid_signature");
    assert_eq!(
        reply.body["attempts_left"], 4,
        "a signature for one request is no other's"
    );
    assert_eq!(
        app.head().await,
        head + 3,
        "each failed attempt is one event"
    );

    let reply = app.decide(&phone, a, "confirm", &confirm).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let head = app.head().await;
    let replayed = app.decide(&phone, a, "confirm", &confirm).await;
    assert_problem(&replayed, 409, "not_pending");
    assert_eq!(
        app.head().await,
        head,
        "a replay on a final request records nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fifth_bad_signature_rejects_the_request() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "1.00")).await;
    let id = created["id"].as_str().unwrap();
    let item = app.inbox_item(&phone, id).await;
    let other = Phone {
        id: phone.id,
        token: phone.token.clone(),
        key: p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng),
    };
    for left in [4, 3, 2, 1, 0] {
        let reply = app
            .decide(&phone, id, "confirm", &other.sign(&item, "confirm"))
            .await;
        assert_problem(&reply, 422, "invalid_signature");
        assert_eq!(reply.body["attempts_left"], left);
    }
    let polled = app.poll(id).await;
    assert_eq!(polled.body["status"], "REJECTED");
    assert_eq!(polled.body["reason"], "too_many_attempts");
    assert_eq!(polled.body["attempts_left"], 0);
    let late = app
        .decide(&phone, id, "confirm", &phone.sign(&item, "confirm"))
        .await;
    assert_problem(&late, 409, "not_pending");
}
