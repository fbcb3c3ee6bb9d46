//! Helpers shared by the doctor's integration tests: real servers only.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use dbwarden_doctor::{Options, Report, Severity, Target};
use dbwarden_testkit::pg::{PgCluster, PgOptions};

/// Starts a cluster off the async runtime (initdb and pg_ctl block).
pub async fn cluster(opts: PgOptions) -> PgCluster {
    tokio::task::spawn_blocking(move || PgCluster::start_with(opts))
        .await
        .expect("join")
        .expect("start PostgreSQL")
}

/// Options for tests: short timeouts, few samples, thresholds overridden.
pub fn options(thresholds: &[(&str, f64)]) -> Options {
    let mut o = Options {
        samples: 5,
        client_timezone: Some("UTC".into()),
        ..Options::default()
    };
    o.timeouts.query = Duration::from_secs(5);
    for (k, v) in thresholds {
        o.thresholds.set(k, *v).expect("known threshold");
    }
    o
}

pub async fn diagnose(url: &str, opts: &Options) -> Report {
    let target = Target::parse_url(url).expect("valid URL");
    dbwarden_doctor::diagnose(&target, opts).await
}

/// Severity of the finding `id`, failing the test with the report when it is missing.
pub fn severity(report: &Report, id: &str) -> Severity {
    match report.finding(id) {
        Some(f) => f.severity,
        None => panic!(
            "no finding {id} in report:\n{}",
            dbwarden_doctor::render::text::render(report, false)
        ),
    }
}

pub fn assert_finding(report: &Report, id: &str, expected: Severity) {
    let got = severity(report, id);
    assert_eq!(
        got,
        expected,
        "{id}: expected {expected:?}, got {got:?}\n{}",
        dbwarden_doctor::render::text::render(report, false)
    );
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
        .is_ok()
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if port_open(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Makes sure the machine's MariaDB (127.0.0.1:3306) and Redis (127.0.0.1:6379) are
/// up, starting them the way CI does when they are not.
pub fn ensure_local_services() {
    if !port_open(3306) {
        let _ = Command::new("start-stop-daemon")
            .args([
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                "/usr/sbin/mariadbd",
            ])
            .status();
        assert!(
            wait_for_port(3306, Duration::from_secs(30)),
            "MariaDB did not start on 3306"
        );
    }
    if !port_open(6379) {
        let _ = Command::new("redis-server")
            .args([
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "-::1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "/var/lib/redis",
                "--logfile",
                "/var/log/redis/ci.log",
            ])
            .status();
        assert!(
            wait_for_port(6379, Duration::from_secs(10)),
            "Redis did not start on 6379"
        );
    }
}

/// A private redis-server on a free port, killed on drop; tests that need server-wide
/// state (stats, maxmemory) use their own instead of the shared one.
pub struct OwnRedis {
    pub port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl OwnRedis {
    pub fn start(extra: &[&str]) -> OwnRedis {
        // redis-server cannot take port 0, so a free port is probed and may be taken by
        // someone else before redis binds it: then redis exits, and another port is tried.
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(dir.path())
                .args(extra)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("redis-server is installed");
            if ready(&mut child) {
                return OwnRedis {
                    port,
                    child,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("own redis-server did not start on any of 5 ports");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Whether a redis-server says it is ready (rather than exiting, its port taken). Its
/// output is drained afterwards so that it never blocks on a full pipe.
fn ready(child: &mut std::process::Child) -> bool {
    use std::io::BufRead;
    let out = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(out).lines();
    let ok = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("Ready to accept connections"));
    if ok {
        std::thread::spawn(move || lines.for_each(drop));
    }
    ok
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
