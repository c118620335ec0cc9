//! Server-Sent Events: a client follows one action request, a device follows its inbox. They
//! are driven by the store's commits and by the inbox projection's progress (and by the next
//! expiry), never by a polling timer; they
//! send a heartbeat comment while nothing changes, resume after `Last-Event-ID` without sending
//! again what the client already has, and end cleanly after a final status or when the server
//! stops.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use countersign_domain::action_request::Status;
use futures::Stream;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::{Client, DeviceAuth};
use crate::error::ApiError;
use crate::extract::AppPath;
use crate::routes::action_requests::owned_request;
use crate::routes::devices::{inbox_etag, load_inbox};
use crate::state::AppState;
use crate::views::action_request_view;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/action-requests/{id}/events", get(request_events))
        .route("/v1/devices/{device_id}/inbox/events", get(inbox_events))
}

/// What a followed resource looks like now.
struct Snapshot {
    /// The SSE `id`: it changes exactly when `data` does.
    id: String,
    /// The SSE event name.
    event: &'static str,
    /// The event's data.
    data: Value,
    /// When the snapshot changes by time alone, without a commit.
    wake_at: Option<DateTime<Utc>>,
    /// Whether this is the last snapshot: the stream ends after sending it.
    last: bool,
}

/// The `Last-Event-ID` a reconnecting client sends.
fn last_event_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Follows a resource: sends a snapshot now (unless the client already has it) and after every
/// change, until the last one, the server's shutdown or an error. `moved` (the store's head, or
/// the position of the projection the resource is read from) was subscribed to before `first`
/// was read, so nothing committed in between is missed.
fn follow<L, Fut>(
    app: AppState,
    mut moved: tokio::sync::watch::Receiver<u64>,
    mut sent: Option<String>,
    first: Snapshot,
    mut load: L,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    L: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Snapshot, ApiError>> + Send,
{
    async_stream::stream! {
        let mut stopping = app.stopping.clone();
        let mut current = Some(first);
        loop {
            let snapshot = match current.take() {
                Some(snapshot) => snapshot,
                None => match load().await {
                    Ok(snapshot) => snapshot,
                    Err(_) => break,
                },
            };
            if sent.as_deref() != Some(snapshot.id.as_str()) {
                let event = Event::default()
                    .event(snapshot.event)
                    .id(snapshot.id.clone())
                    .json_data(&snapshot.data);
                match event {
                    Ok(event) => yield Ok(event),
                    Err(_) => break,
                }
                sent = Some(snapshot.id.clone());
            }
            if snapshot.last || *stopping.borrow_and_update() {
                break;
            }
            let sleep = snapshot
                .wake_at
                .and_then(|at| (at - app.now()).to_std().ok())
                .map_or(Duration::from_secs(3600), |left| left + Duration::from_millis(5));
            tokio::select! {
                changed = moved.changed() => if changed.is_err() { break },
                () = tokio::time::sleep(sleep) => {}
                _ = stopping.changed() => break,
            }
        }
    }
}

fn sse<S>(app: &AppState, stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(app.settings.sse_heartbeat))
        .into_response()
}

async fn request_events(
    State(app): State<AppState>,
    Client(client): Client,
    AppPath(id): AppPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snapshot = {
        let app = app.clone();
        move || {
            let app = app.clone();
            async move {
                let state = owned_request(&app, client.id, id).await?;
                let now = app.now();
                let status = state.effective_status(now);
                let wake_at = match status {
                    Status::Pending => Some(state.expires_at),
                    Status::Confirmed => state.token_expires_at,
                    _ => None,
                };
                Ok(Snapshot {
                    id: format!("{}.{}", state.version, status.as_str()),
                    event: "status",
                    data: action_request_view(&state, now, Some(&app.keys.token_key)),
                    wake_at,
                    last: status.is_final(),
                })
            }
        }
    };
    let moved = app.store.watch_head();
    let first = snapshot().await?;
    Ok(sse(
        &app,
        follow(app.clone(), moved, last_event_id(&headers), first, snapshot),
    ))
}

async fn inbox_events(
    State(app): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    AppPath(device_id): AppPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if device_id != device.device_id {
        return Err(ApiError::not_found());
    }
    let snapshot = {
        let app = app.clone();
        move || {
            let app = app.clone();
            async move {
                let items = load_inbox(&app, device_id).await?;
                Ok(Snapshot {
                    id: inbox_etag(&items).trim_matches('"').to_owned(),
                    event: "inbox",
                    data: serde_json::to_value(&items).map_err(ApiError::internal)?,
                    wake_at: items.iter().map(|i| i.expires_at).min(),
                    last: false,
                })
            }
        }
    };
    let moved = app.watch_progress(countersign_projections::inbox::NAME);
    app.settled(countersign_projections::inbox::NAME).await;
    let first = snapshot().await?;
    Ok(sse(
        &app,
        follow(app.clone(), moved, last_event_id(&headers), first, snapshot),
    ))
}
