//! `[databases.NAME]`: where each client-facing database name is proxied to.

use serde::{Deserialize, Serialize};

use crate::pool::PoolMode;

/// The key of the wildcard entry: any database name without its own entry is proxied to the
/// same-named database on the wildcard's server.
pub const WILDCARD: &str = "*";

/// One `[databases.NAME]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// PostgreSQL host: a DNS name or an IP address.
    /// Default: `"127.0.0.1"`. Reload: yes (new server connections).
    pub host: String,
    /// PostgreSQL port.
    /// Default: `5432`. Reload: yes (new server connections).
    pub port: u16,
    /// Database name on the server.
    /// Default: the entry's key, or for `"*"` the name the client asked for.
    /// Reload: yes (new server connections).
    pub dbname: Option<String>,
    /// Log in to the server as this user for every client, whoever the client is; the pool
    /// is then shared by all clients of this database.
    /// Default: none (log in as the client's user). Reload: yes (new server connections).
    pub user: Option<String>,
    /// Plaintext password for `user`; only meaningful with `user`.
    /// Default: none. Reload: yes (new server connections).
    pub password: Option<String>,
    /// Overrides `pool.size` for this database's pools.
    /// Default: none. Unit: connections. Minimum 1. Reload: yes.
    pub pool_size: Option<u32>,
    /// Overrides `pool.min_idle` for this database's pools.
    /// Default: none. Unit: connections. Reload: yes.
    pub min_idle: Option<u32>,
    /// Overrides `pool.mode` for this database: `"session"` or `"transaction"`.
    /// Default: none. Reload: yes (new checkouts).
    pub pool_mode: Option<PoolMode>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            host: "127.0.0.1".to_owned(),
            port: 5432,
            dbname: None,
            user: None,
            password: None,
            pool_size: None,
            min_idle: None,
            pool_mode: None,
        }
    }
}

/// A database entry with every default applied, for one client-facing database name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedDatabase {
    /// The database name the client asked for.
    pub name: String,
    /// PostgreSQL host.
    pub host: String,
    /// PostgreSQL port.
    pub port: u16,
    /// Database name on the server.
    pub dbname: String,
    /// Forced upstream user, if any.
    pub user: Option<String>,
    /// Password of the forced upstream user, if any.
    pub password: Option<String>,
    /// Pool size before any per-user override (see [`crate::Config::pool_size_for`]).
    pub pool_size: u32,
    /// Idle connections kept open ahead of demand.
    pub min_idle: u32,
    /// Pooling mode.
    pub mode: PoolMode,
}
