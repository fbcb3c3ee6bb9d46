//! One OpenTelemetry span per transaction, exported over OTLP/HTTP (protobuf).
//!
//! The span is made when the transaction ends, with its start time set back to when it
//! began: nothing is done while it runs, and a transaction that is not sampled costs one
//! comparison. Spans go to the SDK's batch processor, which exports from its own thread;
//! when the receiver is slow or down, spans beyond its queue are dropped, never waited for.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dbwarden_config::TracingConfig;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use super::Parent;
use crate::error::SetupError;
use crate::stats::PoolStats;

/// The exporter and its tracer; one per proxy.
pub struct Spans {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    root_ratio: f64,
}

/// What the span of one finished transaction says.
pub(super) struct TxnSpan<'a> {
    pub pool: &'a PoolStats,
    pub client_id: u64,
    pub parent: Option<Parent>,
    /// From the first query to the ReadyForQuery that ended it.
    pub took: Duration,
    /// Waiting for a server connection before that.
    pub wait: Duration,
    pub server_pid: i32,
    /// Bytes the client sent, and the server.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub queries: u32,
    pub sqlstate: Option<&'a str>,
    pub text: Option<&'a str>,
}

impl Spans {
    /// The exporter `config` asks for; `None` when tracing is off.
    pub fn from_config(config: &TracingConfig) -> Result<Option<Arc<Spans>>, SetupError> {
        let Some(url) = config.traces_url() else {
            return Ok(None);
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .build()
            .map_err(|e| SetupError::Tracing(e.to_string()))?;
        // A client's sampled flag decides for its transactions; the ratio only for the
        // transactions that come without a traceparent.
        let sampler =
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio)));
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("dbwarden");
        Ok(Some(Arc::new(Spans {
            provider,
            tracer,
            root_ratio: config.sampling_ratio,
        })))
    }

    /// Makes and ends the span of a finished transaction. Returns its trace id when the span
    /// is recorded (sampled).
    pub(super) fn transaction(&self, t: &TxnSpan<'_>) -> Option<u128> {
        let cx = match t.parent {
            Some(p) if !p.sampled() => return None,
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(p.trace_id),
                SpanId::from(p.span_id),
                TraceFlags::new(p.flags),
                true,
                TraceState::default(),
            )),
            None if self.root_ratio <= 0.0 => return None,
            None => Context::new(),
        };
        let end = SystemTime::now();
        let start = end
            .checked_sub(t.took + t.wait)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut attrs = vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.namespace", t.pool.key.database.clone()),
            KeyValue::new("dbwarden.pool.database", t.pool.key.database.clone()),
            KeyValue::new("dbwarden.pool.user", t.pool.key.user.clone()),
            KeyValue::new("dbwarden.client.id", t.client_id as i64),
            KeyValue::new("dbwarden.checkout.wait", t.wait.as_secs_f64()),
            KeyValue::new("dbwarden.queries", i64::from(t.queries)),
            KeyValue::new("dbwarden.bytes.received", t.bytes_in as i64),
            KeyValue::new("dbwarden.bytes.sent", t.bytes_out as i64),
        ];
        if t.server_pid != 0 {
            attrs.push(KeyValue::new(
                "dbwarden.server.pid",
                i64::from(t.server_pid),
            ));
        }
        if let Some(code) = t.sqlstate {
            attrs.push(KeyValue::new("db.response.status_code", code.to_owned()));
            attrs.push(KeyValue::new("error.type", code.to_owned()));
        }
        if let Some(text) = t.text {
            attrs.push(KeyValue::new("db.query.text", text.to_owned()));
        }
        let mut span = self
            .tracer
            .span_builder("transaction")
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, &cx);
        if !span.is_recording() {
            return None;
        }
        if let Some(code) = t.sqlstate {
            span.set_status(Status::error(format!("SQLSTATE {code}")));
        }
        let trace_id = u128::from_be_bytes(span.span_context().trace_id().to_bytes());
        span.end_with_timestamp(end);
        Some(trace_id)
    }

    /// Exports what is queued. Blocks until done or timed out: call it off the runtime's
    /// worker threads (`spawn_blocking`).
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "exporting the last spans failed");
        }
    }
}
