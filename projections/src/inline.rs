//! The inline read models: action-request status and devices.
//!
//! They are updated by the store's writer inside the transaction of the append that produced the
//! events, so a poll right after a command sees the command's effect, and a crash can never leave
//! them behind the log. The same code fills fresh tables during a rebuild.

use countersign_domain::action_request::{self, ActionRequest};
use countersign_domain::device;
use countersign_store::postgres::PgInlineProjection;
use countersign_store::sqlite::{InlineError, SqliteInlineProjection};
use countersign_store::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::{PgConnection, SqliteConnection};

use crate::sql::{Param, Sql};

use crate::time;

/// Names of the tables one generation of the inline read models lives in; `None` leaves that
/// model alone (a rebuild of one model fills only its own tables).
#[derive(Clone, Copy, Debug)]
pub struct Tables {
    /// One row per action request.
    pub status: Option<&'static str>,
    /// One row per device.
    pub devices: Option<&'static str>,
    /// The outbox: written live only, never by a rebuild (it is a queue, not a view).
    pub outbox: Option<&'static str>,
}

/// The tables that serve reads.
pub const LIVE: Tables = Tables {
    status: Some("action_request_status"),
    devices: Some("devices"),
    outbox: Some("outbox"),
};

use action_request::STREAM_PREFIX as ACTION_REQUEST_PREFIX;
use device::STREAM_PREFIX as DEVICE_PREFIX;

/// The store hook that keeps the live inline read models in step with the log.
#[derive(Clone, Copy, Debug, Default)]
pub struct InlineProjections;

impl InlineProjections {
    async fn apply_all(conn: &mut dyn Sql, events: &[RecordedEvent]) -> Result<(), InlineError> {
        for event in events {
            apply(conn, LIVE, event).await?;
        }
        Ok(())
    }
}

impl SqliteInlineProjection for InlineProjections {
    fn apply<'c>(
        &'c self,
        conn: &'c mut SqliteConnection,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), InlineError>> {
        Box::pin(Self::apply_all(conn, events))
    }
}

impl PgInlineProjection for InlineProjections {
    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), InlineError>> {
        Box::pin(Self::apply_all(conn, events))
    }
}

/// Applies one recorded event to the read models in `tables`.
pub async fn apply(
    conn: &mut dyn Sql,
    tables: Tables,
    recorded: &RecordedEvent,
) -> Result<(), InlineError> {
    if recorded.stream_id.starts_with(ACTION_REQUEST_PREFIX) {
        apply_action_request(conn, tables, recorded).await
    } else if recorded.stream_id.starts_with(DEVICE_PREFIX) {
        apply_device(conn, tables, recorded).await
    } else {
        Ok(())
    }
}

fn decode_error(recorded: &RecordedEvent, error: impl std::fmt::Display) -> InlineError {
    InlineError::Rejected(format!(
        "event {} at position {} cannot be decoded: {error}",
        recorded.event_type, recorded.position
    ))
}

async fn apply_action_request(
    conn: &mut dyn Sql,
    tables: Tables,
    recorded: &RecordedEvent,
) -> Result<(), InlineError> {
    use action_request::Event;
    let event = Event::from_stored(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.data,
    )
    .map_err(|e| decode_error(recorded, e))?;
    let id = recorded
        .stream_id
        .trim_start_matches(ACTION_REQUEST_PREFIX)
        .to_owned();
    if let Some(status_table) = tables.status {
        let current: Option<ActionRequest> = match &event {
            Event::Created { .. } => None,
            _ => {
                let sql = format!("select view from {status_table} where id = $1");
                let rows = conn.fetch(&sql, &[id.as_str().into()]).await?;
                match rows
                    .into_iter()
                    .next()
                    .and_then(|row| row.into_iter().next())
                {
                    Some(Some(text)) => {
                        Some(serde_json::from_str(&text).map_err(|e| decode_error(recorded, e))?)
                    }
                    _ => None,
                }
            }
        };
        let Some(next) = action_request::evolve(current, &event) else {
            return Err(decode_error(recorded, "no Created event before it"));
        };
        upsert_status(conn, status_table, &next).await?;
        if let Some(outbox) = tables.outbox {
            crate::outbox::enqueue_callback(conn, outbox, recorded, &next).await?;
            match &event {
                Event::PushSent { device_id, .. } => {
                    crate::outbox::enqueue_push(conn, outbox, recorded, &next, *device_id).await?
                }
                Event::CodeSent {
                    channel,
                    destination,
                    ..
                } => {
                    let to = destination.as_deref();
                    crate::outbox::enqueue_code(conn, outbox, recorded, &next, *channel, to).await?
                }
                _ => {}
            }
        }
    }
    match (&event, tables.devices) {
        (
            Event::Confirmed {
                device_id: Some(device_id),
                at,
                ..
            },
            Some(devices),
        )
        | (
            Event::Rejected {
                device_id: Some(device_id),
                at,
                ..
            },
            Some(devices),
        ) => touch_device(conn, devices, *device_id, *at).await?,
        _ => {}
    }
    Ok(())
}

