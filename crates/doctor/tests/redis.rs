//! Redis: the probe and the checklist against real redis-server instances. Tests that
//! judge server-wide state (stats, maxmemory) start their own instance.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{assert_finding, diagnose, ensure_local_services, options, OwnRedis};
use dbwarden_doctor::Severity;

/// Feeds commands to `redis-cli` (one per line) without using the code under test.
fn redis_cli(port: u16, commands: &str) {
    let mut child = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-cli is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(commands.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn low_hit_ratio_and_noeviction_cache_are_reported() {
    let redis = OwnRedis::start(&["--maxmemory", "10mb", "--maxmemory-policy", "noeviction"]);
    let mut cmds = String::from("SET present 1\n");
    for i in 0..10 {
        cmds.push_str(&format!("GET present\nGET missing:{i}\n"));
    }
    for i in 10..200 {
        cmds.push_str(&format!("GET missing:{i}\n"));
    }
    redis_cli(redis.port, &cmds);
    let report = diagnose(&redis.url(), &options(&[])).await;
    assert_finding(&report, "redis.hit_ratio", Severity::Warning);
    assert_finding(&report, "redis.maxmemory", Severity::Warning);
    let hr = report.finding("redis.hit_ratio").unwrap();
    assert_eq!(hr.evidence.values["keyspace_misses"], 200);
    assert!(report
        .finding("redis.maxmemory")
        .unwrap()
        .title
        .contains("noeviction"));
    assert_eq!(report.summary.exit_code, 1);
    assert_eq!(
        report.phase("auth").unwrap().attrs["method"],
        "none (no password)"
    );
}

#[tokio::test]
async fn clean_cache_reports_none_of_the_seeded_problems() {
    let redis = OwnRedis::start(&["--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut cmds = String::from("SET present 1\n");
    for _ in 0..200 {
        cmds.push_str("GET present\n");
    }
    redis_cli(redis.port, &cmds);
    let report = diagnose(&redis.url(), &options(&[])).await;
    for id in [
        "redis.hit_ratio",
        "redis.maxmemory",
        "redis.evictions",
        "redis.big_keys",
        "redis.latency",
    ] {
        assert_finding(&report, id, Severity::Ok);
    }
    let lat = report.finding("redis.latency").unwrap();
    assert_eq!(lat.evidence.values["samples"], 5);
}

#[tokio::test]
async fn big_keys_and_passwords_are_handled() {
    let redis = OwnRedis::start(&[
        "--requirepass",
        "hunter2",
        "--maxmemory",
        "64mb",
        "--maxmemory-policy",
        "allkeys-lru",
    ]);
    redis_cli(
        redis.port,
        "AUTH hunter2\nSET small x\nEVAL \"redis.call('SET', KEYS[1], string.rep('x', 2*1024*1024))\" 1 blob\n",
    );
    // Without the password the probe stops at authentication and says why.
    let report = diagnose(&redis.url(), &options(&[])).await;
    assert_finding(&report, "probe.auth", Severity::Critical);
    assert_eq!(report.summary.failed_phase.as_deref(), Some("auth"));

    let url = format!("redis://:hunter2@127.0.0.1:{}/0", redis.port);
    let report = diagnose(&url, &options(&[("redis.big_keys.warn_mb", 1.0)])).await;
    assert_eq!(
        report.phase("auth").unwrap().attrs["method"],
        "HELLO AUTH (default user)"
    );
    assert_finding(&report, "redis.big_keys", Severity::Warning);
    let big = report.finding("redis.big_keys").unwrap();
    assert!(
        big.evidence.items[0].starts_with("blob:"),
        "{:?}",
        big.evidence.items
    );
    assert!(!dbwarden_doctor::render::json::render(&report)
        .unwrap()
        .contains("hunter2"));
}

#[tokio::test]
async fn shared_local_redis_is_probed_read_only() {
    ensure_local_services();
    let opts = options(&[]);
    let report = diagnose("redis://127.0.0.1:6379", &opts).await;
    for phase in ["dns", "tcp", "auth", "query", "round_trips", "checks"] {
        assert!(
            report.phase(phase).is_some_and(|p| p.ok),
            "phase {phase} missing or failed: {report:#?}"
        );
    }
    assert!(report.finding("redis.persistence").is_some());
}
