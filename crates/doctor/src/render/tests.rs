use std::collections::BTreeMap;

use super::*;
use crate::model::{Counts, Finding, Phase, Report, Severity, Summary, TargetInfo};

fn phase(name: &str, start_ms: f64, duration_ms: f64, ok: bool) -> Phase {
    Phase {
        name: name.into(),
        start_ms,
        duration_ms,
        ok,
        detail: format!("{name} <detail>"),
        attrs: BTreeMap::new(),
    }
}

fn report() -> Report {
    let mut r = Report {
        schema_version: 1,
        tool: "t".into(),
        started_at: "now".into(),
        duration_ms: 100.0,
        target: TargetInfo {
            url: "postgres://u:***@h:5432/d".into(),
            engine: "postgres".into(),
            host: "h".into(),
            port: 5432,
            user: Some("u".into()),
            database: Some("d".into()),
            tls_mode: "prefer".into(),
        },
        phases: vec![
            phase("dns", 0.0, 10.0, true),
            phase("tcp", 10.0, 10.0, true),
            phase("auth", 20.0, 60.0, false),
            phase("checks", 80.0, 500.0, true),
        ],
        findings: vec![
            Finding::new("probe.auth", Severity::Critical, "auth <stalled>"),
            Finding::new("probe.dns", Severity::Ok, "fine"),
        ],
        summary: Summary {
            severity: Severity::Ok,
            exit_code: 0,
            counts: Counts::default(),
            slowest_phase: None,
            failed_phase: None,
        },
    };
    r.summarize();
    r
}

#[test]
fn waterfall_scales_connect_phases_only() {
    let r = report();
    let w = Waterfall::of(&r);
    assert_eq!(w.total_ms, 80.0, "the checks phase is not on the axis");
    let names: Vec<_> = w.bars.iter().map(|b| b.phase.name.as_str()).collect();
    assert_eq!(names, ["dns", "tcp", "auth"]);
    assert_eq!((w.bars[2].start, w.bars[2].width), (0.25, 0.75));
    assert!(w.bars[2].slowest && !w.bars[0].slowest);
}

#[test]
fn summary_names_the_failed_phase_and_exit_code() {
    let r = report();
    assert_eq!(r.summary.exit_code, 2);
    assert_eq!(r.summary.failed_phase.as_deref(), Some("auth"));
    assert_eq!(r.summary.slowest_phase.as_deref(), Some("auth"));
    assert_eq!((r.summary.counts.critical, r.summary.counts.ok), (1, 1));
}

#[test]
fn renderers_escape_and_colour_only_when_asked() {
    let r = report();
    let plain = text::render(&r, false);
    assert!(!plain.contains('\x1b') && plain.contains("failed at phase auth"));
    assert!(text::render(&r, true).contains("\x1b[1;31m"));
    let html = html::render(&r);
    assert!(html.contains("auth &lt;stalled&gt;") && !html.contains("auth <stalled>"));
    assert_eq!(html.matches("<rect class=\"bar\"").count(), 3);
    let md = markdown::render(&r);
    assert!(md.contains("### CRITICAL `probe.auth`"));
    let json: serde_json::Value = serde_json::from_str(&json::render(&r).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(
        json["findings"][0]["runbook"]["fix"]
            .as_str()
            .map(|s| !s.is_empty()),
        Some(true)
    );
}
