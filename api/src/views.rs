//! What clients see: the action request view, and domain refusals as problem documents.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use countersign_domain::action_request::{ActionRequest, DomainError, Status};
use countersign_domain::device::DeviceError;
use countersign_domain::token::derive_token;
use serde_json::{json, Value};

use crate::commands::CommandError;
use crate::error::ApiError;
use crate::time;

/// The action request view of API.md, as of `now`. When the request is confirmed, its token
/// still valid and the caller is the client (`token_key` given), the view carries the token,
/// derived again from the key: it is never stored.
pub fn action_request_view(
    state: &ActionRequest,
    now: DateTime<Utc>,
    token_key: Option<&[u8]>,
) -> Value {
    let status = state.effective_status(now);
    let mut view = json!({
        "id": state.id,
        "action": state.action,
        "uid": state.uid,
        "payload": state.payload,
        "display": state.display,
        "binding": state.binding,
        "method": state.method,
        "status": status,
        "devices": state.devices,
        "attempts_left": state.attempts_left,
        "created_at": time::format(state.created_at),
        "updated_at": time::format(state.updated_at),
        "expires_at": time::format(state.expires_at),
        "version": state.version,
    });
    let map = view.as_object_mut().expect("the view is an object");
    if let Some(challenge) = &state.challenge {
        map.insert("challenge".into(), json!(challenge));
    }
    if let Some(reason) = &state.reason {
        map.insert("reason".into(), json!(reason));
    }
    if let (Status::Confirmed, Some(token_key)) = (status, token_key) {
        map.insert("token".into(), json!(derive_token(token_key, state.id)));
        if let Some(at) = state.token_expires_at {
            map.insert("token_expires_at".into(), json!(time::format(at)));
        }
    }
    if let Some(at) = state.consumed_at {
        map.insert("consumed_at".into(), json!(time::format(at)));
    }
    view
}

/// The ETag of a request's view.
pub fn etag(state: &ActionRequest) -> String {
    format!("\"v{}\"", state.version)
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let status = match error {
            DomainError::NotFound | DomainError::DeviceNotAddressed => StatusCode::NOT_FOUND,
            DomainError::AlreadyExists
            | DomainError::NotPending
            | DomainError::NotExpirable
            | DomainError::TokenAlreadyConsumed => StatusCode::CONFLICT,
            DomainError::InvalidToken => StatusCode::UNAUTHORIZED,
            DomainError::InvalidPayload => StatusCode::BAD_REQUEST,
            DomainError::TokenExpired => StatusCode::GONE,
            DomainError::NoActiveDevice
            | DomainError::UnsupportedMethod(_)
            | DomainError::MissingChallenge
            | DomainError::NoCode
            | DomainError::UnsupportedSuite
            | DomainError::BindingMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        };
        if status == StatusCode::NOT_FOUND {
            return ApiError::not_found();
        }
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl From<DeviceError> for ApiError {
    fn from(error: DeviceError) -> Self {
        match error {
            DeviceError::NotFound => ApiError::not_found(),
            DeviceError::AlreadyExists | DeviceError::AlreadyRevoked => {
                ApiError::new(StatusCode::CONFLICT, error.code(), error.to_string())
            }
            DeviceError::MissingPublicKey
            | DeviceError::MissingSecret
            | DeviceError::InvalidSuite
            | DeviceError::InvalidName => {
                ApiError::new(StatusCode::BAD_REQUEST, error.code(), error.to_string())
            }
        }
    }
}

impl<E: Into<ApiError> + std::fmt::Display> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Domain(e) => e.into(),
            CommandError::Contention(stream) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{stream} is changing too fast; try again"),
            ),
            other => ApiError::internal(other),
        }
    }
}
