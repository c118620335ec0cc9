//! Why an action request refused a command.

use crate::values::Method;

/// A refused command. Each has a stable, machine-readable [`code`](DomainError::code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// There is no such request.
    #[error("the action request does not exist")]
    NotFound,
    /// A request with this id already exists.
    #[error("an action request with this id already exists")]
    AlreadyExists,
    /// The payload is not a JSON object.
    #[error("payload must be a JSON object")]
    InvalidPayload,
    /// A push was asked for but the user has no active device.
    #[error("the user has no active device")]
    NoActiveDevice,
    /// An OCRA request was made without a challenge, or with an empty one.
    #[error("challenge: an OCRA request needs a challenge")]
    MissingChallenge,
    /// A code was submitted for a request that has no challenge to check it against.
    #[error("the action request has no code to verify")]
    NoCode,
    /// The device's OCRA suite cannot answer the request's challenge: it needs a counter, PIN
    /// or session, which the server does not keep, or another question format.
    #[error("the device's OCRA suite cannot answer this request's challenge")]
    UnsupportedSuite,
    /// The method is not available yet.
    #[error("method {0} is not supported")]
    UnsupportedMethod(Method),
    /// The request is no longer waiting for a decision.
    #[error("the action request is not pending")]
    NotPending,
    /// The device is not one the request was addressed to.
    #[error("the action request was not addressed to this device")]
    DeviceNotAddressed,
    /// The request cannot expire yet, or has already ended.
    #[error("the action request cannot expire now")]
    NotExpirable,
    /// The request has no usable token.
    #[error("the token is not valid")]
    InvalidToken,
    /// The token was already spent.
    #[error("the token has already been consumed")]
    TokenAlreadyConsumed,
    /// The token is past its lifetime.
    #[error("the token has expired")]
    TokenExpired,
    /// The token was issued for another action or payload.
    #[error("the token was issued for another action or payload")]
    BindingMismatch,
}

impl DomainError {
    /// The stable code reported to clients.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::NotFound | DomainError::DeviceNotAddressed => "not_found",
            DomainError::AlreadyExists => "conflict",
            DomainError::InvalidPayload
            | DomainError::UnsupportedMethod(_)
            | DomainError::MissingChallenge
            | DomainError::NoCode
            | DomainError::UnsupportedSuite => "invalid_request",
            DomainError::NoActiveDevice => "no_active_device",
            DomainError::NotPending | DomainError::NotExpirable => "not_pending",
            DomainError::InvalidToken => "invalid_token",
            DomainError::TokenAlreadyConsumed => "token_already_consumed",
            DomainError::TokenExpired => "token_expired",
            DomainError::BindingMismatch => "binding_mismatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_documented_code() {
        let expected = [
            (DomainError::NotFound, "not_found"),
            (DomainError::AlreadyExists, "conflict"),
            (DomainError::InvalidPayload, "invalid_request"),
            (DomainError::NoActiveDevice, "no_active_device"),
            (
                DomainError::UnsupportedMethod(Method::Sms),
                "invalid_request",
            ),
            (DomainError::MissingChallenge, "invalid_request"),
            (DomainError::NoCode, "invalid_request"),
            (DomainError::UnsupportedSuite, "invalid_request"),
            (DomainError::NotPending, "not_pending"),
            (DomainError::DeviceNotAddressed, "not_found"),
            (DomainError::NotExpirable, "not_pending"),
            (DomainError::InvalidToken, "invalid_token"),
            (DomainError::TokenAlreadyConsumed, "token_already_consumed"),
            (DomainError::TokenExpired, "token_expired"),
            (DomainError::BindingMismatch, "binding_mismatch"),
        ];
        for (error, code) in expected {
            assert_eq!(error.code(), code, "{error:?}");
        }
        assert_eq!(
            DomainError::UnsupportedMethod(Method::Sms).to_string(),
            "method sms is not supported"
        );
    }
}
