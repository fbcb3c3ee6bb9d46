//! One test per validation rule, plus "all problems at once" and the warnings.

use std::path::PathBuf;
use std::time::Duration;

use crate::tests::{
    assert_problem, full, minimal, problems, MD5_OF_OPS_SECRET, SCRAM_OF_APP_SECRET,
};
use crate::*;

#[test]
fn the_fixtures_are_valid() {
    assert_eq!(problems(&minimal()), Vec::<String>::new());
    let (_dir, config) = full();
    assert_eq!(problems(&config), Vec::<String>::new());
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut config = minimal();
    config.proxy.listen = "nowhere".to_owned();
    config.pool.size = 0;
    config.databases.clear();
    let problems = problems(&config);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let err = config.validate().expect_err("invalid").to_string();
    assert!(err.starts_with("invalid configuration:\n  - "), "{err}");
}

#[test]
fn listen_addresses_must_be_ip_and_port() {
    for bad in ["localhost:6432", "127.0.0.1", ":6432", ""] {
        let mut config = minimal();
        config.proxy.listen = bad.to_owned();
        assert_problem(&config, &["proxy.listen", "not an IP address and port"]);
    }
    let mut config = minimal();
    config.proxy.listen = "[::]:6432".to_owned();
    config.proxy.admin_listen = Some("0.0.0.0:9930".to_owned());
    assert_eq!(problems(&config), Vec::<String>::new());
    config.proxy.admin_listen = Some("127.0.0.1".to_owned());
    assert_problem(
        &config,
        &["proxy.admin_listen", "not an IP address and port"],
    );
}

#[test]
fn admin_listen_must_differ_from_listen() {
    let mut config = minimal();
    config.proxy.admin_listen = Some(config.proxy.listen.clone());
    assert_problem(
        &config,
        &["proxy.admin_listen", "same address as proxy.listen"],
    );
    // Port 0 is any free port, for each listener its own.
    config.proxy.listen = "127.0.0.1:0".to_owned();
    config.proxy.admin_listen = Some("127.0.0.1:0".to_owned());
    assert_eq!(problems(&config), Vec::<String>::new());
}

#[test]
fn limits_have_minimums() {
    let mut config = minimal();
    config.proxy.max_client_conn = 0;
    config.proxy.max_message_size = 1023;
    assert_problem(&config, &["proxy.max_client_conn", "at least 1"]);
    assert_problem(
        &config,
        &["proxy.max_message_size", "1023", "minimum is 1024"],
    );
    config.proxy.max_message_size = 1024;
    assert_eq!(problems(&config).len(), 1);
}

#[test]
fn waits_must_be_bounded_and_nonzero() {
    let mut config = minimal();
    config.proxy.client_login_timeout = Duration::ZERO;
    config.pool.query_wait_timeout = Duration::ZERO;
    config.pool.server_connect_timeout = Duration::ZERO;
    config.pool.server_check_timeout = Duration::ZERO;
    // Zero means "never" (or "always", for the check delay) for these, so it is allowed.
    config.pool.server_idle_timeout = Duration::ZERO;
    config.pool.server_lifetime = Duration::ZERO;
    config.pool.server_check_delay = Duration::ZERO;
    config.proxy.shutdown_timeout = Duration::ZERO;
    for field in [
        "proxy.client_login_timeout",
        "pool.query_wait_timeout",
        "pool.server_connect_timeout",
        "pool.server_check_timeout",
    ] {
        assert_problem(&config, &[field, "greater than 0"]);
    }
    assert_eq!(problems(&config).len(), 4);
}

#[test]
fn pool_size_is_at_least_one_and_min_idle_at_most_size() {
    let mut config = minimal();
    config.pool.size = 0;
    assert_problem(&config, &["pool.size", "at least 1"]);
    config.pool.size = 4;
    config.pool.min_idle = 5;
    assert_problem(&config, &["pool.min_idle", "5 is more than pool.size (4)"]);
}

