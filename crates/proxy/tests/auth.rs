//! Authentication on both sides of the proxy, against real PostgreSQL clusters.
//!
//! Client side: the proxy checks trust, md5 and SCRAM-SHA-256 logins against plaintext,
//! md5-hash and SCRAM-verifier secrets. Server side: the proxy logs in to clusters whose
//! pg_hba.conf asks for trust, cleartext password, md5 and SCRAM.

mod common;

use common::*;
use dbwarden_config::{AuthMethod, Config, DatabaseConfig, UserConfig};
use dbwarden_testkit::{frame, HbaAuth, PgCluster, PgOptions, RawClient, RawMessage};

const DB: &str = "authdb";

/// A cluster with `auth` for TCP logins, the roles in `users` and the database `DB`.
async fn cluster(auth: HbaAuth, users: &[(&str, &str)]) -> PgCluster {
    let users: Vec<(String, String)> = users
        .iter()
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let pg = PgCluster::start_with(PgOptions {
            auth,
            users,
            ..PgOptions::default()
        })
        .expect("start PostgreSQL");
        pg.create_database(DB).expect("create database");
        pg
    })
    .await
    .unwrap()
}

/// The SQLSTATE of a failed login, or a panic naming what happened instead.
async fn login_error(conn_str: &str) -> String {
    match connect(conn_str).await {
        Ok(_) => panic!("login succeeded but should have failed: {conn_str}"),
        Err(e) => e
            .as_db_error()
            .map(|db| db.code().code().to_owned())
            .unwrap_or_else(|| panic!("login failed without a server error: {e}")),
    }
}

async fn current_user(proxy: &TestProxy, user: &str, password: &str, db: &str) -> String {
    let c = connect(&proxy.conn_str(user, password, db))
        .await
        .unwrap_or_else(|e| panic!("{user} should log in to {db}: {e}"));
    c.query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0)
}

/// A user whose stored secret is `secret`, logging in upstream with `plaintext`.
fn user_with_secret(name: &str, secret: String, plaintext: &str) -> UserConfig {
    UserConfig {
        server_password: Some(plaintext.to_owned()),
        ..UserConfig::new(name, secret)
    }
}

/// `password` as PostgreSQL stores it with SCRAM, read back from pg_authid.
fn scram_verifier_of(pg: &PgCluster, user: &str) -> String {
    let v = pg
        .psql(
            "postgres",
            &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{user}'"),
        )
        .unwrap();
    assert!(v.starts_with("SCRAM-SHA-256$"), "not a verifier: {v}");
    v
}

/// PostgreSQL's md5 secret: "md5" + md5(password || user), computed by the server itself.
fn md5_hash_of(pg: &PgCluster, user: &str, password: &str) -> String {
    pg.psql(
        "postgres",
        &format!("SELECT 'md5' || md5('{password}' || '{user}')"),
    )
    .unwrap()
}

/// The authentication request code of an 'R' message (0 ok, 5 md5, 10 SASL, 11 continue).
fn auth_code(m: &RawMessage) -> i32 {
    assert_eq!(m.tag, b'R', "expected an authentication request, got {m:?}");
    i32::from_be_bytes(m.body[..4].try_into().unwrap())
}

