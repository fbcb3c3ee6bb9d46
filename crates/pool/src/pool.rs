use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::age::Age;
use crate::lease::{Lease, Permit};
use crate::waiter::Waiter;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("no server connection became available within {0:?} (pool size {1})")]
    Timeout(Duration, u32),
    #[error("the pool is closed")]
    Closed,
}

/// What a checkout hands out.
pub enum Grant<C: Send + 'static> {
    /// An idle connection, ready to use.
    Ready(Lease<C>),
    /// Capacity for a new connection: the caller opens it and calls [`Permit::fulfil`].
    Open(Permit<C>),
}

/// Point-in-time counters for metrics and the admin console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub max: u32,
    /// Connections open or being opened (idle + leased + opening).
    pub total: u32,
    pub idle: u32,
    pub waiting: u32,
}

pub(crate) struct Idle<C> {
    pub conn: Box<C>,
    /// `age.returned` is when it went idle.
    pub age: Age,
}

pub(crate) struct State<C: Send + 'static> {
    pub idle: Vec<Idle<C>>,
    pub total: u32,
    pub max: u32,
    pub waiters: VecDeque<(u64, oneshot::Sender<Grant<C>>)>,
    pub next_waiter: u64,
    pub closed: bool,
}

pub(crate) struct Shared<C: Send + 'static> {
    pub state: Mutex<State<C>>,
}

/// A pool of connections of type `C`. Cloning is cheap and clones share the pool.
pub struct Pool<C: Send + 'static> {
    pub(crate) shared: Arc<Shared<C>>,
}

