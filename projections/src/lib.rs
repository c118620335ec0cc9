//! Countersign's read models, built from the event log.
//!
//! The inline models (request status and devices) are updated inside the append transaction by
//! [`inline::InlineProjections`]; the asynchronous ones (auditors' search, device inbox, daily
//! statistics) follow the log on their own ([`follow`]); [`read::ReadModels`] queries them for
//! the API; [`rebuild`] replays the log into a new generation of tables and swaps it in.

pub mod database;
pub mod follow;
pub mod inbox;
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
