//! `confirm` and `reject`: a device's signed decision on a request addressed to it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use countersign_domain::action_request::{Command, DomainError, Event};
use countersign_domain::values::PublicKey;
use countersign_store::ActorKind;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::DeviceAuth;
use crate::commands::{execute, ActionRequests, CommandError};
use crate::error::ApiError;
use crate::extract::{AppJson, AppPath};
use crate::meta::RequestMeta;
use crate::routes::codes;
use crate::state::AppState;
use crate::views::action_request_view;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/action-requests/{id}/confirm", post(confirm))
        .route("/v1/action-requests/{id}/reject", post(reject))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    device_id: Uuid,
    signature: Option<String>,
    otp: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    Confirm,
    Reject,
}

async fn confirm(
    state: State<AppState>,
    device: DeviceAuth,
    meta: RequestMeta,
    id: AppPath<Uuid>,
    body: AppJson<DecisionBody>,
) -> Result<Response, ApiError> {
    decide(state, device, meta, id, body, Decision::Confirm).await
}

async fn reject(
    state: State<AppState>,
    device: DeviceAuth,
    meta: RequestMeta,
    id: AppPath<Uuid>,
    body: AppJson<DecisionBody>,
) -> Result<Response, ApiError> {
    decide(state, device, meta, id, body, Decision::Reject).await
}

fn decode_signature(text: &str) -> Result<Vec<u8>, ApiError> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|_| ApiError::invalid_request("signature: not base64url"))
}

async fn decide(
    State(app): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    meta: RequestMeta,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<DecisionBody>,
    decision: Decision,
) -> Result<Response, ApiError> {
    if body.device_id != device.device_id {
        return Err(ApiError::not_found());
    }
    if let Some(otp) = &body.otp {
        if decision == Decision::Reject || device.kind != "ocra" {
            return Err(ApiError::invalid_request(
                "otp: only an OCRA device confirms with a code; others sign their decision",
            ));
        }
        let request = app
            .reads
            .action_request(id)
            .await
            .map_err(ApiError::internal)?
            .filter(|r| r.client_id == device.client_id && r.devices.contains(&device.device_id))
            .ok_or_else(ApiError::not_found)?;
        let metadata = meta.metadata(ActorKind::Device, device.device_id);
        return codes::verify(&app, &request, vec![device.device_id], otp, &metadata, None).await;
    }
    let signature = decode_signature(
        body.signature
            .as_deref()
            .ok_or_else(|| ApiError::invalid_request("signature: missing field"))?,
    )?;
    let request = app
        .reads
        .action_request(id)
        .await
        .map_err(ApiError::internal)?
        .filter(|r| r.client_id == device.client_id && r.devices.contains(&device.device_id))
        .ok_or_else(ApiError::not_found)?;
    let public_key = device
        .public_key
        .as_deref()
        .and_then(|k| PublicKey::parse(k).ok())
        .ok_or_else(|| ApiError::internal("active push device without a valid key"))?;
    let metadata = meta.metadata(ActorKind::Device, device.device_id);
    let command = || {
        let (device_id, public_key, signature) =
            (device.device_id, public_key.clone(), signature.clone());
        match decision {
            Decision::Confirm => Command::Confirm {
                device_id,
                public_key,
                signature,
            },
            Decision::Reject => Command::Reject {
                device_id,
                public_key,
                signature,
            },
        }
    };
    let outcome = execute::<ActionRequests>(&app, request.id, &metadata, command)
        .await
        .map_err(|e| match e {
            CommandError::Domain(DomainError::DeviceNotAddressed | DomainError::NotFound) => {
                ApiError::not_found()
            }
            other => other.into(),
        })?;
    refuse_failed_attempt(
        &outcome.events,
        "invalid_signature",
        "the signature does not verify with this device's key",
    )?;
    let view = action_request_view(&outcome.state, app.now(), None);
    Ok(Json(view).into_response())
}

/// `422` with `attempts_left` when the command recorded a failed verification.
pub fn refuse_failed_attempt(
    events: &[Event],
    code: &'static str,
    detail: &str,
) -> Result<(), ApiError> {
    let failed = events.iter().find_map(|e| match e {
        Event::VerificationFailed { attempts_left, .. } => Some(*attempts_left),
        _ => None,
    });
    match failed {
        Some(attempts_left) => Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
                .with("attempts_left", attempts_left),
        ),
        None => Ok(()),
    }
}
