//! MySQL/MariaDB checks, from one read of the global variables and status counters.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{age, could_not_run, grade};
use crate::model::{Finding, Severity};
use crate::options::Options;
use crate::probe::mysql::Greeting;
use crate::probe::Recorder;

pub struct Ctx<'a> {
    pub opts: &'a Options,
    pub loopback: bool,
    pub greeting: &'a Greeting,
}

const VARIABLES: &str = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('skip_name_resolve', 'require_secure_transport', \
'tls_version', 'have_ssl', 'wait_timeout', 'interactive_timeout', 'max_connections', 'time_zone', 'system_time_zone', \
'transaction_isolation', 'tx_isolation')";
const STATUS: &str =
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Max_used_connections', \
'Aborted_connects', 'Aborted_clients', 'Connections', 'Uptime')";
const SESSION_TLS: &str =
    "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')";

struct Vars(BTreeMap<String, String>);

impl Vars {
    fn s(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }
    fn f(&self, k: &str) -> f64 {
        self.s(k).parse().unwrap_or(0.0)
    }
}

async fn read(c: &mut Conn, sql: &str) -> Result<Vars, mysql_async::Error> {
    let rows: Vec<(String, String)> = c.query(sql).await?;
    Ok(Vars(
        rows.into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
    ))
}

pub async fn run(c: &mut Conn, ctx: &Ctx<'_>, rec: &mut Recorder) {
    let (vars, status, session) = match (
        read(c, VARIABLES).await,
        read(c, STATUS).await,
        read(c, SESSION_TLS).await,
    ) {
        (Ok(v), Ok(s), Ok(t)) => (v, s, t),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            rec.push(could_not_run("mysql.connections", &e.to_string()));
            return;
        }
    };
    let all = [
        skip_name_resolve(&vars),
        tls(&vars, &session, ctx),
        wait_timeout(&vars, ctx),
        connections(&vars, &status, ctx),
        aborted(&status, ctx),
        time_zone(&vars),
        isolation(&vars),
    ];
    for f in all {
        rec.push(f);
    }
}

fn skip_name_resolve(v: &Vars) -> Finding {
    let on = matches!(v.s("skip_name_resolve"), "ON" | "1");
    let f = if on {
        Finding::new(
            "mysql.skip_name_resolve",
            Severity::Ok,
            "skip_name_resolve = ON: no reverse DNS lookup on connect",
        )
    } else {
        Finding::new(
            "mysql.skip_name_resolve",
            Severity::Warning,
            "skip_name_resolve = OFF: the server resolves every client address before login",
        )
    };
    f.value("skip_name_resolve", v.s("skip_name_resolve"))
        .query(VARIABLES)
}

fn tls(v: &Vars, session: &Vars, ctx: &Ctx<'_>) -> Finding {
    let required = matches!(v.s("require_secure_transport"), "ON" | "1");
    let versions = v.s("tls_version").to_string();
    let session_version = session.s("ssl_version").to_string();
    let weak = versions
        .split(',')
        .any(|t| matches!(t.trim(), "TLSv1" | "TLSv1.0" | "TLSv1.1"));
    let (sev, title) = if v.s("have_ssl") == "DISABLED"
        || (!ctx.greeting.offers_tls() && v.s("have_ssl").is_empty())
    {
        let sev = if ctx.loopback {
            Severity::Info
        } else {
            Severity::Warning
        };
        (
            sev,
            "TLS is not configured on the server: clients cannot encrypt".to_string(),
        )
    } else if weak {
        (
            Severity::Warning,
            format!("tls_version allows broken versions: {versions}"),
        )
    } else if !required {
        let sev = if ctx.loopback {
            Severity::Info
        } else {
            Severity::Warning
        };
        (
            sev,
            "require_secure_transport = OFF: clients may connect in clear text".to_string(),
        )
    } else {
        (
            Severity::Ok,
            format!("TLS required; this session uses {session_version}"),
        )
    };
    Finding::new("mysql.tls", sev, title)
        .value("require_secure_transport", v.s("require_secure_transport"))
        .value("tls_version", versions)
        .value("have_ssl", v.s("have_ssl"))
        .value("session_ssl_version", session_version)
        .query(VARIABLES)
}

