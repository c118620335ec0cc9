//! Evidence bundles: one action request's events with their links and inclusion proofs, and a
//! signed tree head that holds them all, checked offline.
//!
//! A bundle is compact JSON ([`to_bytes`]) and [`verify_evidence`] accepts exactly those bytes:
//! it parses them strictly and also requires them to be the compact serialization of what it
//! parsed. So no byte can change without a check failing, not even whitespace, the case of a
//! `\u` escape's hex digits or the spelling of a number.

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{canonical_bytes, chain_hash, EventFields};
use crate::digest::Digest;
use crate::head::{HeadError, SignedTreeHead};
use crate::merkle::leaf_hash;
use crate::proof::{self, ProofError};

/// The `format` of every bundle of this version.
pub const FORMAT: &str = "countersign-evidence/1";

/// The evidence for one action request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBundle {
    /// Always [`FORMAT`].
    pub format: String,
    /// The action request's id; its stream is `action-request-<id>`.
    pub action_request_id: String,
    /// A signed head of a tree that holds every event below.
    pub tree_head: SignedTreeHead,
    /// The request's events, in stream order.
    pub events: Vec<EvidenceEvent>,
    /// The server's signature over the bundle's statement ([`EvidenceBundle::statement_bytes`]):
    /// the stream had exactly these events, ending with this hash, in the signed tree. Without
    /// it, a bundle cut short after any event would still hold.
    #[serde(with = "crate::head::signature_hex")]
    pub signature: Signature,
}

impl EvidenceBundle {
    /// A bundle of `events`, signed with the audit key.
    pub fn signed(
        action_request_id: String,
        tree_head: SignedTreeHead,
        events: Vec<EvidenceEvent>,
        key: &SigningKey,
    ) -> Self {
        let mut bundle = Self {
            format: FORMAT.to_owned(),
            action_request_id,
            tree_head,
            events,
            signature: Signature::from_bytes(&[0; 64]),
        };
        bundle.signature = key.sign(&bundle.statement_bytes());
        bundle
    }

    /// The bytes [`EvidenceBundle::signature`] covers: the RFC 8785 bytes of
    /// `{"purpose": "countersign-evidence/1", "action_request_id", "events": <count>,
    /// "last_hash": <the last event's hash>, "tree_size", "root_hash"}`.
    pub fn statement_bytes(&self) -> Vec<u8> {
        let last_hash = self.events.last().map(|e| e.hash).unwrap_or(Digest::ZERO);
        serde_jcs::to_vec(&serde_json::json!({
            "purpose": FORMAT,
            "action_request_id": self.action_request_id,
            "events": self.events.len(),
            "last_hash": last_hash,
            "tree_size": self.tree_head.tree_size,
            "root_hash": self.tree_head.root_hash,
        }))
        .expect("plain fields always serialize")
    }
}

/// One event of a bundle: its stored columns, its links and its inclusion proof.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvidenceEvent {
    /// Global position, from 1.
    pub position: u64,
    /// The stream, `action-request-<id>`.
    pub stream_id: String,
    /// Version within the stream, from 1.
    pub stream_version: u64,
    /// The event id.
    pub event_id: String,
    /// The event's type name.
    pub event_type: String,
    /// Its data schema version.
    pub schema_version: u32,
    /// The event's data.
    pub data: Value,
    /// Who acted and in which context.
    pub metadata: Value,
    /// When it was recorded, as stored.
    pub recorded_at: String,
    /// The previous event's hash in the log.
    pub prev_hash: Digest,
    /// `SHA-256(prev_hash ‖ canonical bytes)`.
    pub hash: Digest,
    /// RFC 9162 `PATH(position - 1, D[tree_size])` for the bundle's tree head.
    pub inclusion_proof: Vec<Digest>,
}

