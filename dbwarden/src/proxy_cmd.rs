//! `dbwarden proxy`: config from a file, an upstream URL, or both, plus flag overrides.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use dbwarden_config::{Config, LogFormat, PoolMode, WILDCARD};

#[derive(Args, Debug, Default)]
pub struct ProxyArgs {
    /// TOML config file (see dbwarden.example.toml). Reloaded on SIGHUP.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Zero-config upstream: postgres://USER:PASSWORD@HOST:PORT. Every database name is proxied
    /// to the same-named upstream database; clients log in as USER with PASSWORD.
    #[arg(
        long,
        value_name = "URL",
        env = "DBWARDEN_UPSTREAM",
        hide_env_values = true
    )]
    pub upstream: Option<String>,
    /// Client listener, e.g. 127.0.0.1:6432.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Pool mode for every pool.
    #[arg(long, value_enum)]
    pub pool_mode: Option<Mode>,
    /// Server connections per (database, user).
    #[arg(long, value_name = "N")]
    pub pool_size: Option<u32>,
    /// HTTP admin listener: /metrics, /healthz, /readyz, /api/pools, /api/clients and the
    /// dashboard page at /.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    Session,
    Transaction,
}

impl From<Mode> for PoolMode {
    fn from(m: Mode) -> PoolMode {
        match m {
            Mode::Session => PoolMode::Session,
            Mode::Transaction => PoolMode::Transaction,
        }
    }
}

/// The effective config: file, then upstream, then flags; validated as a whole.
pub fn build_config(args: &ProxyArgs) -> anyhow::Result<Config> {
    let mut config = match (&args.config, &args.upstream) {
        (Some(file), _) => Config::load(file)?,
        (None, Some(url)) => Config::from_upstream_url(url)?,
        (None, None) => {
            anyhow::bail!("give --config FILE or --upstream postgres://USER:PASSWORD@HOST:PORT")
        }
    };
    if let (Some(_), Some(url)) = (&args.config, &args.upstream) {
        let up = Config::from_upstream_url(url)?;
        for user in up.users {
            config.users.retain(|u| u.name != user.name);
            config.auth.admin_users.retain(|u| *u != user.name);
            config.auth.admin_users.push(user.name.clone());
            config.users.push(user);
        }
        if let Some(db) = up.databases.get(WILDCARD) {
            config.databases.insert(WILDCARD.to_owned(), db.clone());
        }
    }
    if let Some(l) = &args.listen {
        config.proxy.listen = l.clone();
    }
    if let Some(m) = args.pool_mode {
        config.pool.mode = m.into();
        for db in config.databases.values_mut() {
            db.pool_mode = None;
        }
    }
    if let Some(n) = args.pool_size {
        config.pool.size = n;
        for db in config.databases.values_mut() {
            db.pool_size = None;
        }
    }
    if let Some(a) = &args.admin_listen {
        config.proxy.admin_listen = Some(a.clone());
    }
    config.validate().context("invalid configuration")?;
    Ok(config)
}

/// Builds the config again from `args` and applies it; a bad config keeps the old one.
fn reload_from(
    args: &ProxyArgs,
    proxy: &dbwarden_proxy::Proxy,
    level: &crate::logging::LogLevel,
) -> Result<(), String> {
    match build_config(args).map(|c| proxy.reload(c.clone()).map(|_| c)) {
        Ok(Ok(c)) => {
            level.set(&c.log.level);
            tracing::info!("config reloaded");
            Ok(())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reload failed; keeping the old config");
            Err(e.to_string())
        }
        Err(e) => {
            proxy.reload_failed();
            let e = format!("{e:#}");
            tracing::error!(error = %e, "reload rejected; keeping the old config");
            Err(e)
        }
    }
}

pub fn run(args: ProxyArgs) -> i32 {
    let config = match build_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let level = crate::logging::init(config.log.format == LogFormat::Json, &config.log.level);
    let rt = crate::current_thread_runtime();
    match rt.block_on(serve(config, args, level)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// Runtimes that accept clients: `proxy.workers`, or with 0 one per core.
fn workers(configured: u32) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n as usize,
    }
}

