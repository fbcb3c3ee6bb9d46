//! A backend that stops answering mid-query (the relay holds everything it sends): the
//! query timeout still fires, the CancelRequest still reaches PostgreSQL (it travels the
//! other way, on a new connection), and the client hears 57014 naming the timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dbwarden_config::PoolMode;
use dbwarden_testkit::Relay;

use super::*;

async fn sleeping(monitor: &Client) -> i64 {
    monitor
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE state = 'active' AND query LIKE '%/* stalled */%' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_backend_hits_query_timeout_and_its_query_is_cancelled() {
    let pg = cluster_with_db(DB).await;
    let mon = monitor(&pg).await;
    let pg_addr: SocketAddr = format!("{}:{}", pg.host(), pg.port()).parse().unwrap();
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let relay = Relay::start(pg_addr).await.unwrap();
        let mut c = upstream_config(&pg, 2);
        c.pool.mode = mode;
        c.pool.query_timeout = Duration::from_secs(1);
        for db in c.databases.values_mut() {
            db.host = relay.addr().ip().to_string();
            db.port = relay.addr().port();
        }
        let proxy = TestProxy::start(c).await;
        let a = client(&proxy).await;
        a.simple_query("SELECT 1").await.unwrap();

        relay.stall_replies(true);
        let started = Instant::now();
        let running = tokio::spawn(async move {
            let r = a.simple_query("SELECT pg_sleep(30) /* stalled */").await;
            (a, r)
        });
        eventually(
            "the query runs on the server",
            Duration::from_millis(900),
            || async { sleeping(&mon).await == 1 },
        )
        .await;
        let (a, result) = running.await.unwrap();
        let err = result.expect_err("the query must time out");
        let took = started.elapsed();
        let (code, message) = db_error(&err).unwrap_or_else(|| panic!("{mode:?}: {err}"));
        assert_eq!(code, "57014", "{mode:?}: {message}");
        assert!(message.contains("query_timeout"), "{mode:?}: {message}");
        // The timeout, then at most the 2 s the server gets to answer the cancel.
        assert!(took < Duration::from_secs(5), "{mode:?}: took {took:?}");
        // The cancel got through to PostgreSQL: the query is not running any more.
        eventually(
            "the stalled query was cancelled",
            Duration::from_secs(3),
            || async { sleeping(&mon).await == 0 },
        )
        .await;

        // The stuck server connection was closed, not reused; others are served.
        relay.stall_replies(false);
        let b = client(&proxy).await;
        assert_eq!(value(&b, "SELECT 6 * 7").await, "42", "{mode:?}");
        drop((a, b));
        proxy.shutdown().await;
    }
}
