//! Confirming with a one-time code: `POST /v1/action-requests/{id}/verify`, where the bank relays
//! the code the user typed in, and the OCRA device's own `confirm` with `otp`.
//!
//! The code is checked against the OCRA devices the request was addressed to, with their
//! secrets unsealed here and handed to the domain, which decides; a wrong code is one failed
//! attempt, whichever device it was meant for.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use countersign_domain::action_request::{self, ActionRequest, CodeCheck, Command, Context, Event};
use countersign_domain::codes::OcraSuite;
use countersign_store::{ActorKind, Metadata};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::Client;
use crate::commands::{execute, load, ActionRequests, Devices};
use crate::error::ApiError;
use crate::extract::{AppJson, AppPath};
use crate::meta::RequestMeta;
use crate::routes::action_requests::owned_request;
use crate::routes::decisions::refuse_failed_attempt;
use crate::sealed;
use crate::state::AppState;
use crate::views::action_request_view;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/action-requests/{id}/verify", post(verify_by_client))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    otp: String,
}

async fn verify_by_client(
    State(app): State<AppState>,
    Client(client): Client,
    meta: RequestMeta,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<VerifyBody>,
) -> Result<Response, ApiError> {
    let request = owned_request(&app, client.id, id).await?;
    let metadata = meta.metadata(ActorKind::Client, client.id);
    let token_key = app.keys.token_key;
    verify(
        &app,
        &request,
        request.devices.clone(),
        &body.otp,
        &metadata,
        Some(&token_key),
    )
    .await
}

/// The suite and unsealed secret of an active OCRA device.
async fn ocra_key(app: &AppState, device_id: Uuid) -> Result<Option<CodeCheck>, ApiError> {
    let Some(device) = load::<Devices>(app, device_id).await? else {
        return Ok(None);
    };
    let (Some(sealed), Some(suite)) = (&device.secret, &device.suite) else {
        return Ok(None);
    };
    if !device.is_active() {
        return Ok(None);
    }
    let key = sealed::open(&app.keys, device_id, sealed).ok_or_else(|| {
        ApiError::internal(format!("the secret of device {device_id} does not open"))
    })?;
    let suite = OcraSuite::parse(suite).map_err(ApiError::internal)?;
    Ok(Some(CodeCheck::Ocra { suite, key }))
}

/// Checks `otp` against the OCRA devices among `candidates` and records the outcome; the view
/// (with the token when `token_key` is given) or `422 invalid_otp` with `attempts_left`.
pub async fn verify(
    app: &AppState,
    request: &ActionRequest,
    candidates: Vec<Uuid>,
    otp: &str,
    metadata: &Metadata,
    token_key: Option<&[u8]>,
) -> Result<Response, ApiError> {
    if otp.is_empty() || otp.len() > 16 || !otp.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid_request("otp: 1 to 16 letters or digits"));
    }
    if request.code_hash.is_some() {
        let check = CodeCheck::Sent {
            key: app.keys.otp_key.to_vec(),
        };
        return record(app, request, None, otp, check, metadata, token_key).await;
    }
    let mut keys = Vec::new();
    for device_id in candidates {
        if let Some(check) = ocra_key(app, device_id).await? {
            keys.push((device_id, check));
        }
    }
    // The device the code matches, found by asking the domain without recording anything;
    // when none matches, the attempt is charged to the first.
    let ctx = Context::new(app.now(), &app.keys.token_key);
    let matching = keys.iter().position(|(device_id, check)| {
        let command = Command::VerifyCode {
            device_id: Some(*device_id),
            code: otp.to_owned(),
            check: check.clone(),
        };
        action_request::decide(Some(request), command, &ctx)
            .is_ok_and(|events| events.iter().any(|e| matches!(e, Event::Confirmed { .. })))
    });
    let Some((device_id, check)) = keys.get(matching.unwrap_or(0)).cloned() else {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "no_active_device",
            "the request has no active OCRA device to check a code against",
        ));
    };
    record(
        app,
        request,
        Some(device_id),
        otp,
        check,
        metadata,
        token_key,
    )
    .await
}

/// Runs the verification and answers with the view or `422 invalid_otp`.
async fn record(
    app: &AppState,
    request: &ActionRequest,
    device_id: Option<Uuid>,
    otp: &str,
    check: CodeCheck,
    metadata: &Metadata,
    token_key: Option<&[u8]>,
) -> Result<Response, ApiError> {
    let command = || Command::VerifyCode {
        device_id,
        code: otp.to_owned(),
        check: check.clone(),
    };
    let outcome = execute::<ActionRequests>(app, request.id, metadata, command).await?;
    refuse_failed_attempt(
        &outcome.events,
        "invalid_otp",
        "the code is not valid for this request",
    )?;
    let view = action_request_view(&outcome.state, app.now(), token_key);
    Ok(Json(view).into_response())
}
