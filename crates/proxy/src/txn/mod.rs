//! Transaction pooling: a server connection is held from a transaction's first message until
//! ReadyForQuery says idle with nothing outstanding, then goes back to the pool. Settings and
//! named prepared statements follow the client across connections (see `gucs`, `statements`,
//! `tracker`); session-only features pin the client to its connection.

pub mod gucs;
mod local;
mod slot;
pub mod statements;
mod tracker;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use dbwarden_config::Config;
use dbwarden_wire::backend::TxStatus;
use dbwarden_wire::encode;
use dbwarden_wire::SqlState;
use tokio::time::Sleep;

use crate::cancel::CancelKey;
use crate::conn::Conn;
use crate::error::{ServerError, SessionError};
use crate::pools::PoolHandle;
use crate::relay::{Half, RelayEnd};
use crate::server::ServerConn;
use crate::stats::{ClientInfo, ClientState, Meter};
use crate::stream::Stream;
use crate::timeouts::{relay_timed, Ended, Limits, Progress, Timed};
use crate::Shared;

pub use tracker::TxnClient;
use tracker::{Followup, TxnHooks};

/// Runs a logged-in client in transaction mode until it leaves.
///
/// Between transactions the client's task waits in [`wait_idle`] and holds only
/// [`Client`], boxed; everything a transaction needs (the checkout, the relay and its hooks,
/// settings read back) lives in a future borrowed from a per-thread free list for the
/// length of one transaction (see `slot`). Ten thousand idle clients then cost what
/// waiting costs, not ten thousand copies of the largest state a transaction reaches.
pub async fn run(conn: &mut Conn, mut c: Box<Client>) -> Result<(), SessionError> {
    let ended = loop {
        // Idle: no server connection until the client sends something.
        if c.up.is_empty() {
            match wait_idle(&mut c).await {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        }
        let mut lent = slot::start(transaction(c));
        let (back, step) = poll_fn(|cx| lent.poll(cx)).await;
        slot::give(lent);
        c = back;
        match step {
            Ok(Step::Next) => {}
            Ok(Step::End) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    conn.stream = std::mem::replace(&mut c.stream, Stream::Detached);
    ended
}

/// A logged-in client's state for [`run`]. The socket moves into the box so that a
/// transaction's future can own everything it touches (which is what lets its memory go to
/// other clients between transactions); [`run`] puts it back before it returns, so the
/// caller can still send the client a last error.
pub fn client(
    conn: &mut Conn,
    tx: TxnClient,
    pool: PoolHandle,
    shared: &Arc<Shared>,
    config: &Arc<Config>,
    cancel_key: CancelKey,
    me: &ClientInfo,
) -> Box<Client> {
    // Kept across transactions: moved into each transaction's hooks and taken back.
    let watch = crate::client::watch(shared, config, me);
    let meter = Some(Meter::new(pool.entry().stats.clone()).watched(watch));
    me.set_state(ClientState::Idle);
    let mut up = Half::new(config.proxy.max_message_size);
    up.seed(&conn.rbuf.split());
    up.count_into(pool.entry().stats.clone(), true);
    let me = shared
        .stats
        .clients
        .get(me.id)
        .unwrap_or_else(|| Arc::new(ClientInfo::new(me.id, me.addr, me.local)));
    Box::new(Client {
        me,
        stream: std::mem::replace(&mut conn.stream, Stream::Detached),
        tx,
        pool,
        up,
        meter,
        idle_timer: None,
        shared: shared.clone(),
        config: config.clone(),
        cancel_key,
    })
}

/// What a transaction-mode client keeps between transactions.
pub(crate) struct Client {
    me: Arc<ClientInfo>,
    stream: Stream,
    tx: TxnClient,
    pool: PoolHandle,
    up: Half,
    meter: Option<Meter>,
    /// `client_idle_timeout`'s timer, made the first time it is needed and reset after.
    idle_timer: Option<Pin<Box<Sleep>>>,
    shared: Arc<Shared>,
    config: Arc<Config>,
    cancel_key: CancelKey,
}

/// How a transaction ended, for the idle loop.
pub(crate) enum Step {
    /// Wait for the client's next message (or go on with what it pipelined).
    Next,
    /// The client left.
    End,
}

/// Waits until the client sends something: `false` when it closed instead. No buffer, no
/// server connection: a read-readiness registration and, with `client_idle_timeout`, a
/// timer. A KILL from the admin console ends the wait here, so that the socket is back
/// with the caller to carry the FATAL.
///
/// Not `async`: the set-up runs here, and the future is only the poll function, which is
/// what an idle client's task holds while it waits.
fn wait_idle(c: &mut Client) -> impl Future<Output = Result<bool, SessionError>> + '_ {
    if c.me.state() != ClientState::Idle {
        c.me.set_state(ClientState::Idle); // after a transaction whose connection was closed
    }
    let limit = Limits::from_config(&c.config.pool).client_idle;
    if let Some(limit) = limit {
        let at = tokio::time::Instant::now() + limit;
        match &mut c.idle_timer {
            Some(timer) => timer.as_mut().reset(at),
            None => c.idle_timer = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }
    let Client {
        me,
        stream,
        up,
        idle_timer,
        ..
    } = c;
    poll_fn(move |cx| {
        if me.is_killed() {
            return Poll::Ready(Err(crate::client::killed()));
        }
        match up.poll_fill(cx, stream) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Ok(false)),
            Poll::Ready(Ok(_)) => return Poll::Ready(Ok(true)),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(SessionError::ClientIo(e))),
            Poll::Pending => {}
        }
        if let (Some(timer), Some(limit)) = (idle_timer.as_mut(), limit) {
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(idle_timeout(limit)));
            }
        }
        Poll::Pending
    })
}

