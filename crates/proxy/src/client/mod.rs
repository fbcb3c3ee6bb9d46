//! The client side: handshake, authentication, and the session that follows.

mod auth;
mod handshake;
mod params;
mod session;

pub use session::handle_client;
