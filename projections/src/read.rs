//! Queries over the inline read models: what the polling, inbox and device endpoints serve.

use chrono::{DateTime, Utc};
use countersign_domain::action_request::ActionRequest;
use serde::Serialize;
use uuid::Uuid;

use crate::sql::{Param, Pool, TextRows};
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

const DEVICE_COLUMNS: &str = "id, client_id, uid, kind, name, public_key, status, enrolled_at, \
                              revoked_at, last_used_at, cast(version as text)";

fn device_from(row: Vec<Option<String>>) -> Result<DeviceRow, ReadError> {
    let corrupt = |what: &str| ReadError::Corrupt(format!("device {what}"));
    let mut columns = row.into_iter();
    let mut next = || columns.next().flatten();
    let mut text = |what: &str| next().ok_or_else(|| corrupt(what));
    let parse_time = |t: &str| time::parse(t).ok_or_else(|| corrupt("time"));
    let device_id = text("id")?.parse().map_err(|_| corrupt("id"))?;
    let client_id = text("client id")?
        .parse()
        .map_err(|_| corrupt("client id"))?;
    let (uid, kind, name) = (text("uid")?, text("kind")?, text("name")?);
    let public_key = next();
    let status = next().ok_or_else(|| corrupt("status"))?;
    let enrolled_at = parse_time(&next().ok_or_else(|| corrupt("enrolment time"))?)?;
    let revoked_at = next().as_deref().map(parse_time).transpose()?;
    let last_used_at = next().as_deref().map(parse_time).transpose()?;
    let version = next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt("version"))?;
    Ok(DeviceRow {
        device_id,
        client_id,
        uid,
        kind,
        name,
        public_key,
        status,
        enrolled_at,
        revoked_at,
        last_used_at,
        version,
    })
}

/// The first column of every row.
fn first_column(rows: TextRows) -> impl Iterator<Item = String> {
    rows.into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
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

/// The read side, over whichever backend the server runs on.
#[derive(Clone, Debug)]
pub struct ReadModels {
    pool: Pool,
}

impl ReadModels {
    /// Reads through `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// The pool read from.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn one_view(
        &self,
        condition: &str,
        params: &[Param],
    ) -> Result<Option<ActionRequest>, ReadError> {
        let sql = format!("select view from action_request_status where {condition}");
        match first_column(self.pool.rows(&sql, params).await?).next() {
            Some(view) => serde_json::from_str(&view)
                .map(Some)
                .map_err(|e| ReadError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    /// An action request's current state.
    pub async fn action_request(&self, id: Uuid) -> Result<Option<ActionRequest>, ReadError> {
        self.one_view("id = $1", &[id.to_string().into()]).await
    }

    /// The request a client made with an idempotency key.
    pub async fn by_idempotency_key(
        &self,
        client_id: Uuid,
        key: &str,
    ) -> Result<Option<ActionRequest>, ReadError> {
        let params = [client_id.to_string().into(), key.into()];
        self.one_view("client_id = $1 and idempotency_key = $2", &params)
            .await
    }

    /// The request whose consumption token hashes to `token_hash`.
    pub async fn by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ActionRequest>, ReadError> {
        self.one_view("token_hash = $1", &[token_hash.into()]).await
    }

    /// Up to `limit` requests whose expiry (of the request, or of its token) has passed but is
    /// not yet recorded, the longest overdue first.
    ///
    /// Each kind of deadline is read in order from its own partial index, which holds only the
    /// rows that can still expire; reading an index in order (rather than collecting matches
    /// from it in a bitmap) lets PostgreSQL mark the entries of past row versions it passes, so
    /// later sweeps skip them instead of visiting their rows again.
    pub async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ReadError> {
        let rows = self
            .pool
            .rows(
                "select id, due from (select id, expires_at as due from action_request_status \
                 where status = 'PENDING' and expires_at <= $1 order by expires_at limit $2) \
                 as requests \
                 union all \
                 select id, due from (select id, token_expires_at as due \
                 from action_request_status where status = 'CONFIRMED' \
                 and token_expires_at <= $1 order by token_expires_at limit $2) as tokens \
                 order by due limit $2",
                &[time::format(now).into(), Param::Int(i64::from(limit))],
            )
            .await?;
        first_column(rows)
            .map(|id| {
                id.parse()
                    .map_err(|_| ReadError::Corrupt("request id".into()))
            })
            .collect()
    }

    async fn devices(
        &self,
        condition: &str,
        params: &[Param],
    ) -> Result<Vec<DeviceRow>, ReadError> {
        let sql = format!("select {DEVICE_COLUMNS} from devices where {condition}");
        let rows = self.pool.rows(&sql, params).await?;
        rows.into_iter().map(device_from).collect()
    }

    /// One device.
    pub async fn device(&self, id: Uuid) -> Result<Option<DeviceRow>, ReadError> {
        let found = self.devices("id = $1", &[id.to_string().into()]).await?;
        Ok(found.into_iter().next())
    }

    /// The device whose bearer token hashes to `token_hash`.
    pub async fn device_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeviceRow>, ReadError> {
        let found = self
            .devices("token_hash = $1", &[token_hash.into()])
            .await?;
        Ok(found.into_iter().next())
    }

    /// A user's devices as enrolled by one client, most recently used first.
    pub async fn devices_of_user(
        &self,
        client_id: Uuid,
        uid: &str,
    ) -> Result<Vec<DeviceRow>, ReadError> {
        self.devices(
            "client_id = $1 and uid = $2 order by coalesce(last_used_at, enrolled_at) desc, id desc",
            &[client_id.to_string().into(), uid.into()],
        )
        .await
    }

    /// The pending, unexpired requests addressed to a device, oldest first (from the
    /// asynchronous inbox model: see [`crate::inbox`]).
    pub async fn inbox(
        &self,
        device_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboxItem>, ReadError> {
        crate::inbox::inbox(&self.pool, device_id, now).await
    }
}
