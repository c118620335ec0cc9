//! The canonical bytes of a stored event and the hash chain through the log.
//!
//! The canonical bytes are the RFC 8785 (JSON Canonicalization Scheme) serialization of one
//! object holding every stored column of the event except its hashes:
//! `{"data", "event_id", "event_type", "metadata", "position", "recorded_at", "schema_version",
//! "stream_id", "stream_version"}`. `data` and `metadata` are the stored JSON values, and
//! `recorded_at` the stored time as text (RFC 3339, UTC, six fractional digits, `Z`).
//! Each event's `hash` is `SHA-256(prev_hash ‖ canonical bytes)`, where `prev_hash` is the
//! previous event's `hash`, or 32 zero bytes for position 1.

use serde::Serialize;
use serde_json::Value;

use crate::digest::Digest;

/// The columns of a stored event that its canonical bytes cover.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EventFields<'a> {
    /// Global position, from 1.
    pub position: u64,
    /// The stream, such as `action-request-<uuid>`.
    pub stream_id: &'a str,
    /// Version within the stream, from 1.
    pub stream_version: u64,
    /// The event id, a UUID in lowercase hyphenated form.
    pub event_id: &'a str,
    /// The event's type name.
    pub event_type: &'a str,
    /// Its data schema version.
    pub schema_version: u32,
    /// The event's data.
    pub data: &'a Value,
    /// Who acted and in which context.
    pub metadata: &'a Value,
    /// When it was recorded, as stored.
    pub recorded_at: &'a str,
}

/// The RFC 8785 bytes of the event's fields (keys sorted, no whitespace).
pub fn canonical_bytes(event: &EventFields<'_>) -> Vec<u8> {
    serde_jcs::to_vec(event).expect("JSON values and plain fields always serialize")
}

/// `SHA-256(prev ‖ canonical)`: an event's link in the chain.
pub fn chain_hash(prev: &Digest, canonical: &[u8]) -> Digest {
    Digest::of(&[prev.as_bytes(), canonical])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_canonical_form_sorts_keys_and_drops_whitespace() {
        let data = json!({"payee": "X", "amount": "234.00", "nested": {"z": 1, "a": [true, null]}});
        let metadata =
            json!({"actor": {"kind": "client", "id": "c-1"}, "correlation_id": null, "ip": null});
        let fields = EventFields {
            position: 7,
            stream_id: "action-request-1",
            stream_version: 2,
            event_id: "0190d0a4-0000-7000-8000-000000000001",
            event_type: "Confirmed",
            schema_version: 1,
            data: &data,
            metadata: &metadata,
            recorded_at: "2026-11-23T12:00:00.000001Z",
        };
        let text = String::from_utf8(canonical_bytes(&fields)).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"data":{"amount":"234.00","nested":{"a":[true,null],"z":1},"payee":"X"},"#,
                r#""event_id":"0190d0a4-0000-7000-8000-000000000001","event_type":"Confirmed","#,
                r#""metadata":{"actor":{"id":"c-1","kind":"client"},"correlation_id":null,"ip":null},"#,
                r#""position":7,"recorded_at":"2026-11-23T12:00:00.000001Z","schema_version":1,"#,
                r#""stream_id":"action-request-1","stream_version":2}"#
            )
        );
    }

    #[test]
    fn the_chain_hashes_the_previous_link_then_the_event() {
        let canonical = b"{}";
        let first = chain_hash(&Digest::ZERO, canonical);
        let mut input = vec![0u8; 32];
        input.extend_from_slice(canonical);
        assert_eq!(first, Digest::of(&[&input]));
        assert_ne!(chain_hash(&first, canonical), first);
    }
}
