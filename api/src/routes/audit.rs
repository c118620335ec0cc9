//! What auditors read. For now: the delivery record of a request's messages (callbacks, push
//! notifications, sent codes), with every attempt and its result, and never a code.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use countersign_projections::outbox::{self, DeliveryRecord};
use uuid::Uuid;

use crate::auth::Auditor;
use crate::error::ApiError;
use crate::extract::AppPath;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit/action-requests/{id}/deliveries", get(deliveries))
}

async fn deliveries(
    State(app): State<AppState>,
    Auditor(_): Auditor,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Vec<DeliveryRecord>>, ApiError> {
    app.reads
        .action_request(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    let records = outbox::deliveries_of(app.pool(), id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(records))
}
