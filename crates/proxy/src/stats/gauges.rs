//! The metrics counted at scrape time: pool gauges (clients and servers by state, size, the
//! longest wait), the running totals of [`PoolStats`] as counters, circuit breakers and
//! process state. Nothing here runs unless somebody encodes the registry.
//!
//! [`PoolStats`]: super::PoolStats

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Weak;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::metrics::PoolLabels;
use super::snapshot::{self, PoolSnapshot};
use super::PoolStats;
use crate::Shared;

/// Registered in the proxy's registry. Holds the proxy weakly: the registry lives inside
/// the proxy's shared state, and a strong reference would keep it alive for ever.
pub(crate) struct Gauges(pub Weak<Shared>);

impl std::fmt::Debug for Gauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gauges")
    }
}

/// The PoolStats totals exported as counters: (name without `_total`, help, field).
type TotalField = fn(&PoolStats) -> &AtomicU64;
const TOTALS: [(&str, &str, TotalField); 11] = [
    ("pool_transactions", "Transactions completed", |p| &p.xacts),
    ("pool_queries", "Queries completed", |p| &p.queries),
    (
        "pool_received_bytes",
        "Bytes from clients to servers",
        |p| &p.received,
    ),
    ("pool_sent_bytes", "Bytes from servers to clients", |p| {
        &p.sent
    }),
    (
        "pool_server_assignments",
        "Server connections handed to a client (one per transaction in transaction mode)",
        |p| &p.server_assignments,
    ),
    ("pool_client_parses", "Parse messages from clients", |p| {
        &p.client_parses
    }),
    (
        "pool_server_parses",
        "Named statements the proxy prepared on a server connection (transaction mode)",
        |p| &p.server_parses,
    ),
    ("pool_binds", "Bind messages from clients", |p| &p.binds),
    (
        "pool_prepared_hits",
        "Named statements the server connection already had (transaction mode)",
        |p| &p.prepared_hits,
    ),
    (
        "pool_prepared_misses",
        "Named statements the server connection lacked, prepared first (transaction mode)",
        |p| &p.prepared_misses,
    ),
    (
        "pool_prepared_evictions",
        "Statements closed on a server connection to stay within max_prepared_statements",
        |p| &p.prepared_evictions,
    ),
];

const CLIENT_STATES: [&str; 3] = ["idle", "waiting", "active"];
const SERVER_STATES: [&str; 4] = ["active", "idle", "tested", "login"];

/// One pool's gauges, summed over the pools that share a label set (beyond
/// `MAX_POOL_LABELS`, pools share `_other`).
#[derive(Default)]
struct Summed {
    clients: [u64; 3],
    servers: [u64; 4],
    size: u64,
    max_wait: f64,
}

impl Summed {
    fn add(&mut self, p: &PoolSnapshot) {
        let c = p.clients;
        let s = p.servers;
        for (sum, v) in self.clients.iter_mut().zip([c.idle, c.waiting, c.active]) {
            *sum += u64::from(v);
        }
        for (sum, v) in self
            .servers
            .iter_mut()
            .zip([s.active, s.idle, s.tested, s.login])
        {
            *sum += u64::from(v);
        }
        self.size += u64::from(p.size);
        self.max_wait = self.max_wait.max(p.max_wait.as_secs_f64());
    }
}

fn with_state<'a>(l: &'a PoolLabels, state: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("database", l.database.as_str()),
        ("user", l.user.as_str()),
        ("state", state),
    ]
}

fn gauge<'a>(
    enc: &'a mut DescriptorEncoder,
    name: &'a str,
    help: &str,
) -> Result<prometheus_client::encoding::MetricEncoder<'a>, std::fmt::Error> {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)
}

impl Collector for Gauges {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(shared) = self.0.upgrade() else {
            return Ok(());
        };
        let (pools, process) = snapshot::pools(&shared);
        let mut by_labels: BTreeMap<(String, String), (PoolLabels, Summed)> = BTreeMap::new();
        for p in &pools {
            let l = &p.stats.labels;
            by_labels
                .entry((l.database.clone(), l.user.clone()))
                .or_insert_with(|| (l.clone(), Summed::default()))
                .1
                .add(p);
        }

