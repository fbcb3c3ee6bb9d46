//! `[tracing]`: OpenTelemetry spans exported over OTLP.

use serde::{Deserialize, Serialize};

/// The `[tracing]` section. Nothing is exported unless `otlp_endpoint` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// Base URL of an OTLP/HTTP (protobuf) receiver, such as an OpenTelemetry Collector's
    /// port 4318: `"http://127.0.0.1:4318"`. `/v1/traces` is appended unless the URL already
    /// ends with it. Only `http://` (run a collector or agent next to the proxy for TLS).
    /// Absent: no spans are made or exported.
    /// Default: none. Reload: no (needs a restart).
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    /// Default: `"dbwarden"`. Reload: no (needs a restart).
    pub service_name: String,
    /// Share of transactions *without* a `traceparent` that still get a span (as the root of
    /// a new trace), from `0.0` to `1.0`. Transactions with a `traceparent` follow its
    /// sampled flag.
    /// Default: `0.0`. Unit: ratio. Reload: no (needs a restart).
    pub sampling_ratio: f64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: None,
            service_name: "dbwarden".to_owned(),
            sampling_ratio: 0.0,
        }
    }
}

impl TracingConfig {
    /// The URL spans are posted to, when exporting is on.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.as_deref()?.trim_end_matches('/');
        Some(if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        })
    }

    /// Adds every problem with this section to `problems` (see `Config::validate`).
    pub(crate) fn check(&self, problems: &mut Vec<String>) {
        if let Some(endpoint) = &self.otlp_endpoint {
            match url::Url::parse(endpoint) {
                Ok(u) if u.scheme() == "http" && u.host_str().is_some() => {}
                Ok(u) if u.scheme() == "https" => problems.push(format!(
                    "tracing.otlp_endpoint: `{endpoint}`: https is not supported; export to a \
                     collector or agent next to the proxy over http://"
                )),
                _ => problems.push(format!(
                    "tracing.otlp_endpoint: `{endpoint}` is not an http:// URL \
                     (for example \"http://127.0.0.1:4318\")"
                )),
            }
        }
        if self.service_name.trim().is_empty() {
            problems.push("tracing.service_name: must not be empty".to_owned());
        }
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            problems.push(format!(
                "tracing.sampling_ratio: {} is not between 0.0 and 1.0",
                self.sampling_ratio
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(t: &TracingConfig) -> Vec<String> {
        let mut p = Vec::new();
        t.check(&mut p);
        p
    }

    #[test]
    fn endpoint_gets_the_traces_path_once() {
        let mut t = TracingConfig::default();
        assert_eq!(t.traces_url(), None);
        t.otlp_endpoint = Some("http://collector:4318".into());
        assert_eq!(
            t.traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        t.otlp_endpoint = Some("http://collector:4318/v1/traces/".into());
        assert_eq!(
            t.traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert!(problems(&t).is_empty());
    }

    #[test]
    fn bad_values_are_named() {
        let t = TracingConfig {
            otlp_endpoint: Some("https://collector:4318".into()),
            service_name: " ".into(),
            sampling_ratio: 1.5,
        };
        let p = problems(&t);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("https is not supported"), "{p:?}");
        assert!(p[1].contains("service_name"), "{p:?}");
        assert!(p[2].contains("1.5"), "{p:?}");
        let t = TracingConfig {
            otlp_endpoint: Some("collector:4318".into()),
            ..TracingConfig::default()
        };
        assert!(problems(&t)[0].contains("not an http:// URL"));
    }
}
