//! Verifiers for users that do not exist, so a SCRAM exchange for an unknown user looks and
//! takes as long as one for a known user with a wrong password (PostgreSQL does the same).

use std::sync::OnceLock;

use crate::keys::hmac;
use crate::ScramVerifier;

/// A random key drawn once per process. It is a static, not a handle, because
/// [`scram_mock_verifier`] takes none; it is written once and never changes, so it is not
/// shared mutable state, and nothing depends on its value.
static MOCK_KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// A verifier for a user that does not exist. The salt is derived from the user name so that
/// repeated attempts see the same salt, as they would for a real user (a salt that changed
/// every time would reveal that the user is unknown). The keys are pseudo-random: a proof
/// matches only if SHA-256 of the client key equals StoredKey, so every proof fails.
pub fn scram_mock_verifier(user: &str) -> ScramVerifier {
    let key = MOCK_KEY.get_or_init(rand::random);
    let salt = hmac(key, &[b"salt\0", user.as_bytes()]);
    ScramVerifier {
        iterations: 4096,
        salt: salt[..16].to_vec(),
        stored_key: hmac(key, &[b"stored key\0", user.as_bytes()]),
        server_key: hmac(key, &[b"server key\0", user.as_bytes()]),
    }
}
