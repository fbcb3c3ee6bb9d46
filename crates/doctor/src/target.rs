//! Connection URLs: `postgres://`, `postgresql://`, `mysql://` (`mariadb://`), `redis://`,
//! `rediss://`. Passwords come from the URL or the engine's usual environment variable
//! and are never printed: [`Secret`] has no `Display` and redacts itself in `Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::error::DoctorError;
use crate::model::TargetInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Mysql,
    Redis,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Redis => "redis",
        }
    }

    /// The check group that belongs to this engine.
    pub fn group(self) -> &'static str {
        match self {
            Engine::Postgres => "pg",
            Engine::Mysql => "mysql",
            Engine::Redis => "redis",
        }
    }

    fn password_env(self) -> &'static str {
        match self {
            Engine::Postgres => "PGPASSWORD",
            Engine::Mysql => "MYSQL_PWD",
            Engine::Redis => "REDISCLI_AUTH",
        }
    }
}

/// libpq's `sslmode` values; MySQL's `ssl-mode` and `rediss://` map onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Allow => "allow",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection without TLS is acceptable.
    pub fn allows_plain(self) -> bool {
        self <= TlsMode::Prefer
    }

    pub fn verifies_chain(self) -> bool {
        self >= TlsMode::VerifyCa
    }

    fn parse(s: &str) -> Option<TlsMode> {
        Some(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "disable" | "disabled" => TlsMode::Disable,
            "allow" => TlsMode::Allow,
            "prefer" | "preferred" => TlsMode::Prefer,
            "require" | "required" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" | "verify-identity" => TlsMode::VerifyFull,
            _ => return None,
        })
    }
}

/// A password. Deliberately without `Display`, so it cannot end up in a report.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// PostgreSQL/MySQL database name; Redis database number as text.
    pub database: Option<String>,
    pub tls: TlsMode,
    /// CA bundle to verify the server with (`sslrootcert`, `ssl-ca`); system roots otherwise.
    pub root_cert: Option<PathBuf>,
    /// Name to verify and send as SNI when it differs from `host` (`sslsni`/`tls-servername`).
    pub server_name: Option<String>,
    /// `connect_timeout` from the URL; overrides the per-phase connect timeouts.
    pub connect_timeout: Option<Duration>,
    /// Remaining URL parameters, kept for the report.
    pub params: BTreeMap<String, String>,
}

impl Target {
    /// Parses a URL; the password falls back to the engine's environment variable.
    pub fn parse(s: &str) -> Result<Target, DoctorError> {
        let mut t = Self::parse_url(s)?;
        if t.password.is_none() {
            if let Ok(p) = std::env::var(t.engine.password_env()) {
                t.password = Some(Secret(p));
            }
        }
        Ok(t)
    }