impl EvidenceEvent {
    /// The fields its canonical bytes cover.
    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            position: self.position,
            stream_id: &self.stream_id,
            stream_version: self.stream_version,
            event_id: &self.event_id,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            data: &self.data,
            metadata: &self.metadata,
            recorded_at: &self.recorded_at,
        }
    }
}

/// The bundle as compact JSON, without any whitespace: the only form [`verify_evidence`]
/// accepts.
pub fn to_bytes(bundle: &EvidenceBundle) -> Vec<u8> {
    serde_json::to_vec(bundle).expect("JSON values and plain fields always serialize")
}

/// What a bundle that holds proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvidence {
    /// The action request.
    pub action_request_id: String,
    /// How many of its events the bundle holds.
    pub events: usize,
    /// The signed tree's size.
    pub tree_size: u64,
    /// The signed tree's root.
    pub root_hash: Digest,
    /// When the head was signed.
    pub timestamp: String,
    /// The type of the request's last event in the bundle.
    pub last_event_type: String,
}

/// Why a bundle does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The bytes are not a bundle.
    #[error("the bundle does not parse: {0}")]
    Malformed(String),
    /// The bytes parse but are not the bundle's compact serialization.
    #[error("the bundle is not in its exact compact form (whitespace, escapes or number spellings differ)")]
    NotCompact,
    /// The format is not [`FORMAT`].
    #[error("the bundle's format is {0:?}, not \"countersign-evidence/1\"")]
    Format(String),
    /// The bundle's own signature does not verify: events were removed or added.
    #[error(
        "the bundle's signature does not verify: it is not the whole stream the server signed"
    )]
    Statement,
    /// The tree head's signature does not verify.
    #[error("the tree head is not signed by the given key")]
    Signature(#[source] HeadError),
    /// The bundle holds no event.
    #[error("the bundle holds no event")]
    NoEvents,
    /// An event is in another stream.
    #[error(
        "the event at position {position} is in stream {stream_id:?}, not the action request's"
    )]
    WrongStream {
        /// The event's position.
        position: u64,
        /// Its stream.
        stream_id: String,
    },
    /// The stream versions do not run 1, 2, 3 ….
    #[error("the event at position {position} has stream version {found}, not {expected}")]
    StreamVersion {
        /// The event's position.
        position: u64,
        /// The version the stream needs there.
        expected: u64,
        /// The version it has.
        found: u64,
    },
    /// The positions do not increase.
    #[error("the event at position {position} does not come after position {previous}")]
    PositionOrder {
        /// The event's position.
        position: u64,
        /// The previous event's position.
        previous: u64,
    },
    /// A position is 0 or beyond the signed tree.
    #[error("the event at position {position} is outside the signed tree of {tree_size} events")]
    OutsideTree {
        /// The event's position.
        position: u64,
        /// The signed tree's size.
        tree_size: u64,
    },
    /// An event's hash does not match its content and `prev_hash`.
    #[error(
        "the hash of the event at position {position} does not match its content and prev_hash"
    )]
    Hash {
        /// The event's position.
        position: u64,
    },
    /// An event's inclusion proof does not lead to the signed root.
    #[error("the inclusion proof of the event at position {position} does not verify: {source}")]
    Inclusion {
        /// The event's position.
        position: u64,
        /// What failed.
        #[source]
        source: ProofError,
    },
}

