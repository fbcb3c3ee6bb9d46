//! The PostgreSQL v3 wire protocol, with no I/O.
//!
//! Frames pass through as [`bytes::Bytes`] untouched; only what routing needs is decoded
//! (type byte, ReadyForQuery status, statement names, ErrorResponse fields, ParameterStatus).
//! Frontend and backend messages are different types, so a type byte never needs a runtime
//! "who sent this" check. Every length is checked against `4 <= len <= max` before anything is
//! allocated, and every parser here is fuzzed (see `fuzz/`).

pub mod backend;
pub mod encode;
mod error;
mod frame;
pub mod frontend;
mod scan;
pub mod sqlstate;
pub mod startup;

pub use error::ProtocolError;
pub use frame::{Decoder, Frame};
pub use scan::{ScanEvent, Scanner};
pub use sqlstate::SqlState;

/// Protocol 3.0, the only major version PostgreSQL speaks since 7.4.
pub const PROTOCOL_VERSION_3: u16 = 3;

/// Default cap on one message, as PgBouncer's generous default would be absurd for a proxy that
/// buffers small control messages; large rows (tens of MB) still fit.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 256 * 1024 * 1024;
