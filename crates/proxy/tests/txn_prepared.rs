//! Transaction mode: named prepared statements work across transactions that land on other
//! server connections, stay in each client's own namespace, and survive eviction, DEALLOCATE
//! and DISCARD. Real drivers (psycopg 3, asyncpg, pgbench) are in `external`.

mod common;
#[path = "txn_prepared/external.rs"]
mod external;
#[path = "txn_prepared/raw.rs"]
mod raw;

use std::collections::HashSet;

use common::*;
use futures_util::future::try_join3;
use tokio::task::JoinSet;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

const DB: &str = "prepared";

async fn client(proxy: &TestProxy) -> Client {
    connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap()
}

async fn backend_pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_statements_follow_clients_across_connections() {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(txn_config(&pg, 3)).await;
    let mut tasks = JoinSet::new();
    for i in 0..12i32 {
        let c = client(&proxy).await;
        tasks.spawn(async move {
            // The same text in every client (one server-side statement for all) and a
            // text of the client's own.
            let shared = c.prepare("SELECT $1::int + 1").await.unwrap();
            let own = c
                .prepare(&format!("SELECT $1::int + {}", i * 1000))
                .await
                .unwrap();
            let pid = c.prepare("SELECT pg_backend_pid()").await.unwrap();
            let mut pids = HashSet::new();
            for n in 0..60i32 {
                match n % 3 {
                    0 => {
                        let r = c.query_one(&shared, &[&n]).await.unwrap();
                        assert_eq!(r.get::<_, i32>(0), n + 1);
                    }
                    1 => {
                        // Three pipelined batches, each with its own Sync.
                        let (a, b, p) = try_join3(
                            c.query_one(&shared, &[&n]),
                            c.query_one(&own, &[&n]),
                            c.query_one(&pid, &[]),
                        )
                        .await
                        .unwrap();
                        assert_eq!(a.get::<_, i32>(0), n + 1);
                        assert_eq!(b.get::<_, i32>(0), n + i * 1000);
                        pids.insert(p.get::<_, i32>(0));
                    }
                    _ => {
                        c.batch_execute("BEGIN").await.unwrap();
                        let r = c.query_one(&own, &[&n]).await.unwrap();
                        let p = c.query_one(&pid, &[]).await.unwrap();
                        c.batch_execute("COMMIT").await.unwrap();
                        assert_eq!(r.get::<_, i32>(0), n + i * 1000);
                        pids.insert(p.get::<_, i32>(0));
                    }
                }
            }
            pids
        });
    }
    let mut all = HashSet::new();
    let mut moved = 0;
    while let Some(pids) = tasks.join_next().await {
        let pids = pids.unwrap();
        moved += usize::from(pids.len() > 1);
        all.extend(pids);
    }
    assert!(all.len() <= 3, "server pids {all:?} for a pool of 3");
    assert!(
        moved > 0,
        "no client's statements ever moved to another connection"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_beyond_max_prepared_statements_is_transparent() {
    let pg = cluster_with_db(DB).await;
    let mut config = txn_config(&pg, 2);
    config.pool.max_prepared_statements = 2;
    let proxy = TestProxy::start(config).await;
    let mut tasks = JoinSet::new();
    for i in 0..4i32 {
        let c = client(&proxy).await;
        tasks.spawn(async move {
            let mut stmts = Vec::new();
            for k in 0..5 {
                let sql = format!("SELECT $1::int * 10 + {k}");
                stmts.push(c.prepare(&sql).await.unwrap());
            }
            for round in 0..20i32 {
                for (k, s) in stmts.iter().enumerate() {
                    let n = round * 100 + i;
                    let got: i32 = c.query_one(s, &[&n]).await.unwrap().get(0);
                    assert_eq!(got, n * 10 + k as i32, "client {i} statement {k}");
                }
                let held: i64 = value(&c, "SELECT count(*) FROM pg_prepared_statements")
                    .await
                    .parse()
                    .unwrap();
                assert!(held <= 2, "a server connection holds {held} statements");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deallocate_and_discard_clear_only_the_clients_own_names() {
    let pg = cluster_with_db(DB).await;
    // One server connection: A's DEALLOCATE ALL and DISCARD ALL run where B's statement is.
    let proxy = TestProxy::start(txn_config(&pg, 1)).await;
    let (a, b) = (client(&proxy).await, client(&proxy).await);
    let b_stmt = b.prepare("SELECT $1::int + 2").await.unwrap();
    let b_works = || async {
        b.query_one(&b_stmt, &[&40i32])
            .await
            .unwrap()
            .get::<_, i32>(0)
    };

    for clear in ["DEALLOCATE ALL", "DEALLOCATE PREPARE ALL", "DISCARD ALL"] {
        let s = a.prepare("SELECT $1::int + 1").await.unwrap();
        assert_eq!(
            a.query_one(&s, &[&41i32]).await.unwrap().get::<_, i32>(0),
            42
        );
        assert_eq!(b_works().await, 42);
        a.batch_execute(clear).await.unwrap();
        // As on a dedicated connection: A's statement is gone...
        let err = a.query_one(&s, &[&1i32]).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&SqlState::INVALID_SQL_STATEMENT_NAME),
            "{clear}"
        );
        // ...and B's is not, although the server dropped it too.
        assert_eq!(b_works().await, 42, "{clear}");
    }

    // DISCARD ALL also takes A's settings back to the start.
    a.batch_execute("SET TimeZone = 'Asia/Tokyo'")
        .await
        .unwrap();
    a.batch_execute("DISCARD ALL").await.unwrap();
    assert_eq!(
        value(&a, "SHOW TimeZone").await,
        value(&b, "SHOW TimeZone").await
    );

    drop((a, b));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_prepare_execute_deallocate_work_by_pinning() {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(txn_config(&pg, 2)).await;
    let a = client(&proxy).await;
    a.batch_execute("PREPARE twice(int) AS SELECT $1 * 2")
        .await
        .unwrap();
    let pinned = backend_pid(&a).await;
    // Other clients keep the other connection busy meanwhile; A stays where its statement is.
    let mut others = JoinSet::new();
    for _ in 0..3 {
        let c = client(&proxy).await;
        others.spawn(async move {
            for _ in 0..20 {
                let err = c.batch_execute("EXECUTE twice(1)").await.unwrap_err();
                assert_eq!(err.code(), Some(&SqlState::INVALID_SQL_STATEMENT_NAME));
                assert_ne!(backend_pid(&c).await, pinned);
            }
        });
    }
    for n in 0..20 {
        assert_eq!(
            value(&a, &format!("EXECUTE twice({n})")).await,
            (n * 2).to_string()
        );
        assert_eq!(backend_pid(&a).await, pinned);
    }
    while let Some(done) = others.join_next().await {
        done.unwrap();
    }
    a.batch_execute("DEALLOCATE twice").await.unwrap();
    let err = a.batch_execute("EXECUTE twice(1)").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_SQL_STATEMENT_NAME));
    a.batch_execute("PREPARE thrice(int) AS SELECT $1 * 3")
        .await
        .unwrap();
    assert_eq!(value(&a, "EXECUTE thrice(3)").await, "9");

    // Once A leaves, its connection goes back clean: the two clients that now hold both
    // connections find no `thrice` on either.
    drop(a);
    let (c1, c2) = (client(&proxy).await, client(&proxy).await);
    let mut pids = Vec::new();
    for c in [&c1, &c2] {
        c.batch_execute("BEGIN").await.unwrap();
        pids.push(backend_pid(c).await);
    }
    assert!(
        pids.contains(&pinned),
        "the pinned connection {pinned} was not reused: {pids:?}"
    );
    for c in [&c1, &c2] {
        // The proxy's own server-side statements (`from_sql` false) may well be there.
        let held = "SELECT count(*) FROM pg_prepared_statements WHERE from_sql";
        assert_eq!(value(c, held).await, "0");
        c.batch_execute("COMMIT").await.unwrap();
    }
    drop((c1, c2));
    proxy.shutdown().await;
}
