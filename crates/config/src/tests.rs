//! Crate-level tests and the fixtures shared by every module's tests.

mod docs;
mod parse;
mod resolve;

use std::path::PathBuf;

use tempfile::TempDir;

use crate::*;

/// The smallest valid config: one plaintext user and a wildcard database.
pub(crate) fn minimal() -> Config {
    let mut config = Config::default();
    config.users.push(UserConfig::new("alice", "alice-secret"));
    config
        .databases
        .insert(WILDCARD.to_owned(), DatabaseConfig::default());
    config
}

/// A valid config with every optional field set, so its TOML shows every field. The TLS
/// files live in the returned directory, which must outlive the config's use.
pub(crate) fn full() -> (TempDir, Config) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = |name: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, "not read by validation").expect("write fixture file");
        path
    };
    let mut config = minimal();
    config.proxy.admin_listen = Some("127.0.0.1:9930".to_owned());
    config.tracing.otlp_endpoint = Some("http://127.0.0.1:4318".to_owned());
    config.client_tls = ClientTlsConfig {
        mode: ClientTlsMode::Require,
        cert_file: Some(file("server.crt")),
        key_file: Some(file("server.key")),
    };
    config.server_tls = ServerTlsConfig {
        mode: ServerTlsMode::VerifyFull,
        ca_file: Some(file("ca.pem")),
    };
    config.auth.admin_users = vec!["alice".to_owned()];
    config.users.push(UserConfig {
        name: "bob".to_owned(),
        password: Some(SCRAM_OF_APP_SECRET.to_owned()),
        server_password: Some("app-secret".to_owned()),
        pool_size: Some(7),
    });
    config.databases.insert(
        "app".to_owned(),
        DatabaseConfig {
            host: "db1.internal".to_owned(),
            port: 5433,
            dbname: Some("app_production".to_owned()),
            user: Some("reporter".to_owned()),
            password: Some("reporter-secret".to_owned()),
            pool_size: Some(30),
            min_idle: Some(3),
            pool_mode: Some(PoolMode::Transaction),
        },
    );
    config.validate().expect("the full fixture is valid");
    (dir, config)
}

/// A well-formed SCRAM-SHA-256 verifier of the password "app-secret".
pub(crate) const SCRAM_OF_APP_SECRET: &str = "SCRAM-SHA-256$4096:ZGJ3YXJkZW4tZXhhbXBsZQ==$\
    VrAhn5C6ungHe2UJV7TEsPPrJS4lJa2duB9c8DtsxT8=:PlW2pVP4tDOHZ5faxJZcDp5qF03d1hHp/XE2zQSdwuI=";

/// md5 hash of password "ops-secret" for user "ops".
pub(crate) const MD5_OF_OPS_SECRET: &str = "md5ade4fad1abad3b42ab0886e7f230dd79";

/// Every problem `validate` reports, or an empty list.
pub(crate) fn problems(config: &Config) -> Vec<String> {
    match config.validate() {
        Ok(()) => Vec::new(),
        Err(ConfigError::Invalid(problems)) => problems,
        Err(other) => panic!("validate returned a non-validation error: {other}"),
    }
}

/// Assert that exactly one reported problem contains every fragment.
#[track_caller]
pub(crate) fn assert_problem(config: &Config, fragments: &[&str]) {
    let problems = problems(config);
    let matching = problems
        .iter()
        .filter(|p| fragments.iter().all(|f| p.contains(f)))
        .count();
    assert_eq!(
        matching, 1,
        "expected one problem containing {fragments:?}, got {problems:#?}"
    );
}
