//! Countersign's pure domain: the values a request is made of, the dynamic-linking binding,
//! consumption tokens, device approvals, one-time codes (HOTP, TOTP, OCRA), and the two
//! event-sourced aggregates (action requests and devices) as `decide` / `evolve` functions.
//!
//! Nothing here performs I/O, reads a clock or draws randomness: time, identifiers, nonces and
//! keys are passed in by the caller, so every decision can be replayed and tested exactly.

#[macro_use]
mod macros;

pub mod action_request;
pub mod approval;
pub mod binding;
pub mod codec;
pub mod codes;
pub mod device;
pub mod token;
pub mod values;

pub use action_request::{ActionRequest, DomainError, Status};
pub use approval::{approval_message, verify_signature, Decision};
pub use binding::{binding, canonical, default_display, Binding};
pub use codec::EventDecodeError;
pub use device::{Device, DeviceError, DeviceKind, DeviceStatus};
pub use token::{derive_token, hash_secret, secret_matches};
pub use values::{
    ActionName, ActionPattern, DeviceSelection, Display, Method, PublicKey, RejectReason,
    TtlSeconds, UserId, ValueError,
};
