//! The OCRA path: requests with a challenge, and the codes typed in against it.

use super::*;
use crate::codes::{ocra, OcraInput, OcraSuite};

const CHALLENGE: &str = "48213377";
const SUITE: &str = "OCRA-1:HOTP-SHA256-8:QN08-T1M";

fn key() -> Vec<u8> {
    b"12345678901234567890123456789012".to_vec()
}

fn check_with(suite: &str) -> CodeCheck {
    CodeCheck::Ocra {
        suite: OcraSuite::parse(suite).unwrap(),
        key: key(),
    }
}

/// The check of the standard card reader.
pub(super) fn check() -> CodeCheck {
    check_with(SUITE)
}

fn ocra_create() -> Create {
    Create {
        method: Method::Ocra,
        challenge: Some(CHALLENGE.into()),
        ..create()
    }
}

/// The standard request made with `method` and the challenge: `Created`, `ChallengeIssued`.
fn with_challenge(method: Method) -> [Event; 2] {
    let Event::Created(mut created) = created() else {
        unreachable!("created() makes a Created event")
    };
    created.method = method;
    created.challenge = Some(CHALLENGE.into());
    let issued = Event::ChallengeIssued {
        challenge: CHALLENGE.into(),
        at: secs(0),
    };
    [Event::Created(created), issued]
}

/// The minute `at` falls in: the OCRA time step.
fn step(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap() / 60
}

/// The reader's response to the challenge in time step `step`.
pub(super) fn code_at(step: u64) -> String {
    let input = OcraInput {
        question: CHALLENGE,
        timestamp: Some(step),
        ..OcraInput::default()
    };
    ocra(&OcraSuite::parse(SUITE).unwrap(), &key(), &input).unwrap()
}

fn verify(device_id: Option<Uuid>, code: String) -> Command {
    Command::VerifyCode {
        device_id,
        code,
        check: check(),
    }
}

fn confirmed_by_code(device_id: Uuid, step: Option<u64>, at: DateTime<Utc>) -> Event {
    Event::Confirmed {
        device_id: Some(device_id),
        token_hash: hash_secret(&derive_token(TOKEN_KEY, REQUEST)),
        token_expires_at: at + Duration::seconds(60),
        at,
        otp_step: step.map(|s| i64::try_from(s).unwrap()),
    }
}

fn wrong_code(device_id: Option<Uuid>, attempts_left: u8, at: DateTime<Utc>) -> Event {
    Event::VerificationFailed {
        device_id,
        reason: INVALID_OTP.into(),
        attempts_left,
        at,
    }
}

#[test]
fn creating_an_ocra_request_records_its_challenge_then_issues_it() {
    given(&[])
        .at(secs(0))
        .when(Command::Create(ocra_create()))
        .then(&with_challenge(Method::Ocra));
}

#[test]
fn a_push_with_a_challenge_opens_the_ocra_fallback() {
    let command = Create {
        challenge: Some(CHALLENGE.into()),
        ..create()
    };
    given(&[])
        .at(secs(0))
        .when(Command::Create(command))
        .then(&with_challenge(Method::Push));
    let now = step(secs(10));
    given(&with_challenge(Method::Push))
        .when(verify(None, code_at(now)))
        .then(&[confirmed_by_code(PHONE, Some(now), secs(10))]);
}

#[test]
fn an_ocra_request_without_a_challenge_or_devices_is_refused() {
    for challenge in [None, Some(String::new())] {
        let command = Create {
            challenge,
            ..ocra_create()
        };
        given(&[])
            .when(Command::Create(command))
            .then_err(DomainError::MissingChallenge);
    }
    let empty_fallback = Create {
        challenge: Some(String::new()),
        ..create()
    };
    given(&[])
        .when(Command::Create(empty_fallback))
        .then_err(DomainError::MissingChallenge);
    let mut no_devices = ocra_create();
    no_devices.devices.clear();
    given(&[])
        .when(Command::Create(no_devices))
        .then_err(DomainError::NoActiveDevice);
}

