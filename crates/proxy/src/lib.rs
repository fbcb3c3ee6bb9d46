//! `dbwarden proxy`: a PostgreSQL wire-protocol pooling proxy.
//!
//! One task per client. The session owns its parameters and its server connection; the
//! pool hands connections out in FIFO order; the relay moves bytes with one read and one write
//! per batch on each side. Everything a reload can change sits behind an `ArcSwap`, so a new
//! config applies to new logins without stopping anyone.

mod admin;
mod cancel;
mod client;
mod conn;
mod deadline;
mod dns;
mod error;
mod health;
pub mod http;
mod pools;
mod relay;
mod serve;
mod server;
pub mod sql;
pub mod stats;
mod stream;
mod timeouts;
mod tls;
pub mod trace;
mod txn;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use dbwarden_auth::{ScramVerifier, Secret};
use dbwarden_config::Config;
use parking_lot::RwLock;

/// The console's command parser, for the fuzzer: console query text is untrusted input.
#[doc(hidden)]
pub use admin::command::parse as parse_console_command;
pub use error::{ServerError, SessionError, SetupError};
pub use serve::{bind, Worker};

use cancel::CancelRegistry;
use pools::Pools;
use server::ServerCtx;

/// A user's secret, with the SCRAM verifier derived once (PBKDF2 is deliberately slow).
pub(crate) struct UserSecret {
    pub secret: Secret,
    pub scram: Option<ScramVerifier>,
    /// The configured text, to tell on reload whether the user's secret changed.
    text: String,
}

impl UserSecret {
    fn secret_text(&self) -> &str {
        &self.text
    }
}

/// State shared by every client task.
pub(crate) struct Shared {
    pub config: ArcSwap<Config>,
    pub tls_acceptor: ArcSwap<Option<tokio_rustls::TlsAcceptor>>,
    pub server_ctx: ArcSwap<ServerCtx>,
    pub secrets: RwLock<HashMap<String, Arc<UserSecret>>>,
    pub cancels: Arc<CancelRegistry>,
    pub pools: Pools,
    pub statements: txn::statements::StatementCache,
    pub clients: AtomicUsize,
    pub next_client_id: AtomicU64,
    /// PAUSE: new transactions (and sessions) wait for RESUME; running ones finish.
    pub paused: tokio::sync::watch::Sender<bool>,
    /// The same for single databases (the admin console's `PAUSE db`).
    pub paused_dbs: tokio::sync::watch::Sender<std::collections::BTreeSet<String>>,
    /// Set when `serve` stops accepting: `/readyz` fails from then on.
    pub shutting_down: AtomicBool,
    pub stats: stats::Stats,
    /// The OTLP span exporter, when `[tracing]` configures one (fixed until a restart).
    pub spans: Option<Arc<trace::Spans>>,
    /// Snapshots of the pool totals for the admin console's SHOW STATS averages.
    pub averages: admin::Averages,
    /// How the admin console's RELOAD gets a new config ([`Proxy::set_reloader`]).
    pub reloader: RwLock<Option<admin::Reloader>>,
    /// Set by the admin console's SHUTDOWN: `serve` stops.
    pub stop: tokio::sync::watch::Sender<Option<admin::ShutdownMode>>,
    /// Set when `serve` stops (SHUTDOWN or its shutdown future): every runtime stops
    /// accepting and drains its sessions.
    pub draining: tokio::sync::watch::Sender<bool>,
    /// Worker runtimes still accepting or draining; `serve` closes the pools at zero.
    pub workers: tokio::sync::watch::Sender<usize>,
    /// Set when `serve` has closed the pools: the workers' runtimes may end.
    pub closed: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    pub fn secret(&self, user: &str) -> Option<Arc<UserSecret>> {
        self.secrets.read().get(user).cloned()
    }

    /// Holds a checkout for `database` while the proxy or that database is paused, at most
    /// `limit` (every wait is bounded).
    pub async fn wait_while_paused(
        &self,
        database: &str,
        limit: std::time::Duration,
    ) -> Result<(), SessionError> {
        if !*self.paused.borrow() && self.paused_dbs.borrow().is_empty() {
            return Ok(());
        }
        let (mut all, mut dbs) = (self.paused.subscribe(), self.paused_dbs.subscribe());
        let resumed = tokio::time::timeout(limit, async {
            loop {
                let held = *all.borrow_and_update() || dbs.borrow_and_update().contains(database);
                if !held {
                    return;
                }
                tokio::select! {
                    Ok(()) = all.changed() => {}
                    Ok(()) = dbs.changed() => {}
                    else => return,
                }
            }
        })
        .await;
        match resumed {
            Ok(()) => Ok(()),
            Err(_) => Err(SessionError::refused(
                dbwarden_wire::SqlState::QUERY_CANCELED,
                format!("dbwarden: query_wait_timeout: the proxy stayed paused for {limit:?}"),
            )),
        }
    }
}

/// Everything derived from a config, built completely before anything is swapped in.
struct Prepared {
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    server_ctx: ServerCtx,
    secrets: HashMap<String, Arc<UserSecret>>,
}

