//! Memory: maxmemory and its policy, evictions, fragmentation, persistence.

use super::Snapshot;
use crate::model::{Finding, Severity};
use crate::options::RedisRole;
use crate::thresholds::Thresholds;

const MEMORY_QUERY: &str = "CONFIG GET maxmemory*; INFO memory";

pub fn maxmemory(s: &Snapshot, role: RedisRole, th: &Thresholds) -> Vec<Finding> {
    let max: f64 = s
        .setting("maxmemory", "maxmemory")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let policy = s
        .setting("maxmemory-policy", "maxmemory_policy")
        .unwrap_or_default();
    let used = s.info_f64("used_memory").unwrap_or(0.0);
    let mb = |b: f64| b / 1_048_576.0;
    let pct = if max > 0.0 { used / max * 100.0 } else { 0.0 };
    let (sev, title) = if max == 0.0 {
        (Severity::Warning, format!("maxmemory is not set: Redis grows ({:.1} MB now) until the kernel's OOM killer stops it", mb(used)))
    } else if policy == "noeviction" && role == RedisRole::Cache {
        (
            Severity::Warning,
            format!("maxmemory-policy noeviction on a cache: at {:.1} MB every write fails with OOM instead of evicting ({pct:.0}% used)", mb(max)),
        )
    } else if pct >= th.get("redis.maxmemory.used_warn_pct") {
        (
            Severity::Warning,
            format!(
                "{pct:.0}% of maxmemory {:.1} MB in use (policy {policy})",
                mb(max)
            ),
        )
    } else {
        (
            Severity::Ok,
            format!(
                "maxmemory {:.1} MB, policy {policy}, {pct:.0}% used",
                mb(max)
            ),
        )
    };
    vec![Finding::new("redis.maxmemory", sev, title)
        .value("maxmemory_bytes", max)
        .value("maxmemory_policy", policy)
        .value("used_memory_bytes", used)
        .value("role", format!("{role:?}").to_lowercase())
        .query(MEMORY_QUERY)]
}

pub fn evictions(s: &Snapshot, role: RedisRole, th: &Thresholds) -> Vec<Finding> {
    let evicted = s.info_f64("evicted_keys").unwrap_or(0.0);
    let sev = match role {
        // A store that evicts is losing data.
        RedisRole::Store if evicted > 0.0 => Severity::Critical,
        _ if evicted > th.get("redis.evictions.warn_count") => Severity::Warning,
        _ if evicted > 0.0 => Severity::Info,
        _ => Severity::Ok,
    };
    vec![Finding::new(
        "redis.evictions",
        sev,
        format!("{evicted:.0} key(s) evicted since the server started"),
    )
    .value("evicted_keys", evicted)
    .query("INFO stats")]
}

pub fn fragmentation(s: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let ratio = s.info_f64("mem_fragmentation_ratio").unwrap_or(1.0);
    let rss_mb = s.info_f64("used_memory_rss").unwrap_or(0.0) / 1_048_576.0;
    let judged = rss_mb >= th.get("redis.fragmentation.min_rss_mb");
    let (sev, title) = if judged && ratio > th.get("redis.fragmentation.warn_ratio") {
        (
            Severity::Warning,
            format!(
                "fragmentation ratio {ratio:.2}: RSS {rss_mb:.0} MB is well above the data size"
            ),
        )
    } else if judged && ratio < 1.0 {
        (
            Severity::Warning,
            format!("fragmentation ratio {ratio:.2} below 1: part of Redis is swapped out"),
        )
    } else {
        (
            Severity::Ok,
            format!("fragmentation ratio {ratio:.2} (RSS {rss_mb:.1} MB)"),
        )
    };
    vec![Finding::new("redis.fragmentation", sev, title)
        .value("mem_fragmentation_ratio", ratio)
        .value("used_memory_rss_mb", (rss_mb * 10.0).round() / 10.0)
        .query("INFO memory")]
}

pub fn persistence(s: &Snapshot, role: RedisRole) -> Vec<Finding> {
    let rdb_status = s.info_str("rdb_last_bgsave_status").to_string();
    let aof_status = s.info_str("aof_last_write_status").to_string();
    let aof = s.info_str("aof_enabled") == "1";
    let save = s.config.get("save").cloned().unwrap_or_default();
    let rdb = !save.trim().is_empty();
    let (sev, title) = if rdb_status == "err" || aof_status == "err" {
        (Severity::Critical, format!("last background save failed (rdb {rdb_status}, aof {aof_status}): Redis may refuse writes"))
    } else if role == RedisRole::Store && !aof && !rdb && !s.config.is_empty() {
        (
            Severity::Warning,
            "no persistence (save \"\" and appendonly no) on a store: a restart loses every key"
                .to_string(),
        )
    } else {
        let mode = match (rdb, aof) {
            (_, true) => "AOF",
            (true, false) => "RDB snapshots",
            (false, false) => "none",
        };
        (
            Severity::Ok,
            format!("persistence: {mode}; last save {rdb_status}"),
        )
    };
    vec![Finding::new("redis.persistence", sev, title)
        .value("aof_enabled", aof)
        .value("save", save)
        .value("rdb_last_bgsave_status", rdb_status)
        .value(
            "rdb_changes_since_last_save",
            s.info_f64("rdb_changes_since_last_save").unwrap_or(0.0),
        )
        .query("INFO persistence; CONFIG GET save")]
}
