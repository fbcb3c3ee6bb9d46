//! Cluster health: wraparound, replication, deadlocks and rollbacks, cache hits.

use super::{q, CheckResult, Ctx};
use crate::checks::grade;
use crate::model::{Finding, Severity};
use crate::probe::pg::PgConn;

const WRAPAROUND: &str = "SELECT datname, age(datfrozenxid)::float8 AS xid_age, mxid_age(datminmxid)::float8 AS mxid_age \
FROM pg_database ORDER BY greatest(age(datfrozenxid), mxid_age(datminmxid)) DESC LIMIT 5";

/// XIDs are 32-bit and compared modulo 2^31: this is the hard limit.
const WRAP_LIMIT: f64 = 2_147_483_648.0;

pub async fn wraparound(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, WRAPAROUND).await?;
    let r = rows
        .first()
        .ok_or_else(|| crate::probe::pg::PgError::Protocol("no row".into()))?;
    let xid = r.f64("xid_age").unwrap_or(0.0);
    let mxid = r.f64("mxid_age").unwrap_or(0.0);
    let worst = xid.max(mxid);
    let sev = grade(
        worst,
        ctx.th("pg.wraparound.warn_age"),
        ctx.th("pg.wraparound.crit_age"),
    );
    let title = format!(
        "oldest database {}: xid age {xid:.0} ({:.1}% of the limit), mxid age {mxid:.0}",
        r.string("datname"),
        worst / WRAP_LIMIT * 100.0
    );
    let items = rows.iter().map(|r| {
        format!(
            "{}: xid age {}, mxid age {}",
            r.string("datname"),
            r.string("xid_age"),
            r.string("mxid_age")
        )
    });
    Ok(vec![Finding::new("pg.wraparound", sev, title)
        .value("xid_age", xid)
        .value("mxid_age", mxid)
        .value("pct_of_limit", (worst / WRAP_LIMIT * 1000.0).round() / 10.0)
        .query(WRAPAROUND)
        .items(items)])
}

const SLOTS: &str = "SELECT slot_name, slot_type, active, \
pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)::float8 AS retained_bytes \
FROM pg_replication_slots ORDER BY 4 DESC NULLS LAST LIMIT 20";

const REPLICAS: &str = "SELECT application_name, host(client_addr) AS client, state, coalesce(extract(epoch FROM replay_lag), 0)::float8 AS lag_s \
FROM pg_stat_replication ORDER BY 4 DESC LIMIT 20";

pub async fn replication(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let slots = q(c, ctx, SLOTS).await?;
    let replicas = q(c, ctx, REPLICAS).await?;
    let (swarn, scrit) = (
        ctx.th("pg.replication.slot_warn_mb"),
        ctx.th("pg.replication.slot_crit_mb"),
    );
    let (lwarn, lcrit) = (
        ctx.th("pg.replication.lag_warn_s"),
        ctx.th("pg.replication.lag_crit_s"),
    );
    let mut sev = Severity::Ok;
    let mut items = Vec::new();
    let mut worst_inactive_mb: f64 = 0.0;
    for s in slots.iter() {
        let mb = s.f64("retained_bytes").unwrap_or(0.0) / 1_048_576.0;
        let active = s.bool("active");
        // An active slot retains what its consumer has not read yet; judge it only
        // against the critical limit. An inactive one retains WAL for nobody.
        let g = if active {
            grade(mb, scrit, scrit)
        } else {
            worst_inactive_mb = worst_inactive_mb.max(mb);
            grade(mb, swarn, scrit)
        };
        sev = sev.max(g);
        items.push(format!(
            "slot {} ({}, {}) retains {mb:.0} MB of WAL",
            s.string("slot_name"),
            s.string("slot_type"),
            if active { "active" } else { "INACTIVE" }
        ));
    }
    let mut worst_lag: f64 = 0.0;
    for r in replicas.iter() {
        let lag = r.f64("lag_s").unwrap_or(0.0);
        worst_lag = worst_lag.max(lag);
        sev = sev.max(grade(lag, lwarn, lcrit));
        items.push(format!(
            "replica {} at {} ({}) replay lag {lag:.1}s",
            r.string("application_name"),
            r.string("client"),
            r.string("state")
        ));
    }
    let inactive = slots.iter().filter(|s| !s.bool("active")).count();
    let title = if slots.is_empty() && replicas.is_empty() {
        "no replication slots and no connected replicas".to_string()
    } else {
        format!(
            "{} slot(s) ({inactive} inactive, retaining up to {worst_inactive_mb:.0} MB), {} replica(s), worst replay lag {worst_lag:.1}s",
            slots.len(),
            replicas.len()
        )
    };
    Ok(vec![Finding::new("pg.replication", sev, title)
        .value("slots", slots.len())
        .value("inactive_slots", inactive)
        .value("worst_inactive_retained_mb", worst_inactive_mb.round())
        .value("replicas", replicas.len())
        .value("worst_replay_lag_s", worst_lag)
        .query(SLOTS)
        .items(items)])
}

