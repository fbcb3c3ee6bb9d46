//! `[server]`: how the proxy opens and watches its connections to PostgreSQL (and the TCP
//! options it sets on client sockets too).

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
    /// TCP keepalive on client and server sockets: idle time before the first probe;
    /// `"0s"` turns keepalive off. Keepalive finds peers that vanished without a FIN (a
    /// crashed host, a NAT or conntrack entry dropped) and keeps such entries alive.
    /// Default: `"60s"`. Unit: duration (whole seconds). Reload: yes (new connections).
    #[serde(with = "humantime_serde")]
    pub tcp_keepalive_idle: Duration,
    /// Time between keepalive probes.
    /// Default: `"10s"`. Unit: duration (whole seconds). Must be > 0. Reload: yes (new connections).
    #[serde(with = "humantime_serde")]
    pub tcp_keepalive_interval: Duration,
    /// Unanswered keepalive probes before the connection is declared dead.
    /// Default: `6`. Unit: probes. Minimum 1. Reload: yes (new connections).
    pub tcp_keepalive_count: u32,
    /// `TCP_USER_TIMEOUT` on client and server sockets: how long sent data may stay
    /// unacknowledged before the kernel drops the connection; `"0s"` = the system default.
    /// Default: `"0s"`. Unit: duration (milliseconds). Reload: yes (new connections).
    #[serde(with = "humantime_serde")]
    pub tcp_user_timeout: Duration,
    /// Consecutive failed connects to one backend (host:port) that open its circuit breaker:
    /// new checkouts then fail at once with SQLSTATE 08006 saying since when and why, while
    /// one background probe retries; `0` = never open.
    /// Default: `3`. Unit: failures. Reload: yes.
    pub breaker_failures: u32,
    /// First wait between the background probe's connects while a breaker is open; it
    /// doubles after each failure up to `breaker_probe_max_interval`.
    /// Default: `"100ms"`. Unit: duration. Must be > 0. Reload: yes (new probes).
    #[serde(with = "humantime_serde")]
    pub breaker_probe_interval: Duration,
    /// Longest wait between probes; bounds how long after a backend recovers the pool
    /// serves again.
    /// Default: `"1s"`. Unit: duration. At least `breaker_probe_interval`. Reload: yes (new probes).
    #[serde(with = "humantime_serde")]
    pub breaker_probe_max_interval: Duration,
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
            tcp_keepalive_idle: Duration::from_secs(60),
            tcp_keepalive_interval: Duration::from_secs(10),
            tcp_keepalive_count: 6,
            tcp_user_timeout: Duration::ZERO,
            breaker_failures: 3,
            breaker_probe_interval: Duration::from_millis(100),
            breaker_probe_max_interval: Duration::from_secs(1),
        }
    }
}

impl ServerConfig {
    /// Adds every problem with this section to `problems` (see `Config::validate`).
    pub(crate) fn check(&self, problems: &mut Vec<String>) {
        if self.tcp_keepalive_interval.is_zero() {
            problems.push("server.tcp_keepalive_interval: must be greater than 0".to_owned());
        }
        if self.tcp_keepalive_count == 0 {
            problems.push("server.tcp_keepalive_count: must be at least 1".to_owned());
        }
        if self.breaker_probe_interval.is_zero() {
            problems.push("server.breaker_probe_interval: must be greater than 0".to_owned());
        }
        if self.breaker_probe_max_interval < self.breaker_probe_interval {
            problems.push(format!(
                "server.breaker_probe_max_interval: {:?} is less than breaker_probe_interval ({:?})",
                self.breaker_probe_max_interval, self.breaker_probe_interval
            ));
        }
        for server in &self.dns_servers {
            let ok = server.parse::<std::net::SocketAddr>().is_ok()
                || server.parse::<std::net::IpAddr>().is_ok();
            if !ok {
                problems.push(format!(
                    "server.dns_servers: `{server}` is not an IP address or IP:port"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