/// Reads the FATAL that ends a refused login and checks the proxy then hangs up.
async fn expect_refusal_and_close(raw: &mut RawClient, code: &str) {
    let m = raw
        .read_message()
        .await
        .unwrap()
        .expect("an error response");
    assert_eq!(m.tag, b'E', "expected ErrorResponse, got {m:?}");
    assert_eq!(m.error_code().as_deref(), Some(code), "{m:?}");
    assert!(raw.is_closed().await, "the proxy must close after {code}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_method_checks_plaintext_and_verifier_secrets() {
    let pg = cluster(
        HbaAuth::Scram,
        &[
            (USER, PASSWORD),
            ("plain_u", "plain-pw"),
            ("scram_u", "scram-pw"),
        ],
    )
    .await;
    let mut config = upstream_config(&pg, 2);
    config.auth.method = AuthMethod::ScramSha256;
    config.users.push(UserConfig::new("plain_u", "plain-pw"));
    config.users.push(user_with_secret(
        "scram_u",
        scram_verifier_of(&pg, "scram_u"),
        "scram-pw",
    ));
    config.validate().unwrap();
    let proxy = TestProxy::start(config).await;

    assert_eq!(
        current_user(&proxy, "plain_u", "plain-pw", DB).await,
        "plain_u"
    );
    assert_eq!(
        current_user(&proxy, "scram_u", "scram-pw", DB).await,
        "scram_u"
    );
    for (user, wrong) in [("plain_u", "nope"), ("scram_u", "plain-pw"), (USER, "x")] {
        let code = login_error(&proxy.conn_str(user, wrong, DB)).await;
        assert_eq!(code, "28P01", "{user} with a wrong password");
    }
    let code = login_error(&proxy.conn_str("nobody", "whatever", DB)).await;
    assert_eq!(code, "28P01", "an unknown user looks like a wrong password");

    // Failed logins left nothing behind: the right password still works.
    assert_eq!(current_user(&proxy, USER, PASSWORD, DB).await, USER);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_method_checks_plaintext_and_hash_secrets_and_falls_back_to_scram() {
    let pg = cluster(
        HbaAuth::Scram,
        &[
            (USER, PASSWORD),
            ("md5_u", "md5-pw"),
            ("scram_u", "scram-pw"),
        ],
    )
    .await;
    let mut config = upstream_config(&pg, 2);
    config.auth.method = AuthMethod::Md5;
    config.users.push(user_with_secret(
        "md5_u",
        md5_hash_of(&pg, "md5_u", "md5-pw"),
        "md5-pw",
    ));
    // Config validation refuses a SCRAM verifier under md5, but the proxy follows
    // PostgreSQL, which answers such a user with a SCRAM exchange; this pins that behaviour.
    config.users.push(user_with_secret(
        "scram_u",
        scram_verifier_of(&pg, "scram_u"),
        "scram-pw",
    ));
    let proxy = TestProxy::start(config).await;

    assert_eq!(current_user(&proxy, USER, PASSWORD, DB).await, USER);
    assert_eq!(current_user(&proxy, "md5_u", "md5-pw", DB).await, "md5_u");
    assert_eq!(
        current_user(&proxy, "scram_u", "scram-pw", DB).await,
        "scram_u"
    );

    // Which exchange each user gets: md5 for plaintext and md5 secrets, SCRAM for a verifier.
    for (user, expected) in [(USER, 5), ("md5_u", 5), ("scram_u", 10), ("nobody", 5)] {
        let mut raw = RawClient::connect(proxy.addr).await.unwrap();
        raw.startup(user, DB).await.unwrap();
        let m = raw.read_message().await.unwrap().expect("auth request");
        assert_eq!(auth_code(&m), expected, "authentication request for {user}");
    }

    for (user, wrong) in [(USER, "nope"), ("md5_u", "scram-pw"), ("scram_u", "md5-pw")] {
        let code = login_error(&proxy.conn_str(user, wrong, DB)).await;
        assert_eq!(code, "28P01", "{user} with a wrong password");
    }
    let code = login_error(&proxy.conn_str("nobody", "whatever", DB)).await;
    assert_eq!(code, "28P01", "an unknown user looks like a wrong password");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_md5_password_gets_28p01_and_the_connection_closes() {
    let pg = cluster_with_db(DB).await;
    let mut config = upstream_config(&pg, 2);
    config.auth.method = AuthMethod::Md5;
    let proxy = TestProxy::start(config).await;

    for user in [USER, "nobody"] {
        let mut raw = RawClient::connect(proxy.addr).await.unwrap();
        raw.startup(user, DB).await.unwrap();
        let m = raw.read_message().await.unwrap().expect("auth request");
        assert_eq!(auth_code(&m), 5);
        raw.send(&frame::password("md500000000000000000000000000000000"))
            .await
            .unwrap();
        expect_refusal_and_close(&mut raw, "28P01").await;
    }
    assert_eq!(current_user(&proxy, USER, PASSWORD, DB).await, USER);
    proxy.shutdown().await;
}

/// SASLInitialResponse for SCRAM-SHA-256 with a client-first-message.
fn sasl_initial(client_first: &str) -> Vec<u8> {
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend_from_slice(&(client_first.len() as i32).to_be_bytes());
    body.extend_from_slice(client_first.as_bytes());
    frame::tagged(b'p', &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_scram_proof_gets_28p01_and_the_connection_closes() {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(upstream_config(&pg, 2)).await;

    // A well-formed exchange whose proof is wrong, for a known and an unknown user: both
    // must run to the end and fail the same way.
    for user in [USER, "nobody"] {
        let mut raw = RawClient::connect(proxy.addr).await.unwrap();
        raw.startup(user, DB).await.unwrap();
        let m = raw.read_message().await.unwrap().expect("auth request");
        assert_eq!(auth_code(&m), 10, "SASL");
        raw.send(&sasl_initial("n,,n=,r=rOprNGfwEbeRWgbNEkqO"))
            .await
            .unwrap();
        let m = raw.read_message().await.unwrap().expect("SASLContinue");
        assert_eq!(auth_code(&m), 11, "SASLContinue");
        let server_first = std::str::from_utf8(&m.body[4..]).unwrap();
        let nonce = server_first
            .split(',')
            .find_map(|kv| kv.strip_prefix("r="))
            .expect("server nonce");
        assert!(nonce.starts_with("rOprNGfwEbeRWgbNEkqO") && nonce.len() > 20);
        let zero_proof = format!("{}=", "A".repeat(43)); // 32 zero bytes in base64
        let client_final = format!("c=biws,r={nonce},p={zero_proof}");
        raw.send(&frame::tagged(b'p', client_final.as_bytes()))
            .await
            .unwrap();
        expect_refusal_and_close(&mut raw, "28P01").await;
    }
    assert_eq!(current_user(&proxy, USER, PASSWORD, DB).await, USER);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_method_admits_configured_users_without_checking_the_password() {
    let pg = cluster(HbaAuth::Scram, &[(USER, PASSWORD)]).await;
    let mut config = upstream_config(&pg, 2);
    config.auth.method = AuthMethod::Trust;
    let proxy = TestProxy::start(config).await;

    // The client's password is never asked for; the proxy still logs in upstream with the
    // configured one.
    assert_eq!(
        current_user(&proxy, USER, "not-the-password", DB).await,
        USER
    );
    let mut raw = RawClient::connect(proxy.addr).await.unwrap();
    raw.startup(USER, DB).await.unwrap();
    let m = raw.read_message().await.unwrap().expect("AuthenticationOk");
    assert_eq!(auth_code(&m), 0, "trust answers AuthenticationOk at once");
    let rest = raw.read_until(b'Z').await.unwrap();
    assert!(rest.iter().any(|m| m.tag == b'K'), "BackendKeyData sent");
    drop(raw); // an open session would hold up shutdown for shutdown_timeout

    // A name that is not in [[users]] is not let in, even with trust.
    let mut raw = RawClient::connect(proxy.addr).await.unwrap();
    raw.startup("nobody", DB).await.unwrap();
    expect_refusal_and_close(&mut raw, "28000").await;
    proxy.shutdown().await;
}

/// Logs in through the proxy to a cluster that demands `auth`, as the client's own user
/// (zero-config wildcard) and as a database's forced user.
async fn proxy_logs_in_upstream_with(auth: HbaAuth) {
    let pg = cluster(auth.clone(), &[(USER, PASSWORD), ("svc", "svc-secret")]).await;
    let mut config: Config = upstream_config(&pg, 2);
    config.databases.insert(
        "forced".into(),
        DatabaseConfig {
            host: pg.host().into(),
            port: pg.port(),
            dbname: Some(DB.into()),
            user: Some("svc".into()),
            password: Some("svc-secret".into()),
            ..DatabaseConfig::default()
        },
    );
    if auth == HbaAuth::Trust {
        // A trusting server needs no password at all.
        config.databases.insert(
            "nopw".into(),
            DatabaseConfig {
                host: pg.host().into(),
                port: pg.port(),
                dbname: Some(DB.into()),
                user: Some("svc".into()),
                ..DatabaseConfig::default()
            },
        );
    }
    config.validate().unwrap();
    let proxy = TestProxy::start(config).await;

    assert_eq!(current_user(&proxy, USER, PASSWORD, DB).await, USER);
    assert_eq!(current_user(&proxy, USER, PASSWORD, "forced").await, "svc");
    if auth == HbaAuth::Trust {
        assert_eq!(current_user(&proxy, USER, PASSWORD, "nopw").await, "svc");
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_trust() {
    proxy_logs_in_upstream_with(HbaAuth::Trust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_cleartext_password() {
    proxy_logs_in_upstream_with(HbaAuth::Password).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_md5() {
    proxy_logs_in_upstream_with(HbaAuth::Md5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_scram() {
    proxy_logs_in_upstream_with(HbaAuth::Scram).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_upstream_password_reaches_the_client_and_other_pools_keep_serving() {
    let pg = cluster(HbaAuth::Scram, &[(USER, PASSWORD)]).await;
    let mut config = upstream_config(&pg, 2);
    config.databases.insert(
        "bad".into(),
        DatabaseConfig {
            host: pg.host().into(),
            port: pg.port(),
            dbname: Some(DB.into()),
            user: Some(USER.into()),
            password: Some("not-the-password".into()),
            ..DatabaseConfig::default()
        },
    );
    let proxy = TestProxy::start(config).await;

    let held = connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap();
    // Repeatedly: a failed server login must not leave the bad pool stuck or short of a slot.
    for _ in 0..3 {
        let Err(err) = connect(&proxy.conn_str(USER, PASSWORD, "bad")).await else {
            panic!("the server should refuse the proxy's login");
        };
        let db = err.as_db_error().expect("the server's error, relayed");
        assert_eq!(db.code().code(), "28P01");
        assert!(
            db.message().contains("password authentication failed"),
            "{}",
            db.message()
        );
    }
    // The session that was already open, and new ones, carry on.
    let n: i32 = held.query_one("SELECT 7", &[]).await.unwrap().get(0);
    assert_eq!(n, 7);
    assert_eq!(current_user(&proxy, USER, PASSWORD, DB).await, USER);
    drop(held);
    proxy.shutdown().await;
}