const DB_STATS: &str = "SELECT deadlocks::float8 AS deadlocks, xact_commit::float8 AS commits, xact_rollback::float8 AS rollbacks, \
blks_hit::float8 AS hit, blks_read::float8 AS read, coalesce(stats_reset, pg_postmaster_start_time())::text AS since \
FROM pg_stat_database WHERE datname = current_database()";

pub async fn deadlocks(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, DB_STATS).await?;
    let r = rows
        .first()
        .ok_or_else(|| crate::probe::pg::PgError::Protocol("no row".into()))?;
    let dl = r.f64("deadlocks").unwrap_or(0.0);
    let commits = r.f64("commits").unwrap_or(0.0);
    let rollbacks = r.f64("rollbacks").unwrap_or(0.0);
    let ratio = if commits + rollbacks > 0.0 {
        rollbacks / (commits + rollbacks)
    } else {
        0.0
    };
    let ratio_warn = ctx.th("pg.deadlocks.rollback_warn_ratio");
    let mut sev = if dl > ctx.th("pg.deadlocks.warn_count") {
        Severity::Warning
    } else if dl > 0.0 {
        Severity::Info
    } else {
        Severity::Ok
    };
    // A handful of transactions says nothing about the application.
    if ratio > ratio_warn && commits + rollbacks >= 1000.0 {
        sev = sev.max(Severity::Warning);
    }
    Ok(vec![Finding::new(
        "pg.deadlocks",
        sev,
        format!(
            "{dl:.0} deadlock(s) and {:.1}% rollbacks since {}",
            ratio * 100.0,
            r.string("since")
        ),
    )
    .value("deadlocks", dl)
    .value("commits", commits)
    .value("rollbacks", rollbacks)
    .value("rollback_ratio", (ratio * 10000.0).round() / 10000.0)
    .value("since", r.string("since"))
    .query(DB_STATS)])
}

pub async fn cache_hit_ratio(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, DB_STATS).await?;
    let r = rows
        .first()
        .ok_or_else(|| crate::probe::pg::PgError::Protocol("no row".into()))?;
    let hit = r.f64("hit").unwrap_or(0.0);
    let read = r.f64("read").unwrap_or(0.0);
    let total = hit + read;
    let ratio = if total > 0.0 { hit / total } else { 1.0 };
    let warn = ctx.th("pg.cache_hit_ratio.warn_ratio");
    let enough = total >= ctx.th("pg.cache_hit_ratio.min_reads");
    let sev = if enough && ratio < warn {
        Severity::Warning
    } else {
        Severity::Ok
    };
    let title = if enough {
        format!(
            "buffer cache hit ratio {:.2}% over {total:.0} block accesses",
            ratio * 100.0
        )
    } else {
        format!(
            "buffer cache hit ratio {:.2}% (only {total:.0} block accesses: too few to judge)",
            ratio * 100.0
        )
    };
    Ok(vec![Finding::new("pg.cache_hit_ratio", sev, title)
        .value("ratio", (ratio * 10000.0).round() / 10000.0)
        .value("block_accesses", total)
        .value("threshold", warn)
        .query(DB_STATS)])
}
