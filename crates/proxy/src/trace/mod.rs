//! Logs and traces that share one trace id (see docs/observability.md).
//!
//! A client's query may carry a W3C `traceparent` in a sqlcommenter comment ([`parent`]).
//! Its trace id goes, for the length of the transaction, into the latency histograms'
//! exemplars (the [`Meter`](crate::stats::Meter)), into every log line about the client
//! ([`log`]), into the slow-query line, and the transaction's span is exported over OTLP
//! with the client's span as its parent ([`otlp`]).

pub mod log;
mod otlp;
pub mod parent;
mod slow;

use std::sync::Arc;
use std::time::Duration;

use dbwarden_config::LogConfig;
use dbwarden_wire::frontend::tag as fe;

pub use otlp::Spans;
pub use parent::Parent;

use crate::stats::{ClientInfo, PoolStats};

/// Characters of query text kept for a slow-query line or a span, when configured.
const TEXT_CHARS: usize = 200;

/// Watches one client's messages for its [`Meter`](crate::stats::Meter): the traceparent of
/// each transaction, and, when the slow-query log or spans are on, what they report.
pub struct Watch {
    client: Arc<ClientInfo>,
    /// The client's trace id is that of a finished transaction: its next message clears it.
    /// (Kept until then so that lines logged just after the transaction, such as a pin,
    /// still carry it.)
    stale: bool,
    slow: Option<Duration>,
    keep_text: bool,
    spans: Option<Arc<Spans>>,
    /// Only when the slow-query log or spans are on (then bytes are counted, errors noted,
    /// text kept): without them every client would carry two empty ones for nothing.
    accs: Option<Box<Accs>>,
}

/// The current query's and transaction's figures.
#[derive(Default)]
struct Accs {
    query: Acc,
    txn: Acc,
}

/// What one query or transaction has shown so far.
#[derive(Default)]
struct Acc {
    /// The first SQLSTATE error.
    code: Option<[u8; 5]>,
    /// The start of the first statement's text (only with `log_query_text`).
    text: String,
    parent: Option<Parent>,
    queries: u32,
    bytes_in: u64,
    bytes_out: u64,
}

impl Watch {
    pub fn new(client: Arc<ClientInfo>, log: &LogConfig, spans: Option<Arc<Spans>>) -> Watch {
        let slow = (!log.slow_query_threshold.is_zero()).then_some(log.slow_query_threshold);
        let active = slow.is_some() || spans.is_some();
        Watch {
            client,
            stale: false,
            slow,
            keep_text: log.log_query_text,
            spans,
            accs: active.then(Box::default),
        }
    }

    /// A message from the client (a part of it for a long one; always whole for Query and
    /// Parse). `trace_id` is the meter's: set from the first traceparent of a transaction.
    #[inline]
    pub fn client_frame(&mut self, tag: u8, frame: &[u8], trace_id: &mut Option<u128>) {
        // Terminate starts nothing: lines logged as the session ends keep the trace id.
        if self.stale && tag != fe::TERMINATE {
            self.stale = false;
            self.client.set_trace_id(None);
        }
        if let Some(a) = &mut self.accs {
            a.txn.bytes_in += frame_len(frame);
        }
        if tag != fe::QUERY && tag != fe::PARSE {
            return;
        }
        if trace_id.is_none() {
            if let Some(p) = parent::find(frame) {
                *trace_id = Some(p.trace_id);
                self.client.set_trace_id(Some(p.trace_id));
                if let Some(a) = &mut self.accs {
                    a.txn.parent = Some(p);
                }
            }
        }
        if let Some(a) = self.accs.as_mut().filter(|_| self.keep_text) {
            if a.query.text.is_empty() {
                a.query.text = statement_text(tag, frame);
            }
            if a.txn.text.is_empty() {
                a.txn.text = a.query.text.clone();
            }
        }
    }

    /// A message from the server (or the start of a long one).
    #[inline]
    pub fn server_frame(&mut self, frame: &[u8]) {
        if let Some(a) = &mut self.accs {
            a.txn.bytes_out += frame_len(frame);
        }
    }

    /// An ErrorResponse with this SQLSTATE went to the client.
    pub fn error(&mut self, code: &str) {
        if let (Some(a), Ok(c)) = (&mut self.accs, <[u8; 5]>::try_from(code.as_bytes())) {
            a.query.code.get_or_insert(c);
            a.txn.code.get_or_insert(c);
        }
    }

    /// A query ended after `took`.
    pub fn query_done(&mut self, took: Duration, trace_id: Option<u128>, pool: &PoolStats) {
        let Some(a) = &mut self.accs else {
            return;
        };
        a.txn.queries += 1;
        let q = std::mem::take(&mut a.query);
        if self.slow.is_some_and(|t| took >= t) {
            slow::log(
                "query",
                took,
                pool,
                &self.client,
                code(&q.code),
                trace_id,
                &q.text,
                1,
            );
        }
    }

    /// A transaction ended after `took` (first query to the ReadyForQuery that said idle).
    pub fn transaction_done(&mut self, took: Duration, trace_id: Option<u128>, pool: &PoolStats) {
        let Some(a) = &mut self.accs else {
            return;
        };
        let t = std::mem::take(&mut a.txn);
        let mut trace_id = trace_id;
        if let Some(spans) = &self.spans {
            let wait = self.client.take_checkout_wait();
            let span = otlp::TxnSpan {
                pool,
                client_id: self.client.id,
                parent: t.parent,
                took,
                wait,
                server_pid: self.client.server_pid(),
                bytes_in: t.bytes_in,
                bytes_out: t.bytes_out,
                queries: t.queries,
                sqlstate: code(&t.code),
                text: (!t.text.is_empty()).then_some(t.text.as_str()),
            };
            let root = spans.transaction(&span);
            trace_id = trace_id.or(root);
        }
        // A one-query transaction was already logged as the query.
        if t.queries > 1 && self.slow.is_some_and(|s| took >= s) {
            let (code, text) = (code(&t.code), t.text.as_str());
            slow::log(
                "transaction",
                took,
                pool,
                &self.client,
                code,
                trace_id,
                text,
                t.queries,
            );
        }
    }

    /// The transaction is over (and nothing more is pipelined behind it).
    pub fn end(&mut self) {
        self.stale = self.client.trace_id().is_some();
    }
}

fn code(c: &Option<[u8; 5]>) -> Option<&str> {
    c.as_ref().and_then(|c| std::str::from_utf8(c).ok())
}

/// The length a frame announces in its header (the scanner hands hooks at least the header).
#[inline]
fn frame_len(frame: &[u8]) -> u64 {
    match frame.get(1..5) {
        Some(l) => 1 + u64::from(u32::from_be_bytes([l[0], l[1], l[2], l[3]])),
        None => frame.len() as u64,
    }
}

/// The first [`TEXT_CHARS`] characters of a Query's or Parse's SQL.
fn statement_text(tag: u8, frame: &[u8]) -> String {
    let body = frame.get(5..).unwrap_or_default();
    let body = if tag == fe::PARSE {
        // Statement name, then the query.
        match body.iter().position(|&b| b == 0) {
            Some(n) => &body[n + 1..],
            None => return String::new(),
        }
    } else {
        body
    };
    let sql = &body[..body.iter().position(|&b| b == 0).unwrap_or(body.len())];
    // Four bytes per character at most: enough for TEXT_CHARS whatever the encoding.
    let sql = &sql[..sql.len().min(TEXT_CHARS * 4)];
    String::from_utf8_lossy(sql)
        .chars()
        .take(TEXT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests;
