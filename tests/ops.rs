//! Operations over real HTTP: metrics in the Prometheus format for admins, the read models'
//! place in the log, a rebuild started through the API while polling keeps answering, the
//! correlation id a request carries into its events and its answer, and readiness.

mod common;

use std::time::Duration;

use common::{eventually, spawn_app, transfer, Auth};
use countersign_api::credentials::Role;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn metrics_count_requests_commands_and_commits_for_admins_only() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "5.00")).await;
    let id = created["id"].as_str().unwrap();
    app.sign_and_decide(&phone, id, "confirm").await;
    app.poll(id).await;

    let (admin, secret) = app.credential(Role::Admin, "ops", &[]).await;
    let reply = common::send(
        &app.http,
        Method::GET,
        &format!("{}/metrics", app.base),
        Auth::Basic(&admin, &secret),
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply
        .header("content-type")
        .starts_with("application/openmetrics-text"));
    let text = reply.body.as_str().expect("text");
    for expected in [
        r#"countersign_http_request_duration_seconds_count{method="POST",route="/v1/action-requests",status="201"} 1"#,
        r#"countersign_http_request_duration_seconds_count{method="GET",route="/v1/action-requests/{id}",status="200"} 1"#,
        r#"countersign_commands_total{command="create",outcome="ok"} 1"#,
        r#"countersign_commands_total{command="confirm",outcome="ok"} 1"#,
        r#"countersign_commands_total{command="enrol_device",outcome="ok"} 1"#,
        r#"countersign_projection_lag_events{projection="status"} 0"#,
        "countersign_outbox_backlog 0",
        "countersign_group_commit_appends_count 3",
        "countersign_commit_duration_seconds_count 3",
        "# EOF",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let head = app.head().await;
    assert!(text.contains(&format!("countersign_log_head_position {head}")));

    let as_client = app.client(Method::GET, "/metrics", None).await;
    assert_eq!(as_client.status, StatusCode::FORBIDDEN);
    let anonymous = app.call(Method::GET, "/metrics", Auth::None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_refused_command_is_counted_as_refused() {
    let app = spawn_app().await;
    app.enrol_phone("ben").await;
    let created = app.create_request("ben", transfer("ben", "5.00")).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/action-requests/{id}/cancel");
    assert_eq!(
        app.client(Method::POST, &path, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.client(Method::POST, &path, None).await.status,
        StatusCode::CONFLICT
    );
    let (admin, secret) = app.credential(Role::Admin, "ops", &[]).await;
    let metrics = app
        .call(Method::GET, "/metrics", Auth::Basic(&admin, &secret), None)
        .await;
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains(r#"countersign_commands_total{command="cancel",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"countersign_commands_total{command="cancel",outcome="refused"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_correlation_id_reaches_the_events_and_the_answer() {
    let app = spawn_app().await;
    app.enrol_phone("cleo").await;
    let body = common::create_body("cleo", transfer("cleo", "9.00"));
    let reply = common::send(
        &app.http,
        Method::POST,
        &format!("{}/v1/action-requests", app.base),
        Auth::Basic(&app.client_id, &app.secret),
        &[
            ("x-correlation-id", "bank-ticket-4711"),
            ("content-type", "application/json"),
        ],
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header("x-correlation-id"), "bank-ticket-4711");
    let id = reply.body["id"].as_str().unwrap();
    let events = app
        .state
        .store
        .read_stream(&format!("action-request-{id}"))
        .await
        .unwrap();
    assert!(events
        .iter()
        .all(|e| e.metadata.correlation_id.as_deref() == Some("bank-ticket-4711")));

    // Without one (or with an unusable one), the server makes one and answers with it.
    let polled = app.poll(id).await;
    let made = polled.header("x-correlation-id");
    assert_eq!(made.len(), 36, "{made:?}");
}

#[tokio::test]
async fn projections_are_listed_and_rebuilt_through_the_api_while_polls_answer() {
    let app = spawn_app().await;
    let phone = app.enrol_phone("dora").await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let created = app
            .create_request("dora", transfer("dora", &format!("{n}.00")))
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    app.sign_and_decide(&phone, &ids[0], "confirm").await;
    let (admin, secret) = app.credential(Role::Admin, "ops", &[]).await;
    let admin = Auth::Basic(&admin, &secret);

    let listed = app
        .call(Method::GET, "/v1/ops/projections", admin, None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let status = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "status")
        .cloned()
        .unwrap();
    assert_eq!(status["lag"], 0);
    assert_eq!(status["state"], "live");
    assert_eq!(status["head"], app.head().await);

    let started = app
        .call(
            Method::POST,
            "/v1/ops/projections/status/rebuild",
            admin,
            None,
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    // Polls answer correctly throughout.
    for id in &ids {
        let polled = app.poll(id).await;
        assert_eq!(polled.status, StatusCode::OK);
        let expected = if id == &ids[0] {
            "CONFIRMED"
        } else {
            "PENDING"
        };
        assert_eq!(polled.body["status"], expected);
    }
    eventually(Duration::from_secs(10), || async {
        let listed = app
            .call(Method::GET, "/v1/ops/projections", admin, None)
            .await;
        let status = listed
            .body
            .as_array()?
            .iter()
            .find(|p| p["name"] == "status")?
            .clone();
        (status["rebuild"]["state"] == "live").then_some(())
    })
    .await;
    for id in &ids {
        assert_eq!(app.poll(id).await.status, StatusCode::OK);
    }

    let unknown = app
        .call(
            Method::POST,
            "/v1/ops/projections/nope/rebuild",
            admin,
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let as_client = app.client(Method::GET, "/v1/ops/projections", None).await;
    assert_eq!(as_client.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn readiness_reports_the_head() {
    let app = spawn_app().await;
    let ready = app.call(Method::GET, "/readyz", Auth::None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["status"], "ready");
}
