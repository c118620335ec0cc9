//! Long-polling: `?wait=N` and `If-None-Match`, woken by the store's commits, not by a timer loop.

use std::future::Future;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::state::AppState;

/// The longest a long-poll may wait.
pub const MAX_WAIT_SECONDS: u64 = 30;

/// `?wait=N` (0–30 seconds).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    wait: Option<u64>,
}

impl WaitQuery {
    /// The wait asked for, checked against the limit.
    pub fn duration(&self) -> Result<Duration, ApiError> {
        match self.wait {
            None => Ok(Duration::ZERO),
            Some(n) if n <= MAX_WAIT_SECONDS => Ok(Duration::from_secs(n)),
            Some(_) => Err(ApiError::invalid_request(format!(
                "wait: must be 0 to {MAX_WAIT_SECONDS} seconds"
            ))),
        }
    }
}

/// The entity tags listed in `If-None-Match` (weak tags compare by their opaque part).
pub fn if_none_match(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Waits until `check` finds a change, `wait` runs out (`None`), or `wake_at` passes (checked
/// once more then). `check` runs whenever `moved` changes (the store's head, or an asynchronous
/// projection's position) and once at the start, after the subscription is in place, so a
/// change between the caller's first read and the wait is not missed.
pub async fn wait_for_change<T, F, Fut>(
    app: &AppState,
    mut moved: tokio::sync::watch::Receiver<u64>,
    wait: Duration,
    wake_at: Option<DateTime<Utc>>,
    mut check: F,
) -> Result<Option<T>, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ApiError>>,
{
    let deadline = Instant::now() + wait;
    let mut stopping = app.stopping.clone();
    if *stopping.borrow_and_update() {
        return Ok(None);
    }
    moved.borrow_and_update();
    if let Some(found) = check().await? {
        return Ok(Some(found));
    }
    loop {
        let mut until = deadline;
        if let Some(left) = wake_at.and_then(|at| (at - app.now()).to_std().ok()) {
            until = until.min(Instant::now() + left + Duration::from_millis(5));
        }
        tokio::select! {
            changed = moved.changed() => {
                if changed.is_err() {
                    return Err(ApiError::unavailable("the server is shutting down"));
                }
            }
            () = tokio::time::sleep_until(until) => {}
            _ = stopping.changed() => return Ok(None),
        }
        if let Some(found) = check().await? {
            return Ok(Some(found));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_wait_over_thirty_seconds_is_refused() {
        assert!(WaitQuery { wait: Some(31) }.duration().is_err());
        assert_eq!(
            WaitQuery { wait: Some(30) }.duration().unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(WaitQuery { wait: None }.duration().unwrap(), Duration::ZERO);
    }

    #[test]
    fn if_none_match_lists_every_tag_weak_or_strong() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"v1\", W/\"v2\""),
        );
        assert_eq!(if_none_match(&headers), vec!["\"v1\"", "\"v2\""]);
    }
}
