//! `dbwarden demo`: a throw-away PostgreSQL, the proxy in front of it, a short workload
//! through the proxy, and what happened, so a newcomer sees it work with one command.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use dbwarden_config::Config;
use dbwarden_testkit::{HbaAuth, PgCluster, PgOptions};
use tokio_postgres::NoTls;

const USER: &str = "demo";
const PASSWORD: &str = "demo-password";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Concurrent clients in the workload.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Queries each client runs.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Server connections in the pool (fewer than clients, to show queueing).
    #[arg(long, default_value_t = 4)]
    pool_size: u32,
    /// Proxy listen address (default: a free port on 127.0.0.1).
    #[arg(long)]
    listen: Option<String>,
    /// Exit after the workload instead of waiting for Ctrl-C (for scripts and tests).
    #[arg(long)]
    once: bool,
    /// Pooling mode to show.
    #[arg(long, value_enum, default_value_t = crate::proxy_cmd::Mode::Transaction)]
    pool_mode: crate::proxy_cmd::Mode,
}

pub fn run(args: DemoArgs) -> i32 {
    crate::logging::init(false, "warn");
    match crate::runtime(0).block_on(demo(args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            1
        }
    }
}

fn step(text: &str) {
    eprintln!("==> {text}");
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    step("starting a throw-away PostgreSQL (initdb into a temporary directory)");
    let t = Instant::now();
    let pg = tokio::task::spawn_blocking(|| {
        PgCluster::start_with(PgOptions {
            auth: HbaAuth::Scram,
            users: vec![(USER.into(), PASSWORD.into())],
            ..PgOptions::default()
        })
    })
    .await??;
    pg.psql("postgres", &format!("CREATE DATABASE {USER} OWNER {USER}"))?;
    eprintln!(
        "    PostgreSQL on {}:{} ready in {:.1?}",
        pg.host(),
        pg.port(),
        t.elapsed()
    );

    let mut config = Config::from_upstream_url(&format!(
        "postgres://{USER}:{PASSWORD}@{}:{}",
        pg.host(),
        pg.port()
    ))?;
    config.pool.size = args.pool_size;
    config.pool.mode = args.pool_mode.into();
    config.proxy.listen = args.listen.clone().unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = dbwarden_proxy::bind(&config.proxy.listen).await?;
    let addr = listener.local_addr()?;
    let proxy = dbwarden_proxy::Proxy::new(config)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let proxy = proxy.clone();
        async move {
            proxy
                .serve(listener, async {
                    let _ = stop_rx.await;
                })
                .await
        }
    });
    step(&format!(
        "dbwarden proxy listening on {addr} ({:?} pooling, pool size {}, SCRAM auth)",
        args.pool_mode, args.pool_size
    ));

    let url = format!(
        "host={} port={} user={USER} password={PASSWORD} dbname={USER}",
        addr.ip(),
        addr.port()
    );
    setup_schema(&url).await?;
    workload(&url, &args, &pg).await?;
    match args.pool_mode {
        crate::proxy_cmd::Mode::Session => no_leak_check(&url).await?,
        crate::proxy_cmd::Mode::Transaction => settings_follow_check(&url).await?,
    }
    wrong_password(addr).await?;

    println!();
    println!("Connect to the proxy yourself:");
    println!(
        "    psql \"postgres://{USER}:{PASSWORD}@{}:{}/{USER}\"",
        addr.ip(),
        addr.port()
    );
    if !args.once {
        println!("Press Ctrl-C to stop; the proxy and the database are removed.");
        tokio::signal::ctrl_c().await?;
    }
    step("stopping the proxy and removing the database");
    let _ = stop_tx.send(());
    server.await??;
    drop(pg);
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn setup_schema(url: &str) -> anyhow::Result<()> {
    let c = connect(url).await.context("connecting through the proxy")?;
    c.batch_execute(
        "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
         INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 100) g;",
    )
    .await?;
    Ok(())
}

