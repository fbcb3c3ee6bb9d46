use std::sync::atomic::Ordering::Relaxed;

use dbwarden_wire::frontend::tag as fe;

use super::*;

fn key(db: &str) -> PoolKey {
    PoolKey {
        database: db.to_owned(),
        user: "app".to_owned(),
    }
}

#[test]
fn pipelined_queries_each_count_and_the_transaction_once() {
    let stats = Stats::default();
    let pool = stats.pool(&key("db"));
    let mut m = Meter::new(pool.clone());
    // BEGIN; UPDATE; COMMIT pipelined as three simple queries.
    for _ in 0..3 {
        m.client_message(fe::QUERY, &[]);
    }
    m.ready(true, false);
    m.ready(true, false);
    assert_eq!(pool.xacts.load(Relaxed), 0, "still in the transaction");
    m.ready(false, true);
    assert_eq!(pool.queries.load(Relaxed), 3);
    assert_eq!(pool.xacts.load(Relaxed), 1);
    // A ReadyForQuery nobody asked for (the proxy's own query) counts nothing.
    m.ready(false, true);
    assert_eq!(pool.queries.load(Relaxed), 3);
}

#[test]
fn extended_protocol_counts_parse_and_bind() {
    let stats = Stats::default();
    let pool = stats.pool(&key("db"));
    let mut m = Meter::new(pool.clone());
    for tag in [
        fe::PARSE,
        fe::BIND,
        fe::EXECUTE,
        fe::SYNC,
        fe::BIND,
        fe::EXECUTE,
        fe::SYNC,
    ] {
        m.client_message(tag, &[]);
    }
    m.ready(true, true);
    m.ready(false, true);
    assert_eq!(pool.client_parses.load(Relaxed), 1);
    assert_eq!(pool.binds.load(Relaxed), 2);
    assert_eq!(pool.queries.load(Relaxed), 2);
    // Two Syncs outside a transaction block: two transactions.
    assert_eq!(pool.xacts.load(Relaxed), 2);
}

#[test]
fn pool_totals_survive_and_labels_stay_bounded() {
    let stats = Stats::default();
    let a = stats.pool(&key("db"));
    a.xacts.fetch_add(5, Relaxed);
    assert_eq!(stats.pool(&key("db")).xacts.load(Relaxed), 5, "same totals");
    for i in 0..metrics::MAX_POOL_LABELS + 10 {
        stats.pool(&key(&format!("db{i}")));
    }
    let last = stats.pool(&key("one-more"));
    assert_eq!(last.labels.database, "_other");
}

#[test]
fn errors_are_labelled_by_class_and_notable_code() {
    let stats = Stats::default();
    let pool = stats.pool(&key("db"));
    pool.error("40001");
    pool.error("42P01");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &stats.registry.lock()).unwrap();
    assert!(
        text.contains(
            r#"dbwarden_errors_total{database="db",user="app",class="40",code="40001"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"dbwarden_errors_total{database="db",user="app",class="42",code="other"} 1"#
        ),
        "{text}"
    );
}
