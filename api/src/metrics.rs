//! Metrics in the Prometheus exposition format (OpenMetrics text): HTTP latency by route,
//! commands by type and outcome, group-commit batch sizes and commit latency, the log's head,
//! projection lag and the outbox backlog. Counters and histograms are kept as the server runs;
//! the gauges are read from the database when scraped.

use std::time::Duration;

use countersign_projections::database::Database;
use countersign_projections::{outbox, rebuild};
use countersign_store::CommitObserver;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A set of labels.
type Labels = Vec<(&'static str, String)>;

/// Seconds, from 0.1 ms to about 26 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 18)
}

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    http: Family<Labels, Histogram>,
    commands: Family<Labels, Counter>,
    batch_appends: Histogram,
    commit_seconds: Histogram,
    head: Gauge,
    projection_lag: Family<Labels, Gauge>,
    outbox_backlog: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered and at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("countersign");
        let http =
            Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests by method, route and status, with their latency",
            http.clone(),
        );
        let commands = Family::<Labels, Counter>::default();
        registry.register(
            "commands",
            "Commands run, by command and outcome (ok, refused, conflict, error)",
            commands.clone(),
        );
        let batch_appends = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "group_commit_appends",
            "Appends committed together in one transaction",
            batch_appends.clone(),
        );
        let commit_seconds = Histogram::new(latency_buckets());
        registry.register(
            "commit_duration_seconds",
            "Time from the start of an append transaction to its commit",
            commit_seconds.clone(),
        );
        let head = Gauge::default();
        registry.register(
            "log_head_position",
            "The position of the last event",
            head.clone(),
        );
        let projection_lag = Family::<Labels, Gauge>::default();
        registry.register(
            "projection_lag_events",
            "Events committed but not yet applied, by projection",
            projection_lag.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog",
            "Callbacks, push notifications and codes not yet delivered",
            outbox_backlog.clone(),
        );
        Self {
            registry,
            http,
            commands,
            batch_appends,
            commit_seconds,
            head,
            projection_lag,
            outbox_backlog,
        }
    }

    /// Records one answered HTTP request.
    pub fn http_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        let labels = vec![
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        self.http
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
    }

    /// Records one command and how it ended.
    pub fn command(&self, command: &str, outcome: &str) {
        let labels = vec![
            ("command", command.to_owned()),
            ("outcome", outcome.to_owned()),
        ];
        self.commands.get_or_create(&labels).inc();
    }

    /// Reads the gauges from the database, then renders everything.
    pub async fn render(&self, db: &Database) -> anyhow::Result<String> {
        let head = db.events().head().await?;
        self.head.set(i64::try_from(head).unwrap_or(i64::MAX));
        for projection in rebuild::positions(db).await? {
            let lag = projection.head.saturating_sub(projection.checkpoint);
            self.projection_lag
                .get_or_create(&vec![("projection", projection.name.to_owned())])
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
        let backlog = outbox::backlog(&db.pool()).await?;
        self.outbox_backlog
            .set(i64::try_from(backlog).unwrap_or(i64::MAX));
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl CommitObserver for Metrics {
    fn committed(&self, appends: usize, _events: usize, latency: Duration) {
        self.batch_appends.observe(appends as f64);
        self.commit_seconds.observe(latency.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_appear_with_their_labels() {
        let metrics = Metrics::new();
        metrics.http_request(
            "GET",
            "/v1/action-requests/{id}",
            200,
            Duration::from_millis(3),
        );
        metrics.command("confirm", "ok");
        metrics.committed(4, 8, Duration::from_millis(2));
        let mut text = String::new();
        encode(&mut text, &metrics.registry).unwrap();
        assert!(text.contains(
            r#"countersign_http_request_duration_seconds_count{method="GET",route="/v1/action-requests/{id}",status="200"} 1"#
        ), "{text}");
        assert!(text.contains(r#"countersign_commands_total{command="confirm",outcome="ok"} 1"#));
        assert!(
            text.contains("countersign_group_commit_appends_sum 4.0"),
            "{text}"
        );
        assert!(text.contains("countersign_commit_duration_seconds_count 1"));
    }
}
