//! Countersign's read models, built from the event log.
//!
//! The inline models (request status with its device links, and devices) are updated inside the
//! append transaction by [`inline::InlineProjections`]; [`read::ReadModels`] queries them for the
//! API; [`rebuild`] replays the log into fresh tables and swaps them in.

pub mod database;
pub mod follow;
pub mod inline;
pub mod outbox;
pub mod read;
pub mod rebuild;
pub mod search;
pub mod sql;
pub mod stats;

pub(crate) use countersign_store::time;

#[cfg(test)]
mod tests;
