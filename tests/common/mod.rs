//! Shared helpers of the end-to-end tests: an in-process server on a temporary database, raw
//! HTTP calls that keep status, headers and body, a push authenticator that signs approvals,
//! and assertions on problem documents.
#![allow(dead_code)]

pub mod device;
mod flows;
pub mod process;
pub mod receiver;

use std::future::Future;
use std::time::{Duration, Instant};

use countersign_api::credentials::{self, Role};
use countersign_api::state::AppState;
use countersign_api::{Application, Config};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The action every test client may request.
pub const ACTION: &str = "bank:transfers:create";

/// A running server with one client credential allowed `bank:transfers:*`.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The database URL (`sqlite://…`).
    pub url: String,
    /// The server's shared state, for reading the log directly.
    pub state: AppState,
    /// The client credential's id.
    pub client_id: Uuid,
    /// The client credential's secret.
    pub secret: String,
    /// The temporary folder holding the database and the key file.
    pub dir: tempfile::TempDir,
    /// An HTTP client.
    pub http: reqwest::Client,
    server: JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One HTTP exchange.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as JSON (`null` when empty, a string when not JSON).
    pub body: Value,
}

impl Reply {
    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// No `Authorization` header.
    None,
    /// HTTP Basic.
    Basic(&'a Uuid, &'a str),
    /// A device bearer token.
    Bearer(&'a str),
}

/// A server with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose configuration `adjust` may change before it starts, on a new SQLite file.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    spawn_app_in(dir, &url, adjust).await
}

/// Sends a request with raw headers and an optional raw body.
pub async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    auth: Auth<'_>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let mut request = http.request(method, url);
    request = match auth {
        Auth::None => request,
        Auth::Basic(id, secret) => request.basic_auth(id, Some(secret)),
        Auth::Bearer(token) => request.bearer_auth(token),
    };
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a readable body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

impl TestApp {
    /// A JSON request (or none) with the given authentication.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        match body {
            Some(body) => {
                let bytes = serde_json::to_vec(body).expect("JSON encodes");
                let headers = [("content-type", "application/json")];
                send(&self.http, method, &url, auth, &headers, Some(bytes)).await
            }
            None => send(&self.http, method, &url, auth, &[], None).await,
        }
    }

    /// A JSON request as the default client.
    pub async fn client(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        self.call(
            method,
            path,
            Auth::Basic(&self.client_id, &self.secret),
            body,
        )
        .await
    }

    /// Another credential with `role` (client patterns in `actions`): (id, secret).
    pub async fn credential(&self, role: Role, name: &str, actions: &[&str]) -> (Uuid, String) {
        let actions: Vec<String> = actions.iter().map(|a| (*a).to_owned()).collect();
        let made = credentials::create(self.state.pool(), role, name, &actions)
            .await
            .expect("a credential");
        (made.id, made.secret)
    }
}

/// The body of a push request for `uid` carrying `payload`.
pub fn create_body(uid: &str, payload: Value) -> Value {
    json!({"action": ACTION, "uid": uid, "payload": payload, "method": "push"})
}

/// A transfer payload for `uid`.
pub fn transfer(uid: &str, amount: &str) -> Value {
    json!({"amount": amount, "currency": "EUR", "bankTransferRecipientId": "R1", "uid": uid})
}

/// Asserts a problem document with `status` and `code`.
pub fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "status of {:?}", reply.body);
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert_eq!(reply.body["code"], code, "code of {:?}", reply.body);
    assert_eq!(reply.body["status"], status);
    assert_eq!(
        reply.body["type"],
        format!("urn:countersign:problem:{code}")
    );
}

/// Awaits `check` until it gives `Some` or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "the condition did not hold within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server with default settings on the database at `url`, `postgres://…` or `sqlite://…`
/// (for PostgreSQL, a `countersign_testing::TestDatabase`'s, which the caller keeps alive for as
/// long as the server runs). The key file is in a temporary folder of its own.
pub async fn spawn_app_on(url: &str) -> TestApp {
    spawn_app_on_with(url, |_| {}).await
}

/// [`spawn_app_on`] with a configuration that `adjust` may change before the server starts.
pub async fn spawn_app_on_with(url: &str, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary folder");
    spawn_app_in(dir, url, adjust).await
}

/// A server on the database at `url`, with its key file in `dir` (kept as long as the app).
async fn spawn_app_in(
    dir: tempfile::TempDir,
    url: &str,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config::new(url, dir.path().join("t.keys"));
    adjust(&mut config);
    let app = Application::build(config).await.expect("the server builds");
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let client = credentials::create(
        state.pool(),
        Role::Client,
        "bank",
        &["bank:transfers:*".to_owned()],
    )
    .await
    .expect("a client credential");
    let server = tokio::spawn(async move {
        if let Err(error) = app.run_until(std::future::pending()).await {
            panic!("the server stopped: {error:#}");
        }
    });
    TestApp {
        base,
        url: url.to_owned(),
        state,
        client_id: client.id,
        secret: client.secret,
        dir,
        http: reqwest::Client::new(),
        server,
    }
}
