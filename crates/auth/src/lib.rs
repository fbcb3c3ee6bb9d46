//! The cryptography of PostgreSQL authentication, with no I/O.
//!
//! The proxy uses this crate in two roles:
//! - as a **server**, to verify its own clients: [`md5_verify`], [`plain_verify`] and
//!   [`ScramServer`] (SCRAM-SHA-256, RFC 5802 / RFC 7677 as PostgreSQL speaks it);
//! - as a **client**, to log in to PostgreSQL: [`md5_response`] and [`ScramClient`].
//!
//! Stored credentials are a [`Secret`]: a plaintext password, a PostgreSQL `md5…` hash or a
//! `SCRAM-SHA-256$…` verifier, in the same text forms `pg_authid.rolpassword` uses.
//!
//! Every function here takes message payloads as bytes and returns bytes or a verdict;
//! framing and sockets belong to the caller.

mod error;
mod keys;
mod md5_auth;
mod mock;
mod plain;
mod scram_client;
mod scram_message;
mod scram_server;
mod secret;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_vectors;

pub use error::AuthError;
pub use md5_auth::{md5_response, md5_salt, md5_verify};
pub use mock::scram_mock_verifier;
pub use plain::{plain_verify, plain_verify_user};
pub use scram_client::ScramClient;
pub use scram_server::ScramServer;
pub use secret::{ScramVerifier, Secret};
