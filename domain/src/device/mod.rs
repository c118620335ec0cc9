//! The device aggregate (stream `device-<id>`): an authenticator a user enrolled, until it is
//! revoked.

mod command;
mod error;
mod event;
mod state;

pub use command::{Command, Context, Enrol};
pub use error::DeviceError;
pub use event::{DeviceEnrolled, Event, EVENT_TYPES};
pub use state::{evolve, replay, Device, DeviceKind, DeviceStatus};

use uuid::Uuid;

use crate::codes::OcraSuite;

/// The prefix of a device's stream id.
pub const STREAM_PREFIX: &str = "device-";

/// The longest device name, in characters, once trimmed.
pub const MAX_NAME_CHARS: usize = 100;

/// The stream holding the events of device `id`.
pub fn stream_id(id: Uuid) -> String {
    format!("{STREAM_PREFIX}{}", id.hyphenated())
}

/// Decides what happens when `command` meets `state` (`None`: the stream is empty).
pub fn decide(
    state: Option<&Device>,
    command: Command,
    ctx: &Context,
) -> Result<Vec<Event>, DeviceError> {
    match (state, command) {
        (Some(_), Command::Enrol(_)) => Err(DeviceError::AlreadyExists),
        (None, Command::Enrol(enrol)) => enrol_device(enrol, ctx),
        (None, Command::Revoke) => Err(DeviceError::NotFound),
        (Some(device), Command::Revoke) if !device.is_active() => Err(DeviceError::AlreadyRevoked),
        (Some(_), Command::Revoke) => Ok(vec![Event::DeviceRevoked { at: ctx.now }]),
    }
}

