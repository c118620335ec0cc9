//! The facts recorded in an action request's stream, in the past tense.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::state::Status;
use crate::binding::Binding;
use crate::codec::{self, EventDecodeError, SCHEMA_VERSION};
use crate::values::{ActionName, Display, Method, RejectReason, UserId};

/// The `reason` of a [`Event::VerificationFailed`] caused by a bad device signature.
pub const INVALID_SIGNATURE: &str = "invalid_signature";

/// The `reason` of a [`Event::VerificationFailed`] caused by a wrong one-time code.
pub const INVALID_OTP: &str = "invalid_otp";

/// The type names of every action request event.
pub const EVENT_TYPES: &[&str] = &[
    "Created",
    "ChallengeIssued",
    "CodeSent",
    "PushSent",
    "VerificationFailed",
    "Confirmed",
    "Rejected",
    "Expired",
    "TokenConsumed",
];

/// The data of [`Event::Created`]: everything fixed when the request was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// The request's id.
    pub id: Uuid,
    /// The client that made it.
    pub client_id: Uuid,
    /// What is to be approved.
    pub action: ActionName,
    /// Whose approval is asked for.
    pub uid: UserId,
    /// What will be executed.
    pub payload: Value,
    /// What the user is shown.
    pub display: Display,
    /// The dynamic-linking hash.
    pub binding: Binding,
    /// How the user is asked.
    pub method: Method,
    /// The devices addressed.
    pub devices: Vec<Uuid>,
    /// The nonce of the approval message.
    pub nonce: String,
    /// The OCRA challenge, when there is one.
    pub challenge: Option<String>,
    /// How many wrong signatures or codes are allowed.
    pub max_attempts: u8,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops being `PENDING`.
    pub expires_at: DateTime<Utc>,
    /// The client's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
    /// The hash of the creating request body, if any.
    pub request_hash: Option<String>,
    /// Where final statuses are reported, if anywhere.
    pub callback_url: Option<String>,
}

