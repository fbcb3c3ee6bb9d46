//! The bad day, against a real PostgreSQL: idle connections that die or hang (`health`),
//! PostgreSQL killed and restarted under load (`restart`), a backend that stops answering
//! (`stall`), clients and backends that die mid-transaction (`gone`), logins that never
//! finish (`login`) and reloads under traffic (`reload`). Each test shows the client gets a
//! clear answer in bounded time and nothing is left running or idle in transaction.

mod common;
#[path = "failures/gone.rs"]
mod gone;
#[path = "failures/health.rs"]
mod health;
#[path = "failures/login.rs"]
mod login;
#[path = "failures/reload.rs"]
mod reload;
#[path = "failures/restart.rs"]
mod restart;
#[path = "failures/stall.rs"]
mod stall;
use common::*;
use dbwarden_testkit::PgCluster;
use tokio_postgres::Client;

const DB: &str = "failures";

async fn client(proxy: &TestProxy) -> Client {
    connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap()
}

/// The server pid behind a client's current (or next) transaction.
async fn backend_pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// The test user's backends on `pg` (the proxy's server connections) and their state.
async fn app_backends(monitor: &Client) -> Vec<(i32, String)> {
    monitor
        .query(
            "SELECT pid, coalesce(state, '') FROM pg_stat_activity WHERE usename = $1",
            &[&USER],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The SQLSTATE and message of a server (or proxy) error; `None` for a closed connection.
fn db_error(e: &tokio_postgres::Error) -> Option<(String, String)> {
    e.as_db_error()
        .map(|d| (d.code().code().to_owned(), d.message().to_owned()))
}

/// Runs `sql` directly on `pg` as the test user (who owns what it creates).
async fn run_direct(pg: &PgCluster, sql: &str) {
    connect(&pg.url(USER, PASSWORD, DB))
        .await
        .unwrap()
        .batch_execute(sql)
        .await
        .unwrap();
}

/// A number read directly from `pg`, bypassing the proxy.
async fn direct_count(pg: &PgCluster, sql: &str) -> i64 {
    connect(&pg.url(USER, PASSWORD, DB))
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}
