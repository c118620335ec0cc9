//! Countersign's tamper evidence, free of any database: the canonical bytes of an event, the
//! hash chain through the log, the RFC 9162 Merkle tree over it (hashing, the stored node
//! numbering, proofs and their verification), signed tree heads and offline evidence bundles.
//!
//! `docs/AUDIT.md` specifies every byte for auditors who check a log in another language.

pub mod canonical;
mod digest;
pub mod merkle;

pub use canonical::{canonical_bytes, chain_hash, EventFields};
pub use digest::{Digest, DigestError};
pub use merkle::{leaf_hash, node_hash, Frontier};
