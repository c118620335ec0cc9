//! `POST /v1/tokens/consume`: a client spends the single-use token of a confirmed request.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use countersign_domain::action_request::{Command, DomainError};
use countersign_domain::token::hash_secret;
use countersign_domain::values::ActionName;
use countersign_store::ActorKind;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Client;
use crate::commands::{execute, ActionRequests};
use crate::error::ApiError;
use crate::extract::AppJson;
use crate::meta::RequestMeta;
use crate::state::AppState;
use crate::time;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tokens/consume", post(consume))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumeBody {
    token: String,
    action: String,
    payload: Value,
}

fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the token is not known",
    )
}

async fn consume(
    State(app): State<AppState>,
    Client(client): Client,
    meta: RequestMeta,
    AppJson(body): AppJson<ConsumeBody>,
) -> Result<Json<Value>, ApiError> {
    if !body.token.starts_with("cst_") || body.token.len() > 100 {
        return Err(invalid_token());
    }
    let request = app
        .reads
        .by_token_hash(&hash_secret(&body.token))
        .await
        .map_err(ApiError::internal)?
        .filter(|r| r.client_id == client.id)
        .ok_or_else(invalid_token)?;
    let action = ActionName::parse(&body.action).map_err(|_| DomainError::BindingMismatch)?;
    let metadata = meta.metadata(ActorKind::Client, client.id);
    let outcome =
        execute::<ActionRequests>(&app, request.id, &metadata, || Command::ConsumeToken {
            action: action.clone(),
            payload: body.payload.clone(),
        })
        .await?;
    let state = outcome.state;
    Ok(Json(json!({
        "action_request_id": state.id,
        "uid": state.uid,
        "action": state.action,
        "binding": state.binding,
        "consumed_at": state.consumed_at.map(time::format),
    })))
}
