//! The action request aggregate (stream `action-request-<id>`): a user's approval of one
//! action, from creation through a device's decision (a signature, or a code typed in) to
//! the single use of its token.
//!
//! [`decide`] turns a command into new events or a refusal; [`evolve`] folds events into state.

mod command;
mod error;
mod event;
mod otp;
mod state;

pub use command::{CodeCheck, Command, Context, Create};
pub use error::DomainError;
pub use event::{Created, Event, EVENT_TYPES, INVALID_OTP, INVALID_SIGNATURE};
pub use state::{evolve, replay, ActionRequest, Status};

use serde_json::Value;
use uuid::Uuid;

use crate::approval::{approval_message, verify_signature, Decision};
use crate::binding::{binding, canonical, default_display};
use crate::token::{derive_token, hash_secret};
use crate::values::{ActionName, Method, PublicKey, RejectReason};

/// The prefix of an action request's stream id.
pub const STREAM_PREFIX: &str = "action-request-";

/// The stream holding the events of request `id`.
pub fn stream_id(id: Uuid) -> String {
    format!("{STREAM_PREFIX}{}", id.hyphenated())
}

/// Decides what happens when `command` meets `state` (`None`: the stream is empty).
/// Pure: the time and the token key come from `ctx`.
pub fn decide(
    state: Option<&ActionRequest>,
    command: Command,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    let Some(request) = state else {
        return match command {
            Command::Create(create) => create_request(create, ctx),
            _ => Err(DomainError::NotFound),
        };
    };
    match command {
        Command::Create(_) => Err(DomainError::AlreadyExists),
        Command::Confirm {
            device_id,
            public_key,
            signature,
        } => device_decision(
            request,
            Decision::Confirm,
            device_id,
            &public_key,
            &signature,
            ctx,
        ),
        Command::Reject {
            device_id,
            public_key,
            signature,
        } => device_decision(
            request,
            Decision::Reject,
            device_id,
            &public_key,
            &signature,
            ctx,
        ),
        Command::VerifyCode {
            device_id,
            code,
            check,
        } => otp::verify_code(request, device_id, &code, &check, ctx),
        Command::Cancel => cancel(request, ctx),
        Command::Expire => expire(request, ctx),
        Command::ConsumeToken { action, payload } => consume(request, &action, &payload, ctx),
    }
}

fn create_request(create: Create, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    if !create.payload.is_object() {
        return Err(DomainError::InvalidPayload);
    }
    let sends_code = matches!(create.method, Method::Sms | Method::Email | Method::Voice);
    match (create.method, create.challenge.as_deref()) {
        (Method::Ocra, None) | (_, Some("")) => return Err(DomainError::MissingChallenge),
        _ if sends_code && create.code_hash.is_none() => return Err(DomainError::MissingChallenge),
        _ => {}
    }
    if create.devices.is_empty() && !sends_code {
        return Err(DomainError::NoActiveDevice);
    }
    let sent = create
        .code_hash
        .clone()
        .filter(|_| sends_code)
        .map(|code_hash| Event::CodeSent {
            channel: create.method,
            destination: create.destination.clone(),
            code_hash,
            at: ctx.now,
        });
    let display = create
        .display
        .unwrap_or_else(|| default_display(&create.payload));
    let binding = binding(&create.action, &display, &create.payload, &create.uid);
    let issued = create
        .challenge
        .clone()
        .map(|challenge| Event::ChallengeIssued {
            challenge,
            at: ctx.now,
        });
    let pushed: Vec<Event> = create
        .notify
        .iter()
        .filter(|device| create.devices.contains(device))
        .map(|device_id| Event::PushSent {
            device_id: *device_id,
            at: ctx.now,
        })
        .collect();
    let created = Event::Created(Box::new(Created {
        id: create.id,
        client_id: create.client_id,
        action: create.action,
        uid: create.uid,
        payload: create.payload,
        display,
        binding,
        method: create.method,
        devices: create.devices,
        nonce: create.nonce,
        challenge: create.challenge,
        max_attempts: ctx.max_attempts,
        created_at: ctx.now,
        expires_at: ctx.now + create.ttl.as_duration(),
        idempotency_key: create.idempotency_key,
        request_hash: create.request_hash,
        callback_url: create.callback_url,
    }));
    Ok(std::iter::once(created)
        .chain(issued)
        .chain(sent)
        .chain(pushed)
        .collect())
}

