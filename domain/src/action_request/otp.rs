//! Confirming a request with a one-time code the user typed in: an OCRA response over the
//! request's challenge, from the current time step or one either side.

use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{confirmed, failed_attempt, is_open, ActionRequest, CodeCheck, Context};
use super::{DomainError, Event, INVALID_OTP};
use crate::codes::{code_hash, ocra, OcraInput};

/// Decides a [`super::Command::VerifyCode`].
pub(super) fn verify_code(
    request: &ActionRequest,
    device_id: Option<Uuid>,
    code: &str,
    check: &CodeCheck,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    if !is_open(request, ctx) {
        return Err(DomainError::NotPending);
    }
    if device_id.is_some_and(|device| !request.devices.contains(&device)) {
        return Err(DomainError::DeviceNotAddressed);
    }
    let (suite, key) = match check {
        CodeCheck::Ocra { suite, key } => (suite, key),
        CodeCheck::Sent { key } => return verify_sent(request, code, key, ctx),
    };
    let Some(challenge) = request.challenge.as_deref() else {
        return Err(DomainError::NoCode);
    };
    let confirming = device_id
        .or_else(|| request.devices.first().copied())
        .ok_or(DomainError::DeviceNotAddressed)?;
    for timestamp in time_steps(suite.time_step_seconds(), ctx) {
        let input = OcraInput {
            question: challenge,
            timestamp,
            ..OcraInput::default()
        };
        let expected = ocra(suite, key, &input).map_err(|_| DomainError::UnsupportedSuite)?;
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            let step = timestamp.and_then(|t| i64::try_from(t).ok());
            return Ok(vec![confirmed(request, Some(confirming), step, ctx)]);
        }
    }
    Ok(failed_attempt(request, device_id, INVALID_OTP, ctx))
}

/// A code sent by SMS, email or voice: right when its keyed hash is the one recorded.
fn verify_sent(
    request: &ActionRequest,
    code: &str,
    key: &[u8],
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    let Some(recorded) = request.code_hash.as_deref() else {
        return Err(DomainError::NoCode);
    };
    let presented = code_hash(key, code, &request.binding);
    if bool::from(presented.as_bytes().ct_eq(recorded.as_bytes())) {
        return Ok(vec![confirmed(request, None, None, ctx)]);
    }
    Ok(failed_attempt(request, None, INVALID_OTP, ctx))
}

/// The timestamps a code may be computed at: for a timed suite the current step, then the one
/// before and the one after; otherwise none at all.
fn time_steps(step_seconds: Option<u64>, ctx: &Context) -> Vec<Option<u64>> {
    let Some(step_seconds) = step_seconds else {
        return vec![None];
    };
    let now = u64::try_from(ctx.now.timestamp()).unwrap_or(0);
    let current = now / step_seconds;
    [
        Some(current),
        current.checked_sub(1),
        current.checked_add(1),
    ]
    .into_iter()
    .flatten()
    .map(Some)
    .collect()
}
