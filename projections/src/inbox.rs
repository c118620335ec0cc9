//! The device inbox, an asynchronous projection (`device_inbox`): one row per device a pending
//! request is addressed to, holding what the authenticator shows and signs. A request leaves
//! every inbox at its first final event (confirmed, rejected, expired); reads also hide the
//! rows whose time has run out before that event is recorded.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use countersign_domain::action_request::Event;
use countersign_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::follow::{action_request_event, ApplyError, AsyncProjection, Generation};
use crate::read::{InboxItem, ReadError};
use crate::sql::{Pool, Sql};
use crate::time;

/// The inbox model's projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceInbox;

/// Its name.
pub const NAME: &str = "device_inbox";

/// An inbox entry as stored: the item without its expiry and version, which have columns.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    id: Uuid,
    action: String,
    display: serde_json::Value,
    binding: String,
    nonce: String,
    challenge: Option<String>,
}

fn encode(item: &Stored) -> String {
    serde_json::to_string(item).expect("an inbox item serializes")
}

#[async_trait]
impl AsyncProjection for DeviceInbox {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["device_inbox"]
    }

    async fn apply(
        &self,
        conn: &mut dyn Sql,
        generation: Generation,
        recorded: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let Some((id, event)) = action_request_event(recorded)? else {
            return Ok(());
        };
        let table = generation.table("device_inbox");
        match &event {
            Event::Created(created) => {
                let item = encode(&Stored {
                    id: created.id,
                    action: created.action.as_str().to_owned(),
                    display: serde_json::to_value(&created.display)
                        .map_err(|e| ApplyError::Event(e.to_string()))?,
                    binding: created.binding.as_str().to_owned(),
                    nonce: created.nonce.clone(),
                    challenge: created.challenge.clone(),
                });
                let sql = format!(
                    "insert into {table} (device_id, request_id, expires_at, version, item) \
                     values ($1, $2, $3, 1, $4)"
                );
                for device in &created.devices {
                    conn.execute(
                        &sql,
                        &[
                            device.to_string().into(),
                            id.into(),
                            time::format(created.expires_at).into(),
                            item.as_str().into(),
                        ],
                    )
                    .await?;
                }
            }
            Event::Confirmed { .. }
            | Event::Rejected { .. }
            | Event::Expired { .. }
            | Event::TokenConsumed { .. } => {
                conn.execute(
                    &format!("delete from {table} where request_id = $1"),
                    &[id.into()],
                )
                .await?;
            }
            Event::ChallengeIssued { challenge, .. } => {
                let rows = conn
                    .fetch(
                        &format!("select item from {table} where request_id = $1 limit 1"),
                        &[id.into()],
                    )
                    .await?;
                let Some(Some(text)) = rows.into_iter().next().and_then(|r| r.into_iter().next())
                else {
                    return Ok(());
                };
                let mut item: Stored = serde_json::from_str(&text)
                    .map_err(|e| ApplyError::Event(format!("stored inbox item: {e}")))?;
                item.challenge = Some(challenge.clone());
                conn.execute(
                    &format!(
                        "update {table} set item = $1, version = version + 1 \
                         where request_id = $2"
                    ),
                    &[encode(&item).into(), id.into()],
                )
                .await?;
            }
            Event::PushSent { .. } | Event::CodeSent { .. } | Event::VerificationFailed { .. } => {
                conn.execute(
                    &format!("update {table} set version = version + 1 where request_id = $1"),
                    &[id.into()],
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// The pending requests addressed to `device_id` that have not run out at `now`, oldest first.
pub async fn inbox(
    pool: &Pool,
    device_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<InboxItem>, ReadError> {
    let rows = pool
        .rows(
            "select item, expires_at, cast(version as text) from device_inbox \
             where device_id = $1 and expires_at > $2 order by request_id",
            &[device_id.to_string().into(), time::format(now).into()],
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            let mut columns = row.into_iter().map(Option::unwrap_or_default);
            let (item, expires_at, version) = (
                columns.next().unwrap_or_default(),
                columns.next().unwrap_or_default(),
                columns.next().unwrap_or_default(),
            );
            let corrupt = |what: &str| ReadError::Corrupt(format!("device_inbox {what}"));
            let item: Stored = serde_json::from_str(&item).map_err(|_| corrupt("item"))?;
            Ok(InboxItem {
                id: item.id,
                action: item.action,
                display: item.display,
                binding: item.binding,
                nonce: item.nonce,
                challenge: item.challenge,
                expires_at: time::parse(&expires_at).ok_or_else(|| corrupt("expires_at"))?,
                version: version.parse().map_err(|_| corrupt("version"))?,
            })
        })
        .collect()
}
