//! The statistics behind SHOW STATS, SHOW CLIENTS/SERVERS and /metrics move with real traffic.

mod common;

use std::sync::atomic::Ordering::Relaxed;

use common::*;
use dbwarden_config::PoolMode;
use dbwarden_proxy::stats::{ClientState, ServerState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_queries_and_bytes_are_counted_per_pool() {
    let pg = cluster_with_db("st").await;
    for mode in [PoolMode::Transaction, PoolMode::Session] {
        let mut config = upstream_config(&pg, 2);
        config.pool.mode = mode;
        let proxy = TestProxy::start(config).await;
        let conn = format!(
            "{} application_name=stats-test",
            proxy.conn_str(USER, PASSWORD, "st")
        );
        let c = connect(&conn).await.unwrap();
        for _ in 0..10 {
            c.simple_query("SELECT 1").await.unwrap();
        }
        // One explicit transaction of three statements, pipelined by the simple protocol.
        c.batch_execute("BEGIN; SELECT 2; COMMIT").await.unwrap();
        let stmt = c.prepare("SELECT $1::int").await.unwrap();
        c.query_one(&stmt, &[&7]).await.unwrap();
        let err = c.simple_query("SELECT * FROM no_such_table").await;
        assert!(err.is_err());
        // The error reaches the client before its ReadyForQuery: one more round trip makes
        // sure that was counted too.
        c.simple_query("SELECT 3").await.unwrap();

        let stats = proxy.proxy.stats();
        // Counters and states move just after ReadyForQuery is forwarded, so the client can
        // be here first: wait for the round trip's bookkeeping, then check the exact figures.
        eventually(
            "the last query is counted and its server released",
            std::time::Duration::from_secs(5),
            || {
                let pools = stats.pools();
                let counted = pools
                    .iter()
                    .find(|p| p.key.database == "st")
                    .is_some_and(|p| p.queries.load(Relaxed) >= 15 && p.xacts.load(Relaxed) >= 15);
                let released = mode != PoolMode::Transaction
                    || stats
                        .servers
                        .all()
                        .iter()
                        .all(|s| s.state() == ServerState::Idle)
                        && stats
                            .clients
                            .all()
                            .iter()
                            .all(|c| c.state() == ClientState::Idle && c.server_pid() == 0);
                std::future::ready(counted && released)
            },
        )
        .await;
        let pools = stats.pools();
        let pool = pools
            .iter()
            .find(|p| p.key.database == "st")
            .expect("the pool's totals");
        let xacts = pool.xacts.load(Relaxed);
        let queries = pool.queries.load(Relaxed);
        // 10 + 1 (the three-statement batch is one Query) + prepare (1 Sync) + execute (1)
        // + 1 failed + 1 = 15; the proxy's own queries are not counted.
        assert_eq!(queries, 15, "{mode:?}");
        assert_eq!(xacts, 15, "{mode:?}");
        assert!(pool.client_parses.load(Relaxed) >= 1, "{mode:?}");
        assert!(pool.binds.load(Relaxed) >= 1, "{mode:?}");
        assert!(pool.received.load(Relaxed) > 100, "{mode:?}");
        assert!(pool.sent.load(Relaxed) > 100, "{mode:?}");
        assert!(pool.query_us.load(Relaxed) > 0, "{mode:?}");
        assert!(pool.server_assignments.load(Relaxed) >= 1, "{mode:?}");

        let clients = stats.clients.all();
        let me = clients
            .iter()
            .find(|c| {
                c.login()
                    .is_some_and(|l| l.application_name == "stats-test")
            })
            .expect("the client is listed");
        let login = me.login().unwrap();
        assert_eq!((login.database.as_str(), login.user.as_str()), ("st", USER));
        let servers = stats.servers.all();
        assert!(!servers.is_empty());
        match mode {
            PoolMode::Transaction => {
                assert_eq!(me.state(), ClientState::Idle);
                assert_eq!(me.server_pid(), 0);
                assert!(servers.iter().all(|s| s.state() == ServerState::Idle));
            }
            _ => {
                assert_eq!(me.state(), ClientState::Active);
                let pid = me.server_pid();
                let linked = servers
                    .iter()
                    .find(|s| s.pid == pid)
                    .expect("linked server");
                assert_eq!(linked.client(), Some(me.id));
                assert_eq!(linked.state(), ServerState::Active);
            }
        }

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &stats.registry.lock()).unwrap();
        assert!(
            text.contains(
                r#"dbwarden_errors_total{database="st",user="app",class="42",code="other"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("dbwarden_pool_query_duration_seconds_count{database=\"st\""));
        assert!(text.contains("dbwarden_server_connect_phase_seconds_count{phase=\"auth\"}"));

        drop(c);
        // The client leaves the registry once its task ends.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !stats.clients.is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(stats.clients.len(), 0, "{mode:?}: client still listed");
        proxy.shutdown().await;
    }
}
