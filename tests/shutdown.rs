//! SIGTERM under load: the server stops accepting, answers its long polls at once, ends its
//! event streams cleanly, finishes the commands in flight, exits 0, and every command it
//! acknowledged is there after a restart.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::device::b64;
use common::process::{client_credential, start};
use common::{send, transfer, Auth, ACTION};
use p256::pkcs8::EncodePublicKey;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

async fn post(
    http: &reqwest::Client,
    url: String,
    client: &(Uuid, String),
    body: serde_json::Value,
) -> Option<(StatusCode, serde_json::Value)> {
    let answer = http
        .post(url)
        .basic_auth(client.0, Some(&client.1))
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = answer.status();
    Some((status, answer.json().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_ends_long_polls_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let client = client_credential(&url, dir.path());
    let mut server = start(&url, dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let public_key = b64(key.verifying_key().to_public_key_der().unwrap().as_bytes());
    let enrol = json!({"kind": "push", "name": "phone", "public_key": public_key});
    let (status, _) = post(
        &http,
        format!("{}/v1/users/anna/devices", server.base),
        &client,
        enrol,
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let body = |n: usize| json!({"action": ACTION, "uid": "anna", "payload": transfer("anna", &format!("{n}.00"))});
    let (_, first) = post(
        &http,
        format!("{}/v1/action-requests", server.base),
        &client,
        body(0),
    )
    .await
    .unwrap();
    let first_id = first["id"].as_str().unwrap().to_owned();

    let poll_url = format!("{}/v1/action-requests/{first_id}?wait=30", server.base);
    let poll = {
        let (http, client) = (http.clone(), client.clone());
        tokio::spawn(async move {
            let auth = Auth::Basic(&client.0, &client.1);
            let reply = send(
                &http,
                Method::GET,
                &poll_url,
                auth,
                &[("if-none-match", "\"v1\"")],
                None,
            )
            .await;
            (reply.status, Instant::now())
        })
    };
    let stream_url = format!("{}/v1/action-requests/{first_id}/events", server.base);
    let stream = {
        let (http, client) = (http.clone(), client.clone());
        tokio::spawn(async move {
            let mut response = http
                .get(stream_url)
                .basic_auth(client.0, Some(&client.1))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let mut received = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                received.push_str(&String::from_utf8_lossy(&chunk));
            }
            (received, Instant::now())
        })
    };
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (http, client, base, acknowledged) = (
                http.clone(),
                client.clone(),
                server.base.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                for n in 1.. {
                    match post(
                        &http,
                        format!("{base}/v1/action-requests"),
                        &client,
                        body(w * 10_000 + n),
                    )
                    .await
                    {
                        Some((StatusCode::CREATED, view)) => acknowledged
                            .lock()
                            .unwrap()
                            .push(view["id"].as_str().unwrap().to_owned()),
                        _ => break,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pid = server.child.id().to_string();
    let signalled = Instant::now();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());

    let (status, answered) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status,
        StatusCode::NOT_MODIFIED,
        "the long poll answers, unchanged"
    );
    assert!(answered.duration_since(signalled) < Duration::from_secs(3));
    let (received, ended) = tokio::time::timeout(Duration::from_secs(5), stream)
        .await
        .expect("the event stream ends on SIGTERM")
        .unwrap();
    assert!(received.contains("event: status"), "{received:?}");
    assert!(ended.duration_since(signalled) < Duration::from_secs(3));
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        (status, server)
    });
    let (exit, _stopped) = tokio::time::timeout(Duration::from_secs(10), exit)
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "the server exits 0 on SIGTERM: {exit:?}");
    for worker in workers {
        worker.await.unwrap();
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 8,
        "only {} commands ran",
        acknowledged.len()
    );
    let server = start(&url, dir.path(), &[]).await;
    for id in &acknowledged {
        let url = format!("{}/v1/action-requests/{id}", server.base);
        let reply = send(
            &http,
            Method::GET,
            &url,
            Auth::Basic(&client.0, &client.1),
            &[],
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "acknowledged {id} is kept");
    }
}
