//! The delivery worker: drains the outbox, POSTs each message, and retries with exponential
//! backoff until the receiver answers 2xx or the message's deadline passes.
//!
//! Callbacks carry `Countersign-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key,
//! "<t>.<body>")>`, where the key is the client's callback key ([`crate::keys::ServerKeys::callback_key`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use countersign_domain::binding::Binding;
use countersign_domain::codes;
use countersign_projections::outbox::{self, Attempt, OutboxItem};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::channels::{Channel, Email};

use crate::state::AppState;

/// Messages claimed per sweep.
const BATCH: u32 = 32;
/// How long a claim holds before another worker may try the message again: longer than a
/// delivery may take (`TIMEOUT`), short enough that a crashed worker delays little.
const LEASE: chrono::Duration = chrono::Duration::seconds(15);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How long a receiver may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The header that signs callbacks.
pub const SIGNATURE_HEADER: &str = "countersign-signature";

/// `t=…,v1=…` for `body` sent at `at` with `key`.
pub fn signature(key: &[u8], at: DateTime<Utc>, body: &str) -> String {
    let t = at.timestamp();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait after `attempts` failed attempts: `base`, doubling each time, at most ten minutes.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1 << attempts.min(20)).min(MAX_BACKOFF)
}

/// Sweeps every `interval`, and right after each commit, until the task is dropped.
pub async fn run(app: AppState, interval: Duration, backoff_base: Duration) {
    let http = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("an HTTP client builds");
    let mut commits = app.store.watch_head();
    loop {
        if let Err(error) = sweep(&app, &http, backoff_base).await {
            tracing::warn!(%error, "delivery sweep failed; retrying");
        }
        tokio::select! {
            _ = commits.changed() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Delivers what is due now; returns how many messages it attempted.
pub async fn sweep(
    app: &AppState,
    http: &reqwest::Client,
    backoff_base: Duration,
) -> Result<usize, sqlx::Error> {
    let pool = app.pool();
    let now = app.now();
    let mut attempted = 0;
    for item in outbox::due(pool, now, BATCH).await? {
        if !outbox::claim(pool, item.id, now, now + LEASE).await? {
            continue;
        }
        let attempt = deliver(http, app, &item, app.now(), backoff_base).await;
        outbox::record(pool, &item, app.now(), &attempt).await?;
        match &attempt {
            Attempt::Delivered { .. } => {
                tracing::info!(id = %item.id, target = %item.target, "delivered")
            }
            Attempt::Failed { error, .. } => {
                tracing::warn!(id = %item.id, target = %item.target, %error, "delivery failed")
            }
        }
        attempted += 1;
    }
    Ok(attempted)
}

/// Callbacks go to the client's URL, signed with its callback key; other messages go to the
/// configured channel their `target` names.
async fn deliver(
    http: &reqwest::Client,
    app: &AppState,
    item: &OutboxItem,
    now: DateTime<Utc>,
    backoff_base: Duration,
) -> Attempt {
    let retry_at =
        now + chrono::Duration::from_std(backoff(backoff_base, item.attempts)).unwrap_or(LEASE);
    if item.kind != "callback" {
        let sent = match app.channels.get(&item.target) {
            Some(channel) if item.kind == "code" => send_code(http, app, channel, item).await,
            Some(channel) => channel.post(http, &item.body).await,
            None => Err((None, format!("no {} channel is configured", item.target))),
        };
        return match sent {
            Ok(status_code) => Attempt::Delivered { status_code },
            Err((status_code, error)) => Attempt::Failed {
                status_code,
                error,
                retry_at,
            },
        };
    }
    let key = app.keys.callback_key(item.client_id);
    let sent = http
        .post(&item.target)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature(&key, now, &item.body))
        .body(item.body.clone())
        .send()
        .await;
    match sent {
        Ok(answer) if answer.status().is_success() => Attempt::Delivered {
            status_code: answer.status().as_u16(),
        },
        Ok(answer) => Attempt::Failed {
            status_code: Some(answer.status().as_u16()),
            error: format!("the receiver answered {}", answer.status()),
            retry_at,
        },
        Err(error) => Attempt::Failed {
            status_code: None,
            error: format!("the receiver could not be reached: {error}"),
            retry_at,
        },
    }
}

/// Sends a code message: the code is derived again here from the server key, so it exists
/// only in flight. Gateways get JSON with the code and a ready text; email gets the text.
async fn send_code(
    http: &reqwest::Client,
    app: &AppState,
    channel: &Channel,
    item: &OutboxItem,
) -> Result<u16, (Option<u16>, String)> {
    let stored: Value =
        serde_json::from_str(&item.body).map_err(|e| (None, format!("bad message: {e}")))?;
    let binding = stored["binding"]
        .as_str()
        .and_then(|b| Binding::parse(b).ok())
        .ok_or((None, "the message has no binding".to_owned()))?;
    let code = codes::sent_code(&app.keys.otp_key, item.request_id, &binding);
    let mut text = String::new();
    if let Some(display) = stored["display"].as_object() {
        for (label, value) in display {
            text.push_str(&format!(
                "{label}: {}\n",
                value.as_str().unwrap_or_default()
            ));
        }
    }
    text.push_str(&format!("Code: {code}\n"));
    match channel {
        Channel::Smtp { .. } => {
            let to = stored["to"].as_str().unwrap_or_default();
            let subject = "Your confirmation code";
            channel
                .mail(Email {
                    to,
                    subject,
                    body: text,
                })
                .await
        }
        Channel::Webhook { .. } => {
            let message = json!({
                "request_id": item.request_id,
                "channel": item.target,
                "uid": stored["uid"],
                "to": stored["to"],
                "code": code,
                "text": text,
                "expires_at": stored["expires_at"],
            });
            channel.post(http, &message.to_string()).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_backoff_doubles_from_its_base_up_to_ten_minutes() {
        let base = Duration::from_secs(1);
        let waits: Vec<u64> = (0..4).map(|n| backoff(base, n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8]);
        assert_eq!(backoff(base, 30), MAX_BACKOFF);
    }

    #[test]
    fn the_signature_is_an_hmac_of_time_and_body() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let signed = signature(b"key", at, "{}");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"key").unwrap();
        mac.update(format!("{}.{{}}", at.timestamp()).as_bytes());
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(signed, format!("t={},v1={expected}", at.timestamp()));
    }
}
