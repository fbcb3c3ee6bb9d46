//! Server settings: timeouts, keepalives, TLS, password hashing.

use super::{q, CheckResult, Ctx};
use crate::model::{Finding, Severity};
use crate::probe::pg::PgConn;

/// `reset_val` is the value this role in this database starts with (server, database
/// and role settings applied), unaffected by the doctor's own SETs.
const TIMEOUTS: &str = "SELECT name, reset_val, unit, source FROM pg_settings \
WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout', 'lock_timeout') ORDER BY name";

const ROLE_SETTINGS: &str = "SELECT coalesce(r.rolname, '(all roles)') AS role, coalesce(d.datname, '(all databases)') AS db, cfg \
FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase, \
unnest(s.setconfig) AS cfg WHERE cfg ~ '^(statement_timeout|idle_in_transaction_session_timeout|lock_timeout)=' ORDER BY 1, 2 LIMIT 20";

pub async fn timeouts_unset(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, TIMEOUTS).await?;
    let mut unset = Vec::new();
    let mut set = Vec::new();
    for r in rows.iter() {
        let name = r.string("name");
        if r.str("reset_val") == Some("0") {
            unset.push(name);
        } else {
            set.push(format!(
                "{name} = {}{} (from {})",
                r.string("reset_val"),
                r.string("unit"),
                r.string("source")
            ));
        }
    }
    let others = q(c, ctx, ROLE_SETTINGS).await?;
    let overrides = others.iter().map(|r| {
        format!(
            "{} in {}: {}",
            r.string("role"),
            r.string("db"),
            r.string("cfg")
        )
    });
    let serious = unset.iter().any(|n| n != "lock_timeout");
    let sev = match (serious, unset.is_empty()) {
        (true, _) => Severity::Warning,
        (false, false) => Severity::Info,
        (false, true) => Severity::Ok,
    };
    let who = format!(
        "role {} in database {}",
        ctx.target.user.as_deref().unwrap_or("?"),
        ctx.target.database.as_deref().unwrap_or("?")
    );
    let title = if unset.is_empty() {
        format!("statement, idle-in-transaction and lock timeouts are set for {who}")
    } else {
        format!(
            "{} unset at server, database and role level for {who}",
            unset.join(", ")
        )
    };
    Ok(vec![Finding::new("pg.timeouts_unset", sev, title)
        .value("unset", unset.clone())
        .query(TIMEOUTS)
        .items(
            set.into_iter()
                .chain(overrides.map(|o| format!("override: {o}"))),
        )])
}

const KEEPALIVES: &str = "SELECT current_setting('tcp_keepalives_idle')::int AS idle, current_setting('tcp_keepalives_interval')::int AS interval, \
current_setting('tcp_keepalives_count')::int AS count, coalesce(current_setting('client_connection_check_interval', true), '') AS check_interval";

pub async fn tcp_keepalives(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    // On a TCP session SHOW reports the socket's effective values (the OS defaults
    // when the settings are 0), which is what decides when dead peers are noticed.
    let rows = q(c, ctx, KEEPALIVES).await?;
    let r = rows
        .first()
        .ok_or_else(|| crate::probe::pg::PgError::Protocol("no row".into()))?;
    let idle = r.f64("idle").unwrap_or(0.0);
    let interval = r.f64("interval").unwrap_or(0.0);
    let count = r.f64("count").unwrap_or(0.0);
    let detect = idle + interval * count;
    let limit = ctx.th("pg.tcp_keepalives.warn_idle_s");
    let sev = if idle > limit {
        Severity::Warning
    } else {
        Severity::Ok
    };
    let title = format!(
        "keepalives idle {idle:.0}s, interval {interval:.0}s, count {count:.0}: a dead peer is noticed after about {}",
        crate::checks::age(detect)
    );
    Ok(vec![Finding::new("pg.tcp_keepalives", sev, title)
        .value("idle_s", idle)
        .value("interval_s", interval)
        .value("count", count)
        .value("detect_s", detect)
        .value(
            "client_connection_check_interval",
            r.string("check_interval"),
        )
        .value("threshold_idle_s", limit)
        .query(KEEPALIVES)])
}

// pg_settings rather than current_setting(): without pg_read_all_settings the row is
// hidden (NULL here) instead of the whole query failing.
const TLS: &str = "SELECT current_setting('ssl') AS ssl, coalesce((SELECT setting FROM pg_settings WHERE name = 'ssl_min_protocol_version'), 'unknown') AS min_version, \
(SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'client backend' AND a.client_addr IS NOT NULL AND NOT s.ssl) AS plain_clients, \
(SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'client backend' AND s.ssl) AS tls_clients";

pub async fn tls(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, TLS).await?;
    let r = rows
        .first()
        .ok_or_else(|| crate::probe::pg::PgError::Protocol("no row".into()))?;
    let ssl = r.string("ssl");
    let min = r.string("min_version");
    let plain = r.f64("plain_clients").unwrap_or(0.0);
    let tls_clients = r.f64("tls_clients").unwrap_or(0.0);
    let mut f = if ssl != "on" {
        // Over loopback nothing crosses a network; elsewhere it is a real exposure.
        let sev = if ctx.loopback {
            Severity::Info
        } else {
            Severity::Warning
        };
        Finding::new("pg.tls", sev, "ssl = off: clients cannot use TLS")
    } else if min == "TLSv1" || min == "TLSv1.1" {
        Finding::new(
            "pg.tls",
            Severity::Warning,
            format!("ssl_min_protocol_version = {min} allows broken TLS versions"),
        )
    } else if plain > 0.0 {
        Finding::new(
            "pg.tls",
            Severity::Info,
            format!("TLS is on, but {plain:.0} network client(s) are connected without it"),
        )
    } else {
        Finding::new("pg.tls", Severity::Ok, format!("ssl = on, minimum {min}"))
    };
    f = f
        .value("ssl", ssl)
        .value("min_protocol_version", min)
        .value("plain_network_clients", plain)
        .value("tls_clients", tls_clients)
        .query(TLS);
    Ok(vec![f])
}

const PW_ENC: &str = "SELECT current_setting('password_encryption') AS enc";
const MD5_ROLES: &str =
    "SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY 1 LIMIT 50";

pub async fn password_encryption(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, PW_ENC).await?;
    let enc = rows.first().map(|r| r.string("enc")).unwrap_or_default();
    // pg_authid is superuser-only; without it we judge the setting alone.
    let md5_roles: Vec<String> = match q(c, ctx, MD5_ROLES).await {
        Ok(r) => r.iter().map(|r| r.string("rolname")).collect(),
        Err(e) if e.code() == Some("42501") => Vec::new(),
        Err(e) => return Err(e),
    };
    let sev = if enc == "md5" || !md5_roles.is_empty() {
        Severity::Warning
    } else {
        Severity::Ok
    };
    let title = match (enc.as_str(), md5_roles.len()) {
        ("md5", _) => {
            "password_encryption = md5: new passwords are stored as MD5 hashes".to_string()
        }
        (e, 0) => format!("password_encryption = {e}"),
        (e, n) => {
            format!("password_encryption = {e}, but {n} role(s) still have MD5 password hashes")
        }
    };
    Ok(vec![Finding::new("pg.password_encryption", sev, title)
        .value("password_encryption", enc)
        .value("md5_roles", md5_roles.len())
        .query(PW_ENC)
        .items(
            md5_roles
                .into_iter()
                .map(|r| format!("role {r} has an MD5 hash")),
        )])
}
