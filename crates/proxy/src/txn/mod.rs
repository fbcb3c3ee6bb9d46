//! Transaction pooling: a server connection is held from a transaction's first message until
//! ReadyForQuery says idle with nothing outstanding, then goes back to the pool. Settings and
//! named prepared statements follow the client across connections (see `gucs`, `statements`,
//! `tracker`); session-only features pin the client to its connection.

pub mod gucs;
pub mod statements;
mod tracker;

use std::sync::Arc;

use bytes::BytesMut;
use dbwarden_config::Config;
use dbwarden_wire::backend::TxStatus;
use dbwarden_wire::encode::{self, Severity};
use dbwarden_wire::frontend::tag as fe;
use dbwarden_wire::SqlState;
use tokio::io::AsyncWriteExt;

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
pub async fn run(
    client: &mut Conn,
    mut tx: TxnClient,
    mut pool: PoolHandle,
    shared: &Arc<Shared>,
    config: &Config,
    cancel_key: &CancelKey,
    me: &ClientInfo,
) -> Result<(), SessionError> {
    // Kept across transactions: moved into each transaction's hooks and taken back.
    let watch = crate::client::watch(shared, config, me);
    let mut meter = Some(Meter::new(pool.entry().stats.clone()).watched(watch));
    me.set_state(ClientState::Idle);
    let max_message = config.proxy.max_message_size;
    let max_prepared = config.pool.max_prepared_statements as usize;
    let mut up = Half::new(max_message);
    up.seed(&client.rbuf.split());
    let mut down = Half::new(max_message);
    up.count_into(pool.entry().stats.clone(), true);
    down.count_into(pool.entry().stats.clone(), false);
    let limits = Limits::from_config(&config.pool);
    loop {
        // Idle: no server connection until the client sends something.
        if up.is_empty() {
            if me.state() != ClientState::Idle {
                me.set_state(ClientState::Idle); // after a transaction whose connection was closed
            }
            let filled = match limits.client_idle {
                None => up.fill(&mut client.stream).await,
                Some(limit) => tokio::time::timeout(limit, up.fill(&mut client.stream))
                    .await
                    .map_err(|_| idle_timeout(limit))?,
            };
            match filled {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(SessionError::ClientIo(e)),
            }
        }
        if up.starts_with_terminate() {
            return Ok(());
        }
        if refuse_past_deadline(&mut up, &mut client.stream).await? {
            continue;
        }
        let ctx = shared.server_ctx.load_full();
        me.set_state(ClientState::Waiting);
        shared
            .wait_while_paused(&pool.entry().key.database, config.pool.query_wait_timeout)
            .await?;
        let mut lease = pool
            .checkout(shared, &ctx, config.pool.query_wait_timeout)
            .await?;
        crate::client::link(me, &mut lease);
        let server = lease.conn_mut();
        let sync = server.sync_sql(&tx.gucs);
        // After the sync the connection has the client's value of this (it is reported).
        let standard_strings = tx
            .gucs
            .wanted
            .get("standard_conforming_strings")
            .map(String::as_str)
            .or_else(|| {
                server
                    .params
                    .iter()
                    .find(|(k, _)| k == "standard_conforming_strings")
                    .map(|(_, v)| v.as_str())
            })
            != Some("off");
        let txn_hooks = TxnHooks::new(
            &mut tx,
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
            &mut client.stream,
            &mut server.conn.stream,
            &server.cancel,
            &mut up,
            &mut down,
            &mut hooks,
            &ctx,
        )
        .await;
        cancel_key.attach(None);
        meter = hooks.meter.take();
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
        down.clear();
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
                    continue; // dropping the lease closes a connection in an unknown state
                }
                match settle(lease.conn_mut(), &mut tx, &followup).await {
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
                    crate::client::finish_session(lease, u32::from(outstanding), shared, config)
                        .await;
                } else {
                    let _ = settle(lease.conn_mut(), &mut tx, &followup).await;
                    crate::client::unlink(me, &mut lease);
                    lease.release();
                }
                return Ok(());
            }
            RelayEnd::ClientGoneMidMessage => {
                crate::client::close_busy(lease, 1, shared);
                return Ok(());
            }
            RelayEnd::ClientProtocol(e) => {
                crate::client::close_busy(lease, u32::from(outstanding), shared);
                return Err(SessionError::ClientProtocol(e));
            }
            RelayEnd::ServerEof => return Ok(()),
            RelayEnd::ServerIo(e) => return Err(ServerError::Io(e).into()),
            RelayEnd::ServerProtocol(e) => return Err(ServerError::Protocol(e).into()),
        }
    }
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

/// A client with no server connection whose next simple Query carries a deadline that has
/// already passed gets its 57014 at once, and no server connection is taken for it.
/// Returns whether the query was answered here.
async fn refuse_past_deadline(up: &mut Half, client: &mut Stream) -> Result<bool, SessionError> {
    let Some((fe::QUERY, frame)) = up.first_frame() else {
        return Ok(false);
    };
    match crate::deadline::find_now(frame) {
        Some(at) if at <= std::time::Instant::now() => {}
        _ => return Ok(false),
    }
    let len = frame.len();
    up.consume_front(len);
    let mut answer = BytesMut::new();
    encode::error_response(
        &mut answer,
        Severity::Error,
        SqlState::QUERY_CANCELED,
        "canceling statement due to the client's dbwarden_deadline (already past)",
    );
    encode::ready_for_query(&mut answer, TxStatus::Idle);
    client
        .write_all(&answer)
        .await
        .map_err(SessionError::ClientIo)?;
    client.flush().await.map_err(SessionError::ClientIo)?;
    Ok(true)
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
        names.extend(server.gucs.changed.keys().cloned());
        names.extend(tx.gucs.startup.keys().cloned());
        names.extend(tx.gucs.wanted.keys().cloned());
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
                server.gucs.changed.remove(&name);
            }
            Some(v) => {
                let wanted = match tx.gucs.startup.get(&name) {
                    Some(s) if was_reset => s.clone(),
                    _ => v.clone(),
                };
                server.gucs.changed.insert(name.clone(), v);
                tx.gucs.wanted.insert(name, wanted);
            }
        }
    }
    Ok(())
}