fn enrol_device(enrol: Enrol, ctx: &Context) -> Result<Vec<Event>, DeviceError> {
    let name = enrol.name.trim();
    let name_chars = name.chars().count();
    if name_chars == 0 || name_chars > MAX_NAME_CHARS {
        return Err(DeviceError::InvalidName);
    }
    let (public_key, secret, suite) = match enrol.kind {
        DeviceKind::Push => {
            let key = enrol.public_key.ok_or(DeviceError::MissingPublicKey)?;
            (Some(key.as_str().to_owned()), None, None)
        }
        DeviceKind::Ocra => {
            let (Some(secret), Some(suite)) = (enrol.secret, enrol.suite) else {
                return Err(DeviceError::MissingSecret);
            };
            OcraSuite::parse(&suite).map_err(|_| DeviceError::InvalidSuite)?;
            (None, Some(secret), Some(suite))
        }
    };
    Ok(vec![Event::DeviceEnrolled(DeviceEnrolled {
        id: enrol.id,
        client_id: enrol.client_id,
        uid: enrol.uid,
        kind: enrol.kind,
        name: name.to_owned(),
        public_key,
        secret,
        suite,
        token_hash: enrol.token_hash,
        enrolled_at: ctx.now,
    })])
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use p256::ecdsa::SigningKey;

    use super::*;
    use crate::token::hash_secret;
    use crate::values::{PublicKey, UserId};

    const DEVICE: Uuid = Uuid::from_u128(0xd1);
    const CLIENT: Uuid = Uuid::from_u128(0xc1);

    fn secs(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    fn public_key() -> PublicKey {
        PublicKey::from_verifying_key(SigningKey::from_slice(&[9; 32]).unwrap().verifying_key())
    }

    fn enrol(name: &str) -> Enrol {
        Enrol {
            id: DEVICE,
            client_id: CLIENT,
            uid: UserId::parse("USER_ID").unwrap(),
            kind: DeviceKind::Push,
            name: name.into(),
            public_key: Some(public_key()),
            secret: None,
            suite: None,
            token_hash: hash_secret("device token"),
        }
    }

    const SUITE: &str = "OCRA-1:HOTP-SHA256-8:QN08-T1M";

    fn enrol_reader() -> Enrol {
        Enrol {
            kind: DeviceKind::Ocra,
            name: "Card reader".into(),
            public_key: None,
            secret: Some("sealed secret".into()),
            suite: Some(SUITE.into()),
            ..enrol("unused")
        }
    }

    fn enrolled() -> Event {
        Event::DeviceEnrolled(DeviceEnrolled {
            id: DEVICE,
            client_id: CLIENT,
            uid: UserId::parse("USER_ID").unwrap(),
            kind: DeviceKind::Push,
            name: "Anna's iPhone".into(),
            public_key: Some(public_key().as_str().to_owned()),
            secret: None,
            suite: None,
            token_hash: hash_secret("device token"),
            enrolled_at: secs(0),
        })
    }

    fn when(
        given: &[Event],
        command: Command,
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>, DeviceError> {
        decide(replay(given).as_ref(), command, &Context { now })
    }

    #[test]
    fn enrolling_a_push_device_records_its_trimmed_name_and_key() {
        let events = when(&[], Command::Enrol(enrol("  Anna's iPhone\n")), secs(0));
        assert_eq!(events, Ok(vec![enrolled()]));
    }

    #[test]
    fn an_enrolled_device_is_active_with_its_key() {
        let device = replay(&[enrolled()]).unwrap();
        assert!(device.is_active());
        assert_eq!(device.public_key, Some(public_key()));
        assert_eq!(
            (device.enrolled_at, device.revoked_at, device.version),
            (secs(0), None, 1)
        );
    }

    #[test]
    fn revoking_an_active_device_records_when() {
        let events = when(&[enrolled()], Command::Revoke, secs(60));
        assert_eq!(events, Ok(vec![Event::DeviceRevoked { at: secs(60) }]));
        let device = replay(&[enrolled(), Event::DeviceRevoked { at: secs(60) }]).unwrap();
        assert_eq!(device.status, DeviceStatus::Revoked);
        assert_eq!((device.revoked_at, device.version), (Some(secs(60)), 2));
        assert!(!device.is_active());
    }

    #[test]
    fn enrolling_an_existing_device_is_refused() {
        let result = when(&[enrolled()], Command::Enrol(enrol("Other")), secs(1));
        assert_eq!(result, Err(DeviceError::AlreadyExists));
    }

    #[test]
    fn revoking_an_unknown_device_is_not_found() {
        assert_eq!(
            when(&[], Command::Revoke, secs(1)),
            Err(DeviceError::NotFound)
        );
        assert_eq!(evolve(None, &Event::DeviceRevoked { at: secs(1) }), None);
    }

    #[test]
    fn revoking_twice_is_refused() {
        let history = [enrolled(), Event::DeviceRevoked { at: secs(60) }];
        assert_eq!(
            when(&history, Command::Revoke, secs(61)),
            Err(DeviceError::AlreadyRevoked)
        );
    }

    #[test]
    fn a_push_device_without_a_public_key_is_refused() {
        let mut command = enrol("Anna's iPhone");
        command.public_key = None;
        assert_eq!(
            when(&[], Command::Enrol(command), secs(0)),
            Err(DeviceError::MissingPublicKey)
        );
    }

    #[test]
    fn enrolling_an_ocra_device_records_its_sealed_secret_and_suite_only() {
        let mut command = enrol_reader();
        command.public_key = Some(public_key());
        let events = when(&[], Command::Enrol(command), secs(0)).unwrap();
        let [Event::DeviceEnrolled(enrolled)] = events.as_slice() else {
            panic!("expected one DeviceEnrolled event, got {events:?}")
        };
        assert_eq!(enrolled.kind, DeviceKind::Ocra);
        assert_eq!(enrolled.secret.as_deref(), Some("sealed secret"));
        assert_eq!(enrolled.suite.as_deref(), Some(SUITE));
        assert_eq!(enrolled.public_key, None);
        let device = replay(&events).unwrap();
        assert_eq!(device.secret.as_deref(), Some("sealed secret"));
        assert_eq!(
            (device.suite.as_deref(), device.public_key),
            (Some(SUITE), None)
        );
    }

    #[test]
    fn a_push_device_keeps_no_secret_or_suite() {
        let mut command = enrol("Anna's iPhone");
        command.secret = Some("sealed secret".into());
        command.suite = Some(SUITE.into());
        assert_eq!(
            when(&[], Command::Enrol(command), secs(0)),
            Ok(vec![enrolled()])
        );
    }

    #[test]
    fn an_ocra_device_without_a_secret_or_a_suite_is_refused() {
        for (secret, suite) in [(None, Some(SUITE)), (Some("sealed"), None)] {
            let mut command = enrol_reader();
            command.secret = secret.map(str::to_owned);
            command.suite = suite.map(str::to_owned);
            assert_eq!(
                when(&[], Command::Enrol(command), secs(0)),
                Err(DeviceError::MissingSecret)
            );
        }
    }

    #[test]
    fn an_ocra_device_with_a_malformed_suite_is_refused() {
        let mut command = enrol_reader();
        command.suite = Some("OCRA-1:HOTP-MD5-8:QN08".into());
        assert_eq!(
            when(&[], Command::Enrol(command), secs(0)),
            Err(DeviceError::InvalidSuite)
        );
    }

    #[test]
    fn blank_and_overlong_names_are_refused() {
        for name in ["", "   ", &"x".repeat(101)] {
            let result = when(&[], Command::Enrol(enrol(name)), secs(0));
            assert_eq!(result, Err(DeviceError::InvalidName), "{name:?}");
        }
        assert!(when(&[], Command::Enrol(enrol(&"é".repeat(100))), secs(0)).is_ok());
    }

    #[test]
    fn kinds_and_statuses_use_lowercase_names() {
        assert_eq!(serde_json::to_value(DeviceKind::Push).unwrap(), "push");
        assert_eq!(serde_json::to_value(DeviceKind::Ocra).unwrap(), "ocra");
        assert_eq!(
            serde_json::to_value(DeviceStatus::Revoked).unwrap(),
            "revoked"
        );
    }

    #[test]
    fn the_stream_id_names_the_device() {
        assert_eq!(
            stream_id(DEVICE),
            "device-00000000-0000-0000-0000-0000000000d1"
        );
    }
}
