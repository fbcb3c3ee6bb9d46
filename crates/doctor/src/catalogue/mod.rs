//! The static catalogue of checks: what `doctor list` prints and `doctor explain ID`
//! expands. Ids are a public interface (users script `--skip` against them): never
//! rename one, only add.

mod mysql;
mod pg;
mod probe;
mod redis;

/// One check of the checklist, with the runbook shown when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
    pub verify: &'static str,
}

impl Check {
    pub fn group(&self) -> &'static str {
        self.id.split('.').next().unwrap_or("")
    }
}

/// Every check, in report order.
pub fn all() -> impl Iterator<Item = &'static Check> {
    probe::CHECKS
        .iter()
        .chain(pg::CHECKS)
        .chain(mysql::CHECKS)
        .chain(redis::CHECKS)
}

pub fn find(id: &str) -> Option<&'static Check> {
    all().find(|c| c.id == id)
}

/// The groups, for `--only pg` and `--skip redis`.
pub const GROUPS: &[&str] = &["probe", "pg", "mysql", "redis"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_complete() {
        let mut ids: Vec<_> = all().map(|c| c.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate check id");
        for c in all() {
            assert!(GROUPS.contains(&c.group()), "{} has no known group", c.id);
            assert!(!c.why.is_empty() && !c.fix.is_empty() && !c.verify.is_empty());
        }
        // The ids promised in the issue; users script against them.
        for id in [
            "probe.dns",
            "probe.tcp",
            "probe.tls",
            "probe.auth",
            "probe.query",
            "pg.connections",
            "pg.idle_in_transaction",
            "pg.long_transactions",
            "pg.lock_chains",
            "pg.prepared_xacts",
            "pg.timezone",
            "pg.timestamp_without_tz",
            "pg.sequence_exhaustion",
            "pg.sequence_cache",
            "pg.jsonb_precision",
            "pg.timeouts_unset",
            "pg.tcp_keepalives",
            "pg.tls",
            "pg.password_encryption",
            "pg.wraparound",
            "pg.replication",
            "pg.deadlocks",
            "pg.cache_hit_ratio",
            "mysql.skip_name_resolve",
            "mysql.tls",
            "mysql.wait_timeout",
            "mysql.connections",
            "mysql.aborted",
            "mysql.time_zone",
            "mysql.isolation",
            "redis.latency",
            "redis.maxmemory",
            "redis.evictions",
            "redis.hit_ratio",
            "redis.slowlog",
            "redis.big_keys",
            "redis.clients",
            "redis.fragmentation",
            "redis.persistence",
        ] {
            assert!(find(id).is_some(), "missing {id}");
        }
    }
}
