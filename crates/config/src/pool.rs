//! `[pool]`: defaults shared by every (database, user) pool.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When a server connection returns to the pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolMode {
    /// A client keeps its server connection until it disconnects.
    Session,
    /// A client holds a server connection only for the length of a transaction; its
    /// settings and prepared statements follow it from connection to connection.
    #[default]
    Transaction,
}

/// What transaction mode does when a client uses a feature that lives in its server session
/// (LISTEN, session advisory locks, WITH HOLD cursors, temporary tables, SQL PREPARE,
/// SET SESSION AUTHORIZATION).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionFeatures {
    /// Keep the client on its server connection for the rest of its session (it works, the
    /// connection is not shared any more); logged once and counted.
    #[default]
    Pin,
    /// Refuse the statement with SQLSTATE 0A000 and a message that names the feature.
    Refuse,
}

/// The `[pool]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Pooling mode: `"session"` or `"transaction"`.
    /// Default: `"transaction"`. Reload: yes (new clients).
    pub mode: PoolMode,
    /// Maximum server connections per (database, user) pool.
    /// Default: `20`. Unit: connections. Minimum 1. Reload: yes.
    pub size: u32,
    /// Idle server connections kept open ahead of demand in each pool.
    /// Default: `0`. Unit: connections. At most `size`. Reload: yes.
    pub min_idle: u32,
    /// SQL run on a server connection when a session-mode client releases it, so that no
    /// session state reaches the next client; `""` runs nothing.
    /// Default: `"DISCARD ALL"`. Reload: yes.
    pub reset_query: String,
    /// Longest time a client waits for a server connection before it gets an error.
    /// Default: `"120s"`. Unit: duration. Must be > 0. Reload: yes.
    #[serde(with = "humantime_serde")]
    pub query_wait_timeout: Duration,
    /// Longest time to open a server connection: DNS, TCP, TLS and login together.
    /// Default: `"15s"`. Unit: duration. Must be > 0. Reload: yes.
    #[serde(with = "humantime_serde")]
    pub server_connect_timeout: Duration,
    /// Close a server connection that has been idle in the pool this long; `"0s"` = never.
    /// Default: `"10m"`. Unit: duration. Reload: yes.
    #[serde(with = "humantime_serde")]
    pub server_idle_timeout: Duration,
    /// Close a server connection older than this (each connection's own lifetime is drawn
    /// within ±10% of it, so connections opened together do not all close together); it is
    /// closed when idle, never while a client uses it. `"0s"` = never.
    /// Default: `"1h"`. Unit: duration. Reload: yes.
    #[serde(with = "humantime_serde")]
    pub server_lifetime: Duration,
    /// A server connection unused this long is health-checked before a client gets it, and
    /// the background task checks idle ones this often; broken ones are closed and replaced.
    /// `"0s"` = check at every checkout.
    /// Default: `"30s"`. Unit: duration. Reload: yes.
    #[serde(with = "humantime_serde")]
    pub server_check_delay: Duration,
    /// The health check's SQL; `""` sends an empty query (PgBouncer's `;`), the cheapest
    /// round trip there is. It must leave the session as it found it.
    /// Default: `""`. Reload: yes.
    pub server_check_query: String,
    /// Longest time a health check may take before the connection counts as broken.
    /// Default: `"2s"`. Unit: duration. Must be > 0. Reload: yes.
    #[serde(with = "humantime_serde")]
    pub server_check_timeout: Duration,
    /// Transaction mode: server-side prepared statements kept per server connection (least
    /// recently used are closed beyond this).
    /// Default: `200`. Unit: statements. Minimum 1. Reload: yes (new checkouts).
    pub max_prepared_statements: u32,
    /// Transaction mode: `"pin"` or `"refuse"` session-only features.
    /// Default: `"pin"`. Reload: yes (new clients).
    pub session_features: SessionFeatures,
    /// Cancel a query that runs longer than this (client gets 57014); `"0s"` = off.
    /// Default: `"0s"`. Unit: duration. Reload: yes (new clients).
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
    /// Cancel the running query of a transaction open longer than this, or end the session
    /// when it sits idle past it (57014); `"0s"` = off.
    /// Default: `"0s"`. Unit: duration. Reload: yes (new clients).
    #[serde(with = "humantime_serde")]
    pub transaction_timeout: Duration,
    /// Close a client silent this long outside a transaction (FATAL 57P05); `"0s"` = off.
    /// Default: `"0s"`. Unit: duration. Reload: yes (new clients).
    #[serde(with = "humantime_serde")]
    pub client_idle_timeout: Duration,
    /// Close a client idle this long inside a transaction, rolling it back (FATAL 25P03);
    /// `"0s"` = off. Default: `"0s"`. Unit: duration. Reload: yes (new clients).
    #[serde(with = "humantime_serde")]
    pub idle_transaction_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            mode: PoolMode::Transaction,
            size: 20,
            min_idle: 0,
            reset_query: "DISCARD ALL".to_owned(),
            query_wait_timeout: Duration::from_secs(120),
            server_connect_timeout: Duration::from_secs(15),
            server_idle_timeout: Duration::from_secs(10 * 60),
            server_lifetime: Duration::from_secs(60 * 60),
            server_check_delay: Duration::from_secs(30),
            server_check_query: String::new(),
            server_check_timeout: Duration::from_secs(2),
            max_prepared_statements: 200,
            session_features: SessionFeatures::Pin,
            query_timeout: Duration::ZERO,
            transaction_timeout: Duration::ZERO,
            client_idle_timeout: Duration::ZERO,
            idle_transaction_timeout: Duration::ZERO,
        }
    }
}
