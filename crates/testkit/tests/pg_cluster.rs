//! Lifecycle of throw-away clusters against real PostgreSQL.

use std::net::TcpStream;
use std::time::Duration;

use dbwarden_testkit::{PgCluster, PgError, PgOptions, StopMode};

fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).is_ok()
}

#[test]
fn clusters_start_in_parallel_on_distinct_ports() {
    let clusters: Vec<PgCluster> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3).map(|_| scope.spawn(PgCluster::start)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().expect("cluster starts"))
            .collect()
    });
    let mut ports: Vec<u16> = clusters.iter().map(PgCluster::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "each cluster has its own port");
    for cluster in &clusters {
        let port = cluster.psql("postgres", "SHOW port").unwrap();
        assert_eq!(port, cluster.port().to_string());
        assert!(accepts_tcp(cluster.port()));
    }
}

#[test]
fn psql_runs_scripts_and_reports_errors() {
    let pg = PgCluster::shared();
    pg.create_database("psql_scripts").unwrap();
    let out = pg
        .psql(
            "psql_scripts",
            "CREATE TABLE t (v int);\nINSERT INTO t VALUES (1), (2);\nSELECT sum(v) FROM t;\nSELECT 'a|b';",
        )
        .unwrap();
    assert_eq!(out, "3\na|b");

    let err = pg
        .psql("psql_scripts", "SELECT * FROM missing")
        .unwrap_err();
    assert!(
        err.to_string().contains("missing"),
        "error carries psql's stderr: {err}"
    );
    // ON_ERROR_STOP: nothing after the failing statement runs.
    let err = pg
        .psql("psql_scripts", "SELECT 1/0;\nCREATE TABLE after_error ();")
        .unwrap_err();
    assert!(err.to_string().contains("division by zero"), "{err}");
    let tables = pg
        .psql(
            "psql_scripts",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'after_error'",
        )
        .unwrap();
    assert_eq!(tables, "0");
}

#[test]
fn shared_cluster_is_one_instance_with_the_documented_defaults() {
    let pg = PgCluster::shared();
    assert!(std::ptr::eq(pg, PgCluster::shared()));
    assert_eq!(pg.host(), "127.0.0.1");
    assert_eq!(pg.superuser(), "postgres");
    assert_eq!(
        pg.url("u@x", "p w", "db"),
        format!("postgres://u%40x:p%20w@127.0.0.1:{}/db", pg.port())
    );
    let settings = pg
        .psql(
            "postgres",
            "SELECT current_setting('max_connections'), current_setting('fsync'), \
             current_setting('listen_addresses'), current_setting('server_encoding'), \
             current_setting('lc_collate')",
        )
        .unwrap();
    assert_eq!(settings, "300|off|127.0.0.1|UTF8|C");
    assert!(pg.data_dir().join("PG_VERSION").exists());
    assert!(PgCluster::bin_dir().join("postgres").exists());
}

#[test]
fn settings_and_users_are_applied() {
    let pg = PgCluster::start_with(PgOptions {
        users: vec![("app".into(), "secret".into())],
        settings: vec![
            ("max_connections".into(), "42".into()),
            ("cluster_name".into(), "it's quoted".into()),
        ],
        ..PgOptions::default()
    })
    .unwrap();
    let out = pg
        .psql(
            "postgres",
            "SHOW max_connections; SHOW cluster_name;\n\
             SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'app';",
        )
        .unwrap();
    assert_eq!(out, "42\nit's quoted\nt|f");
}

#[test]
fn a_failed_start_reports_the_server_log() {
    let err = PgCluster::start_with(PgOptions {
        settings: vec![("shared_buffers".into(), "not-a-size".into())],
        ..PgOptions::default()
    })
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("server log"), "{text}");
    assert!(
        text.contains("shared_buffers"),
        "log tail names the bad setting: {text}"
    );
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<PgError>());
    assert!(matches!(inner, Some(PgError::Start { .. })), "{err:?}");
}

#[test]
fn stop_and_start_again_keep_port_and_data() {
    let pg = PgCluster::start().unwrap();
    let port = pg.port();
    pg.psql(
        "postgres",
        "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7);",
    )
    .unwrap();

    pg.stop(StopMode::Fast).unwrap();
    assert!(!accepts_tcp(port), "stopped server must not listen");
    assert!(pg.psql("postgres", "SELECT 1").is_err());
    pg.stop(StopMode::Fast).expect("stopping twice is harmless");

    pg.start_again().unwrap();
    assert_eq!(pg.port(), port);
    assert_eq!(pg.psql("postgres", "SELECT v FROM kept").unwrap(), "7");
    assert!(
        pg.start_again().is_err(),
        "a running cluster cannot start again"
    );

    pg.stop(StopMode::Immediate).unwrap();
    assert!(!accepts_tcp(port));
    pg.start_again().unwrap();
    assert_eq!(pg.psql("postgres", "SELECT v FROM kept").unwrap(), "7");
}

#[test]
fn drop_stops_the_server_and_removes_the_directory() {
    let pg = PgCluster::start().unwrap();
    let port = pg.port();
    let data = pg.data_dir().to_path_buf();
    let pid: u32 = pg
        .psql("postgres", "SELECT pg_backend_pid()")
        .unwrap()
        .parse()
        .unwrap();
    assert!(pid > 0);
    drop(pg);
    assert!(!data.exists(), "data directory removed");
    assert!(!accepts_tcp(port), "server gone");
}

/// Runs this test binary again as a child that starts a cluster and hangs,
/// kills the child with SIGKILL (no destructors run), and checks that the
/// server died with it.
#[test]
fn servers_die_with_a_killed_test_process() {
    const ROLE: &str = "DBWARDEN_TESTKIT_ORPHAN_CHILD";
    if std::env::var_os(ROLE).is_some() {
        let pg = PgCluster::start().unwrap();
        println!("CLUSTER {} {}", pg.port(), pg.data_dir().display());
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "servers_die_with_a_killed_test_process",
            "--nocapture",
        ])
        .env(ROLE, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let line = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("CLUSTER ").map(str::to_owned))
        .expect("child reports its cluster");
    let (port, data) = line.split_once(' ').unwrap();
    let port: u16 = port.parse().unwrap();
    assert!(accepts_tcp(port));

    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while accepts_tcp(port) {
        assert!(
            std::time::Instant::now() < deadline,
            "postgres outlived its test process"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The next run's sweep would remove the directory; do not wait for it.
    let _ = std::fs::remove_dir_all(std::path::Path::new(data).parent().unwrap());
}
