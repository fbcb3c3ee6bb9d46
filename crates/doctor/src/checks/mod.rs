//! The checklist, one module per engine and one small file per group of checks.
//! Every check is read-only, bounded (LIMIT, sampling, SCAN COUNT), and runs on the
//! probe's single connection under its statement timeout.

pub mod mysql;
pub mod pg;
pub mod redis;

use crate::model::{Finding, Severity};

/// A check that could not run (permissions, old server version) is reported, not
/// hidden, but it does not change the verdict.
pub fn could_not_run(id: &str, error: &str) -> Finding {
    Finding::new(id, Severity::Info, format!("check could not run: {error}")).value("error", error)
}

/// Formats seconds for titles: `42s`, `12m`, `3.5h`, `2.1d`.
pub fn age(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.0}s")
    } else if secs < 7200.0 {
        format!("{:.0}m", secs / 60.0)
    } else if secs < 172_800.0 {
        format!("{:.1}h", secs / 3600.0)
    } else {
        format!("{:.1}d", secs / 86400.0)
    }
}

/// Severity of a value against a warning and a critical limit (higher is worse).
pub fn grade(value: f64, warn: f64, crit: f64) -> Severity {
    if value >= crit {
        Severity::Critical
    } else if value >= warn {
        Severity::Warning
    } else {
        Severity::Ok
    }
}
