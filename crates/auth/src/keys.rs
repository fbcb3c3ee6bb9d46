//! SCRAM-SHA-256 key derivation (RFC 5802 section 3) and the small primitives around it.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Length of SHA-256 outputs, and so of every SCRAM-SHA-256 key.
pub(crate) const KEY_LEN: usize = 32;

pub(crate) type Key = [u8; KEY_LEN];

/// `HMAC-SHA-256(key, part1 || part2 || ...)`.
pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> Key {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub(crate) fn sha256(data: &[u8]) -> Key {
    Sha256::digest(data).into()
}

pub(crate) fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Appends the base64 of `data` to `out`.
pub(crate) fn b64_append(data: &[u8], out: &mut String) {
    STANDARD.encode_string(data, out);
}

pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Decodes base64 that must hold exactly one key.
pub(crate) fn b64_key(text: &str) -> Option<Key> {
    b64_decode(text)?.try_into().ok()
}

/// Prepares a password the way PostgreSQL does before hashing it for SCRAM: SASLprep when the
/// password is valid UTF-8 and allowed by SASLprep, the raw bytes otherwise. PostgreSQL stores
/// passwords as byte strings, so falling back (rather than refusing) is what keeps us
/// compatible with verifiers it made.
pub(crate) fn saslprep(password: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(password) {
        Ok(text) => match stringprep::saslprep(text) {
            Ok(Cow::Borrowed(prepared)) => Cow::Borrowed(prepared.as_bytes()),
            Ok(Cow::Owned(prepared)) => Cow::Owned(prepared.into_bytes()),
            Err(_) => Cow::Borrowed(password),
        },
        Err(_) => Cow::Borrowed(password),
    }
}

/// `SaltedPassword = Hi(Normalize(password), salt, i)`, where Hi is PBKDF2-HMAC-SHA-256.
pub(crate) fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> Key {
    // PBKDF2 with zero rounds is not defined; PostgreSQL never stores fewer than one.
    let iterations = iterations.max(1);
    pbkdf2::pbkdf2_hmac_array::<Sha256, KEY_LEN>(&saslprep(password), salt, iterations)
}

pub(crate) fn client_key(salted_password: &Key) -> Key {
    hmac(salted_password, &[b"Client Key"])
}

pub(crate) fn server_key(salted_password: &Key) -> Key {
    hmac(salted_password, &[b"Server Key"])
}

pub(crate) fn xor(a: &Key, b: &Key) -> Key {
    let mut out = *a;
    for (o, b) in out.iter_mut().zip(b) {
        *o ^= b;
    }
    out
}

/// Lower-case hex, as PostgreSQL writes md5 digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}
