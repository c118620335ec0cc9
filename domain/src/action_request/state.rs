//! The state of an action request, rebuilt by folding its events with [`evolve`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::event::Event;
use crate::binding::Binding;
use crate::values::{ActionName, Display, Method, RejectReason, UserId};

string_enum! {
    /// Where a request is in its life: `PENDING` → `CONFIRMED` → `CONSUMED`, `PENDING` →
    /// `REJECTED`, `PENDING` or `CONFIRMED` → `EXPIRED`.
    pub enum Status as "status" {
        /// Waiting for the user.
        Pending => "PENDING",
        /// Approved; its token may be consumed.
        Confirmed => "CONFIRMED",
        /// Approved and its token spent (final).
        Consumed => "CONSUMED",
        /// Declined, cancelled or locked by failed attempts (final).
        Rejected => "REJECTED",
        /// Not decided, or not consumed, in time (final).
        Expired => "EXPIRED",
    }
}

impl Status {
    /// Whether nothing can happen to the request any more.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Consumed | Status::Rejected | Status::Expired)
    }
}

/// An action request as its events left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRequest {
    /// The request's id.
    pub id: Uuid,
    /// The client (relying party) that made it.
    pub client_id: Uuid,
    /// What is to be approved.
    pub action: ActionName,
    /// Whose approval is asked for.
    pub uid: UserId,
    /// What will be executed, as sent.
    pub payload: Value,
    /// What the user is shown.
    pub display: Display,
    /// The dynamic-linking hash of action, display, payload and user.
    pub binding: Binding,
    /// How the user is asked.
    pub method: Method,
    /// The devices the request is addressed to.
    pub devices: Vec<Uuid>,
    /// The server's nonce, part of the signed approval message.
    pub nonce: String,
    /// The OCRA challenge, when there is one.
    pub challenge: Option<String>,
    /// The keyed hash of a code sent by SMS, email or voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hash: Option<String>,
    /// The current status, as recorded (see [`ActionRequest::effective_status`]).
    pub status: Status,
    /// Why it was rejected, once `REJECTED`.
    pub reason: Option<RejectReason>,
    /// How many more wrong signatures or codes are allowed.
    pub attempts_left: u8,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its last event happened.
    pub updated_at: DateTime<Utc>,
    /// When it stops being `PENDING`.
    pub expires_at: DateTime<Utc>,
    /// The device that confirmed or declined it.
    pub decided_by: Option<Uuid>,
    /// The hash of its consumption token, once `CONFIRMED`.
    pub token_hash: Option<String>,
    /// When its consumption token stops being valid.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// When its token was consumed.
    pub consumed_at: Option<DateTime<Utc>>,
    /// The client's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<String>,
    /// The hash of the creating request body, to recognise repeats.
    pub request_hash: Option<String>,
    /// Where final statuses are reported.
    pub callback_url: Option<String>,
    /// The number of events applied: the stream version.
    pub version: u64,
}

impl ActionRequest {
    /// The status to report at `now`: a `PENDING` request past `expires_at`, or a `CONFIRMED`
    /// one past `token_expires_at`, is `EXPIRED` even before its `Expired` event is written.
    pub fn effective_status(&self, now: DateTime<Utc>) -> Status {
        match self.status {
            Status::Pending if now >= self.expires_at => Status::Expired,
            Status::Confirmed if self.token_expires_at.is_some_and(|t| now >= t) => Status::Expired,
            status => status,
        }
    }
}

/// Applies one event. Never validates and never fails: events are facts. Each applied event
/// bumps `version` by one and sets `updated_at` to the event's time; an event other than
/// `Created` on no state leaves no state.
pub fn evolve(state: Option<ActionRequest>, event: &Event) -> Option<ActionRequest> {
    let mut request = match (state, event) {
        (previous, Event::Created(created)) => {
            let created = created.as_ref().clone();
            ActionRequest {
                id: created.id,
                client_id: created.client_id,
                action: created.action,
                uid: created.uid,
                payload: created.payload,
                display: created.display,
                binding: created.binding,
                method: created.method,
                devices: created.devices,
                nonce: created.nonce,
                challenge: created.challenge,
                code_hash: None,
                status: Status::Pending,
                reason: None,
                attempts_left: created.max_attempts,
                created_at: created.created_at,
                updated_at: created.created_at,
                expires_at: created.expires_at,
                decided_by: None,
                token_hash: None,
                token_expires_at: None,
                consumed_at: None,
                idempotency_key: created.idempotency_key,
                request_hash: created.request_hash,
                callback_url: created.callback_url,
                version: previous.map_or(0, |p| p.version),
            }
        }
        (None, _) => return None,
        (Some(mut request), event) => {
            match event {
                Event::Created(_) | Event::PushSent { .. } => {}
                Event::CodeSent { code_hash, .. } => {
                    request.code_hash = Some(code_hash.clone());
                }
                Event::ChallengeIssued { challenge, .. } => {
                    request.challenge = Some(challenge.clone());
                }
                Event::VerificationFailed { attempts_left, .. } => {
                    request.attempts_left = *attempts_left;
                }
                Event::Confirmed {
                    device_id,
                    token_hash,
                    token_expires_at,
                    ..
                } => {
                    request.status = Status::Confirmed;
                    request.decided_by = *device_id;
                    request.token_hash = Some(token_hash.clone());
                    request.token_expires_at = Some(*token_expires_at);
                }
                Event::Rejected {
                    reason, device_id, ..
                } => {
                    request.status = Status::Rejected;
                    request.reason = Some(*reason);
                    request.decided_by = *device_id;
                }
                Event::Expired { .. } => request.status = Status::Expired,
                Event::TokenConsumed { at } => {
                    request.status = Status::Consumed;
                    request.consumed_at = Some(*at);
                }
            }
            request
        }
    };
    request.version += 1;
    request.updated_at = event.at();
    Some(request)
}

/// Folds a stream's events, oldest first, into the request's state.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<ActionRequest> {
    events.into_iter().fold(None, evolve)
}
