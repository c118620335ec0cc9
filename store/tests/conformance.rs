//! The conformance suite of the `EventStore` trait: every check in `conformance/` is written
//! once and runs here against every backend, each test on a fresh store (for
//! PostgreSQL a database of its own, so the tests run in parallel).
//!
//! A backend joins the suite with one line in the `conformance!` call below: its module name
//! and a function giving a fresh [`support::Backend`] (or `None` when it must be skipped).

mod support;

#[path = "conformance/appends.rs"]
mod appends;
#[path = "conformance/subscriptions.rs"]
mod subscriptions;

/// Every check, whichever file it is written in.
mod checks {
    pub use crate::appends::*;
    pub use crate::subscriptions::*;
}

/// Runs every listed check on every listed backend: one module per backend, one test per
/// check. A check followed by `(raw)` also gets SQL behind the store's back.
macro_rules! conformance {
    (backends: [$($backend:ident => $open:path),+ $(,)?], checks: $checks:tt $(,)?) => {
        $(conformance!(@backend $backend, $open, $checks);)+
    };
    (@backend $backend:ident, $open:path, [$($check:ident $(($raw:ident))?),+ $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(backend) = $open().await else { return };
                    crate::checks::$check(backend.store() $(, backend.$raw())?).await;
                }
            )+
        }
    };
}

conformance! {
    backends: [
        sqlite => crate::support::sqlite,
        postgres => crate::support::postgres,
    ],
    checks: [
        appended_events_read_back_as_recorded,
        a_stale_expected_version_is_a_conflict,
        re_appending_the_same_event_ids_is_a_conflict,
        an_empty_append_only_checks_the_expected_version,
        read_all_pages_through_the_log_in_position_order,
        a_subscription_from_a_position_continues_live,
        a_subscriber_sees_concurrent_appends_in_log_order,
        racing_appends_to_one_stream_have_exactly_one_winner,
        the_head_watch_moves_after_each_commit,
        stored_events_cannot_be_updated_or_deleted(raw),
    ],
}