/// Something that happened to an action request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// The request was made and is `PENDING`.
    Created(Box<Created>),
    /// The request's OCRA challenge was issued: a code over it can confirm the request.
    ChallengeIssued {
        /// The challenge (the OCRA question).
        challenge: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A one-time code was sent by SMS, email or voice with the display fields; only its keyed
    /// hash, bound to the binding, is recorded.
    CodeSent {
        /// `sms`, `email` or `voice`.
        channel: Method,
        /// Where it was sent, when the client named it.
        destination: Option<String>,
        /// The keyed hash of the code.
        code_hash: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A push notification to one of the devices the request is addressed to was queued for
    /// the push gateway.
    PushSent {
        /// The device notified.
        device_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// A wrong signature or code was submitted.
    VerificationFailed {
        /// The device that submitted it, if it came from one.
        device_id: Option<Uuid>,
        /// What failed: [`INVALID_SIGNATURE`] or [`INVALID_OTP`].
        reason: String,
        /// How many more attempts are allowed.
        attempts_left: u8,
        /// When.
        at: DateTime<Utc>,
    },
    /// A device approved the request; a consumption token was issued.
    Confirmed {
        /// The approving device; none for a code sent by SMS, email or voice.
        device_id: Option<Uuid>,
        /// The hash of the consumption token.
        token_hash: String,
        /// When the token stops being valid.
        token_expires_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
        /// The time step of the OCRA code that confirmed it, when a timed code did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        otp_step: Option<i64>,
    },
    /// The request was declined, cancelled or locked.
    Rejected {
        /// Why.
        reason: RejectReason,
        /// The declining device, when a user declined.
        device_id: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The request ran out of time.
    Expired {
        /// When.
        at: DateTime<Utc>,
        /// The status it expired from: `PENDING` or `CONFIRMED`.
        from: Status,
    },
    /// The consumption token was spent.
    TokenConsumed {
        /// When.
        at: DateTime<Utc>,
    },
}

impl Event {
    /// The stored type name: the variant's name.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::Created(_) => "Created",
            Event::ChallengeIssued { .. } => "ChallengeIssued",
            Event::CodeSent { .. } => "CodeSent",
            Event::PushSent { .. } => "PushSent",
            Event::VerificationFailed { .. } => "VerificationFailed",
            Event::Confirmed { .. } => "Confirmed",
            Event::Rejected { .. } => "Rejected",
            Event::Expired { .. } => "Expired",
            Event::TokenConsumed { .. } => "TokenConsumed",
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
            Event::Created(created) => created.created_at,
            Event::ChallengeIssued { at, .. }
            | Event::CodeSent { at, .. }
            | Event::PushSent { at, .. }
            | Event::VerificationFailed { at, .. }
            | Event::Confirmed { at, .. }
            | Event::Rejected { at, .. }
            | Event::Expired { at, .. }
            | Event::TokenConsumed { at } => *at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::microseconds(123_456)
    }

    fn created() -> Event {
        let payload = json!({"amount": "1.00", "currency": "EUR"});
        let display = crate::binding::default_display(&payload);
        let action = ActionName::parse("bank:transfers:create").unwrap();
        let uid = UserId::parse("USER_ID").unwrap();
        Event::Created(Box::new(Created {
            id: Uuid::from_u128(1),
            client_id: Uuid::from_u128(2),
            binding: crate::binding::binding(&action, &display, &payload, &uid),
            action,
            uid,
            payload,
            display,
            method: Method::Push,
            devices: vec![Uuid::from_u128(3), Uuid::from_u128(4)],
            nonce: "nonce".into(),
            challenge: Some("12345678".into()),
            max_attempts: 5,
            created_at: at(),
            expires_at: at() + chrono::Duration::seconds(180),
            idempotency_key: Some("key".into()),
            request_hash: None,
            callback_url: Some("https://bank.example/cb".into()),
        }))
    }

    fn every_variant() -> Vec<Event> {
        vec![
            created(),
            Event::ChallengeIssued {
                challenge: "12345678".into(),
                at: at(),
            },
            Event::CodeSent {
                channel: Method::Sms,
                destination: Some("+33612345678".into()),
                code_hash: "cd".repeat(32),
                at: at(),
            },
            Event::PushSent {
                device_id: Uuid::from_u128(3),
                at: at(),
            },
            Event::VerificationFailed {
                device_id: Some(Uuid::from_u128(3)),
                reason: INVALID_SIGNATURE.into(),
                attempts_left: 4,
                at: at(),
            },
            Event::Confirmed {
                device_id: Some(Uuid::from_u128(3)),
                token_hash: "ab".repeat(32),
                token_expires_at: at(),
                at: at(),
                otp_step: Some(28_928_160),
            },
            Event::Rejected {
                reason: RejectReason::CancelledByClient,
                device_id: None,
                at: at(),
            },
            Event::Expired {
                at: at(),
                from: Status::Confirmed,
            },
            Event::TokenConsumed { at: at() },
        ]
    }

    #[test]
    fn every_variant_round_trips_through_its_stored_form() {
        for event in every_variant() {
            let data = event.data();
            assert!(data.is_object(), "{}", event.event_type());
            let back = Event::from_stored(event.event_type(), event.schema_version(), &data);
            assert_eq!(back.unwrap(), event);
        }
    }

    #[test]
    fn every_event_type_is_listed_and_is_the_variant_name() {
        let types: Vec<_> = every_variant().iter().map(Event::event_type).collect();
        assert_eq!(types, EVENT_TYPES);
    }

    #[test]
    fn data_holds_the_variants_fields_by_name() {
        let expired = Event::Expired {
            at: at(),
            from: Status::Pending,
        };
        assert_eq!(
            expired.data(),
            json!({"at": "2025-01-02T03:04:05.123456Z", "from": "PENDING"})
        );
        let created = created().data();
        assert_eq!(created["action"], "bank:transfers:create");
        assert_eq!(created["method"], "push");
        assert_eq!(created["max_attempts"], 5);
    }

    #[test]
    fn a_confirmation_without_an_otp_step_leaves_it_out_and_older_data_still_reads() {
        let mut data = every_variant()[5].data();
        assert_eq!(
            data.as_object_mut().unwrap().remove("otp_step"),
            Some(json!(28_928_160))
        );
        let event = Event::from_stored("Confirmed", 1, &data).unwrap();
        assert!(matches!(event, Event::Confirmed { otp_step: None, .. }));
        assert_eq!(event.data(), data);
    }

    #[test]
    fn unknown_types_other_schema_versions_and_bad_data_are_refused() {
        let data = json!({"at": "2025-01-02T03:04:05Z"});
        assert_eq!(
            Event::from_stored("Teleported", 1, &data),
            Err(EventDecodeError::UnknownType("Teleported".into()))
        );
        assert!(matches!(
            Event::from_stored("TokenConsumed", 2, &data),
            Err(EventDecodeError::UnsupportedSchemaVersion { version: 2, .. })
        ));
        assert!(matches!(
            Event::from_stored("Confirmed", 1, &data),
            Err(EventDecodeError::InvalidData { .. })
        ));
        assert!(Event::from_stored("TokenConsumed", 1, &data).is_ok());
    }
}