/// One transaction, from the client's first message to the connection going back; owns
/// the client's state while it runs and hands it back with the outcome.
async fn transaction(mut c: Box<Client>) -> (Box<Client>, Result<Step, SessionError>) {
    let me = c.me.clone();
    let step = {
        let body = std::pin::pin!(one(&mut c));
        let mut body = body;
        poll_fn(|cx| {
            // A KILL ends the transaction where it is: the server connection is dropped
            // (PostgreSQL sees it close) and the client gets its FATAL.
            if me.is_killed() {
                return Poll::Ready(Err(crate::client::killed()));
            }
            body.as_mut().poll(cx)
        })
        .await
    };
    (c, step)
}

async fn one(c: &mut Client) -> Result<Step, SessionError> {
    let Client {
        me,
        stream,
        tx,
        pool,
        up,
        meter,
        shared,
        config,
        cancel_key,
        ..
    } = c;
    let (me, shared, config) = (&**me, &*shared, &**config);
    let limits = Limits::from_config(&config.pool);
    // Made per transaction: between transactions it would hold nothing but its place.
    let down = &mut up.opposite();
    let max_prepared = config.pool.max_prepared_statements as usize;
    if up.starts_with_terminate() {
        return Ok(Step::End);
    }
    if local::refuse_past_deadline(up, stream).await?
        || local::close_statements(up, stream, tx).await?
    {
        return Ok(Step::Next);
    }
    let ctx = shared.server_ctx.load_full();
    me.set_state(ClientState::Waiting);
    shared
        .wait_while_paused(&pool.entry().key.database, config.pool.query_wait_timeout)
        .await?;
    let fallback;
    let user = match me.login() {
        Some(login) => login.user.as_str(),
        None => {
            fallback = pool.entry().key.user.clone();
            fallback.as_str()
        }
    };
    let mut lease = pool
        .checkout(shared, &ctx, config.pool.query_wait_timeout, user)
        .await?;
    crate::client::link(me, &mut lease);
    let server = lease.conn_mut();
    let sync = server.sync_sql(&tx.gucs);
    // After the sync the connection has the client's value of this (it is reported).
    let standard_strings = tx
        .gucs
        .wanted
        .get("standard_conforming_strings")
        .or_else(|| {
            server
                .params
                .iter()
                .find(|(k, _)| k == "standard_conforming_strings")
                .map(|(_, v)| v.as_str())
        })
        != Some("off");
    let txn_hooks = TxnHooks::new(
        tx,
        &mut server.statements,
        &shared.statements,
        max_prepared,
        server.status,
        standard_strings,
    );
    let mut hooks = Timed::new(txn_hooks, limits, false);
    hooks.meter = meter.take();
    if let Some(sql) = sync {
        // Sent ahead of the client's messages in the same write: no extra round trip.
        let mut q = BytesMut::new();
        encode::query(&mut q, &sql);
        up.insert_front(&q);
        hooks.inner.expect_internal();
    }
    cancel_key.attach(Some(server.cancel.clone()));
    let ended = relay_timed(
        stream,
        &mut server.conn.stream,
        &server.cancel,
        up,
        down,
        &mut hooks,
        &ctx,
    )
    .await;
    cancel_key.attach(None);
    *meter = hooks.meter.take();
    let (status, outstanding) = (hooks.inner.status, hooks.inner.outstanding());
    let followup = std::mem::take(&mut hooks.inner.followup);
    drop(hooks);
    server.status = status;
    for (k, v) in &followup.reported {
        server.set_param(k, v);
    }
    pool.entry().stats.prepared(followup.prepared);
    if let Some(reason) = followup.newly_pinned {
        pool.entry().stats.metrics().pinned(reason);
        tracing::info!(
            reason,
            "client pinned to its server connection for the rest of the session"
        );
    }
    let end = match ended {
        Ended::Relay(end) => end,
        Ended::Close(code, message) => {
            crate::client::close_busy(lease, u32::from(outstanding), shared);
            return Err(SessionError::refused(code, message));
        }
    };
    match end {
        // `Deadline` is handled inside `relay_timed`; it never gets here.
        RelayEnd::Done | RelayEnd::Deadline => {
            if followup.internal_failed {
                return Ok(Step::Next); // dropping the lease closes a connection in an unknown state
            }
            match settle(lease.conn_mut(), tx, &followup).await {
                Ok(()) => {
                    crate::client::unlink(me, &mut lease);
                    lease.release()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading settings back failed; closing the server connection")
                }
            }
        }
        RelayEnd::ClientTerminate | RelayEnd::ClientEof | RelayEnd::ClientIo(_) => {
            if tx.pinned.is_some() || outstanding || status != TxStatus::Idle {
                crate::client::finish_session(lease, u32::from(outstanding), shared, config).await;
            } else {
                let _ = settle(lease.conn_mut(), tx, &followup).await;
                crate::client::unlink(me, &mut lease);
                lease.release();
            }
            return Ok(Step::End);
        }
        RelayEnd::ClientGoneMidMessage => {
            crate::client::close_busy(lease, 1, shared);
            return Ok(Step::End);
        }
        RelayEnd::ClientProtocol(e) => {
            crate::client::close_busy(lease, u32::from(outstanding), shared);
            return Err(SessionError::ClientProtocol(e));
        }
        RelayEnd::ServerEof => return Ok(Step::End),
        RelayEnd::ServerIo(e) => return Err(ServerError::Io(e).into()),
        RelayEnd::ServerProtocol(e) => return Err(ServerError::Protocol(e).into()),
    }
    Ok(Step::Next)
}

