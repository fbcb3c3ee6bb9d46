//! The report as data: phases of the connection probe, findings of the checklist.
//!
//! Everything here is serialized as the versioned JSON document described in
//! `docs/doctor.md`; renaming a field is a schema change (bump [`SCHEMA_VERSION`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalogue;

/// Version of the JSON report schema. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Ordered so that `max()` over findings gives the overall verdict.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// Nagios-style exit code for a verdict.
    pub fn exit_code(self) -> i32 {
        match self {
            Severity::Ok | Severity::Info => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What was measured, and how: the numbers plus the query that produced them, so a
/// reader can re-run it by hand.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    /// Named numbers or strings (`"used": 97`, `"max": 100`).
    pub values: BTreeMap<String, Value>,
    /// Individual offenders (sessions, columns, keys), bounded in length.
    pub items: Vec<String>,
    /// The statement or command that produced the numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Runbook {
    /// SQL or configuration lines that fix the problem.
    pub fix: String,
    /// A query or command that shows the fix took effect.
    pub verify: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Finding {
    /// Stable id (`pg.prepared_xacts`); scripts use it with `--skip`.
    pub id: String,
    pub severity: Severity,
    /// One line saying what was found, with the key number in it.
    pub title: String,
    pub evidence: Evidence,
    pub why: String,
    pub runbook: Runbook,
}

/// Most checks list offenders; a runaway list would drown the report.
const MAX_ITEMS: usize = 20;

impl Finding {
    /// A finding whose explanation and runbook come from the catalogue entry `id`.
    pub fn new(id: &str, severity: Severity, title: impl Into<String>) -> Finding {
        let (why, runbook) = match catalogue::find(id) {
            Some(c) => (
                c.why.to_string(),
                Runbook {
                    fix: c.fix.to_string(),
                    verify: c.verify.to_string(),
                },
            ),
            None => (String::new(), Runbook::default()),
        };
        Finding {
            id: id.to_string(),
            severity,
            title: title.into(),
            evidence: Evidence::default(),
            why,
            runbook,
        }
    }

    pub fn value(mut self, key: &str, v: impl Into<Value>) -> Finding {
        let v = v.into();
        // Counts computed as f64 read better as integers ("3", not "3.0").
        let v = match v.as_f64() {
            Some(f) if v.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => v,
        };
        self.evidence.values.insert(key.to_string(), v);
        self
    }

    pub fn query(mut self, q: &str) -> Finding {
        self.evidence.query = Some(q.trim().to_string());
        self
    }

    pub fn items<I: IntoIterator<Item = String>>(mut self, items: I) -> Finding {
        let mut n = 0usize;
        for it in items {
            if self.evidence.items.len() < MAX_ITEMS {
                self.evidence.items.push(it);
            }
            n += 1;
        }
        if n > MAX_ITEMS {
            self.evidence
                .items
                .push(format!("... and {} more", n - MAX_ITEMS));
        }
        self
    }

    /// The group is the id up to the first dot: `pg`, `mysql`, `redis`, `probe`.
    pub fn group(&self) -> &str {
        self.id.split('.').next().unwrap_or("")
    }
}

/// One timed step of the connection probe, drawn as one bar of the waterfall.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Phase {
    /// `dns`, `tcp`, `greeting` (MySQL), `tls`, `auth`, `query`, `round_trips`, `checks`.
    pub name: String,
    /// Offset from the start of the run, so the waterfall can be drawn to scale.
    pub start_ms: f64,
    pub duration_ms: f64,
    pub ok: bool,
    /// One human line: addresses, TLS version and cipher, auth method, error.
    pub detail: String,
    /// Structured details (per-address timings, certificate chain, latency percentiles).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub attrs: BTreeMap<String, Value>,
}

/// The target as shown in reports: never carries the password.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TargetInfo {
    pub url: String,
    pub engine: String,
    pub host: String,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub tls_mode: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub ok: usize,
    pub info: usize,
    pub warning: usize,
    pub critical: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Summary {
    /// Worst severity among the findings.
    pub severity: Severity,
    pub exit_code: i32,
    pub counts: Counts,
    /// The probe phase that took longest or failed first: where to look.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slowest_phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    pub tool: String,
    pub started_at: String,
    pub duration_ms: f64,
    pub target: TargetInfo,
    pub phases: Vec<Phase>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

impl Report {
    pub fn finding(&self, id: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }

    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// Recomputes the summary from phases and findings.
    pub fn summarize(&mut self) {
        let mut counts = Counts::default();
        for f in &self.findings {
            match f.severity {
                Severity::Ok => counts.ok += 1,
                Severity::Info => counts.info += 1,
                Severity::Warning => counts.warning += 1,
                Severity::Critical => counts.critical += 1,
            }
        }
        let severity = self
            .findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok);
        let connect = |p: &&Phase| p.name != "checks" && p.name != "round_trips";
        let slowest_phase = self
            .phases
            .iter()
            .filter(connect)
            .max_by(|a, b| a.duration_ms.total_cmp(&b.duration_ms))
            .map(|p| p.name.clone());
        let failed_phase = self.phases.iter().find(|p| !p.ok).map(|p| p.name.clone());
        self.summary = Summary {
            severity,
            exit_code: severity.exit_code(),
            counts,
            slowest_phase,
            failed_phase,
        };
    }
}