/// A thread with a current-thread runtime of its own that accepts clients on `listener`
/// until the proxy stops. The shared state (pools, stats, config) is the same for all.
fn start_worker(
    n: usize,
    worker: dbwarden_proxy::Worker,
    listener: std::net::TcpListener,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name(format!("dbwarden-worker-{n}"))
        .spawn(move || {
            let rt = crate::current_thread_runtime();
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => worker.serve(listener).await,
                    Err(e) => tracing::error!(error = %e, worker = n, "worker listener failed"),
                }
            })
        })
        .context("starting a worker thread")?;
    Ok(())
}

async fn serve(
    config: Config,
    args: ProxyArgs,
    level: crate::logging::LogLevel,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let listener = dbwarden_proxy::bind(&config.proxy.listen).await?;
    // The others share the first one's address, its port included when `listen` says 0.
    let mut worker_listeners = Vec::new();
    let count = workers(config.proxy.workers);
    for _ in 1..count {
        let addr = listener.local_addr()?.to_string();
        worker_listeners.push(dbwarden_proxy::bind(&addr).await?.into_std()?);
    }
    let admin_listener = match &config.proxy.admin_listen {
        Some(addr) => Some(dbwarden_proxy::bind(addr).await?),
        None => None,
    };
    let proxy = dbwarden_proxy::Proxy::new(config.clone())?;
    for (i, std_listener) in worker_listeners.into_iter().enumerate() {
        start_worker(i + 1, proxy.worker(), std_listener)?;
    }
    if let Some(admin) = admin_listener {
        // The address bound, which says the port when the config asked for any (port 0).
        let bound = admin.local_addr()?;
        tracing::info!(admin_listen = %bound, "HTTP admin listener: /metrics, /healthz, /readyz, /api/pools, /api/clients, / (dashboard)");
        // It stays up while sessions drain after SIGTERM, so /readyz can say so; it ends
        // with the process.
        let p = proxy.clone();
        tokio::spawn(async move {
            if let Err(e) = dbwarden_proxy::http::serve(p, admin, std::future::pending()).await {
                tracing::error!(error = %e, "HTTP admin listener failed");
            }
        });
    }

    // SIGHUP and the admin console's RELOAD do the same: read the file and flags again.
    let args = std::sync::Arc::new(args);
    let reload = move |proxy: &dbwarden_proxy::Proxy| reload_from(&args, proxy, &level);
    let reload = std::sync::Arc::new(reload);
    let console_reload = reload.clone();
    proxy.set_reloader(move |p| console_reload(p));
    let mut hup = signal(SignalKind::hangup())?;
    let reloader = proxy.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let _ = reload(&reloader);
        }
    });
    // SIGUSR1 / SIGUSR2: PAUSE / RESUME, as PgBouncer has them.
    let (mut usr1, mut usr2) = (
        signal(SignalKind::user_defined1())?,
        signal(SignalKind::user_defined2())?,
    );
    let pauser = proxy.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = usr1.recv() => {
                    pauser.pause();
                    tracing::info!("SIGUSR1: paused; running transactions finish, new ones wait");
                }
                Some(()) = usr2.recv() => {
                    pauser.resume();
                    tracing::info!("SIGUSR2: resumed");
                }
                else => break,
            }
        }
    });
    // SIGTERM: stop accepting and let sessions finish within shutdown_timeout.
    // SIGINT: close at once (PostgreSQL rolls back whatever the closed sessions had open).
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // Only now: whoever waits for this line (a supervisor, a test) may signal at once, and a
    // signal that arrived before its handler was registered would kill the process outright.
    let bound = listener.local_addr()?;
    tracing::info!(listen = %bound, pools = config.databases.len(), mode = ?config.pool.mode, "dbwarden proxy listening");
    let graceful = async move {
        term.recv().await;
        tracing::info!("SIGTERM: stopping; running sessions may finish");
    };
    tokio::select! {
        served = proxy.serve(listener, graceful) => served?,
        _ = int.recv() => tracing::info!("SIGINT: closing at once"),
    }
    Ok(())
}
