//! The admin console: a client that logs in to the virtual database `dbwarden` (or
//! `pgbouncer`, so PgBouncer's tools work unchanged) talks to the proxy itself and never
//! reaches a server. It speaks PgBouncer's dialect: SHOW POOLS, SHOW STATS, ..., PAUSE,
//! RESUME, RELOAD, KILL, SHUTDOWN, with PgBouncer 1.25's columns and types.
//!
//! Who gets in: `auth.admin_users` (every command) and `auth.stats_users` (SHOW only),
//! after the same authentication as any client. Only the simple query protocol is spoken.

pub mod averages;
pub mod command;
mod control;
pub mod rows;
pub mod settings;
pub mod show;
pub mod sockets;

use std::sync::Arc;

use dbwarden_config::{Config, CONSOLE_DATABASES};
use dbwarden_wire::encode::{self, Severity};
use dbwarden_wire::frontend::{self, tag as fe};
use dbwarden_wire::{ProtocolError, SqlState};

pub use averages::Averages;
pub use command::ShutdownMode;
pub use control::Reloader;

use crate::cancel::CancelKey;
use crate::client::handshake::{read_err, StartupInfo};
use crate::conn::{Conn, ReadError};
use crate::error::SessionError;
use crate::stats::{ClientInfo, ConsoleLogin};
use crate::Shared;
use command::{Command, Refusal, Show};

/// What a console user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    /// SHOW commands only.
    Stats,
}

/// Whether a login for `database` goes to the console.
pub fn is_console(database: &str) -> bool {
    CONSOLE_DATABASES.contains(&database)
}

/// The role of an authenticated `user`; anyone not listed is refused with 28000.
pub fn role(config: &Config, user: &str) -> Result<Role, SessionError> {
    let listed = |names: &[String]| names.iter().any(|n| n == user);
    if listed(&config.auth.admin_users) {
        Ok(Role::Admin)
    } else if listed(&config.auth.stats_users) {
        Ok(Role::Stats)
    } else {
        Err(SessionError::refused(
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            format!(
                "dbwarden: user \"{user}\" is not allowed to connect to the admin console \
                 (not in auth.admin_users or auth.stats_users)"
            ),
        ))
    }
}

/// Finishes the login of an authenticated console client: lists it for SHOW CLIENTS and
/// sends what a server sends (PgBouncer's parameters: psycopg2 and JDBC check DateStyle and
/// the encoding, and send SET when they differ).
pub fn greet(client: &mut Conn, shared: &Shared, info: &StartupInfo, me: &ClientInfo) -> CancelKey {
    me.tls
        .store(client.stream.is_tls(), std::sync::atomic::Ordering::Relaxed);
    let app = info
        .params
        .iter()
        .find(|(k, _)| k == "application_name")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    me.console_login(ConsoleLogin {
        database: info.database.clone(),
        user: info.user.clone(),
        application_name: app,
    });
    let buf = &mut client.wbuf;
    encode::auth_ok(buf);
    for (k, v) in [
        ("server_version", "1.25.0/dbwarden"),
        ("client_encoding", "UTF8"),
        ("server_encoding", "UTF8"),
        ("DateStyle", "ISO"),
        ("TimeZone", "GMT"),
        ("standard_conforming_strings", "on"),
        ("is_superuser", "on"),
    ] {
        encode::parameter_status(buf, k, v);
    }
    // A key so that a client's Ctrl-C has somewhere to go; it matches no server.
    let key = shared.cancels.register();
    encode::backend_key_data(buf, key.pid, &key.key);
    rows::ready(buf);
    key
}