        let mut m = gauge(&mut enc, "pool_clients", "Clients of the pool by state")?;
        for (labels, s) in by_labels.values() {
            for (state, v) in CLIENT_STATES.iter().zip(s.clients) {
                ConstGauge::new(v as i64).encode(m.encode_family(&with_state(labels, state))?)?;
            }
        }
        let mut m = gauge(
            &mut enc,
            "pool_servers",
            "Server connections of the pool by state (login: being opened)",
        )?;
        for (labels, s) in by_labels.values() {
            for (state, v) in SERVER_STATES.iter().zip(s.servers) {
                ConstGauge::new(v as i64).encode(m.encode_family(&with_state(labels, state))?)?;
            }
        }
        let mut m = gauge(
            &mut enc,
            "pool_size",
            "Most server connections the pool may open",
        )?;
        for (labels, s) in by_labels.values() {
            ConstGauge::new(s.size as i64).encode(m.encode_family(labels)?)?;
        }
        let mut m = gauge(
            &mut enc,
            "pool_max_wait_seconds",
            "How long the longest-waiting client has waited for a server connection",
        )?;
        for (labels, s) in by_labels.values() {
            ConstGauge::new(s.max_wait).encode(m.encode_family(labels)?)?;
        }

        // Totals of every pool the proxy has had, so that counters never go back when an
        // idle pool is forgotten.
        let mut totals: BTreeMap<(String, String), (PoolLabels, [u64; TOTALS.len()])> =
            BTreeMap::new();
        for p in shared.stats.pools() {
            let l = &p.labels;
            let sums = &mut totals
                .entry((l.database.clone(), l.user.clone()))
                .or_insert_with(|| (l.clone(), [0; TOTALS.len()]))
                .1;
            for (sum, (_, _, field)) in sums.iter_mut().zip(TOTALS) {
                *sum += field(&p).load(Ordering::Relaxed);
            }
        }
        for (i, (name, help, _)) in TOTALS.iter().enumerate() {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (labels, sums) in totals.values() {
                ConstCounter::new(sums[i]).encode(m.encode_family(labels)?)?;
            }
        }

        let mut breakers: Vec<_> = shared
            .pools
            .breakers()
            .all()
            .into_iter()
            .map(|b| (b.backend().to_owned(), b.open_since().is_some()))
            .collect();
        breakers.sort();
        let mut m = gauge(
            &mut enc,
            "backend_circuit_open",
            "1 while the backend's circuit breaker is open (checkouts fail fast), else 0",
        )?;
        for (backend, open) in &breakers {
            ConstGauge::new(i64::from(*open))
                .encode(m.encode_family(&[("backend", backend.as_str())])?)?;
        }

        let mut m = gauge(
            &mut enc,
            "clients",
            "Client connections by state (login: not logged in yet)",
        )?;
        let states = [
            ("login", process.login),
            ("idle", process.idle),
            ("waiting", process.waiting),
            ("active", process.active),
        ];
        for (state, v) in states {
            ConstGauge::new(i64::from(v)).encode(m.encode_family(&[("state", state)])?)?;
        }
        let paused = *shared.paused.borrow();
        ConstGauge::new(i64::from(paused)).encode(gauge(
            &mut enc,
            "paused",
            "1 while the proxy is paused (PAUSE, SIGUSR1), else 0",
        )?)?;
        let stopping = shared.shutting_down.load(Ordering::Relaxed);
        ConstGauge::new(i64::from(stopping)).encode(gauge(
            &mut enc,
            "shutting_down",
            "1 once the proxy has stopped accepting clients, else 0",
        )?)?;
        let started = shared.stats.started;
        let started = started
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        ConstGauge::new(started).encode(gauge(
            &mut enc,
            "start_time_seconds",
            "When the proxy started, in seconds since the Unix epoch",
        )?)?;
        // A gauge of 1 rather than an OpenMetrics info: the Prometheus text format (and
        // promtool) has no info type.
        let mut m = gauge(&mut enc, "build_info", "The dbwarden version; always 1")?;
        ConstGauge::new(1).encode(m.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?)?;
        Ok(())
    }
}
