use super::*;

#[test]
fn postgres_url_with_params() {
    let t = Target::parse_url(
        "postgresql://app:s%40cret@db.example.com:6432/shop?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=3&application_name=x",
    )
    .unwrap();
    assert_eq!(t.engine, Engine::Postgres);
    assert_eq!(t.host, "db.example.com");
    assert_eq!(t.port, 6432);
    assert_eq!(t.user.as_deref(), Some("app"));
    assert_eq!(t.password.as_ref().map(|p| p.expose()), Some("s@cret"));
    assert_eq!(t.database.as_deref(), Some("shop"));
    assert_eq!(t.tls, TlsMode::VerifyFull);
    assert_eq!(t.root_cert, Some(PathBuf::from("/ca.pem")));
    assert_eq!(t.connect_timeout, Some(Duration::from_secs(3)));
    assert_eq!(
        t.params.get("application_name").map(String::as_str),
        Some("x")
    );
    let shown = t.redacted_url();
    assert!(
        !shown.contains("s@cret") && !shown.contains("cret"),
        "{shown}"
    );
    assert!(shown.contains(":***@"), "{shown}");
    assert!(!format!("{t:?}").contains("s@cret"));
}

#[test]
fn defaults_per_engine() {
    let t = Target::parse_url("postgres://u@h").unwrap();
    assert_eq!(
        (t.port, t.tls, t.database.as_deref()),
        (5432, TlsMode::Prefer, Some("u"))
    );
    let t = Target::parse_url("mysql://root@127.0.0.1?ssl-mode=REQUIRED").unwrap();
    assert_eq!(
        (t.engine, t.port, t.tls),
        (Engine::Mysql, 3306, TlsMode::Require)
    );
    let t = Target::parse_url("redis://:pw@[::1]/2").unwrap();
    assert_eq!(
        (t.engine, t.host.as_str(), t.tls),
        (Engine::Redis, "::1", TlsMode::Disable)
    );
    assert_eq!(t.database.as_deref(), Some("2"));
    assert!(t.redacted_url().starts_with("redis://:***@[::1]:6379/2"));
    let t = Target::parse_url("rediss://h:6380").unwrap();
    assert_eq!(t.tls, TlsMode::VerifyFull);
    let t = Target::parse_url("rediss://h?insecure").unwrap();
    assert_eq!(t.tls, TlsMode::Require);
    let t = Target::parse_url("redis://h?insecure").unwrap();
    assert_eq!(t.tls, TlsMode::Disable);
}

#[test]
fn rejects_bad_input() {
    assert!(matches!(
        Target::parse_url("http://h"),
        Err(DoctorError::Scheme(_))
    ));
    assert!(matches!(
        Target::parse_url("postgres://h?sslmode=sometimes"),
        Err(DoctorError::Param { .. })
    ));
    assert!(matches!(
        Target::parse_url("redis://h/notanumber"),
        Err(DoctorError::Param { .. })
    ));
    assert!(Target::parse_url("not a url").is_err());
}
