//! `[auth]` and `[[users]]`: how clients prove who they are.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// How the proxy authenticates clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// Accept any client that names a configured user, without a password.
    Trust,
    /// MD5 challenge-response (PostgreSQL's legacy `md5`).
    Md5,
    /// SCRAM-SHA-256 (PostgreSQL's default since version 14).
    // kebab-case alone would give "scram-sha256"; PostgreSQL spells it "scram-sha-256".
    #[serde(rename = "scram-sha-256")]
    #[default]
    ScramSha256,
}

impl AuthMethod {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Trust => "trust",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
        }
    }
}

/// The `[auth]` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `"trust"`, `"md5"` or `"scram-sha-256"`.
    /// Default: `"scram-sha-256"`. Reload: yes (new logins).
    pub method: AuthMethod,
    /// Users allowed into the admin console; each must be listed in `[[users]]` unless
    /// `method` is `"trust"`.
    /// Default: `[]`. Reload: yes (new logins).
    pub admin_users: Vec<String>,
    /// Users allowed into the admin console for its read-only commands (`SHOW ...`); each
    /// must be listed in `[[users]]` unless `method` is `"trust"`.
    /// Default: `[]`. Reload: yes (new logins).
    pub stats_users: Vec<String>,
}

/// One `[[users]]` entry: a client login the proxy accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user name clients log in with. Required; unique.
    /// Reload: yes (new logins).
    pub name: String,
    /// What clients must prove they know: a plaintext password, an MD5 hash
    /// (`"md5"` followed by 32 hex digits, as in `pg_authid`), or a SCRAM verifier
    /// (`"SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"`).
    /// Required unless `auth.method` is `"trust"`.
    /// Default: none. Reload: yes (new logins).
    pub password: Option<String>,
    /// Plaintext password used to log in to PostgreSQL as this user, needed when `password`
    /// is a hash. Hashes are refused here: SCRAM cannot log in with one.
    /// Default: `password` when that is plaintext. Reload: yes (new server connections).
    pub server_password: Option<String>,
    /// Overrides `pool.size` and the database's `pool_size` for this user's pools.
    /// Default: none. Unit: connections. Minimum 1. Reload: yes.
    pub pool_size: Option<u32>,
}

impl UserConfig {
    /// A user with a plaintext password and nothing else set.
    pub fn new(name: impl Into<String>, password: impl Into<String>) -> Self {
        UserConfig {
            name: name.into(),
            password: Some(password.into()),
            server_password: None,
            pool_size: None,
        }
    }

    /// What kind of secret `password` holds, if any.
    pub fn password_kind(&self) -> Option<PasswordKind> {
        self.password.as_deref().map(PasswordKind::of)
    }

    /// The plaintext password for logging in upstream as this user: `server_password`,
    /// else `password` when it is plaintext.
    pub fn upstream_password(&self) -> Option<&str> {
        if let Some(server) = &self.server_password {
            return Some(server);
        }
        match self.password.as_deref() {
            Some(p) if PasswordKind::of(p) == PasswordKind::Plain => Some(p),
            _ => None,
        }
    }
}

/// The form a stored password takes; the same rules PostgreSQL applies to `pg_authid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordKind {
    /// The password itself.
    Plain,
    /// `"md5" || md5(password || username)` in lowercase hex.
    Md5Hash,
    /// A SCRAM-SHA-256 verifier (well-formed or not; see [`check_scram_verifier`]).
    ScramVerifier,
}

pub(crate) const SCRAM_PREFIX: &str = "SCRAM-SHA-256$";

impl PasswordKind {
    /// Classify a stored password.
    pub fn of(password: &str) -> PasswordKind {
        if password.starts_with(SCRAM_PREFIX) {
            PasswordKind::ScramVerifier
        } else if is_md5_hash(password) {
            PasswordKind::Md5Hash
        } else {
            PasswordKind::Plain
        }
    }
}

fn is_md5_hash(password: &str) -> bool {
    password.len() == 35
        && password.starts_with("md5")
        && password[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Check the shape of `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
///
/// PostgreSQL silently treats a malformed verifier as a plaintext password; a config file
/// should rather say so, because the user could then never log in.
pub fn check_scram_verifier(verifier: &str) -> Result<(), String> {
    let rest = verifier
        .strip_prefix(SCRAM_PREFIX)
        .ok_or("does not start with `SCRAM-SHA-256$`")?;
    let (params, keys) = rest
        .split_once('$')
        .ok_or("expected `<iterations>:<salt>$<StoredKey>:<ServerKey>`")?;
    let (iterations, salt) = params
        .split_once(':')
        .ok_or("expected `<iterations>:<salt>` after `SCRAM-SHA-256$`")?;
    match iterations.parse::<u32>() {
        Ok(n) if n > 0 => {}
        _ => {
            return Err(format!(
                "iteration count `{iterations}` is not a positive integer"
            ))
        }
    }
    STANDARD
        .decode(salt)
        .map_err(|_| "salt is not base64".to_owned())?;
    let (stored, server) = keys
        .split_once(':')
        .ok_or("expected `<StoredKey>:<ServerKey>` after the salt")?;
    for (what, key) in [("StoredKey", stored), ("ServerKey", server)] {
        match STANDARD.decode(key) {
            Ok(bytes) if bytes.len() == 32 => {}
            _ => return Err(format!("{what} is not 32 bytes of base64")),
        }
    }
    Ok(())
}
