//! Test support for dbwarden.
//!
//! - [`PgCluster`]: throw-away PostgreSQL servers (also used by `dbwarden demo`).
//!
//! Everything here is for tests and demos: servers run with durability off
//! and trust the unix socket.

pub mod pg;

pub use pg::{quote_ident, quote_literal, HbaAuth, PgCluster, PgError, PgOptions, StopMode};
