//! Getting a server connection for a client: an idle one that is fit for use, or a new one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dbwarden_config::PoolConfig;
use dbwarden_pool::{Grant, Lease, PoolError};
use dbwarden_wire::SqlState;

use super::PoolEntry;
use crate::error::SessionError;
use crate::server::{ServerConn, ServerCtx};
use crate::Shared;

/// When an idle server connection may be handed out as it is (from `[pool]`; a reload
/// applies to the next checkout).
#[derive(Clone, Debug)]
pub struct ReuseRules {
    /// `server_lifetime`; zero = no limit.
    pub lifetime: Duration,
    /// `server_check_delay`: unused longer than this, a connection is checked first.
    pub check_delay: Duration,
    /// `server_check_query`; empty sends an empty query.
    pub check_query: Arc<str>,
    pub check_timeout: Duration,
}

impl ReuseRules {
    pub fn from_config(pool: &PoolConfig) -> ReuseRules {
        ReuseRules {
            lifetime: pool.server_lifetime,
            check_delay: pool.server_check_delay,
            check_query: pool.server_check_query.as_str().into(),
            check_timeout: pool.server_check_timeout,
        }
    }
}

/// A client's way to its pool. A reload that moves the client's database to another backend
/// retires the pool; the handle then follows to the pool that replaced it, so the client's
/// next transaction goes to the new backend without the client noticing. Only the pool is
/// kept: the database's name is the pool's, and the caller says who the client logged in as
/// (an idle client is the handle's main user, so it is kept small).
pub struct PoolHandle {
    entry: Arc<PoolEntry>,
}

impl PoolHandle {
    /// The pool for a client of `database` logging in as `client_user`; `None` when the
    /// database is unknown.
    pub fn new(shared: &Shared, database: &str, client_user: &str) -> Option<PoolHandle> {
        let entry = shared
            .pools
            .pool_for(&shared.config, &shared.stats, database, client_user)?;
        Some(PoolHandle { entry })
    }

    /// A server connection from the client's current pool, waiting at most `wait`.
    /// `client_user`: the user the client logged in as (the pool's own may be forced).
    pub async fn checkout(
        &mut self,
        shared: &Shared,
        ctx: &ServerCtx,
        wait: Duration,
        client_user: &str,
    ) -> Result<Lease<ServerConn>, SessionError> {
        self.follow(shared, client_user)?;
        match checkout(&self.entry, ctx, wait).await {
            // Retired while this client waited in it: nothing was sent anywhere yet, so
            // trying the new pool is no retry of anything with effects.
            Err(_) if self.entry.is_retired() => {
                self.follow(shared, client_user)?;
                checkout(&self.entry, ctx, wait).await
            }
            done => done,
        }
    }

    /// The pool the client uses now.
    pub fn entry(&self) -> &Arc<PoolEntry> {
        &self.entry
    }

    fn follow(&mut self, shared: &Shared, client_user: &str) -> Result<(), SessionError> {
        if !self.entry.is_retired() {
            return Ok(());
        }
        let database = &self.entry.key.database;
        let next = shared
            .pools
            .pool_for(&shared.config, &shared.stats, database, client_user)
            .ok_or_else(|| {
                SessionError::refused(
                    SqlState::INVALID_CATALOG_NAME,
                    format!("database \"{database}\" was removed from the configuration"),
                )
            })?;
        self.entry = next;
        Ok(())
    }
}

/// What to do with an idle connection the pool handed out.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Used recently and nothing is wrong with it: hand it out, no round trip.
    Ready,
    /// Unused for `server_check_delay`: check it first.
    Check,
    /// Close it (and take the next). `polite`: it is healthy, say goodbye.
    Close { why: &'static str, polite: bool },
}

fn inspect(
    lease: &Lease<ServerConn>,
    entry: &PoolEntry,
    rules: &ReuseRules,
    now: Instant,
) -> Verdict {
    let conn = lease.conn();
    if !is_alive(conn) {
        // Server restarted, backend terminated, idle timeout on the server.
        return Verdict::Close {
            why: "dead while idle",
            polite: false,
        };
    }
    if !entry.addrs.is_current(conn.cancel.addr) {
        return Verdict::Close {
            why: "its address is no longer the backend's",
            polite: true,
        };
    }
    if lease.outlived(rules.lifetime, now) {
        return Verdict::Close {
            why: "past server_lifetime",
            polite: true,
        };
    }
    if lease.unchecked_for(now) >= rules.check_delay {
        return Verdict::Check;
    }
    Verdict::Ready
}

