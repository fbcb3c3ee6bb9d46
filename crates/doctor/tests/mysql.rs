//! MySQL/MariaDB: the probe and the checklist against the machine's real MariaDB.
//! Each test uses its own account and database with unique names and removes them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_finding, diagnose, ensure_local_services, options};
use dbwarden_doctor::Severity;

fn mysql(sql: &str) -> String {
    let out = Command::new("mysql")
        .args(["-uroot", "-h127.0.0.1", "-P3306", "-N", "-B", "-e", sql])
        .output()
        .expect("mysql client is installed");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A throw-away account and database, dropped at the end of the test.
struct Account {
    name: String,
}

impl Account {
    fn create(tag: &str) -> Account {
        let name = format!("doctor_{tag}_{}", std::process::id());
        mysql(&format!(
            "CREATE DATABASE IF NOT EXISTS {name}; CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY 'pw-{name}'; \
             GRANT SELECT, PROCESS ON *.* TO '{name}'@'%'; CREATE USER IF NOT EXISTS '{name}'@'localhost' IDENTIFIED BY 'pw-{name}'; \
             GRANT SELECT, PROCESS ON *.* TO '{name}'@'localhost';"
        ));
        Account { name }
    }
    fn url(&self) -> String {
        format!("mysql://{0}:pw-{0}@127.0.0.1:3306/{0}", self.name)
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let n = &self.name;
        let _ = Command::new("mysql")
            .args(["-uroot", "-h127.0.0.1", "-e", &format!("DROP USER IF EXISTS '{n}'@'%'; DROP USER IF EXISTS '{n}'@'localhost'; DROP DATABASE IF EXISTS {n};")])
            .status();
    }
}

#[tokio::test]
async fn probe_phases_auth_method_and_checklist() {
    ensure_local_services();
    let acct = Account::create("probe");
    let mut opts = options(&[]);
    // A pool that keeps connections for a day outlives the default wait_timeout (8h).
    opts.pool_lifetime = Duration::from_secs(86_400);
    let report = diagnose(&acct.url(), &opts).await;
    for phase in [
        "dns",
        "tcp",
        "greeting",
        "auth",
        "query",
        "round_trips",
        "checks",
    ] {
        assert!(
            report.phase(phase).is_some_and(|p| p.ok),
            "phase {phase}: {report:#?}"
        );
    }
    let method = report.phase("auth").unwrap().attrs["method"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        method.starts_with("mysql_native_password") || method.starts_with("caching_sha2_password"),
        "{method}"
    );
    assert_finding(&report, "mysql.wait_timeout", Severity::Warning);
    for id in [
        "mysql.skip_name_resolve",
        "mysql.tls",
        "mysql.connections",
        "mysql.aborted",
        "mysql.time_zone",
        "mysql.isolation",
        "probe.round_trips",
    ] {
        assert!(report.finding(id).is_some(), "missing {id}");
    }
    // The skip_name_resolve finding agrees with the server.
    let snr = mysql("SELECT @@skip_name_resolve");
    let expected = if snr == "1" {
        Severity::Ok
    } else {
        Severity::Warning
    };
    assert_finding(&report, "mysql.skip_name_resolve", expected);
    assert!(!dbwarden_doctor::render::json::render(&report)
        .unwrap()
        .contains(&format!("pw-{}", acct.name)));
}

#[tokio::test]
async fn pool_within_wait_timeout_and_wrong_password() {
    ensure_local_services();
    let acct = Account::create("auth");
    let mut opts = options(&[]);
    opts.pool_lifetime = Duration::from_secs(60);
    let report = diagnose(&acct.url(), &opts).await;
    assert_finding(&report, "mysql.wait_timeout", Severity::Ok);

    let bad = format!("mysql://{0}:nope@127.0.0.1:3306/{0}", acct.name);
    let report = diagnose(&bad, &opts).await;
    assert_finding(&report, "probe.auth", Severity::Critical);
    assert_eq!(report.summary.failed_phase.as_deref(), Some("auth"));
    assert_eq!(report.summary.exit_code, 2);
}
