//! Server-Sent Events over real HTTP: a client follows a request to its final status, a
//! device follows its inbox; both resume after `Last-Event-ID`, send heartbeats while idle and
//! end cleanly.

mod common;

use std::time::Duration;

use common::{spawn_app_with, transfer, Auth, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// One event read off a stream.
#[derive(Debug)]
struct SseEvent {
    event: String,
    id: String,
    data: Value,
}

/// Reads a `text/event-stream` response event by event.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(app: &TestApp, path: &str, auth: Auth<'_>, last_id: Option<&str>) -> Self {
        let mut request = app.http.get(format!("{}{path}", app.base));
        request = match auth {
            Auth::Basic(id, secret) => request.basic_auth(id, Some(secret)),
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::None => request,
        };
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when the stream ends; fails after `limit`.
    async fn next(&mut self, limit: Duration) -> Option<SseEvent> {
        tokio::time::timeout(limit, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let (mut event, mut id, mut data) =
                        (String::new(), String::new(), String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("id:") {
                            id = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim_start());
                        }
                    }
                    if event.is_empty() && data.is_empty() {
                        continue;
                    }
                    let data = serde_json::from_str(&data).expect("event data is JSON");
                    return Some(SseEvent { event, id, data });
                }
                match self.response.chunk().await.expect("the stream reads") {
                    Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                    None => return None,
                }
            }
        })
        .await
        .expect("an event or the end in time")
    }

    /// Asserts nothing but heartbeat comments arrives for `quiet`; returns how many came.
    async fn only_heartbeats_for(&mut self, quiet: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + quiet;
        let mut heartbeats = 0;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                assert!(
                    block.lines().all(|l| l.is_empty() || l.starts_with(':')),
                    "expected only heartbeats, got {block:?}"
                );
                heartbeats += 1;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return heartbeats,
                Ok(chunk) => {
                    let bytes = chunk.unwrap().expect("the stream stays open");
                    self.buffer.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
    }
}