fn prepare(
    config: &Config,
    old: Option<&Shared>,
    metrics: &Arc<stats::Metrics>,
) -> Result<Prepared, SetupError> {
    let acceptor = tls::acceptor(&config.client_tls)?;
    let server_ctx = ServerCtx {
        tls_mode: config.server_tls.mode,
        tls: tls::connector(&config.server_tls)?,
        connect_timeout: config.pool.server_connect_timeout,
        phases: server::PhaseTimeouts::from_config(&config.server),
        dns: dns::Dns::from_config(&config.server)?,
        tcp: stream::TcpTuning::from_config(&config.server),
        breaker: health::BreakerSettings::from_config(&config.server),
        reuse: pools::ReuseRules::from_config(&config.pool),
        max_message: config.proxy.max_message_size,
        metrics: Some(metrics.clone()),
    };
    let mut secrets = HashMap::new();
    for user in &config.users {
        let Some(password) = &user.password else {
            continue;
        };
        // Keep an unchanged user's derived verifier across reloads.
        if let Some(prev) = old.and_then(|o| o.secret(&user.name)) {
            if prev.secret_text() == password.as_str() {
                secrets.insert(user.name.clone(), prev);
                continue;
            }
        }
        let bad = |e: dbwarden_auth::AuthError| SetupError::Secret {
            user: user.name.clone(),
            reason: e.to_string(),
        };
        let secret = Secret::parse(password).map_err(bad)?;
        let scram = match &secret {
            Secret::Md5(_) => None,
            other => Some(other.scram_verifier().map_err(bad)?),
        };
        secrets.insert(
            user.name.clone(),
            Arc::new(UserSecret {
                secret,
                scram,
                text: password.clone(),
            }),
        );
    }
    Ok(Prepared {
        acceptor,
        server_ctx,
        secrets,
    })
}

/// A running proxy's handle: start it with [`Proxy::serve`], change it with [`Proxy::reload`].
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

impl Proxy {
    pub fn new(config: Config) -> Result<Proxy, SetupError> {
        let stats = stats::Stats::default();
        let p = prepare(&config, None, &stats.metrics)?;
        let spans = trace::Spans::from_config(&config.tracing)?;
        let shared = Arc::new(Shared {
            config: ArcSwap::from_pointee(config),
            tls_acceptor: ArcSwap::from_pointee(p.acceptor),
            server_ctx: ArcSwap::from_pointee(p.server_ctx),
            secrets: RwLock::new(p.secrets),
            cancels: Arc::default(),
            pools: Pools::default(),
            statements: Default::default(),
            clients: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
            paused: tokio::sync::watch::Sender::new(false),
            paused_dbs: tokio::sync::watch::Sender::new(Default::default()),
            shutting_down: AtomicBool::new(false),
            stats,
            spans,
            averages: admin::Averages::default(),
            reloader: RwLock::new(None),
            stop: tokio::sync::watch::Sender::new(None),
            draining: tokio::sync::watch::Sender::new(false),
            workers: tokio::sync::watch::Sender::new(0),
            closed: tokio::sync::watch::Sender::new(false),
        });
        let gauges = stats::gauges::Gauges(Arc::downgrade(&shared));
        shared
            .stats
            .registry
            .lock()
            .register_collector(Box::new(gauges));
        Ok(Proxy { shared })
    }

    /// Applies a new config without dropping anyone: pool sizes and the rules for reusing
    /// server connections change at once, client limits apply to new clients. A database
    /// moved to another backend gets a new pool: connected clients keep working (a
    /// session-mode client on its old connection until it leaves, a transaction-mode client
    /// on the new backend from its next transaction), and the old pool's connections close as
    /// their leases end. The config must already be validated; if anything derived from it
    /// fails (TLS files), nothing changes.
    pub fn reload(&self, config: Config) -> Result<(), SetupError> {
        let metrics = &self.shared.stats.metrics;
        let p = match prepare(&config, Some(&self.shared), metrics) {
            Ok(p) => p,
            Err(e) => {
                metrics.reloaded(false);
                return Err(e);
            }
        };
        metrics.reloaded(true);
        self.shared.tls_acceptor.store(Arc::new(p.acceptor));
        self.shared.server_ctx.store(Arc::new(p.server_ctx));
        *self.shared.secrets.write() = p.secrets;
        let config = Arc::new(config);
        // The config first, then the pools: a login racing with this either sees the new
        // config or has its pool retargeted here (see `Pools::pool_for`).
        self.shared.config.store(config.clone());
        self.shared.pools.retarget(&config, &self.shared.stats);
        Ok(())
    }

    /// PAUSE, for maintenance and failover: transactions (in session mode, sessions) already
    /// holding a server connection go on; new ones wait until [`Proxy::resume`], bounded by
    /// `query_wait_timeout`.
    pub fn pause(&self) {
        self.shared.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.shared.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.shared.paused.borrow()
    }

    /// Tells the admin console's RELOAD how to load the config again and apply it (the
    /// binary reads the file and flags again, as on SIGHUP). Without one, RELOAD fails.
    pub fn set_reloader(
        &self,
        reload: impl Fn(&Proxy) -> Result<(), String> + Send + Sync + 'static,
    ) {
        *self.shared.reloader.write() = Some(Arc::new(reload));
    }

    /// Counts a reload that failed before reaching [`Proxy::reload`] (the file did not
    /// parse or validate), for the `config_reloads` metric.
    pub fn reload_failed(&self) {
        self.shared.stats.metrics.reloaded(false);
    }

    /// Counters, histograms and the live clients and server connections.
    pub fn stats(&self) -> &stats::Stats {
        &self.shared.stats
    }

    /// Each pool as it is now (clients and servers by state, longest wait, breaker), and
    /// every client by state.
    pub fn snapshot(&self) -> (Vec<stats::PoolSnapshot>, stats::ProcessCounts) {
        stats::snapshot::pools(&self.shared)
    }

    /// True once [`Proxy::serve`] has stopped accepting clients.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::Relaxed)
    }

    /// Clients connected now.
    pub fn client_count(&self) -> usize {
        self.shared.clients.load(Ordering::Relaxed)
    }
}