impl Progress for TxnHooks<'_> {
    fn outstanding(&self) -> bool {
        TxnHooks::outstanding(self)
    }

    fn in_transaction(&self) -> bool {
        self.status != TxStatus::Idle
    }
}

fn idle_timeout(limit: std::time::Duration) -> SessionError {
    SessionError::refused(
        SqlState::from_code("57P05").unwrap_or(SqlState::QUERY_CANCELED),
        format!("terminating connection due to dbwarden client_idle_timeout ({limit:?})"),
    )
}

/// After a transaction that changed settings: read the effective values back from the
/// server (this is right after COMMIT, ROLLBACK, SET LOCAL and errors alike) and make them
/// the client's; a RESET goes back to the client's startup value, as PostgreSQL does.
async fn settle(
    server: &mut ServerConn,
    tx: &mut TxnClient,
    f: &Followup,
) -> Result<(), ServerError> {
    let mut names: Vec<String> = f.touched.iter().map(|n| gucs::key(n)).collect();
    if f.touched_all {
        names.extend(server.gucs.changed().keys().cloned());
        names.extend(tx.gucs.startup.keys().map(str::to_owned));
        names.extend(tx.gucs.wanted.keys().map(str::to_owned));
    }
    names.retain(|n| gucs::valid_name(n));
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(());
    }
    let values = server.fetch_row(&gucs::fetch_sql(&names)).await?;
    for (name, value) in names.into_iter().zip(values) {
        let was_reset = f.touched_all || f.reset.iter().any(|r| gucs::key(r) == name);
        match value {
            None => {
                tx.gucs.wanted.remove(&name);
                server.gucs.unset(&name);
            }
            Some(v) => {
                match tx.gucs.startup.get(&name) {
                    Some(s) if was_reset => tx.gucs.wanted.insert(&name, s),
                    _ => tx.gucs.wanted.insert(&name, &v),
                }
                server.gucs.set(name, v);
            }
        }
    }
    Ok(())
}
