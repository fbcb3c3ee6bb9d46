//! Parsing one console query. PgBouncer's grammar: one word, an optional argument, an
//! optional `;`, in any case; `SET key = value` and transaction commands are answered
//! without doing anything because drivers send them on their own.

use dbwarden_wire::SqlState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    Pools,
    Stats,
    StatsTotals,
    StatsAverages,
    Totals,
    Clients,
    Servers,
    Databases,
    Config,
    Version,
    Lists,
    Prepared,
    Users,
    State,
    Help,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Close every session now (PgBouncer's plain SHUTDOWN).
    Immediate,
    /// Stop accepting; sessions get `shutdown_timeout` to end (WAIT_FOR_CLIENTS).
    WaitForClients,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Empty,
    Show(Show),
    /// `SHOW client_encoding` and the like: a fixed answer, as PgBouncer gives.
    ShowParam(&'static str, &'static str),
    /// `SET ...`: ignored with a notice.
    Set,
    /// BEGIN, COMMIT, ROLLBACK: the tag only, nothing is transactional here.
    Transaction(&'static str),
    Pause(Option<String>),
    Resume(Option<String>),
    Reload,
    Kill(Option<String>),
    KillClient(u64),
    Shutdown(ShutdownMode),
}

impl Command {
    /// Whether a stats user may run it (reads only).
    pub fn read_only(&self) -> bool {
        matches!(
            self,
            Command::Empty
                | Command::Show(_)
                | Command::ShowParam(..)
                | Command::Set
                | Command::Transaction(_)
        )
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: SqlState,
    pub message: String,
}

/// The commands, for SHOW HELP and the "unknown command" error.
pub const HELP: &str = "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION\n\
    \tSHOW LISTS|STATE|PREPARED\n\
    \tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS\n\
    \tSET key = arg (ignored)\n\
    \tRELOAD\n\
    \tPAUSE [<db>]\n\
    \tRESUME [<db>]\n\
    \tKILL [<db>]\n\
    \tKILL_CLIENT <client_id>\n\
    \tSHUTDOWN\n\
    \tSHUTDOWN WAIT_FOR_CLIENTS";

/// Settings some drivers read on their own; the values are PgBouncer's.
const FAKE_PARAMS: [(&str, &str); 6] = [
    ("client_encoding", "UTF-8"),
    ("default_transaction_isolation", "read committed"),
    ("standard_conforming_strings", "on"),
    ("datestyle", "ISO"),
    ("timezone", "GMT"),
    ("extra_float_digits", "2"),
];

/// PgBouncer commands dbwarden does not have; they get 0A000 rather than a syntax error.
const UNSUPPORTED: [&str; 5] = ["suspend", "disable", "enable", "reconnect", "wait_close"];
const UNSUPPORTED_SHOW: [&str; 8] = [
    "fds",
    "sockets",
    "active_sockets",
    "mem",
    "dns_hosts",
    "dns_zones",
    "peers",
    "peer_pools",
];

fn syntax(query: &str) -> Refusal {
    Refusal {
        code: SqlState::from_code("42601").unwrap_or(SqlState::PROTOCOL_VIOLATION),
        message: format!("invalid command '{query}', use SHOW HELP; commands:{HELP}"),
    }
}

fn unsupported(what: &str) -> Refusal {
    Refusal {
        code: SqlState::FEATURE_NOT_SUPPORTED,
        message: format!("{what} is a PgBouncer command dbwarden does not have; see SHOW HELP"),
    }
}

/// A word as PgBouncer reads it: `"quoted"` keeps its case, a bare word is lowercased.
fn word(w: &str) -> Option<String> {
    if let Some(inner) = w.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        return (!inner.is_empty()).then(|| inner.replace("\"\"", "\""));
    }
    let ok = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    ok.then(|| w.to_ascii_lowercase())
}

pub fn parse(query: &str) -> Result<Command, Refusal> {
    let text = query.trim();
    let text = text.strip_suffix(';').unwrap_or(text).trim_end();
    if text.is_empty() {
        return Ok(Command::Empty);
    }
    let lower = text.to_ascii_lowercase();
    let mut words = lower.split_ascii_whitespace();
    let first = words.next().unwrap_or_default();
    match first {
        "set" => return Ok(Command::Set),
        "begin" | "start" => return Ok(Command::Transaction("BEGIN")),
        "commit" | "end" => return Ok(Command::Transaction("COMMIT")),
        "rollback" | "abort" => return Ok(Command::Transaction("ROLLBACK")),
        _ => {}
    }
    let parts: Vec<&str> = text.split_ascii_whitespace().collect();
    let (cmd, arg) = match parts.as_slice() {
        [cmd] => (word(cmd), None),
        [cmd, arg] => (word(cmd), Some(word(arg).ok_or_else(|| syntax(text))?)),
        _ => return Err(syntax(text)),
    };
    let cmd = cmd.ok_or_else(|| syntax(text))?;
    let no_arg = |c: Command| {
        if arg.is_none() {
            Ok(c)
        } else {
            Err(syntax(text))
        }
    };
    match cmd.as_str() {
        "show" => show(arg.as_deref().ok_or_else(|| syntax(text))?, text),
        "pause" => Ok(Command::Pause(arg)),
        "resume" => Ok(Command::Resume(arg)),
        "kill" => Ok(Command::Kill(arg)),
        "reload" => no_arg(Command::Reload),
        "kill_client" => {
            let id = arg.as_deref().and_then(|a| a.parse::<u64>().ok());
            id.map(Command::KillClient).ok_or_else(|| Refusal {
                code: SqlState::from_code("22023").unwrap_or(SqlState::PROTOCOL_VIOLATION),
                message: "KILL_CLIENT needs a client id (the id column of SHOW CLIENTS)".into(),
            })
        }
        "shutdown" => match arg.as_deref() {
            None => Ok(Command::Shutdown(ShutdownMode::Immediate)),
            Some("wait_for_clients") => Ok(Command::Shutdown(ShutdownMode::WaitForClients)),
            Some("wait_for_servers") => Err(unsupported("SHUTDOWN WAIT_FOR_SERVERS")),
            Some(_) => Err(syntax(text)),
        },
        other if UNSUPPORTED.contains(&other) => Err(unsupported(&other.to_ascii_uppercase())),
        _ => Err(syntax(text)),
    }
}

fn show(what: &str, text: &str) -> Result<Command, Refusal> {
    let show = match what {
        "pools" => Show::Pools,
        "stats" => Show::Stats,
        "stats_totals" => Show::StatsTotals,
        "stats_averages" => Show::StatsAverages,
        "totals" => Show::Totals,
        "clients" => Show::Clients,
        "servers" => Show::Servers,
        "databases" => Show::Databases,
        "config" => Show::Config,
        "version" => Show::Version,
        "lists" => Show::Lists,
        "prepared" => Show::Prepared,
        "users" => Show::Users,
        "state" => Show::State,
        "help" => Show::Help,
        other => {
            if let Some((name, value)) = FAKE_PARAMS.iter().find(|(n, _)| *n == other) {
                return Ok(Command::ShowParam(name, value));
            }
            if UNSUPPORTED_SHOW.contains(&other) {
                return Err(unsupported(&format!("SHOW {}", other.to_ascii_uppercase())));
            }
            return Err(syntax(text));
        }
    };
    Ok(Command::Show(show))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_semicolons_and_arguments() {
        assert_eq!(parse("show pools"), Ok(Command::Show(Show::Pools)));
        assert_eq!(
            parse("  SHOW Stats_Totals ;  "),
            Ok(Command::Show(Show::StatsTotals))
        );
        assert_eq!(parse("PAUSE"), Ok(Command::Pause(None)));
        assert_eq!(parse("pause app;"), Ok(Command::Pause(Some("app".into()))));
        assert_eq!(
            parse("KILL \"MyDb\""),
            Ok(Command::Kill(Some("MyDb".into())))
        );
        assert_eq!(parse("kill_client 42"), Ok(Command::KillClient(42)));
        assert_eq!(parse(";"), Ok(Command::Empty));
        assert_eq!(parse("SET DateStyle = 'ISO'"), Ok(Command::Set));
        assert_eq!(parse("begin"), Ok(Command::Transaction("BEGIN")));
        assert_eq!(
            parse("show TimeZone"),
            Ok(Command::ShowParam("timezone", "GMT"))
        );
        assert_eq!(
            parse("shutdown wait_for_clients"),
            Ok(Command::Shutdown(ShutdownMode::WaitForClients))
        );
    }

    #[test]
    fn unknown_and_malformed_commands_are_syntax_errors() {
        for q in [
            "show",
            "show nothing",
            "select 1",
            "reload now",
            "show pools extra",
        ] {
            let e = parse(q).unwrap_err();
            assert_eq!(e.code.code(), "42601", "{q}");
            assert!(e.message.contains("SHOW HELP"), "{q}");
        }
        assert_eq!(parse("kill_client x").unwrap_err().code.code(), "22023");
        assert_eq!(parse("SUSPEND").unwrap_err().code.code(), "0A000");
        assert_eq!(parse("show fds").unwrap_err().code.code(), "0A000");
    }

    #[test]
    fn stats_users_may_only_read() {
        assert!(parse("show clients").unwrap().read_only());
        assert!(parse("set x = 1").unwrap().read_only());
        for q in [
            "pause",
            "resume",
            "reload",
            "kill db",
            "kill_client 1",
            "shutdown",
        ] {
            assert!(!parse(q).unwrap().read_only(), "{q}");
        }
    }
}
