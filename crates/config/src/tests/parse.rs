//! Parsing: defaults, durations, enum names, unknown fields, file errors.

use std::time::Duration;

use crate::*;

const WILDCARD_ONLY: &str = "[databases.\"*\"]\n";

fn parse_error(text: &str) -> (usize, usize, String) {
    match Config::from_toml_str(text) {
        Err(ConfigError::Parse {
            path: None,
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn missing_fields_take_the_documented_defaults() {
    let config = Config::from_toml_str(WILDCARD_ONLY).expect("valid");
    assert_eq!(config.proxy.listen, "127.0.0.1:6432");
    assert_eq!(config.proxy.admin_listen, None);
    assert_eq!(config.proxy.max_client_conn, 1000);
    assert_eq!(config.proxy.max_message_size, 268_435_456);
    assert_eq!(config.proxy.client_login_timeout, Duration::from_secs(60));
    assert_eq!(config.proxy.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(config.log.format, LogFormat::Human);
    assert_eq!(config.log.level, "info");
    assert_eq!(config.log.slow_query_threshold, Duration::ZERO);
    assert!(!config.log.log_query_text);
    assert_eq!(config.tracing.otlp_endpoint, None);
    assert_eq!(config.tracing.service_name, "dbwarden");
    assert_eq!(config.tracing.sampling_ratio, 0.0);
    assert_eq!(config.proxy.workers, 1);
    assert_eq!(config.pool.mode, PoolMode::Transaction);
    assert_eq!(config.pool.size, 20);
    assert_eq!(config.pool.min_idle, 0);
    assert_eq!(config.pool.reset_query, "DISCARD ALL");
    assert_eq!(config.pool.query_wait_timeout, Duration::from_secs(120));
    assert_eq!(config.pool.server_connect_timeout, Duration::from_secs(15));
    assert_eq!(config.pool.server_idle_timeout, Duration::from_secs(600));
    assert_eq!(config.pool.server_lifetime, Duration::from_secs(3600));
    assert_eq!(config.client_tls.mode, ClientTlsMode::Disable);
    assert_eq!(config.server_tls.mode, ServerTlsMode::Prefer);
    assert_eq!(config.auth.method, AuthMethod::ScramSha256);
    assert!(config.users.is_empty());
    assert_eq!(config.databases[WILDCARD], DatabaseConfig::default());
    assert_eq!(config.databases[WILDCARD].host, "127.0.0.1");
    assert_eq!(config.databases[WILDCARD].port, 5432);
}

#[test]
fn durations_take_units() {
    let text = format!(
        "[pool]\nquery_wait_timeout = \"250ms\"\nserver_lifetime = \"1h\"\n\
         server_idle_timeout = \"1h 30m\"\nserver_connect_timeout = \"2s\"\n{WILDCARD_ONLY}"
    );
    let pool = Config::from_toml_str(&text).expect("valid").pool;
    assert_eq!(pool.query_wait_timeout, Duration::from_millis(250));
    assert_eq!(pool.server_lifetime, Duration::from_secs(3600));
    assert_eq!(pool.server_idle_timeout, Duration::from_secs(5400));
    assert_eq!(pool.server_connect_timeout, Duration::from_secs(2));
}

#[test]
fn a_duration_without_unit_is_a_parse_error_at_its_line() {
    let (line, _, message) = parse_error("[pool]\n\nquery_wait_timeout = \"30\"\n");
    assert_eq!(line, 3);
    assert!(message.contains("expected a duration"), "{message}");
    let (line, _, message) = parse_error("[pool]\nserver_lifetime = 30\n");
    assert_eq!(line, 2);
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn enums_use_kebab_case_names() {
    let text = format!(
        "[auth]\nmethod = \"md5\"\n[server_tls]\nmode = \"require\"\n\
         [log]\nformat = \"json\"\n[pool]\nmode = \"transaction\"\n{WILDCARD_ONLY}"
    );
    let config = Config::from_toml_str(&text).expect("valid");
    assert_eq!(config.auth.method, AuthMethod::Md5);
    assert_eq!(config.server_tls.mode, ServerTlsMode::Require);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.pool.mode, PoolMode::Transaction);

    let config: Config =
        toml::from_str("[auth]\nmethod = \"scram-sha-256\"\n[server_tls]\nmode = \"verify-full\"")
            .expect("parses");
    assert_eq!(config.auth.method, AuthMethod::ScramSha256);
    assert_eq!(config.server_tls.mode, ServerTlsMode::VerifyFull);
    let config: Config = toml::from_str("[server_tls]\nmode = \"verify-ca\"").expect("parses");
    assert_eq!(config.server_tls.mode, ServerTlsMode::VerifyCa);
}

#[test]
fn an_unknown_variant_names_the_choices() {
    let (line, column, message) = parse_error("[auth]\nmethod = \"scram\"\n");
    assert_eq!((line, column), (2, 10));
    assert!(message.contains("unknown variant `scram`"), "{message}");
    assert!(message.contains("scram-sha-256"), "{message}");
}

#[test]
fn an_unknown_field_is_reported_with_its_name_line_and_column() {
    let text = "[proxy]\nlisten = \"127.0.0.1:6432\"\n  max_conn = 5\n";
    let (line, column, message) = parse_error(text);
    assert_eq!((line, column), (3, 3));
    assert!(message.starts_with("unknown field `max_conn`"), "{message}");
    assert!(message.contains("expected one of"), "{message}");
    assert!(message.contains("`max_client_conn`"), "{message}");

    let err = Config::from_toml_str(text).expect_err("unknown field");
    let shown = err.to_string();
    assert!(
        shown.starts_with("line 3, column 3: unknown field `max_conn`"),
        "{shown}"
    );
}

#[test]
fn unknown_fields_are_rejected_in_every_section() {
    for (text, field, line) in [
        ("[proxy]\nlistn = \"x\"\n", "listn", 2),
        ("[pool]\nsize = 1\npool_size = 3\n", "pool_size", 3),
        ("[client_tls]\ncert = \"a\"\n", "cert", 2),
        ("[server_tls]\nsslmode = \"require\"\n", "sslmode", 2),
        ("[auth]\nadmins = []\n", "admins", 2),
        ("[[users]]\nname = \"a\"\npasword = \"x\"\n", "pasword", 3),
        ("[databases.app]\nhostname = \"x\"\n", "hostname", 2),
        ("[proxyy]\n", "proxyy", 1),
    ] {
        let (got_line, _, message) = parse_error(text);
        assert!(
            message.contains(&format!("unknown field `{field}`")),
            "{text:?}: {message}"
        );
        assert_eq!(got_line, line, "{text:?}");
    }
}

#[test]
fn a_user_without_a_name_is_a_parse_error() {
    let (line, _, message) = parse_error("[[users]]\npassword = \"x\"\n");
    assert_eq!(line, 1);
    assert!(message.contains("missing field `name`"), "{message}");
}

#[test]
fn load_names_the_file_in_every_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.toml");
    let err = Config::load(&missing).expect_err("no file");
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err.to_string().contains("missing.toml"), "{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[proxy]\nnope = 1\n").expect("write");
    let err = Config::load(&bad).expect_err("unknown field");
    let shown = err.to_string();
    assert!(
        shown.contains("bad.toml: line 2, column 1: unknown field `nope`"),
        "{shown}"
    );

    let invalid = dir.path().join("invalid.toml");
    std::fs::write(&invalid, "[pool]\nsize = 0\n").expect("write");
    match Config::load(&invalid) {
        Err(ConfigError::Invalid(problems)) => {
            assert_eq!(problems.len(), 2, "{problems:?}");
            assert!(problems.iter().all(|p| p.contains("invalid.toml: ")));
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn load_reads_a_valid_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ok.toml");
    std::fs::write(
        &path,
        "[proxy]\nworkers = 2\n[databases.app]\nport = 5433\n",
    )
    .expect("write");
    let config = Config::load(&path).expect("valid");
    assert_eq!(config.proxy.workers, 2);
    assert_eq!(config.databases["app"].port, 5433);
}
