//! Tunable thresholds. Keys are `<check id>.<name>`, so `doctor explain ID` can show
//! the ones that belong to a check and `--threshold KEY=VALUE` can change any of them.

use std::collections::BTreeMap;

use crate::error::DoctorError;

/// (key, default, meaning). The unit is in the key's suffix.
pub const DEFAULTS: &[(&str, f64, &str)] = &[
    (
        "probe.dns.warn_ms",
        100.0,
        "DNS lookup slower than this is a warning",
    ),
    (
        "probe.tcp.warn_ms",
        100.0,
        "TCP connect slower than this is a warning",
    ),
    (
        "probe.tls.warn_ms",
        250.0,
        "TLS handshake slower than this is a warning",
    ),
    (
        "probe.tls.expiry_warn_days",
        30.0,
        "certificate expiring within this many days: warning",
    ),
    (
        "probe.tls.expiry_crit_days",
        7.0,
        "certificate expiring within this many days: critical",
    ),
    (
        "probe.auth.warn_ms",
        250.0,
        "startup and authentication slower than this is a warning",
    ),
    (
        "probe.query.warn_ms",
        100.0,
        "first query slower than this is a warning",
    ),
    (
        "probe.round_trips.p99_warn_ms",
        50.0,
        "p99 of trivial round trips above this is a warning",
    ),
    (
        "pg.connections.warn_pct",
        80.0,
        "share of usable connection slots in use: warning",
    ),
    (
        "pg.connections.crit_pct",
        95.0,
        "share of usable connection slots in use: critical",
    ),
    (
        "pg.idle_in_transaction.warn_s",
        60.0,
        "idle in transaction longer than this: warning",
    ),
    (
        "pg.idle_in_transaction.crit_s",
        600.0,
        "idle in transaction longer than this: critical",
    ),
    (
        "pg.long_transactions.warn_s",
        300.0,
        "transaction or snapshot older than this: warning",
    ),
    (
        "pg.long_transactions.crit_s",
        3600.0,
        "transaction or snapshot older than this: critical",
    ),
    (
        "pg.lock_chains.warn_s",
        5.0,
        "a session blocked longer than this: warning",
    ),
    (
        "pg.lock_chains.crit_s",
        60.0,
        "a session blocked longer than this: critical",
    ),
    (
        "pg.prepared_xacts.warn_s",
        300.0,
        "prepared transaction older than this: warning",
    ),
    (
        "pg.prepared_xacts.crit_s",
        3600.0,
        "prepared transaction older than this: critical",
    ),
    (
        "pg.sequence_exhaustion.warn_pct",
        75.0,
        "sequence or fed column this full: warning",
    ),
    (
        "pg.sequence_exhaustion.crit_pct",
        90.0,
        "sequence or fed column this full: critical",
    ),
    (
        "pg.jsonb_precision.sample_rows",
        1000.0,
        "rows sampled per jsonb column",
    ),
    (
        "pg.jsonb_precision.max_columns",
        20.0,
        "jsonb columns examined at most",
    ),
    (
        "pg.timestamp_without_tz.max_columns",
        200.0,
        "columns listed at most",
    ),
    (
        "pg.tcp_keepalives.warn_idle_s",
        600.0,
        "effective keepalive idle time above this: warning",
    ),
    (
        "pg.wraparound.warn_age",
        500_000_000.0,
        "xid/mxid age above this: warning",
    ),
    (
        "pg.wraparound.crit_age",
        1_500_000_000.0,
        "xid/mxid age above this: critical",
    ),
    (
        "pg.replication.slot_warn_mb",
        1024.0,
        "inactive slot retaining this much WAL: warning",
    ),
    (
        "pg.replication.slot_crit_mb",
        16384.0,
        "inactive slot retaining this much WAL: critical",
    ),
    (
        "pg.replication.lag_warn_s",
        30.0,
        "replica replay lag above this: warning",
    ),
    (
        "pg.replication.lag_crit_s",
        300.0,
        "replica replay lag above this: critical",
    ),
    (
        "pg.deadlocks.warn_count",
        100.0,
        "deadlocks since stats reset above this: warning",
    ),
    (
        "pg.deadlocks.rollback_warn_ratio",
        0.2,
        "rollbacks / transactions above this: warning",
    ),
    (
        "pg.cache_hit_ratio.warn_ratio",
        0.95,
        "buffer hit ratio below this: warning",
    ),
    (
        "pg.cache_hit_ratio.min_reads",
        100_000.0,
        "blocks accessed before the ratio means anything",
    ),
    (
        "mysql.connections.warn_pct",
        80.0,
        "connections in use (or peak) vs max_connections: warning",
    ),
    (
        "mysql.connections.crit_pct",
        95.0,
        "connections in use vs max_connections: critical",
    ),
    (
        "mysql.aborted.warn_ratio",
        0.1,
        "aborted connects or clients per connection: warning",
    ),
    (
        "mysql.aborted.min_connections",
        100.0,
        "connections before the ratios mean anything",
    ),
    (
        "redis.latency.p99_warn_ms",
        10.0,
        "PING p99 above this: warning",
    ),
    (
        "redis.maxmemory.used_warn_pct",
        90.0,
        "used_memory vs maxmemory above this: warning",
    ),
    (
        "redis.evictions.warn_count",
        10_000.0,
        "evicted keys since start above this: warning",
    ),
    (
        "redis.hit_ratio.warn_ratio",
        0.8,
        "keyspace hit ratio below this: warning",
    ),
    (
        "redis.hit_ratio.min_lookups",
        100.0,
        "lookups before the ratio means anything",
    ),
    (
        "redis.slowlog.warn_ms",
        100.0,
        "a slow log entry longer than this: warning",
    ),
    (
        "redis.big_keys.warn_mb",
        10.0,
        "a key using more memory than this: warning",
    ),
    (
        "redis.big_keys.sample_keys",
        1000.0,
        "keys sampled by SCAN at most",
    ),
    (
        "redis.clients.blocked_warn",
        50.0,
        "blocked clients above this: warning",
    ),
    (
        "redis.fragmentation.warn_ratio",
        1.5,
        "RSS / used memory above this: warning",
    ),
    (
        "redis.fragmentation.min_rss_mb",
        100.0,
        "RSS below which fragmentation is not judged",
    ),
];

