//! Every transition the aggregate allows, and what its events do to the state.

use super::*;

#[test]
fn creating_a_push_request_records_its_binding_display_and_expiry() {
    given(&[])
        .at(secs(0))
        .when(Command::Create(create()))
        .then(&[created()]);
}

#[test]
fn creating_with_an_explicit_display_binds_that_display() {
    let display = Display::parse(json!({"Amount": "234.00 EUR", "Payee": "ACME GmbH"})).unwrap();
    let mut command = create();
    command.display = Some(display.clone());
    command.ttl = TtlSeconds::parse(30).unwrap();
    command.callback_url = Some("https://bank.example/cb".into());
    let events = decide(
        None,
        Command::Create(command.clone()),
        &Context::new(secs(0), TOKEN_KEY),
    );
    let Ok([Event::Created(created)]) = events.as_deref() else {
        panic!("expected one Created event, got {events:?}")
    };
    assert_eq!(created.display, display);
    assert_eq!(
        created.binding,
        binding(&command.action, &display, &command.payload, &command.uid)
    );
    assert_eq!(created.expires_at, secs(30));
    assert_eq!(
        created.callback_url.as_deref(),
        Some("https://bank.example/cb")
    );
}

#[test]
fn the_context_sets_the_number_of_attempts() {
    let mut ctx = Context::new(secs(0), TOKEN_KEY);
    ctx.max_attempts = 3;
    let events = decide(None, Command::Create(create()), &ctx).unwrap();
    assert_eq!(replay(&events).unwrap().attempts_left, 3);
}

#[test]
fn a_good_confirm_signature_confirms_and_issues_a_token() {
    given(&[created()])
        .when(confirm(PHONE, sign(PHONE, Decision::Confirm)))
        .then(&[confirmed(secs(10))]);
}

#[test]
fn a_der_encoded_confirm_signature_is_accepted_too() {
    let raw = sign(PHONE, Decision::Confirm);
    let der = Signature::from_slice(&raw)
        .unwrap()
        .to_der()
        .as_bytes()
        .to_vec();
    given(&[created()])
        .when(confirm(PHONE, der))
        .then(&[confirmed(secs(10))]);
}

#[test]
fn the_token_hash_is_the_hash_of_the_derived_token() {
    let state = replay(&[created(), confirmed(secs(10))]).unwrap();
    let token = derive_token(TOKEN_KEY, REQUEST);
    assert!(crate::token::secret_matches(
        &token,
        state.token_hash.as_deref().unwrap()
    ));
}

#[test]
fn a_good_reject_signature_declines() {
    given(&[created()])
        .when(reject(TABLET, sign(TABLET, Decision::Reject)))
        .then(&[rejected(
            RejectReason::DeclinedByUser,
            Some(TABLET),
            secs(10),
        )]);
}

#[test]
fn a_bad_signature_costs_one_attempt() {
    given(&[created()])
        .when(confirm(PHONE, vec![0; 64]))
        .then(&[failed(4, secs(10))]);
}

#[test]
fn a_signature_for_the_other_decision_is_a_bad_signature() {
    given(&[created()])
        .when(confirm(PHONE, sign(PHONE, Decision::Reject)))
        .then(&[failed(4, secs(10))]);
    given(&[created(), failed(4, secs(5))])
        .when(reject(PHONE, sign(PHONE, Decision::Confirm)))
        .then(&[failed(3, secs(10))]);
}

#[test]
fn a_signature_by_another_devices_key_is_a_bad_signature() {
    given(&[created()])
        .when(confirm(PHONE, sign(TABLET, Decision::Confirm)))
        .then(&[failed(4, secs(10))]);
}

#[test]
fn the_last_bad_signature_rejects_for_too_many_attempts() {
    let history = [
        created(),
        failed(4, secs(1)),
        failed(3, secs(2)),
        failed(2, secs(3)),
        failed(1, secs(4)),
    ];
    given(&history)
        .when(reject(PHONE, b"garbage".to_vec()))
        .then(&[
            failed(0, secs(10)),
            rejected(RejectReason::TooManyAttempts, None, secs(10)),
        ]);
}

#[test]
fn cancelling_a_pending_request_rejects_it() {
    given(&[created()]).when(Command::Cancel).then(&[rejected(
        RejectReason::CancelledByClient,
        None,
        secs(10),
    )]);
}

#[test]
fn a_pending_request_expires_once_its_time_is_up() {
    given(&[created()])
        .at(secs(180))
        .when(Command::Expire)
        .then(&[Event::Expired {
            at: secs(180),
            from: Status::Pending,
        }]);
}

