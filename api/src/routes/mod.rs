//! The HTTP routes, one module per resource, merged into one router.

pub mod action_requests;
pub mod audit;
pub mod codes;
pub mod decisions;
pub mod devices;
pub mod health;
pub mod observe;
pub mod ops;
pub mod stats;
pub mod streams;
pub mod tokens;
pub mod wait;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every route of the API, with the body limit and problem-format fallbacks.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(action_requests::router())
        .merge(decisions::router())
        .merge(codes::router())
        .merge(audit::router(state.clone()))
        .merge(devices::router())
        .merge(tokens::router())
        .merge(health::router())
        .merge(streams::router())
        .merge(ops::router())
        .merge(stats::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}
