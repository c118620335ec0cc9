//! What auditors read: the log with its links, a request's history and its state at any
//! instant, the search over requests, verification of the whole log, signed tree heads,
//! inclusion and consistency proofs, evidence bundles, the public key, and the delivery record
//! of a request's messages.
//!
//! Every successful read is itself recorded, as an `AuditRead` event in the stream
//! `auditor-<credential id>`, so the requests' own histories stay unchanged.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use countersign_audit::head::public_key_text;
use countersign_projections::outbox::{self, DeliveryRecord};
use countersign_projections::search::{self, SearchFilter};
use countersign_store::audit::{self as store_audit, verify_log, VerifyReport};
use countersign_store::{ActorKind, ExpectedVersion, NewEvent};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::audit::{self, AuditReadError};
use crate::auth::Auditor;
use crate::error::ApiError;
use crate::extract::{AppPath, AppQuery};
use crate::meta::RequestMeta;
use crate::state::AppState;
use crate::time;

/// The stream prefix of the auditors' own reads.
pub const AUDITOR_STREAM_PREFIX: &str = "auditor-";

/// The routes of this resource.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/audit/action-requests", get(search_requests))
        .route("/v1/audit/action-requests/{id}", get(history))
        .route("/v1/audit/action-requests/{id}/evidence", get(evidence))
        .route("/v1/audit/action-requests/{id}/deliveries", get(deliveries))
        .route("/v1/audit/events", get(events))
        .route("/v1/audit/verify", get(verify))
        .route("/v1/audit/tree-head", get(tree_head))
        .route("/v1/audit/proofs/inclusion", get(inclusion))
        .route("/v1/audit/proofs/consistency", get(consistency))
        .route("/v1/audit/public-key", get(public_key))
        .route_layer(middleware::from_fn_with_state(state, record_read))
}

/// Records a successful read by an auditor before the answer leaves; a read that cannot be
/// recorded is not served.
async fn record_read(
    State(app): State<AppState>,
    Auditor(auditor): Auditor,
    meta: RequestMeta,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    let event = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "AuditRead".into(),
        schema_version: 1,
        data: json!({
            "method": method,
            "path": path,
            "query": query,
            "status": response.status().as_u16(),
        }),
        metadata: meta.metadata(ActorKind::Auditor, auditor.id),
    };
    let stream = format!("{AUDITOR_STREAM_PREFIX}{}", auditor.id);
    match app
        .store
        .append(&stream, ExpectedVersion::Any, vec![event])
        .await
    {
        Ok(_) => response,
        Err(error) => {
            tracing::error!(%error, "an auditor's read could not be recorded");
            ApiError::unavailable("the read could not be recorded; try again").into_response()
        }
    }
}

fn read_error(error: AuditReadError) -> ApiError {
    match error {
        AuditReadError::Invalid(reason) => ApiError::invalid_request(reason),
        other => ApiError::internal(other),
    }
}

fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    time::parse(text).ok_or_else(|| {
        ApiError::invalid_request(format!("{field} must be an RFC 3339 time")).with("field", field)
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    at: Option<String>,
}

async fn history(
    State(app): State<AppState>,
    Auditor(_): Auditor,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let at = query
        .at
        .as_deref()
        .map(|t| parse_time("at", t))
        .transpose()?;
    audit::history(app.store.as_ref(), id, at, app.now())
        .await
        .map_err(read_error)?
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

async fn events(
    State(app): State<AppState>,
    Auditor(_): Auditor,
    AppQuery(query): AppQuery<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit(query.limit, 100)?;
    let events = audit::events_page(app.store.as_ref(), query.after, limit)
        .await
        .map_err(read_error)?;
    let next_after = events.last().map(|e| e.position);
    Ok(Json(json!({ "events": events, "next_after": next_after })))
}

fn limit(given: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match given.unwrap_or(default) {
        n @ 1..=1000 => Ok(n),
        _ => Err(
            ApiError::invalid_request("limit must be between 1 and 1000").with("field", "limit"),
        ),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    uid: Option<String>,
    client: Option<Uuid>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn search_requests(
    State(app): State<AppState>,
    Auditor(_): Auditor,
    AppQuery(query): AppQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    const STATUSES: [&str; 5] = ["PENDING", "CONFIRMED", "CONSUMED", "REJECTED", "EXPIRED"];
    if let Some(status) = &query.status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(ApiError::invalid_request(format!(
                "status must be one of {}",
                STATUSES.join(", ")
            ))
            .with("field", "status"));
        }
    }
    let bound = |field, text: &Option<String>| {
        text.as_deref()
            .map(|t| parse_time(field, t).map(time::format))
            .transpose()
    };
    let after = match &query.cursor {
        None => None,
        Some(cursor) => {
            let (created_at, id) = cursor
                .split_once(',')
                .filter(|(t, id)| time::parse(t).is_some() && Uuid::parse_str(id).is_ok())
                .ok_or_else(|| {
                    ApiError::invalid_request("cursor must be a next_cursor given before")
                        .with("field", "cursor")
                })?;
            Some((created_at.to_owned(), id.to_owned()))
        }
    };
    let limit = limit(query.limit, 100)?;
    let filter = SearchFilter {
        uid: query.uid,
        client_id: query.client.map(|c| c.to_string()),
        status: query.status,
        from: bound("from", &query.from)?,
        to: bound("to", &query.to)?,
        after,
        limit: limit as u32,
    };
    app.settled(search::NAME).await;
    let hits = search::search(app.pool(), &filter)
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = (hits.len() == limit)
        .then(|| hits.last().map(|h| format!("{},{}", h.created_at, h.id)))
        .flatten();
    Ok(Json(
        json!({ "action_requests": hits, "next_cursor": next_cursor }),
    ))
}

async fn verify(
    State(app): State<AppState>,
    Auditor(_): Auditor,
) -> Result<Json<VerifyReport>, ApiError> {
    let log = app.db.audit();
    let report = verify_log(log.as_ref(), None, |_, _| {})
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(report))
}

async fn tree_head(State(app): State<AppState>, Auditor(_): Auditor) -> Result<Response, ApiError> {
    let head = audit::signed_head(&app.db, &app.keys, app.now())
        .await
        .map_err(read_error)?;
    Ok(Json(head).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    position: u64,
    tree_size: Option<u64>,
}

async fn inclusion(
    State(app): State<AppState>,
    Auditor(_): Auditor,
    AppQuery(query): AppQuery<InclusionQuery>,
) -> Result<Json<Value>, ApiError> {
    let log = app.db.audit();
    let tree_size = match query.tree_size {
        Some(size) => size,
        None => store_audit::size(log.as_ref())
            .await
            .map_err(ApiError::internal)?,
    };
    let invalid = |e: store_audit::AuditError| read_error(e.into());
    let path = store_audit::inclusion_proof(log.as_ref(), query.position, tree_size)
        .await
        .map_err(invalid)?;
    let leaf = store_audit::leaf_at(log.as_ref(), query.position)
        .await
        .map_err(invalid)?;
    Ok(Json(json!({
        "position": query.position,
        "leaf_index": query.position - 1,
        "tree_size": tree_size,
        "leaf_hash": leaf,
        "audit_path": path,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    first: u64,
    second: Option<u64>,
}

async fn consistency(
    State(app): State<AppState>,
    Auditor(_): Auditor,
    AppQuery(query): AppQuery<ConsistencyQuery>,
) -> Result<Json<Value>, ApiError> {
    let log = app.db.audit();
    let second = match query.second {
        Some(size) => size,
        None => store_audit::size(log.as_ref())
            .await
            .map_err(ApiError::internal)?,
    };
    let proof = store_audit::consistency_proof(log.as_ref(), query.first, second)
        .await
        .map_err(|e| read_error(e.into()))?;
    Ok(Json(json!({
        "first": query.first,
        "second": second,
        "consistency_path": proof,
    })))
}

async fn evidence(
    State(app): State<AppState>,
    Auditor(_): Auditor,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    let bundle = audit::evidence_bundle(&app.db, &app.keys, id, app.now())
        .await
        .map_err(read_error)?
        .ok_or_else(ApiError::not_found)?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bundle,
    )
        .into_response())
}

async fn public_key(State(app): State<AppState>, Auditor(_): Auditor) -> Json<Value> {
    let key = app.keys.audit_key().verifying_key();
    Json(json!({ "algorithm": "Ed25519", "public_key": public_key_text(&key) }))
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
