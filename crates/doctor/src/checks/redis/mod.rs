//! Redis checks, from one `INFO all`, `CONFIG GET` (when not renamed away), the slow
//! log and a bounded SCAN.

mod keys;
mod memory;
mod stats;

use std::collections::BTreeMap;

use crate::model::Finding;
use crate::options::Options;
use crate::probe::redis::resp::{RedisConn, RedisError};
use crate::probe::Recorder;

use super::could_not_run;

/// What every check reads: INFO fields and CONFIG values.
pub struct Snapshot {
    pub info: BTreeMap<String, String>,
    /// Empty when CONFIG is disabled (managed services rename it).
    pub config: BTreeMap<String, String>,
}

impl Snapshot {
    pub fn info_f64(&self, k: &str) -> Option<f64> {
        self.info.get(k)?.parse().ok()
    }
    pub fn info_str(&self, k: &str) -> &str {
        self.info.get(k).map(String::as_str).unwrap_or("")
    }
    /// A CONFIG value, falling back to the INFO field of the same meaning.
    pub fn setting(&self, config_key: &str, info_key: &str) -> Option<String> {
        self.config
            .get(config_key)
            .or_else(|| self.info.get(info_key))
            .cloned()
    }
}

/// Parses `INFO` text into `field -> value`.
pub fn info_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub type CheckResult = Result<Vec<Finding>, RedisError>;

const CONFIG_KEYS: &[&str] = &[
    "maxmemory",
    "maxmemory-policy",
    "maxclients",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "save",
    "appendonly",
    "appendfsync",
];

pub async fn run(c: &mut RedisConn, opts: &Options, rec: &mut Recorder) {
    rec.say("reading INFO and CONFIG");
    let info = match c.cmd(&["INFO", "all"]).await {
        Ok(r) => info_map(&r.text()),
        Err(e) => {
            rec.push(could_not_run(
                "redis.maxmemory",
                &format!("INFO failed: {e}"),
            ));
            return;
        }
    };
    let mut config = BTreeMap::new();
    for key in CONFIG_KEYS {
        match c.cmd(&["CONFIG", "GET", key]).await {
            Ok(r) => {
                for kv in r.items().chunks(2) {
                    if let [k, v] = kv {
                        config.insert(k.text(), v.text());
                    }
                }
            }
            // Renamed or ACL-restricted CONFIG: judge from INFO alone.
            Err(RedisError::Server(_)) => break,
            Err(e) => {
                rec.push(could_not_run("redis.maxmemory", &e.to_string()));
                return;
            }
        }
    }
    let snap = Snapshot { info, config };
    let role = opts.redis_role;
    let th = &opts.thresholds;
    macro_rules! sync_check {
        ($id:literal, $e:expr) => {
            if rec.allows($id) {
                rec.extend($e);
            }
        };
    }
    sync_check!("redis.maxmemory", memory::maxmemory(&snap, role, th));
    sync_check!("redis.evictions", memory::evictions(&snap, role, th));
    sync_check!("redis.fragmentation", memory::fragmentation(&snap, th));
    sync_check!("redis.persistence", memory::persistence(&snap, role));
    sync_check!("redis.hit_ratio", stats::hit_ratio(&snap, th));
    sync_check!("redis.clients", stats::clients(&snap, th));
    if rec.allows("redis.slowlog") {
        rec.say("reading the slow log");
        match stats::slowlog(c, &snap, th).await {
            Ok(f) => rec.extend(f),
            Err(e) => rec.push(could_not_run("redis.slowlog", &e.to_string())),
        }
    }
    if rec.allows("redis.big_keys") {
        rec.say("sampling keys for size");
        match keys::big_keys(c, th).await {
            Ok(f) => rec.extend(f),
            Err(e) => rec.push(could_not_run("redis.big_keys", &e.to_string())),
        }
    }
}
