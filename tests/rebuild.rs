//! Rebuilding the read models from the log gives back exactly the tables the server kept inline,
//! and the running server keeps answering polls.

mod common;

use common::{spawn_app, transfer, TestApp, ACTION};
use countersign_projections::database::Database;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Row;

/// The SQLite pool the test server runs on.
fn sqlite(app: &TestApp) -> &sqlx::SqlitePool {
    match &app.state.db {
        Database::Sqlite(store) => store.pool(),
        Database::Postgres(_) => panic!("this test reads SQLite's catalogue"),
    }
}

/// Every row of `table`, each column as its SQL literal (`quote()`), ordered by `order`.
async fn snapshot(app: &TestApp, table: &str, order: &str) -> Vec<Vec<String>> {
    let pool = sqlite(app);
    let columns: Vec<String> = sqlx::query(&format!(
        "select name from pragma_table_info('{table}') order by cid"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>(0))
    .collect();
    assert!(!columns.is_empty(), "table {table} exists");
    let quoted: Vec<String> = columns.iter().map(|c| format!("quote({c})")).collect();
    let sql = format!("select {} from {table} order by {order}", quoted.join(", "));
    sqlx::query(&sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|i| row.get::<String, _>(i))
                .collect()
        })
        .collect()
}

fn rebuild(app: &TestApp, name: &str) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["--database-url", &app.url, "projections", "rebuild", name])
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "rebuild {name}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilt_read_models_equal_the_inline_ones() {
    let app = spawn_app().await;
    let anna = app.enrol_phone("anna").await;
    let bob = app.enrol_phone("bob").await;
    let spare = app.enrol_phone("bob").await;

    let payload = transfer("anna", "1.00");
    let (_, token) = app.confirmed_request(&anna, "anna", payload.clone()).await;
    let consume = json!({"token": token, "action": ACTION, "payload": payload});
    assert_eq!(
        app.client(Method::POST, "/v1/tokens/consume", Some(&consume))
            .await
            .status,
        StatusCode::OK
    );
    app.confirmed_request(&anna, "anna", transfer("anna", "2.00"))
        .await;
    let rejected = app.create_request("bob", transfer("bob", "3.00")).await;
    let reply = app
        .sign_and_decide(&bob, rejected["id"].as_str().unwrap(), "reject")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let cancelled = app.create_request("anna", transfer("anna", "4.00")).await;
    let path = format!(
        "/v1/action-requests/{}/cancel",
        cancelled["id"].as_str().unwrap()
    );
    assert_eq!(
        app.client(Method::POST, &path, None).await.status,
        StatusCode::OK
    );
    let failed = app.create_request("anna", transfer("anna", "5.00")).await;
    let reply = app
        .decide(
            &anna,
            failed["id"].as_str().unwrap(),
            "confirm",
            &common::device::b64(&[1; 64]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let pending = app.create_request("bob", transfer("bob", "6.00")).await;
    let revoke = format!("/v1/users/bob/devices/{}", spare.id);
    assert_eq!(
        app.client(Method::DELETE, &revoke, None).await.status,
        StatusCode::NO_CONTENT
    );

    let requests = snapshot(&app, "action_request_status", "id").await;
    let addressed = snapshot(&app, "action_request_devices", "device_id, request_id").await;
    let devices = snapshot(&app, "devices", "id").await;
    assert_eq!(requests.len(), 6);
    assert_eq!(devices.len(), 3);

    let damage = [
        "delete from action_request_status where status = 'REJECTED'",
        "update action_request_status set view = '{}' where status = 'CONSUMED'",
        "delete from action_request_devices",
        "update devices set name = 'tampered', status = 'active'",
    ];
    for sql in damage {
        sqlx::query(sql).execute(sqlite(&app)).await.unwrap();
    }
    assert_ne!(
        snapshot(&app, "devices", "id").await,
        devices,
        "the damage shows"
    );

    rebuild(&app, "status");
    rebuild(&app, "devices");
    assert_eq!(
        snapshot(&app, "action_request_status", "id").await,
        requests
    );
    assert_eq!(
        snapshot(&app, "action_request_devices", "device_id, request_id").await,
        addressed
    );
    assert_eq!(snapshot(&app, "devices", "id").await, devices);

    let id = pending["id"].as_str().unwrap();
    let polled = app.poll(id).await;
    assert_eq!(polled.status, StatusCode::OK);
    assert_eq!(polled.body["status"], "PENDING");
    let reply = app.sign_and_decide(&bob, id, "confirm").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let polled = app.poll(id).await;
    assert_eq!(polled.body["status"], "CONFIRMED");
    assert!(polled.body["token"].is_string());
    let listed = app.client(Method::GET, "/v1/users/bob/devices", None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
}
