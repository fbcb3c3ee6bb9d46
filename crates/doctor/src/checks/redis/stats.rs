//! Traffic: hit ratio, clients, slow log.

use super::{CheckResult, Snapshot};
use crate::model::{Finding, Severity};
use crate::probe::redis::resp::RedisConn;
use crate::thresholds::Thresholds;

pub fn hit_ratio(s: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let hits = s.info_f64("keyspace_hits").unwrap_or(0.0);
    let misses = s.info_f64("keyspace_misses").unwrap_or(0.0);
    let lookups = hits + misses;
    let ratio = if lookups > 0.0 { hits / lookups } else { 1.0 };
    let warn = th.get("redis.hit_ratio.warn_ratio");
    let enough = lookups >= th.get("redis.hit_ratio.min_lookups");
    let (sev, title) = if !enough {
        (
            Severity::Ok,
            format!(
                "hit ratio {:.1}% over only {lookups:.0} lookups: too few to judge",
                ratio * 100.0
            ),
        )
    } else if ratio < warn {
        (
            Severity::Warning,
            format!("keyspace hit ratio {:.1}% ({hits:.0} hits, {misses:.0} misses): most reads miss the cache", ratio * 100.0),
        )
    } else {
        (
            Severity::Ok,
            format!(
                "keyspace hit ratio {:.1}% over {lookups:.0} lookups",
                ratio * 100.0
            ),
        )
    };
    vec![Finding::new("redis.hit_ratio", sev, title)
        .value("keyspace_hits", hits)
        .value("keyspace_misses", misses)
        .value("ratio", (ratio * 10000.0).round() / 10000.0)
        .value("threshold", warn)
        .query("INFO stats")]
}

pub fn clients(s: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let connected = s.info_f64("connected_clients").unwrap_or(0.0);
    let blocked = s.info_f64("blocked_clients").unwrap_or(0.0);
    let rejected = s.info_f64("rejected_connections").unwrap_or(0.0);
    let maxclients: f64 = s
        .config
        .get("maxclients")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let (sev, title) = if rejected > 0.0 {
        (Severity::Warning, format!("{rejected:.0} connection(s) rejected since start: maxclients ({maxclients:.0}) was reached"))
    } else if blocked > th.get("redis.clients.blocked_warn") {
        (
            Severity::Warning,
            format!("{blocked:.0} clients blocked in BLPOP/XREAD-style commands"),
        )
    } else {
        (Severity::Ok, format!("{connected:.0} connected, {blocked:.0} blocked, {rejected:.0} rejected (maxclients {maxclients:.0})"))
    };
    vec![Finding::new("redis.clients", sev, title)
        .value("connected_clients", connected)
        .value("blocked_clients", blocked)
        .value("rejected_connections", rejected)
        .value("maxclients", maxclients)
        .query("INFO clients; INFO stats")]
}

pub async fn slowlog(c: &mut RedisConn, s: &Snapshot, th: &Thresholds) -> CheckResult {
    let threshold_us: f64 = s
        .config
        .get("slowlog-log-slower-than")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000.0);
    let entries = c.cmd(&["SLOWLOG", "GET", "10"]).await?;
    let len = c.cmd(&["SLOWLOG", "LEN"]).await?.int().unwrap_or(0);
    let mut worst_ms: f64 = 0.0;
    let items: Vec<String> = entries
        .items()
        .iter()
        .map(|e| {
            let f = e.items();
            let us = f.get(2).and_then(|r| r.int()).unwrap_or(0) as f64;
            worst_ms = worst_ms.max(us / 1000.0);
            let cmd: String = f
                .get(3)
                .map(|a| a.text())
                .unwrap_or_default()
                .chars()
                .take(80)
                .collect();
            format!("{:.1} ms: {cmd}", us / 1000.0)
        })
        .collect();
    let warn_ms = th.get("redis.slowlog.warn_ms");
    let (sev, title) = if threshold_us < 0.0 {
        (
            Severity::Warning,
            "slow log disabled (slowlog-log-slower-than < 0): slow commands go unseen".to_string(),
        )
    } else if worst_ms > warn_ms {
        (Severity::Warning, format!("{len} slow log entries; the slowest recent command blocked the server {worst_ms:.1} ms"))
    } else if len > 0 {
        (
            Severity::Info,
            format!("{len} slow log entries, slowest recent {worst_ms:.1} ms"),
        )
    } else {
        (
            Severity::Ok,
            format!("slow log empty (threshold {:.1} ms)", threshold_us / 1000.0),
        )
    };
    Ok(vec![Finding::new("redis.slowlog", sev, title)
        .value("entries", len)
        .value("worst_recent_ms", worst_ms)
        .value("log_slower_than_us", threshold_us)
        .query("SLOWLOG GET 10; SLOWLOG LEN")
        .items(items)])
}