async fn app() -> TestApp {
    spawn_app_with(|config| {
        config.settings.sse_heartbeat = Duration::from_millis(100);
    })
    .await
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_request_stream_follows_every_change_and_ends_after_the_final_status() {
    let app = app().await;
    let phone = app.enrol_phone("anna").await;
    let created = app.create_request("anna", transfer("anna", "12.00")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/action-requests/{id}/events");
    let auth = Auth::Basic(&app.client_id, &app.secret);
    let mut stream = SseReader::open(&app, &path, auth, None).await;

    let first = stream.next(WAIT).await.expect("the current status first");
    assert_eq!(first.event, "status");
    assert_eq!(first.data["status"], "PENDING");
    assert_eq!(first.data["id"], id.as_str());
    assert!(stream.only_heartbeats_for(Duration::from_millis(400)).await >= 2);

    let confirmed = app.sign_and_decide(&phone, &id, "confirm").await;
    assert_eq!(confirmed.status, StatusCode::OK);
    let second = stream.next(WAIT).await.expect("the confirmation");
    assert_eq!(second.data["status"], "CONFIRMED");
    assert_ne!(second.id, first.id);
    let token = second.data["token"]
        .as_str()
        .expect("the client gets its token");

    let consume =
        json!({"token": token, "action": common::ACTION, "payload": transfer("anna", "12.00")});
    let consumed = app
        .client(Method::POST, "/v1/tokens/consume", Some(&consume))
        .await;
    assert_eq!(consumed.status, StatusCode::OK, "{:?}", consumed.body);
    let last = stream.next(WAIT).await.expect("the final status");
    assert_eq!(last.data["status"], "CONSUMED");
    assert!(stream.next(WAIT).await.is_none(), "the stream ends");

    // A request already final: one event, then the end.
    let mut again = SseReader::open(&app, &path, auth, None).await;
    assert_eq!(again.next(WAIT).await.unwrap().data["status"], "CONSUMED");
    assert!(again.next(WAIT).await.is_none());
    // Resuming after the final event: nothing more to send.
    let mut resumed = SseReader::open(&app, &path, auth, Some(&last.id)).await;
    assert!(resumed.next(WAIT).await.is_none());
}

#[tokio::test]
async fn last_event_id_resumes_without_repeating_what_the_client_has() {
    let app = app().await;
    let phone = app.enrol_phone("ben").await;
    let created = app.create_request("ben", transfer("ben", "3.00")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/action-requests/{id}/events");
    let auth = Auth::Basic(&app.client_id, &app.secret);
    let mut first = SseReader::open(&app, &path, auth, None).await;
    let seen = first.next(WAIT).await.unwrap();
    drop(first);

    // Reconnecting with the id just seen: no repeat, then the next change.
    let mut resumed = SseReader::open(&app, &path, auth, Some(&seen.id)).await;
    resumed
        .only_heartbeats_for(Duration::from_millis(300))
        .await;
    app.sign_and_decide(&phone, &id, "reject").await;
    let next = resumed
        .next(WAIT)
        .await
        .expect("the change after the resume point");
    assert_eq!(next.data["status"], "REJECTED");
    assert!(resumed.next(WAIT).await.is_none());

    // Reconnecting with an older id: the current status at once.
    let mut behind = SseReader::open(&app, &path, auth, Some(&seen.id)).await;
    assert_eq!(behind.next(WAIT).await.unwrap().data["status"], "REJECTED");
}

#[tokio::test]
async fn a_device_follows_its_inbox_until_it_is_revoked() {
    let app = app().await;
    let phone = app.enrol_phone("cleo").await;
    let path = format!("/v1/devices/{}/inbox/events", phone.id);
    let mut stream = SseReader::open(&app, &path, Auth::Bearer(&phone.token), None).await;
    let empty = stream.next(WAIT).await.unwrap();
    assert_eq!(empty.event, "inbox");
    assert_eq!(empty.data, json!([]));

    let created = app.create_request("cleo", transfer("cleo", "7.00")).await;
    let listed = stream.next(WAIT).await.expect("the new request");
    assert_eq!(listed.data[0]["id"], created["id"]);
    let id = created["id"].as_str().unwrap();
    app.sign_and_decide(&phone, id, "confirm").await;
    let cleared = stream
        .next(WAIT)
        .await
        .expect("the request leaves the inbox");
    assert_eq!(cleared.data, json!([]));

    // Resuming with the last id sends nothing until the next change.
    let mut resumed =
        SseReader::open(&app, &path, Auth::Bearer(&phone.token), Some(&cleared.id)).await;
    resumed
        .only_heartbeats_for(Duration::from_millis(300))
        .await;

    let revoked = app
        .client(
            Method::DELETE,
            &format!("/v1/users/cleo/devices/{}", phone.id),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert!(
        stream.next(WAIT).await.is_none(),
        "the stream ends on revocation"
    );
    assert!(resumed.next(WAIT).await.is_none());
}

#[tokio::test]
async fn streams_are_only_for_their_owners() {
    let app = app().await;
    let phone = app.enrol_phone("dora").await;
    let other = app.enrol_phone("emil").await;
    let created = app.create_request("dora", transfer("dora", "1.00")).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/action-requests/{id}/events");
    let none = app.call(Method::GET, &path, Auth::None, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let (stranger, secret) = app
        .credential(
            countersign_api::credentials::Role::Client,
            "other bank",
            &["bank:*"],
        )
        .await;
    let foreign = app
        .call(Method::GET, &path, Auth::Basic(&stranger, &secret), None)
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let inbox = format!("/v1/devices/{}/inbox/events", phone.id);
    let wrong_device = app
        .call(Method::GET, &inbox, Auth::Bearer(&other.token), None)
        .await;
    assert_eq!(wrong_device.status, StatusCode::NOT_FOUND);
}
