//! `[proxy]`: the listener and process-wide settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[proxy]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Address the PostgreSQL listener binds: an IP address and a port (`"[::]:6432"` for IPv6);
    /// host names are not resolved.
    /// Default: `"127.0.0.1:6432"`. Reload: no (needs a restart).
    pub listen: String,
    /// Address of the HTTP admin listener (metrics, health, API), same syntax as `listen`;
    /// absent means no admin listener.
    /// Default: none. Reload: no (needs a restart).
    pub admin_listen: Option<String>,
    /// Maximum number of client connections open at once; the next one is refused with
    /// SQLSTATE 53300 (too_many_connections).
    /// Default: `1000`. Unit: connections. Reload: yes.
    pub max_client_conn: u32,
    /// Largest protocol frame accepted from a client or a server, length word included;
    /// a larger frame is a protocol violation (SQLSTATE 08P01) and closes the connection.
    /// Default: `268435456` (256 MiB). Unit: bytes. Minimum 1024. Reload: yes (new connections).
    pub max_message_size: u32,
    /// Time a client has from TCP accept to finishing authentication (TLS included).
    /// Default: `"60s"`. Unit: duration. Must be > 0. Reload: yes (new connections).
    #[serde(with = "humantime_serde")]
    pub client_login_timeout: Duration,
    /// On shutdown, time given to clients to finish their transactions before connections
    /// are closed; `"0s"` closes them at once.
    /// Default: `"30s"`. Unit: duration. Reload: yes.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Threads that serve clients, each with a single-threaded runtime and its own listening
    /// socket (SO_REUSEPORT); `0` means one per CPU core. One is the cheapest per
    /// transaction (no wake-ups across threads), as PgBouncer is; more use more cores.
    /// Default: `1`. Unit: threads. Reload: no (needs a restart).
    pub workers: u32,
    /// How often the admin console's `SHOW STATS` averages are recomputed: each average is
    /// per second (or per transaction, query or assignment) over about this long.
    /// Default: `"60s"`. Unit: duration. Must be at least 1s. Reload: no (needs a restart).
    #[serde(with = "humantime_serde")]
    pub stats_period: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: "127.0.0.1:6432".to_owned(),
            admin_listen: None,
            max_client_conn: 1000,
            max_message_size: 256 * 1024 * 1024,
            client_login_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            workers: 1,
            stats_period: Duration::from_secs(60),
        }
    }
}