#[test]
fn client_tls_allow_and_require_need_existing_cert_and_key() {
    for mode in [ClientTlsMode::Allow, ClientTlsMode::Require] {
        let mut config = minimal();
        config.client_tls.mode = mode;
        let needed = format!("required by mode \"{}\"", mode.as_str());
        assert_problem(&config, &["client_tls.cert_file", &needed]);
        assert_problem(&config, &["client_tls.key_file", &needed]);

        config.client_tls.cert_file = Some(PathBuf::from("/nonexistent/server.crt"));
        config.client_tls.key_file = Some(PathBuf::from("/nonexistent/server.key"));
        assert_problem(
            &config,
            &[
                "client_tls.cert_file",
                "/nonexistent/server.crt",
                "does not exist",
            ],
        );
        assert_problem(
            &config,
            &[
                "client_tls.key_file",
                "/nonexistent/server.key",
                "does not exist",
            ],
        );
    }
    // Files are not needed, and not checked, while TLS is disabled.
    let mut config = minimal();
    config.client_tls.cert_file = Some(PathBuf::from("/nonexistent/server.crt"));
    assert_eq!(problems(&config), Vec::<String>::new());
}

#[test]
fn server_tls_verification_needs_an_existing_ca_file() {
    for mode in [ServerTlsMode::VerifyCa, ServerTlsMode::VerifyFull] {
        let mut config = minimal();
        config.server_tls.mode = mode;
        assert_problem(
            &config,
            &["server_tls.ca_file", &format!("mode \"{}\"", mode.as_str())],
        );
        config.server_tls.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        assert_problem(&config, &["server_tls.ca_file", "does not exist"]);
    }
    let mut config = minimal();
    config.server_tls.mode = ServerTlsMode::Require;
    assert_eq!(problems(&config), Vec::<String>::new());
}

#[test]
fn md5_takes_a_scram_verifier_but_scram_cannot_check_an_md5_hash() {
    let mut config = minimal();
    config.auth.method = AuthMethod::Md5;
    config
        .users
        .push(UserConfig::new("app", SCRAM_OF_APP_SECRET));
    config.users.push(UserConfig::new("ops", MD5_OF_OPS_SECRET));
    // The proxy asks a verifier user for SCRAM under md5, as PostgreSQL does.
    assert_eq!(problems(&config), Vec::<String>::new());

    config.auth.method = AuthMethod::ScramSha256;
    assert_problem(
        &config,
        &[
            "users[2] `ops`",
            "md5 hash",
            "cannot check a SCRAM-SHA-256 login",
        ],
    );
    assert_eq!(problems(&config).len(), 1, "a verifier is fine with SCRAM");

    config.auth.method = AuthMethod::Trust;
    assert_eq!(
        problems(&config),
        Vec::<String>::new(),
        "trust checks no password"
    );
}

#[test]
fn a_malformed_scram_verifier_is_rejected_with_the_reason() {
    for (verifier, reason) in [
        ("SCRAM-SHA-256$4096:c2FsdA==", "expected"),
        ("SCRAM-SHA-256$many:c2FsdA==$a:b", "iteration count `many`"),
        ("SCRAM-SHA-256$4096:***$a:b", "salt is not base64"),
        (
            "SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:c2FsdA==",
            "StoredKey is not 32 bytes",
        ),
    ] {
        let mut config = minimal();
        config.users.push(UserConfig::new("app", verifier));
        assert_problem(
            &config,
            &["users[1] `app`", "malformed SCRAM verifier", reason],
        );
    }
}

#[test]
fn users_need_a_password_unless_trust() {
    let mut config = minimal();
    config.users[0].password = None;
    assert_problem(
        &config,
        &["users[0] `alice`", "no password", "scram-sha-256"],
    );
    config.auth.method = AuthMethod::Trust;
    assert_eq!(problems(&config), Vec::<String>::new());
}

#[test]
fn user_names_are_unique_and_not_empty() {
    let mut config = minimal();
    config.users.push(UserConfig::new("alice", "other"));
    config.users.push(UserConfig::new("", "x"));
    assert_problem(&config, &["users[1] `alice`", "duplicate user name"]);
    assert_problem(&config, &["users[2]", "name is empty"]);
}

#[test]
fn user_pool_size_is_at_least_one() {
    let mut config = minimal();
    config.users[0].pool_size = Some(0);
    assert_problem(
        &config,
        &["users[0] `alice`", "pool_size must be at least 1"],
    );
}

