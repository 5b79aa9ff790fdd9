//! Prometheus metrics served at `/metrics`.

use nudge_app::nodes::Role;
use nudge_core::CallKind;
use nudge_store::IngestStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabel {
    pub name: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    pub role: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    messages: Family<TypeLabel, Counter>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    commits: Counter,
    committed: Counter,
    duplicates: Counter,
    failed_commits: Counter,
    singleton_held: Family<NameLabel, Gauge>,
    roles: Family<RoleLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("nudge");
        let messages = Family::<TypeLabel, Counter>::default();
        registry.register(
            "ingest_messages_received",
            "Valid tracking messages received, by type",
            messages.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        let commits = Counter::default();
        registry.register("ingest_commits", "Group commits of tracking messages", commits.clone());
        let committed = Counter::default();
        registry.register(
            "ingest_messages_committed",
            "Messages committed durably (stored or duplicate)",
            committed.clone(),
        );
        let duplicates = Counter::default();
        registry.register(
            "ingest_duplicates",
            "Messages ignored because their messageId was already stored",
            duplicates.clone(),
        );
        let failed_commits = Counter::default();
        registry.register(
            "ingest_failed_commits",
            "Group commits that failed (nothing stored)",
            failed_commits.clone(),
        );
        let singleton_held = Family::<NameLabel, Gauge>::default();
        registry.register(
            "singleton_held",
            "1 while this node holds the singleton lease of that name (docs/operations.md, Roles)",
            singleton_held.clone(),
        );
        let roles = Family::<RoleLabel, Gauge>::default();
        registry.register("node_role", "1 for each role this node runs", roles.clone());
        Self {
            registry,
            messages,
            requests,
            latency,
            commits,
            committed,
            duplicates,
            failed_commits,
            singleton_held,
            roles,
        }
    }

    pub fn ingested(&self, kind: CallKind) {
        self.messages.get_or_create(&TypeLabel { r#type: kind.as_str() }).inc();
    }

    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels {
            route: route.to_string(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// Renders the text exposition format, with the ingestor's counters brought up to date.
    pub fn render(&self, ingest: &IngestStats, node: &crate::ops::Node) -> String {
        let sync = |c: &Counter, v: u64| {
            let cur = c.get();
            if v > cur {
                c.inc_by(v - cur);
            }
        };
        sync(&self.commits, ingest.commits.load(Ordering::Relaxed));
        sync(&self.committed, ingest.messages.load(Ordering::Relaxed));
        sync(&self.duplicates, ingest.duplicates.load(Ordering::Relaxed));
        sync(&self.failed_commits, ingest.failed_commits.load(Ordering::Relaxed));
        for s in &node.singletons {
            self.singleton_held
                .get_or_create(&NameLabel { name: s.name() })
                .set(i64::from(s.held()));
        }
        for role in Role::ALL {
            self.roles
                .get_or_create(&RoleLabel { role: role.as_str() })
                .set(i64::from(node.roles.has(role)));
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
