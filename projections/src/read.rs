//! Queries over the inline read models: what the polling, inbox and device endpoints serve.

use chrono::{DateTime, Utc};
use countersign_domain::action_request::ActionRequest;
use serde::Serialize;
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::time;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row could not be decoded.
    #[error("corrupt read model row: {0}")]
    Corrupt(String),
}

/// A device as the device endpoints show it (no secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceRow {
    /// The device id.
    pub device_id: Uuid,
    /// The relying party it was enrolled by.
    #[serde(skip)]
    pub client_id: Uuid,
    /// The user it belongs to.
    pub uid: String,
    /// `push` (or later `ocra`).
    pub kind: String,
    /// A label the user recognises.
    pub name: String,
    /// The P-256 public key (base64url SPKI) of push devices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// `active` or `revoked`.
    pub status: String,
    /// When it was enrolled.
    #[serde(with = "crate::time::serde_micros")]
    pub enrolled_at: DateTime<Utc>,
    /// When it was revoked.
    #[serde(serialize_with = "crate::time::serde_micros::option")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it last confirmed or rejected a request.
    #[serde(serialize_with = "crate::time::serde_micros::option")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// The device stream's version.
    #[serde(skip)]
    pub version: u64,
}

impl DeviceRow {
    /// Whether the device may still act.
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

type DeviceTuple = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

const DEVICE_COLUMNS: &str = "id, client_id, uid, kind, name, public_key, status, enrolled_at, \
                              revoked_at, last_used_at, version";

fn device_from(row: DeviceTuple) -> Result<DeviceRow, ReadError> {
    let corrupt = |what: &str| ReadError::Corrupt(format!("device {what}"));
    let parse_time = |t: &str| time::parse(t).ok_or_else(|| corrupt("time"));
    Ok(DeviceRow {
        device_id: row.0.parse().map_err(|_| corrupt("id"))?,
        client_id: row.1.parse().map_err(|_| corrupt("client id"))?,
        uid: row.2,
        kind: row.3,
        name: row.4,
        public_key: row.5,
        status: row.6,
        enrolled_at: parse_time(&row.7)?,
        revoked_at: row.8.as_deref().map(parse_time).transpose()?,
        last_used_at: row.9.as_deref().map(parse_time).transpose()?,
        version: row.10 as u64,
    })
}

/// An entry of a device's inbox.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InboxItem {
    /// The action request's id.
    pub id: Uuid,
    /// Its action.
    pub action: String,
    /// What the user is shown.
    pub display: serde_json::Value,
    /// The dynamic-linking hash the signature covers.
    pub binding: String,
    /// The request's nonce, part of the signed message.
    pub nonce: String,
    /// The OCRA challenge, when there is one.
    pub challenge: Option<String>,
    /// When the request expires.
    #[serde(with = "crate::time::serde_micros")]
    pub expires_at: DateTime<Utc>,
    /// The request's version (for the inbox's ETag).
    #[serde(skip)]
    pub version: u64,
}

/// The read side over SQLite.
#[derive(Clone, Debug)]
pub struct ReadModels {
    pool: SqlitePool,
}

impl ReadModels {
    /// Reads through `pool`.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The pool read from.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn one_view(&self, sql: &str, key: &[&str]) -> Result<Option<ActionRequest>, ReadError> {
        let mut query = sqlx::query_as::<_, (String,)>(sql);
        for k in key {
            query = query.bind(*k);
        }
        match query.fetch_optional(&self.pool).await? {
            Some((view,)) => serde_json::from_str(&view)
                .map(Some)
                .map_err(|e| ReadError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    /// An action request's current state.
    pub async fn action_request(&self, id: Uuid) -> Result<Option<ActionRequest>, ReadError> {
        self.one_view(
            "select view from action_request_status where id = ?",
            &[&id.to_string()],
        )
        .await
    }

    /// The request a client made with an idempotency key.
    pub async fn by_idempotency_key(
        &self,
        client_id: Uuid,
        key: &str,
    ) -> Result<Option<ActionRequest>, ReadError> {
        self.one_view(
            "select view from action_request_status where client_id = ? and idempotency_key = ?",
            &[&client_id.to_string(), key],
        )
        .await
    }

    /// The request whose consumption token hashes to `token_hash`.
    pub async fn by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ActionRequest>, ReadError> {
        self.one_view(
            "select view from action_request_status where token_hash = ?",
            &[token_hash],
        )
        .await
    }

    /// Requests whose expiry (of the request, or of its token) has passed but is not yet recorded.
    pub async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ReadError> {
        let now = time::format(now);
        let rows: Vec<(String,)> = sqlx::query_as(
            "select id from action_request_status where (status = 'PENDING' and expires_at <= ?) \
             or (status = 'CONFIRMED' and token_expires_at <= ?) limit ?",
        )
        .bind(&now)
        .bind(&now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id,)| {
                id.parse()
                    .map_err(|_| ReadError::Corrupt("request id".into()))
            })
            .collect()
    }

    /// One device.
    pub async fn device(&self, id: Uuid) -> Result<Option<DeviceRow>, ReadError> {
        let row: Option<DeviceTuple> = sqlx::query_as(&format!(
            "select {DEVICE_COLUMNS} from devices where id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(device_from).transpose()
    }

    /// The device whose bearer token hashes to `token_hash`.
    pub async fn device_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeviceRow>, ReadError> {
        let row: Option<DeviceTuple> = sqlx::query_as(&format!(
            "select {DEVICE_COLUMNS} from devices where token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(device_from).transpose()
    }

    /// A user's devices as enrolled by one client, most recently used first.
    pub async fn devices_of_user(
        &self,
        client_id: Uuid,
        uid: &str,
    ) -> Result<Vec<DeviceRow>, ReadError> {
        let rows: Vec<DeviceTuple> = sqlx::query_as(&format!(
            "select {DEVICE_COLUMNS} from devices where client_id = ? and uid = ? \
             order by coalesce(last_used_at, enrolled_at) desc, id desc"
        ))
        .bind(client_id.to_string())
        .bind(uid)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(device_from).collect()
    }

    /// The pending, unexpired requests addressed to a device, oldest first.
    pub async fn inbox(
        &self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboxItem>, ReadError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "select s.view from action_request_devices d join action_request_status s \
             on s.id = d.request_id where d.device_id = ? and s.status = 'PENDING' \
             and s.expires_at > ? order by s.id",
        )
        .bind(device_id.to_string())
        .bind(time::format(now))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(view,)| {
                let state: ActionRequest =
                    serde_json::from_str(&view).map_err(|e| ReadError::Corrupt(e.to_string()))?;
                Ok(InboxItem {
                    id: state.id,
                    action: state.action.as_str().to_owned(),
                    display: serde_json::to_value(&state.display).expect("display serializes"),
                    binding: state.binding.as_str().to_owned(),
                    nonce: state.nonce.clone(),
                    challenge: state.challenge.clone(),
                    expires_at: state.expires_at,
                    version: state.version,
                })
            })
            .collect()
    }
}
