//! Sequences: how close each is to its limit — or to the limit of the column it feeds,
//! which for a serial int4 column is far lower than the bigint sequence's own.

use super::{q, CheckResult, Ctx};
use crate::checks::grade;
use crate::model::{Finding, Severity};
use crate::probe::pg::PgConn;

/// Each sequence with the column it feeds, found through ownership (serial, identity,
/// OWNED BY) or through a column default that calls nextval() on it.
const SEQUENCES: &str = "SELECT s.schemaname || '.' || s.sequencename AS seq, s.data_type::text AS seq_type, \
s.last_value::text AS last_value, s.min_value::text AS min_value, s.max_value::text AS max_value, s.increment_by, \
col.col, col.col_type \
FROM pg_sequences s \
JOIN pg_namespace sn ON sn.nspname = s.schemaname \
JOIN pg_class sc ON sc.relname = s.sequencename AND sc.relnamespace = sn.oid \
LEFT JOIN LATERAL ( \
  SELECT tn.nspname || '.' || t.relname || '.' || a.attname AS col, format_type(a.atttypid, a.atttypmod) AS col_type \
  FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace \
  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid \
  WHERE d.classid = 'pg_class'::regclass AND d.objid = sc.oid AND d.refclassid = 'pg_class'::regclass \
    AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 \
  UNION ALL \
  SELECT tn.nspname || '.' || t.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod) \
  FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid JOIN pg_class t ON t.oid = ad.adrelid \
  JOIN pg_namespace tn ON tn.oid = t.relnamespace JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum \
  WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = sc.oid \
  ORDER BY 2 LIMIT 1 \
) col ON true \
WHERE s.last_value IS NOT NULL \
LIMIT 5000";

/// The largest value a column of this type can hold.
fn column_max(col_type: &str) -> Option<f64> {
    match col_type {
        "smallint" => Some(i16::MAX as f64),
        "integer" => Some(i32::MAX as f64),
        "bigint" => Some(i64::MAX as f64),
        _ => None,
    }
}

fn column_min(col_type: &str) -> Option<f64> {
    match col_type {
        "smallint" => Some(i16::MIN as f64),
        "integer" => Some(i32::MIN as f64),
        "bigint" => Some(i64::MIN as f64),
        _ => None,
    }
}

pub async fn exhaustion(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, SEQUENCES).await?;
    let (warn, crit) = (
        ctx.th("pg.sequence_exhaustion.warn_pct"),
        ctx.th("pg.sequence_exhaustion.crit_pct"),
    );
    let mut hits: Vec<(f64, String)> = Vec::new();
    let mut mismatched = 0usize;
    for r in rows.iter() {
        let (Some(last), Some(min), Some(max), Some(inc)) = (
            r.f64("last_value"),
            r.f64("min_value"),
            r.f64("max_value"),
            r.f64("increment_by"),
        ) else {
            continue;
        };
        let col = r.str("col");
        let col_type = r.string("col_type");
        // The effective limit is the tighter of the sequence's and the column's.
        let (limit, limited_by_column) = if inc > 0.0 {
            match column_max(&col_type) {
                Some(cm) if cm < max => (cm, true),
                _ => (max, false),
            }
        } else {
            match column_min(&col_type) {
                Some(cm) if cm > min => (cm, true),
                _ => (min, false),
            }
        };
        if limited_by_column {
            mismatched += 1;
        }
        let pct = if limit == 0.0 {
            0.0
        } else {
            (last / limit * 100.0).max(0.0)
        };
        if pct >= warn {
            let target = match col {
                Some(col) => format!(" → {col} ({col_type})"),
                None => String::new(),
            };
            let by = if limited_by_column {
                format!(
                    ", limited by the {col_type} column while the sequence is {}",
                    r.string("seq_type")
                )
            } else {
                String::new()
            };
            hits.push((
                pct,
                format!(
                    "{}{target}: {last:.0} of {limit:.0} ({pct:.1}%){by}",
                    r.string("seq")
                ),
            ));
        }
    }
    hits.sort_by(|a, b| b.0.total_cmp(&a.0));
    let worst = hits.first().map(|h| h.0).unwrap_or(0.0);
    let sev = grade(worst, warn, crit);
    let title = match hits.first() {
        None => format!(
            "{} sequence(s) checked, none above {warn}% of its limit",
            rows.len()
        ),
        Some((_, line)) => format!(
            "{} sequence(s) above {warn}% of their limit; worst: {line}",
            hits.len()
        ),
    };
    Ok(vec![Finding::new("pg.sequence_exhaustion", sev, title)
        .value("sequences", rows.len())
        .value("over_threshold", hits.len())
        .value("worst_pct", (worst * 10.0).round() / 10.0)
        .value("column_narrower_than_sequence", mismatched)
        .query(SEQUENCES)
        .items(hits.into_iter().map(|h| h.1))])
}

const CACHED: &str =
    "SELECT schemaname || '.' || sequencename AS seq, cache_size, count(*) OVER () AS total \
FROM pg_sequences WHERE cache_size > 1 ORDER BY cache_size DESC, 1 LIMIT 50";

pub async fn cache(c: &mut PgConn, ctx: &Ctx<'_>) -> CheckResult {
    let rows = q(c, ctx, CACHED).await?;
    let Some(first) = rows.first() else {
        return Ok(vec![Finding::new(
            "pg.sequence_cache",
            Severity::Ok,
            "no sequence has CACHE > 1",
        )
        .query(CACHED)]);
    };
    let total = first.f64("total").unwrap_or(0.0);
    let items = rows
        .iter()
        .map(|r| format!("{} CACHE {}", r.string("seq"), r.string("cache_size")));
    Ok(vec![Finding::new(
        "pg.sequence_cache",
        Severity::Info,
        format!(
            "{total:.0} sequence(s) with CACHE > 1: ids will have gaps and are not in commit order"
        ),
    )
    .value("sequences", total)
    .value("largest_cache", first.f64("cache_size").unwrap_or(0.0))
    .query(CACHED)
    .items(items)])
}
