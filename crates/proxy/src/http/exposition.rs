//! The two text formats of `/metrics`. prometheus-client writes OpenMetrics, which Prometheus
//! asks for (`Accept: application/openmetrics-text`). Anything that does not ask for it
//! (curl, `promtool check metrics`, older scrapers) gets the Prometheus text format 0.0.4,
//! whose parser rejects OpenMetrics' exemplars and `# EOF`; this rewrites one into the other.

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// OpenMetrics text to Prometheus text 0.0.4: exemplars, `# UNIT` and `# EOF` go, and a
/// counter's HELP and TYPE take the `_total` name its samples have.
pub fn to_prometheus_text(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None if line.starts_with('#') => out.push_str(line),
            None => out.push_str(without_exemplar(line)),
        }
        out.push('\n');
    }
    out
}

/// A sample line up to its exemplar (` # {trace_id="..."} value`), if it has one. The
/// exemplar starts after the label set, which is skipped first: a label value may itself
/// contain ` # {`.
fn without_exemplar(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut i = 0;
    let (mut in_labels, mut in_quotes) = (false, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1, // an escaped character inside a value
            b'"' if in_labels => in_quotes = !in_quotes,
            b'{' if !in_quotes => in_labels = true,
            b'}' if !in_quotes => {
                i += 1;
                break;
            }
            b' ' if !in_labels => break,
            _ => {}
        }
        i += 1;
    }
    match line[i..].find(" # ") {
        Some(at) => &line[..i + at],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exemplars_eof_and_counter_names_are_rewritten() {
        let om = "\
# HELP x_errors Errors.
# TYPE x_errors counter
x_errors_total{code=\"a # {b\"} 3
# HELP x_seconds Time.
# TYPE x_seconds histogram
# UNIT x_seconds seconds
x_seconds_bucket{le=\"0.1\",db=\"q\\\" # {\"} 2 # {trace_id=\"abc\"} 0.05 1700000000.0
x_seconds_bucket{le=\"+Inf\"} 2
x_gauge 1.5 # {trace_id=\"abc\"} 1.0
# EOF
";
        let text = to_prometheus_text(om);
        assert_eq!(
            text,
            "\
# HELP x_errors_total Errors.
# TYPE x_errors_total counter
x_errors_total{code=\"a # {b\"} 3
# HELP x_seconds Time.
# TYPE x_seconds histogram
x_seconds_bucket{le=\"0.1\",db=\"q\\\" # {\"} 2
x_seconds_bucket{le=\"+Inf\"} 2
x_gauge 1.5
"
        );
    }

    #[test]
    fn prometheus_asks_for_openmetrics_curl_does_not() {
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prometheus)));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }
}
