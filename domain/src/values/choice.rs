//! Closed choices and bounded numbers from a request: the method, which devices to address,
//! the time to live, and why a request was rejected.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::ValueError;

string_enum! {
    /// How the user is asked to approve: a push to an authenticator app, an offline OCRA code,
    /// or a one-time code sent by SMS, e-mail or voice call.
    pub enum Method as "method" {
        /// A signed approval from an enrolled authenticator app.
        Push => "push",
        /// An OCRA (RFC 6287) response code from a card reader or code generator.
        Ocra => "ocra",
        /// A one-time code sent by text message.
        Sms => "sms",
        /// A one-time code sent by e-mail.
        Email => "email",
        /// A one-time code read out by a voice call.
        Voice => "voice",
    }
}

string_enum! {
    /// Which of the user's active devices a push is addressed to.
    #[derive(Default)]
    pub enum DeviceSelection as "devices" {
        /// The most recently used active device.
        One => "one",
        /// Every active device.
        #[default]
        All => "all",
    }
}

string_enum! {
    /// Why a request ended `REJECTED`.
    pub enum RejectReason as "reason" {
        /// The user declined on a device.
        DeclinedByUser => "declined_by_user",
        /// The relying party cancelled the request.
        CancelledByClient => "cancelled_by_client",
        /// Too many wrong signatures or codes were submitted.
        TooManyAttempts => "too_many_attempts",
    }
}

/// How long a request stays `PENDING`, in seconds: 30 to 900, 180 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct TtlSeconds(u32);

impl TtlSeconds {
    /// The shortest time to live accepted.
    pub const MIN: u32 = 30;
    /// The longest time to live accepted.
    pub const MAX: u32 = 900;
    /// The time to live when the request names none.
    pub const DEFAULT: u32 = 180;

    /// Parses a number of seconds, which must lie in `MIN..=MAX`.
    pub fn parse(seconds: u32) -> Result<Self, ValueError> {
        if (Self::MIN..=Self::MAX).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err(ValueError::new(
                "ttl_seconds",
                format!(
                    "must be between {} and {} seconds, got {seconds}",
                    Self::MIN,
                    Self::MAX
                ),
            ))
        }
    }

    /// The number of seconds.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The time to live as a duration.
    pub fn as_duration(self) -> Duration {
        Duration::seconds(i64::from(self.0))
    }
}

impl Default for TtlSeconds {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

impl TryFrom<u32> for TtlSeconds {
    type Error = ValueError;

    fn try_from(seconds: u32) -> Result<Self, Self::Error> {
        Self::parse(seconds)
    }
}

impl From<TtlSeconds> for u32 {
    fn from(ttl: TtlSeconds) -> u32 {
        ttl.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_use_lowercase_names_on_the_wire() {
        for method in Method::ALL {
            let json = serde_json::to_value(method).unwrap();
            assert_eq!(json, serde_json::Value::from(method.as_str()));
            assert_eq!(Method::parse(method.as_str()).unwrap(), *method);
        }
        assert_eq!(Method::Push.to_string(), "push");
        assert_eq!(Method::parse("fax").unwrap_err().field, "method");
        assert!(serde_json::from_str::<Method>("\"Push\"").is_err());
    }

    #[test]
    fn device_selection_defaults_to_all() {
        assert_eq!(DeviceSelection::default(), DeviceSelection::All);
        assert_eq!(
            serde_json::to_string(&DeviceSelection::One).unwrap(),
            "\"one\""
        );
        assert_eq!(DeviceSelection::parse("x").unwrap_err().field, "devices");
    }

    #[test]
    fn reject_reasons_use_snake_case_names() {
        let json = serde_json::to_string(&RejectReason::TooManyAttempts).unwrap();
        assert_eq!(json, "\"too_many_attempts\"");
        let reason: RejectReason = serde_json::from_str("\"cancelled_by_client\"").unwrap();
        assert_eq!(reason, RejectReason::CancelledByClient);
    }

    #[test]
    fn ttl_accepts_thirty_to_nine_hundred_seconds_and_defaults_to_three_minutes() {
        assert_eq!(TtlSeconds::parse(30).unwrap().get(), 30);
        assert_eq!(TtlSeconds::parse(900).unwrap().get(), 900);
        assert_eq!(TtlSeconds::parse(29).unwrap_err().field, "ttl_seconds");
        assert!(TtlSeconds::parse(901).is_err());
        assert_eq!(TtlSeconds::default().get(), 180);
        assert_eq!(TtlSeconds::default().as_duration(), Duration::seconds(180));
    }

    #[test]
    fn ttl_serializes_as_a_number_and_is_checked_when_deserialized() {
        assert_eq!(
            serde_json::to_string(&TtlSeconds::default()).unwrap(),
            "180"
        );
        assert_eq!(serde_json::from_str::<TtlSeconds>("60").unwrap().get(), 60);
        assert!(serde_json::from_str::<TtlSeconds>("5").is_err());
    }
}
