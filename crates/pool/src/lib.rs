//! The server-connection pool, generic over the connection type and free of I/O.
//!
//! A checkout either gets an idle connection, a [`Permit`] to open a new one (capacity is
//! reserved for it), or waits in a FIFO queue. Waiters are `oneshot`s that take themselves out of
//! the queue when dropped, so a client that gives up (timeout, disconnect) never strands a
//! connection. The lock is a `parking_lot` mutex held for a few pointer moves and never across
//! `.await`.

mod age;
mod lease;
mod pool;
mod waiter;

pub use age::LIFETIME_JITTER;
pub use lease::{Lease, Permit};
pub use pool::{Grant, Pool, PoolError, PoolStats};

#[cfg(test)]
mod tests;
