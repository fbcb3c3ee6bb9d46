//! Shared set-up for the binary's tests.
#![allow(dead_code)] // each test binary uses a different subset

use dbwarden_testkit::{HbaAuth, PgCluster, PgOptions};

/// A PostgreSQL with SCRAM auth, `user` and a database `db` that `user` owns.
pub async fn scram_cluster(user: &str, password: &str, db: &str) -> PgCluster {
    let (user, password, db) = (user.to_owned(), password.to_owned(), db.to_owned());
    tokio::task::spawn_blocking(move || {
        let pg = PgCluster::start_with(PgOptions {
            auth: HbaAuth::Scram,
            users: vec![(user.clone(), password)],
            ..PgOptions::default()
        })
        .expect("start PostgreSQL");
        pg.psql("postgres", &format!("CREATE DATABASE {db} OWNER {user}"))
            .expect("create database");
        pg
    })
    .await
    .unwrap()
}
