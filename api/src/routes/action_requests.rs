//! `/v1/action-requests`: creation, polling (with ETag and long-poll) and cancellation by clients.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use countersign_domain::action_request::{ActionRequest, Command, Create, DomainError, Status};
use countersign_domain::binding::{binding, canonical, default_display};
use countersign_domain::codes;
use countersign_domain::values::{
    ActionName, DeviceSelection, Display, Method, TtlSeconds, UserId,
};
use countersign_store::{ActorKind, StoreError};
use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::Client;
use crate::commands::{execute, ActionRequests, CommandError};
use crate::error::ApiError;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::meta::RequestMeta;
use crate::routes::wait::{if_none_match, wait_for_change, WaitQuery};
use crate::state::AppState;
use crate::views::{action_request_view, etag};

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/action-requests", post(create))
        .route("/v1/action-requests/{id}", get(poll))
        .route("/v1/action-requests/{id}/cancel", post(cancel))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    action: String,
    uid: String,
    payload: Value,
    display: Option<Value>,
    method: Option<Method>,
    fallback: Option<String>,
    devices: Option<DeviceSelection>,
    ttl_seconds: Option<u32>,
    callback_url: Option<String>,
    to: Option<String>,
}

fn field<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, ApiError> {
    result.map_err(|e| ApiError::invalid_request(e.to_string()))
}

/// Where a code goes: an email address for `email` (required), an E.164 number (`+` and 8 to 15
/// digits) for `sms` and `voice` (optional: the gateway may know the user's number); nothing for
/// other methods.
fn destination(method: Method, to: Option<String>) -> Result<Option<String>, ApiError> {
    let bad = |why: &str| Err(ApiError::invalid_request(format!("to: {why}")));
    match (method, to) {
        (Method::Email, None) => bad("an email address is required for method email"),
        (Method::Email, Some(to)) => match to.parse::<lettre::Address>() {
            Ok(_) if to.len() <= 254 => Ok(Some(to)),
            _ => bad("not an email address"),
        },
        (Method::Sms | Method::Voice, Some(to)) => {
            let digits = to.strip_prefix('+').unwrap_or("");
            if (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
                Ok(Some(to))
            } else {
                bad("not a phone number in E.164 form (+ and 8 to 15 digits)")
            }
        }
        (Method::Sms | Method::Voice, None) => Ok(None),
        (_, Some(_)) => bad("only sms, email and voice requests take a destination"),
        (_, None) => Ok(None),
    }
}

