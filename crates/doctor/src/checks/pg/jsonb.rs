//! JSONB numbers beyond ±2^53, found by a bounded sample of each jsonb column.

use super::{ident, q, CheckResult, Ctx};
use crate::model::{Finding, Severity};
use crate::probe::pg::PgConn;

const COLUMNS: &str = "SELECT n.nspname AS schema, c.relname AS tbl, a.attname AS col, greatest(c.reltuples, 0)::float8 AS est_rows \
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
WHERE a.atttypid = 'jsonb'::regtype AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'm') \
AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' \
AND has_column_privilege(c.oid, a.attnum, 'SELECT') ORDER BY c.reltuples DESC";

/// 2^53: the largest integer a double holds exactly.
const LIMIT_2_53: &str = "9007199254740992";

/// The sampling statement for one column: a TABLESAMPLE spread over big tables, a
/// LIMIT always, and the jsonpath filter doing the comparison in numeric precision.
pub fn sample_sql(
    schema: &str,
    table: &str,
    column: &str,
    est_rows: f64,
    sample_rows: u64,
) -> String {
    let rel = format!("{}.{}", ident(schema), ident(table));
    let col = ident(column);
    let sample = if est_rows > (sample_rows * 10) as f64 {
        let pct = (sample_rows as f64 * 2.0 / est_rows * 100.0).clamp(0.0001, 100.0);
        format!(" TABLESAMPLE SYSTEM ({pct:.4})")
    } else {
        String::new()
    };
    format!(
        "SELECT count(*) AS values_over, count(DISTINCT s.ctid) AS rows_over, max(v::text) AS example \
         FROM (SELECT ctid, {col} AS j FROM {rel}{sample} LIMIT {sample_rows}) s, \
         LATERAL jsonb_path_query(s.j, 'strict $.** ? (@.type() == \"number\" && (@ > {LIMIT_2_53} || @ < -{LIMIT_2_53}))') v"
    )
}

pub async fn precision(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let max_cols = ctx.th("pg.jsonb_precision.max_columns").max(1.0) as usize;
    let sample_rows = ctx.th("pg.jsonb_precision.sample_rows").max(1.0) as u64;
    let cols = q(c, ctx, &format!("{COLUMNS} LIMIT {max_cols}")).await?;
    if cols.is_empty() {
        return Ok(vec![Finding::new(
            "pg.jsonb_precision",
            Severity::Ok,
            "no jsonb columns in this database",
        )
        .query(COLUMNS)]);
    }
    let mut hits = Vec::new();
    let mut errors = Vec::new();
    let mut last_sql = String::new();
    for r in cols.iter() {
        let name = format!(
            "{}.{}.{}",
            r.string("schema"),
            r.string("tbl"),
            r.string("col")
        );
        let sql = sample_sql(
            &r.string("schema"),
            &r.string("tbl"),
            &r.string("col"),
            r.f64("est_rows").unwrap_or(0.0),
            sample_rows,
        );
        match q(c, ctx, &sql).await {
            Ok(rows) => {
                if let Some(x) = rows.first() {
                    let n = x.f64("values_over").unwrap_or(0.0);
                    if n > 0.0 {
                        hits.push(format!(
                            "{name}: {n:.0} value(s) in {} sampled row(s), e.g. {}",
                            x.string("rows_over"),
                            x.string("example")
                        ));
                        last_sql = sql;
                    }
                }
            }
            // A statement timeout on one huge column should not hide the others.
            Err(e) if e.code().is_some() => errors.push(format!("{name}: {e}")),
            Err(e) => return Err(e),
        }
    }
    let checked = cols.len();
    let f = if hits.is_empty() {
        Finding::new(
            "pg.jsonb_precision",
            Severity::Ok,
            format!("no number beyond ±2^53 in a sample of {checked} jsonb column(s) (up to {sample_rows} rows each)"),
        )
        .query(COLUMNS)
    } else {
        Finding::new(
            "pg.jsonb_precision",
            Severity::Warning,
            format!(
                "{} jsonb column(s) hold numbers beyond ±2^53 that JSON decoders round",
                hits.len()
            ),
        )
        .query(&last_sql)
    };
    Ok(vec![f
        .value("columns_sampled", checked)
        .value("columns_with_big_numbers", hits.len())
        .value("sample_rows", sample_rows)
        .items(hits.into_iter().chain(errors))])
}
