//! Countersign's tamper evidence, free of any database: the canonical bytes of an event, the
//! hash chain through the log, the RFC 9162 Merkle tree over it (hashing, the stored node
//! numbering, proofs and their verification), signed tree heads and offline evidence bundles.
//!
//! The modules:
//!
//! - [`canonical`]: an event's RFC 8785 bytes and the hash chain;
//! - [`merkle`]: leaf and node hashes, the numbering of stored nodes, the appender's frontier;
//! - [`proof`]: RFC 9162 inclusion and consistency proofs from stored nodes, and their checks;
//! - [`head`]: signed tree heads and the text of the verifying key;
//! - [`evidence`]: offline evidence bundles for one action request;
//! - [`verify`]: the streaming check of a whole stored log.
//!
//! `docs/AUDIT.md` specifies every byte for auditors who check a log in another language.

pub mod canonical;
mod digest;
pub mod evidence;
pub mod head;
pub mod merkle;
pub mod proof;
pub mod verify;

pub use canonical::{canonical_bytes, chain_hash, EventFields};
pub use digest::{Digest, DigestError};
pub use merkle::{leaf_hash, node_hash, Frontier};
