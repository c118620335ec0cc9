//! Conformance checks of the tamper evidence: the hash chain, the Merkle tree's roots and
//! proofs, and the whole-log verification, on every backend.
//!
//! Roots and proofs are checked against an implementation of RFC 9162 written here from the
//! RFC's text alone (the naive `MTH`, `PATH` and `PROOF` definitions and the §2.1.3.2 and
//! §2.1.4.2 verification algorithms), over leaf hashes computed here from the events as read
//! back, so that a shared mistake in `countersign-audit` cannot hide. Tampering is done with
//! SQL behind the store's back, as someone with access to the database would, and found by a
//! separate reader opened like the command line's `audit verify`.

use std::sync::{Arc, Mutex};

use countersign_audit::head::TreeHead;
use countersign_audit::merkle::{first_position_of_node, node_number};
use countersign_audit::Digest;
use countersign_store::audit::{self, AuditError, AuditLog, VerifyReport};
use countersign_store::{Actor, EventStore, ExpectedVersion, Metadata, RecordedEvent};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::support::{event, Backend, RawSql, Site};

/// A SHA-256 output, as the independent implementation keeps it.
type Hash = [u8; 32];

// ---------------------------------------------------------------------------------------------
// The independent implementation (docs/AUDIT.md, RFC 8785, RFC 9162).
// ---------------------------------------------------------------------------------------------

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The RFC 8785 bytes of `value`.
fn jcs(value: &Value) -> Vec<u8> {
    serde_jcs::to_vec(value).expect("JSON values serialize")
}

/// The canonical bytes of an event as read back from the store.
fn canonical(event: &RecordedEvent) -> Vec<u8> {
    jcs(&json!({
        "data": event.data,
        "event_id": event.event_id.to_string(),
        "event_type": event.event_type,
        "metadata": serde_json::to_value(&event.metadata).expect("metadata serializes"),
        "position": event.position,
        "recorded_at": countersign_store::time::format(event.recorded_at),
        "schema_version": event.schema_version,
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
    }))
}

/// `SHA-256(0x00 ‖ canonical bytes)`.
fn leaf_of(canonical: &[u8]) -> Hash {
    sha256(&[&[0x00], canonical])
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
fn node_of(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    assert!(n >= 2);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 §2.1.1: `MTH(D[n])`.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => sha256(&[]),
        1 => d[0],
        n => {
            let k = split(n);
            node_of(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.1: `PATH(m, D[n])`.
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut proof = path(m, &d[..k]);
        proof.push(mth(&d[k..]));
        proof
    } else {
        let mut proof = path(m - k, &d[k..]);
        proof.push(mth(&d[..k]));
        proof
    }
}

/// RFC 9162 §2.1.4.1: `PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`.
fn consistency(m: usize, d: &[Hash]) -> Vec<Hash> {
    fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { Vec::new() } else { vec![mth(d)] };
        }
        let k = split(n);
        if m <= k {
            let mut proof = subproof(m, &d[..k], b);
            proof.push(mth(&d[k..]));
            proof
        } else {
            let mut proof = subproof(m - k, &d[k..], false);
            proof.push(mth(&d[..k]));
            proof
        }
    }
    subproof(m, d, true)
}

