//! The transactional outbox: messages the log calls for, queued in the same transaction as the
//! event, and the queries the delivery worker drains it with.
//!
//! A row is claimed with a lease (compare-and-set on `lease_until`), so several instances can
//! drain one outbox without sending a message twice at once; a worker that dies mid-delivery
//! leaves a lease that runs out, and the message is sent again (at-least-once).

use chrono::{DateTime, Duration, Utc};
use countersign_domain::action_request::ActionRequest;
use countersign_domain::values::Method;
use countersign_store::sqlite::InlineError;
use countersign_store::RecordedEvent;
use serde_json::json;
use uuid::Uuid;

use crate::sql::{Param, Pool, Sql};
use crate::time;

/// How long after a request's expiry its callbacks are still retried.
pub const CALLBACK_GRACE: Duration = Duration::days(1);

/// The events whose new status is posted to the request's `callback_url`.
const CALLBACK_EVENTS: &[&str] = &["Confirmed", "Rejected", "Expired"];

/// Queues the callback an event calls for, if the request has a `callback_url`.
pub async fn enqueue_callback(
    conn: &mut dyn Sql,
    table: &str,
    recorded: &RecordedEvent,
    state: &ActionRequest,
) -> Result<(), InlineError> {
    let Some(url) = &state.callback_url else {
        return Ok(());
    };
    if !CALLBACK_EVENTS.contains(&recorded.event_type.as_str()) {
        return Ok(());
    }
    let body = json!({"id": state.id, "status": state.status, "version": state.version});
    let sql = format!(
        "insert into {table} (id, kind, request_id, client_id, target, body, next_attempt_at, \
         deliver_until, status, created_at) values ($1, 'callback', $2, $3, $4, $5, $6, $7, \
         'pending', $6) on conflict do nothing"
    );
    let params = [
        recorded.event_id.to_string().into(),
        state.id.to_string().into(),
        state.client_id.to_string().into(),
        url.as_str().into(),
        body.to_string().into(),
        time::format(recorded.recorded_at).into(),
        time::format(state.expires_at + CALLBACK_GRACE).into(),
    ];
    conn.execute(&sql, &params).await?;
    Ok(())
}

/// Queues the push-gateway notification of one device for a new request.
pub async fn enqueue_push(
    conn: &mut dyn Sql,
    table: &str,
    recorded: &RecordedEvent,
    state: &ActionRequest,
    device_id: Uuid,
) -> Result<(), InlineError> {
    let body = json!({
        "device_id": device_id,
        "request_id": state.id,
        "action": state.action,
        "display": state.display,
        "expires_at": time::format(state.expires_at),
    });
    let sql = format!(
        "insert into {table} (id, kind, request_id, client_id, target, body, next_attempt_at, \
         deliver_until, status, created_at) values ($1, 'push', $2, $3, 'push', $4, $5, $6, \
         'pending', $5) on conflict do nothing"
    );
    let params = [
        recorded.event_id.to_string().into(),
        state.id.to_string().into(),
        state.client_id.to_string().into(),
        body.to_string().into(),
        time::format(recorded.recorded_at).into(),
        time::format(state.expires_at).into(),
    ];
    conn.execute(&sql, &params).await?;
    Ok(())
}

/// Queues the message that carries a sent code. The code itself is not in it: the worker derives
/// it again from the server key when it sends.
pub async fn enqueue_code(
    conn: &mut dyn Sql,
    table: &str,
    recorded: &RecordedEvent,
    state: &ActionRequest,
    channel: Method,
    to: Option<&str>,
) -> Result<(), InlineError> {
    let body = json!({
        "request_id": state.id,
        "uid": state.uid,
        "to": to,
        "action": state.action,
        "display": state.display,
        "binding": state.binding,
        "expires_at": time::format(state.expires_at),
    });
    let sql = format!(
        "insert into {table} (id, kind, request_id, client_id, target, body, next_attempt_at, \
         deliver_until, status, created_at) values ($1, 'code', $2, $3, $4, $5, $6, $7, \
         'pending', $6) on conflict do nothing"
    );
    let params = [
        recorded.event_id.to_string().into(),
        state.id.to_string().into(),
        state.client_id.to_string().into(),
        channel.as_str().into(),
        body.to_string().into(),
        time::format(recorded.recorded_at).into(),
        time::format(state.expires_at).into(),
    ];
    conn.execute(&sql, &params).await?;
    Ok(())
}

/// A message waiting for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    /// The row's id (the id of the event that queued it).
    pub id: Uuid,
    /// `callback`.
    pub kind: String,
    /// The action request it is about.
    pub request_id: Uuid,
    /// The client it goes to.
    pub client_id: Uuid,
    /// Where it goes.
    pub target: String,
    /// The exact body to send.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// After this it is given up.
    pub deliver_until: DateTime<Utc>,
}

/// The outcome of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver accepted it.
    Delivered {
        /// Its HTTP status.
        status_code: u16,
    },
    /// It failed; it is tried again at `retry_at`, unless that is past `deliver_until`.
    Failed {
        /// The receiver's HTTP status, when it answered.
        status_code: Option<u16>,
        /// What went wrong.
        error: String,
        /// When to try again.
        retry_at: DateTime<Utc>,
    },
}

fn corrupt(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("outbox row has a bad {what}").into())
}

