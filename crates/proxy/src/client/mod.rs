//! The client side: handshake, authentication, and the session that follows.

mod auth;
pub(crate) mod handshake;
mod params;
mod session;

pub use session::{close_busy, finish_session, handle_client, killed, link, unlink, watch};

#[cfg(test)]
mod tests;
