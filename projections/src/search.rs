//! The auditors' search over action requests: by user, client and status within a period of
//! creation, oldest first. Its model is an asynchronous projection, `audit_search`: one row per
//! request with the columns searched on, indexed for each filter.

use async_trait::async_trait;
use countersign_domain::action_request::{Event, Status};
use countersign_store::RecordedEvent;

use crate::follow::{action_request_event, ApplyError, AsyncProjection, Generation};
use crate::sql::{Param, Pool, Sql};
use crate::time;

/// The search model's projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditSearch;

/// Its name.
pub const NAME: &str = "audit_search";

#[async_trait]
impl AsyncProjection for AuditSearch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_search"]
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
        let table = generation.table("audit_search");
        let at = time::format(event.at());
        if let Event::Created(created) = &event {
            conn.execute(
                &format!(
                    "insert into {table} (id, client_id, uid, action, status, created_at, \
                     updated_at) values ($1, $2, $3, $4, $5, $6, $6)"
                ),
                &[
                    id.into(),
                    created.client_id.to_string().into(),
                    created.uid.as_str().into(),
                    created.action.as_str().into(),
                    Status::Pending.as_str().into(),
                    at.into(),
                ],
            )
            .await?;
            return Ok(());
        }
        // The status each event leaves the request in, as the domain's `evolve` sets it.
        let status = match event {
            Event::Confirmed { .. } => Some(Status::Confirmed),
            Event::Rejected { .. } => Some(Status::Rejected),
            Event::Expired { .. } => Some(Status::Expired),
            Event::TokenConsumed { .. } => Some(Status::Consumed),
            _ => None,
        };
        let changed = match status {
            Some(status) => {
                conn.execute(
                    &format!("update {table} set status = $1, updated_at = $2 where id = $3"),
                    &[status.as_str().into(), at.into(), id.into()],
                )
                .await?
            }
            None => {
                conn.execute(
                    &format!("update {table} set updated_at = $1 where id = $2"),
                    &[at.into(), id.into()],
                )
                .await?
            }
        };
        if changed != 1 {
            return Err(ApplyError::Event(format!(
                "request {id} has no Created event before this one"
            )));
        }
        Ok(())
    }
}

/// What to look for; every field is optional.
#[derive(Clone, Debug, Default)]
pub struct SearchFilter {
    /// The user whose approval was asked for.
    pub uid: Option<String>,
    /// The client (credential id) that made the request.
    pub client_id: Option<String>,
    /// The recorded status (`PENDING`, `CONFIRMED`, …).
    pub status: Option<String>,
    /// Created at or after this time (RFC 3339 with microseconds, UTC).
    pub from: Option<String>,
    /// Created before this time.
    pub to: Option<String>,
    /// Resume after this `(created_at, id)`, the last hit of the previous page.
    pub after: Option<(String, String)>,
    /// The most hits to return.
    pub limit: u32,
}

/// One request found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SearchHit {
    /// The request's id.
    pub id: String,
    /// The client that made it.
    pub client_id: String,
    /// The user asked.
    pub uid: String,
    /// The action to approve.
    pub action: String,
    /// Its recorded status.
    pub status: String,
    /// When it was created.
    pub created_at: String,
    /// When its last event happened.
    pub updated_at: String,
}

/// The requests matching `filter`, in creation order.
pub async fn search(pool: &Pool, filter: &SearchFilter) -> Result<Vec<SearchHit>, sqlx::Error> {
    let mut conditions = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut condition = |sql: &str, values: Vec<Param>| {
        let mut clause = sql.to_owned();
        for value in values {
            params.push(value);
            clause = clause.replacen('?', &format!("${}", params.len()), 1);
        }
        conditions.push(clause);
    };
    if let Some(uid) = &filter.uid {
        condition("uid = ?", vec![uid.as_str().into()]);
    }
    if let Some(client) = &filter.client_id {
        condition("client_id = ?", vec![client.as_str().into()]);
    }
    if let Some(status) = &filter.status {
        condition("status = ?", vec![status.as_str().into()]);
    }
    if let Some(from) = &filter.from {
        condition("created_at >= ?", vec![from.as_str().into()]);
    }
    if let Some(to) = &filter.to {
        condition("created_at < ?", vec![to.as_str().into()]);
    }
    if let Some((created_at, id)) = &filter.after {
        condition(
            "(created_at > ? or (created_at = ? and id > ?))",
            vec![
                created_at.as_str().into(),
                created_at.as_str().into(),
                id.as_str().into(),
            ],
        );
    }
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("where {}", conditions.join(" and "))
    };
    let sql = format!(
        "select id, client_id, uid, action, status, created_at, updated_at \
         from audit_search {filter_sql} order by created_at, id limit {}",
        filter.limit
    );
    let rows = pool.rows(&sql, &params).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut columns = row.into_iter().map(Option::unwrap_or_default);
            let mut next = || columns.next().unwrap_or_default();
            SearchHit {
                id: next(),
                client_id: next(),
                uid: next(),
                action: next(),
                status: next(),
                created_at: next(),
                updated_at: next(),
            }
        })
        .collect())
}