/// Up to `limit` messages due at `now` and not leased, oldest first.
pub async fn due(
    pool: &Pool,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<OutboxItem>, sqlx::Error> {
    let rows = pool
        .rows(
            "select id, kind, request_id, client_id, target, body, cast(attempts as text), \
             deliver_until from outbox where status = 'pending' and next_attempt_at <= $1 \
             and (lease_until is null or lease_until <= $1) order by id limit $2",
            &[time::format(now).into(), Param::Int(i64::from(limit))],
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            let mut columns = row.into_iter().map(Option::unwrap_or_default);
            let mut next = || columns.next().unwrap_or_default();
            Ok(OutboxItem {
                id: next().parse().map_err(|_| corrupt("id"))?,
                kind: next(),
                request_id: next().parse().map_err(|_| corrupt("request id"))?,
                client_id: next().parse().map_err(|_| corrupt("client id"))?,
                target: next(),
                body: next(),
                attempts: next().parse().map_err(|_| corrupt("attempt count"))?,
                deliver_until: time::parse(&next()).ok_or_else(|| corrupt("time"))?,
            })
        })
        .collect()
}

/// Takes a lease on a message until `lease_until`; false when another worker holds it.
pub async fn claim(
    pool: &Pool,
    id: Uuid,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let claimed = pool
        .run(
            "update outbox set lease_until = $1 where id = $2 and status = 'pending' \
             and (lease_until is null or lease_until <= $3)",
            &[
                time::format(lease_until).into(),
                id.to_string().into(),
                time::format(now).into(),
            ],
        )
        .await?;
    Ok(claimed == 1)
}

/// Records an attempt (for auditors) and what it leaves the message as.
pub async fn record(
    pool: &Pool,
    item: &OutboxItem,
    at: DateTime<Utc>,
    attempt: &Attempt,
) -> Result<(), sqlx::Error> {
    let number = Param::Int(i64::from(item.attempts) + 1);
    let (outcome, status_code, error, status, next_at) = match attempt {
        Attempt::Delivered { status_code } => {
            ("delivered", Some(*status_code), None, "delivered", at)
        }
        Attempt::Failed {
            status_code,
            error,
            retry_at,
        } => {
            let status = if *retry_at > item.deliver_until {
                "failed"
            } else {
                "pending"
            };
            (
                "failed",
                *status_code,
                Some(error.clone()),
                status,
                *retry_at,
            )
        }
    };
    let code = Param::OptionalInt(status_code.map(i64::from));
    pool.run(
        "insert into outbox_attempts (outbox_id, attempt, at, outcome, status_code, error) \
         values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
        &[
            item.id.to_string().into(),
            number.clone(),
            time::format(at).into(),
            outcome.into(),
            code,
            error.clone().into(),
        ],
    )
    .await?;
    let delivered_at = (status == "delivered").then(|| time::format(at));
    pool.run(
        "update outbox set attempts = $1, status = $2, next_attempt_at = $3, lease_until = null, \
         last_error = $4, delivered_at = $5 where id = $6",
        &[
            number,
            status.into(),
            time::format(next_at).into(),
            error.into(),
            delivered_at.into(),
            item.id.to_string().into(),
        ],
    )
    .await?;
    Ok(())
}

/// Messages not yet delivered nor given up.
pub async fn backlog(pool: &Pool) -> Result<u64, sqlx::Error> {
    let rows = pool
        .rows(
            "select cast(count(*) as text) from outbox where status = 'pending'",
            &[],
        )
        .await?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// One attempt to deliver a message, as auditors see it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it was made.
    pub at: String,
    /// `delivered` or `failed`.
    pub outcome: String,
    /// The receiver's HTTP status (or SMTP reply code), when it answered.
    pub status_code: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
}

/// A message of one request with its attempts, as auditors see it (never a code: messages do
/// not hold one).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryRecord {
    /// The message's id (the id of the event that queued it).
    pub id: String,
    /// `callback`, `push` or `code`.
    pub kind: String,
    /// The channel (`push`, `sms`, `email`, `voice`) or the callback URL.
    pub target: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// When it was queued.
    pub created_at: String,
    /// When it was delivered.
    pub delivered_at: Option<String>,
    /// Every attempt so far, in order.
    pub attempts: Vec<AttemptRecord>,
}

/// The messages of one action request, oldest first, with their attempts.
pub async fn deliveries_of(
    pool: &Pool,
    request_id: Uuid,
) -> Result<Vec<DeliveryRecord>, sqlx::Error> {
    let rows = pool
        .rows(
            "select id, kind, target, status, created_at, delivered_at from outbox \
             where request_id = $1 order by id",
            &[request_id.to_string().into()],
        )
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let mut columns = row.into_iter();
        let mut next = || columns.next().flatten();
        let id = next().unwrap_or_default();
        let attempts = pool
            .rows(
                "select cast(attempt as text), at, outcome, cast(status_code as text), error \
                 from outbox_attempts where outbox_id = $1 order by attempt",
                &[id.as_str().into()],
            )
            .await?
            .into_iter()
            .map(|a| AttemptRecord {
                attempt: a[0].as_deref().and_then(|n| n.parse().ok()).unwrap_or(0),
                at: a[1].clone().unwrap_or_default(),
                outcome: a[2].clone().unwrap_or_default(),
                status_code: a[3].as_deref().and_then(|n| n.parse().ok()),
                error: a[4].clone(),
            })
            .collect();
        out.push(DeliveryRecord {
            id,
            kind: next().unwrap_or_default(),
            target: next().unwrap_or_default(),
            status: next().unwrap_or_default(),
            created_at: next().unwrap_or_default(),
            delivered_at: next(),
            attempts,
        });
    }
    Ok(out)
}
