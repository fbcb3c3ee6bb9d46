//! Terminal report: the waterfall, then findings worst first. Colour only when asked
//! (the CLI asks when stdout is a terminal and NO_COLOR is unset).

use std::fmt::Write;

use super::Waterfall;
use crate::model::{Finding, Report, Severity};

const BAR_WIDTH: usize = 40;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn sev(&self, s: Severity) -> String {
        let label = match s {
            Severity::Critical => "CRIT",
            Severity::Warning => "WARN",
            Severity::Info => "INFO",
            Severity::Ok => " ok ",
        };
        self.paint(sev_code(s), label)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

fn sev_code(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "1;31",
        Severity::Warning => "1;33",
        Severity::Info => "36",
        Severity::Ok => "32",
    }
}

pub fn render(report: &Report, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", st.bold("dbwarden doctor"), report.target.url);
    let _ = writeln!(
        out,
        "{}",
        st.dim(&format!(
            "{}  {}  schema v{}",
            report.started_at, report.tool, report.schema_version
        ))
    );
    out.push('\n');
    waterfall(&mut out, report, &st);
    out.push('\n');
    findings(&mut out, report, &st);
    verdict(&mut out, report, &st);
    out
}

fn waterfall(out: &mut String, report: &Report, st: &Style) {
    let w = Waterfall::of(report);
    let _ = writeln!(
        out,
        "{} (total {:.1} ms)",
        st.bold("Connection waterfall"),
        w.total_ms
    );
    for b in &w.bars {
        let start = (b.start * BAR_WIDTH as f64).round() as usize;
        let len = ((b.width * BAR_WIDTH as f64).round() as usize).max(1);
        let start = start.min(BAR_WIDTH - 1);
        let len = len.min(BAR_WIDTH - start);
        let bar = "█".repeat(len);
        let code = if !b.phase.ok {
            "31"
        } else if b.slowest {
            "33"
        } else {
            "34"
        };
        let pad_after = BAR_WIDTH - start - len;
        let marker = if !b.phase.ok {
            " ✗ failed"
        } else if b.slowest {
            " ◀ slowest"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<8} {:>9.1} ms │{}{}{}│{}  {}",
            b.phase.name,
            b.phase.duration_ms,
            " ".repeat(start),
            st.paint(code, &bar),
            " ".repeat(pad_after),
            st.paint(code, marker),
            b.phase.detail
        );
    }
    for p in report
        .phases
        .iter()
        .filter(|p| p.name == "round_trips" || p.name == "checks")
    {
        let _ = writeln!(
            out,
            "  {:<8} {:>9.1} ms  {}",
            short(&p.name),
            p.duration_ms,
            p.detail
        );
    }
}

fn short(name: &str) -> &str {
    match name {
        "round_trips" => "rtt",
        other => other,
    }
}

fn findings(out: &mut String, report: &Report, st: &Style) {
    let c = &report.summary.counts;
    let _ = writeln!(
        out,
        "{} ({} critical, {} warning, {} info, {} ok)",
        st.bold("Findings"),
        c.critical,
        c.warning,
        c.info,
        c.ok
    );
    let mut sorted: Vec<&Finding> = report.findings.iter().collect();
    // Worst first; the stable sort keeps catalogue order within a severity.
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in sorted {
        let _ = writeln!(out, "  {} {:<26} {}", st.sev(f.severity), f.id, f.title);
        if f.severity < Severity::Warning {
            continue;
        }
        let values: Vec<String> = f
            .evidence
            .values
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
            .collect();
        if !values.is_empty() {
            let _ = writeln!(out, "       {} {}", st.dim("evidence"), values.join(" "));
        }
        for it in &f.evidence.items {
            let _ = writeln!(out, "         · {it}");
        }
        if let Some(q) = &f.evidence.query {
            let _ = writeln!(out, "       {} {}", st.dim("query   "), one_line(q, 160));
        }
        let _ = writeln!(out, "       {} {}", st.dim("why     "), f.why);
        let _ = writeln!(out, "       {} {}", st.dim("fix     "), f.runbook.fix);
        let _ = writeln!(out, "       {} {}", st.dim("verify  "), f.runbook.verify);
    }
}

fn one_line(s: &str, max: usize) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

fn verdict(out: &mut String, report: &Report, st: &Style) {
    let s = &report.summary;
    let mut line = format!(
        "\nVerdict: {} (exit {})",
        st.paint(sev_code(s.severity), &s.severity.as_str().to_uppercase()),
        s.exit_code
    );
    if let Some(p) = &s.failed_phase {
        let _ = write!(line, "; failed at phase {}", st.bold(p));
    } else if let Some(p) = &s.slowest_phase {
        let _ = write!(line, "; slowest phase {p}");
    }
    let _ = write!(line, "; {:.0} ms in all", report.duration_ms);
    let _ = writeln!(out, "{line}");
}