impl<C: Send + 'static> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl<C: Send + 'static> Pool<C> {
    pub fn new(max: u32) -> Pool<C> {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    idle: Vec::new(),
                    total: 0,
                    max: max.max(1),
                    waiters: VecDeque::new(),
                    next_waiter: 0,
                    closed: false,
                }),
            }),
        }
    }

    /// Gets a connection or the right to open one, waiting up to `timeout` in FIFO order.
    pub async fn checkout(&self, timeout: Duration) -> Result<Grant<C>, PoolError> {
        let waiter = {
            let mut st = self.shared.state.lock();
            if st.closed {
                return Err(PoolError::Closed);
            }
            // Only jump the queue when nobody is waiting: FIFO is a promise.
            if st.waiters.is_empty() {
                // Most recently used first: its server caches are warm.
                if let Some(idle) = st.idle.pop() {
                    return Ok(Grant::Ready(Lease::new(self.clone(), idle.conn, idle.age)));
                }
                if st.total < st.max {
                    st.total += 1;
                    return Ok(Grant::Open(Permit::new(self.clone())));
                }
            }
            let (tx, rx) = oneshot::channel();
            let id = st.next_waiter;
            st.next_waiter += 1;
            st.waiters.push_back((id, tx));
            Waiter::new(self.clone(), id, rx)
        };
        let max = self.shared.state.lock().max;
        match tokio::time::timeout(timeout, waiter.wait()).await {
            Ok(Some(grant)) => Ok(grant),
            Ok(None) => Err(PoolError::Closed),
            Err(_) => Err(PoolError::Timeout(timeout, max)),
        }
    }

    /// Returns a healthy, clean connection for reuse.
    /// `used`: a client had it, so it is idle (and known good) from now on.
    pub(crate) fn put_back(&self, conn: Box<C>, mut age: Age, used: bool) {
        let mut st = self.shared.state.lock();
        if st.closed || st.total > st.max {
            // Shrunk by a reload, or closing: let this one go (the caller's drop closes it).
            st.total -= 1;
            drop(st);
            drop(conn);
            return;
        }
        if used {
            // A waiter that gets it at once need not health-check it.
            let now = Instant::now();
            age.idle_since = now;
            age.known_good = now;
        }
        let lease = Lease::new(self.clone(), conn, age);
        if let Some(Grant::Ready(lease)) = offer(&mut st, Grant::Ready(lease)) {
            let (conn, age) = lease.into_parts();
            st.idle.push(Idle { conn, age });
        }
    }

    /// A connection (or the capacity reserved for one) is gone: give its slot to the next waiter.
    pub(crate) fn forget_one(&self) {
        let mut st = self.shared.state.lock();
        if !st.closed && st.total <= st.max {
            // The slot moves to the waiter, so `total` stays as it is.
            match offer(&mut st, Grant::Open(Permit::new(self.clone()))) {
                None => return,
                Some(Grant::Open(p)) => p.defuse(),
                Some(Grant::Ready(_)) => unreachable!("offer returns what it was given"),
            }
        }
        st.total -= 1;
    }

    pub(crate) fn remove_waiter(&self, id: u64) {
        let mut st = self.shared.state.lock();
        if let Some(i) = st.waiters.iter().position(|(w, _)| *w == id) {
            st.waiters.remove(i);
        }
    }

    /// Changes the size (on reload). Waiters get the new room at once; extra connections
    /// close as they come back.
    pub fn set_max(&self, max: u32) {
        let mut st = self.shared.state.lock();
        st.max = max.max(1);
        while st.total < st.max && !st.waiters.is_empty() {
            match offer(&mut st, Grant::Open(Permit::new(self.clone()))) {
                None => st.total += 1,
                Some(Grant::Open(p)) => p.defuse(),
                Some(Grant::Ready(_)) => unreachable!("offer returns what it was given"),
            }
        }
    }

    /// Takes idle connections that have idled longer than `max_idle` (keeping `keep` of them)
    /// or lived longer than `lifetime` (each with its own jitter, see [`LIFETIME_JITTER`]),
    /// so the caller can close them. Zero means "no limit".
    ///
    /// [`LIFETIME_JITTER`]: crate::LIFETIME_JITTER
    pub fn take_expired(&self, max_idle: Duration, lifetime: Duration, keep: u32) -> Vec<C> {
        let now = Instant::now();
        let mut st = self.shared.state.lock();
        let mut out = Vec::new();
        let mut kept = Vec::with_capacity(st.idle.len());
        let idle = std::mem::take(&mut st.idle);
        let mut remaining = idle.len() as u32;
        for i in idle {
            let too_old = i.age.outlived(lifetime, now);
            let too_idle =
                !max_idle.is_zero() && i.age.idle_for(now) >= max_idle && remaining > keep;
            if too_old || too_idle {
                remaining -= 1;
                out.push(*i.conn);
            } else {
                kept.push(i);
            }
        }
        st.idle = kept;
        st.total -= out.len() as u32;
        out
    }

    /// Takes every idle connection not known good for at least `older_than`, for a health
    /// check; the caller returns each with `mark_checked` and `release`, or drops it. Such a
    /// return keeps the connection's idle time (for `server_idle_timeout`) running.
    pub fn take_idle_for_check(&self, older_than: Duration) -> Vec<Lease<C>> {
        let now = Instant::now();
        let mut st = self.shared.state.lock();
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut st.idle)
            .into_iter()
            .partition(|i| i.age.unchecked_for(now) >= older_than);
        st.idle = keep;
        due.into_iter()
            .map(|i| Lease::for_check(self.clone(), i.conn, i.age))
            .collect()
    }

    /// Permits to open up to `n` new connections, as far as the size allows (to replace
    /// connections a health check found broken).
    pub fn reserve(&self, n: u32) -> Vec<Permit<C>> {
        let mut st = self.shared.state.lock();
        let mut out = Vec::new();
        while !st.closed && (out.len() as u32) < n && st.total < st.max {
            st.total += 1;
            out.push(Permit::new(self.clone()));
        }
        out
    }

    /// Permits to open connections so that at least `min_idle` are idle (within the size).
    pub fn permits_for_min_idle(&self, min_idle: u32) -> Vec<Permit<C>> {
        let mut st = self.shared.state.lock();
        let mut out = Vec::new();
        while !st.closed
            && (st.idle.len() as u32) + (out.len() as u32) < min_idle
            && st.total < st.max
        {
            st.total += 1;
            out.push(Permit::new(self.clone()));
        }
        out
    }

    /// Closes the pool: waiters get `Closed`, idle connections are handed back to be closed.
    pub fn close(&self) -> Vec<C> {
        let mut st = self.shared.state.lock();
        st.closed = true;
        st.waiters.clear();
        let idle = std::mem::take(&mut st.idle);
        st.total -= idle.len() as u32;
        idle.into_iter().map(|i| *i.conn).collect()
    }

    pub fn stats(&self) -> PoolStats {
        let st = self.shared.state.lock();
        PoolStats {
            max: st.max,
            total: st.total,
            idle: st.idle.len() as u32,
            waiting: st.waiters.len() as u32,
        }
    }
}

/// Hands `grant` to the first waiter still listening. A waiter that went away gives the grant
/// back (it is never dropped here, under the lock, where its `Drop` would lock again).
fn offer<C: Send + 'static>(st: &mut State<C>, mut grant: Grant<C>) -> Option<Grant<C>> {
    while let Some((_, tx)) = st.waiters.pop_front() {
        match tx.send(grant) {
            Ok(()) => return None,
            Err(back) => grant = back,
        }
    }
    Some(grant)
}
