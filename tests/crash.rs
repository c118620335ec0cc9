//! Durability: whatever the server acknowledged survives a SIGKILL of its process.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::device::Phone;
use common::process::start;
use common::{create_body, transfer};
use p256::pkcs8::EncodePublicKey;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A request that may fail (the server is killed under it): status and body, or `None`.
async fn try_call(
    http: &reqwest::Client,
    method: Method,
    url: String,
    auth: &Auth,
    body: Option<&Value>,
) -> Option<(StatusCode, Value)> {
    let mut request = http.request(method, url).timeout(Duration::from_secs(10));
    request = match auth {
        Auth::Basic(id, secret) => request.basic_auth(id, Some(secret)),
        Auth::Bearer(token) => request.bearer_auth(token),
    };
    if let Some(body) = body {
        request = request.json(body);
    }
    let answer = request.send().await.ok()?;
    let status = answer.status();
    let body = answer.json().await.unwrap_or(Value::Null);
    Some((status, body))
}

enum Auth {
    Basic(String, String),
    Bearer(String),
}

/// What the server acknowledged, per request id.
type Ledger = Arc<Mutex<HashMap<String, &'static str>>>;

async fn worker(base: String, client: Auth, n: usize, stop: Arc<AtomicBool>, ledger: Ledger) {
    let http = reqwest::Client::new();
    let uid = format!("user{n}");
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let public_key =
        URL_SAFE_NO_PAD.encode(key.verifying_key().to_public_key_der().unwrap().as_bytes());
    let enrol = json!({"kind": "push", "name": "phone", "public_key": public_key});
    let Some((StatusCode::CREATED, device)) = try_call(
        &http,
        Method::POST,
        format!("{base}/v1/users/{uid}/devices"),
        &client,
        Some(&enrol),
    )
    .await
    else {
        return;
    };
    let phone = Phone {
        id: device["device_id"].as_str().unwrap().parse().unwrap(),
        token: device["device_token"].as_str().unwrap().to_owned(),
        key,
    };
    let bearer = Auth::Bearer(phone.token.clone());
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let body = create_body(&uid, transfer(&uid, &format!("{round}.00")));
        let Some((StatusCode::CREATED, created)) = try_call(
            &http,
            Method::POST,
            format!("{base}/v1/action-requests"),
            &client,
            Some(&body),
        )
        .await
        else {
            return;
        };
        let id = created["id"].as_str().unwrap().to_owned();
        ledger.lock().unwrap().insert(id.clone(), "PENDING");
        let (verb, status, auth) = match round % 3 {
            0 => ("confirm", "CONFIRMED", &bearer),
            1 => ("cancel", "REJECTED", &client),
            _ => continue,
        };
        let body = if verb == "confirm" {
            let inbox = format!("{base}/v1/devices/{}/inbox", phone.id);
            let Some((StatusCode::OK, items)) =
                try_call(&http, Method::GET, inbox, &bearer, None).await
            else {
                return;
            };
            let item = items
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["id"] == id.as_str())
                .unwrap()
                .clone();
            Some(json!({"device_id": phone.id, "signature": phone.sign(&item, "confirm")}))
        } else {
            None
        };
        let url = format!("{base}/v1/action-requests/{id}/{verb}");
        match try_call(&http, Method::POST, url, auth, body.as_ref()).await {
            Some((StatusCode::OK, _)) => {
                ledger.lock().unwrap().insert(id, status);
            }
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_command_survives_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let (id, secret) = common::process::client_credential(&url, dir.path());
    let (id, secret) = (id.to_string(), secret);
    let mut server = start(&url, dir.path(), &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let ledger: Ledger = Arc::default();
    let workers: Vec<_> = (0..20)
        .map(|n| {
            let client = Auth::Basic(id.clone(), secret.clone());
            tokio::spawn(worker(
                server.base.clone(),
                client,
                n,
                stop.clone(),
                ledger.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let acknowledged = ledger.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 20,
        "only {} requests in {:?}",
        acknowledged.len(),
        started.elapsed()
    );

    let server = start(&url, dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let client = Auth::Basic(id.clone(), secret.clone());
    let mut lost = Vec::new();
    for (request, answered) in &acknowledged {
        let url = format!("{}/v1/action-requests/{request}", server.base);
        let (status, view) = try_call(&http, Method::GET, url, &client, None)
            .await
            .expect("the restarted server answers");
        let now = view["status"].as_str().unwrap_or("");
        let kept = match *answered {
            "PENDING" => status == StatusCode::OK,
            "CONFIRMED" => ["CONFIRMED", "CONSUMED", "EXPIRED"].contains(&now),
            _ => now == *answered,
        };
        if !kept {
            lost.push(format!(
                "{request}: answered {answered}, now {status} {now}"
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged lost:\n{}",
        lost.len(),
        acknowledged.len(),
        lost.join("\n")
    );
}
