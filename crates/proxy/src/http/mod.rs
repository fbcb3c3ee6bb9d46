//! The HTTP admin listener (`proxy.admin_listen`): `/metrics`, `/healthz`, `/readyz`, the
//! JSON API and the dashboard page.
//!
//! It runs on its own port and its own tasks and only reads what the proxy keeps anyway (the
//! stats registry, the pools), so a scrape never touches a client's path. hyper with HTTP/1
//! only: no router framework, six fixed paths do not need one.

mod api;
mod exposition;
mod history;
mod ready;
mod routes;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::TcpListener;

pub use ready::Readiness;

use crate::{Proxy, Shared};

/// More open admin connections than this are closed at once: the admin port must not let
/// anyone hold an unbounded number of tasks and sockets.
const MAX_CONNECTIONS: usize = 64;
/// A request's headers must arrive within this (slow clients do not hold a slot for ever).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct State {
    shared: Arc<Shared>,
    history: Mutex<history::History>,
}

/// Serves the admin endpoints on `listener` until `shutdown` completes. Keeps the recent
/// history of every pool (one sample a second) for the dashboard while it runs.
pub async fn serve(
    proxy: Proxy,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let state = Arc::new(State {
        shared: proxy.shared.clone(),
        history: Mutex::new(history::History::default()),
    });
    let sampler = tokio::spawn(history::sample_every_second(Arc::downgrade(&state)));
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) if conns.len() >= MAX_CONNECTIONS => drop(tcp),
                Ok((tcp, peer)) => {
                    conns.spawn(serve_connection(state.clone(), tcp, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    sampler.abort();
    conns.shutdown().await;
    Ok(())
}

async fn serve_connection(
    state: Arc<State>,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
) {
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(routes::route(&state, &req)) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(tcp), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(client.addr = %peer, error = %e, "admin connection ended with an error");
    }
}

#[cfg(test)]
mod tests;
