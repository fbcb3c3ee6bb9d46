//! Cleartext password checks (`AuthenticationCleartextPassword`).

use subtle::ConstantTimeEq;

use crate::md5_auth::md5_hex;
use crate::{ScramVerifier, Secret};

/// Checks a cleartext `PasswordMessage` payload (a trailing NUL is tolerated) against a
/// [`Secret::Plain`] (constant-time comparison) or a [`Secret::Scram`] (by deriving keys with
/// the verifier's salt and iteration count, one PBKDF2 run).
///
/// An md5 hash is salted with the user name, which this function does not have, so
/// [`Secret::Md5`] gives `false`; use [`plain_verify_user`] when the secret may be md5.
pub fn plain_verify(secret: &Secret, password: &[u8]) -> bool {
    let password = strip_nul(password);
    match secret {
        // An empty password never logs in (see `Secret::parse`), even if built by hand.
        Secret::Plain(stored) if stored.is_empty() => false,
        Secret::Plain(stored) => stored.as_bytes().ct_eq(password).into(),
        Secret::Scram(verifier) => {
            let derived =
                ScramVerifier::from_password_bytes(password, &verifier.salt, verifier.iterations);
            let stored_ok = derived.stored_key.ct_eq(&verifier.stored_key);
            let server_ok = derived.server_key.ct_eq(&verifier.server_key);
            (stored_ok & server_ok).into()
        }
        Secret::Md5(_) => false,
    }
}

/// As [`plain_verify`], and also checks [`Secret::Md5`] secrets, which need the user name.
pub fn plain_verify_user(secret: &Secret, user: &str, password: &[u8]) -> bool {
    match secret {
        Secret::Md5(stored) => {
            let password = strip_nul(password);
            if password.is_empty() {
                return false;
            }
            let expected = format!("md5{}", md5_hex(&[password, user.as_bytes()]));
            expected
                .as_bytes()
                .ct_eq(stored.to_ascii_lowercase().as_bytes())
                .into()
        }
        Secret::Plain(_) | Secret::Scram(_) => plain_verify(secret, password),
    }
}

/// The wire form of a `PasswordMessage` ends with a NUL; accept the payload with or without it
/// so callers cannot get this subtly wrong. PostgreSQL passwords cannot contain NUL.
fn strip_nul(password: &[u8]) -> &[u8] {
    password.strip_suffix(b"\0").unwrap_or(password)
}

#[cfg(test)]
mod tests;
