//! The commands that change something: PAUSE, RESUME, RELOAD, KILL, KILL_CLIENT, SHUTDOWN.
//! Each answers with its command tag, or an error the console session survives.

use std::sync::Arc;
use std::time::Duration;

use dbwarden_config::CONSOLE_DATABASES;
use dbwarden_wire::SqlState;

use super::command::{Refusal, ShutdownMode};
use crate::{Proxy, Shared};

/// Loads the config again and applies it with [`Proxy::reload`]; set by whoever knows where
/// the config comes from (the binary: the file and flags, as on SIGHUP).
pub type Reloader = Arc<dyn Fn(&Proxy) -> Result<(), String> + Send + Sync>;

fn refuse(code: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        code: SqlState::from_code(code).unwrap_or(SqlState::INTERNAL_ERROR),
        message: message.into(),
    }
}

/// A database the console may act on: configured, or served through `*` with a pool now.
fn known_database(shared: &Shared, db: &str) -> Result<(), Refusal> {
    if CONSOLE_DATABASES.contains(&db) {
        return Err(refuse("55000", format!("cannot act on the admin db: {db}")));
    }
    let known = shared.config.load().databases.contains_key(db)
        || shared.pools.all().iter().any(|e| e.key.database == db);
    if known {
        Ok(())
    } else {
        Err(refuse("3D000", format!("no such database: {db}")))
    }
}

/// PAUSE [db]: new transactions (of that database) wait until RESUME; running ones finish.
pub fn pause(shared: &Shared, db: Option<&str>) -> Result<&'static str, Refusal> {
    if *shared.paused.borrow() {
        return Err(refuse("55000", "already suspended/paused"));
    }
    match db {
        None => {
            shared.paused.send_replace(true);
        }
        Some(db) => {
            known_database(shared, db)?;
            if !shared
                .paused_dbs
                .send_if_modified(|dbs| dbs.insert(db.to_owned()))
            {
                return Err(refuse("55000", format!("database {db} is already paused")));
            }
        }
    }
    tracing::info!(
        db = db.unwrap_or("*"),
        "PAUSE from the admin console: running transactions finish, new ones wait"
    );
    Ok("PAUSE")
}

pub fn resume(shared: &Shared, db: Option<&str>) -> Result<&'static str, Refusal> {
    if shared.stop.borrow().is_some() {
        return Err(refuse("55000", "pooler is shutting down"));
    }
    match db {
        None if !*shared.paused.borrow() => {
            return Err(refuse("55000", "pooler is not paused/suspended"))
        }
        None => {
            shared.paused.send_replace(false);
        }
        Some(db) => {
            if !shared.paused_dbs.send_if_modified(|dbs| dbs.remove(db)) {
                return Err(refuse("55000", format!("database {db} is not paused")));
            }
        }
    }
    tracing::info!(db = db.unwrap_or("*"), "RESUME from the admin console");
    Ok("RESUME")
}

pub fn reload(shared: &Arc<Shared>) -> Result<&'static str, Refusal> {
    let reloader = shared.reloader.read().clone();
    let Some(reloader) = reloader else {
        return Err(refuse(
            "F0000",
            "RELOAD failed: this proxy was started without a config source to reload from",
        ));
    };
    let proxy = Proxy {
        shared: shared.clone(),
    };
    match reloader(&proxy) {
        Ok(()) => {
            tracing::info!("RELOAD from the admin console: config reloaded");
            Ok("RELOAD")
        }
        Err(e) => {
            tracing::error!(error = %e, "RELOAD from the admin console failed; keeping the old config");
            Err(refuse("F0000", format!("RELOAD failed: {e}")))
        }
    }
}

/// KILL [db]: closes the database's clients (their sessions end with 57P01) and its server
/// connections: idle ones now, the ones clients hold as those sessions end. Without a
/// database, every pool's. Unlike PgBouncer the database is not left paused: new clients
/// may connect again at once.
pub fn kill(shared: &Shared, db: Option<&str>) -> Result<&'static str, Refusal> {
    if let Some(db) = db {
        known_database(shared, db)?;
    }
    let hit = |name: &str| db.is_none_or(|db| db == name);
    let mut clients = 0;
    for c in shared.stats.clients.all() {
        if c.login().is_some_and(|l| hit(&l.database)) {
            c.kill();
            clients += 1;
        }
    }
    let mut servers = 0;
    for entry in shared.pools.all() {
        if !hit(&entry.key.database) {
            continue;
        }
        // Every idle connection: idle for at least a nanosecond, none kept.
        for conn in entry
            .pool
            .take_expired(Duration::from_nanos(1), Duration::ZERO, 0)
        {
            servers += 1;
            tokio::spawn(conn.close());
        }
    }
    tracing::info!(
        db = db.unwrap_or("*"),
        clients,
        idle_servers = servers,
        "KILL from the admin console"
    );
    Ok("KILL")
}

pub fn kill_client(shared: &Shared, id: u64) -> Result<&'static str, Refusal> {
    let Some(client) = shared.stats.clients.get(id) else {
        return Err(refuse("42704", "client not found"));
    };
    client.kill();
    tracing::info!(client.id = id, "KILL_CLIENT from the admin console");
    Ok("KILL_CLIENT")
}

pub fn shutdown(shared: &Shared, mode: ShutdownMode) -> Result<&'static str, Refusal> {
    tracing::info!(?mode, "SHUTDOWN from the admin console");
    shared.stop.send_replace(Some(mode));
    Ok("SHUTDOWN")
}
