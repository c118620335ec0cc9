//! The facts recorded in a device's stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::state::DeviceKind;
use crate::codec::{self, EventDecodeError, SCHEMA_VERSION};
use crate::values::UserId;

/// The type names of every device event.
pub const EVENT_TYPES: &[&str] = &["DeviceEnrolled", "DeviceRevoked"];

/// The data of [`Event::DeviceEnrolled`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEnrolled {
    /// The device's id.
    pub id: Uuid,
    /// The client that enrolled it.
    pub client_id: Uuid,
    /// The user it belongs to.
    pub uid: UserId,
    /// What kind of authenticator it is.
    pub kind: DeviceKind,
    /// The name the user recognises it by, trimmed.
    pub name: String,
    /// Its public key as base64url SPKI DER, for a push device.
    pub public_key: Option<String>,
    /// Its secret, encrypted by the server, for an OCRA device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Its OCRA suite, for an OCRA device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The hash of its device token.
    pub token_hash: String,
    /// When it was enrolled.
    pub enrolled_at: DateTime<Utc>,
}

/// Something that happened to a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// The device was enrolled and is active.
    DeviceEnrolled(DeviceEnrolled),
    /// The device was revoked.
    DeviceRevoked {
        /// When.
        at: DateTime<Utc>,
    },
}

impl Event {
    /// The stored type name: the variant's name.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::DeviceEnrolled(_) => "DeviceEnrolled",
            Event::DeviceRevoked { .. } => "DeviceRevoked",
        }
    }

    /// The version of the data's schema.
    pub fn schema_version(&self) -> u32 {
        SCHEMA_VERSION
    }

    /// The variant's fields as a JSON object.
    pub fn data(&self) -> Value {
        codec::data_of(self)
    }

    /// Rebuilds an event from its stored type, schema version and data.
    pub fn from_stored(
        event_type: &str,
        schema_version: u32,
        data: &Value,
    ) -> Result<Event, EventDecodeError> {
        codec::decode(EVENT_TYPES, event_type, schema_version, data)
    }

    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Event::DeviceEnrolled(enrolled) => enrolled.enrolled_at,
            Event::DeviceRevoked { at } => *at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap()
    }

    fn every_variant() -> Vec<Event> {
        vec![
            Event::DeviceEnrolled(DeviceEnrolled {
                id: Uuid::from_u128(1),
                client_id: Uuid::from_u128(2),
                uid: UserId::parse("USER_ID").unwrap(),
                kind: DeviceKind::Push,
                name: "Anna's iPhone".into(),
                public_key: Some("MFkw".into()),
                secret: None,
                suite: None,
                token_hash: "ab".repeat(32),
                enrolled_at: at(),
            }),
            Event::DeviceEnrolled(DeviceEnrolled {
                id: Uuid::from_u128(5),
                client_id: Uuid::from_u128(2),
                uid: UserId::parse("USER_ID").unwrap(),
                kind: DeviceKind::Ocra,
                name: "Card reader".into(),
                public_key: None,
                secret: Some("v1.sealed".into()),
                suite: Some("OCRA-1:HOTP-SHA256-8:QN08-T1M".into()),
                token_hash: "cd".repeat(32),
                enrolled_at: at(),
            }),
            Event::DeviceRevoked { at: at() },
        ]
    }

    #[test]
    fn every_variant_round_trips_through_its_stored_form() {
        for event in every_variant() {
            let data = event.data();
            let back = Event::from_stored(event.event_type(), event.schema_version(), &data);
            assert_eq!(back.unwrap(), event);
        }
        let mut types: Vec<_> = every_variant().iter().map(Event::event_type).collect();
        types.dedup();
        assert_eq!(types, EVENT_TYPES);
    }

    #[test]
    fn data_holds_the_variants_fields_by_name() {
        assert_eq!(
            Event::DeviceRevoked { at: at() }.data(),
            json!({"at": "2025-03-04T05:06:07Z"})
        );
        let enrolled = every_variant()[0].data();
        assert_eq!(enrolled["kind"], "push");
        assert_eq!(enrolled["name"], "Anna's iPhone");
        assert!(enrolled.get("secret").is_none() && enrolled.get("suite").is_none());
        assert_eq!(every_variant()[1].data()["kind"], "ocra");
    }

    #[test]
    fn unknown_types_and_other_schema_versions_are_refused() {
        let data = json!({"at": "2025-03-04T05:06:07Z"});
        assert!(matches!(
            Event::from_stored("Created", 1, &data),
            Err(EventDecodeError::UnknownType(_))
        ));
        assert!(matches!(
            Event::from_stored("DeviceRevoked", 9, &data),
            Err(EventDecodeError::UnsupportedSchemaVersion { .. })
        ));
        assert!(matches!(
            Event::from_stored("DeviceEnrolled", 1, &data),
            Err(EventDecodeError::InvalidData { .. })
        ));
    }
}
