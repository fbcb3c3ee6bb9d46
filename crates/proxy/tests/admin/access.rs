//! Who gets into the console and what each may do; the console survives bad input.

use super::console::{
    admin, code, console_as, show, STRANGER, STRANGER_PASSWORD, WATCHER, WATCHER_PASSWORD,
};
use super::{cluster_with_db, TestProxy, USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admin_and_stats_users_get_in() {
    let pg = cluster_with_db("acc").await;
    let proxy = TestProxy::start(super::console::console_config(&pg, 2)).await;

    // A valid login with no console rights: 28000, on either name of the console.
    for db in ["pgbouncer", "dbwarden"] {
        let err = console_as(&proxy, STRANGER, STRANGER_PASSWORD, db)
            .await
            .expect_err("not an admin");
        assert_eq!(code(&err), "28000", "{db}");
        let msg = err.as_db_error().unwrap().message().to_owned();
        assert!(
            msg.contains("not allowed to connect to the admin console"),
            "{msg}"
        );
    }
    // The admin's password is checked as for any database.
    let err = console_as(&proxy, USER, "wrong", "pgbouncer")
        .await
        .expect_err("bad password");
    assert_eq!(code(&err), "28P01");

    // The stats user reads but changes nothing.
    let watcher = console_as(&proxy, WATCHER, WATCHER_PASSWORD, "dbwarden")
        .await
        .unwrap();
    let clients = show(&watcher, "SHOW CLIENTS").await;
    assert!(
        clients
            .iter()
            .any(|c| c["user"].as_deref() == Some(WATCHER)),
        "{clients:?}"
    );
    assert_eq!(show(&watcher, "show version").await.len(), 1);
    for cmd in [
        "PAUSE",
        "RESUME",
        "RELOAD",
        "KILL acc",
        "KILL_CLIENT 1",
        "SHUTDOWN",
    ] {
        let err = watcher.simple_query(cmd).await.expect_err(cmd);
        assert_eq!(code(&err), "42501", "{cmd}");
    }
    assert!(!proxy.proxy.is_paused());
    assert!(!proxy.proxy.is_shutting_down());
    drop(watcher);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_an_error_and_the_session_goes_on() {
    let pg = cluster_with_db("bad").await;
    let proxy = TestProxy::start(super::console::console_config(&pg, 2)).await;
    let console = admin(&proxy).await;

    let err = console.simple_query("SHOW NOTHING").await.unwrap_err();
    assert_eq!(code(&err), "42601");
    assert!(
        err.as_db_error().unwrap().message().contains("|POOLS|"),
        "lists the commands"
    );
    let err = console.simple_query("DROP TABLE x").await.unwrap_err();
    assert_eq!(code(&err), "42601");
    // The extended protocol (tokio-postgres' `query` prepares first): 0A000, and the
    // session is still usable.
    let err = console.query("SHOW POOLS", &[]).await.unwrap_err();
    assert_eq!(code(&err), "0A000");
    assert_eq!(show(&console, "SHOW VERSION").await.len(), 1);
    // What drivers send on their own is answered harmlessly.
    for harmless in [
        "SET DateStyle = 'ISO'",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        ";",
        "show TimeZone",
    ] {
        console
            .simple_query(harmless)
            .await
            .unwrap_or_else(|e| panic!("{harmless}: {e:?}"));
    }
    let version = show(&console, "show version;").await;
    let v = version[0]["version"].clone().unwrap();
    assert!(v.starts_with("PgBouncer 1.25.0"), "{v}");
    assert!(v.contains("dbwarden"), "{v}");
    drop(console);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_talks_to_the_console() {
    let pg = cluster_with_db("ps1").await;
    let proxy = TestProxy::start(super::console::console_config(&pg, 2)).await;
    let conninfo = format!(
        "host={} port={} user={USER} dbname=pgbouncer sslmode=disable",
        proxy.addr.ip(),
        proxy.addr.port()
    );
    let out = tokio::process::Command::new("psql")
        .env("PGPASSWORD", super::PASSWORD)
        .env("PGCONNECT_TIMEOUT", "10")
        .args(["-X", "-A", "-v", "ON_ERROR_STOP=1", "-d", &conninfo])
        .args(["-c", "SHOW HELP", "-c", "SHOW LISTS", "-c", "show version;"])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run psql");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Console usage"),
        "SHOW HELP is a notice: {stderr}"
    );
    assert!(stdout.contains("list|items"), "{stdout}");
    assert!(stdout.contains("used_clients|1"), "{stdout}");
    assert!(stdout.contains("PgBouncer 1.25.0 (dbwarden"), "{stdout}");
    proxy.shutdown().await;
}
