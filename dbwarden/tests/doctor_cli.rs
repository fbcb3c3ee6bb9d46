//! `dbwarden doctor` as users run it: sub-commands, output formats, exit codes
//! (0 ok, 1 warning, 2 critical, 3 could not run).

use std::net::TcpListener;
use std::process::{Command, Output};

use dbwarden_testkit::pg::PgCluster;

fn doctor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dbwarden"))
        .arg("doctor")
        .args(args)
        .env_remove("PGPASSWORD")
        .output()
        .expect("run dbwarden")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn list_and_explain() {
    let o = doctor(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    for id in [
        "probe.dns",
        "pg.prepared_xacts",
        "mysql.wait_timeout",
        "redis.hit_ratio",
    ] {
        assert!(stdout(&o).contains(id), "list lacks {id}");
    }
    let o = doctor(&["list", "--thresholds"]);
    assert!(stdout(&o).contains("pg.connections.warn_pct"));

    let o = doctor(&["explain", "pg.prepared_xacts"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.contains("ROLLBACK PREPARED") && text.contains("pg_prepared_xacts"),
        "{text}"
    );
    assert!(
        text.contains("pg.prepared_xacts.warn_s"),
        "thresholds are listed: {text}"
    );

    assert_eq!(doctor(&["explain", "pg.nope"]).status.code(), Some(3));
}

#[test]
fn bad_arguments_exit_3() {
    assert_eq!(doctor(&["http://example.com"]).status.code(), Some(3));
    assert_eq!(
        doctor(&["postgres://u@h", "--threshold", "nope=1"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        doctor(&["postgres://u@h", "--skip", "pg.typo"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(doctor(&[]).status.code(), Some(3));
}

#[test]
fn refused_connection_is_critical_with_json_on_stdout() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://doctor:secret-pw@127.0.0.1:{port}/x");
    let o = doctor(&[&url, "--format", "json", "--connect-timeout", "2s"]);
    assert_eq!(o.status.code(), Some(2));
    let json = stdout(&o);
    assert!(json.contains("\"schema_version\": 1"), "{json}");
    assert!(json.contains("\"failed_phase\": \"tcp\""), "{json}");
    assert!(json.contains("\"id\": \"probe.tcp\"") && json.contains("\"severity\": \"critical\""));
    assert!(!json.contains("secret-pw"), "the password leaked: {json}");
}

#[test]
fn real_server_report_in_every_format() {
    let pg = PgCluster::start().expect("start PostgreSQL");
    let url = format!(
        "{}?sslmode=disable",
        pg.url("postgres", "postgres", "postgres")
    );
    let dir = tempfile::tempdir().unwrap();

    // A default cluster has no timeouts set: a warning, exit 1.
    let o = doctor(&[&url, "--samples", "3"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("Connection waterfall") && text.contains("pg.timeouts_unset"),
        "{text}"
    );
    assert!(
        !text.contains("\x1b["),
        "no colour when stdout is not a terminal"
    );

    let o = doctor(&[&url, "--only", "probe", "--format", "markdown"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("| auth |"));
    assert!(
        !stdout(&o).contains("pg.timeouts_unset"),
        "--only probe runs no checks"
    );

    let html = dir.path().join("r.html");
    let o = doctor(&[
        &url,
        "--skip",
        "pg.timeouts_unset,pg.tcp_keepalives",
        "--format",
        "html",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg id=\"waterfall\"") && page.contains("data-phase=\"auth\""));
}