#[test]
fn a_confirmed_request_expires_once_its_token_lapses() {
    given(&[created(), confirmed(secs(10))])
        .at(secs(70))
        .when(Command::Expire)
        .then(&[Event::Expired {
            at: secs(70),
            from: Status::Confirmed,
        }]);
}

#[test]
fn the_token_is_consumed_with_the_same_action_and_payload_in_any_key_order() {
    let reordered: Value = serde_json::from_str(
        r#"{"uid": "USER_ID", "bankTransferRecipientId": "R1", "currency": "EUR", "amount": "234.00"}"#,
    )
    .unwrap();
    given(&[created(), confirmed(secs(10))])
        .at(secs(20))
        .when(consume(reordered))
        .then(&[Event::TokenConsumed { at: secs(20) }]);
}

#[test]
fn events_move_the_state_through_its_lifecycle() {
    let mut state = evolve(None, &created()).unwrap();
    assert_eq!(
        (state.status, state.attempts_left, state.version),
        (Status::Pending, 5, 1)
    );
    assert_eq!(
        (state.created_at, state.updated_at, state.expires_at),
        (secs(0), secs(0), secs(180))
    );

    state = evolve(Some(state), &failed(4, secs(5))).unwrap();
    assert_eq!(
        (state.status, state.attempts_left, state.version),
        (Status::Pending, 4, 2)
    );
    assert_eq!(state.updated_at, secs(5));

    state = evolve(Some(state), &confirmed(secs(10))).unwrap();
    assert_eq!(
        (state.status, state.decided_by, state.version),
        (Status::Confirmed, Some(PHONE), 3)
    );
    assert_eq!(state.token_expires_at, Some(secs(70)));
    assert!(state.token_hash.is_some());

    state = evolve(Some(state), &Event::TokenConsumed { at: secs(20) }).unwrap();
    assert_eq!(
        (state.status, state.consumed_at, state.version),
        (Status::Consumed, Some(secs(20)), 4)
    );
    assert_eq!(state.updated_at, secs(20));
}

#[test]
fn rejection_and_expiry_events_record_the_outcome() {
    let declined = replay(&[
        created(),
        rejected(RejectReason::DeclinedByUser, Some(TABLET), secs(9)),
    ])
    .unwrap();
    assert_eq!(declined.status, Status::Rejected);
    assert_eq!(declined.reason, Some(RejectReason::DeclinedByUser));
    assert_eq!(declined.decided_by, Some(TABLET));
    let expired = replay(&[
        created(),
        Event::Expired {
            at: secs(180),
            from: Status::Pending,
        },
    ])
    .unwrap();
    assert_eq!(
        (expired.status, expired.version, expired.updated_at),
        (Status::Expired, 2, secs(180))
    );
}

#[test]
fn nothing_but_created_starts_a_stream() {
    assert_eq!(replay(&[]), None);
    assert_eq!(evolve(None, &confirmed(secs(1))), None);
}

#[test]
fn the_effective_status_reports_lapsed_requests_as_expired() {
    let pending = replay(&[created()]).unwrap();
    assert_eq!(pending.effective_status(secs(179)), Status::Pending);
    assert_eq!(pending.effective_status(secs(180)), Status::Expired);
    let approved = replay(&[created(), confirmed(secs(10))]).unwrap();
    assert_eq!(approved.effective_status(secs(69)), Status::Confirmed);
    assert_eq!(approved.effective_status(secs(70)), Status::Expired);
    let consumed = replay(&[
        created(),
        confirmed(secs(10)),
        Event::TokenConsumed { at: secs(20) },
    ]);
    assert_eq!(
        consumed.unwrap().effective_status(secs(1000)),
        Status::Consumed
    );
}

#[test]
fn statuses_are_final_exactly_when_nothing_more_can_happen() {
    let finals: Vec<_> = Status::ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| s.as_str())
        .collect();
    assert_eq!(finals, ["CONSUMED", "REJECTED", "EXPIRED"]);
    assert_eq!(
        serde_json::to_value(Status::Pending).unwrap(),
        json!("PENDING")
    );
}

#[test]
fn the_stream_id_names_the_request() {
    assert_eq!(
        stream_id(REQUEST),
        "action-request-0193a5b0-7c1e-7d4a-9f00-000000000001"
    );
}

#[test]
fn creating_with_devices_to_notify_records_one_push_per_addressed_device() {
    let command = Create {
        notify: vec![PHONE, STRANGER],
        ..create()
    };
    given(&[])
        .at(secs(0))
        .when(Command::Create(command))
        .then(&[
            created(),
            Event::PushSent {
                device_id: PHONE,
                at: secs(0),
            },
        ]);
}
