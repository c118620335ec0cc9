//! Properties that hold over any sequence of commands and any passing of time.

use proptest::prelude::*;

use super::*;

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    Confirm { device: Uuid, good: bool },
    Reject { device: Uuid, good: bool },
    Cancel,
    Expire,
    Consume { matching: bool },
    VerifyCode { device: Option<Uuid>, good: bool },
    Wait { seconds: i64 },
}

fn device() -> impl Strategy<Value = Uuid> {
    prop_oneof![4 => Just(PHONE), 2 => Just(TABLET), 1 => Just(STRANGER)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (device(), any::<bool>()).prop_map(|(device, good)| Step::Confirm { device, good }),
        2 => (device(), any::<bool>()).prop_map(|(device, good)| Step::Reject { device, good }),
        1 => Just(Step::Cancel),
        2 => Just(Step::Expire),
        3 => any::<bool>().prop_map(|matching| Step::Consume { matching }),
        3 => (prop::option::of(device()), any::<bool>())
            .prop_map(|(device, good)| Step::VerifyCode { device, good }),
        3 => (1i64..120).prop_map(|seconds| Step::Wait { seconds }),
    ]
}

/// Good signatures of every device for both decisions, made once per history.
struct Signatures(Vec<(Uuid, Decision, Vec<u8>)>);

impl Signatures {
    fn new() -> Self {
        let all = [PHONE, TABLET, STRANGER]
            .into_iter()
            .flat_map(|d| [Decision::Confirm, Decision::Reject].map(|x| (d, x, sign(d, x))))
            .collect();
        Self(all)
    }

    fn get(&self, device: Uuid, decision: Decision, good: bool) -> Vec<u8> {
        let (_, _, signature) = self
            .0
            .iter()
            .find(|(d, x, _)| *d == device && *x == decision)
            .unwrap();
        if good {
            signature.clone()
        } else {
            let mut bad = signature.clone();
            bad[40] ^= 0x01;
            bad
        }
    }
}

/// The reader's code at `now` when `good`, else a code from an hour earlier.
fn code(now: DateTime<Utc>, good: bool) -> String {
    let minute = u64::try_from(now.timestamp()).unwrap() / 60;
    otp::code_at(if good { minute } else { minute - 60 })
}

fn command(step: &Step, signatures: &Signatures, now: DateTime<Utc>) -> Option<Command> {
    Some(match step {
        Step::Confirm { device, good } => {
            confirm(*device, signatures.get(*device, Decision::Confirm, *good))
        }
        Step::Reject { device, good } => {
            reject(*device, signatures.get(*device, Decision::Reject, *good))
        }
        Step::Cancel => Command::Cancel,
        Step::Expire => Command::Expire,
        Step::Consume { matching: true } => consume(payload()),
        Step::Consume { matching: false } => consume(json!({"amount": "999.00"})),
        Step::VerifyCode { device, good } => Command::VerifyCode {
            device_id: *device,
            code: code(now, *good),
            check: otp::check(),
        },
        Step::Wait { .. } => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_history_keeps_the_lifecycle_invariants(
        steps in prop::collection::vec(step(), 0..40),
        fallback in any::<bool>(),
    ) {
        let signatures = Signatures::new();
        let mut now = secs(0);
        let create = Create {
            challenge: fallback.then(|| "48213377".to_owned()),
            ..create()
        };
        let mut log = decide(None, Command::Create(create), &Context::new(now, TOKEN_KEY)).unwrap();
        let mut state = replay(&log);

        for step in &steps {
            if let Step::Wait { seconds } = step {
                now += Duration::seconds(*seconds);
                continue;
            }
            let before = state.clone().unwrap();
            let command = command(step, &signatures, now).unwrap();
            let result = decide(state.as_ref(), command, &Context::new(now, TOKEN_KEY));
            if before.status.is_final() {
                prop_assert!(result.is_err(), "a final request accepted {step:?}: {result:?}");
            }
            if matches!(step, Step::VerifyCode { .. }) && !fallback && before.status == Status::Pending {
                prop_assert!(result.is_err(), "a code without a challenge was checked: {result:?}");
            }
            if matches!(step, Step::VerifyCode { good: false, .. }) {
                let confirms = result.iter().flatten().any(|e| matches!(e, Event::Confirmed { .. }));
                prop_assert!(!confirms, "a wrong code confirmed: {result:?}");
            }
            for event in result.unwrap_or_default() {
                state = evolve(state, &event);
                log.push(event);
            }
            let after = state.as_ref().unwrap();
            if before.status.is_final() {
                prop_assert_eq!(after.status, before.status);
            }
            prop_assert_eq!(after.version, log.len() as u64);
            prop_assert_eq!(&replay(&log), &state);
        }

        let confirmations = log.iter().filter(|e| matches!(e, Event::Confirmed { .. })).count();
        prop_assert!(confirmations <= 1, "confirmed {confirmations} times");
        let consumed: Vec<_> = log
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Event::TokenConsumed { .. }))
            .map(|(i, _)| i)
            .collect();
        prop_assert!(consumed.len() <= 1, "consumed {} times", consumed.len());
        if let Some(&position) = consumed.first() {
            let confirmed_before = log[..position].iter().any(|e| matches!(e, Event::Confirmed { .. }));
            prop_assert!(confirmed_before, "consumed without a confirmation: {log:?}");
        }
    }
}