/// Whether the request still waits for a decision at `ctx.now`.
fn is_open(request: &ActionRequest, ctx: &Context) -> bool {
    request.status == Status::Pending && ctx.now < request.expires_at
}

fn device_decision(
    request: &ActionRequest,
    decision: Decision,
    device_id: Uuid,
    public_key: &PublicKey,
    signature: &[u8],
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    if !is_open(request, ctx) {
        return Err(DomainError::NotPending);
    }
    if !request.devices.contains(&device_id) {
        return Err(DomainError::DeviceNotAddressed);
    }
    let message = approval_message(request.id, decision, &request.binding, &request.nonce);
    if !verify_signature(public_key, message.as_bytes(), signature) {
        return Ok(failed_attempt(
            request,
            Some(device_id),
            INVALID_SIGNATURE,
            ctx,
        ));
    }
    Ok(vec![match decision {
        Decision::Confirm => confirmed(request, Some(device_id), None, ctx),
        Decision::Reject => Event::Rejected {
            reason: RejectReason::DeclinedByUser,
            device_id: Some(device_id),
            at: ctx.now,
        },
    }])
}

/// The events of a wrong signature or code: one attempt fewer, and the rejection when none
/// are left.
fn failed_attempt(
    request: &ActionRequest,
    device_id: Option<Uuid>,
    reason: &str,
    ctx: &Context,
) -> Vec<Event> {
    let attempts_left = request.attempts_left.saturating_sub(1);
    let mut events = vec![Event::VerificationFailed {
        device_id,
        reason: reason.to_owned(),
        attempts_left,
        at: ctx.now,
    }];
    if attempts_left == 0 {
        events.push(Event::Rejected {
            reason: RejectReason::TooManyAttempts,
            device_id: None,
            at: ctx.now,
        });
    }
    events
}

/// The confirmation by `device_id`, issuing the request's consumption token.
fn confirmed(
    request: &ActionRequest,
    device_id: Option<Uuid>,
    otp_step: Option<i64>,
    ctx: &Context,
) -> Event {
    Event::Confirmed {
        device_id,
        token_hash: hash_secret(&derive_token(ctx.token_key, request.id)),
        token_expires_at: ctx.now + ctx.token_ttl,
        at: ctx.now,
        otp_step,
    }
}

fn cancel(request: &ActionRequest, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    if !is_open(request, ctx) {
        return Err(DomainError::NotPending);
    }
    Ok(vec![Event::Rejected {
        reason: RejectReason::CancelledByClient,
        device_id: None,
        at: ctx.now,
    }])
}

/// Whether the confirmed request's token is past its lifetime at `ctx.now`.
fn token_lapsed(request: &ActionRequest, ctx: &Context) -> bool {
    request.token_expires_at.is_some_and(|t| ctx.now >= t)
}

fn expire(request: &ActionRequest, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    let due = match request.status {
        Status::Pending => ctx.now >= request.expires_at,
        Status::Confirmed => token_lapsed(request, ctx),
        Status::Consumed | Status::Rejected | Status::Expired => false,
    };
    if !due {
        return Err(DomainError::NotExpirable);
    }
    Ok(vec![Event::Expired {
        at: ctx.now,
        from: request.status,
    }])
}

fn consume(
    request: &ActionRequest,
    action: &ActionName,
    payload: &Value,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    match request.status {
        Status::Consumed => return Err(DomainError::TokenAlreadyConsumed),
        Status::Expired if request.token_expires_at.is_some() => {
            return Err(DomainError::TokenExpired)
        }
        Status::Confirmed if token_lapsed(request, ctx) => return Err(DomainError::TokenExpired),
        Status::Confirmed => {}
        Status::Pending | Status::Rejected | Status::Expired => {
            return Err(DomainError::InvalidToken)
        }
    }
    if *action != request.action || canonical(payload) != canonical(&request.payload) {
        return Err(DomainError::BindingMismatch);
    }
    Ok(vec![Event::TokenConsumed { at: ctx.now }])
}

#[cfg(test)]
mod tests;
