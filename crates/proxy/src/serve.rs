//! Accepting clients: on the runtime that calls [`Proxy::serve`] and, with `proxy.workers`
//! above one, on more runtimes of their own ([`Worker`]), each with its own listening socket
//! on the same address.
//!
//! Every runtime runs the same accept loop and the same drain; only `serve` runs the
//! background work (pool maintenance, the SHOW STATS sampler) and the final close. A worker
//! keeps its runtime running until that close is done: the server connections it opened are
//! registered with its reactor, and the pools still hold some of them.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::{admin, client, pools, stream, Proxy, Shared};

impl Proxy {
    /// Serves clients from `listener` until `shutdown` completes (or the admin console's
    /// SHUTDOWN), then stops accepting on every runtime and waits up to `shutdown_timeout`
    /// for sessions to end; returns once the [`Worker`]s have drained too and the pools are
    /// closed.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let shared = &self.shared;
        let maintenance = tokio::spawn(pools::maintain(shared.clone()));
        let period = shared.config.load().proxy.stats_period;
        let averages = tokio::spawn(admin::averages::sample(Arc::downgrade(shared), period));
        let stopper = async {
            let mut stop = shared.stop.subscribe();
            tokio::select! {
                _ = shutdown => {}
                // The admin console's SHUTDOWN.
                _ = until(&mut stop, Option::is_some) => {}
            }
            shared.draining.send_replace(true);
        };
        tokio::join!(accept(shared.clone(), listener), stopper);
        let _ = shared.workers.subscribe().wait_for(|n| *n == 0).await;
        maintenance.abort();
        averages.abort();
        for entry in shared.pools.all() {
            for conn in entry.pool.close() {
                conn.close().await;
            }
        }
        if let Some(spans) = shared.spans.clone() {
            let _ = tokio::task::spawn_blocking(move || spans.flush()).await;
        }
        shared.closed.send_replace(true);
        Ok(())
    }

    /// A share of the clients for another runtime (`proxy.workers`). Counted from here, so
    /// that [`Proxy::serve`] waits for it even if its thread has not started yet.
    pub fn worker(&self) -> Worker {
        self.shared.workers.send_modify(|n| *n += 1);
        Worker {
            shared: self.shared.clone(),
            running: Running(self.shared.clone()),
        }
    }
}

/// Accepts clients on a runtime of its own; see [`Proxy::worker`].
pub struct Worker {
    shared: Arc<Shared>,
    running: Running,
}

/// One worker that has not drained yet; a worker thread that fails or panics counts down too.
struct Running(Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.workers.send_modify(|n| *n -= 1);
    }
}

impl Worker {
    /// Serves clients from `listener` (bound to the same address as the others, with
    /// SO_REUSEPORT: see [`bind`]) until [`Proxy::serve`] stops, drains its own sessions the
    /// same way, and returns once `serve` has closed the pools.
    pub async fn serve(self, listener: TcpListener) {
        let Worker { shared, running } = self;
        accept(shared.clone(), listener).await;
        drop(running);
        let _ = shared.closed.subscribe().wait_for(|closed| *closed).await;
    }
}

/// The accept loop of one runtime: clients run as tasks on it until it stops accepting,
/// then get `shutdown_timeout` (none after SHUTDOWN) to finish.
async fn accept(shared: Arc<Shared>, listener: TcpListener) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut draining = shared.draining.subscribe();
    loop {
        tokio::select! {
            _ = until(&mut draining, |d| *d) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    stream::keepalive(&tcp, &shared.server_ctx.load().tcp);
                    tasks.spawn(client::handle_client(tcp, peer, shared.clone()));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    shared.shutting_down.store(true, Ordering::Relaxed);
    let grace = match *shared.stop.borrow() {
        Some(admin::ShutdownMode::Immediate) => std::time::Duration::ZERO,
        _ => shared.config.load().proxy.shutdown_timeout,
    };
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            remaining = tasks.len(),
            "shutdown_timeout reached; closing sessions"
        );
        tasks.shutdown().await;
    }
}

/// Waits until `rx` holds a value that passes `ready`, without keeping its borrow (which is
/// not `Send`) in the caller's future.
async fn until<T>(rx: &mut tokio::sync::watch::Receiver<T>, ready: impl FnMut(&T) -> bool) {
    let _ = rx.wait_for(ready).await;
}

/// Binds the client listener. SO_REUSEADDR so a restart does not wait out TIME_WAIT.
pub async fn bind(addr: &str) -> Result<TcpListener, crate::SetupError> {
    let listen_err = |source| crate::SetupError::Listen {
        addr: addr.to_owned(),
        source,
    };
    let sock_addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| listen_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let socket = if sock_addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(listen_err)?;
    socket.set_reuseaddr(true).map_err(listen_err)?;
    // A second dbwarden may bind the same port, so a rolling restart drops no connection;
    // and each worker runtime binds one of its own, the kernel spreading new connections.
    socket.set_reuseport(true).map_err(listen_err)?;
    socket.bind(sock_addr).map_err(listen_err)?;
    // Thousands of clients may connect at once (an application fleet restarting); the kernel
    // caps the backlog at net.core.somaxconn.
    socket.listen(4096).map_err(listen_err)
}
