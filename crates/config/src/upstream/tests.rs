//! Zero-config from a `postgres://` URL.

use std::path::PathBuf;

use crate::*;

fn url_error(url: &str) -> String {
    match Config::from_upstream_url(url) {
        Err(ConfigError::Url(why)) => why,
        other => panic!("expected a URL error for {url}, got {other:?}"),
    }
}

#[test]
fn a_url_gives_one_user_one_wildcard_database_and_scram() {
    let config = Config::from_upstream_url("postgres://app:secret@db.internal:5433").expect("ok");
    assert_eq!(config.users, vec![UserConfig::new("app", "secret")]);
    assert_eq!(config.auth.method, AuthMethod::ScramSha256);
    assert_eq!(config.auth.admin_users, vec!["app".to_owned()]);
    assert_eq!(config.databases.len(), 1);
    let db = &config.databases[WILDCARD];
    assert_eq!((db.host.as_str(), db.port), ("db.internal", 5433));
    assert_eq!(
        config.database("orders").expect("wildcard").dbname,
        "orders"
    );
    // Everything else keeps its default.
    assert_eq!(config.proxy, ProxyConfig::default());
    assert_eq!(config.pool, PoolConfig::default());
    assert_eq!(config.server_tls, ServerTlsConfig::default());
}

#[test]
fn user_and_password_are_percent_decoded() {
    let config =
        Config::from_upstream_url("postgresql://me%40corp:p%40ss%3Aw%2Frd%25%20x@127.0.0.1/")
            .expect("ok");
    assert_eq!(config.users[0].name, "me@corp");
    assert_eq!(config.users[0].password.as_deref(), Some("p@ss:w/rd% x"));
    assert_eq!(config.auth.admin_users, vec!["me@corp".to_owned()]);
}

#[test]
fn the_port_defaults_to_5432_and_ipv6_hosts_lose_their_brackets() {
    let config = Config::from_upstream_url("postgres://a:b@[::1]").expect("ok");
    let db = &config.databases[WILDCARD];
    assert_eq!((db.host.as_str(), db.port), ("::1", 5432));
}

#[test]
fn sslmode_and_sslrootcert_set_server_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "fixture").expect("write");
    let url = format!(
        "postgres://a:b@h?sslmode=verify-full&sslrootcert={}",
        ca.display()
    );
    let config = Config::from_upstream_url(&url).expect("ok");
    assert_eq!(config.server_tls.mode, ServerTlsMode::VerifyFull);
    assert_eq!(config.server_tls.ca_file, Some(ca));

    let config = Config::from_upstream_url("postgres://a:b@h?sslmode=disable").expect("ok");
    assert_eq!(config.server_tls.mode, ServerTlsMode::Disable);
    assert_eq!(config.server_tls.ca_file, None::<PathBuf>);
}

#[test]
fn the_resulting_config_is_validated() {
    match Config::from_upstream_url("postgres://a:b@h?sslmode=verify-ca") {
        Err(ConfigError::Invalid(problems)) => {
            assert!(problems[0].contains("server_tls.ca_file"), "{problems:?}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn unusable_urls_are_errors_that_do_not_show_the_password() {
    for (url, reason) in [
        ("not a url", "not a URL"),
        ("mysql://a:hunter2@h", "scheme `mysql`"),
        ("postgres://h:5432", "needs a user name"),
        ("postgres://a@h", "needs a password"),
        ("postgres://a:@h", "needs a password"),
        ("postgres://a:hunter2@h/app", "must not name a database"),
        (
            "postgres://a:hunter2@h?application_name=x",
            "`application_name` is not supported",
        ),
        ("postgres://a:hunter2@h?sslmode=allow", "sslmode `allow`"),
        ("postgres://a:hunter2@h1,h2", "one host"),
        ("postgres://a:hunter2@h#x", "fragment"),
        ("postgres://a:hunter2%FF@h", "password is not UTF-8"),
    ] {
        let why = url_error(url);
        assert!(why.contains(reason), "{url}: {why}");
        assert!(
            !why.contains("hunter2"),
            "{url}: the error shows the password: {why}"
        );
    }
}
