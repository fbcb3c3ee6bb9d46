//! One self-contained HTML file: inline CSS, the waterfall as an inline SVG chart,
//! no scripts and no external resources, so it can be attached to a ticket.

use std::fmt::Write;

use super::Waterfall;
use crate::model::{Finding, Report, Severity};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d2330;padding:0 1em}\
h1{font-size:1.4em}h1 code{font-size:.9em}.verdict{padding:.6em 1em;border-radius:6px;font-weight:600}\
.critical{background:#fde2e1;color:#8a1c17}.warning{background:#fff3cd;color:#7a5200}.info{background:#e1f0fb;color:#114a70}.ok{background:#e3f6e8;color:#1d6b33}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e4e7ec;padding:.35em .5em;text-align:left;vertical-align:top}\
.finding{border:1px solid #e4e7ec;border-radius:6px;margin:1em 0;padding:.6em 1em}.sev{font-weight:700;padding:0 .4em;border-radius:4px}\
pre{background:#f5f6f8;padding:.6em;overflow-x:auto;white-space:pre-wrap}svg text{font:12px system-ui,sans-serif}";

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>dbwarden doctor: {}</title><style>{CSS}</style></head><body>\n",
        esc(&report.target.url)
    );
    let _ = writeln!(
        out,
        "<h1>dbwarden doctor <code>{}</code></h1>",
        esc(&report.target.url)
    );
    let _ = writeln!(
        out,
        "<p class=\"verdict {}\">Verdict: {} (exit {}) — {} critical, {} warning, {} info, {} ok — {} — {:.0} ms</p>",
        s.severity.as_str(),
        s.severity.as_str().to_uppercase(),
        s.exit_code,
        s.counts.critical,
        s.counts.warning,
        s.counts.info,
        s.counts.ok,
        esc(&report.started_at),
        report.duration_ms
    );
    let _ = writeln!(out, "<h2>Connection waterfall</h2>");
    out.push_str(&svg(report));
    phases_table(&mut out, report);
    let _ = writeln!(out, "<h2>Findings</h2>");
    let mut sorted: Vec<&Finding> = report.findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in &sorted {
        finding(&mut out, f);
    }
    let _ = writeln!(
        out,
        "<footer><small>{} · schema v{}</small></footer></body></html>",
        esc(&report.tool),
        report.schema_version
    );
    out
}

/// The waterfall chart. Each bar is a `<rect class="bar">` with `data-phase`, so tests
/// and scripts can find it.
pub fn svg(report: &Report) -> String {
    let w = Waterfall::of(report);
    let (label_w, chart_w, row_h, top) = (70.0, 760.0, 30.0, 24.0);
    let height = top + row_h * w.bars.len().max(1) as f64 + 10.0;
    let width = label_w + chart_w + 200.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg id=\"waterfall\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"connection phases waterfall\">"
    );
    // Axis with five ticks.
    for i in 0..=4 {
        let x = label_w + chart_w * i as f64 / 4.0;
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e4e7ec\"/><text x=\"{x:.1}\" y=\"14\" text-anchor=\"middle\" fill=\"#667085\">{:.1} ms</text>",
            top - 4.0,
            height - 6.0,
            w.total_ms * i as f64 / 4.0
        );
    }
    for (i, b) in w.bars.iter().enumerate() {
        let y = top + row_h * i as f64;
        let x = label_w + b.start * chart_w;
        let bw = (b.width * chart_w).max(2.0);
        let fill = if !b.phase.ok {
            "#d92d20"
        } else if b.slowest {
            "#f79009"
        } else {
            "#2e90fa"
        };
        let note = if !b.phase.ok {
            " failed"
        } else if b.slowest {
            " slowest"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect class=\"bar\" data-phase=\"{}\" data-ms=\"{:.3}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{fill}\"><title>{}: {:.1} ms — {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#344054\">{:.1} ms{note}</text>",
            y + row_h * 0.6,
            esc(&b.phase.name),
            esc(&b.phase.name),
            b.phase.duration_ms,
            y + 4.0,
            row_h - 10.0,
            esc(&b.phase.name),
            b.phase.duration_ms,
            esc(&b.phase.detail),
            (x + bw + 6.0).min(label_w + chart_w + 10.0),
            y + row_h * 0.6,
            b.phase.duration_ms
        );
    }
    out.push_str("</svg>\n");
    out
}

fn phases_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<table><tr><th>phase</th><th>ms</th><th>ok</th><th>detail</th></tr>"
    );
    for p in &report.phases {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            p.duration_ms,
            if p.ok { "✓" } else { "✗" },
            esc(&p.detail)
        );
    }
    out.push_str("</table>\n");
}

fn finding(out: &mut String, f: &Finding) {
    let sev = f.severity.as_str();
    let _ = writeln!(
        out,
        "<div class=\"finding\" id=\"{}\"><span class=\"sev {sev}\">{}</span> <code>{}</code> {}",
        esc(&f.id),
        sev.to_uppercase(),
        esc(&f.id),
        esc(&f.title)
    );
    if f.severity >= Severity::Warning {
        let mut ev = String::new();
        for (k, v) in &f.evidence.values {
            let _ = write!(
                ev,
                "<li>{}: {}</li>",
                esc(k),
                esc(v.to_string().trim_matches('"'))
            );
        }
        for it in &f.evidence.items {
            let _ = write!(ev, "<li>{}</li>", esc(it));
        }
        let _ = writeln!(out, "<ul>{ev}</ul>");
        if let Some(q) = &f.evidence.query {
            let _ = writeln!(out, "<p>Evidence query:</p><pre>{}</pre>", esc(q));
        }
        let _ = writeln!(
            out,
            "<p><b>Why it matters.</b> {}</p><p><b>Fix</b></p><pre>{}</pre><p><b>Verify</b></p><pre>{}</pre>",
            esc(&f.why),
            esc(&f.runbook.fix),
            esc(&f.runbook.verify)
        );
    }
    out.push_str("</div>\n");
}