    /// Parses a URL without looking at the environment.
    pub fn parse_url(s: &str) -> Result<Target, DoctorError> {
        let url = Url::parse(s)?;
        let (engine, default_port, mut tls) = match url.scheme() {
            "postgres" | "postgresql" => (Engine::Postgres, 5432, TlsMode::Prefer),
            "mysql" | "mariadb" => (Engine::Mysql, 3306, TlsMode::Prefer),
            "redis" => (Engine::Redis, 6379, TlsMode::Disable),
            "rediss" => (Engine::Redis, 6379, TlsMode::VerifyFull),
            other => return Err(DoctorError::Scheme(other.to_string())),
        };
        let mut host = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .filter(|h| !h.is_empty());
        let mut port = url.port().unwrap_or(default_port);
        let decode = percent_encoding_decode;
        let mut user = Some(decode(url.username())).filter(|u| !u.is_empty());
        let mut password = url.password().map(|p| Secret(decode(p)));
        let path = decode(url.path().trim_start_matches('/'));
        let mut database = Some(path).filter(|d| !d.is_empty());
        let mut root_cert = None;
        let mut server_name = None;
        let mut connect_timeout = None;
        let mut params = BTreeMap::new();
        for (k, v) in url.query_pairs() {
            let bad = || DoctorError::Param {
                name: k.to_string(),
                value: v.to_string(),
            };
            match k.as_ref() {
                "sslmode" | "ssl-mode" | "ssl_mode" | "tls" => {
                    tls = TlsMode::parse(&v).ok_or_else(bad)?;
                }
                "sslrootcert" | "ssl-ca" | "ca" => root_cert = Some(PathBuf::from(v.as_ref())),
                "sslsni" | "servername" | "tls-servername" => {
                    // libpq's sslsni=0/1 switches SNI off/on; any other value is a name.
                    if v != "0" && v != "1" {
                        server_name = Some(v.to_string());
                    }
                }
                "connect_timeout" => {
                    let secs: f64 = v.parse().map_err(|_| bad())?;
                    if secs > 0.0 {
                        connect_timeout = Some(Duration::from_secs_f64(secs));
                    }
                }
                "host" => host = Some(v.to_string()),
                "port" => port = v.parse().map_err(|_| bad())?,
                "user" => user = Some(v.to_string()),
                "password" => password = Some(Secret(v.to_string())),
                "dbname" | "db" | "database" => database = Some(v.to_string()),
                // rediss:// without certificate verification; plain redis:// stays plain.
                "insecure" if tls >= TlsMode::Require => tls = TlsMode::Require,
                _ => {
                    params.insert(k.to_string(), v.to_string());
                }
            }
        }
        let host = host.ok_or(DoctorError::NoHost)?;
        if host.starts_with('/') {
            // A Unix-socket directory: the layered probe is about the network path.
            return Err(DoctorError::Param {
                name: "host".into(),
                value: host,
            });
        }
        if engine == Engine::Postgres {
            user = user
                .or_else(|| std::env::var("PGUSER").ok())
                .or_else(os_user);
            database = database
                .or_else(|| std::env::var("PGDATABASE").ok())
                .or_else(|| user.clone());
        }
        if engine == Engine::Mysql {
            user = user.or_else(os_user);
        }
        if engine == Engine::Redis {
            if let Some(db) = &database {
                db.parse::<u32>().map_err(|_| DoctorError::Param {
                    name: "db".into(),
                    value: db.clone(),
                })?;
            }
        }
        Ok(Target {
            engine,
            host,
            port,
            user,
            password,
            database,
            tls,
            root_cert,
            server_name,
            connect_timeout,
            params,
        })
    }

    /// The URL as it may be shown: same fields, the password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        let scheme = match (self.engine, self.tls) {
            (Engine::Redis, m) if m >= TlsMode::Require => "rediss",
            (e, _) => e.as_str(),
        };
        let mut s = format!("{scheme}://");
        if let Some(u) = &self.user {
            s.push_str(u);
        }
        if self.password.is_some() {
            s.push_str(":***");
        }
        if self.user.is_some() || self.password.is_some() {
            s.push('@');
        }
        if self.host.contains(':') {
            s.push_str(&format!("[{}]:{}", self.host, self.port));
        } else {
            s.push_str(&format!("{}:{}", self.host, self.port));
        }
        if let Some(d) = &self.database {
            s.push('/');
            s.push_str(d);
        }
        if self.engine != Engine::Redis {
            s.push_str(&format!("?sslmode={}", self.tls.as_str()));
        }
        s
    }

    pub fn info(&self) -> TargetInfo {
        TargetInfo {
            url: self.redacted_url(),
            engine: self.engine.as_str().to_string(),
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            database: self.database.clone(),
            tls_mode: self.tls.as_str().to_string(),
        }
    }

    /// The name the certificate must carry.
    pub fn tls_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.host)
    }
}

fn os_user() -> Option<String> {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
}

/// `url` leaves user info percent-encoded; passwords often contain `@` or `%`.
fn percent_encoding_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
