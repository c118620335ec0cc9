//! A client's own daily statistics, from the asynchronous statistics projection.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use countersign_projections::stats::{self, DayStats};
use serde::Deserialize;

use crate::auth::Client;
use crate::error::ApiError;
use crate::extract::AppQuery;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/stats/daily", get(daily))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DailyQuery {
    from: Option<String>,
    to: Option<String>,
}

fn day(field: &str, given: Option<&str>, default: NaiveDate) -> Result<NaiveDate, ApiError> {
    match given {
        None => Ok(default),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid_request(format!("{field} must be a day, YYYY-MM-DD"))
                .with("field", field)
        }),
    }
}

async fn daily(
    State(app): State<AppState>,
    Client(client): Client,
    AppQuery(query): AppQuery<DailyQuery>,
) -> Result<Json<Vec<DayStats>>, ApiError> {
    let today = app.now().date_naive();
    let to = day("to", query.to.as_deref(), today)?;
    let month_before = to.checked_sub_days(chrono::Days::new(30)).unwrap_or(to);
    let from = day("from", query.from.as_deref(), month_before)?;
    if from > to {
        return Err(ApiError::invalid_request("from must not be after to").with("field", "from"));
    }
    app.settled(stats::NAME).await;
    let days = stats::daily(
        app.pool(),
        &client.id.to_string(),
        &from.format("%Y-%m-%d").to_string(),
        &to.format("%Y-%m-%d").to_string(),
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(days))
}