/// Many clients, few server connections: simple queries, prepared statements, transactions.
async fn workload(url: &str, args: &DemoArgs, pg: &PgCluster) -> anyhow::Result<()> {
    step(&format!(
        "{} clients x {} queries through {} server connections",
        args.clients, args.queries, args.pool_size
    ));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        let url = url.to_owned();
        let queries = args.queries;
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let c = connect(&url).await?;
            let wait = t.elapsed();
            let mut lat = Vec::with_capacity(queries);
            let stmt = c
                .prepare("SELECT balance FROM accounts WHERE id = $1")
                .await?;
            for q in 0..queries {
                let t = Instant::now();
                let id = ((i * 31 + q) % 100 + 1) as i32;
                match q % 3 {
                    0 => {
                        c.query_one(&stmt, &[&id]).await?;
                    }
                    1 => {
                        c.simple_query("SELECT count(*) FROM accounts").await?;
                    }
                    _ => {
                        c.batch_execute(&format!(
                            "BEGIN; UPDATE accounts SET balance = balance - 1 WHERE id = {id}; \
                             UPDATE accounts SET balance = balance + 1 WHERE id = {}; COMMIT;",
                            id % 100 + 1
                        ))
                        .await?;
                    }
                }
                lat.push(t.elapsed());
            }
            anyhow::Ok((wait, lat))
        }));
    }
    let mut lat = Vec::new();
    let mut waits = Vec::new();
    let mut errors = 0;
    for (n, t) in tasks.into_iter().enumerate() {
        match t.await? {
            Ok((w, l)) => {
                waits.push(w);
                lat.extend(l);
            }
            Err(e) => {
                errors += 1;
                eprintln!("    client {n} failed: {e:#}");
            }
        }
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprint!("\r    clients finished: {}/{}", n + 1, args.clients);
        }
    }
    eprintln!("\r    clients finished: {0}/{0}", args.clients);
    let elapsed = started.elapsed();
    lat.sort();
    waits.sort();
    let pct = |v: &[Duration], p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let total: i64 = pg
        .psql(USER, "SELECT sum(balance) FROM accounts")?
        .trim()
        .parse()
        .unwrap_or(-1);
    println!();
    println!("What happened");
    println!(
        "  queries            {} in {:.2?} ({:.0}/s), {} client errors",
        lat.len(),
        elapsed,
        lat.len() as f64 / elapsed.as_secs_f64(),
        errors
    );
    println!(
        "  query latency      p50 {:.2?}  p99 {:.2?}  max {:.2?}",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
    println!("  connect + login    p50 {:.2?}  max {:.2?}  (includes any wait for a server connection, FIFO)", pct(&waits, 0.5), waits.last().copied().unwrap_or_default());
    println!("  server connections {} open to PostgreSQL for {} clients", pg.psql(USER, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbwarden' OR usename = 'demo'")?.trim(), args.clients);
    println!("  money conserved    sum(balance) = {total} (expected 100000)");
    if errors > 0 || total != 100_000 {
        anyhow::bail!("the workload saw {errors} errors, sum {total}");
    }
    Ok(())
}

/// One client changes its TimeZone and leaves; the next client on the same server connection
/// must see the default again (the connection was reset before reuse).
async fn no_leak_check(url: &str) -> anyhow::Result<()> {
    let a = connect(url).await?;
    a.batch_execute("SET TimeZone = 'Asia/Tokyo'").await?;
    let pid_a: i32 = a.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..8 {
        let b = connect(url).await?;
        let pid_b: i32 = b.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
        let tz: String = b.query_one("SHOW TimeZone", &[]).await?.get(0);
        if pid_b == pid_a {
            println!("  session reset      client A set TimeZone=Asia/Tokyo and left; client B on the same server (pid {pid_b}) sees TimeZone={tz}");
            anyhow::ensure!(tz != "Asia/Tokyo", "session state leaked between clients");
            return Ok(());
        }
    }
    println!(
        "  session reset      (the next clients got other server connections; nothing to compare)"
    );
    Ok(())
}

/// Transaction mode: a client's own TimeZone follows it from server connection to server
/// connection, and never shows up in another client's session on the same connections.
async fn settings_follow_check(url: &str) -> anyhow::Result<()> {
    let a = connect(url).await?;
    let b = connect(url).await?;
    a.batch_execute("SET TimeZone = 'Asia/Tokyo'").await?;
    let (mut pids_a, mut pids_b) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for _ in 0..20 {
        let ra = a
            .query_one("SELECT pg_backend_pid(), current_setting('TimeZone')", &[])
            .await?;
        let rb = b
            .query_one("SELECT pg_backend_pid(), current_setting('TimeZone')", &[])
            .await?;
        let (tz_a, tz_b): (String, String) = (ra.get(1), rb.get(1));
        anyhow::ensure!(tz_a == "Asia/Tokyo", "client A lost its TimeZone: {tz_a}");
        anyhow::ensure!(
            tz_b != "Asia/Tokyo",
            "client A's TimeZone leaked into client B"
        );
        pids_a.insert(ra.get::<_, i32>(0));
        pids_b.insert(rb.get::<_, i32>(0));
    }
    let shared = pids_a.intersection(&pids_b).count();
    println!(
        "  settings follow    client A set TimeZone=Asia/Tokyo; its 20 transactions ran on {} server connection(s), \
         all saw Asia/Tokyo; client B used {} of the same connections and never did",
        pids_a.len(),
        shared
    );
    Ok(())
}

async fn wrong_password(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let url = format!(
        "host={} port={} user={USER} password=wrong dbname={USER}",
        addr.ip(),
        addr.port()
    );
    match tokio_postgres::connect(&url, NoTls).await {
        Ok(_) => anyhow::bail!("a wrong password was accepted"),
        Err(e) => {
            let code = e.code().map(|c| c.code().to_owned()).unwrap_or_default();
            println!("  wrong password     refused with SQLSTATE {code}");
        }
    }
    Ok(())
}