#[test]
fn upstream_passwords_must_be_plaintext() {
    let mut config = minimal();
    config.users[0].server_password = Some(MD5_OF_OPS_SECRET.to_owned());
    let db = config.databases.get_mut(WILDCARD).expect("wildcard");
    db.user = Some("reporter".to_owned());
    db.password = Some(SCRAM_OF_APP_SECRET.to_owned());
    assert_problem(&config, &["users[0] `alice`: server_password", "plaintext"]);
    assert_problem(&config, &["databases.\"*\".password", "plaintext"]);
}

#[test]
fn admin_users_must_exist_unless_trust() {
    let mut config = minimal();
    config.auth.admin_users = vec!["alice".to_owned(), "root".to_owned()];
    assert_problem(&config, &["auth.admin_users", "`root` is not in [[users]]"]);
    assert_eq!(problems(&config).len(), 1);
    config.auth.method = AuthMethod::Trust;
    assert_eq!(problems(&config), Vec::<String>::new());
}

#[test]
fn stats_users_must_exist_unless_trust() {
    let mut config = minimal();
    config.auth.stats_users = vec!["watcher".to_owned()];
    assert_problem(
        &config,
        &["auth.stats_users", "`watcher` is not in [[users]]"],
    );
    config.auth.method = AuthMethod::Trust;
    assert_eq!(problems(&config), Vec::<String>::new());
}

#[test]
fn console_database_names_are_reserved() {
    let mut config = minimal();
    let db = config.databases[WILDCARD].clone();
    config.databases.insert("pgbouncer".to_owned(), db);
    assert_problem(
        &config,
        &["databases.\"pgbouncer\"", "reserved for the admin console"],
    );
}

#[test]
fn stats_period_is_at_least_a_second() {
    let mut config = minimal();
    config.proxy.stats_period = std::time::Duration::from_millis(500);
    assert_problem(&config, &["proxy.stats_period", "at least 1s"]);
}

#[test]
fn at_least_one_database_is_required() {
    let mut config = minimal();
    config.databases.clear();
    assert_problem(&config, &["databases: none configured"]);
}

#[test]
fn database_entries_are_checked() {
    let mut config = minimal();
    config.pool.size = 5;
    config.databases.insert(
        String::new(),
        DatabaseConfig {
            host: String::new(),
            port: 0,
            dbname: Some(String::new()),
            user: Some(String::new()),
            ..DatabaseConfig::default()
        },
    );
    config.databases.insert(
        "app".to_owned(),
        DatabaseConfig {
            password: Some("secret".to_owned()),
            pool_size: Some(0),
            ..DatabaseConfig::default()
        },
    );
    config.databases.insert(
        "big".to_owned(),
        DatabaseConfig {
            min_idle: Some(6),
            ..DatabaseConfig::default()
        },
    );
    assert_problem(&config, &["a database name is empty"]);
    assert_problem(&config, &["databases.\"\".host", "empty"]);
    assert_problem(&config, &["databases.\"\".port", "must not be 0"]);
    assert_problem(&config, &["databases.\"\".dbname", "empty"]);
    assert_problem(&config, &["databases.\"\".user", "empty"]);
    assert_problem(
        &config,
        &["databases.\"app\".password", "no effect without"],
    );
    assert_problem(&config, &["databases.\"app\".pool_size", "at least 1"]);
    assert_problem(
        &config,
        &[
            "databases.\"big\".min_idle",
            "6 is more than the pool size (5)",
        ],
    );
}

#[test]
fn a_hashed_password_without_server_password_is_a_warning_not_an_error() {
    let mut config = minimal();
    config
        .users
        .push(UserConfig::new("app", SCRAM_OF_APP_SECRET));
    assert_eq!(problems(&config), Vec::<String>::new());
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("users `app`") && warnings[0].contains("server_password"));

    // Every database logs in as its own user: the hash is never needed upstream.
    config.databases.get_mut(WILDCARD).expect("wildcard").user = Some("svc".to_owned());
    assert_eq!(config.warnings(), Vec::<String>::new());

    config.databases.get_mut(WILDCARD).expect("wildcard").user = None;
    config.users[1].server_password = Some("app-secret".to_owned());
    assert_eq!(config.warnings(), Vec::<String>::new());
}

#[test]
fn trust_on_a_public_listener_is_a_warning() {
    let mut config = minimal();
    config.auth.method = AuthMethod::Trust;
    assert_eq!(config.warnings(), Vec::<String>::new(), "loopback is fine");
    config.proxy.listen = "0.0.0.0:6432".to_owned();
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("trust"), "{warnings:?}");
}
