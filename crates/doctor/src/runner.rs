//! One run: probe the target layer by layer, then run its engine's checklist on the
//! same connection.

use std::time::SystemTime;

use crate::checks;
use crate::model::{Counts, Report, Severity, Summary, SCHEMA_VERSION};
use crate::options::Options;
use crate::probe::{self, Recorder};
use crate::target::{Engine, Target};

/// Diagnoses `target`. Never fails: what goes wrong on the target is in the report.
pub async fn diagnose(target: &Target, opts: &Options) -> Report {
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut rec = Recorder::new(opts.filter.clone(), opts.progress.clone());
    match target.engine {
        Engine::Postgres => postgres(target, opts, &mut rec).await,
        Engine::Mysql => probe::mysql::run(target, opts, &mut rec).await,
        Engine::Redis => probe::redis::run(target, opts, &mut rec).await,
    }
    let duration_ms = rec.total_ms();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool: format!("dbwarden-doctor {}", env!("CARGO_PKG_VERSION")),
        started_at,
        duration_ms,
        target: target.info(),
        phases: rec.phases,
        findings: rec.findings,
        summary: Summary {
            severity: Severity::Ok,
            exit_code: 0,
            counts: Counts::default(),
            slowest_phase: None,
            failed_phase: None,
        },
    };
    report.summarize();
    report
}

async fn postgres(target: &Target, opts: &Options, rec: &mut Recorder) {
    let Some(mut conn) = probe::pg::connect(target, opts, rec).await else {
        return;
    };
    let loopback = conn.peer.is_some_and(|a| a.ip().is_loopback());
    let ctx = checks::pg::Ctx {
        opts,
        target,
        loopback,
    };
    if checks_allowed(rec, "pg") {
        let t = rec.begin("checks", "running PostgreSQL checks");
        checks::pg::run(&mut conn, &ctx, rec).await;
        rec.end(t, true, "PostgreSQL checklist", Default::default());
    }
    conn.close().await;
}

/// Whether any check of `group` passes the filter (so the timed phase is skipped
/// entirely for `--only probe`).
pub(crate) fn checks_allowed(rec: &Recorder, group: &str) -> bool {
    crate::catalogue::all()
        .filter(|c| c.group() == group)
        .any(|c| rec.allows(c.id))
}
