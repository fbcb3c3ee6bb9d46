//! Markdown report, for pasting into an incident ticket or a pull request.

use std::fmt::Write;

use crate::model::{Report, Severity};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(out, "# dbwarden doctor: `{}`\n", report.target.url);
    let _ = writeln!(
        out,
        "**Verdict: {}** (exit {}) · {} critical, {} warning, {} info, {} ok · {} · {:.0} ms\n",
        s.severity.as_str().to_uppercase(),
        s.exit_code,
        s.counts.critical,
        s.counts.warning,
        s.counts.info,
        s.counts.ok,
        report.started_at,
        report.duration_ms
    );
    let _ = writeln!(
        out,
        "## Connection phases\n\n| phase | ms | ok | detail |\n|---|---:|:-:|---|"
    );
    for p in &report.phases {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {} | {} |",
            p.name,
            p.duration_ms,
            if p.ok { "✓" } else { "✗" },
            cell(&p.detail)
        );
    }
    let _ = writeln!(out, "\n## Findings\n");
    let mut sorted: Vec<_> = report.findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in sorted.iter().filter(|f| f.severity >= Severity::Warning) {
        let _ = writeln!(
            out,
            "### {} `{}`: {}\n",
            f.severity.as_str().to_uppercase(),
            f.id,
            f.title
        );
        for (k, v) in &f.evidence.values {
            let _ = writeln!(out, "- {k}: {}", v.to_string().trim_matches('"'));
        }
        for it in &f.evidence.items {
            let _ = writeln!(out, "- {it}");
        }
        if let Some(q) = &f.evidence.query {
            let _ = writeln!(out, "\nEvidence query:\n\n```sql\n{q}\n```");
        }
        let _ = writeln!(out, "\n**Why it matters.** {}\n", f.why);
        let _ = writeln!(
            out,
            "**Fix:**\n\n```\n{}\n```\n\n**Verify:**\n\n```\n{}\n```\n",
            f.runbook.fix, f.runbook.verify
        );
    }
    let rest: Vec<_> = sorted
        .iter()
        .filter(|f| f.severity < Severity::Warning)
        .collect();
    if !rest.is_empty() {
        let _ = writeln!(
            out,
            "### Info and passed checks\n\n| severity | id | result |\n|---|---|---|"
        );
        for f in rest {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} |",
                f.severity.as_str(),
                f.id,
                cell(&f.title)
            );
        }
    }
    out
}
