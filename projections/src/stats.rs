//! Per-client daily statistics, an asynchronous projection: requests created each day (UTC) and
//! how they ended (confirmed, rejected, expired, consumed), and the median time users took to
//! decide.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use countersign_domain::action_request::Event;
use countersign_store::RecordedEvent;
use serde::Serialize;

use crate::follow::{action_request_event, ApplyError, AsyncProjection, Generation};
use crate::sql::{Param, Pool, Sql};
use crate::time;

/// The daily statistics projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct DailyStats;

/// Its name.
pub const NAME: &str = "daily_stats";

/// One client's figures for one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayStats {
    /// The day, `YYYY-MM-DD` (UTC), the requests were created.
    pub day: String,
    /// Requests created.
    pub requests: u64,
    /// Of those, confirmed.
    pub confirmed: u64,
    /// Rejected (declined, cancelled or locked).
    pub rejected: u64,
    /// Expired.
    pub expired: u64,
    /// Whose token was consumed.
    pub consumed: u64,
    /// The median time from creation to the user's decision, in milliseconds.
    pub median_decision_ms: Option<u64>,
}

fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Adds one to `column` of the request's client and day.
async fn count(
    conn: &mut dyn Sql,
    generation: Generation,
    request_id: &str,
    column: &str,
) -> Result<Option<(String, String, String)>, ApplyError> {
    let requests = generation.table("stats_requests");
    let rows = conn
        .fetch(
            &format!("select client_id, day, created_at from {requests} where request_id = $1"),
            &[request_id.into()],
        )
        .await?;
    let Some(row) = rows.into_iter().next() else {
        return Err(ApplyError::Event(format!(
            "request {request_id} has no Created event before this one"
        )));
    };
    let mut columns = row.into_iter().map(Option::unwrap_or_default);
    let (client, day, created_at) = (
        columns.next().unwrap_or_default(),
        columns.next().unwrap_or_default(),
        columns.next().unwrap_or_default(),
    );
    let stats = generation.table("client_daily_stats");
    let sql =
        format!("update {stats} set {column} = {column} + 1 where client_id = $1 and day = $2");
    conn.execute(&sql, &[client.as_str().into(), day.as_str().into()])
        .await?;
    Ok(Some((client, day, created_at)))
}

/// Records how long the request waited for its user.
async fn decided(
    conn: &mut dyn Sql,
    generation: Generation,
    request_id: &str,
    found: Option<(String, String, String)>,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let Some((client, day, created_at)) = found else {
        return Ok(());
    };
    let created = time::parse(&created_at)
        .ok_or_else(|| ApplyError::Event(format!("bad creation time {created_at:?}")))?;
    let millis = (at - created).num_milliseconds().max(0);
    let times = generation.table("decision_times");
    conn.execute(
        &format!(
            "insert into {times} (request_id, client_id, day, millis) \
             values ($1, $2, $3, $4) on conflict (request_id) do nothing"
        ),
        &[
            request_id.into(),
            client.into(),
            day.into(),
            Param::Int(millis),
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl AsyncProjection for DailyStats {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["client_daily_stats", "stats_requests", "decision_times"]
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
        match event {
            Event::Created(created) => {
                let client = created.client_id.to_string();
                let day = day_of(created.created_at);
                let (requests, stats) = (
                    generation.table("stats_requests"),
                    generation.table("client_daily_stats"),
                );
                conn.execute(
                    &format!(
                        "insert into {requests} (request_id, client_id, day, created_at) \
                         values ($1, $2, $3, $4)"
                    ),
                    &[
                        id.into(),
                        client.as_str().into(),
                        day.as_str().into(),
                        time::format(created.created_at).into(),
                    ],
                )
                .await?;
                conn.execute(
                    &format!(
                        "insert into {stats} (client_id, day, requests) values ($1, $2, 1) \
                         on conflict (client_id, day) do update set requests = {stats}.requests + 1"
                    ),
                    &[client.as_str().into(), day.as_str().into()],
                )
                .await?;
            }
            Event::Confirmed { at, .. } => {
                let found = count(conn, generation, id, "confirmed").await?;
                decided(conn, generation, id, found, at).await?;
            }
            Event::Rejected { at, device_id, .. } => {
                let found = count(conn, generation, id, "rejected").await?;
                if device_id.is_some() {
                    decided(conn, generation, id, found, at).await?;
                }
            }
            Event::Expired { .. } => {
                count(conn, generation, id, "expired").await?;
            }
            Event::TokenConsumed { .. } => {
                count(conn, generation, id, "consumed").await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A client's statistics for the days from `from` to `to` (inclusive, `YYYY-MM-DD`).
pub async fn daily(
    pool: &Pool,
    client_id: &str,
    from: &str,
    to: &str,
) -> Result<Vec<DayStats>, sqlx::Error> {
    let rows = pool
        .rows(
            "select day, cast(requests as text), cast(confirmed as text), \
             cast(rejected as text), cast(expired as text), cast(consumed as text) \
             from client_daily_stats where client_id = $1 and day >= $2 and day <= $3 \
             order by day",
            &[client_id.into(), from.into(), to.into()],
        )
        .await?;
    let times = pool
        .rows(
            "select day, cast(millis as text) from decision_times \
             where client_id = $1 and day >= $2 and day <= $3 order by day, millis",
            &[client_id.into(), from.into(), to.into()],
        )
        .await?;
    let mut millis_by_day: std::collections::HashMap<String, Vec<u64>> = Default::default();
    for row in times {
        let mut columns = row.into_iter().map(Option::unwrap_or_default);
        let day = columns.next().unwrap_or_default();
        if let Some(millis) = columns.next().and_then(|m| m.parse().ok()) {
            millis_by_day.entry(day).or_default().push(millis);
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut columns = row.into_iter().map(Option::unwrap_or_default);
        let day = columns.next().unwrap_or_default();
        let mut number = || columns.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let (requests, confirmed, rejected, expired, consumed) =
            (number(), number(), number(), number(), number());
        let median_decision_ms = millis_by_day.get(&day).and_then(|m| median(m));
        out.push(DayStats {
            day,
            requests,
            confirmed,
            rejected,
            expired,
            consumed,
            median_decision_ms,
        });
    }
    Ok(out)
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[u64]) -> Option<u64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_takes_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7));
        assert_eq!(median(&[1, 3, 100]), Some(3));
        assert_eq!(median(&[1, 3, 5, 100]), Some(4));
    }
}
