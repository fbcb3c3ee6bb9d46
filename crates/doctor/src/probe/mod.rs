//! The layered connection probe: DNS, TCP, TLS, startup and authentication, first
//! query, round trips. Each phase is timed on its own and bounded by its own timeout;
//! a slow or failed phase becomes the finding with that phase's id.

pub(crate) mod dns;
pub(crate) mod mysql;
pub(crate) mod pg;
pub(crate) mod redis;
pub(crate) mod stats;
pub(crate) mod tcp;
pub(crate) mod tls;

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use crate::model::{Finding, Phase, Severity};
use crate::options::{Filter, Progress};
use crate::thresholds::Thresholds;

/// A byte stream the probe speaks a protocol over: plain TCP or TLS.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Collects phases and findings as the run goes, with times relative to its start.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    filter: Filter,
    progress: Progress,
    pub phases: Vec<Phase>,
    pub findings: Vec<Finding>,
}

/// A phase that has started and not yet been recorded.
#[must_use]
pub struct Timer {
    name: &'static str,
    started: Instant,
}

impl Timer {
    pub fn elapsed_ms(&self) -> f64 {
        ms(self.started.elapsed())
    }
}

pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl Recorder {
    pub fn new(filter: Filter, progress: Progress) -> Recorder {
        Recorder {
            start: Instant::now(),
            filter,
            progress,
            phases: Vec::new(),
            findings: Vec::new(),
        }
    }

    pub fn begin(&self, name: &'static str, what: &str) -> Timer {
        self.progress.say(what);
        Timer {
            name,
            started: Instant::now(),
        }
    }

    pub fn say(&self, what: &str) {
        self.progress.say(what);
    }

    /// Records a finished phase and returns its duration in milliseconds.
    pub fn end(
        &mut self,
        t: Timer,
        ok: bool,
        detail: impl Into<String>,
        attrs: BTreeMap<String, Value>,
    ) -> f64 {
        self.end_with(t, None, ok, detail, attrs)
    }

    /// Like [`end`](Self::end) but with a duration measured by the caller, for phases
    /// whose wall time includes work that is not theirs (a password prompt).
    pub fn end_with(
        &mut self,
        t: Timer,
        duration_ms: Option<f64>,
        ok: bool,
        detail: impl Into<String>,
        attrs: BTreeMap<String, Value>,
    ) -> f64 {
        let duration_ms = duration_ms.unwrap_or_else(|| t.elapsed_ms());
        self.phases.push(Phase {
            name: t.name.to_string(),
            start_ms: ms(t.started.duration_since(self.start)),
            duration_ms,
            ok,
            detail: detail.into(),
            attrs,
        });
        duration_ms
    }

    pub fn allows(&self, id: &str) -> bool {
        self.filter.allows(id)
    }

    /// Keeps a finding the filter allows. A failed probe phase is kept regardless:
    /// without it a run with `--only pg.connections` against a dead server would
    /// report nothing and exit 0.
    pub fn push(&mut self, f: Finding) {
        let failed_probe = f.group() == "probe" && f.severity == Severity::Critical;
        if failed_probe || self.filter.allows(&f.id) {
            self.findings.push(f);
        }
    }

    pub fn extend(&mut self, fs: Vec<Finding>) {
        for f in fs {
            self.push(f);
        }
    }

    pub fn total_ms(&self) -> f64 {
        ms(self.start.elapsed())
    }

    /// The finding for a phase that succeeded: ok, or a warning when slower than its
    /// threshold.
    pub fn timed(&mut self, id: &str, label: &str, took_ms: f64, th: &Thresholds, detail: &str) {
        let key = format!("{id}.warn_ms");
        let limit = th.get(&key);
        let f = if took_ms > limit {
            Finding::new(
                id,
                Severity::Warning,
                format!("{label} took {took_ms:.1} ms (threshold {limit} ms)"),
            )
        } else {
            Finding::new(id, Severity::Ok, format!("{label} {took_ms:.1} ms"))
        };
        let f = f.value("duration_ms", took_ms).value("threshold_ms", limit);
        let f = if detail.is_empty() {
            f
        } else {
            f.items([detail.to_string()])
        };
        self.push(f);
    }

    /// The finding for a phase that failed: critical, with the error as evidence.
    pub fn failed(&mut self, id: &str, title: String, error: &str, took_ms: f64) {
        self.push(
            Finding::new(id, Severity::Critical, title)
                .value("error", error)
                .value("duration_ms", took_ms),
        );
    }
}

/// Small helper to build phase attributes.
pub fn attrs<const N: usize>(kv: [(&str, Value); N]) -> BTreeMap<String, Value> {
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtered_runs_still_report_a_failed_connection() {
        let filter = Filter {
            only: vec!["pg.connections".into()],
            skip: vec![],
        };
        let mut rec = Recorder::new(filter, Progress::default());
        rec.push(Finding::new("probe.dns", Severity::Ok, "fine"));
        rec.failed("probe.tcp", "refused".into(), "refused", 1.0);
        rec.push(Finding::new("pg.tls", Severity::Warning, "filtered out"));
        rec.push(Finding::new("pg.connections", Severity::Ok, "kept"));
        let ids: Vec<_> = rec.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["probe.tcp", "pg.connections"]);
    }
}
