//! `[log]`: what the proxy writes to stderr, and the slow-query log.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The `[log]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Line format: `"human"` or `"json"`.
    /// Default: `"human"`. Reload: no (needs a restart).
    pub format: LogFormat,
    /// Which lines are written: a level (`"error"`, `"warn"`, `"info"`, `"debug"`,
    /// `"trace"`, `"off"`) or a comma-separated list of `target=level` directives
    /// (`"info,dbwarden_proxy=debug"`). The environment variable `DBWARDEN_LOG`, when set,
    /// wins over this.
    /// Default: `"info"`. Reload: yes.
    pub level: String,
    /// A query (or transaction) that takes at least this long logs one line (level WARN)
    /// with its duration, pool, server pid, SQLSTATE and trace id; `"0s"` = off.
    /// Default: `"0s"`. Unit: duration. Reload: yes (new clients).
    #[serde(with = "humantime_serde")]
    pub slow_query_threshold: Duration,
    /// Whether slow-query lines (and transaction spans) carry the first 200 characters of
    /// the query text. Off by default because query text can hold secrets.
    /// Default: `false`. Reload: yes (new clients).
    pub log_query_text: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".to_owned(),
            slow_query_threshold: Duration::ZERO,
            log_query_text: false,
        }
    }
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

impl LogConfig {
    /// Adds every problem with this section to `problems` (see `Config::validate`).
    pub(crate) fn check(&self, problems: &mut Vec<String>) {
        if let Err(why) = check_level(&self.level) {
            problems.push(format!("log.level: `{}`: {why}", self.level));
        }
    }
}

/// A light check of the filter syntax (the logging library parses it in full): a typo such
/// as `"inf"` is an error here rather than a proxy that silently logs nothing. A directive
/// is `target[span{field=value}]=level`, every part optional; its level is what follows the
/// last `=` after any `]`.
fn check_level(spec: &str) -> Result<(), String> {
    let expected = || format!("expected one of {} (or target=level)", LEVELS.join(", "));
    if spec.trim().is_empty() {
        return Err(format!("empty; {}", expected()));
    }
    let known = |l: &str| LEVELS.iter().any(|k| k.eq_ignore_ascii_case(l.trim()));
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let after_spans = directive
            .rfind(']')
            .map_or(directive, |at| &directive[at..]);
        match after_spans.rfind('=') {
            Some(at) if !known(&after_spans[at + 1..]) => {
                return Err(format!(
                    "unknown level `{}` in `{directive}`; {}",
                    &after_spans[at + 1..],
                    expected()
                ));
            }
            Some(_) => {}
            // A bare word is a level, or a target (all its levels). Only names that look
            // like module paths count as targets, so that `"inf"` is caught.
            None if known(directive) || directive.contains(['_', '[', ':']) => {}
            None => return Err(format!("unknown level `{directive}`; {}", expected())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_level;

    #[test]
    fn levels_and_directives() {
        for ok in [
            "info",
            "WARN",
            "off",
            "info,dbwarden_proxy=debug",
            "dbwarden_proxy::txn=trace",
            "dbwarden_proxy",
            "info,dbwarden_proxy[client{client.id=3}]=debug",
        ] {
            assert_eq!(check_level(ok), Ok(()), "{ok}");
        }
        for bad in ["", "inf", "info,dbwarden_proxy=verbose", "loud"] {
            assert!(check_level(bad).is_err(), "{bad}");
        }
    }
}
