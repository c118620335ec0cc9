//! The conformance suite of the `EventStore` trait: every check in `conformance/` is written
//! once and runs here against every backend, each test on a fresh store (for
//! PostgreSQL a database of its own, so the tests run in parallel).
//!
//! A backend joins the suite with one line in the `conformance!` call below: its module name
//! and a function giving a fresh [`support::Backend`] (or `None` when it must be skipped).

mod support;

#[path = "conformance/appends.rs"]
mod appends;
#[path = "conformance/audit.rs"]
mod audit;
#[path = "conformance/subscriptions.rs"]
mod subscriptions;

/// Every check, whichever file it is written in.
mod checks {
    pub use crate::appends::*;
    pub use crate::audit::*;
    pub use crate::subscriptions::*;
}

/// Runs every listed check on every listed backend: one module per backend, one test per
/// check. A check gets the store, then what its parentheses name of the [`support::Backend`]:
/// `(raw)` SQL behind the store's back, `(audit)` the audit's reads of the same database,
/// `(site)` where the database is (to open it beside the store). A check marked `(backend)`
/// gets the whole backend instead, to close and reopen the store.
macro_rules! conformance {
    (backends: [$($backend:ident => $open:path),+ $(,)?], checks: $checks:tt $(,)?) => {
        $(conformance!(@backend $backend, $open, $checks);)+
    };
    (@backend $backend:ident, $open:path, [$($check:ident $(($($arg:ident),+))?),+ $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(backend) = $open().await else { return };
                    conformance!(@run backend, $check $(($($arg),+))?);
                }
            )+
        }
    };
    (@run $b:ident, $check:ident (backend)) => {
        crate::checks::$check($b).await
    };
    (@run $b:ident, $check:ident $(($($arg:ident),+))?) => {
        crate::checks::$check($b.store() $($(, $b.$arg())+)?).await
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
        roots_and_proofs_match_an_independent_rfc_9162_implementation(audit),
        a_clean_log_verifies_with_the_independent_root_and_head(audit),
        verify_names_an_edited_event(raw, site),
        verify_names_a_deleted_event(raw, site),
        verify_names_the_removed_last_event(raw, site),
        verify_names_the_first_of_two_swapped_events(raw, site),
        verify_names_a_forged_event_with_arbitrary_hashes(raw, site),
        verify_names_a_forged_event_chained_without_its_merkle_node(raw, site),
        verify_names_the_event_whose_merkle_node_was_edited(raw, site),
        verify_names_an_event_whose_hash_was_erased(raw, site),
        verify_against_a_trusted_head_accepts_growth_and_refuses_another_log(audit, site),
        events_stored_before_the_chain_are_linked_when_the_store_reopens(backend),
    ],
}