/// A server connection for a client: an idle one that is fit for use, or a new one.
/// Waits at most `wait` in all (health checks included).
async fn checkout(
    entry: &PoolEntry,
    ctx: &ServerCtx,
    wait: Duration,
) -> Result<Lease<ServerConn>, SessionError> {
    // Fail fast while the backend is known to be down, rather than queue for a connect
    // that will fail too.
    entry.breaker.admit()?;
    let started = Instant::now();
    let give_up = started + wait;
    // The clock is read again only when a connection was turned down (the usual checkout
    // finds a fit idle one at once). A connection handed over after a wait was just given
    // back by a client, so judging it by the time the wait began is as good.
    let (mut left, mut now) = (wait, started);
    loop {
        let granted = match entry.pool.checkout(left).await {
            // Another worker may have opened it: its socket moves to this runtime.
            Ok(Grant::Ready(mut lease)) => match lease.conn_mut().keep_to_this_runtime() {
                Ok(()) => Ok(Grant::Ready(lease)),
                Err(e) => {
                    tracing::info!(server.pid = lease.conn().pid(), error = %e, "moving a server connection to this worker failed; closing it");
                    drop(lease);
                    now = Instant::now();
                    left = give_up.saturating_duration_since(now);
                    continue;
                }
            },
            other => other,
        };
        match granted {
            Ok(Grant::Ready(mut lease)) => match inspect(&lease, entry, &ctx.reuse, now) {
                Verdict::Ready => {
                    entry.stats.assigned(started.elapsed());
                    return Ok(lease);
                }
                Verdict::Check => {
                    let rules = &ctx.reuse;
                    let server = lease.conn_mut();
                    match Box::pin(server.check(&rules.check_query, rules.check_timeout)).await {
                        Ok(()) => {
                            lease.mark_checked();
                            entry.stats.assigned(started.elapsed());
                            return Ok(lease);
                        }
                        Err(e) => {
                            tracing::info!(server.pid = server.pid(), error = %e, "server connection failed its health check; closing it");
                            drop(lease);
                        }
                    }
                }
                Verdict::Close { why, polite } => {
                    tracing::debug!(
                        server.pid = lease.conn().pid(),
                        why,
                        "closing idle server connection instead of reusing it"
                    );
                    if polite {
                        tokio::spawn(lease.detach().close());
                    }
                }
            },
            Ok(Grant::Open(permit)) => {
                // Boxed, as is the health check: opening a connection (DNS, TCP, TLS, login)
                // is a large future, and inline it would size every client's task, idle or
                // not, for the rare checkout that needs it.
                let conn = Box::pin(entry.open(ctx)).await?;
                tracing::debug!(server.pid = conn.pid(), pool.db = %entry.key.database, "opened server connection");
                entry.stats.assigned(started.elapsed());
                return Ok(permit.fulfil(conn));
            }
            Err(PoolError::Timeout(_, size)) => {
                entry
                    .stats
                    .metrics()
                    .timeout(crate::stats::TimeoutKind::QueryWait);
                return Err(SessionError::refused(
                    SqlState::QUERY_CANCELED,
                    format!(
                        "dbwarden: query_wait_timeout: no server connection free within {wait:?} (pool size {size})"
                    ),
                ));
            }
            Err(PoolError::Closed) => {
                return Err(SessionError::refused(
                    SqlState::ADMIN_SHUTDOWN,
                    "dbwarden: the pool is closing",
                ))
            }
        }
        now = Instant::now();
        left = give_up.saturating_duration_since(now);
    }
}

/// An idle connection has nothing to say: readable means EOF or an unsolicited FATAL,
/// either way it cannot be used. One non-blocking read, no round trip.
fn is_alive(conn: &ServerConn) -> bool {
    if !conn.conn.rbuf.is_empty() {
        return false;
    }
    let mut probe = [0u8; 1];
    match conn.conn.stream.tcp() {
        Some(tcp) => {
            matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
        None => false,
    }
}
