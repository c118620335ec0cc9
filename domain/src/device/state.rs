//! The state of a device, rebuilt by folding its events with [`evolve`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::Event;
use crate::values::{PublicKey, UserId};

string_enum! {
    /// What kind of authenticator a device is.
    pub enum DeviceKind as "kind" {
        /// An app that receives pushes and signs approvals with a P-256 key.
        Push => "push",
        /// A card reader or code generator answering OCRA challenges with a shared secret.
        Ocra => "ocra",
    }
}

string_enum! {
    /// Whether a device may still act.
    pub enum DeviceStatus as "status" {
        /// Enrolled and usable.
        Active => "active",
        /// Revoked; it can do nothing.
        Revoked => "revoked",
    }
}

/// A user's device as its events left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device's id.
    pub id: Uuid,
    /// The client that enrolled it.
    pub client_id: Uuid,
    /// The user it belongs to.
    pub uid: UserId,
    /// What kind of authenticator it is.
    pub kind: DeviceKind,
    /// The name the user recognises it by.
    pub name: String,
    /// Its public key, for a push device.
    pub public_key: Option<PublicKey>,
    /// Its secret, encrypted by the server, for an OCRA device.
    pub secret: Option<String>,
    /// Its OCRA suite, for an OCRA device.
    pub suite: Option<String>,
    /// The hash of its device token.
    pub token_hash: String,
    /// Whether it may still act.
    pub status: DeviceStatus,
    /// When it was enrolled.
    pub enrolled_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The number of events applied: the stream version.
    pub version: u64,
}

impl Device {
    /// Whether the device may act.
    pub fn is_active(&self) -> bool {
        self.status == DeviceStatus::Active
    }
}

/// Applies one event. Never validates and never fails; bumps `version` by one per event. An
/// event other than `DeviceEnrolled` on no state leaves no state.
pub fn evolve(state: Option<Device>, event: &Event) -> Option<Device> {
    let mut device = match (state, event) {
        (previous, Event::DeviceEnrolled(enrolled)) => Device {
            id: enrolled.id,
            client_id: enrolled.client_id,
            uid: enrolled.uid.clone(),
            kind: enrolled.kind,
            name: enrolled.name.clone(),
            public_key: enrolled
                .public_key
                .as_deref()
                .and_then(|key| PublicKey::parse(key).ok()),
            secret: enrolled.secret.clone(),
            suite: enrolled.suite.clone(),
            token_hash: enrolled.token_hash.clone(),
            status: DeviceStatus::Active,
            enrolled_at: enrolled.enrolled_at,
            revoked_at: None,
            version: previous.map_or(0, |p| p.version),
        },
        (None, Event::DeviceRevoked { .. }) => return None,
        (Some(mut device), Event::DeviceRevoked { at }) => {
            device.status = DeviceStatus::Revoked;
            device.revoked_at = Some(*at);
            device
        }
    };
    device.version += 1;
    Some(device)
}

/// Folds a stream's events, oldest first, into the device's state.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Device> {
    events.into_iter().fold(None, evolve)
}
