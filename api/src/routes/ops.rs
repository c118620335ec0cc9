//! What operators use: metrics, the read models' place in the log, and rebuilds that never
//! interrupt polling (a new generation of tables is filled beside the live one, then swapped in).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use countersign_projections::rebuild::{self, RebuildError};
use serde_json::{json, Value};

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::AppPath;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/ops/projections", get(projections))
        .route(
            "/v1/ops/projections/{name}/rebuild",
            post(rebuild_projection),
        )
}

/// A rebuild in progress or just finished.
#[derive(Clone, Debug)]
pub struct RebuildProgress {
    /// `rebuilding`, `live` once swapped in, or `failed`.
    pub state: &'static str,
    /// Events applied to the new generation.
    pub checkpoint: u64,
    /// The log's head when last heard.
    pub head: u64,
    /// Why it failed.
    pub error: Option<String>,
}

/// The rebuilds this server started, by read model.
#[derive(Clone, Debug, Default)]
pub struct Rebuilds(Arc<Mutex<HashMap<String, RebuildProgress>>>);

impl Rebuilds {
    fn get(&self, name: &str) -> Option<RebuildProgress> {
        self.0.lock().expect("not poisoned").get(name).cloned()
    }

    fn set(&self, name: &str, progress: RebuildProgress) {
        self.0
            .lock()
            .expect("not poisoned")
            .insert(name.to_owned(), progress);
    }
}

async fn metrics(State(app): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    let text = app
        .metrics
        .render(&app.db)
        .await
        .map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn projections(
    State(app): State<AppState>,
    Admin(_): Admin,
) -> Result<Json<Value>, ApiError> {
    let listed = rebuild::list(&app.db).await.map_err(ApiError::internal)?;
    let out: Vec<Value> = listed
        .into_iter()
        .map(|p| {
            let mut entry = json!({
                "name": p.name,
                "checkpoint": p.checkpoint,
                "head": p.head,
                "lag": p.head.saturating_sub(p.checkpoint),
                "state": p.state,
                "rows": p.rows,
            });
            if let Some((position, error)) = &p.failure {
                entry["failed_position"] = json!(position);
                entry["error"] = json!(error);
            }
            if let Some(progress) = app.rebuilds.get(p.name) {
                entry["rebuild"] = json!({
                    "state": progress.state,
                    "checkpoint": progress.checkpoint,
                    "head": progress.head,
                    "lag": progress.head.saturating_sub(progress.checkpoint),
                    "error": progress.error,
                });
            }
            entry
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

async fn rebuild_projection(
    State(app): State<AppState>,
    Admin(_): Admin,
    AppPath(name): AppPath<String>,
) -> Result<Response, ApiError> {
    let Some(name) = rebuild::names().into_iter().find(|n| *n == name) else {
        return Err(ApiError::not_found());
    };
    if app
        .rebuilds
        .get(name)
        .is_some_and(|p| p.state == "rebuilding")
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "rebuild_running",
            "this projection is already being rebuilt",
        ));
    }
    let head = app.store.head().await.map_err(ApiError::internal)?;
    let started = RebuildProgress {
        state: "rebuilding",
        checkpoint: 0,
        head,
        error: None,
    };
    app.rebuilds.set(name, started);
    let (db, rebuilds, progress) = (app.db.clone(), app.rebuilds.clone(), app.progress.clone());
    tokio::spawn(async move {
        let result = rebuild::rebuild(&db, name, |checkpoint, head| {
            rebuilds.set(
                name,
                RebuildProgress {
                    state: "rebuilding",
                    checkpoint,
                    head,
                    error: None,
                },
            );
        })
        .await;
        let head = db.events().head().await.unwrap_or(0);
        let finished = match result {
            Ok(report) => {
                tracing::info!(
                    projection = name,
                    events = report.events,
                    seconds = report.seconds,
                    "projection rebuilt"
                );
                // An asynchronous projection's checkpoint moved with the switch.
                progress.publish(name, report.events);
                RebuildProgress {
                    state: "live",
                    checkpoint: head,
                    head,
                    error: None,
                }
            }
            Err(error) => {
                let error: RebuildError = error;
                tracing::error!(projection = name, %error, "projection rebuild failed");
                RebuildProgress {
                    state: "failed",
                    checkpoint: 0,
                    head,
                    error: Some(error.to_string()),
                }
            }
        };
        rebuilds.set(name, finished);
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"name": name, "state": "rebuilding", "head": head})),
    )
        .into_response())
}
