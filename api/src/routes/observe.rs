//! What every request leaves behind: a correlation id (the caller's `X-Correlation-Id` when it
//! sent a usable one, a fresh one otherwise) that its events' metadata, its log lines and the
//! response all carry, one log line when it is answered, and its latency in the metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

use crate::meta::{usable_correlation_id, CORRELATION_HEADER};
use crate::state::AppState;

/// Tags the request with its correlation id, then logs and measures its answer.
pub async fn observe(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let correlation_id = request
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(usable_correlation_id)
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    let header = HeaderValue::from_str(&correlation_id).expect("a usable id is a valid header");
    request
        .headers_mut()
        .insert(CORRELATION_HEADER, header.clone());
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let span = tracing::info_span!("request", %correlation_id, %method, %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            "answered"
        );
    });
    app.metrics.http_request(&method, &route, status, latency);
    response.headers_mut().insert(CORRELATION_HEADER, header);
    response
}
