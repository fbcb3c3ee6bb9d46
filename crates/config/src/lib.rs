//! dbwarden's configuration: the types read from `dbwarden.toml`, their defaults, and a
//! validation that reports every problem at once so a bad reload can be refused whole.
//!
//! The reference for users is `docs/config.md`; every field there is also documented here
//! with its default, unit and whether a reload applies it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

mod auth;
mod database;
mod effective;
mod error;
mod log;
mod pool;
mod proxy;
mod server;
mod telemetry;
mod tls;
mod upstream;
mod validate;

pub use auth::{check_scram_verifier, AuthConfig, AuthMethod, PasswordKind, UserConfig};
pub use database::{DatabaseConfig, ResolvedDatabase, WILDCARD};
pub use effective::REDACTED;
pub use error::ConfigError;
pub use log::{LogConfig, LogFormat};
pub use pool::{PoolConfig, PoolMode, SessionFeatures};
pub use proxy::ProxyConfig;
pub use server::ServerConfig;
pub use telemetry::TracingConfig;
pub use tls::{ClientTlsConfig, ClientTlsMode, ServerTlsConfig, ServerTlsMode};
pub use validate::CONSOLE_DATABASES;

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[proxy]`: listeners and process settings.
    pub proxy: ProxyConfig,
    /// `[pool]`: defaults for every (database, user) pool.
    pub pool: PoolConfig,
    /// `[server]`: opening and watching server connections (phase timeouts, DNS, keepalive).
    pub server: ServerConfig,
    /// `[log]`: log format and level, and the slow-query log.
    pub log: LogConfig,
    /// `[tracing]`: OpenTelemetry spans exported over OTLP.
    pub tracing: TracingConfig,
    /// `[client_tls]`: TLS between clients and the proxy.
    pub client_tls: ClientTlsConfig,
    /// `[server_tls]`: TLS between the proxy and PostgreSQL.
    pub server_tls: ServerTlsConfig,
    /// `[auth]`: how clients authenticate.
    pub auth: AuthConfig,
    /// `[[users]]`: the logins the proxy accepts.
    pub users: Vec<UserConfig>,
    /// `[databases.NAME]`: where each database name is proxied to; the key `"*"`
    /// ([`WILDCARD`]) catches every name without its own entry.
    pub databases: BTreeMap<String, DatabaseConfig>,
}

impl Config {
    /// Parse TOML text and validate it.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config = parse(text, None)?;
        config.validate()?;
        Ok(config)
    }

    /// Read, parse and validate a config file. Every error names the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let config = parse(&text, Some(path))?;
        config.validate().map_err(|err| match err {
            ConfigError::Invalid(problems) => ConfigError::Invalid(
                problems
                    .into_iter()
                    .map(|p| format!("{}: {p}", path.display()))
                    .collect(),
            ),
            other => other,
        })?;
        Ok(config)
    }

    /// The user entry named `name`.
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Where a client asking for database `client_db` goes: its own entry, else the
    /// wildcard `"*"`, with pool defaults filled in. `None` means the database is unknown.
    /// `client_db` is the database the client will use: when the startup packet names none,
    /// PostgreSQL's rule (the user name) must already have been applied.
    pub fn database(&self, client_db: &str) -> Option<ResolvedDatabase> {
        let entry = self
            .databases
            .get(client_db)
            .or_else(|| self.databases.get(WILDCARD))?;
        // For an exact entry the key is the client's name, so one default covers both cases.
        let dbname = entry.dbname.clone().unwrap_or_else(|| client_db.to_owned());
        Some(ResolvedDatabase {
            name: client_db.to_owned(),
            host: entry.host.clone(),
            port: entry.port,
            dbname,
            user: entry.user.clone(),
            password: entry.password.clone(),
            pool_size: entry.pool_size.unwrap_or(self.pool.size),
            min_idle: entry.min_idle.unwrap_or(self.pool.min_idle),
            mode: entry.pool_mode.unwrap_or(self.pool.mode),
        })
    }

    /// Pool size for `user`'s pool of `db`: the user's `pool_size` wins over the database's,
    /// which wins over `pool.size` (already applied in `db.pool_size`). A database that
    /// forces its own upstream `user` shares one pool among all clients, so per-user
    /// overrides do not apply to it. A user's override may be below `db.min_idle`; the pool
    /// should keep at most this many connections idle.
    pub fn pool_size_for(&self, db: &ResolvedDatabase, user: &str) -> u32 {
        if db.user.is_some() {
            return db.pool_size;
        }
        self.user(user)
            .and_then(|u| u.pool_size)
            .unwrap_or(db.pool_size)
    }
}

/// Deserialize without validating.
fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|err| ConfigError::from_toml(&err, text, path.map(Path::to_owned)))
}

#[cfg(test)]
mod tests;
