//! TLS on both sides of the proxy.
//!
//! Client-facing TLS is checked with `psql`, whose libpq says whether the session is
//! encrypted (`\conninfo`); server-facing TLS with PostgreSQL's own view of the proxy's
//! connection (`pg_stat_ssl`).

mod common;

use std::process::Output;

use common::*;
use dbwarden_config::{ClientTlsMode, Config, ServerTlsMode};
use dbwarden_testkit::{frame, test_certs, HbaAuth, PgCluster, PgOptions, RawClient, TestCerts};

const DB: &str = "tlsdb";

/// Runs `psql` with `conninfo` plus `args`, with the test password and no user settings.
async fn psql(conninfo: &str, args: &[&str]) -> Output {
    tokio::process::Command::new("psql")
        .arg("-X")
        .arg("-d")
        .arg(conninfo)
        .args(args)
        .env("PGPASSWORD", PASSWORD)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .kill_on_drop(true)
        .output()
        .await
        .expect("run psql")
}

/// `psql` connects with `sslmode` (and `extra` conninfo) and reports whether the session is
/// encrypted; `Err(stderr)` when it cannot connect.
async fn psql_ssl(proxy: &TestProxy, sslmode: &str, extra: &str) -> Result<bool, String> {
    let conninfo = format!(
        "host={} port={} user={USER} dbname={DB} sslmode={sslmode} {extra}",
        proxy.addr.ip(),
        proxy.addr.port()
    );
    let out = psql(
        &conninfo,
        &["-c", r"\conninfo", "-At", "-c", "SELECT 40 + 2"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    assert!(stdout.contains("\n42"), "query result missing: {stdout}");
    Ok(stdout.contains("SSL connection"))
}

fn client_tls(mut config: Config, mode: ClientTlsMode, certs: &TestCerts) -> Config {
    config.client_tls.mode = mode;
    config.client_tls.cert_file = Some(certs.server_cert.clone());
    config.client_tls.key_file = Some(certs.server_key.clone());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_require_encrypts_and_refuses_plaintext() {
    let pg = cluster_with_db(DB).await;
    let certs = test_certs(&["localhost", "127.0.0.1"]);
    let config = client_tls(upstream_config(&pg, 2), ClientTlsMode::Require, &certs);
    let proxy = TestProxy::start(config).await;

    assert_eq!(psql_ssl(&proxy, "require", "").await, Ok(true));
    let ca = format!("sslrootcert={}", certs.ca_cert.display());
    assert_eq!(psql_ssl(&proxy, "verify-full", &ca).await, Ok(true));

    let err = psql_ssl(&proxy, "disable", "").await.unwrap_err();
    assert!(err.contains("SSL is required"), "{err}");
    // The same refusal on the wire: FATAL 28000, then the proxy hangs up.
    let mut raw = RawClient::connect(proxy.addr).await.unwrap();
    raw.startup(USER, DB).await.unwrap();
    let m = raw.read_message().await.unwrap().expect("an error");
    assert_eq!(m.error_code().as_deref(), Some("28000"), "{m:?}");
    assert!(raw.is_closed().await);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_allow_accepts_both() {
    let pg = cluster_with_db(DB).await;
    let certs = test_certs(&["localhost", "127.0.0.1"]);
    let config = client_tls(upstream_config(&pg, 2), ClientTlsMode::Allow, &certs);
    let proxy = TestProxy::start(config).await;

    assert_eq!(psql_ssl(&proxy, "require", "").await, Ok(true));
    assert_eq!(psql_ssl(&proxy, "prefer", "").await, Ok(true));
    assert_eq!(psql_ssl(&proxy, "disable", "").await, Ok(false));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_disable_declines_ssl_requests() {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(upstream_config(&pg, 2)).await;

    let mut raw = RawClient::connect(proxy.addr).await.unwrap();
    raw.send(&frame::ssl_request()).await.unwrap();
    assert_eq!(raw.read_byte().await.unwrap(), b'N');
    drop(raw);

    assert_eq!(psql_ssl(&proxy, "prefer", "").await, Ok(false));
    let err = psql_ssl(&proxy, "require", "").await.unwrap_err();
    assert!(err.contains("does not support SSL"), "{err}");
    proxy.shutdown().await;
}

/// A SCRAM cluster with TLS on (the server certificate of `certs`), the role USER and database DB.
async fn tls_cluster(certs: &TestCerts) -> PgCluster {
    let tls = Some((certs.server_cert.clone(), certs.server_key.clone()));
    tokio::task::spawn_blocking(move || {
        let pg = PgCluster::start_with(PgOptions {
            auth: HbaAuth::Scram,
            users: vec![(USER.into(), PASSWORD.into())],
            tls,
            ..PgOptions::default()
        })
        .expect("start PostgreSQL with TLS");
        pg.create_database(DB).expect("create database");
        pg
    })
    .await
    .unwrap()
}

fn server_tls(pg: &PgCluster, mode: ServerTlsMode, ca: Option<&TestCerts>) -> Config {
    let mut config = upstream_config(pg, 2);
    config.server_tls.mode = mode;
    config.server_tls.ca_file = ca.map(|c| c.ca_cert.clone());
    config
}

/// Through the proxy: whether PostgreSQL sees the proxy's connection as encrypted.
async fn upstream_ssl(config: Config) -> Result<bool, tokio_postgres::Error> {
    let proxy = TestProxy::start(config).await;
    let result = async {
        let c = connect(&proxy.conn_str(USER, PASSWORD, DB)).await?;
        let row = c
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        Ok(row.get::<_, bool>(0))
    }
    .await;
    proxy.shutdown().await;
    result
}

/// The message of a login error, which must carry SQLSTATE 08006 (connection failure).
fn connection_failure(err: tokio_postgres::Error) -> String {
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("expected an error from the proxy, got {err}"));
    assert_eq!(db.code().code(), "08006", "{}", db.message());
    db.message().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_modes_against_a_tls_server() {
    let certs = test_certs(&["localhost", "127.0.0.1"]);
    let pg = tls_cluster(&certs).await;

    let cases = [
        (ServerTlsMode::Disable, false),
        (ServerTlsMode::Prefer, true),
        (ServerTlsMode::Require, true),
        (ServerTlsMode::VerifyCa, true),
        (ServerTlsMode::VerifyFull, true),
    ];
    for (mode, encrypted) in cases {
        let config = server_tls(&pg, mode, Some(&certs));
        let ssl = upstream_ssl(config)
            .await
            .unwrap_or_else(|e| panic!("server_tls {mode:?}: {e}"));
        assert_eq!(ssl, encrypted, "server_tls {mode:?}");
    }

    // A CA that did not sign the server's certificate fails both verifying modes.
    let other_ca = test_certs(&["localhost", "127.0.0.1"]);
    for mode in [ServerTlsMode::VerifyCa, ServerTlsMode::VerifyFull] {
        let err = upstream_ssl(server_tls(&pg, mode, Some(&other_ca)))
            .await
            .expect_err("an untrusted certificate must be refused");
        let message = connection_failure(err);
        assert!(message.contains("TLS"), "{mode:?}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_certificate_for_another_name() {
    // Signed by the CA we trust, but issued to a name that is not 127.0.0.1.
    let certs = test_certs(&["db.example.invalid"]);
    let pg = tls_cluster(&certs).await;

    let err = upstream_ssl(server_tls(&pg, ServerTlsMode::VerifyFull, Some(&certs)))
        .await
        .expect_err("verify-full must check the name");
    let message = connection_failure(err);
    assert!(
        message.contains("TLS") && message.to_lowercase().contains("not valid for name"),
        "the error should say the certificate does not match: {message}"
    );
    // verify-ca checks the chain only, as libpq does.
    let ssl = upstream_ssl(server_tls(&pg, ServerTlsMode::VerifyCa, Some(&certs)))
        .await
        .unwrap();
    assert!(ssl);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_require_fails_against_a_server_without_tls() {
    let pg = cluster_with_db(DB).await;

    let err = upstream_ssl(server_tls(&pg, ServerTlsMode::Require, None))
        .await
        .expect_err("require must not fall back to plaintext");
    let message = connection_failure(err);
    assert!(
        message.contains("does not support TLS") && message.contains("require"),
        "{message}"
    );
    // prefer falls back to plaintext.
    let ssl = upstream_ssl(server_tls(&pg, ServerTlsMode::Prefer, None))
        .await
        .unwrap();
    assert!(!ssl);
}