/// Serves console queries until the client leaves.
pub async fn run(client: &mut Conn, shared: &Arc<Shared>, role: Role) -> Result<(), SessionError> {
    // After an extended-protocol message: its error was sent, the rest is skipped to Sync.
    let mut skipping = false;
    loop {
        client.flush().await.map_err(SessionError::ClientIo)?;
        let frame = match client.read_frame().await {
            Ok(f) => f,
            Err(ReadError::Eof) => return Ok(()),
            Err(e) => return Err(read_err(e)),
        };
        match frame.tag() {
            fe::QUERY => {
                skipping = false;
                let text =
                    frontend::query_text(frame.body()).map_err(SessionError::ClientProtocol)?;
                let stop = answer(&mut client.wbuf, shared, role, text);
                if stop {
                    // SHUTDOWN: as PgBouncer, no answer; the connection closes with the proxy.
                    client.flush().await.map_err(SessionError::ClientIo)?;
                    std::future::pending::<()>().await;
                }
                rows::ready(&mut client.wbuf);
            }
            fe::SYNC => {
                skipping = false;
                rows::ready(&mut client.wbuf);
            }
            fe::FLUSH => {}
            fe::TERMINATE => return Ok(()),
            fe::PARSE | fe::BIND | fe::DESCRIBE | fe::EXECUTE | fe::CLOSE => {
                if !skipping {
                    skipping = true;
                    error(
                        &mut client.wbuf,
                        SqlState::FEATURE_NOT_SUPPORTED,
                        "the admin console speaks the simple query protocol only (use psql, \
                         or your driver's simple/text query mode)",
                    );
                }
            }
            tag => {
                return Err(SessionError::ClientProtocol(
                    ProtocolError::UnexpectedMessage {
                        tag,
                        during: "admin console",
                    },
                ))
            }
        }
    }
}

fn error(buf: &mut bytes::BytesMut, code: SqlState, message: &str) {
    encode::error_response(buf, Severity::Error, code, message);
}

/// Writes the answer to one query; true for an immediate SHUTDOWN.
fn answer(buf: &mut bytes::BytesMut, shared: &Arc<Shared>, role: Role, text: &str) -> bool {
    let command = match command::parse(text) {
        Ok(c) => c,
        Err(Refusal { code, message }) => {
            error(buf, code, &message);
            return false;
        }
    };
    if role == Role::Stats && !command.read_only() {
        error(
            buf,
            SqlState::from_code("42501").unwrap_or(SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
            "admin access needed: this user is in auth.stats_users, which may run SHOW only",
        );
        return false;
    }
    let done = match command {
        Command::Empty => {
            rows::empty_query(buf);
            Ok(None)
        }
        Command::Show(what) => {
            show(buf, shared, what);
            Ok(None)
        }
        Command::ShowParam(name, value) => {
            let mut t = rows::Table::new(buf, "s", &[name]);
            t.row(&[rows::Cell::Text(value)]);
            t.finish();
            Ok(None)
        }
        Command::Set => {
            rows::notice(buf, "SET ignored", None);
            Ok(Some("SET"))
        }
        Command::Transaction(tag) => Ok(Some(tag)),
        Command::Pause(db) => control::pause(shared, db.as_deref()).map(Some),
        Command::Resume(db) => control::resume(shared, db.as_deref()).map(Some),
        Command::Reload => control::reload(shared).map(Some),
        Command::Kill(db) => control::kill(shared, db.as_deref()).map(Some),
        Command::KillClient(id) => control::kill_client(shared, id).map(Some),
        Command::Shutdown(mode) => {
            let _ = control::shutdown(shared, mode);
            if mode == ShutdownMode::Immediate {
                return true;
            }
            Ok(Some("SHUTDOWN"))
        }
    };
    match done {
        Ok(Some(tag)) => rows::command_complete(buf, tag),
        Ok(None) => {}
        Err(Refusal { code, message }) => error(buf, code, &message),
    }
    false
}

fn show(buf: &mut bytes::BytesMut, shared: &Shared, what: Show) {
    use show::StatsView;
    match what {
        Show::Pools => show::pools(buf, shared),
        Show::Stats => show::stats(buf, shared, StatsView::All),
        Show::StatsTotals => show::stats(buf, shared, StatsView::Totals),
        Show::StatsAverages => show::stats(buf, shared, StatsView::Averages),
        Show::Totals => show::totals(buf, shared),
        Show::Clients => sockets::clients(buf, shared),
        Show::Servers => sockets::servers(buf, shared),
        Show::Databases => settings::databases(buf, shared),
        Show::Config => settings::config(buf, shared),
        Show::Users => settings::users(buf, shared),
        Show::Version => show::version(buf),
        Show::Lists => show::lists(buf, shared),
        Show::State => show::state(buf, shared),
        Show::Prepared => show::prepared(buf, shared),
        Show::Help => show::help(buf),
    }
}
