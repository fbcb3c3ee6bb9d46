//! Client-side timeouts around the relay: query, transaction, client idle, idle in
//! transaction, and the per-query deadlines clients pass in comments (see `deadline`).
//!
//! [`Timed`] wraps either mode's hooks and only watches: it learns from them whether the
//! server owes answers and whether a transaction is open, and names the next moment at which
//! something expires. Nothing is timed (not even `Instant::now`) unless a timeout is
//! configured or a query carries a deadline.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use dbwarden_config::PoolConfig;
use dbwarden_wire::backend::{self, tag as be};
use dbwarden_wire::encode::{self, Severity};
use dbwarden_wire::frontend::tag as fe;
use dbwarden_wire::{ProtocolError, SqlState};

use crate::relay::{relay, Act, Half, Hooks, RelayEnd};
use crate::server::{send_cancel, CancelTarget, ServerCtx};
use crate::stats::{Meter, TimeoutKind};
use crate::stream::Stream;

/// How long PostgreSQL gets to stop a query after the CancelRequest. Past this the server is
/// taken to be stuck (or unreachable) and the connection is closed rather than waited on.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// What the wrapped hooks know about the exchange.
pub trait Progress {
    /// The server still owes answers.
    fn outstanding(&self) -> bool;
    /// A transaction block is open (or failed) on the server.
    fn in_transaction(&self) -> bool;
}

/// The configured limits; `None` = off.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub query: Option<Duration>,
    pub transaction: Option<Duration>,
    pub client_idle: Option<Duration>,
    pub idle_transaction: Option<Duration>,
}

impl Limits {
    pub fn from_config(pool: &PoolConfig) -> Limits {
        let on = |d: Duration| (!d.is_zero()).then_some(d);
        Limits {
            query: on(pool.query_timeout),
            transaction: on(pool.transaction_timeout),
            client_idle: on(pool.client_idle_timeout),
            idle_transaction: on(pool.idle_transaction_timeout),
        }
    }

    fn any(&self) -> bool {
        self.query.is_some()
            || self.transaction.is_some()
            || self.client_idle.is_some()
            || self.idle_transaction.is_some()
    }
}

/// Which limit expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expired {
    Query(Duration),
    Transaction(Duration),
    Deadline,
    ClientIdle(Duration),
    IdleTransaction(Duration),
}

impl Expired {
    fn kind(self) -> TimeoutKind {
        match self {
            Expired::Query(_) => TimeoutKind::Query,
            Expired::Transaction(_) => TimeoutKind::Transaction,
            Expired::Deadline => TimeoutKind::Deadline,
            Expired::ClientIdle(_) => TimeoutKind::ClientIdle,
            Expired::IdleTransaction(_) => TimeoutKind::IdleTransaction,
        }
    }

    /// The sentence the client reads.
    fn describe(self) -> String {
        match self {
            Expired::Query(d) => format!("dbwarden query_timeout ({d:?})"),
            Expired::Transaction(d) => format!("dbwarden transaction_timeout ({d:?})"),
            Expired::Deadline => "the client's dbwarden_deadline".to_owned(),
            Expired::ClientIdle(d) => format!("dbwarden client_idle_timeout ({d:?})"),
            Expired::IdleTransaction(d) => format!("dbwarden idle_transaction_timeout ({d:?})"),
        }
    }
}

/// What the session does when the relay stops at a deadline.
pub enum Fired {
    /// Send a CancelRequest for the running query and keep relaying.
    Cancel,
    /// Close the server connection (PostgreSQL rolls back) and tell the client this FATAL.
    Close(SqlState, String),
    /// Nothing expired after all (the deadline moved): relay on.
    Nothing,
}

/// The hooks of either pool mode with timeouts around them.
pub struct Timed<H> {
    pub inner: H,
    limits: Limits,
    enabled: bool,
    busy_since: Option<Instant>,
    txn_since: Option<Instant>,
    idle_since: Option<Instant>,
    /// The deadline the client gave for its current request.
    request_deadline: Option<Instant>,
    /// A cancel was sent for this reason; give up on the server at the instant.
    cancelling: Option<(Expired, Instant)>,
    /// `transaction_timeout` already cancelled a query of this transaction: the client gets
    /// to roll back (`idle_transaction_timeout` bounds how long it may take).
    txn_spent: bool,
    /// Query and transaction timing for the pool's statistics (absent in unit tests).
    pub meter: Option<Meter>,
}

impl<H: Hooks + Progress> Timed<H> {
    /// `idle_now`: the client is idle as relaying starts (session mode); in transaction mode
    /// it has just sent something.
    pub fn new(inner: H, limits: Limits, idle_now: bool) -> Timed<H> {
        let enabled = limits.any();
        let now = enabled.then(Instant::now);
        Timed {
            inner,
            limits,
            enabled,
            busy_since: None,
            txn_since: None,
            idle_since: if idle_now { now } else { None },
            request_deadline: None,
            cancelling: None,
            txn_spent: false,
            meter: None,
        }
    }

