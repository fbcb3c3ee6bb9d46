//! The first thing that must work: a real client through the proxy to a real server.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_and_extended_queries_through_the_proxy() {
    let pg = cluster_with_db("smoke").await;
    let proxy = TestProxy::start(upstream_config(&pg, 2)).await;
    let c = connect(&proxy.conn_str(USER, PASSWORD, "smoke"))
        .await
        .unwrap();

    let rows = c.simple_query("SELECT 1 AS one, 'x' AS s").await.unwrap();
    let row = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("a row");
    assert_eq!(row.get("one"), Some("1"));

    let stmt = c.prepare("SELECT $1::int + 1").await.unwrap();
    let n: i32 = c.query_one(&stmt, &[&41i32]).await.unwrap().get(0);
    assert_eq!(n, 42);

    let db: String = c
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(db, "smoke");
    drop(c);
    proxy.shutdown().await;
}
