//! A tiny OTLP/HTTP receiver for tests: accepts `POST /v1/traces` with a protobuf
//! `ExportTraceServiceRequest` (as OpenTelemetry exporters send it) and keeps the spans.
//!
//! Plain HTTP/1.1 read by hand: requests with a `Content-Length`, keep-alive, no chunking
//! and no compression, which is what the OTLP/HTTP exporter sends by default.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
pub use opentelemetry_proto::tonic::common::v1::any_value::Value as AttrValue;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use parking_lot::Mutex;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A span as received, with the `service.name` of its resource.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub service_name: Option<String>,
    pub span: Span,
}

impl ReceivedSpan {
    /// The value of attribute `key`, if the span has it.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attr(key)? {
            AttrValue::IntValue(n) => Some(*n),
            _ => None,
        }
    }

    pub fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attr(key)? {
            AttrValue::StringValue(s) => Some(s),
            _ => None,
        }
    }

    pub fn f64_attr(&self, key: &str) -> Option<f64> {
        match self.attr(key)? {
            AttrValue::DoubleValue(x) => Some(*x),
            _ => None,
        }
    }

    /// The trace id as a number (W3C byte order).
    pub fn trace_id(&self) -> u128 {
        u128::from_be_bytes(self.span.trace_id.as_slice().try_into().unwrap_or([0; 16]))
    }

    /// The parent span id, 0 for a root span.
    pub fn parent_span_id(&self) -> u64 {
        u64::from_be_bytes(
            self.span
                .parent_span_id
                .as_slice()
                .try_into()
                .unwrap_or([0; 8]),
        )
    }
}

/// Receives spans on a free loopback port until dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> std::io::Result<OtlpReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let spans: Arc<Mutex<Vec<ReceivedSpan>>> = Arc::default();
        let keep = spans.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, keep.clone()));
            }
        });
        Ok(OtlpReceiver { addr, spans, task })
    }

    /// The base URL to configure as the OTLP endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().clone()
    }

    /// The first span for which `pred` holds, waiting up to `patience` for it to arrive.
    pub async fn wait_for(
        &self,
        patience: Duration,
        pred: impl Fn(&ReceivedSpan) -> bool,
    ) -> Option<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(s) = self.spans.lock().iter().find(|s| pred(s)) {
                return Some(s.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers requests on one connection until it closes.
async fn serve(mut tcp: TcpStream, spans: Arc<Mutex<Vec<ReceivedSpan>>>) {
    let mut buf = Vec::new();
    loop {
        let Some((head_len, body_len, path)) = read_head(&mut tcp, &mut buf).await else {
            return;
        };
        while buf.len() < head_len + body_len {
            let mut chunk = [0u8; 16 * 1024];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..head_len + body_len).skip(head_len).collect();
        let status = if path != "/v1/traces" {
            "404 Not Found"
        } else {
            match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(req) => {
                    keep(req, &spans);
                    "200 OK"
                }
                Err(_) => "400 Bad Request",
            }
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        );
        if tcp.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads up to the end of the request head: its length, the body's length and the path.
async fn read_head(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(usize, usize, String)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
            let body_len = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            return Some((end + 4, body_len, path));
        }
        let mut chunk = [0u8; 4096];
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn keep(req: ExportTraceServiceRequest, spans: &Mutex<Vec<ReceivedSpan>>) {
    let mut spans = spans.lock();
    for rs in req.resource_spans {
        let service_name = rs.resource.as_ref().and_then(|r| {
            r.attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(AttrValue::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
        });
        for ss in rs.scope_spans {
            for span in ss.spans {
                spans.push(ReceivedSpan {
                    service_name: service_name.clone(),
                    span,
                });
            }
        }
    }
}
