//! One trace id, sent by the client in a sqlcommenter `traceparent`, shows up in the log
//! line, in the exported span (as its parent) and in the latency histograms' exemplars.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use dbwarden_config::PoolMode;
use dbwarden_proxy::trace::log::LogLayer;
use dbwarden_testkit::OtlpReceiver;
use parking_lot::Mutex;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Bound for the export to arrive; only reached when it does not.
const PATIENCE: Duration = Duration::from_secs(20);

/// The proxy's JSON log lines, captured in memory by the same layer the binary uses.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn json_lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

fn log() -> Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        let writer = log.clone();
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(LogLayer::new(true, move || writer.clone()))
            .init();
        log
    })
    .clone()
}

fn traceparent(trace: u128, span: u64, flags: u8) -> String {
    format!("/*traceparent='00-{trace:032x}-{span:016x}-{flags:02x}'*/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_id_in_the_log_the_span_and_the_exemplar() {
    let log = log();
    let pg = cluster_with_db("obs").await;
    for (i, mode) in [PoolMode::Transaction, PoolMode::Session]
        .into_iter()
        .enumerate()
    {
        let i = i as u128;
        let (trace, span) = (0x4bf92f3577b34da6a3ce929d0e0e4730 + i, 0x00f067aa0ba902b7);
        let failing = 0x5bf92f3577b34da6a3ce929d0e0e4730 + i;
        let unsampled = 0x6bf92f3577b34da6a3ce929d0e0e4730 + i;
        let pinned = 0x7bf92f3577b34da6a3ce929d0e0e4730 + i;
        let otlp = OtlpReceiver::start().await.unwrap();
        let mut config = upstream_config(&pg, 2);
        config.pool.mode = mode;
        config.log.slow_query_threshold = Duration::from_millis(20);
        config.tracing.otlp_endpoint = Some(otlp.endpoint());
        config.tracing.service_name = "dbwarden-test".into();
        let proxy = TestProxy::start(config).await;
        let c = connect(&proxy.conn_str(USER, PASSWORD, "obs"))
            .await
            .unwrap();

        // A slow query that carries a traceparent, as sqlcommenter appends it.
        let sql = format!(
            "SELECT pg_backend_pid() FROM pg_sleep(0.05) {}",
            traceparent(trace, span, 1)
        );
        let pid: i64 = value(&c, &sql).await.parse().unwrap();
        // A failing one, an unsampled one, and one with no traceparent at all.
        let err = c
            .simple_query(&format!("SELECT 1/0 {}", traceparent(failing, span, 1)))
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "22012");
        value(&c, &format!("SELECT 2 {}", traceparent(unsampled, span, 0))).await;
        value(&c, "SELECT 3").await;
        // A line logged about the client (a pin, in transaction mode) while its
        // transaction carries a trace id.
        if mode == PoolMode::Transaction {
            c.batch_execute(&format!(
                "LISTEN obs_channel {}",
                traceparent(pinned, span, 1)
            ))
            .await
            .unwrap();
        }

        // The exemplar: the histograms as /metrics shows them (OpenMetrics text).
        let mut metrics = String::new();
        prometheus_client::encoding::text::encode(
            &mut metrics,
            &proxy.proxy.stats().registry.lock(),
        )
        .unwrap();
        let hex = format!("{trace:032x}");
        let exemplar = metrics
            .lines()
            .find(|l| {
                l.starts_with("dbwarden_pool_query_duration_seconds_bucket") && l.contains(&hex)
            })
            .unwrap_or_else(|| panic!("{mode:?}: no exemplar with {hex}:\n{metrics}"));
        assert!(
            exemplar.contains(&format!("# {{trace_id=\"{hex}\"}}")),
            "{exemplar}"
        );
        assert!(
            metrics.lines().any(|l| l
                .starts_with("dbwarden_pool_transaction_duration_seconds_bucket")
                && l.contains(&hex)),
            "{mode:?}: no transaction exemplar:\n{metrics}"
        );

        // The log line: the slow query, with the client's fields and the trace id.
        let lines = log.json_lines();
        let slow = lines
            .iter()
            .find(|l| l["message"] == "slow query" && l["trace_id"] == hex.as_str())
            .unwrap_or_else(|| panic!("{mode:?}: no slow-query line with {hex}: {lines:#?}"));
        assert_eq!(slow["level"], "WARN");
        assert_eq!(slow["pool"], "obs/app");
        assert_eq!(slow["server.pid"], pid);
        assert!(slow["duration_ms"].as_f64().unwrap() >= 50.0, "{slow}");
        assert!(slow["client.id"].as_u64().is_some(), "{slow}");
        assert!(
            slow.get("query").is_none(),
            "query text is off by default: {slow}"
        );

        drop(c);
        proxy.shutdown().await; // exports what is queued

        if mode == PoolMode::Transaction {
            // Logged when the pinned session ends (the relay goes on until then), still
            // carrying the trace id of the transaction that pinned it: the client sent only
            // its Terminate after it.
            let lines = log.json_lines();
            let pin = lines
                .iter()
                .find(|l| l["reason"].is_string() && l["trace_id"] == format!("{pinned:032x}"))
                .unwrap_or_else(|| panic!("no pin line with the trace id: {lines:#?}"));
            assert!(pin["server.pid"].as_i64().is_some(), "{pin}");
            assert_eq!(pin["pool"], "obs/app");
        }

        // The span: its parent is the client's span, with the transaction's facts.
        let got = otlp
            .wait_for(PATIENCE, |s| s.trace_id() == trace)
            .await
            .unwrap_or_else(|| {
                panic!("{mode:?}: no span with trace id {hex}: {:#?}", otlp.spans())
            });
        assert_eq!(got.parent_span_id(), span);
        assert_eq!(got.span.name, "transaction");
        assert_eq!(got.service_name.as_deref(), Some("dbwarden-test"));
        assert_eq!(got.int_attr("dbwarden.server.pid"), Some(pid));
        assert_eq!(got.str_attr("db.namespace"), Some("obs"));
        assert_eq!(got.str_attr("dbwarden.pool.user"), Some(USER));
        assert!(got
            .f64_attr("dbwarden.checkout.wait")
            .is_some_and(|w| w >= 0.0));
        assert!(got
            .int_attr("dbwarden.bytes.received")
            .is_some_and(|n| n > 0));
        assert!(got.int_attr("dbwarden.bytes.sent").is_some_and(|n| n > 0));
        assert_eq!(got.str_attr("db.response.status_code"), None);
        let took = got.span.end_time_unix_nano - got.span.start_time_unix_nano;
        assert!(took >= 50_000_000, "{mode:?}: span of {took} ns");

        let failed = otlp
            .wait_for(PATIENCE, |s| s.trace_id() == failing)
            .await
            .expect("the failed transaction's span");
        assert_eq!(failed.str_attr("db.response.status_code"), Some("22012"));
        let status = failed.span.status.clone().expect("a status");
        assert_eq!(status.code, 2, "error status: {status:?}");

        let spans = otlp.spans();
        assert!(
            !spans.iter().any(|s| s.trace_id() == unsampled),
            "{mode:?}: a span for an unsampled traceparent"
        );
        // Sampled: the two above (and the pin's); nothing for the query without one.
        let expected = if mode == PoolMode::Transaction { 3 } else { 2 };
        assert_eq!(spans.len(), expected, "{mode:?}: {spans:#?}");
    }
}
