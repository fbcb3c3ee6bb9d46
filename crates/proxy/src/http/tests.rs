use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use hyper::{Method, Request, StatusCode};

use super::history::{History, SAMPLES};
use super::*;
use crate::pools::PoolKey;
use crate::stats::{PoolSnapshot, Stats};

fn state() -> State {
    let config =
        dbwarden_config::Config::from_upstream_url("postgres://app:pw@127.0.0.1:1").unwrap();
    let proxy = Proxy::new(config).unwrap();
    State {
        shared: proxy.shared.clone(),
        history: Mutex::default(),
    }
}

fn get(state: &State, uri: &str) -> hyper::Response<routes::Body> {
    routes::route(state, &Request::get(uri).body(()).unwrap())
}

#[test]
fn paths_methods_and_bad_parameters() {
    let s = state();
    assert_eq!(get(&s, "/healthz").status(), StatusCode::OK);
    assert_eq!(get(&s, "/readyz").status(), StatusCode::OK);
    assert_eq!(get(&s, "/").status(), StatusCode::OK);
    assert_eq!(get(&s, "/api/pools?since=12").status(), StatusCode::OK);
    assert_eq!(
        get(&s, "/api/pools?since=-1").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(get(&s, "/metrics/").status(), StatusCode::NOT_FOUND);
    let post = Request::builder()
        .method(Method::POST)
        .uri("/metrics")
        .body(())
        .unwrap();
    let r = routes::route(&s, &post);
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
}

#[test]
fn readiness_reports_shutting_down() {
    let s = state();
    s.shared.shutting_down.store(true, Relaxed);
    let r = ready::check(&s.shared);
    assert!(!r.ready);
    assert_eq!(r.reasons, ["shutting down: no longer accepting clients"]);
    assert_eq!(get(&s, "/readyz").status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn the_dashboard_loads_nothing_from_elsewhere() {
    let page = include_str!("dashboard.html");
    for external in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!page.contains(external), "{external}");
    }
    assert!(page.contains("/api/pools"));
}

fn snapshot(stats: &Stats, db: &str) -> PoolSnapshot {
    let key = PoolKey {
        database: db.to_owned(),
        user: "app".to_owned(),
    };
    PoolSnapshot {
        key: key.clone(),
        stats: stats.pool(&key),
        mode: None,
        backend: None,
        size: 4,
        clients: Default::default(),
        servers: Default::default(),
        max_wait: Duration::from_millis(30),
        breaker_open: None,
    }
}

#[test]
fn history_turns_totals_into_per_second_rates_and_forgets_old_samples() {
    let stats = Stats::default();
    let mut h = History::default();
    let p = snapshot(&stats, "db");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    h.record(std::slice::from_ref(&p), t0);
    p.stats.queries.fetch_add(50, Relaxed);
    p.stats.query_us.fetch_add(100_000, Relaxed);
    p.stats.server_assignments.fetch_add(10, Relaxed);
    p.stats.wait_us.fetch_add(20_000, Relaxed);
    let t1 = t0 + Duration::from_secs(2);
    h.record(std::slice::from_ref(&p), t1);
    let c = h.columns(&p.key, 0);
    assert_eq!(c.t_ms.len(), 2);
    assert_eq!(c.queries_per_s, [0.0, 25.0], "the first sample has no rate");
    assert_eq!(c.query_avg_ms, [0.0, 2.0]);
    assert_eq!(c.wait_avg_ms, [0.0, 2.0]);
    assert_eq!(c.wait_max_ms, [30.0, 30.0]);
    assert_eq!(h.columns(&p.key, c.t_ms[0]).t_ms, [c.t_ms[1]]);

    // Samples older than the window go; a pool with none left is forgotten.
    let gone = snapshot(&stats, "gone");
    h.record(std::slice::from_ref(&gone), t1);
    let later = t1 + history::INTERVAL * (SAMPLES as u32 + 5);
    h.record(std::slice::from_ref(&p), later);
    assert_eq!(h.columns(&p.key, 0).t_ms.len(), 1);
    assert!(h.keys().all(|k| k.database == "db"));
}
