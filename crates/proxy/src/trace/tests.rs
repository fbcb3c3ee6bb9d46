use std::time::Duration;

use dbwarden_config::LogConfig;
use dbwarden_wire::frontend::tag as fe;

use super::log::tests::{capture, client};
use super::*;
use crate::pools::PoolKey;
use crate::stats::{Meter, Stats};

const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACE: u128 = 0x0af7651916cd43dd8448eb211c80319c;

fn query(sql: &str) -> Vec<u8> {
    let mut f = vec![fe::QUERY];
    f.extend_from_slice(&(sql.len() as u32 + 5).to_be_bytes());
    f.extend_from_slice(sql.as_bytes());
    f.push(0);
    f
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut f = vec![fe::PARSE];
    f.extend_from_slice(&((name.len() + sql.len() + 8) as u32).to_be_bytes());
    f.extend_from_slice(name.as_bytes());
    f.push(0);
    f.extend_from_slice(sql.as_bytes());
    f.extend_from_slice(&[0, 0, 0]);
    f
}

fn slow_config(text: bool) -> LogConfig {
    LogConfig {
        slow_query_threshold: Duration::from_nanos(1),
        log_query_text: text,
        ..LogConfig::default()
    }
}

fn exposition(stats: &Stats) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &stats.registry.lock()).unwrap();
    text
}

#[test]
fn a_traceparent_tags_the_transaction_then_goes() {
    let stats = Stats::default();
    let me = client(&stats);
    let pool = stats.pool(&PoolKey {
        database: "appdb".into(),
        user: "app".into(),
    });
    let mut m =
        Meter::new(pool.clone()).watched(Watch::new(me.clone(), &LogConfig::default(), None));
    m.client_message(fe::QUERY, &query("BEGIN"));
    assert_eq!(m.trace_id, None);
    m.ready(false, false);
    let q = query(&format!("SELECT 1 /*traceparent='{TP}'*/"));
    m.client_message(fe::QUERY, &q);
    assert_eq!((m.trace_id, me.trace_id()), (Some(TRACE), Some(TRACE)));
    m.ready(false, false);
    // A later traceparent in the same transaction does not replace the first.
    let other = TP.replace("0af7", "1af7");
    m.client_message(
        fe::QUERY,
        &query(&format!("COMMIT /*traceparent='{other}'*/")),
    );
    assert_eq!(m.trace_id, Some(TRACE));
    m.ready(false, true);
    assert_eq!(m.trace_id, None, "the transaction is over");
    assert_eq!(
        me.trace_id(),
        Some(TRACE),
        "kept until the client's next message"
    );
    m.client_message(fe::QUERY, &query("SELECT 2"));
    assert_eq!(me.trace_id(), None);
    m.ready(false, true);
    let text = exposition(&stats);
    assert!(
        text.contains(&format!("trace_id=\"{TRACE:032x}\"")),
        "the exemplar: {text}"
    );
}

#[test]
fn slow_queries_and_transactions_log_one_line_each() {
    let stats = Stats::default();
    let me = client(&stats);
    me.set_server_pid(321);
    let pool = me.login().unwrap().pool.clone();
    let lines = capture(true, || {
        let mut m =
            Meter::new(pool.clone()).watched(Watch::new(me.clone(), &slow_config(false), None));
        // One autocommit query: one line, for the query.
        m.client_message(
            fe::QUERY,
            &query(&format!("SELECT secret /*traceparent='{TP}'*/")),
        );
        m.error("42703");
        m.ready(false, true);
        // A transaction of two queries: a line for each, and one for the transaction.
        m.client_message(fe::PARSE, &parse("s1", "UPDATE t SET x = 1"));
        m.client_message(fe::SYNC, &[fe::SYNC, 0, 0, 0, 4]);
        m.ready(false, false);
        m.client_message(fe::QUERY, &query("COMMIT"));
        m.ready(false, true);
    });
    let v: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 4, "{lines:#?}");
    assert_eq!(v[0]["message"], "slow query");
    assert_eq!(v[0]["target"], "dbwarden_proxy::slow_query");
    assert_eq!(v[0]["level"], "WARN");
    assert_eq!(v[0]["pool"], "appdb/app");
    assert_eq!(v[0]["server.pid"], 321);
    assert_eq!(v[0]["sqlstate"], "42703");
    assert_eq!(v[0]["trace_id"], format!("{TRACE:032x}"));
    assert!(v[0]["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(v[0].get("query").is_none(), "no text unless log_query_text");
    assert!(v[1].get("sqlstate").is_none());
    assert!(v[1].get("trace_id").is_none());
    assert_eq!(v[3]["message"], "slow transaction");
    assert_eq!(v[3]["queries"], 2);
}

#[test]
fn query_text_only_when_asked_and_cut() {
    let stats = Stats::default();
    let me = client(&stats);
    let pool = me.login().unwrap().pool.clone();
    let long = format!("SELECT '{}'", "é".repeat(300));
    let lines = capture(true, || {
        let mut m =
            Meter::new(pool.clone()).watched(Watch::new(me.clone(), &slow_config(true), None));
        m.client_message(fe::PARSE, &parse("", &long));
        m.client_message(fe::SYNC, &[fe::SYNC, 0, 0, 0, 4]);
        m.ready(false, true);
    });
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let text = v["query"].as_str().unwrap();
    assert_eq!(text.chars().count(), TEXT_CHARS);
    assert!(text.starts_with("SELECT 'éé"));
}

#[test]
fn frame_lengths_come_from_the_header() {
    assert_eq!(
        frame_len(&query("SELECT 1")),
        query("SELECT 1").len() as u64
    );
    // Only the start of a long DataRow is at hand.
    assert_eq!(frame_len(&[b'D', 0, 1, 0, 0, 1, 2]), 65_537);
}
