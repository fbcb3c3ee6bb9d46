//! Database resolution (exact entry, wildcard, pool overrides) and user lookup.

use super::{full, minimal};
use crate::*;

#[test]
fn an_exact_entry_wins_over_the_wildcard() {
    let (_dir, config) = full();
    let db = config.database("app").expect("configured");
    assert_eq!(
        db,
        ResolvedDatabase {
            name: "app".to_owned(),
            host: "db1.internal".to_owned(),
            port: 5433,
            dbname: "app_production".to_owned(),
            user: Some("reporter".to_owned()),
            password: Some("reporter-secret".to_owned()),
            pool_size: 30,
            min_idle: 3,
            mode: PoolMode::Transaction,
        }
    );
}

#[test]
fn the_wildcard_proxies_any_name_to_the_same_name_with_pool_defaults() {
    let mut config = minimal();
    config.pool.size = 9;
    config.pool.min_idle = 1;
    config.pool.mode = PoolMode::Transaction;
    let db = config.database("orders").expect("wildcard");
    assert_eq!(db.name, "orders");
    assert_eq!(db.dbname, "orders");
    assert_eq!((db.host.as_str(), db.port), ("127.0.0.1", 5432));
    assert_eq!((db.user, db.password), (None, None));
    assert_eq!((db.pool_size, db.min_idle), (9, 1));
    assert_eq!(db.mode, PoolMode::Transaction);
}

#[test]
fn an_exact_entry_without_dbname_uses_its_key() {
    let mut config = minimal();
    config.databases.remove(WILDCARD);
    config
        .databases
        .insert("app".to_owned(), DatabaseConfig::default());
    assert_eq!(config.database("app").expect("configured").dbname, "app");
    assert_eq!(config.database("other"), None, "no wildcard, no match");
}

#[test]
fn a_wildcard_dbname_sends_every_name_to_one_database() {
    let mut config = minimal();
    config.databases.get_mut(WILDCARD).expect("wildcard").dbname = Some("shared".to_owned());
    assert_eq!(config.database("x").expect("wildcard").dbname, "shared");
    assert_eq!(config.database("x").expect("wildcard").name, "x");
}

#[test]
fn user_pool_size_beats_database_beats_pool_default() {
    let (_dir, mut config) = full();
    config
        .databases
        .get_mut(WILDCARD)
        .expect("wildcard")
        .pool_size = Some(11);
    let wildcard = config.database("orders").expect("wildcard");
    assert_eq!(config.pool_size_for(&wildcard, "bob"), 7, "user override");
    assert_eq!(config.pool_size_for(&wildcard, "alice"), 11, "database");
    assert_eq!(
        config.pool_size_for(&wildcard, "nobody"),
        11,
        "unknown user"
    );
    // "app" forces an upstream user: one shared pool, so the user override does not apply.
    let app = config.database("app").expect("configured");
    assert_eq!(config.pool_size_for(&app, "bob"), 30);
    config.databases.remove(WILDCARD);
    config
        .databases
        .insert("plain".to_owned(), DatabaseConfig::default());
    let plain = config.database("plain").expect("configured");
    assert_eq!(config.pool_size_for(&plain, "alice"), 20, "pool.size");
}

#[test]
fn users_are_found_by_exact_name() {
    let (_dir, config) = full();
    assert_eq!(config.user("bob").expect("bob").pool_size, Some(7));
    assert!(config.user("Bob").is_none());
    assert!(config.user("").is_none());
}

#[test]
fn upstream_password_prefers_server_password_and_never_returns_a_hash() {
    let (_dir, config) = full();
    assert_eq!(
        config.user("alice").expect("alice").upstream_password(),
        Some("alice-secret")
    );
    assert_eq!(
        config.user("bob").expect("bob").upstream_password(),
        Some("app-secret")
    );
    let hashed = UserConfig::new("ops", super::MD5_OF_OPS_SECRET);
    assert_eq!(hashed.upstream_password(), None);
    assert_eq!(hashed.password_kind(), Some(PasswordKind::Md5Hash));
}
