//! PostgreSQL's md5 password exchange (`AuthenticationMD5Password`).
//!
//! The client sends `"md5" + hex(md5(hex(md5(password || user)) || salt))`, so a server that
//! stores only `md5(password || user)` can check it. Weak by today's standards, but still what
//! many deployments and PgBouncer userlists use.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::keys::hex;
use crate::Secret;

/// A fresh random salt for one `AuthenticationMD5Password` request.
pub fn md5_salt() -> [u8; 4] {
    rand::random()
}

/// Checks a client's md5 `PasswordMessage` payload (`"md5"` + 32 hex digits; a trailing NUL is
/// tolerated) against a [`Secret::Plain`] or [`Secret::Md5`] secret, in constant time.
/// A SCRAM verifier cannot check an md5 response, so it always gives `false`.
pub fn md5_verify(secret: &Secret, user: &str, salt: [u8; 4], client_response: &[u8]) -> bool {
    let client_response = client_response
        .strip_suffix(b"\0")
        .unwrap_or(client_response);
    let password_hash = match secret {
        // An empty password never logs in (see `Secret::parse`), even if built by hand.
        Secret::Plain(password) if password.is_empty() => return false,
        Secret::Plain(password) => md5_hex(&[password.as_bytes(), user.as_bytes()]),
        Secret::Md5(stored) => match stored.strip_prefix("md5") {
            Some(digest) if digest.len() == 32 => digest.to_ascii_lowercase(),
            _ => return false,
        },
        Secret::Scram(_) => return false,
    };
    let expected = salted_response(&password_hash, salt);
    // Length is public (always 35 for a well-formed response); the content is compared in
    // constant time so timing does not reveal how many leading characters matched.
    expected.as_bytes().ct_eq(client_response).into()
}

/// The `PasswordMessage` payload (without its trailing NUL) a client sends to answer
/// `AuthenticationMD5Password` with `salt`.
pub fn md5_response(user: &str, password: &str, salt: [u8; 4]) -> String {
    salted_response(&md5_hex(&[password.as_bytes(), user.as_bytes()]), salt)
}

/// `"md5" + hex(md5(password_hash || salt))`, where `password_hash` is the 32 hex digits.
fn salted_response(password_hash: &str, salt: [u8; 4]) -> String {
    format!("md5{}", md5_hex(&[password_hash.as_bytes(), &salt]))
}

pub(crate) fn md5_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hex(&hasher.finalize())
}

#[cfg(test)]
mod tests;
