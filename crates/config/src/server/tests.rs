use std::time::Duration;

use crate::tests::{assert_problem, minimal, problems};
use crate::Config;

#[test]
fn defaults_are_valid_and_parse_from_toml() {
    assert!(problems(&minimal()).is_empty());
    let text = r#"
        [server]
        server_dns_timeout = "250ms"
        server_login_timeout = "0s"
        dns_max_ttl = "1m"
        dns_servers = ["10.0.0.53", "127.0.0.1:5353"]
        tcp_keepalive_idle = "30s"
        tcp_user_timeout = "20s"
    "#;
    let config: Config = toml::from_str(text).unwrap();
    assert_eq!(config.server.server_dns_timeout, Duration::from_millis(250));
    assert_eq!(config.server.server_login_timeout, Duration::ZERO);
    assert_eq!(config.server.dns_max_ttl, Duration::from_secs(60));
    assert_eq!(config.server.dns_servers.len(), 2);
    assert_eq!(config.server.tcp_keepalive_idle, Duration::from_secs(30));
    assert_eq!(config.server.tcp_keepalive_count, 6);
    let ours: Vec<_> = problems(&config)
        .into_iter()
        .filter(|p| p.starts_with("server."))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
}

#[test]
fn bad_keepalive_and_dns_servers_are_reported() {
    let mut config = minimal();
    config.server.tcp_keepalive_interval = Duration::ZERO;
    config.server.tcp_keepalive_count = 0;
    config.server.dns_servers = vec!["dns.example".into()];
    assert_problem(
        &config,
        &["server.tcp_keepalive_interval", "greater than 0"],
    );
    assert_problem(&config, &["server.tcp_keepalive_count", "at least 1"]);
    assert_problem(&config, &["server.dns_servers", "dns.example"]);
}
