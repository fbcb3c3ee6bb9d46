use proptest::prelude::*;

use super::*;

const TRACE: u128 = 0x0af7651916cd43dd8448eb211c80319c;
const SPAN: u64 = 0xb7ad6b7169203331;
const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn found(text: &str) -> Option<Parent> {
    find(text.as_bytes())
}

fn ours(flags: u8) -> Option<Parent> {
    Some(Parent {
        trace_id: TRACE,
        span_id: SPAN,
        flags,
    })
}

#[test]
fn sqlcommenter_comments_as_the_libraries_write_them() {
    // Go (sqlcommenter-go): keys sorted, traceparent among others.
    let go = format!("SELECT * FROM t /*action='list',framework='net%2Fhttp',traceparent='{TP}'*/");
    assert_eq!(found(&go), ours(1));
    // Python (opentelemetry-instrumentation, sqlcommenter): with tracestate after it.
    let py = format!("SELECT 1 /*db_driver='psycopg2%3A2.9.9',traceparent='{TP}',tracestate='congo%3Dt61rcWkgMzE'*/");
    assert_eq!(found(&py), ours(1));
    // In front of the statement, spaced, not sampled.
    let front = format!(
        "/* traceparent = '{}' */ SELECT 1",
        TP.replace("-01", "-00")
    );
    assert_eq!(found(&front), ours(0));
    assert!(!found(&front).unwrap().sampled());
    // Unquoted.
    assert_eq!(found(&format!("SELECT 1 /*traceparent={TP}*/")), ours(1));
    // URL-encoded dashes.
    let encoded = format!("SELECT 1 /*traceparent='{}'*/", TP.replace('-', "%2D"));
    assert_eq!(found(&encoded), ours(1));
    // A later version with an extra field.
    let v1 = format!("SELECT 1 /*traceparent='01{}-extra'*/", &TP[2..]);
    assert_eq!(found(&v1), ours(1));
}

#[test]
fn a_query_frame_is_searched_as_it_is() {
    let sql = format!("SELECT 1 /*traceparent='{TP}'*/");
    let mut frame = vec![b'Q'];
    frame.extend_from_slice(&(sql.len() as u32 + 5).to_be_bytes());
    frame.extend_from_slice(sql.as_bytes());
    frame.push(0);
    assert_eq!(find(&frame), ours(1));
}

#[test]
fn invalid_or_misplaced_values_are_ignored() {
    let cases = [
        "SELECT 1".to_owned(),
        "SELECT traceparent FROM t".to_owned(),
        format!("SELECT 'traceparent={TP}'"),
        format!("/* done */ SELECT 'traceparent={TP}'"),
        format!("/* xtraceparent='{TP}' */"),
        format!(
            "/* traceparent='{}' */",
            TP.to_uppercase().replace("0A", "0a")
        ),
        format!("/* traceparent='{}' */", &TP[..54]),
        format!("/* traceparent='{TP}0' */"),
        "/* traceparent='00-00000000000000000000000000000000-b7ad6b7169203331-01' */".to_owned(),
        "/* traceparent='00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01' */".to_owned(),
        format!("/* traceparent='ff{}' */", &TP[2..]),
        format!("/* traceparent='{}' */", TP.replace('-', "%2")),
        "/* traceparent".to_owned(),
        "/* traceparent=".to_owned(),
        String::new(),
    ];
    for case in &cases {
        assert_eq!(found(case), None, "{case}");
    }
}

#[test]
fn the_first_valid_one_wins() {
    let text = format!(
        "/* traceparent='bad' */ SELECT 1 /*traceparent='{TP}'*/ /*traceparent='{}'*/",
        TP.replace("b7ad", "c7ad")
    );
    assert_eq!(found(&text), ours(1));
}

proptest! {
    #[test]
    fn any_bytes_are_safe(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = find(&bytes);
    }

    #[test]
    fn any_valid_value_is_read_back(
        trace in 1u128.., span in 1u64.., flags in any::<u8>(), sql in "[ -~]{0,40}",
    ) {
        let sql = sql.replace("*/", "").replace("traceparent", "");
        let text = format!("{sql} /*traceparent='00-{trace:032x}-{span:016x}-{flags:02x}'*/");
        prop_assert_eq!(find(text.as_bytes()), Some(Parent { trace_id: trace, span_id: span, flags }));
    }
}

/// What a statement pays for the search, with and without a traceparent. Not a pass/fail
/// test: run it in release mode to read the figures,
/// `cargo test --release -p dbwarden-proxy --lib -- --ignored search_cost --nocapture`.
#[test]
#[ignore]
fn search_cost() {
    use std::hint::black_box;
    use std::time::Instant;
    let select = "SELECT id, name, total FROM orders WHERE customer_id = $1 AND status = $2 \
                  ORDER BY created_at DESC LIMIT 50";
    let insert = format!(
        "INSERT INTO events (kind, body) VALUES ('x', '{}')",
        "y".repeat(1000)
    );
    let traced = format!("{select} /*action='list',traceparent='{TP}'*/");
    for (name, sql) in [
        ("SELECT 1", "SELECT 1"),
        ("select, 110 bytes", select),
        ("insert, 1 KB", insert.as_str()),
        ("select with traceparent", traced.as_str()),
    ] {
        let n = 2_000_000u32;
        let start = Instant::now();
        for _ in 0..n {
            black_box(find(black_box(sql.as_bytes())));
        }
        let per = start.elapsed() / n;
        println!("{name:<26} {per:>8?} per statement");
    }
}
