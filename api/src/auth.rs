//! Authentication extractors: HTTP Basic for clients, auditors and admins; bearer tokens for devices.
//!
//! Missing or wrong credentials are `401 unauthorized` with a challenge; right credentials of the
//! wrong role are `403 forbidden`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use countersign_domain::token::hash_secret;
use countersign_projections::read::DeviceRow;
use uuid::Uuid;

use crate::credentials::{self, Credential, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated relying party.
pub struct Client(pub Credential);

/// An authenticated auditor.
pub struct Auditor(pub Credential);

/// An authenticated admin.
pub struct Admin(pub Credential);

/// An authenticated, active device.
pub struct DeviceAuth(pub DeviceRow);

fn authorization(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("credentials are required"))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not readable"))
}

async fn basic(parts: &Parts, state: &AppState, role: Role) -> Result<Credential, ApiError> {
    let header = authorization(parts)?;
    let encoded = header
        .strip_prefix("Basic ")
        .ok_or_else(|| ApiError::unauthorized("HTTP Basic credentials are required"))?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::unauthorized("the Basic credentials are not readable"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| ApiError::unauthorized("the Basic credentials are not readable"))?;
    let wrong = || ApiError::unauthorized("the credentials are not valid");
    let id: Uuid = id.parse().map_err(|_| wrong())?;
    let credential = credentials::find(state.pool(), id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(wrong)?;
    // Only an unremembered secret costs Argon2id, on a blocking thread; the polling path
    // usually stays on the remembered fingerprint.
    let valid = match state.verifier.remembered(&credential, secret) {
        Some(valid) => valid,
        None => {
            let verifier = state.verifier.clone();
            let secret = secret.to_owned();
            let checked = credential.clone();
            tokio::task::spawn_blocking(move || verifier.verify(&checked, &secret))
                .await
                .map_err(ApiError::internal)?
        }
    };
    if !valid {
        return Err(wrong());
    }
    if credential.role != role {
        return Err(ApiError::forbidden(format!(
            "this endpoint needs the {} role",
            role.as_str()
        )));
    }
    Ok(credential)
}

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        basic(parts, state, Role::Client).await.map(Self)
    }
}

impl FromRequestParts<AppState> for Auditor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        basic(parts, state, Role::Auditor).await.map(Self)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        basic(parts, state, Role::Admin).await.map(Self)
    }
}

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = authorization(parts)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| ApiError::unauthorized("a device bearer token is required"))?;
        let device = state
            .reads
            .device_by_token_hash(&hash_secret(token.trim()))
            .await
            .map_err(ApiError::internal)?
            .filter(DeviceRow::is_active)
            .ok_or_else(|| ApiError::unauthorized("the device token is not valid"))?;
        Ok(Self(device))
    }
}