fn wait_timeout(v: &Vars, ctx: &Ctx<'_>) -> Finding {
    let wait = v.f("wait_timeout");
    let interactive = v.f("interactive_timeout");
    let lifetime = ctx.opts.pool_lifetime.as_secs_f64();
    let f = if wait <= lifetime {
        Finding::new(
            "mysql.wait_timeout",
            Severity::Warning,
            format!(
                "wait_timeout {} is not longer than the pool's connection lifetime {}: idle pooled connections are closed by the server first",
                age(wait),
                age(lifetime)
            ),
        )
    } else {
        Finding::new(
            "mysql.wait_timeout",
            Severity::Ok,
            format!(
                "wait_timeout {} is longer than the pool's connection lifetime {}",
                age(wait),
                age(lifetime)
            ),
        )
    };
    f.value("wait_timeout_s", wait)
        .value("interactive_timeout_s", interactive)
        .value("pool_lifetime_s", lifetime)
        .query(VARIABLES)
}

fn connections(v: &Vars, s: &Vars, ctx: &Ctx<'_>) -> Finding {
    let max = v.f("max_connections").max(1.0);
    let now = s.f("threads_connected");
    let peak = s.f("max_used_connections");
    let th = &ctx.opts.thresholds;
    let (warn, crit) = (
        th.get("mysql.connections.warn_pct"),
        th.get("mysql.connections.crit_pct"),
    );
    let sev =
        grade(now / max * 100.0, warn, crit).max(grade(peak / max * 100.0, warn, f64::INFINITY));
    Finding::new(
        "mysql.connections",
        sev,
        format!(
            "{now:.0} of {max:.0} connections in use; peak since start {peak:.0} ({:.0}%)",
            peak / max * 100.0
        ),
    )
    .value("threads_connected", now)
    .value("max_used_connections", peak)
    .value("max_connections", max)
    .query(STATUS)
}

fn aborted(s: &Vars, ctx: &Ctx<'_>) -> Finding {
    let conns = s.f("connections");
    // Our own greeting/TLS probe socket counts as one aborted connect.
    let connects = (s.f("aborted_connects") - 1.0).max(0.0);
    let clients = s.f("aborted_clients");
    let th = &ctx.opts.thresholds;
    let warn = th.get("mysql.aborted.warn_ratio");
    let enough = conns >= th.get("mysql.aborted.min_connections");
    let (rc, rk) = if conns > 0.0 {
        (connects / conns, clients / conns)
    } else {
        (0.0, 0.0)
    };
    let sev = if enough && (rc > warn || rk > warn) {
        Severity::Warning
    } else {
        Severity::Ok
    };
    Finding::new(
        "mysql.aborted",
        sev,
        format!(
            "{:.1}% of connects aborted ({connects:.0}), {:.1}% of clients dropped without closing ({clients:.0}) over {conns:.0} connections",
            rc * 100.0,
            rk * 100.0
        ),
    )
    .value("aborted_connects", connects)
    .value("aborted_clients", clients)
    .value("connections", conns)
    .query(STATUS)
}

fn time_zone(v: &Vars) -> Finding {
    let tz = v.s("time_zone").to_string();
    let system = v.s("system_time_zone").to_string();
    let f = if tz == "SYSTEM" {
        Finding::new(
            "mysql.time_zone",
            Severity::Info,
            format!("time_zone = SYSTEM: conversions follow the host's zone ({system}) and its DST changes"),
        )
    } else {
        Finding::new(
            "mysql.time_zone",
            Severity::Ok,
            format!("time_zone = {tz} (explicit)"),
        )
    };
    f.value("time_zone", tz)
        .value("system_time_zone", system)
        .query(VARIABLES)
}

fn isolation(v: &Vars) -> Finding {
    let level = match v.s("transaction_isolation") {
        "" => v.s("tx_isolation").to_string(),
        l => l.to_string(),
    };
    let (sev, note) = match level.as_str() {
        "READ-UNCOMMITTED" => (Severity::Warning, "dirty reads are possible"),
        "REPEATABLE-READ" => (
            Severity::Info,
            "InnoDB's default: gap locks and snapshot reads inside a transaction",
        ),
        "SERIALIZABLE" => (
            Severity::Info,
            "every read locks: expect more lock waits and deadlocks",
        ),
        _ => (Severity::Ok, "as most applications expect"),
    };
    Finding::new(
        "mysql.isolation",
        sev,
        format!("transaction isolation {level}: {note}"),
    )
    .value("transaction_isolation", level)
    .query(VARIABLES)
}