    pub fn metered(mut self, meter: Meter) -> Timed<H> {
        self.meter = Some(meter);
        self
    }

    fn count(&self, what: Expired) {
        if let Some(m) = &self.meter {
            m.pool().metrics().timeout(what.kind());
        }
    }

    fn observe(&mut self, from_client: bool) {
        if !self.enabled && self.request_deadline.is_none() && self.cancelling.is_none() {
            return;
        }
        let now = Instant::now();
        let out = self.inner.outstanding();
        if out {
            self.busy_since.get_or_insert(now);
            self.idle_since = None;
        } else {
            self.busy_since = None;
            self.request_deadline = None;
            self.cancelling = None;
            if from_client || self.idle_since.is_none() {
                self.idle_since = Some(now);
            }
        }
        if out || self.inner.in_transaction() {
            self.txn_since.get_or_insert(now);
        } else {
            self.txn_since = None;
            self.txn_spent = false;
        }
    }

    /// The earliest limit to expire and when.
    fn next(&self) -> Option<(Instant, Expired)> {
        let l = &self.limits;
        let in_txn = self.inner.in_transaction();
        let mut best: Option<(Instant, Expired)> = None;
        let mut consider = |at: Option<Instant>, what: Expired| {
            if let Some(at) = at {
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, what));
                }
            }
        };
        if let Some(d) = l.query {
            consider(self.busy_since.map(|s| s + d), Expired::Query(d));
        }
        if self.busy_since.is_some() {
            consider(self.request_deadline, Expired::Deadline);
        }
        if let Some(d) = l.transaction.filter(|_| !self.txn_spent) {
            consider(self.txn_since.map(|s| s + d), Expired::Transaction(d));
        }
        let idle = self.idle_since.filter(|_| self.busy_since.is_none());
        match (in_txn, l.client_idle, l.idle_transaction) {
            (false, Some(d), _) => consider(idle.map(|s| s + d), Expired::ClientIdle(d)),
            (true, _, Some(d)) => consider(idle.map(|s| s + d), Expired::IdleTransaction(d)),
            _ => {}
        }
        best
    }

    /// Decides what to do now that the relay stopped at [`Hooks::deadline`].
    pub fn fire(&mut self, now: Instant) -> Fired {
        if let Some((what, give_up)) = self.cancelling {
            if now < give_up {
                return Fired::Nothing;
            }
            return Fired::Close(
                SqlState::QUERY_CANCELED,
                format!(
                    "canceling statement due to {}: the server did not stop within {CANCEL_GRACE:?}; connection closed",
                    what.describe()
                ),
            );
        }
        let Some((at, what)) = self.next() else {
            return Fired::Nothing;
        };
        if now < at {
            return Fired::Nothing;
        }
        let running = self.inner.outstanding();
        self.count(what);
        match what {
            Expired::Query(_) | Expired::Deadline | Expired::Transaction(_) if running => {
                self.cancelling = Some((what, now + CANCEL_GRACE));
                self.txn_spent |= matches!(what, Expired::Transaction(_));
                Fired::Cancel
            }
            Expired::ClientIdle(_) => Fired::Close(
                code("57P05"),
                format!("terminating connection due to {}", what.describe()),
            ),
            Expired::IdleTransaction(_) => Fired::Close(
                code("25P03"),
                format!(
                    "terminating connection due to {}; the transaction was rolled back",
                    what.describe()
                ),
            ),
            _ => Fired::Close(
                SqlState::QUERY_CANCELED,
                format!(
                    "terminating connection due to {}; the transaction was rolled back",
                    what.describe()
                ),
            ),
        }
    }

    /// A client Query or Parse carrying a deadline comment.
    fn note_deadline(&mut self, frame: &[u8]) -> Option<Instant> {
        let at = crate::deadline::find_now(frame)?;
        self.request_deadline = Some(self.request_deadline.map_or(at, |d| d.min(at)));
        Some(at)
    }
}

fn code(c: &str) -> SqlState {
    SqlState::from_code(c).unwrap_or(SqlState::QUERY_CANCELED)
}

/// The Query sent instead of one whose deadline has already passed: the server itself fails
/// it with 57014, so the answer arrives in order with everything else the client pipelined
/// and the transaction state stays the server's (a cancel could arrive before the query).
const PAST_DEADLINE_SQL: &str = "DO $dbwarden$BEGIN RAISE EXCEPTION USING ERRCODE = 'query_canceled', MESSAGE = 'canceling statement due to the client''s dbwarden_deadline (already past)'; END$dbwarden$";

