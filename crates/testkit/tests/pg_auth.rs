//! pg_hba methods and TLS, checked with real clients (tokio-postgres, psql).

use dbwarden_testkit::{test_certs, HbaAuth, PgCluster, PgOptions};
use tokio_postgres::NoTls;

/// "SQLSTATE: message" for server errors, the error's text otherwise.
fn describe(err: tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => err.to_string(),
    }
}

/// Connects with tokio-postgres and runs a query; the current user, or the
/// error described by [`describe`].
async fn login(pg: &PgCluster, user: &str, password: &str) -> Result<String, String> {
    let url = pg.url(user, password, "postgres");
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .map_err(describe)?;
    let driver = tokio::spawn(connection);
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .map_err(describe)?;
    drop(client);
    let _ = driver.await;
    Ok(row.get(0))
}

fn cluster(auth: HbaAuth) -> PgCluster {
    PgCluster::start_with(PgOptions {
        auth,
        users: vec![("app".into(), "app-secret".into())],
        ..PgOptions::default()
    })
    .expect("cluster starts")
}

async fn check_password_auth(auth: HbaAuth, stored_prefix: &str) {
    let pg = cluster(auth.clone());
    assert_eq!(login(&pg, "app", "app-secret").await.unwrap(), "app");
    assert_eq!(
        login(&pg, pg.superuser(), "postgres").await.unwrap(),
        "postgres"
    );
    let err = login(&pg, "app", "wrong").await.unwrap_err();
    assert!(
        err.starts_with("28P01: password authentication failed"),
        "{auth:?}: {err}"
    );
    let stored = pg
        .psql(
            "postgres",
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'",
        )
        .unwrap();
    assert!(
        stored.starts_with(stored_prefix),
        "{auth:?} stores {stored}"
    );
}

#[tokio::test]
async fn trust_accepts_any_password() {
    let pg = cluster(HbaAuth::Trust);
    assert_eq!(login(&pg, "app", "wrong").await.unwrap(), "app");
}

#[tokio::test]
async fn scram_checks_the_password() {
    check_password_auth(HbaAuth::Scram, "SCRAM-SHA-256$").await;
}

#[tokio::test]
async fn md5_checks_the_password() {
    check_password_auth(HbaAuth::Md5, "md5").await;
}

#[tokio::test]
async fn cleartext_password_checks_the_password() {
    check_password_auth(HbaAuth::Password, "SCRAM-SHA-256$").await;
}

fn psql_over_tcp(pg: &PgCluster, sslmode: &str) -> std::process::Output {
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres password=postgres dbname=postgres sslmode={sslmode}",
        pg.port()
    );
    std::process::Command::new(PgCluster::bin_dir().join("psql"))
        .args(["-XAtq", "-d", &conninfo, "-c"])
        .arg("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .env_remove("PGSSLMODE")
        .output()
        .expect("run psql")
}

#[test]
fn tls_cluster_accepts_sslmode_require() {
    let certs = test_certs(&["localhost", "127.0.0.1"]);
    let pg = PgCluster::start_with(PgOptions {
        tls: Some((certs.server_cert.clone(), certs.server_key.clone())),
        ..PgOptions::default()
    })
    .expect("TLS cluster starts");
    let out = psql_over_tcp(&pg, "require");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t");

    // The certificate chains to the CA and names the address.
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
        pg.port(),
        certs.ca_cert.display()
    );
    let out = std::process::Command::new(PgCluster::bin_dir().join("psql"))
        .args(["-XAtq", "-d", &conninfo, "-c", "SELECT 1"])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "verify-full: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plain_cluster_refuses_sslmode_require() {
    let out = psql_over_tcp(PgCluster::shared(), "require");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SSL"), "{stderr}");
}
