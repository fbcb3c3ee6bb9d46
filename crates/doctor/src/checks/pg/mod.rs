//! PostgreSQL checks. Each function returns its findings (an `ok` one when all is
//! well, so the report shows what was checked) or the error that stopped it.

mod activity;
mod health;
mod jsonb;
mod sequences;
mod settings;
mod time;

use std::time::Duration;

use crate::model::Finding;
use crate::options::Options;
use crate::probe::pg::{PgConn, PgError, Rows};
use crate::probe::Recorder;
use crate::target::Target;

use super::could_not_run;

pub struct Ctx<'a> {
    pub opts: &'a Options,
    pub target: &'a Target,
    /// Whether the probe reached the server over a loopback address.
    pub loopback: bool,
}

impl Ctx<'_> {
    pub fn th(&self, key: &str) -> f64 {
        self.opts.thresholds.get(key)
    }
    /// Client-side wait: a little longer than the server's statement_timeout, so the
    /// server's own timeout (with its clear error) normally fires first.
    pub fn timeout(&self) -> Duration {
        self.opts.timeouts.query + Duration::from_secs(1)
    }
}

pub type CheckResult = Result<Vec<Finding>, PgError>;

pub async fn q(c: &mut PgConn, ctx: &Ctx<'_>, sql: &str) -> Result<Rows, PgError> {
    c.query(sql, ctx.timeout()).await
}

/// Runs every PostgreSQL check the filter allows, in catalogue order.
pub async fn run(c: &mut PgConn, ctx: &Ctx<'_>, rec: &mut Recorder) {
    macro_rules! check {
        ($id:literal, $f:path) => {
            if rec.allows($id) {
                rec.say(concat!("checking ", $id));
                match $f(c, ctx).await {
                    Ok(fs) => rec.extend(fs),
                    Err(e) => rec.push(could_not_run($id, &e.to_string())),
                }
            }
        };
    }
    check!("pg.connections", activity::connections);
    check!("pg.idle_in_transaction", activity::idle_in_transaction);
    check!("pg.long_transactions", activity::long_transactions);
    check!("pg.lock_chains", activity::lock_chains);
    check!("pg.prepared_xacts", activity::prepared_xacts);
    check!("pg.timezone", time::timezone);
    check!("pg.timestamp_without_tz", time::timestamp_without_tz);
    check!("pg.sequence_exhaustion", sequences::exhaustion);
    check!("pg.sequence_cache", sequences::cache);
    check!("pg.jsonb_precision", jsonb::precision);
    check!("pg.timeouts_unset", settings::timeouts_unset);
    check!("pg.tcp_keepalives", settings::tcp_keepalives);
    check!("pg.tls", settings::tls);
    check!("pg.password_encryption", settings::password_encryption);
    check!("pg.wraparound", health::wraparound);
    check!("pg.replication", health::replication);
    check!("pg.deadlocks", health::deadlocks);
    check!("pg.cache_hit_ratio", health::cache_hit_ratio);
}

/// Quotes an identifier for SQL text built here (the simple protocol has no binds).
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
