//! What can be asked of a device, and what a decision needs to know besides.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::state::DeviceKind;
use crate::values::{PublicKey, UserId};

/// The request to enrol a new device for a user.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrol {
    /// The new device's id.
    pub id: Uuid,
    /// The client enrolling it.
    pub client_id: Uuid,
    /// The user it belongs to.
    pub uid: UserId,
    /// What kind of authenticator it is.
    pub kind: DeviceKind,
    /// A name the user recognises it by; 1–100 characters once trimmed.
    pub name: String,
    /// Its P-256 public key; required for a push device, ignored for others.
    pub public_key: Option<PublicKey>,
    /// Its secret, already encrypted by the caller (never the plain secret); required for an
    /// OCRA device, ignored for others.
    pub secret: Option<String>,
    /// Its OCRA suite; required for an OCRA device, ignored for others.
    pub suite: Option<String>,
    /// The hash of the device token it authenticates with.
    pub token_hash: String,
}

/// A request to change a device.
///
/// A command lives only for one decision, so `Enrol` is held inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Enrol the device.
    Enrol(Enrol),
    /// Revoke the device; it can do nothing afterwards.
    Revoke,
}

/// What a decision needs besides the state and the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The current time.
    pub now: DateTime<Utc>,
}
