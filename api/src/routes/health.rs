//! `healthz` (the process answers) and `readyz` (it can serve: the database answers a query).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    app.pool()
        .rows("select 'ready'", &[])
        .await
        .map_err(|e| ApiError::unavailable(format!("the database does not answer: {e}")))?;
    let projections = countersign_projections::rebuild::positions(&app.db)
        .await
        .map_err(|e| ApiError::unavailable(format!("the read models cannot be listed: {e}")))?;
    if let Some(stopped) = projections.iter().find(|p| p.state == "stopped") {
        let (position, error) = stopped.failure.clone().unwrap_or_default();
        return Err(ApiError::unavailable(format!(
            "projection {} is stopped at position {position}: {error}",
            stopped.name
        ))
        .with("projection", stopped.name)
        .with("failed_position", position));
    }
    let head = app
        .store
        .head()
        .await
        .map_err(|e| ApiError::unavailable(format!("the event store is not ready: {e}")))?;
    Ok(Json(json!({"status": "ready", "head_position": head})))
}
