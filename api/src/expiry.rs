//! The expiry task: records `Expired` for requests and tokens whose time has passed.
//!
//! Reads already report `EXPIRED` from the clock, so this task only makes the log say so. It
//! appends through the same expected-version check as every command: when a confirm or a consume
//! wins the race, the expiry is refused by the domain and skipped.

use std::time::Duration;

use countersign_domain::action_request::{Command, DomainError};

use crate::commands::{execute, ActionRequests, CommandError};
use crate::meta;
use crate::state::AppState;

/// Requests looked at per sweep.
const BATCH: u32 = 500;

/// Sweeps every `interval` until the task is dropped.
pub async fn run(app: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = sweep(&app).await {
            tracing::warn!(%error, "expiry sweep failed; retrying at the next tick");
        }
    }
}

/// Expires everything due now; returns how many requests it expired.
pub async fn sweep(app: &AppState) -> Result<usize, String> {
    let due = app
        .reads
        .due_for_expiry(app.now(), BATCH)
        .await
        .map_err(|e| e.to_string())?;
    let mut expired = 0;
    for id in due {
        let metadata = meta::system();
        match execute::<ActionRequests>(app, id, &metadata, || Command::Expire).await {
            Ok(_) => expired += 1,
            Err(CommandError::Domain(DomainError::NotExpirable | DomainError::NotFound)) => {}
            Err(error) => return Err(error.to_string()),
        }
    }
    Ok(expired)
}