/// The text form of a unit enum (its serde name).
fn name_of(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn upsert_status(
    conn: &mut dyn Sql,
    table: &str,
    state: &ActionRequest,
) -> Result<(), InlineError> {
    let sql = format!(
        "insert into {table} (id, client_id, uid, action, status, version, expires_at, \
         token_expires_at, token_hash, idempotency_key, view, updated_at, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         on conflict (id) do update set status = excluded.status, version = excluded.version, \
         token_expires_at = excluded.token_expires_at, token_hash = excluded.token_hash, \
         view = excluded.view, updated_at = excluded.updated_at"
    );
    let params = [
        state.id.to_string().into(),
        state.client_id.to_string().into(),
        state.uid.as_str().into(),
        state.action.as_str().into(),
        name_of(state.status).into(),
        Param::Int(state.version as i64),
        time::format(state.expires_at).into(),
        state.token_expires_at.map(time::format).into(),
        state.token_hash.clone().into(),
        state.idempotency_key.clone().into(),
        serde_json::to_string(state)
            .expect("state serializes")
            .into(),
        time::format(state.updated_at).into(),
        time::format(state.created_at).into(),
    ];
    match conn.execute(&sql, &params).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(InlineError::Rejected(
            "the idempotency key is already used".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn touch_device(
    conn: &mut dyn Sql,
    table: &str,
    device_id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), InlineError> {
    let sql = format!("update {table} set last_used_at = $1 where id = $2");
    conn.execute(
        &sql,
        &[time::format(at).into(), device_id.to_string().into()],
    )
    .await?;
    Ok(())
}

async fn apply_device(
    conn: &mut dyn Sql,
    tables: Tables,
    recorded: &RecordedEvent,
) -> Result<(), InlineError> {
    use device::Event;
    let Some(table) = tables.devices else {
        return Ok(());
    };
    let event = Event::from_stored(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.data,
    )
    .map_err(|e| decode_error(recorded, e))?;
    let id = recorded.stream_id.trim_start_matches(DEVICE_PREFIX);
    let version = Param::Int(recorded.stream_version as i64);
    match event {
        Event::DeviceEnrolled(enrolled) => {
            let sql = format!(
                "insert into {table} (id, client_id, uid, kind, name, public_key, token_hash, \
                 status, enrolled_at, version) values ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9)"
            );
            let params = [
                enrolled.id.to_string().into(),
                enrolled.client_id.to_string().into(),
                enrolled.uid.as_str().into(),
                name_of(enrolled.kind).into(),
                enrolled.name.into(),
                enrolled.public_key.into(),
                enrolled.token_hash.into(),
                time::format(enrolled.enrolled_at).into(),
                version,
            ];
            conn.execute(&sql, &params).await?;
        }
        Event::DeviceRevoked { at } => {
            let sql = format!(
                "update {table} set status = 'revoked', revoked_at = $1, version = $2 where id = $3"
            );
            conn.execute(&sql, &[time::format(at).into(), version, id.into()])
                .await?;
        }
    }
    Ok(())
}
