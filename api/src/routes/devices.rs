//! Users' devices: enrolment, listing and revocation by clients; the inbox, read by a device.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use countersign_domain::codes;
use countersign_domain::device::{Command, DeviceError, DeviceKind, Enrol};
use countersign_domain::token::hash_secret;
use countersign_domain::values::{PublicKey, UserId};
use countersign_projections::read::InboxItem;
use countersign_store::ActorKind;
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::{Client, DeviceAuth};
use crate::commands::{execute, CommandError, Devices};
use crate::error::ApiError;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::meta::RequestMeta;
use crate::routes::wait::{if_none_match, wait_for_change, WaitQuery};
use crate::sealed;
use crate::state::AppState;
use crate::time;

/// The OCRA suite of enrolled OCRA devices (API.md, Codes).
pub const OCRA_SUITE: &str = "OCRA-1:HOTP-SHA256-8:QN08-T1M";

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users/{uid}/devices", get(list).post(enrol))
        .route("/v1/users/{uid}/devices/{device_id}", delete(revoke))
        .route("/v1/devices/{device_id}/inbox", get(inbox))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolBody {
    kind: String,
    name: String,
    public_key: Option<String>,
}

fn user_id(uid: &str) -> Result<UserId, ApiError> {
    UserId::parse(uid).map_err(|e| ApiError::invalid_request(e.to_string()))
}

async fn enrol(
    State(app): State<AppState>,
    Client(client): Client,
    meta: RequestMeta,
    AppPath(uid): AppPath<String>,
    AppJson(body): AppJson<EnrolBody>,
) -> Result<Response, ApiError> {
    let uid = user_id(&uid)?;
    let kind = match body.kind.as_str() {
        "push" => DeviceKind::Push,
        "ocra" => DeviceKind::Ocra,
        other => {
            return Err(ApiError::invalid_request(format!(
                "kind: unknown device kind {other:?} (push or ocra)"
            )))
        }
    };
    if kind == DeviceKind::Ocra && body.public_key.is_some() {
        return Err(ApiError::invalid_request(
            "public_key: an OCRA device has no public key",
        ));
    }
    let public_key = body
        .public_key
        .as_deref()
        .map(PublicKey::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let device_token = format!("cdt_{}", URL_SAFE_NO_PAD.encode(bytes));
    let id = Uuid::now_v7();
    let ocra_secret = (kind == DeviceKind::Ocra).then(|| {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        secret
    });
    let command = Command::Enrol(Enrol {
        id,
        client_id: client.id,
        uid: uid.clone(),
        kind,
        name: body.name,
        public_key,
        secret: ocra_secret.map(|s| sealed::seal(&app.keys, id, &s)),
        suite: ocra_secret.map(|_| OCRA_SUITE.to_owned()),
        token_hash: hash_secret(&device_token),
    });
    let metadata = meta.metadata(ActorKind::Client, client.id);
    let outcome = execute::<Devices>(&app, id, &metadata, || command.clone()).await?;
    let device = outcome.state;
    let mut body = json!({
        "device_id": device.id,
        "kind": device.kind,
        "name": device.name,
        "uid": device.uid,
        "status": "active",
        "device_token": device_token,
        "enrolled_at": time::format(device.enrolled_at),
    });
    if let Some(secret) = ocra_secret {
        body["ocra"] = ocra_enrolment(device.uid.as_str(), &secret);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// What an OCRA token is loaded with, shown once: the suite, the secret in base32, and an
/// `otpauth://ocra/…` URI carrying both.
fn ocra_enrolment(uid: &str, secret: &[u8]) -> serde_json::Value {
    let secret = codes::base32_encode(secret);
    let mut uri = reqwest::Url::parse("otpauth://ocra/").expect("a valid base URI");
    uri.set_path(&format!("Countersign:{uid}"));
    uri.query_pairs_mut()
        .append_pair("secret", &secret)
        .append_pair("issuer", "Countersign")
        .append_pair("suite", OCRA_SUITE);
    json!({"suite": OCRA_SUITE, "secret": secret, "uri": uri.to_string()})
}

async fn list(
    State(app): State<AppState>,
    Client(client): Client,
    AppPath(uid): AppPath<String>,
) -> Result<Response, ApiError> {
    let uid = user_id(&uid)?;
    let devices = app
        .reads
        .devices_of_user(client.id, uid.as_str())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(devices).into_response())
}

async fn revoke(
    State(app): State<AppState>,
    Client(client): Client,
    meta: RequestMeta,
    AppPath((uid, device_id)): AppPath<(String, Uuid)>,
) -> Result<StatusCode, ApiError> {
    let uid = user_id(&uid)?;
    app.reads
        .device(device_id)
        .await
        .map_err(ApiError::internal)?
        .filter(|d| d.client_id == client.id && d.uid == uid.as_str())
        .ok_or_else(ApiError::not_found)?;
    let metadata = meta.metadata(ActorKind::Client, client.id);
    match execute::<Devices>(&app, device_id, &metadata, || Command::Revoke).await {
        Ok(_) | Err(CommandError::Domain(DeviceError::AlreadyRevoked)) => {
            Ok(StatusCode::NO_CONTENT)
        }
        Err(e) => Err(e.into()),
    }
}

/// The inbox's entity tag: it changes exactly when an item comes, goes or changes.
pub(crate) fn inbox_etag(items: &[InboxItem]) -> String {
    let mut hasher = Sha256::new();
    for item in items {
        hasher.update(format!("{}:{};", item.id, item.version));
    }
    format!("\"i{}\"", &hex::encode(hasher.finalize())[..16])
}

async fn inbox(
    State(app): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    AppPath(device_id): AppPath<Uuid>,
    AppQuery(query): AppQuery<WaitQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if device_id != device.device_id {
        return Err(ApiError::not_found());
    }
    let wait = query.duration()?;
    let known = if_none_match(&headers);
    let load = || load_inbox(&app, device_id);
    // The first read sees every commit acknowledged before it; later ones run when the inbox
    // model has moved, so they need no wait.
    app.settled(countersign_projections::inbox::NAME).await;
    let mut items = load().await?;
    if known.contains(&inbox_etag(&items)) && !wait.is_zero() {
        let wake_at = items.iter().map(|i| i.expires_at).min();
        let moved = app.watch_progress(countersign_projections::inbox::NAME);
        if let Some(changed) = wait_for_change(&app, moved, wait, wake_at, || async {
            let current = load().await?;
            Ok((!known.contains(&inbox_etag(&current))).then_some(current))
        })
        .await?
        {
            items = changed;
        }
    }
    let tag = inbox_etag(&items);
    let mut response = if known.contains(&tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(&items).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

/// The device's inbox as its model holds it (callers settle the model first, once); `404` once
/// the device is revoked or gone, so that a stream that follows the inbox ends then.
pub(crate) async fn load_inbox(
    app: &AppState,
    device_id: Uuid,
) -> Result<Vec<InboxItem>, ApiError> {
    let device = app
        .reads
        .device(device_id)
        .await
        .map_err(ApiError::internal)?
        .filter(|d| d.is_active())
        .ok_or_else(ApiError::not_found)?;
    app.reads
        .inbox(device.device_id, app.now())
        .await
        .map_err(ApiError::internal)
}