/// Checks a bundle offline with the server's audit key. It holds only if the bytes are exactly
/// a compact bundle of [`FORMAT`] with no unknown field, the events are the stream
/// `action-request-<id>` from version 1 without gaps, at increasing positions inside the tree,
/// each with a correct hash and an inclusion proof that leads to the head's root, and the tree
/// head is signed by `key`. The checks run in that order; the first that fails is reported.
pub fn verify_evidence(
    bytes: &[u8],
    key: &ed25519_dalek::VerifyingKey,
) -> Result<VerifiedEvidence, EvidenceError> {
    let bundle: EvidenceBundle = serde_json::from_slice(bytes)
        .map_err(|error| EvidenceError::Malformed(error.to_string()))?;
    if to_bytes(&bundle) != bytes {
        return Err(EvidenceError::NotCompact);
    }
    if bundle.format != FORMAT {
        return Err(EvidenceError::Format(bundle.format));
    }
    let head = &bundle.tree_head;
    let last = bundle.events.last().ok_or(EvidenceError::NoEvents)?;
    let stream_id = format!("action-request-{}", bundle.action_request_id);
    let mut previous = 0;
    for (expected, event) in (1..).zip(&bundle.events) {
        let position = event.position;
        if event.stream_id != stream_id {
            return Err(EvidenceError::WrongStream {
                position,
                stream_id: event.stream_id.clone(),
            });
        }
        if event.stream_version != expected {
            return Err(EvidenceError::StreamVersion {
                position,
                expected,
                found: event.stream_version,
            });
        }
        if position <= previous {
            return Err(EvidenceError::PositionOrder { position, previous });
        }
        if position == 0 || position > head.tree_size {
            return Err(EvidenceError::OutsideTree {
                position,
                tree_size: head.tree_size,
            });
        }
        previous = position;
        let canonical = canonical_bytes(&event.fields());
        if chain_hash(&event.prev_hash, &canonical) != event.hash {
            return Err(EvidenceError::Hash { position });
        }
        proof::verify_inclusion(
            position - 1,
            head.tree_size,
            &leaf_hash(&canonical),
            &event.inclusion_proof,
            &head.root_hash,
        )
        .map_err(|source| EvidenceError::Inclusion { position, source })?;
    }
    // Last, as the costliest checks; every check must pass, so the order decides only the error.
    head.verify(key).map_err(EvidenceError::Signature)?;
    key.verify_strict(&bundle.statement_bytes(), &bundle.signature)
        .map_err(|_| EvidenceError::Statement)?;
    Ok(VerifiedEvidence {
        action_request_id: bundle.action_request_id.clone(),
        events: bundle.events.len(),
        tree_size: head.tree_size,
        root_hash: head.root_hash,
        timestamp: head.timestamp.clone(),
        last_event_type: last.event_type.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ed25519_dalek::SigningKey;
    use serde_json::json;

    use super::*;
    use crate::head::TreeHead;
    use crate::merkle::Frontier;

    const REQUEST: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    /// Where the request's events are in the log.
    const POSITIONS: [u64; 4] = [3, 11, 24, 37];
    const LOG_SIZE: u64 = 40;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    /// A log of 40 events in several streams, the request's among them, and its stored nodes.
    fn log() -> (Vec<EvidenceEvent>, HashMap<u64, Digest>, Digest) {
        let types = ["Created", "Challenged", "Confirmed", "Consumed"];
        let mut events: Vec<EvidenceEvent> = Vec::new();
        let mut versions: HashMap<String, u64> = HashMap::new();
        let mut frontier = Frontier::new();
        let mut nodes = HashMap::new();
        let mut prev = Digest::ZERO;
        for position in 1..=LOG_SIZE {
            let ours = POSITIONS.iter().position(|p| *p == position);
            let stream_id = match ours {
                Some(_) => format!("action-request-{REQUEST}"),
                None => format!(
                    "action-request-0193a1b2-0000-7000-8000-{:012}",
                    position % 3
                ),
            };
            let version = versions.entry(stream_id.clone()).or_default();
            *version += 1;
            let data = match ours {
                Some(0) => json!({
                    "display": {"payee": "Zoë & Co / \"Ltd\"", "amount": "234.00", "note": "tab\tline\nctl\u{1f}\u{b}"},
                    "amount_minor": 23400,
                    "offset": -5,
                    "binding": "a1b2c3",
                    "flags": [true, false, null],
                    "emoji": "✓🙂",
                }),
                _ => json!({"n": position, "text": format!("event {position}")}),
            };
            let mut event = EvidenceEvent {
                position,
                stream_id,
                stream_version: *version,
                event_id: format!("0190d0a4-0000-7000-8000-{position:012}"),
                event_type: ours.map_or("Other", |i| types[i]).to_owned(),
                schema_version: 1,
                data,
                metadata: json!({"actor": {"kind": "client", "id": "c-1"}, "correlation_id": null, "ip": "192.0.2.1"}),
                recorded_at: format!("2026-11-23T12:00:{position:02}.000001Z"),
                prev_hash: prev,
                hash: Digest::ZERO,
                inclusion_proof: vec![],
            };
            let canonical = canonical_bytes(&event.fields());
            event.hash = chain_hash(&prev, &canonical);
            prev = event.hash;
            nodes.extend(frontier.push(leaf_hash(&canonical)));
            events.push(event);
        }
        (events, nodes, frontier.root())
    }

    fn bundle() -> EvidenceBundle {
        let (events, nodes, root) = log();
        let head = TreeHead {
            tree_size: LOG_SIZE,
            root_hash: root,
            timestamp: "2026-11-23T12:01:00.000000Z".to_owned(),
        }
        .sign(&key());
        let events = POSITIONS
            .iter()
            .map(|position| {
                let mut event = events[*position as usize - 1].clone();
                let plan = proof::inclusion_plan(position - 1, LOG_SIZE).unwrap();
                event.inclusion_proof = proof::assemble(&plan, &nodes).unwrap();
                event
            })
            .collect();
        EvidenceBundle::signed(REQUEST.to_owned(), head, events, &key())
    }

    fn verify(bundle: &EvidenceBundle) -> Result<VerifiedEvidence, EvidenceError> {
        verify_evidence(&to_bytes(bundle), &key().verifying_key())
    }

    #[test]
    fn a_correct_bundle_holds() {
        let bundle = bundle();
        let verified = verify(&bundle).unwrap();
        assert_eq!(
            verified,
            VerifiedEvidence {
                action_request_id: REQUEST.to_owned(),
                events: 4,
                tree_size: LOG_SIZE,
                root_hash: bundle.tree_head.root_hash,
                timestamp: "2026-11-23T12:01:00.000000Z".to_owned(),
                last_event_type: "Consumed".to_owned(),
            }
        );
        let bytes = to_bytes(&bundle);
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(serde_json::to_vec(&value).unwrap(), bytes);
        assert!(bytes.starts_with(br#"{"format":"countersign-evidence/1","#));
    }

    #[test]
    fn every_single_byte_change_is_detected() {
        let bytes = to_bytes(&bundle());
        let public = key().verifying_key();
        // Printable replacements, hex digits and JSON syntax first among them.
        let printable = br#"0123456789abcdefABCDEF"\\/ {}[],:-+.eEnulltrx_~"#;
        let mut checked = 0;
        for offset in 0..bytes.len() {
            let original = bytes[offset];
            let rotating = printable[offset % printable.len()];
            let next = printable[(offset + 7) % printable.len()];
            for replacement in [original ^ 0x01, original ^ 0x20, rotating, next] {
                if replacement == original {
                    continue;
                }
                let mut changed = bytes.clone();
                changed[offset] = replacement;
                assert!(
                    verify_evidence(&changed, &public).is_err(),
                    "byte {offset} ({:?}) changed to {:?} still holds: …{}…",
                    original as char,
                    replacement as char,
                    String::from_utf8_lossy(
                        &changed[offset.saturating_sub(30)..(offset + 30).min(bytes.len())]
                    )
                );
                checked += 1;
            }
        }
        assert!(checked > 3 * bytes.len());
    }

    #[test]
    fn the_exact_compact_form_is_required() {
        let bytes = to_bytes(&bundle());
        let text = String::from_utf8(bytes.clone()).unwrap();
        let public = key().verifying_key();
        // The same bundle with other spellings parses to equal values, yet is refused.
        let pretty = serde_json::to_vec_pretty(&bundle()).unwrap();
        assert_eq!(
            verify_evidence(&pretty, &public),
            Err(EvidenceError::NotCompact)
        );
        assert!(text.contains(r"\u001f"));
        let upper_escape = text.replacen(r"\u001f", r"\u001F", 1);
        assert_eq!(
            verify_evidence(upper_escape.as_bytes(), &public),
            Err(EvidenceError::NotCompact)
        );
        let slash = text.replacen("Co / ", r"Co \/ ", 1);
        assert_ne!(slash, text);
        assert_eq!(
            verify_evidence(slash.as_bytes(), &public),
            Err(EvidenceError::NotCompact)
        );
        let number = text.replacen("23400", "2.34e4", 1);
        assert!(verify_evidence(number.as_bytes(), &public).is_err());
        let mut trailing = bytes.clone();
        trailing.push(b'\n');
        assert!(verify_evidence(&trailing, &public).is_err());
    }

    #[test]
    fn the_wrong_key_is_refused() {
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(
            verify_evidence(&to_bytes(&bundle()), &other),
            Err(EvidenceError::Signature(_))
        ));
    }

    #[test]
    fn dropping_an_event_is_detected() {
        for index in 0..3 {
            let mut bundle = bundle();
            bundle.events.remove(index);
            assert!(
                matches!(verify(&bundle), Err(EvidenceError::StreamVersion { .. })),
                "dropping event {index}"
            );
        }
        let mut bundle = bundle();
        bundle.events.clear();
        assert_eq!(verify(&bundle), Err(EvidenceError::NoEvents));
    }

    #[test]
    fn cutting_the_stream_short_is_detected() {
        let whole = bundle();
        for keep in 1..whole.events.len() {
            let mut cut = whole.clone();
            cut.events.truncate(keep);
            assert_eq!(
                verify(&cut),
                Err(EvidenceError::Statement),
                "keeping {keep}"
            );
        }
    }

    #[test]
    fn an_event_of_another_stream_is_refused() {
        let (events, nodes, _) = log();
        let mut bundle = bundle();
        let mut stranger = events[4].clone();
        let plan = proof::inclusion_plan(4, LOG_SIZE).unwrap();
        stranger.inclusion_proof = proof::assemble(&plan, &nodes).unwrap();
        bundle.events.insert(1, stranger);
        assert_eq!(
            verify(&bundle),
            Err(EvidenceError::WrongStream {
                position: 5,
                stream_id: events[4].stream_id.clone()
            })
        );
    }

    #[test]
    fn reordered_or_misplaced_events_are_refused() {
        let mut swapped = bundle();
        swapped.events.swap(1, 2);
        assert!(matches!(
            verify(&swapped),
            Err(EvidenceError::StreamVersion { position: 24, .. })
        ));
        // A head of 30 events, with the first three events' proofs for it.
        let (_, nodes, _) = log();
        let mut small = bundle();
        let mut frontier = Frontier::new();
        for position in 1..=30 {
            frontier.push(nodes[&crate::merkle::node_number(0, position - 1)]);
        }
        small.tree_head = TreeHead {
            tree_size: 30,
            root_hash: frontier.root(),
            ..small.tree_head.head()
        }
        .sign(&key());
        for event in &mut small.events[..3] {
            let plan = proof::inclusion_plan(event.position - 1, 30).unwrap();
            event.inclusion_proof = proof::assemble(&plan, &nodes).unwrap();
        }
        assert_eq!(
            verify(&small),
            Err(EvidenceError::OutsideTree {
                position: 37,
                tree_size: 30
            })
        );
        let mut tampered = bundle();
        tampered.events[2].data = json!({"n": 0});
        assert_eq!(verify(&tampered), Err(EvidenceError::Hash { position: 24 }));
        let mut format = bundle();
        format.format = "countersign-evidence/2".to_owned();
        assert!(matches!(verify(&format), Err(EvidenceError::Format(_))));
    }
}
