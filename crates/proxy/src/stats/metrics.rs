//! The Prometheus families that are observed as things happen. Counters that the admin
//! console also shows (transactions, bytes, ...) live as plain atomics in [`PoolStats`]
//! and gauges are read from the pools at scrape time, so the hot path touches as little as
//! possible.
//!
//! [`PoolStats`]: super::PoolStats

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Pools beyond this many get the label `_other`: wildcard databases must not grow the
/// number of series without bound.
pub const MAX_POOL_LABELS: usize = 200;

/// Latency buckets from 50 µs (a pooled `SELECT 1`) to 30 s, in seconds.
pub const DURATION_BUCKETS: [f64; 18] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub database: String,
    pub user: String,
}

/// The exemplar attached to latency observations: the W3C trace id the client sent.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub database: String,
    pub user: String,
    /// The SQLSTATE class (first two characters).
    pub class: String,
    /// The code itself for the ones worth alerting on (see [`notable`]), else `other`.
    pub code: &'static str,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Phase {
    Dns,
    Tcp,
    Tls,
    Auth,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: Phase,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum TimeoutKind {
    Query,
    Transaction,
    Deadline,
    ClientIdle,
    IdleTransaction,
    QueryWait,
    ClientLogin,
    ServerConnect,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Dns => "dns",
            Phase::Tcp => "tcp",
            Phase::Tls => "tls",
            Phase::Auth => "auth",
        }
    }
}

impl TimeoutKind {
    pub const ALL: [TimeoutKind; 8] = [
        TimeoutKind::Query,
        TimeoutKind::Transaction,
        TimeoutKind::Deadline,
        TimeoutKind::ClientIdle,
        TimeoutKind::IdleTransaction,
        TimeoutKind::QueryWait,
        TimeoutKind::ClientLogin,
        TimeoutKind::ServerConnect,
    ];

    /// The label value, named after the setting that fired.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutKind::Query => "query_timeout",
            TimeoutKind::Transaction => "transaction_timeout",
            TimeoutKind::Deadline => "client_deadline",
            TimeoutKind::ClientIdle => "client_idle_timeout",
            TimeoutKind::IdleTransaction => "idle_transaction_timeout",
            TimeoutKind::QueryWait => "query_wait_timeout",
            TimeoutKind::ClientLogin => "client_login_timeout",
            TimeoutKind::ServerConnect => "server_connect_timeout",
        }
    }
}

// Lower-case label values (the derive would write the variant names as they are).
impl EncodeLabelValue for Phase {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

impl EncodeLabelValue for TimeoutKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TimeoutLabels {
    pub kind: TimeoutKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// The SQLSTATEs that get their own series: they mean something specific to an operator.
pub fn notable(code: &str) -> &'static str {
    match code {
        "40001" => "40001", // serialization_failure: the application must retry
        "40P01" => "40P01", // deadlock_detected
        "57014" => "57014", // query_canceled: a timeout or a cancel
        "53300" => "53300", // too_many_connections
        "08006" => "08006", // connection_failure
        "28P01" => "28P01", // invalid_password
        _ => "other",
    }
}

pub struct Metrics {
    pub checkout_wait: Family<PoolLabels, Histogram>,
    pub query_duration: Family<PoolLabels, HistogramWithExemplars<TraceExemplar>>,
    pub transaction_duration: Family<PoolLabels, HistogramWithExemplars<TraceExemplar>>,
    pub errors: Family<ErrorLabels, Counter>,
    pub connect_phase: Family<PhaseLabels, Histogram>,
    pub timeouts: Family<TimeoutLabels, Counter>,
    pub pins: Family<ReasonLabels, Counter>,
    pub reloads: Family<ResultLabels, Counter>,
}

fn durations() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

fn durations_with_exemplars() -> HistogramWithExemplars<TraceExemplar> {
    HistogramWithExemplars::new(DURATION_BUCKETS.iter().copied())
}

impl Metrics {
    /// The families, registered in `registry` under the `dbwarden` prefix.
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            checkout_wait: Family::new_with_constructor(durations),
            query_duration: Family::new_with_constructor(durations_with_exemplars),
            transaction_duration: Family::new_with_constructor(durations_with_exemplars),
            errors: Family::default(),
            connect_phase: Family::new_with_constructor(durations),
            timeouts: Family::default(),
            pins: Family::default(),
            reloads: Family::default(),
        };
        registry.register(
            "pool_checkout_wait_seconds",
            "Time a transaction (session, in session mode) waited for a server connection",
            m.checkout_wait.clone(),
        );
        registry.register(
            "pool_query_duration_seconds",
            "Time from a query (or Sync) reaching the proxy to its ReadyForQuery",
            m.query_duration.clone(),
        );
        registry.register(
            "pool_transaction_duration_seconds",
            "Time from a transaction's first message to the ReadyForQuery that ends it",
            m.transaction_duration.clone(),
        );
        registry.register(
            "errors",
            "Errors sent to clients, by SQLSTATE class and notable code",
            m.errors.clone(),
        );
        registry.register(
            "server_connect_phase_seconds",
            "Duration of each phase of opening a server connection",
            m.connect_phase.clone(),
        );
        registry.register(
            "timeouts",
            "Timeouts that fired, by kind",
            m.timeouts.clone(),
        );
        registry.register(
            "pins",
            "Clients pinned to their server connection in transaction mode, by reason",
            m.pins.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads, by result",
            m.reloads.clone(),
        );
        // Known label values start at 0 rather than appearing with their first event, so
        // that rate() and alerts see the first one too.
        for kind in TimeoutKind::ALL {
            drop(m.timeouts.get_or_create(&TimeoutLabels { kind }));
        }
        for result in ["ok", "failed"] {
            drop(m.reloads.get_or_create(&ResultLabels { result }));
        }
        m
    }

    pub fn timeout(&self, kind: TimeoutKind) {
        self.timeouts.get_or_create(&TimeoutLabels { kind }).inc();
    }

    pub fn pinned(&self, reason: &'static str) {
        self.pins.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn connect_phase(&self, phase: Phase, took: std::time::Duration) {
        self.connect_phase
            .get_or_create(&PhaseLabels { phase })
            .observe(took.as_secs_f64());
    }
}