#[test]
fn the_code_of_the_current_minute_confirms_for_the_first_device() {
    let now = step(secs(10));
    given(&with_challenge(Method::Ocra))
        .when(verify(None, code_at(now)))
        .then(&[confirmed_by_code(PHONE, Some(now), secs(10))]);
}

#[test]
fn a_code_from_the_minute_before_or_after_is_accepted_and_its_step_recorded() {
    let now = step(secs(10));
    for other in [now - 1, now + 1] {
        given(&with_challenge(Method::Ocra))
            .when(verify(Some(TABLET), code_at(other)))
            .then(&[confirmed_by_code(TABLET, Some(other), secs(10))]);
    }
}

#[test]
fn a_code_two_minutes_away_or_for_another_challenge_is_a_wrong_code() {
    let now = step(secs(10));
    for code in [
        code_at(now - 2),
        code_at(now + 2),
        "00000000".into(),
        "".into(),
    ] {
        given(&with_challenge(Method::Ocra))
            .when(verify(None, code))
            .then(&[wrong_code(None, 4, secs(10))]);
    }
    let mut other_challenge = with_challenge(Method::Ocra);
    other_challenge[1] = Event::ChallengeIssued {
        challenge: "11111111".into(),
        at: secs(1),
    };
    given(&other_challenge)
        .when(verify(Some(PHONE), code_at(now)))
        .then(&[wrong_code(Some(PHONE), 4, secs(10))]);
}

#[test]
fn the_last_wrong_code_rejects_for_too_many_attempts() {
    let [created, issued] = with_challenge(Method::Ocra);
    let mut history = vec![created, issued];
    history.extend((1..=4).map(|i| wrong_code(None, 5 - i, secs(i64::from(i)))));
    given(&history)
        .when(verify(Some(TABLET), "12345678".into()))
        .then(&[
            wrong_code(Some(TABLET), 0, secs(10)),
            rejected(RejectReason::TooManyAttempts, None, secs(10)),
        ]);
}

#[test]
fn a_suite_without_a_time_step_checks_the_code_alone() {
    let untimed = "OCRA-1:HOTP-SHA256-8:QN08";
    let input = OcraInput {
        question: CHALLENGE,
        ..OcraInput::default()
    };
    let code = ocra(&OcraSuite::parse(untimed).unwrap(), &key(), &input).unwrap();
    given(&with_challenge(Method::Ocra))
        .when(Command::VerifyCode {
            device_id: None,
            code,
            check: check_with(untimed),
        })
        .then(&[confirmed_by_code(PHONE, None, secs(10))]);
}

#[test]
fn a_suite_the_server_cannot_answer_with_is_refused() {
    for suite in [
        "OCRA-1:HOTP-SHA256-8:C-QN08",
        "OCRA-1:HOTP-SHA1-6:QN08-PSHA1",
    ] {
        given(&with_challenge(Method::Ocra))
            .when(Command::VerifyCode {
                device_id: None,
                code: "12345678".into(),
                check: check_with(suite),
            })
            .then_err(DomainError::UnsupportedSuite);
    }
}

#[test]
fn a_code_for_a_request_without_a_challenge_is_refused() {
    given(&[created()])
        .when(verify(None, code_at(step(secs(10)))))
        .then_err(DomainError::NoCode);
}

#[test]
fn a_code_from_a_device_the_request_was_not_addressed_to_is_refused() {
    given(&with_challenge(Method::Ocra))
        .when(verify(Some(STRANGER), code_at(step(secs(10)))))
        .then_err(DomainError::DeviceNotAddressed);
}

#[test]
fn a_code_for_a_request_that_is_no_longer_pending_is_refused() {
    let [created, issued] = with_challenge(Method::Ocra);
    let ended = [
        confirmed_by_code(PHONE, Some(step(secs(5))), secs(5)),
        rejected(RejectReason::CancelledByClient, None, secs(5)),
        Event::Expired {
            at: secs(180),
            from: Status::Pending,
        },
    ];
    for end in ended {
        given(&[created.clone(), issued.clone(), end])
            .at(secs(200))
            .when(verify(None, code_at(step(secs(200)))))
            .then_err(DomainError::NotPending);
    }
    given(&[created, issued])
        .at(secs(180))
        .when(verify(None, code_at(step(secs(180)))))
        .then_err(DomainError::NotPending);
}