/// RFC 9162 §2.1.3.2, step by step.
fn verifies_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf: &Hash,
    inclusion_path: &[Hash],
    root: &Hash,
) -> bool {
    // 1. Compare leaf_index from the inclusion_proof input against tree_size.
    if leaf_index >= tree_size {
        return false;
    }
    // 2. Set fn to leaf_index and sn to tree_size - 1.
    let (mut f, mut s) = (leaf_index, tree_size - 1);
    // 3. Set r to hash.
    let mut r = *leaf;
    // 4. For each value p in the inclusion_path array:
    for p in inclusion_path {
        // a. If sn is 0, then stop the iteration and fail the proof verification.
        if s == 0 {
            return false;
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if f & 1 == 1 || f == s {
            // 1. Set r to HASH(0x01 || p || r).
            r = node_of(p, &r);
            // 2. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            //    LSB(fn) is set or fn is 0.
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            // Otherwise: Set r to HASH(0x01 || r || p).
            r = node_of(&r, p);
        }
        // c. Finally, right-shift both fn and sn one time.
        f >>= 1;
        s >>= 1;
    }
    // 5. Compare sn to 0. Compare r against the root_hash.
    s == 0 && r == *root
}

/// RFC 9162 §2.1.4.2, step by step, for `0 < first < second`; equal sizes (which the RFC
/// leaves to the caller) need an empty proof and equal roots.
fn verifies_consistency(
    first: u64,
    second: u64,
    first_hash: &Hash,
    second_hash: &Hash,
    consistency_path: &[Hash],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return consistency_path.is_empty() && first_hash == second_hash;
    }
    // 1. If consistency_path is an empty array, stop and fail the proof verification.
    if consistency_path.is_empty() {
        return false;
    }
    // 2. If first is an exact power of 2, then prepend first_hash to the consistency_path.
    let mut path = consistency_path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_hash);
    }
    // 3. Set fn to first - 1 and sn to second - 1.
    let (mut f, mut s) = (first - 1, second - 1);
    // 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    let (mut fr, mut sr) = (path[0], path[0]);
    // 6. For each subsequent value c in the consistency_path array:
    for c in &path[1..] {
        // a. If sn is 0, then stop the iteration and fail the proof verification.
        if s == 0 {
            return false;
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if f & 1 == 1 || f == s {
            // 1. Set fr to HASH(0x01 || c || fr).  2. Set sr to HASH(0x01 || c || sr).
            fr = node_of(c, &fr);
            sr = node_of(c, &sr);
            // 3. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            //    LSB(fn) is set or fn is 0.
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            // Otherwise: Set sr to HASH(0x01 || sr || c).
            sr = node_of(&sr, c);
        }
        // c. Finally, right-shift both fn and sn one time.
        f >>= 1;
        s >>= 1;
    }
    // 7. fr must be first_hash, sr second_hash, and sn 0.
    fr == *first_hash && sr == *second_hash && s == 0
}

/// Checks the chain links of `events` (the whole log from position 1) and returns their leaf
/// hashes.
fn chain_and_leaves(events: &[RecordedEvent]) -> Vec<Hash> {
    chain_and_leaves_after(&[0; 32], 0, events)
}

/// Checks the chain links of `events`, which follow the event at `position` whose hash is
/// `previous`, and returns their leaf hashes.
fn chain_and_leaves_after(previous: &Hash, position: u64, events: &[RecordedEvent]) -> Vec<Hash> {
    let mut previous = *previous;
    events
        .iter()
        .zip(position + 1..)
        .map(|(event, position)| {
            assert_eq!(event.position, position, "the log has no gaps");
            let bytes = canonical(event);
            assert_eq!(event.prev_hash.0, previous, "prev_hash at {position}");
            let hash = sha256(&[&previous, &bytes]);
            assert_eq!(event.hash.0, hash, "hash at {position}");
            previous = hash;
            leaf_of(&bytes)
        })
        .collect()
}