impl<H: Hooks + Progress> Hooks for Timed<H> {
    fn client_whole(&self, tag: u8) -> bool {
        tag == fe::QUERY || tag == fe::PARSE || self.inner.client_whole(tag)
    }

    fn server_whole(&self, tag: u8) -> bool {
        (tag == be::ERROR_RESPONSE && (self.cancelling.is_some() || self.meter.is_some()))
            || self.inner.server_whole(tag)
    }

    fn client_frame(
        &mut self,
        tag: u8,
        frame: &[u8],
        inject: &mut BytesMut,
    ) -> Result<Act, ProtocolError> {
        let deadline = if tag == fe::QUERY || tag == fe::PARSE {
            self.note_deadline(frame)
        } else {
            None
        };
        if let Some(m) = &mut self.meter {
            m.client_message(tag, frame);
        }
        let mut act = self.inner.client_frame(tag, frame, inject)?;
        if tag == fe::QUERY && act == Act::Forward && deadline.is_some_and(|d| d <= Instant::now())
        {
            act = Act::Drop;
            encode::query(inject, PAST_DEADLINE_SQL);
        }
        self.observe(true);
        Ok(act)
    }

    fn server_frame(
        &mut self,
        tag: u8,
        frame: &[u8],
        inject: &mut BytesMut,
    ) -> Result<Act, ProtocolError> {
        let mut cancelled = None;
        if let Some(m) = &mut self.meter {
            m.server_message(frame);
        }
        if tag == be::ERROR_RESPONSE {
            let fields = backend::error_fields(&frame[5..])?;
            if let Some(m) = &mut self.meter {
                m.error(&fields.code);
            }
            if let Some((what, _)) = self.cancelling {
                cancelled = (fields.code == SqlState::QUERY_CANCELED.code()).then_some(what);
            }
        }
        let mut act = self.inner.server_frame(tag, frame, inject)?;
        // A dropped ReadyForQuery ends the proxy's own settings query, not a client's.
        if tag == be::READY_FOR_QUERY && act != Act::Drop {
            if let Some(m) = &mut self.meter {
                m.ready(self.inner.outstanding(), !self.inner.in_transaction());
            }
        }
        if let (Some(what), Act::Forward) = (cancelled, act) {
            // The server's own text says "due to user request", which the client never
            // made: say which timeout it was instead. Same code, same place in the stream.
            act = Act::Drop;
            encode::error_response(
                inject,
                Severity::Error,
                SqlState::QUERY_CANCELED,
                &format!("canceling statement due to {}", what.describe()),
            );
        }
        self.observe(false);
        Ok(act)
    }

    fn server_at_rest(&mut self, inject: &mut BytesMut) {
        self.inner.server_at_rest(inject)
    }

    fn deadline(&self) -> Option<Instant> {
        if let Some((_, give_up)) = self.cancelling {
            return Some(give_up);
        }
        if !self.enabled && self.request_deadline.is_none() {
            return None;
        }
        self.next().map(|(at, _)| at)
    }
}

/// How a timed relay ended.
pub enum Ended {
    Relay(RelayEnd),
    /// A limit closed the session: close the server connection (cancelling whatever runs)
    /// and send the client this FATAL.
    Close(SqlState, String),
}

/// Relays like [`relay`], acting on the limits as they expire. When a query's time is up the
/// server gets a CancelRequest and relaying goes on until its ReadyForQuery, so the client
/// gets a normal 57014 error and the server connection stays in a known state.
pub async fn relay_timed<H: Hooks + Progress>(
    client: &mut Stream,
    server: &mut Stream,
    cancel: &CancelTarget,
    up: &mut Half,
    down: &mut Half,
    hooks: &mut Timed<H>,
    ctx: &ServerCtx,
) -> Ended {
    loop {
        let end = relay(client, server, up, down, hooks).await;
        if !matches!(end, RelayEnd::Deadline) {
            return Ended::Relay(end);
        }
        match hooks.fire(Instant::now()) {
            Fired::Nothing => {}
            Fired::Close(code, message) => {
                tracing::info!(server.pid = cancel.pid, %message, "closing on timeout");
                return Ended::Close(code, message);
            }
            Fired::Cancel => {
                tracing::info!(server.pid = cancel.pid, "timeout: cancelling the query");
                // Awaited, not spawned: once the postmaster has signalled the backend, a
                // cancel can no longer land on a later query of this connection.
                // Boxed: a cancel opens a connection (DNS, TCP, TLS), a large future that
                // would otherwise size every client's task, idle ones included.
                let send = Box::pin(send_cancel(cancel, ctx));
                match tokio::time::timeout(CANCEL_GRACE, send).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "sending the cancel failed"),
                    Err(_) => tracing::warn!("sending the cancel timed out"),
                }
            }
        }
    }
}
