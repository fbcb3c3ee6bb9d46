//! How to run: timeouts, sampling, thresholds, which checks.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::catalogue;
use crate::error::DoctorError;
use crate::thresholds::Thresholds;

/// Every wait the doctor makes is bounded by one of these.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub dns: Duration,
    pub connect: Duration,
    pub tls: Duration,
    pub auth: Duration,
    /// Server-side `statement_timeout` (and the client-side wait per query).
    pub query: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            dns: Duration::from_secs(5),
            connect: Duration::from_secs(5),
            tls: Duration::from_secs(5),
            auth: Duration::from_secs(10),
            query: Duration::from_secs(3),
        }
    }
}

/// `--only` / `--skip` by check id or group (`pg`, `redis.big_keys`).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl Filter {
    /// Rejects names that are neither a check id nor a group, so a typo in a
    /// monitoring script does not silently disable nothing.
    pub fn validate(&self) -> Result<(), DoctorError> {
        for n in self.only.iter().chain(&self.skip) {
            let known = catalogue::GROUPS.contains(&n.as_str()) || catalogue::find(n).is_some();
            if !known {
                return Err(DoctorError::UnknownCheck(n.clone()));
            }
        }
        Ok(())
    }

    pub fn allows(&self, id: &str) -> bool {
        let matches = |p: &String| {
            id == p
                || id
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        };
        if self.skip.iter().any(matches) {
            return false;
        }
        self.only.is_empty() || self.only.iter().any(matches)
    }
}

/// Whether a Redis instance is a cache (evicting is right) or a store (it must not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RedisRole {
    #[default]
    Cache,
    Store,
}

/// Progress lines ("tls handshake...") while the run is going; the CLI prints them on
/// stderr when it is a terminal.
type ProgressFn = dyn Fn(&str) + Send + Sync;

#[derive(Clone, Default)]
pub struct Progress(Option<Arc<ProgressFn>>);

impl Progress {
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(f)))
    }
    pub fn say(&self, msg: &str) {
        if let Some(f) = &self.0 {
            f(msg);
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(on)"
        } else {
            "Progress(off)"
        })
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub timeouts: Timeouts,
    /// Round trips measured for the latency distribution.
    pub samples: u32,
    pub thresholds: Thresholds,
    pub filter: Filter,
    /// Ask this DNS server instead of the system resolver (`--dns-server`).
    pub dns_server: Option<SocketAddr>,
    /// The application's time zone, compared with the server's (`pg.timezone`).
    pub client_timezone: Option<String>,
    /// The client pool's connection lifetime, compared with MySQL's `wait_timeout`.
    pub pool_lifetime: Duration,
    pub redis_role: RedisRole,
    /// Prompt on the terminal when the server wants a password and none was given.
    pub prompt_password: bool,
    pub progress: Progress,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeouts: Timeouts::default(),
            samples: 20,
            thresholds: Thresholds::default(),
            filter: Filter::default(),
            dns_server: None,
            client_timezone: None,
            pool_lifetime: Duration::from_secs(30 * 60),
            redis_role: RedisRole::Cache,
            prompt_password: false,
            progress: Progress::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_by_id_and_group() {
        let f = Filter {
            only: vec!["pg".into(), "probe.dns".into()],
            skip: vec!["pg.tls".into()],
        };
        assert!(f.allows("pg.connections"));
        assert!(f.allows("probe.dns"));
        assert!(!f.allows("probe.tcp"));
        assert!(!f.allows("pg.tls"));
        assert!(!f.allows("pgx.a"));
        assert!(f.validate().is_ok());
        let bad = Filter {
            only: vec!["pg.nope".into()],
            skip: vec![],
        };
        assert!(matches!(bad.validate(), Err(DoctorError::UnknownCheck(_))));
    }
}