/// Thresholds in effect: the defaults with the user's overrides.
#[derive(Debug, Clone, Default)]
pub struct Thresholds {
    overrides: BTreeMap<String, f64>,
}

impl Thresholds {
    /// Sets one threshold from `KEY=VALUE`, rejecting unknown keys so a typo is not
    /// silently ignored.
    pub fn set_from_str(&mut self, kv: &str) -> Result<(), DoctorError> {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| DoctorError::BadThreshold(kv.to_string()))?;
        let k = k.trim();
        if !DEFAULTS.iter().any(|(d, _, _)| *d == k) {
            return Err(DoctorError::UnknownThreshold(k.to_string()));
        }
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| DoctorError::BadThreshold(kv.to_string()))?;
        self.overrides.insert(k.to_string(), v);
        Ok(())
    }

    pub fn set(&mut self, key: &str, value: f64) -> Result<(), DoctorError> {
        self.set_from_str(&format!("{key}={value}"))
    }

    pub fn get(&self, key: &str) -> f64 {
        if let Some(v) = self.overrides.get(key) {
            return *v;
        }
        let d = DEFAULTS.iter().find(|(d, _, _)| *d == key).map(|t| t.1);
        debug_assert!(d.is_some(), "threshold {key} has no default");
        d.unwrap_or(f64::NAN)
    }

    /// The thresholds that belong to one check, for `explain`.
    pub fn for_check(id: &str) -> impl Iterator<Item = &'static (&'static str, f64, &'static str)> {
        let prefix = format!("{id}.");
        DEFAULTS
            .iter()
            .filter(move |(k, _, _)| k.starts_with(&prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_and_rejects_unknown_keys() {
        let mut t = Thresholds::default();
        assert_eq!(t.get("pg.connections.warn_pct"), 80.0);
        t.set_from_str("pg.connections.warn_pct=50").unwrap();
        assert_eq!(t.get("pg.connections.warn_pct"), 50.0);
        assert!(matches!(
            t.set_from_str("pg.nope=1"),
            Err(DoctorError::UnknownThreshold(_))
        ));
        assert!(matches!(
            t.set_from_str("pg.connections.warn_pct"),
            Err(DoctorError::BadThreshold(_))
        ));
    }

    #[test]
    fn every_threshold_belongs_to_a_catalogued_check() {
        for (k, _, _) in DEFAULTS {
            let id = k.rsplit_once('.').map(|(id, _)| id).unwrap_or("");
            assert!(crate::catalogue::find(id).is_some(), "{k} has no check");
        }
    }
}
