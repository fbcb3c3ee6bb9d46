//! Sessions: connection slots, idle-in-transaction, long transactions, lock chains,
//! prepared transactions.

use super::{q, CheckResult, Ctx};
use crate::checks::{age, grade};
use crate::model::{Finding, Severity};
use crate::probe::pg::PgConn;

const CONNECTIONS: &str = "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used, \
current_setting('max_connections')::int AS max, \
current_setting('superuser_reserved_connections')::int + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0) AS reserved";

const CONNECTIONS_BY: &str = "SELECT coalesce(usename, '?') || ' / ' || coalesce(nullif(application_name, ''), '-') || ' / ' || coalesce(state, '?') AS who, count(*) AS n \
FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC LIMIT 10";

pub async fn connections(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, CONNECTIONS).await?;
    let r = rows.first().ok_or_else(no_row)?;
    let used = r.f64("used").unwrap_or(0.0);
    let max = r.f64("max").unwrap_or(0.0);
    let reserved = r.f64("reserved").unwrap_or(0.0);
    let usable = (max - reserved).max(1.0);
    let pct = used / usable * 100.0;
    let sev = grade(
        pct,
        ctx.th("pg.connections.warn_pct"),
        ctx.th("pg.connections.crit_pct"),
    );
    let by = q(c, ctx, CONNECTIONS_BY).await?;
    let items = by
        .iter()
        .map(|r| format!("{}: {}", r.string("who"), r.string("n")));
    Ok(vec![Finding::new(
        "pg.connections",
        sev,
        format!("{used:.0} of {usable:.0} usable connections in use ({pct:.0}%; max_connections {max:.0}, {reserved:.0} reserved)"),
    )
    .value("used", used)
    .value("usable", usable)
    .value("max_connections", max)
    .value("reserved", reserved)
    .value("used_pct", (pct * 10.0).round() / 10.0)
    .query(CONNECTIONS)
    .items(items)])
}

const IDLE_IN_TX: &str = "SELECT pid, usename, application_name, host(client_addr) AS client, state, \
extract(epoch FROM now() - state_change)::float8 AS idle_s, left(query, 80) AS query, count(*) OVER () AS total \
FROM pg_stat_activity WHERE state IN ('idle in transaction', 'idle in transaction (aborted)') \
ORDER BY state_change LIMIT 20";

pub async fn idle_in_transaction(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, IDLE_IN_TX).await?;
    let Some(oldest) = rows.first() else {
        return Ok(vec![Finding::new(
            "pg.idle_in_transaction",
            Severity::Ok,
            "no session is idle in transaction",
        )
        .query(IDLE_IN_TX)]);
    };
    let total = oldest.f64("total").unwrap_or(0.0);
    let max_s = oldest.f64("idle_s").unwrap_or(0.0);
    let (warn, crit) = (
        ctx.th("pg.idle_in_transaction.warn_s"),
        ctx.th("pg.idle_in_transaction.crit_s"),
    );
    let sev = grade(max_s, warn, crit);
    let over = rows
        .iter()
        .filter(|r| r.f64("idle_s").unwrap_or(0.0) >= warn)
        .count();
    let title = if sev == Severity::Ok {
        format!(
            "{total:.0} session(s) idle in transaction, oldest {} (below {})",
            age(max_s),
            age(warn)
        )
    } else {
        format!(
            "{over} session(s) idle in transaction longer than {}, oldest {}",
            age(warn),
            age(max_s)
        )
    };
    let items = rows.iter().map(|r| {
        format!(
            "pid {} {}@{} app '{}' {} for {}: {}",
            r.string("pid"),
            r.string("usename"),
            r.string("client"),
            r.string("application_name"),
            r.string("state"),
            age(r.f64("idle_s").unwrap_or(0.0)),
            r.string("query")
        )
    });
    Ok(vec![Finding::new("pg.idle_in_transaction", sev, title)
        .value("sessions", total)
        .value("over_threshold", over)
        .value("oldest_s", max_s.round())
        .value("threshold_s", warn)
        .query(IDLE_IN_TX)
        .items(items)])
}

const LONG_TX: &str = "SELECT pid, usename, application_name, state, extract(epoch FROM now() - xact_start)::float8 AS xact_s, \
age(backend_xmin) AS xmin_age, left(query, 80) AS query, \
(SELECT max(age(backend_xmin)) FROM pg_stat_activity) AS oldest_xmin_age \
FROM pg_stat_activity WHERE xact_start IS NOT NULL AND backend_type = 'client backend' AND pid <> pg_backend_pid() \
ORDER BY xact_start LIMIT 10";

pub async fn long_transactions(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, LONG_TX).await?;
    let max_s = rows.first().and_then(|r| r.f64("xact_s")).unwrap_or(0.0);
    let xmin_age = rows
        .first()
        .and_then(|r| r.f64("oldest_xmin_age"))
        .unwrap_or(0.0);
    let (warn, crit) = (
        ctx.th("pg.long_transactions.warn_s"),
        ctx.th("pg.long_transactions.crit_s"),
    );
    let sev = grade(max_s, warn, crit);
    let title = match (rows.is_empty(), sev) {
        (true, _) => "no open transactions besides the doctor's".to_string(),
        (false, Severity::Ok) => format!(
            "oldest transaction {} (below {}); oldest backend_xmin age {xmin_age:.0} xids",
            age(max_s),
            age(warn)
        ),
        _ => format!(
            "transaction open for {}; oldest backend_xmin age {xmin_age:.0} xids",
            age(max_s)
        ),
    };
    let items = rows
        .iter()
        .filter(|r| r.f64("xact_s").unwrap_or(0.0) >= warn)
        .map(|r| {
            format!(
                "pid {} {} app '{}' {} for {}, xmin age {}: {}",
                r.string("pid"),
                r.string("usename"),
                r.string("application_name"),
                r.string("state"),
                age(r.f64("xact_s").unwrap_or(0.0)),
                r.string("xmin_age"),
                r.string("query")
            )
        });
    Ok(vec![Finding::new("pg.long_transactions", sev, title)
        .value("oldest_xact_s", max_s.round())
        .value("oldest_xmin_age", xmin_age)
        .value("threshold_s", warn)
        .query(LONG_TX)
        .items(items)])
}