#[test]
fn a_request_confirmed_by_code_issues_a_token_that_can_be_consumed() {
    let now = step(secs(10));
    let [created, issued] = with_challenge(Method::Ocra);
    let history = [
        created,
        issued,
        confirmed_by_code(PHONE, Some(now), secs(10)),
    ];
    let state = replay(&history).unwrap();
    assert_eq!(
        (state.status, state.decided_by),
        (Status::Confirmed, Some(PHONE))
    );
    given(&history)
        .at(secs(20))
        .when(consume(payload()))
        .then(&[Event::TokenConsumed { at: secs(20) }]);
}

#[test]
fn the_issued_challenge_is_part_of_the_state_and_counts_as_a_version() {
    let [created, issued] = with_challenge(Method::Ocra);
    let state = evolve(None, &created).unwrap();
    assert_eq!(state.version, 1);
    let Event::Created(mut plain) = created else {
        unreachable!("with_challenge() starts with a Created event")
    };
    plain.challenge = None;
    let without = evolve(None, &Event::Created(plain)).unwrap();
    let state = evolve(Some(without), &issued).unwrap();
    assert_eq!(state.challenge.as_deref(), Some(CHALLENGE));
    assert_eq!((state.version, state.updated_at), (2, secs(0)));
}

#[test]
fn a_code_check_never_shows_its_key() {
    let shown = format!("{:?}", check());
    assert!(shown.contains(SUITE), "{shown}");
    assert!(!shown.contains("49, 50"), "{shown}");
    assert!(!shown.contains("1234567890"), "{shown}");
}

/// The standard request sent by SMS to no device, with the hash of `code`.
fn sms_request(code: &str) -> Vec<Event> {
    let mut command = create();
    command.method = Method::Sms;
    command.devices = Vec::new();
    command.destination = Some("+33612345678".into());
    let binding = match &created() {
        Event::Created(c) => c.binding.clone(),
        _ => unreachable!(),
    };
    command.code_hash = Some(crate::codes::code_hash(SENT_KEY, code, &binding));
    decide(None, Command::Create(command), &ctx_at(secs(0))).unwrap()
}

const SENT_KEY: &[u8] = b"sent code key";

fn ctx_at(now: DateTime<Utc>) -> Context<'static> {
    Context::new(now, TOKEN_KEY)
}

fn sent_check() -> CodeCheck {
    CodeCheck::Sent {
        key: SENT_KEY.to_vec(),
    }
}

#[test]
fn a_code_sent_by_sms_is_recorded_only_as_its_hash_and_confirms_without_a_device() {
    let events = sms_request("12345678");
    assert!(matches!(
        &events[1],
        Event::CodeSent { channel: Method::Sms, destination: Some(_), code_hash, .. } if !code_hash.contains("12345678")
    ));
    let state = replay(events.iter()).unwrap();
    let command = Command::VerifyCode {
        device_id: None,
        code: "12345678".into(),
        check: sent_check(),
    };
    let decided = decide(Some(&state), command, &ctx_at(secs(10))).unwrap();
    assert!(matches!(
        decided[..],
        [Event::Confirmed {
            device_id: None,
            ..
        }]
    ));
}

#[test]
fn a_wrong_sent_code_costs_an_attempt_and_a_sent_code_is_no_ocra_code() {
    let events = sms_request("12345678");
    let state = replay(events.iter()).unwrap();
    let wrong = Command::VerifyCode {
        device_id: None,
        code: "87654321".into(),
        check: sent_check(),
    };
    let decided = decide(Some(&state), wrong, &ctx_at(secs(10))).unwrap();
    assert!(matches!(
        decided[..],
        [Event::VerificationFailed {
            attempts_left: 4,
            ..
        }]
    ));
    let as_ocra = Command::VerifyCode {
        device_id: None,
        code: "12345678".into(),
        check: check(),
    };
    assert_eq!(
        decide(Some(&state), as_ocra, &ctx_at(secs(10))),
        Err(DomainError::NoCode)
    );
}
