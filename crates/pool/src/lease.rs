use std::time::{Duration, Instant};

use crate::age::Age;
use crate::pool::Pool;

/// A connection checked out of the pool.
///
/// Dropping a lease closes the connection and frees its slot: the safe default for anything
/// that went wrong. A connection goes back for reuse only through [`Lease::release`], which the
/// session calls once it knows the connection is idle and clean.
pub struct Lease<C: Send + 'static> {
    /// Boxed so that a checkout and a release move a pointer, not the whole connection
    /// (the proxy's is a few hundred bytes, and each transaction moves it a dozen times).
    conn: Option<Box<C>>,
    age: Age,
    /// Handed to a client (rather than taken out for a health check): its release means
    /// the connection was just used.
    for_client: bool,
    pool: Option<Pool<C>>,
}

impl<C: Send + 'static> Lease<C> {
    pub(crate) fn new(pool: Pool<C>, conn: Box<C>, age: Age) -> Self {
        Lease {
            conn: Some(conn),
            age,
            for_client: true,
            pool: Some(pool),
        }
    }

    /// A lease for the pool's own health check: giving it back does not count as use.
    pub(crate) fn for_check(pool: Pool<C>, conn: Box<C>, age: Age) -> Self {
        Lease {
            conn: Some(conn),
            age,
            for_client: false,
            pool: Some(pool),
        }
    }

    pub fn conn(&self) -> &C {
        self.conn
            .as_ref()
            .expect("lease holds a connection until consumed")
    }

    pub fn conn_mut(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .expect("lease holds a connection until consumed")
    }

    /// When the connection was opened.
    pub fn created(&self) -> Instant {
        self.age.created
    }

    /// Whether the connection has outlived `lifetime` (`server_lifetime`, with this
    /// connection's jitter); never when `lifetime` is zero.
    pub fn outlived(&self, lifetime: Duration, now: Instant) -> bool {
        self.age.outlived(lifetime, now)
    }

    /// How long since the connection last proved to work (a client used it, or it passed a
    /// health check): what `server_check_delay` is compared with.
    pub fn unchecked_for(&self, now: Instant) -> Duration {
        self.age.unchecked_for(now)
    }

    /// The connection just passed a health check.
    pub fn mark_checked(&mut self) {
        self.age.known_good = Instant::now();
    }

    /// Returns the connection for reuse. Only for a connection that is idle and reset.
    pub fn release(mut self) {
        let conn = self.conn.take().expect("lease holds a connection");
        if let Some(pool) = self.pool.take() {
            pool.put_back(conn, self.age, self.for_client);
        }
    }

    /// Takes the connection out of the pool's accounting for good (its slot is freed).
    pub fn detach(mut self) -> C {
        let conn = self.conn.take().expect("lease holds a connection");
        if let Some(pool) = self.pool.take() {
            pool.forget_one();
        }
        *conn
    }

    pub(crate) fn into_parts(mut self) -> (Box<C>, Age) {
        self.pool = None;
        (
            self.conn.take().expect("lease holds a connection"),
            self.age,
        )
    }
}

impl<C: Send + 'static> Drop for Lease<C> {
    fn drop(&mut self) {
        // Close first, then free the slot, so the pool never exceeds its size.
        drop(self.conn.take());
        if let Some(pool) = self.pool.take() {
            pool.forget_one();
        }
    }
}

/// The right to open one new connection; capacity is reserved for it.
/// Dropping it (the connect failed) frees the slot for the next waiter.
pub struct Permit<C: Send + 'static> {
    pool: Option<Pool<C>>,
}

impl<C: Send + 'static> Permit<C> {
    pub(crate) fn new(pool: Pool<C>) -> Self {
        Permit { pool: Some(pool) }
    }

    /// The new connection is open: it becomes a lease.
    pub fn fulfil(mut self, conn: C) -> Lease<C> {
        let pool = self.pool.take().expect("permit holds its pool");
        Lease::new(pool, Box::new(conn), Age::new())
    }

    /// Forgets the permit without touching the pool (the caller fixes the accounting).
    pub(crate) fn defuse(mut self) {
        self.pool = None;
    }
}

impl<C: Send + 'static> Drop for Permit<C> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.forget_one();
        }
    }
}