const BLOCKED: &str = "SELECT pid, array_to_string(pg_blocking_pids(pid), ',') AS blocked_by, \
extract(epoch FROM now() - query_start)::float8 AS wait_s, wait_event_type, usename, left(query, 80) AS query \
FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0 ORDER BY query_start LIMIT 50";

pub async fn lock_chains(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, BLOCKED).await?;
    if rows.is_empty() {
        return Ok(vec![Finding::new(
            "pg.lock_chains",
            Severity::Ok,
            "no session is waiting on a lock held by another",
        )
        .query(BLOCKED)]);
    }
    let blocked: Vec<i64> = rows.iter().filter_map(|r| r.i64("pid")).collect();
    let mut heads: Vec<i64> = rows
        .iter()
        .flat_map(|r| {
            r.string("blocked_by")
                .split(',')
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i64>>()
        })
        .filter(|p| !blocked.contains(p))
        .collect();
    heads.sort_unstable();
    heads.dedup();
    let max_wait = rows
        .iter()
        .filter_map(|r| r.f64("wait_s"))
        .fold(0.0, f64::max);
    let sev = grade(
        max_wait,
        ctx.th("pg.lock_chains.warn_s"),
        ctx.th("pg.lock_chains.crit_s"),
    );
    let list = heads
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let head_sql = format!(
        "SELECT pid, usename, state, extract(epoch FROM now() - xact_start)::float8 AS xact_s, left(query, 80) AS query \
         FROM pg_stat_activity WHERE pid = ANY('{{{list}}}'::int[])"
    );
    let head_rows = q(c, ctx, &head_sql).await?;
    let mut items: Vec<String> = head_rows
        .iter()
        .map(|r| {
            format!(
                "head pid {} {} {} (transaction {}): {}",
                r.string("pid"),
                r.string("usename"),
                r.string("state"),
                age(r.f64("xact_s").unwrap_or(0.0)),
                r.string("query")
            )
        })
        .collect();
    items.extend(rows.iter().map(|r| {
        format!(
            "pid {} waits {} on pid {}: {}",
            r.string("pid"),
            age(r.f64("wait_s").unwrap_or(0.0)),
            r.string("blocked_by"),
            r.string("query")
        )
    }));
    Ok(vec![Finding::new(
        "pg.lock_chains",
        sev,
        format!(
            "{} session(s) blocked behind {} lock holder(s), longest wait {}",
            rows.len(),
            heads.len(),
            age(max_wait)
        ),
    )
    .value("blocked", rows.len())
    .value("heads", heads.len())
    .value("longest_wait_s", max_wait.round())
    .query(BLOCKED)
    .items(items)])
}

const PREPARED: &str = "SELECT gid, database, owner, prepared::text AS prepared, extract(epoch FROM now() - prepared)::float8 AS age_s, \
age(transaction) AS xid_age, count(*) OVER () AS total FROM pg_prepared_xacts ORDER BY prepared LIMIT 20";

pub async fn prepared_xacts(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, PREPARED).await?;
    let Some(oldest) = rows.first() else {
        return Ok(vec![Finding::new(
            "pg.prepared_xacts",
            Severity::Ok,
            "no prepared transactions",
        )
        .query(PREPARED)]);
    };
    let total = oldest.f64("total").unwrap_or(0.0);
    let max_s = oldest.f64("age_s").unwrap_or(0.0);
    let (warn, crit) = (
        ctx.th("pg.prepared_xacts.warn_s"),
        ctx.th("pg.prepared_xacts.crit_s"),
    );
    let sev = grade(max_s, warn, crit);
    let title = if sev == Severity::Ok {
        format!(
            "{total:.0} prepared transaction(s), oldest {} (below {})",
            age(max_s),
            age(warn)
        )
    } else {
        format!(
            "{total:.0} prepared transaction(s), oldest '{}' prepared {} ago: it holds locks and the xmin horizon",
            oldest.string("gid"),
            age(max_s)
        )
    };
    let items = rows.iter().map(|r| {
        format!(
            "gid '{}' in {} by {}, prepared {} ({} ago), xid age {}",
            r.string("gid"),
            r.string("database"),
            r.string("owner"),
            r.string("prepared"),
            age(r.f64("age_s").unwrap_or(0.0)),
            r.string("xid_age")
        )
    });
    Ok(vec![Finding::new("pg.prepared_xacts", sev, title)
        .value("prepared", total)
        .value("oldest_s", max_s.round())
        .value("oldest_xid_age", oldest.f64("xid_age").unwrap_or(0.0))
        .value("threshold_s", warn)
        .query(PREPARED)
        .items(items)])
}

fn no_row() -> crate::probe::pg::PgError {
    crate::probe::pg::PgError::Protocol("query returned no row".into())
}
