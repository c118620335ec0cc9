//! Given / when / then tests of the action request aggregate, with shared fixtures.

mod otp;
mod properties;
mod refusals;
mod transitions;

use chrono::{DateTime, Duration, TimeZone, Utc};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::values::{Display, TtlSeconds, UserId};

const TOKEN_KEY: &[u8] = b"test token key";
const NONCE: &str = "test-nonce";
const REQUEST: Uuid = Uuid::from_u128(0x0193_a5b0_7c1e_7d4a_9f00_0000_0000_0001);
const CLIENT: Uuid = Uuid::from_u128(0xc1);
const PHONE: Uuid = Uuid::from_u128(0xd1);
const TABLET: Uuid = Uuid::from_u128(0xd2);
const STRANGER: Uuid = Uuid::from_u128(0xd3);

/// The time `seconds` after the request was created.
fn secs(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn payload() -> Value {
    json!({"amount": "234.00", "currency": "EUR", "bankTransferRecipientId": "R1", "uid": "USER_ID"})
}

fn action() -> ActionName {
    ActionName::parse("bank:transfers:create").unwrap()
}

fn create() -> Create {
    Create {
        id: REQUEST,
        client_id: CLIENT,
        action: action(),
        uid: UserId::parse("USER_ID").unwrap(),
        payload: payload(),
        display: None,
        method: Method::Push,
        devices: vec![PHONE, TABLET],
        challenge: None,
        notify: Vec::new(),
        code_hash: None,
        destination: None,
        ttl: TtlSeconds::default(),
        nonce: NONCE.into(),
        idempotency_key: None,
        request_hash: None,
        callback_url: None,
    }
}

/// The `Created` event of the standard request, made at `secs(0)` and expiring at `secs(180)`.
fn created() -> Event {
    let create = create();
    let display = default_display(&create.payload);
    Event::Created(Box::new(Created {
        id: REQUEST,
        client_id: CLIENT,
        binding: binding(&create.action, &display, &create.payload, &create.uid),
        action: create.action,
        uid: create.uid,
        payload: create.payload,
        display,
        method: Method::Push,
        devices: vec![PHONE, TABLET],
        nonce: NONCE.into(),
        challenge: None,
        max_attempts: 5,
        created_at: secs(0),
        expires_at: secs(180),
        idempotency_key: None,
        request_hash: None,
        callback_url: None,
    }))
}

fn signing_key(device: Uuid) -> SigningKey {
    let seed = u8::try_from(device.as_u128() & 0xff).unwrap();
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn public_key(device: Uuid) -> PublicKey {
    PublicKey::from_verifying_key(signing_key(device).verifying_key())
}

/// `device`'s raw signature of the standard request's approval message for `decision`.
fn sign(device: Uuid, decision: Decision) -> Vec<u8> {
    let Event::Created(created) = created() else {
        unreachable!("created() makes a Created event")
    };
    let message = approval_message(REQUEST, decision, &created.binding, NONCE);
    let signature: Signature = signing_key(device).sign(message.as_bytes());
    signature.to_bytes().to_vec()
}

fn confirm(device: Uuid, signature: Vec<u8>) -> Command {
    Command::Confirm {
        device_id: device,
        public_key: public_key(device),
        signature,
    }
}

fn reject(device: Uuid, signature: Vec<u8>) -> Command {
    Command::Reject {
        device_id: device,
        public_key: public_key(device),
        signature,
    }
}

fn consume(payload: Value) -> Command {
    Command::ConsumeToken {
        action: action(),
        payload,
    }
}

/// The event of `PHONE` confirming at `at`.
fn confirmed(at: DateTime<Utc>) -> Event {
    Event::Confirmed {
        device_id: Some(PHONE),
        token_hash: hash_secret(&derive_token(TOKEN_KEY, REQUEST)),
        token_expires_at: at + Duration::seconds(60),
        at,
        otp_step: None,
    }
}

fn failed(attempts_left: u8, at: DateTime<Utc>) -> Event {
    Event::VerificationFailed {
        device_id: Some(PHONE),
        reason: INVALID_SIGNATURE.into(),
        attempts_left,
        at,
    }
}

fn rejected(reason: RejectReason, device_id: Option<Uuid>, at: DateTime<Utc>) -> Event {
    Event::Rejected {
        reason,
        device_id,
        at,
    }
}

/// The history a command is decided against.
struct Given {
    events: Vec<Event>,
    now: DateTime<Utc>,
}

/// The outcome of a decision.
struct When {
    result: Result<Vec<Event>, DomainError>,
}

fn given(events: &[Event]) -> Given {
    Given {
        events: events.to_vec(),
        now: secs(10),
    }
}

impl Given {
    /// Decides at `now` instead of ten seconds after creation.
    fn at(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self
    }

    fn when(self, command: Command) -> When {
        let state = replay(&self.events);
        When {
            result: decide(state.as_ref(), command, &Context::new(self.now, TOKEN_KEY)),
        }
    }
}

impl When {
    fn then(self, expected: &[Event]) {
        assert_eq!(self.result, Ok(expected.to_vec()));
    }

    fn then_err(self, expected: DomainError) {
        assert_eq!(self.result, Err(expected));
    }
}

#[test]
fn the_fixture_display_is_the_payloads_scalar_fields() {
    let Event::Created(created) = created() else {
        unreachable!("created() makes a Created event")
    };
    let expected = Display::parse(json!({
        "amount": "234.00", "currency": "EUR", "bankTransferRecipientId": "R1", "uid": "USER_ID"
    }));
    assert_eq!(Ok(created.display), expected);
}
