//! `[server]`: how the proxy opens and watches its connections to PostgreSQL.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[server]` section. Every phase of opening a server connection has its own bound so
/// that an error can say which phase hung; `pool.server_connect_timeout` caps them together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Longest time to resolve a backend host name; `"0s"` = only the overall cap applies.
    /// Default: `"5s"`. Unit: duration. Reload: yes (new connections).
    #[serde(with = "humantime_serde")]
    pub server_dns_timeout: Duration,
    /// Longest time for the TCP handshake with the backend; `"0s"` = only the overall cap.
    /// Default: `"5s"`. Unit: duration. Reload: yes (new connections).
    #[serde(with = "humantime_serde")]
    pub server_tcp_timeout: Duration,
    /// Longest time for SSLRequest and the TLS handshake; `"0s"` = only the overall cap.
    /// Default: `"5s"`. Unit: duration. Reload: yes (new connections).
    #[serde(with = "humantime_serde")]
    pub server_tls_timeout: Duration,
    /// Longest time from the startup packet to ReadyForQuery (authentication included);
    /// `"0s"` = only the overall cap.
    /// Default: `"10s"`. Unit: duration. Reload: yes (new connections).
    #[serde(with = "humantime_serde")]
    pub server_login_timeout: Duration,
    /// Longest time a DNS answer for a backend host is cached, whatever its own TTL says;
    /// each new server connection re-resolves once the cached answer expires.
    /// Default: `"30s"`. Unit: duration. Reload: yes (new connections).
    #[serde(with = "humantime_serde")]
    pub dns_max_ttl: Duration,
    /// DNS servers to ask (`"IP"` or `"IP:port"`); empty means the system's
    /// `/etc/resolv.conf`.
    /// Default: `[]`. Reload: yes (new connections).
    pub dns_servers: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            server_dns_timeout: Duration::from_secs(5),
            server_tcp_timeout: Duration::from_secs(5),
            server_tls_timeout: Duration::from_secs(5),
            server_login_timeout: Duration::from_secs(10),
            dns_max_ttl: Duration::from_secs(30),
            dns_servers: Vec::new(),
        }
    }
}
