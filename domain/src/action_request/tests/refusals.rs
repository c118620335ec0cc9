//! Every command the aggregate refuses, and why.

use super::*;

fn other_commands() -> Vec<Command> {
    vec![
        confirm(PHONE, sign(PHONE, Decision::Confirm)),
        reject(PHONE, sign(PHONE, Decision::Reject)),
        Command::VerifyCode {
            device_id: None,
            code: "12345678".into(),
            check: super::otp::check(),
        },
        Command::Cancel,
        Command::Expire,
        consume(payload()),
    ]
}

fn expired_from(from: Status, at: DateTime<Utc>) -> Event {
    Event::Expired { at, from }
}

#[test]
fn creating_an_existing_request_is_refused() {
    given(&[created()])
        .when(Command::Create(create()))
        .then_err(DomainError::AlreadyExists);
}

#[test]
fn any_other_command_on_an_empty_stream_is_not_found() {
    for command in other_commands() {
        given(&[]).when(command).then_err(DomainError::NotFound);
    }
}

#[test]
fn a_payload_that_is_not_an_object_is_refused() {
    for payload in [json!([1, 2]), json!("text"), json!(3), Value::Null] {
        let mut command = create();
        command.payload = payload;
        given(&[])
            .when(Command::Create(command))
            .then_err(DomainError::InvalidPayload);
    }
}

#[test]
fn a_push_without_devices_is_refused() {
    let mut command = create();
    command.devices.clear();
    given(&[])
        .when(Command::Create(command))
        .then_err(DomainError::NoActiveDevice);
}

#[test]
fn a_sent_code_method_needs_the_hash_of_its_code() {
    for method in [Method::Sms, Method::Email, Method::Voice] {
        let mut command = create();
        command.method = method;
        given(&[])
            .when(Command::Create(command))
            .then_err(DomainError::MissingChallenge);
    }
}

#[test]
fn decisions_on_a_request_that_is_no_longer_pending_are_refused() {
    let histories = [
        vec![created(), confirmed(secs(5))],
        vec![
            created(),
            rejected(RejectReason::CancelledByClient, None, secs(5)),
        ],
        vec![created(), expired_from(Status::Pending, secs(180))],
    ];
    for history in histories {
        given(&history)
            .when(confirm(PHONE, sign(PHONE, Decision::Confirm)))
            .then_err(DomainError::NotPending);
        given(&history)
            .when(reject(PHONE, sign(PHONE, Decision::Reject)))
            .then_err(DomainError::NotPending);
        given(&history)
            .when(Command::Cancel)
            .then_err(DomainError::NotPending);
    }
}

#[test]
fn decisions_after_the_expiry_time_are_refused_before_the_expired_event() {
    given(&[created()])
        .at(secs(180))
        .when(confirm(PHONE, sign(PHONE, Decision::Confirm)))
        .then_err(DomainError::NotPending);
    given(&[created()])
        .at(secs(181))
        .when(reject(PHONE, sign(PHONE, Decision::Reject)))
        .then_err(DomainError::NotPending);
    given(&[created()])
        .at(secs(180))
        .when(Command::Cancel)
        .then_err(DomainError::NotPending);
}

#[test]
fn a_device_the_request_was_not_addressed_to_is_refused() {
    given(&[created()])
        .when(confirm(STRANGER, sign(STRANGER, Decision::Confirm)))
        .then_err(DomainError::DeviceNotAddressed);
    given(&[created()])
        .when(reject(STRANGER, vec![0; 64]))
        .then_err(DomainError::DeviceNotAddressed);
}

#[test]
fn expiring_before_time_is_up_is_refused() {
    given(&[created()])
        .at(secs(179))
        .when(Command::Expire)
        .then_err(DomainError::NotExpirable);
    given(&[created(), confirmed(secs(10))])
        .at(secs(69))
        .when(Command::Expire)
        .then_err(DomainError::NotExpirable);
}

#[test]
fn expiring_a_finished_request_is_refused() {
    let histories = [
        vec![
            created(),
            confirmed(secs(5)),
            Event::TokenConsumed { at: secs(6) },
        ],
        vec![
            created(),
            rejected(RejectReason::DeclinedByUser, Some(PHONE), secs(5)),
        ],
        vec![created(), expired_from(Status::Pending, secs(180))],
    ];
    for history in histories {
        given(&history)
            .at(secs(10_000))
            .when(Command::Expire)
            .then_err(DomainError::NotExpirable);
    }
}

#[test]
fn a_consumed_token_cannot_be_consumed_again() {
    given(&[
        created(),
        confirmed(secs(10)),
        Event::TokenConsumed { at: secs(20) },
    ])
    .at(secs(30))
    .when(consume(payload()))
    .then_err(DomainError::TokenAlreadyConsumed);
}

#[test]
fn a_lapsed_token_is_expired_with_or_without_the_expired_event() {
    given(&[created(), confirmed(secs(10))])
        .at(secs(70))
        .when(consume(payload()))
        .then_err(DomainError::TokenExpired);
    given(&[
        created(),
        confirmed(secs(10)),
        expired_from(Status::Confirmed, secs(70)),
    ])
    .at(secs(71))
    .when(consume(payload()))
    .then_err(DomainError::TokenExpired);
}

#[test]
fn a_request_that_was_never_confirmed_has_no_valid_token() {
    let histories = [
        vec![created()],
        vec![
            created(),
            rejected(RejectReason::DeclinedByUser, Some(PHONE), secs(5)),
        ],
        vec![created(), expired_from(Status::Pending, secs(180))],
    ];
    for history in histories {
        given(&history)
            .at(secs(200))
            .when(consume(payload()))
            .then_err(DomainError::InvalidToken);
    }
}

#[test]
fn a_token_used_for_another_action_or_payload_is_a_binding_mismatch_and_stays_usable() {
    let history = [created(), confirmed(secs(10))];
    let other_action = Command::ConsumeToken {
        action: ActionName::parse("bank:transfers:delete").unwrap(),
        payload: payload(),
    };
    given(&history)
        .at(secs(20))
        .when(other_action)
        .then_err(DomainError::BindingMismatch);
    let mut other_payload = payload();
    other_payload["amount"] = json!("234.01");
    given(&history)
        .at(secs(20))
        .when(consume(other_payload))
        .then_err(DomainError::BindingMismatch);
    given(&history)
        .at(secs(21))
        .when(consume(payload()))
        .then(&[Event::TokenConsumed { at: secs(21) }]);
}
