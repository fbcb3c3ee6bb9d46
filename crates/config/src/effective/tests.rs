//! `effective_toml`: defaults shown, passwords hidden, output reads back.

use crate::tests::{full, minimal};
use crate::*;

#[test]
fn effective_toml_round_trips_except_passwords() {
    let (_dir, config) = full();
    let text = config.effective_toml();
    let back = Config::from_toml_str(&text).expect("effective TOML is a valid config");

    let mut expected = config.clone();
    for user in &mut expected.users {
        user.password = user.password.as_ref().map(|_| REDACTED.to_owned());
        user.server_password = user.server_password.as_ref().map(|_| REDACTED.to_owned());
    }
    for db in expected.databases.values_mut() {
        db.password = db.password.as_ref().map(|_| REDACTED.to_owned());
    }
    assert_eq!(back, expected);
}

#[test]
fn effective_toml_hides_every_password() {
    let (_dir, config) = full();
    let text = config.effective_toml();
    for secret in [
        "alice-secret",
        "app-secret",
        "reporter-secret",
        "SCRAM-SHA-256$",
    ] {
        assert!(!text.contains(secret), "{secret} shown in:\n{text}");
    }
    assert_eq!(text.matches(REDACTED).count(), 4, "{text}");
}

#[test]
fn effective_toml_fills_in_defaults_with_readable_durations() {
    let text = minimal().effective_toml();
    for line in [
        "listen = \"127.0.0.1:6432\"",
        "max_message_size = 268435456",
        "client_login_timeout = \"1m\"",
        "reset_query = \"DISCARD ALL\"",
        "query_wait_timeout = \"2m\"",
        "server_idle_timeout = \"10m\"",
        "server_lifetime = \"1h\"",
        "method = \"scram-sha-256\"",
        "mode = \"prefer\"",
        "[databases.\"*\"]",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
    let back = Config::from_toml_str(&text).expect("valid");
    assert_eq!(back.pool, PoolConfig::default());
    assert_eq!(back.proxy, ProxyConfig::default());
}
