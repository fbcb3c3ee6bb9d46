//! Test support for dbwarden.
//!
//! - [`PgCluster`]: throw-away PostgreSQL servers (also used by `dbwarden demo`).
//! - [`test_certs`]: a CA and a server certificate for TLS tests.
//! - [`RawClient`] and [`raw::frame`]: a client that sends arbitrary, even
//!   malformed, protocol bytes.
//! - [`Relay`]: a TCP relay that injects latency, stalls, resets and refusals.
//! - [`OtlpReceiver`]: a local OTLP/HTTP endpoint that keeps the spans exported to it.
//!
//! Everything here is for tests and demos: servers run with durability off
//! and trust the unix socket.

pub mod otlp;
pub mod pg;
pub mod raw;
pub mod relay;
pub mod tls;

pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use pg::{quote_ident, quote_literal, HbaAuth, PgCluster, PgError, PgOptions, StopMode};
pub use raw::{frame, RawClient, RawMessage};
pub use relay::Relay;
pub use tls::{test_certs, TestCerts};
