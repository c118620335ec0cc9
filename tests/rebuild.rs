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

/// Every read model's tables, with the columns that order their rows.
const TABLES: [(&str, &str); 7] = [
    ("action_request_status", "id"),
    ("devices", "id"),
    ("audit_search", "id"),
    ("device_inbox", "device_id, request_id"),
    ("client_daily_stats", "client_id, day"),
    ("stats_requests", "request_id"),
    ("decision_times", "request_id"),
];

/// Every row of `table`, each column as its SQL literal (`quote()`), in a fixed order.
async fn snapshot(app: &TestApp, table: &str) -> Vec<Vec<String>> {
    let order = TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, order)| *order)
        .expect("a known table");
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

/// Every table of every read model, once the server's projections have reached the head.
async fn snapshot_all(app: &TestApp) -> std::collections::HashMap<&'static str, Vec<Vec<String>>> {
    let head = app.head().await;
    for projection in countersign_projections::follow::ASYNC {
        let name = projection.name();
        let reached = app
            .state
            .progress
            .reached(name, head, std::time::Duration::from_secs(10))
            .await;
        assert!(reached, "{name} follows the log to its head");
    }
    let mut out = std::collections::HashMap::new();
    for (table, _) in TABLES {
        out.insert(table, snapshot(app, table).await);
    }
    out
}

/// Runs `countersign projections rebuild WHAT` against the server's database while it serves;
/// its standard output.
fn rebuild(app: &TestApp, what: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["--database-url", &app.url, "projections", "rebuild", what])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "rebuild {what}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
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

    let live = snapshot_all(&app).await;
    assert_eq!(live["action_request_status"].len(), 6);
    assert_eq!(live["audit_search"].len(), 6);
    assert_eq!(live["devices"].len(), 3);
    // Pending: anna's request with a failed signature (one phone) and bob's (two phones).
    assert_eq!(live["device_inbox"].len(), 3);

    let damage = [
        "delete from action_request_status where status = 'REJECTED'",
        "update action_request_status set view = '{}' where status = 'CONSUMED'",
        "update devices set name = 'tampered', status = 'active'",
        "update audit_search set status = 'PENDING'",
        "delete from device_inbox",
        "update client_daily_stats set confirmed = 7",
        "delete from decision_times",
    ];
    for sql in damage {
        sqlx::query(sql).execute(sqlite(&app)).await.unwrap();
    }
    let damaged = snapshot_all(&app).await;
    for table in TABLES.iter().map(|(table, _)| *table) {
        if table != "stats_requests" {
            assert_ne!(damaged[table], live[table], "the damage to {table} shows");
        }
    }

    let output = rebuild(&app, "--all");
    assert!(
        output.contains("rebuilt all:") && output.contains("events/s"),
        "{output}"
    );
    for (table, _) in TABLES {
        assert_eq!(snapshot(&app, table).await, live[table], "{table}");
    }

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
