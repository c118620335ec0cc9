//! The asynchronous daily statistics over real HTTP: they follow the log to its head, are
//! served to each client for its own requests, and when the projection fails on an event it
//! stops there, says so in readiness and in the ops listing, and resumes without skipping once
//! the cause is fixed, on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::{eventually, spawn_app_on_with, spawn_app_with, transfer, Auth, TestApp};
use countersign_api::credentials::Role;
use countersign_testing::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn app() -> TestApp {
    spawn_app_with(|config| config.projection_retry = Duration::from_millis(100)).await
}

/// The default client's statistics for today, once `check` holds for them.
async fn stats_when(app: &TestApp, check: impl Fn(&Value) -> bool) -> Value {
    eventually(Duration::from_secs(10), || async {
        let reply = app.client(Method::GET, "/v1/stats/daily", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let today = reply.body.as_array()?.last()?.clone();
        check(&today).then_some(today)
    })
    .await
}

#[tokio::test]
async fn daily_statistics_count_requests_and_outcomes_per_client() {
    let app = app().await;
    let phone = app.enrol_phone("anna").await;
    let (_, token) = app
        .confirmed_request(&phone, "anna", transfer("anna", "1.00"))
        .await;
    let consume =
        json!({"token": token, "action": common::ACTION, "payload": transfer("anna", "1.00")});
    let consumed = app
        .client(Method::POST, "/v1/tokens/consume", Some(&consume))
        .await;
    assert_eq!(consumed.status, StatusCode::OK);
    let declined = app.create_request("anna", transfer("anna", "2.00")).await;
    app.sign_and_decide(&phone, declined["id"].as_str().unwrap(), "reject")
        .await;
    let cancelled = app.create_request("anna", transfer("anna", "3.00")).await;
    let path = format!(
        "/v1/action-requests/{}/cancel",
        cancelled["id"].as_str().unwrap()
    );
    app.client(Method::POST, &path, None).await;
    app.create_request("anna", transfer("anna", "4.00")).await;

    let today = stats_when(&app, |d| d["requests"] == 4 && d["consumed"] == 1).await;
    assert_eq!(
        today["day"],
        chrono::Utc::now().format("%Y-%m-%d").to_string()
    );
    assert_eq!(today["confirmed"], 1);
    assert_eq!(today["rejected"], 2, "declined and cancelled");
    assert_eq!(today["expired"], 0);
    assert!(today["median_decision_ms"].as_u64().is_some(), "{today}");

    // Another client sees only its own requests.
    let (other, secret) = app
        .credential(Role::Client, "other bank", &["bank:transfers:*"])
        .await;
    let theirs = app
        .call(
            Method::GET,
            "/v1/stats/daily",
            Auth::Basic(&other, &secret),
            None,
        )
        .await;
    assert_eq!(theirs.body, json!([]));
    let bad = app
        .client(Method::GET, "/v1/stats/daily?from=yesterday", None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // The earliest day there is: the default period cannot reach before it.
    let earliest = app
        .client(Method::GET, "/v1/stats/daily?to=-262143-01-01", None)
        .await;
    assert_eq!(earliest.status, StatusCode::OK, "{:?}", earliest.body);

    // The projection is listed at the head.
    let (admin, admin_secret) = app.credential(Role::Admin, "ops", &[]).await;
    let head = app.head().await;
    let listed = eventually(Duration::from_secs(10), || async {
        let reply = app
            .call(
                Method::GET,
                "/v1/ops/projections",
                Auth::Basic(&admin, &admin_secret),
                None,
            )
            .await;
        let stats = reply
            .body
            .as_array()?
            .iter()
            .find(|p| p["name"] == "daily_stats")?
            .clone();
        (stats["checkpoint"].as_u64()? >= head).then_some(stats)
    })
    .await;
    assert_eq!(listed["state"], "running");
}

#[tokio::test]
async fn on_sqlite_a_projection_stopped_by_an_event_resumes_without_skipping() {
    stopped_by_an_event_then_resumed(app().await).await;
}

#[tokio::test]
async fn on_postgres_a_projection_stopped_by_an_event_resumes_without_skipping() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let app = spawn_app_on_with(&database.url, |config| {
        config.projection_retry = Duration::from_millis(100);
    })
    .await;
    stopped_by_an_event_then_resumed(app).await;
    // The server is gone (the test body owned it); only now is the database dropped.
    drop(database);
}

/// The daily statistics' table is renamed away: the projection stops on the next event, says so
/// in readiness and the ops listing, keeps what came before, does not skip the event while it
/// fails, and resumes from it once the table is back.
async fn stopped_by_an_event_then_resumed(app: TestApp) {
    let phone = app.enrol_phone("ben").await;
    for n in 0..3 {
        app.create_request("ben", transfer("ben", &format!("{n}.00")))
            .await;
    }
    stats_when(&app, |d| d["requests"] == 3).await;

    // The statistics table goes away: the next request's events cannot be applied.
    let pool = app.state.pool();
    pool.run(
        "alter table client_daily_stats rename to client_daily_stats_away",
        &[],
    )
    .await
    .unwrap();
    let poison = app.create_request("ben", transfer("ben", "9.00")).await;
    let poison_position = app
        .state
        .store
        .read_stream(&format!(
            "action-request-{}",
            poison["id"].as_str().unwrap()
        ))
        .await
        .unwrap()[0]
        .position;
    let confirmed = app
        .confirmed_request(&phone, "ben", transfer("ben", "10.00"))
        .await;
    assert_eq!(confirmed.0["status"], "CONFIRMED");

    let ready = eventually(Duration::from_secs(10), || async {
        let reply = app.call(Method::GET, "/readyz", Auth::None, None).await;
        (reply.status == StatusCode::SERVICE_UNAVAILABLE).then_some(reply)
    })
    .await;
    assert_eq!(ready.body["projection"], "daily_stats");
    assert_eq!(ready.body["failed_position"], poison_position);
    let (admin, secret) = app.credential(Role::Admin, "ops", &[]).await;
    let listed = app
        .call(
            Method::GET,
            "/v1/ops/projections",
            Auth::Basic(&admin, &secret),
            None,
        )
        .await;
    let stats = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "daily_stats")
        .cloned()
        .unwrap();
    assert_eq!(stats["state"], "stopped");
    assert_eq!(stats["failed_position"], poison_position);
    let before = app
        .state
        .store
        .read_all(0, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.position)
        .filter(|p| *p < poison_position)
        .max()
        .unwrap();
    assert_eq!(
        stats["checkpoint"], before,
        "everything before it is applied"
    );
    assert!(
        stats["error"]
            .as_str()
            .unwrap()
            .contains("client_daily_stats"),
        "{stats}"
    );
    // Still stopped after several retries: it does not skip the event.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let still = app.call(Method::GET, "/readyz", Auth::None, None).await;
    assert_eq!(still.status, StatusCode::SERVICE_UNAVAILABLE);

    // Fixed: it resumes from the failing event and counts everything.
    pool.run(
        "alter table client_daily_stats_away rename to client_daily_stats",
        &[],
    )
    .await
    .unwrap();
    let today = stats_when(&app, |d| d["requests"] == 5 && d["confirmed"] == 1).await;
    assert_eq!(today["rejected"], 0);
    let ready = app.call(Method::GET, "/readyz", Auth::None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
}
