//! Stored credentials: [`Secret`] and the SCRAM verifier [`ScramVerifier`].

use std::fmt;

use rand::RngCore;

use crate::keys::{self, Key};
use crate::AuthError;

/// Prefix of a SCRAM-SHA-256 verifier in `pg_authid.rolpassword`.
const SCRAM_PREFIX: &str = "SCRAM-SHA-256$";
/// Salt length and iteration count PostgreSQL uses for new verifiers.
const DEFAULT_SALT_LEN: usize = 16;
const DEFAULT_ITERATIONS: u32 = 4096;

/// A user's stored credential, in one of the forms PostgreSQL keeps in `pg_authid.rolpassword`.
///
/// `Debug` is written by hand so that logging a `Secret` never prints the password or hash.
#[derive(Clone)]
pub enum Secret {
    /// A cleartext password.
    Plain(String),
    /// `"md5"` followed by 32 lower-case hex digits of `md5(password || username)`.
    Md5(String),
    /// A SCRAM-SHA-256 verifier.
    Scram(ScramVerifier),
}

impl Secret {
    /// Reads a stored secret:
    /// `"SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>"` is [`Secret::Scram`]
    /// (an error if malformed), `"md5"` + 32 hex digits is [`Secret::Md5`], anything else is
    /// [`Secret::Plain`]. An empty password is refused: PostgreSQL never lets one log in, and
    /// accepting it here would make an empty client password succeed.
    pub fn parse(secret: &str) -> Result<Secret, AuthError> {
        if secret.starts_with(SCRAM_PREFIX) {
            return ScramVerifier::parse(secret).map(Secret::Scram);
        }
        if let Some(digest) = secret.strip_prefix("md5") {
            if digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                // md5 verification hashes the hex text itself, so it must be in the
                // lower-case form PostgreSQL produces.
                return Ok(Secret::Md5(secret.to_ascii_lowercase()));
            }
        }
        if secret.is_empty() {
            return Err(AuthError::InvalidSecret("empty password".into()));
        }
        Ok(Secret::Plain(secret.to_owned()))
    }

    /// The verifier a SCRAM exchange needs. A SCRAM secret is returned as is. For a plaintext
    /// password a verifier is derived with a fresh random 16-byte salt and 4096 iterations;
    /// that costs a PBKDF2 run, so callers should derive once per user and cache the result.
    /// An md5 hash cannot yield SCRAM keys: [`AuthError::Unsupported`].
    pub fn scram_verifier(&self) -> Result<ScramVerifier, AuthError> {
        match self {
            Secret::Scram(verifier) => Ok(verifier.clone()),
            Secret::Plain(password) => {
                let mut salt = [0u8; DEFAULT_SALT_LEN];
                rand::thread_rng().fill_bytes(&mut salt);
                Ok(ScramVerifier::from_password(
                    password,
                    &salt,
                    DEFAULT_ITERATIONS,
                ))
            }
            Secret::Md5(_) => Err(AuthError::Unsupported(
                "SCRAM-SHA-256 cannot be used with an md5-hashed password",
            )),
        }
    }

    /// The cleartext password, when the secret is one.
    pub fn plaintext(&self) -> Option<&str> {
        match self {
            Secret::Plain(password) => Some(password),
            Secret::Md5(_) | Secret::Scram(_) => None,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Secret::Plain(<redacted>)"),
            Secret::Md5(_) => f.write_str("Secret::Md5(<redacted>)"),
            Secret::Scram(verifier) => f.debug_tuple("Secret::Scram").field(verifier).finish(),
        }
    }
}

/// A SCRAM-SHA-256 verifier: what the server stores instead of the password.
///
/// `Debug` shows only the iteration count and salt length: StoredKey and ServerKey let
/// whoever holds them impersonate the server, so they stay out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramVerifier {
    /// Derives the verifier of `password` (SASLprep-ed as PostgreSQL does) for a given salt and
    /// iteration count; with PostgreSQL's salt and count it reproduces PostgreSQL's verifier.
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Self {
        Self::from_password_bytes(password.as_bytes(), salt, iterations)
    }

    /// As [`ScramVerifier::from_password`], for a password received from a client, which
    /// PostgreSQL does not require to be UTF-8.
    pub(crate) fn from_password_bytes(password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let salted = keys::salted_password(password, salt, iterations);
        ScramVerifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: keys::sha256(&keys::client_key(&salted)),
            server_key: keys::server_key(&salted),
        }
    }

    /// Reads `"SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>"`.
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let invalid =
            |what: &str| AuthError::InvalidSecret(format!("SCRAM-SHA-256 verifier: {what}"));
        let rest = s
            .strip_prefix(SCRAM_PREFIX)
            .ok_or_else(|| invalid("missing \"SCRAM-SHA-256$\" prefix"))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or_else(|| invalid("expected <iterations>:<salt>$<StoredKey>:<ServerKey>"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or_else(|| invalid("expected <iterations>:<salt>"))?;
        let (stored_key, server_key) = keys
            .split_once(':')
            .ok_or_else(|| invalid("expected <StoredKey>:<ServerKey>"))?;

        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| invalid("iteration count is not a positive integer"))?;
        let salt = keys::b64_decode(salt)
            .filter(|salt| !salt.is_empty())
            .ok_or_else(|| invalid("salt is not non-empty base64"))?;
        let stored_key: Key = keys::b64_key(stored_key)
            .ok_or_else(|| invalid("StoredKey is not 32 bytes of base64"))?;
        let server_key: Key = keys::b64_key(server_key)
            .ok_or_else(|| invalid("ServerKey is not 32 bytes of base64"))?;
        Ok(ScramVerifier {
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }
}

impl fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCRAM_PREFIX}{}:{}${}:{}",
            self.iterations,
            keys::b64(&self.salt),
            keys::b64(&self.stored_key),
            keys::b64(&self.server_key)
        )
    }
}

impl fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
