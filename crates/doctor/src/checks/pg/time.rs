//! Time zones: the server's default vs the client's, and zone-less timestamp columns.

use super::{literal, q, CheckResult, Ctx};
use crate::model::{Finding, Severity};
use crate::probe::pg::PgConn;

const TZ: &str =
    "SELECT current_setting('TimeZone') AS tz, source FROM pg_settings WHERE name = 'TimeZone'";

/// The client's zone: `--client-timezone`, else `TZ`, else the system's.
pub fn client_timezone(explicit: Option<&str>) -> Option<String> {
    if let Some(z) = explicit {
        return Some(z.to_string());
    }
    if let Ok(z) = std::env::var("TZ") {
        let z = z.trim_start_matches(':').to_string();
        if !z.is_empty() {
            return Some(z);
        }
    }
    if let Ok(z) = std::fs::read_to_string("/etc/timezone") {
        let z = z.trim().to_string();
        if !z.is_empty() {
            return Some(z);
        }
    }
    let link = std::fs::read_link("/etc/localtime").ok()?;
    let s = link.to_string_lossy();
    s.split_once("zoneinfo/").map(|(_, z)| z.to_string())
}

pub async fn timezone(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, TZ).await?;
    let r = rows
        .first()
        .ok_or_else(|| crate::probe::pg::PgError::Protocol("no row".into()))?;
    let server = r.string("tz");
    let source = r.string("source");
    let Some(client) = client_timezone(ctx.opts.client_timezone.as_deref()) else {
        return Ok(vec![Finding::new(
            "pg.timezone",
            Severity::Info,
            format!(
                "server TimeZone is {server}; the client's zone is unknown (use --client-timezone)"
            ),
        )
        .value("server", server)
        .query(TZ)]);
    };
    // Compare offsets now rather than names: 'UTC' and 'Etc/UTC' are the same zone.
    let diff_sql = format!(
        "SELECT extract(epoch FROM (now() AT TIME ZONE {}) - (now() AT TIME ZONE {}))::float8 AS diff_s",
        literal(&client),
        literal(&server)
    );
    let diff = match q(c, ctx, &diff_sql).await {
        Ok(rows) => rows.first().and_then(|r| r.f64("diff_s")),
        // An unknown zone name raises 22023; fall back to comparing names.
        Err(e) if e.code().is_some() => None,
        Err(e) => return Err(e),
    };
    let same = match diff {
        Some(d) => d.abs() < 1.0,
        None => client.eq_ignore_ascii_case(&server),
    };
    let f = if same {
        Finding::new(
            "pg.timezone",
            Severity::Ok,
            format!("server TimeZone {server} matches the client's {client}"),
        )
    } else {
        let by = diff
            .map(|d| format!(" by {:+.1}h", d / 3600.0))
            .unwrap_or_default();
        Finding::new(
            "pg.timezone",
            Severity::Warning,
            format!(
                "server TimeZone {server} (from {source}) differs from the client's {client}{by}"
            ),
        )
    };
    Ok(vec![f
        .value("server", server)
        .value("server_source", source)
        .value("client", client)
        .value("offset_diff_s", diff.unwrap_or(f64::NAN).round())
        .query(TZ)])
}

const TS_COLUMNS: &str = "SELECT n.nspname AS schema, c.relname AS tbl, a.attname AS col, count(*) OVER () AS total \
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
WHERE a.atttypid IN ('timestamp'::regtype, 'timestamp[]'::regtype) AND a.attnum > 0 AND NOT a.attisdropped \
AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1, 2, 3";

pub async fn timestamp_without_tz(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let max = ctx.th("pg.timestamp_without_tz.max_columns").max(1.0) as usize;
    let sql = format!("{TS_COLUMNS} LIMIT {max}");
    let rows = q(c, ctx, &sql).await?;
    let Some(first) = rows.first() else {
        return Ok(vec![Finding::new(
            "pg.timestamp_without_tz",
            Severity::Ok,
            "no `timestamp without time zone` columns in user tables",
        )
        .query(TS_COLUMNS)]);
    };
    let total = first.f64("total").unwrap_or(0.0);
    let items = rows.iter().map(|r| {
        format!(
            "{}.{}.{}",
            r.string("schema"),
            r.string("tbl"),
            r.string("col")
        )
    });
    Ok(vec![Finding::new(
        "pg.timestamp_without_tz",
        Severity::Info,
        format!(
            "{total:.0} `timestamp without time zone` column(s) in user tables of this database"
        ),
    )
    .value("columns", total)
    .query(TS_COLUMNS)
    .items(items)])
}
