//! Shared set-up for the proxy's integration tests: a real PostgreSQL from the test kit and a
//! proxy running in-process on a free port, stopped when the handle drops.
#![allow(dead_code)] // each test binary uses a different subset

pub mod programs;

use std::net::SocketAddr;

use dbwarden_config::Config;
use dbwarden_proxy::Proxy;
use dbwarden_testkit::{HbaAuth, PgCluster, PgOptions};
use tokio::sync::oneshot;
use tokio_postgres::NoTls;

pub const USER: &str = "app";
pub const PASSWORD: &str = "app-secret";

pub struct TestProxy {
    pub addr: SocketAddr,
    pub proxy: Proxy,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestProxy {
    /// Starts a proxy with `config` (its listen address is replaced by a free port).
    pub async fn start(mut config: Config) -> TestProxy {
        config.proxy.listen = "127.0.0.1:0".into();
        let listener = dbwarden_proxy::bind(&config.proxy.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Proxy::new(config).expect("proxy set-up");
        let (tx, rx) = oneshot::channel::<()>();
        let p = proxy.clone();
        let task = tokio::spawn(async move {
            p.serve(listener, async {
                let _ = rx.await;
            })
            .await
        });
        TestProxy {
            addr,
            proxy,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// A libpq-style connection string to the proxy.
    pub fn conn_str(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "host={} port={} user={user} password={password} dbname={db}",
            self.addr.ip(),
            self.addr.port()
        )
    }

    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "postgres://{user}:{password}@{}:{}/{db}",
            self.addr.ip(),
            self.addr.port()
        )
    }

    /// Stops accepting and waits for the serve loop to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A PostgreSQL with SCRAM auth and the role USER/PASSWORD owning a database named `db`.
pub async fn cluster_with_db(db: &str) -> PgCluster {
    let db = db.to_owned();
    tokio::task::spawn_blocking(move || {
        let pg = PgCluster::start_with(PgOptions {
            auth: HbaAuth::Scram,
            users: vec![(USER.into(), PASSWORD.into())],
            ..PgOptions::default()
        })
        .expect("start PostgreSQL");
        pg.psql("postgres", &format!("CREATE DATABASE {db} OWNER {USER}"))
            .expect("create database");
        pg
    })
    .await
    .unwrap()
}

/// The zero-config proxy config for `pg`: every database, user USER/PASSWORD, session mode
/// (transaction-mode tests switch it).
pub fn upstream_config(pg: &PgCluster, pool_size: u32) -> Config {
    let mut c = Config::from_upstream_url(&format!(
        "postgres://{USER}:{PASSWORD}@{}:{}",
        pg.host(),
        pg.port()
    ))
    .expect("upstream config");
    c.pool.size = pool_size;
    c.pool.mode = dbwarden_config::PoolMode::Session;
    c
}

pub async fn connect(conn_str: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(conn_str, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The same, in transaction mode.
pub fn txn_config(pg: &PgCluster, pool_size: u32) -> Config {
    let mut c = upstream_config(pg, pool_size);
    c.pool.mode = dbwarden_config::PoolMode::Transaction;
    c
}

/// A client and the task driving its connection: aborting the task drops the socket without
/// a Terminate, like a client process that is killed.
pub async fn killable(conn_str: &str) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let (client, conn) = tokio_postgres::connect(conn_str, NoTls).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (client, task)
}

/// A superuser connection straight to PostgreSQL, to watch what the proxy does there.
pub async fn monitor(pg: &PgCluster) -> tokio_postgres::Client {
    connect(&pg.url(pg.superuser(), "postgres", "postgres"))
        .await
        .unwrap()
}

/// The first column of the first row of a simple query, as text ("NULL" for NULL).
pub async fn value(c: &tokio_postgres::Client, sql: &str) -> String {
    c.simple_query(sql)
        .await
        .unwrap()
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(r.get(0).unwrap_or("NULL").to_owned())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no row from {sql}"))
}

/// Polls `check` every 50 ms until it holds; panics after `within`. For what the proxy does
/// just after the client has its answer (a server connection goes back to its pool once
/// ReadyForQuery has been forwarded, not before), so a test must wait for it, not race it.
pub async fn eventually<F, Fut>(what: &str, within: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
