//! Zero-config mode: a whole config from one `postgres://` URL.

use std::borrow::Cow;
use std::path::PathBuf;

use percent_encoding::percent_decode_str;
use url::{Host, Url};

use crate::{
    AuthConfig, AuthMethod, Config, ConfigError, DatabaseConfig, ServerTlsMode, UserConfig,
    WILDCARD,
};

impl Config {
    /// Build a config that proxies every database of one server:
    /// `postgres://USER:PASSWORD@HOST:PORT` gives one user `USER`/`PASSWORD` (also the only
    /// admin user), `[databases."*"]` pointing at `HOST:PORT` (port 5432 when absent) and
    /// SCRAM-SHA-256 client authentication; everything else keeps its default.
    ///
    /// User name, password and host are percent-decoded. The query may carry libpq's
    /// `sslmode` (sets `server_tls.mode`) and `sslrootcert` (sets `server_tls.ca_file`).
    /// These are errors rather than silently ignored, because each would change what the
    /// user expects: a database name in the path (the proxy serves every database, the
    /// client picks one), any other query parameter, a missing user or password, and
    /// several hosts. Error messages never contain the password.
    pub fn from_upstream_url(url: &str) -> Result<Config, ConfigError> {
        let url = Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad(format!(
                "scheme `{}` is not supported; use postgres://",
                url.scheme()
            )));
        }
        let user = decode("user name", url.username())?;
        if user.is_empty() {
            return Err(bad("needs a user name: postgres://USER:PASSWORD@HOST:PORT"));
        }
        let password = match url.password() {
            Some(p) if !p.is_empty() => decode("password", p)?,
            _ => return Err(bad("needs a password: postgres://USER:PASSWORD@HOST:PORT")),
        };
        let host = match url.host() {
            Some(Host::Domain(name)) => decode("host", name)?.into_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(bad("needs a host: postgres://USER:PASSWORD@HOST:PORT")),
        };
        if host.is_empty() || host.contains(',') {
            return Err(bad("exactly one host is supported"));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(bad(
                "must not name a database: the proxy serves every database on the server \
                 and each client picks one; remove the `/dbname` part",
            ));
        }
        if url.fragment().is_some() {
            return Err(bad("must not have a `#fragment`"));
        }

        let mut config = Config::default();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => config.server_tls.mode = ssl_mode(&value)?,
                "sslrootcert" => config.server_tls.ca_file = Some(PathBuf::from(value.as_ref())),
                other => {
                    return Err(bad(format!(
                        "query parameter `{other}` is not supported (only sslmode and sslrootcert)"
                    )))
                }
            }
        }
        config.auth = AuthConfig {
            method: AuthMethod::ScramSha256,
            admin_users: vec![user.clone().into_owned()],
            stats_users: Vec::new(),
        };
        config
            .users
            .push(UserConfig::new(user.into_owned(), password.into_owned()));
        config.databases.insert(
            WILDCARD.to_owned(),
            DatabaseConfig {
                host,
                port: url.port().unwrap_or(5432),
                ..DatabaseConfig::default()
            },
        );
        config.validate()?;
        Ok(config)
    }
}

fn bad(why: impl Into<String>) -> ConfigError {
    ConfigError::Url(why.into())
}

fn decode<'a>(what: &str, raw: &'a str) -> Result<Cow<'a, str>, ConfigError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad(format!("the {what} is not UTF-8 once percent-decoded")))
}

fn ssl_mode(value: &str) -> Result<ServerTlsMode, ConfigError> {
    Ok(match value {
        "disable" => ServerTlsMode::Disable,
        "prefer" => ServerTlsMode::Prefer,
        "require" => ServerTlsMode::Require,
        "verify-ca" => ServerTlsMode::VerifyCa,
        "verify-full" => ServerTlsMode::VerifyFull,
        // libpq's `allow` tries plaintext first; the proxy does not offer that downgrade.
        other => {
            return Err(bad(format!(
                "sslmode `{other}` is not supported \
                 (disable, prefer, require, verify-ca or verify-full)"
            )))
        }
    })
}

#[cfg(test)]
mod tests;