/// A callback URL: absolute `http` or `https`, at most 2,048 characters.
fn callback_url(url: String) -> Result<String, ApiError> {
    let parsed = reqwest::Url::parse(&url)
        .map_err(|e| ApiError::invalid_request(format!("callback_url: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || url.len() > 2048 || !parsed.has_host() {
        return Err(ApiError::invalid_request(
            "callback_url: must be an http or https URL of at most 2048 characters",
        ));
    }
    Ok(url)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::invalid_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?;
    Ok(Some(key.to_owned()))
}

fn view_response(app: &AppState, status: StatusCode, state: &ActionRequest) -> Response {
    let view = action_request_view(state, app.now(), Some(&app.keys.token_key));
    let mut response = (status, Json(view)).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag(state)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Answers a repeated idempotent create: the original request, or 422 for another body.
fn replay_idempotent(
    app: &AppState,
    existing: &ActionRequest,
    request_hash: &str,
) -> Result<Response, ApiError> {
    if existing.request_hash.as_deref() == Some(request_hash) {
        Ok(view_response(app, StatusCode::OK, existing))
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "the Idempotency-Key was used with another request body",
        ))
    }
}

async fn create(
    State(app): State<AppState>,
    Client(client): Client,
    meta: RequestMeta,
    headers: HeaderMap,
    AppJson(raw): AppJson<Value>,
) -> Result<Response, ApiError> {
    let body: CreateBody = field(serde_json::from_value(raw.clone()))?;
    let action = field(ActionName::parse(&body.action))?;
    if !client.allows(&action) {
        return Err(ApiError::forbidden(format!(
            "this client may not request {}",
            action.as_str()
        )));
    }
    let uid = field(UserId::parse(&body.uid))?;
    let display = body.display.map(Display::parse).transpose();
    let display = field(display)?;
    let ttl = match body.ttl_seconds {
        Some(seconds) => field(TtlSeconds::parse(seconds))?,
        None => TtlSeconds::default(),
    };
    let method = body.method.unwrap_or(Method::Push);
    let fallback = match body.fallback.as_deref() {
        None => false,
        Some("ocra") if method == Method::Push => true,
        Some("ocra") => {
            return Err(ApiError::invalid_request(
                "fallback: only a push request takes a fallback",
            ))
        }
        Some(other) => {
            return Err(ApiError::invalid_request(format!(
                "fallback: unknown fallback {other:?} (ocra)"
            )))
        }
    };
    let callback_url = body.callback_url.map(callback_url).transpose()?;
    let key = idempotency_key(&headers)?;
    let request_hash = hex::encode(Sha256::digest(canonical(&raw)));
    if let Some(key) = &key {
        if let Some(existing) = app
            .reads
            .by_idempotency_key(client.id, key)
            .await
            .map_err(ApiError::internal)?
        {
            return replay_idempotent(&app, &existing, &request_hash);
        }
    }
    let devices = app
        .reads
        .devices_of_user(client.id, uid.as_str())
        .await
        .map_err(ApiError::internal)?;
    let of_kind = |kind: &str| -> Vec<Uuid> {
        let active = devices.iter().filter(|d| d.is_active() && d.kind == kind);
        active.map(|d| d.device_id).collect()
    };
    let mut addressed = match method {
        Method::Ocra => of_kind("ocra"),
        Method::Push => of_kind("push"),
        Method::Sms | Method::Email | Method::Voice => Vec::new(),
    };
    if body.devices.unwrap_or_default() == DeviceSelection::One {
        addressed.truncate(1);
    }
    let notify = match app.channels.get("push") {
        Some(_) if method == Method::Push => addressed.clone(),
        _ => Vec::new(),
    };
    if fallback {
        addressed.extend(of_kind("ocra"));
    }
    let shown = display
        .clone()
        .unwrap_or_else(|| default_display(&body.payload));
    let binding = binding(&action, &shown, &body.payload, &uid);
    let challenge = (method == Method::Ocra || fallback)
        .then(|| codes::challenge(&app.keys.challenge_key, &binding));
    let id = Uuid::now_v7();
    let sends_code = matches!(method, Method::Sms | Method::Email | Method::Voice);
    let destination = destination(method, body.to)?;
    if sends_code && app.channels.get(method.as_str()).is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!(
                "method: no {} channel is configured on this server",
                method.as_str()
            ),
        ));
    }
    let code_hash = sends_code.then(|| {
        let code = codes::sent_code(&app.keys.otp_key, id, &binding);
        codes::code_hash(&app.keys.otp_key, &code, &binding)
    });
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let create = Create {
        id,
        client_id: client.id,
        action,
        uid,
        payload: body.payload,
        display,
        method,
        devices: addressed,
        challenge,
        notify,
        code_hash,
        destination,
        ttl,
        nonce: URL_SAFE_NO_PAD.encode(nonce),
        idempotency_key: key.clone(),
        request_hash: Some(request_hash.clone()),
        callback_url,
    };
    let metadata = meta.metadata(ActorKind::Client, client.id);
    match execute::<ActionRequests>(&app, id, &metadata, || Command::Create(create.clone())).await {
        Ok(outcome) => {
            let mut response = view_response(&app, StatusCode::CREATED, &outcome.state);
            if let Ok(location) = HeaderValue::from_str(&format!("/v1/action-requests/{id}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        Err(CommandError::Store(StoreError::Rejected(_))) if key.is_some() => {
            let key = key.as_deref().unwrap_or_default();
            let existing = app
                .reads
                .by_idempotency_key(client.id, key)
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::internal("idempotency key taken but not found"))?;
            replay_idempotent(&app, &existing, &request_hash)
        }
        Err(e) => Err(e.into()),
    }
}

/// The client's own request, or 404 whether it exists or belongs to someone else.
pub async fn owned_request(
    app: &AppState,
    client_id: Uuid,
    id: Uuid,
) -> Result<ActionRequest, ApiError> {
    app.reads
        .action_request(id)
        .await
        .map_err(ApiError::internal)?
        .filter(|r| r.client_id == client_id)
        .ok_or_else(ApiError::not_found)
}

async fn poll(
    State(app): State<AppState>,
    Client(client): Client,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<WaitQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let wait = query.duration()?;
    let known = if_none_match(&headers);
    let mut state = owned_request(&app, client.id, id).await?;
    let unchanged = |s: &ActionRequest| {
        known.iter().any(|t| *t == etag(s)) && s.effective_status(app.now()) == Status::Pending
    };
    if unchanged(&state) && !wait.is_zero() {
        let expires_at = state.expires_at;
        state = wait_for_change(
            &app,
            app.store.watch_head(),
            wait,
            Some(expires_at),
            || async {
                let current = owned_request(&app, client.id, id).await?;
                Ok((!unchanged(&current)).then_some(current))
            },
        )
        .await?
        .unwrap_or(state);
    }
    if known.iter().any(|t| *t == etag(&state)) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(value) = HeaderValue::from_str(&etag(&state)) {
            response.headers_mut().insert(header::ETAG, value);
        }
        return Ok(response);
    }
    Ok(view_response(&app, StatusCode::OK, &state))
}

async fn cancel(
    State(app): State<AppState>,
    Client(client): Client,
    meta: RequestMeta,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    owned_request(&app, client.id, id).await?;
    let metadata = meta.metadata(ActorKind::Client, client.id);
    let outcome = execute::<ActionRequests>(&app, id, &metadata, || Command::Cancel)
        .await
        .map_err(|e| match e {
            CommandError::Domain(DomainError::NotFound) => ApiError::not_found(),
            other => other.into(),
        })?;
    Ok(view_response(&app, StatusCode::OK, &outcome.state))
}