fn hashes(digests: &[Digest]) -> Vec<Hash> {
    digests.iter().map(|d| d.0).collect()
}

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// Every event of the log, read back in position order.
async fn read_everything(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let after = events.last().map_or(0, |e| e.position);
        let page = store.read_all(after, 500).await.unwrap();
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

/// Appends `count` events in appends of one to four, over four streams; returns the log.
async fn seed(store: &dyn EventStore, count: usize) -> Vec<RecordedEvent> {
    let mut appended = 0;
    let mut round = 0;
    while appended < count {
        let batch = (round % 4 + 1).min(count - appended);
        let events = (0..batch).map(|_| event("Seeded")).collect();
        store
            .append(&format!("seed-{}", round % 4), ExpectedVersion::Any, events)
            .await
            .unwrap();
        appended += batch;
        round += 1;
    }
    read_everything(store).await
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, AuditError>, what: &str) {
    match result {
        Err(AuditError::Invalid(_)) => {}
        other => panic!("{what}: expected AuditError::Invalid, got {other:?}"),
    }
}

/// What refuses requests that do not fit a log of `size` events.
async fn assert_refusals(log: &dyn AuditLog, size: u64) {
    let beyond = size + 1;
    assert_invalid(audit::root_at(log, beyond).await, "root beyond the log");
    assert_invalid(audit::leaf_at(log, beyond).await, "leaf beyond the log");
    assert_invalid(audit::leaf_at(log, 0).await, "leaf at position 0");
    assert_invalid(
        audit::inclusion_proof(log, 1, beyond).await,
        "inclusion in a tree beyond the log",
    );
    assert_invalid(
        audit::inclusion_proof(log, 0, size).await,
        "inclusion of position 0",
    );
    assert_invalid(
        audit::inclusion_proof(log, beyond, size).await,
        "inclusion of a position beyond the tree",
    );
    assert_invalid(
        audit::consistency_proof(log, 1, beyond).await,
        "consistency with a tree beyond the log",
    );
    assert_invalid(
        audit::consistency_proof(log, 0, size).await,
        "consistency from the empty tree",
    );
    if size >= 2 {
        assert_invalid(
            audit::consistency_proof(log, size, size - 1).await,
            "consistency with a smaller tree",
        );
    }
}

/// Checks the store's root, proofs and leaves at `size` against the independent ones.
async fn check_tree(log: &dyn AuditLog, leaves: &[Hash], size: usize) {
    let tree = &leaves[..size];
    let root = mth(tree);
    assert_eq!(
        audit::root_at(log, size as u64).await.unwrap().0,
        root,
        "root at {size}"
    );

    let positions: Vec<usize> = if size <= 70 {
        (1..=size).collect()
    } else {
        sample(
            size,
            &[1, 2, 3, size / 3, size / 2, size / 2 + 1, 2 * size / 3],
        )
    };
    for position in positions {
        let index = position - 1;
        let proof = hashes(
            &audit::inclusion_proof(log, position as u64, size as u64)
                .await
                .unwrap(),
        );
        assert_eq!(
            proof,
            path(index, tree),
            "PATH({index}, D[{size}]) of the store"
        );
        assert!(
            verifies_inclusion(index as u64, size as u64, &tree[index], &proof, &root),
            "the inclusion proof of position {position} at size {size} verifies"
        );
    }

    let firsts: Vec<usize> = if size <= 40 {
        (1..=size).collect()
    } else {
        sample(size, &[1, 2, 3, 5, 40, 41, 70, size / 3, size / 2])
    };
    for first in firsts {
        let proof = hashes(
            &audit::consistency_proof(log, first as u64, size as u64)
                .await
                .unwrap(),
        );
        assert_eq!(
            proof,
            consistency(first, tree),
            "PROOF({first}, D[{size}]) of the store"
        );
        let first_root = mth(&leaves[..first]);
        assert!(
            verifies_consistency(first as u64, size as u64, &first_root, &root, &proof),
            "the consistency proof from {first} to {size} verifies"
        );
    }
}

/// About twenty numbers in `1..=size`: `extra`, the powers of two and their neighbours, and
/// the last three.
fn sample(size: usize, extra: &[usize]) -> Vec<usize> {
    let mut picked: Vec<usize> = extra.to_vec();
    let mut power = 4;
    while power <= size {
        picked.extend([power - 1, power, power + 1]);
        power *= 4;
    }
    picked.extend([size.saturating_sub(2), size - 1, size]);
    picked.retain(|n| (1..=size).contains(n));
    picked.sort_unstable();
    picked.dedup();
    picked
}

/// The verification of the log at `site` by a reader of its own, as the command line runs it.
async fn verify_separately(site: &Site, against: Option<&TreeHead>) -> VerifyReport {
    let reader = site.open_audit().await;
    audit::verify_log(reader.as_ref(), against, |_, _| {})
        .await
        .unwrap()
}

/// Runs `statements` past the triggers, then checks the triggers hold again and that a
/// separate verification names `bad` as the first bad position.
async fn expect_fault(
    raw: &RawSql,
    site: &Site,
    statements: Vec<String>,
    bad: u64,
) -> VerifyReport {
    let before = verify_separately(site, None).await;
    assert!(before.ok, "the log verifies before tampering: {before:?}");
    raw.bypassing_triggers(&statements)
        .await
        .expect("the tampering runs");
    assert_triggers_hold(raw).await;
    let report = verify_separately(site, None).await;
    assert!(!report.ok, "tampering went unnoticed: {report:?}");
    assert_eq!(
        report.first_bad_position,
        Some(bad),
        "the first bad position: {report:?}"
    );
    assert!(report.reason.is_some(), "a fault has a reason");
    assert_counts_only_what_passed(&report, bad);
    report
}

/// The report counts as verified only the events before the first bad one.
fn assert_counts_only_what_passed(report: &VerifyReport, bad: u64) {
    assert_eq!(report.verified_events, bad - 1, "{report:?}");
    assert_eq!(report.tree_size, bad - 1, "{report:?}");
}

/// The append-only triggers are in force.
async fn assert_triggers_hold(raw: &RawSql) {
    for sql in [
        "update events set data = data where position = 1",
        "delete from events where position = 1",
        "update merkle_nodes set hash = hash where number = 0",
        "delete from merkle_nodes where number = 0",
    ] {
        let error = raw.execute(sql).await.expect_err(sql);
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
}

/// The number of events every tamper check starts from.
const SEEDED: usize = 30;

/// SQL text quoting.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// An `insert` of a forged event at `position`, with the given links.
fn forged_insert(raw: &RawSql, forged: &Value, prev_hash: &Hash, hash: &Hash) -> String {
    let field = |name: &str| forged[name].clone();
    format!(
        "insert into events (position, stream_id, stream_version, event_id, event_type, \
         schema_version, data, metadata, recorded_at, prev_hash, hash) \
         values ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
        field("position"),
        quoted(field("stream_id").as_str().unwrap()),
        field("stream_version"),
        quoted(field("event_id").as_str().unwrap()),
        quoted(field("event_type").as_str().unwrap()),
        field("schema_version"),
        quoted(&field("data").to_string()),
        quoted(&field("metadata").to_string()),
        quoted(field("recorded_at").as_str().unwrap()),
        raw.bytes_literal(prev_hash),
        raw.bytes_literal(hash),
    )
}

/// The fields of a plausible forged event at `position`.
fn forged_fields(position: usize) -> Value {
    json!({
        "data": { "kind": "Confirmed", "amount": "99999.00", "payee": { "iban": "XX00" } },
        "event_id": Uuid::now_v7().to_string(),
        "event_type": "Confirmed",
        "metadata": serde_json::to_value(Metadata::from_actor(Actor::system())).unwrap(),
        "position": position,
        "recorded_at": "2026-11-23T12:00:00.000001Z",
        "schema_version": 1,
        "stream_id": "forged",
        "stream_version": 1,
    })
}

// ---------------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------------

/// Roots, inclusion proofs and consistency proofs equal RFC 9162's naive definitions over the
/// leaves computed here, and verify with the RFC's algorithms, at every size up to 70 and
/// around powers of two up to 1025, while the log grows; requests that do not fit the log
/// are refused.
pub async fn roots_and_proofs_match_an_independent_rfc_9162_implementation(
    store: &dyn EventStore,
    log: Arc<dyn AuditLog>,
) {
    let log = log.as_ref();
    // The independent verifiers refuse what they must (so that their passing means something).
    let three: Vec<Hash> = (0u8..3).map(|i| leaf_of(&[i])).collect();
    let root = mth(&three);
    let good = path(1, &three);
    assert!(verifies_inclusion(1, 3, &three[1], &good, &root));
    assert!(!verifies_inclusion(0, 3, &three[1], &good, &root));
    assert!(!verifies_inclusion(1, 3, &three[1], &good[..1], &root));
    assert!(!verifies_inclusion(
        1,
        3,
        &three[1],
        &path(1, &three[..2]),
        &root
    ));
    let proof = consistency(2, &three);
    assert!(verifies_consistency(2, 3, &mth(&three[..2]), &root, &proof));
    assert!(!verifies_consistency(2, 3, &three[0], &root, &proof));
    assert!(!verifies_consistency(1, 3, &three[0], &root, &proof));

    assert_eq!(audit::root_at(log, 0).await.unwrap().0, mth(&[]));
    assert_refusals(log, 0).await;

    let mut checkpoints: Vec<usize> = (1..=70).collect();
    checkpoints.extend([
        127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025,
    ]);
    let last = *checkpoints.last().unwrap();
    let batches = [3, 1, 5, 2, 8, 4, 7, 6];
    let mut events: Vec<RecordedEvent> = Vec::new();
    let mut leaves: Vec<Hash> = Vec::new();
    let mut checked = 0;
    let mut round = 0;
    while events.len() < last {
        let batch = batches[round % batches.len()].min(last - events.len());
        let new = (0..batch).map(|_| event("Grown")).collect();
        store
            .append(&format!("grow-{}", round % 5), ExpectedVersion::Any, new)
            .await
            .unwrap();
        round += 1;
        let (after, previous) = events
            .last()
            .map_or((0, [0; 32]), |e| (e.position, e.hash.0));
        let read = store.read_all(after, 100).await.unwrap();
        assert_eq!(read.len(), batch);
        leaves.extend(chain_and_leaves_after(&previous, after, &read));
        events.extend(read);
        let size = events.len();
        let reached = checkpoints[checked..]
            .iter()
            .take_while(|&&c| c <= size)
            .count();
        for &checkpoint in &checkpoints[checked..checked + reached] {
            check_tree(log, &leaves, checkpoint).await;
        }
        checked += reached;
        if reached > 0 {
            assert_refusals(log, size as u64).await;
        }
    }
    assert_eq!(leaves, chain_and_leaves(&events));
    assert_eq!(checked, checkpoints.len());
    for (index, leaf) in leaves.iter().enumerate() {
        let stored = audit::leaf_at(log, index as u64 + 1).await.unwrap();
        assert_eq!(stored.0, *leaf, "the stored leaf at {}", index + 1);
    }
    assert_eq!(audit::size(log).await.unwrap(), last as u64);
}

/// A clean log verifies to its last event, with the root and head hash computed here.
pub async fn a_clean_log_verifies_with_the_independent_root_and_head(
    store: &dyn EventStore,
    log: Arc<dyn AuditLog>,
) {
    let empty = audit::verify_log(log.as_ref(), None, |_, _| {})
        .await
        .unwrap();
    assert!(empty.ok, "{empty:?}");
    assert_eq!(
        (empty.verified_events, empty.head_position, empty.tree_size),
        (0, 0, 0)
    );
    assert_eq!(empty.head_hash, Digest::ZERO);
    assert_eq!(empty.root_hash.0, mth(&[]));

    let events = seed(store, 25).await;
    let leaves = chain_and_leaves(&events);
    let progress = Mutex::new(Vec::new());
    let report = audit::verify_log(log.as_ref(), None, |verified, head| {
        progress.lock().unwrap().push((verified, head));
    })
    .await
    .unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.verified_events, 25);
    assert_eq!(report.head_position, 25);
    assert_eq!(report.tree_size, 25);
    assert_eq!(report.first_bad_position, None);
    assert_eq!(report.reason, None);
    assert_eq!(report.root_hash.0, mth(&leaves));
    assert_eq!(report.head_hash, events.last().unwrap().hash);
    assert_eq!(progress.into_inner().unwrap().last(), Some(&(25, 25)));
    assert_eq!(
        audit::root_at(log.as_ref(), 25).await.unwrap(),
        report.root_hash
    );
}

/// One byte of one event's data changed: that event is named.
pub async fn verify_names_an_edited_event(store: &dyn EventStore, raw: &RawSql, site: &Site) {
    seed(store, SEEDED).await;
    let edit = "update events set data = replace(data, '234.00', '934.00') where position = 12";
    expect_fault(raw, site, vec![edit.to_owned()], 12).await;
}

/// A row deleted from the middle: its position is named.
pub async fn verify_names_a_deleted_event(store: &dyn EventStore, raw: &RawSql, site: &Site) {
    seed(store, SEEDED).await;
    let delete = "delete from events where position = 9";
    expect_fault(raw, site, vec![delete.to_owned()], 9).await;
}

/// The last row deleted: the Merkle nodes still cover it, so the old head is named.
pub async fn verify_names_the_removed_last_event(
    store: &dyn EventStore,
    raw: &RawSql,
    site: &Site,
) {
    seed(store, SEEDED).await;
    let delete = format!("delete from events where position = {SEEDED}");
    let report = expect_fault(raw, site, vec![delete], SEEDED as u64).await;
    assert_eq!(report.head_position, SEEDED as u64 - 1);
}

/// Two rows' positions swapped: the first of them is named.
pub async fn verify_names_the_first_of_two_swapped_events(
    store: &dyn EventStore,
    raw: &RawSql,
    site: &Site,
) {
    seed(store, SEEDED).await;
    let swap = [
        "update events set position = 1000000 where position = 5",
        "update events set position = 5 where position = 17",
        "update events set position = 17 where position = 1000000",
    ];
    expect_fault(raw, site, swap.map(str::to_owned).to_vec(), 5).await;
}

/// A row added after the head with made-up hashes: it is named.
pub async fn verify_names_a_forged_event_with_arbitrary_hashes(
    store: &dyn EventStore,
    raw: &RawSql,
    site: &Site,
) {
    seed(store, SEEDED).await;
    let forged = forged_fields(SEEDED + 1);
    let insert = forged_insert(raw, &forged, &[0xab; 32], &[0xcd; 32]);
    expect_fault(raw, site, vec![insert], SEEDED as u64 + 1).await;
}

/// A row added after the head with a chain link computed the way an attacker would: the
/// chain holds, but the Merkle tree does not cover it.
pub async fn verify_names_a_forged_event_chained_without_its_merkle_node(
    store: &dyn EventStore,
    raw: &RawSql,
    site: &Site,
) {
    let events = seed(store, SEEDED).await;
    let forged = forged_fields(SEEDED + 1);
    let prev = events.last().unwrap().hash.0;
    let hash = sha256(&[&prev, &jcs(&forged)]);
    let insert = forged_insert(raw, &forged, &prev, &hash);
    let report = expect_fault(raw, site, vec![insert], SEEDED as u64 + 1).await;
    let reason = report.reason.unwrap();
    assert!(reason.contains("Merkle"), "the chain held: {reason}");
}

/// One byte of a stored Merkle node changed: the event whose append stored it is named.
pub async fn verify_names_the_event_whose_merkle_node_was_edited(
    store: &dyn EventStore,
    raw: &RawSql,
    site: &Site,
) {
    seed(store, SEEDED).await;
    assert!(verify_separately(site, None).await.ok);
    let reader = site.open_audit().await;
    // First a leaf node late in the log, then an interior node (leaves 8..12) before it.
    for number in [node_number(0, 24), node_number(2, 2)] {
        let mut stored = reader.nodes(&[number]).await.unwrap()[&number].clone();
        stored[7] ^= 0x20;
        let edit = format!(
            "update merkle_nodes set hash = {} where number = {number}",
            raw.bytes_literal(&stored)
        );
        let bad = first_position_of_node(number);
        let report = expect_fault_again(raw, site, edit, bad).await;
        assert!(report.reason.unwrap().contains(&number.to_string()));
    }
    assert_eq!(first_position_of_node(node_number(2, 2)), 12);
}

/// Like [`expect_fault`], for a log that may already be damaged further on.
async fn expect_fault_again(raw: &RawSql, site: &Site, sql: String, bad: u64) -> VerifyReport {
    raw.bypassing_triggers(&[sql])
        .await
        .expect("the tampering runs");
    assert_triggers_hold(raw).await;
    let report = verify_separately(site, None).await;
    assert!(!report.ok, "tampering went unnoticed: {report:?}");
    assert_eq!(report.first_bad_position, Some(bad), "{report:?}");
    assert_counts_only_what_passed(&report, bad);
    report
}

/// One event's hash erased: that event is named.
pub async fn verify_names_an_event_whose_hash_was_erased(
    store: &dyn EventStore,
    raw: &RawSql,
    site: &Site,
) {
    seed(store, SEEDED).await;
    let erase = "update events set hash = null where position = 14";
    expect_fault(raw, site, vec![erase.to_owned()], 14).await;
}

/// A log verifies against a head it has grown from; another log with as many events does not,
/// nor does a log shorter than the head.
pub async fn verify_against_a_trusted_head_accepts_growth_and_refuses_another_log(
    store: &dyn EventStore,
    log: Arc<dyn AuditLog>,
    site: &Site,
) {
    let events = seed(store, 20).await;
    let root = audit::root_at(log.as_ref(), 20).await.unwrap();
    assert_eq!(root.0, mth(&chain_and_leaves(&events)));
    let head = TreeHead {
        tree_size: 20,
        root_hash: root,
        timestamp: "2026-11-23T12:00:00Z".into(),
    };
    let at_head = verify_separately(site, Some(&head)).await;
    assert!(at_head.ok, "{at_head:?}");

    let events = seed_more(store, 15).await;
    let grown = verify_separately(site, Some(&head)).await;
    assert!(grown.ok, "{grown:?}");
    assert_eq!(grown.verified_events, 35);
    assert_eq!(grown.root_hash.0, mth(&chain_and_leaves(&events)));

    let wrong_root = TreeHead {
        root_hash: Digest(mth(&chain_and_leaves(&events[..19]))),
        ..head.clone()
    };
    let report = verify_separately(site, Some(&wrong_root)).await;
    assert!(!report.ok, "{report:?}");
    assert_eq!(report.first_bad_position, Some(20));

    let beyond = TreeHead {
        tree_size: 36,
        root_hash: grown.root_hash,
        timestamp: head.timestamp.clone(),
    };
    let report = verify_separately(site, Some(&beyond)).await;
    assert!(!report.ok, "{report:?}");
    assert_eq!(report.first_bad_position, Some(36));

    // A head of the empty tree holds only with the empty tree's root.
    let empty = TreeHead {
        tree_size: 0,
        root_hash: countersign_audit::merkle::empty_root(),
        timestamp: head.timestamp.clone(),
    };
    assert!(verify_separately(site, Some(&empty)).await.ok);
    let not_empty = TreeHead {
        root_hash: root,
        ..empty
    };
    let report = verify_separately(site, Some(&not_empty)).await;
    assert!(!report.ok, "{report:?}");

    let other: Backend = site.fresh().await;
    seed(other.store(), 35).await;
    let alone = verify_separately(other.site(), None).await;
    assert!(alone.ok, "the other log is sound on its own: {alone:?}");
    let report = verify_separately(other.site(), Some(&head)).await;
    assert!(!report.ok, "another log passed for this one: {report:?}");
    assert_eq!(report.first_bad_position, Some(20));
    let through_its_store = audit::verify_log(other.audit().as_ref(), Some(&head), |_, _| {})
        .await
        .unwrap();
    assert_eq!(through_its_store, report);
}

/// Appends `count` more events in one stream of their own; returns the whole log.
async fn seed_more(store: &dyn EventStore, count: usize) -> Vec<RecordedEvent> {
    for _ in 0..count {
        store
            .append("more", ExpectedVersion::Any, vec![event("More")])
            .await
            .unwrap();
    }
    read_everything(store).await
}

/// A log written before events carried links (no hashes, no Merkle nodes) is linked when the
/// store opens, to the same links the appends gave, and appends continue the chain.
pub async fn events_stored_before_the_chain_are_linked_when_the_store_reopens(backend: Backend) {
    let original = seed(backend.store(), 10).await;
    let original_root = audit::root_at(backend.audit().as_ref(), 10).await.unwrap();
    backend
        .raw()
        .bypassing_triggers(&[
            "update events set prev_hash = null, hash = null".to_owned(),
            "delete from merkle_nodes".to_owned(),
        ])
        .await
        .expect("the links are removed");
    let unlinked = verify_separately(backend.site(), None).await;
    assert!(!unlinked.ok);
    assert_eq!(unlinked.first_bad_position, Some(1));

    let backend = backend.reopen().await;
    let relinked = verify_separately(backend.site(), None).await;
    assert!(relinked.ok, "{relinked:?}");
    assert_eq!(relinked.verified_events, 10);
    assert_eq!(relinked.head_position, 10);
    assert_eq!(backend.store().head().await.unwrap(), 10);
    let events = read_everything(backend.store()).await;
    assert_eq!(events, original, "linking gives the links the appends gave");
    assert_eq!(relinked.head_hash, original[9].hash);
    assert_eq!(relinked.root_hash, original_root);
    assert_eq!(relinked.root_hash.0, mth(&chain_and_leaves(&events)));

    let next = backend
        .store()
        .append("after", ExpectedVersion::NoStream, vec![event("After")])
        .await
        .unwrap();
    assert_eq!(next.first_position, 11);
    assert_eq!(next.events[0].prev_hash, original[9].hash);
    let events = read_everything(backend.store()).await;
    let leaves = chain_and_leaves(&events);
    let continued = verify_separately(backend.site(), None).await;
    assert!(continued.ok, "{continued:?}");
    assert_eq!(continued.verified_events, 11);
    assert_eq!(continued.root_hash.0, mth(&leaves));
    assert_eq!(
        audit::root_at(backend.audit().as_ref(), 11)
            .await
            .unwrap()
            .0,
        mth(&leaves)
    );
    assert_triggers_hold(backend.raw()).await;
}
