//! The log line format, JSON or human, with the same stable field names in both.
//!
//! Every line about a client carries, read from the client's live [`ClientInfo`] as the
//! line is written, `client.id` and `client.addr`, `pool` once it has logged in,
//! `server.pid` while it holds a server connection and `trace_id` while its transaction
//! carries a traceparent. Reading them at write time costs the hot path nothing: it already
//! keeps `ClientInfo` up to date for SHOW CLIENTS.
//!
//! The client is found through a thread-local set while its task is polled ([`for_client`]),
//! not through a tracing span: a span entered and left on every poll cost about 200
//! instructions per transaction (the registry's span stack, a reference count, the filter's
//! lock), and a span record for every connected client.

use std::cell::Cell;
use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::stats::ClientInfo;

/// Writes one line per event to `W` (stderr in the binary).
pub struct LogLayer<W> {
    json: bool,
    make_writer: W,
}

impl<W> LogLayer<W> {
    pub fn new(json: bool, make_writer: W) -> LogLayer<W> {
        LogLayer { json, make_writer }
    }
}

thread_local! {
    /// The client whose task this thread is polling, if any.
    static CURRENT: Cell<Option<Arc<ClientInfo>>> = const { Cell::new(None) };
}

/// Runs `fut` with `client` current while it is polled, so every line it logs is about the
/// client. The `Arc` is moved in and out of the thread-local, not cloned: no atomic
/// operation per poll. (A struct rather than an `async fn`: the latter would lay the
/// future out twice, as its argument and as its pinned local, in every client's task.)
pub fn for_client<F: Future>(client: Arc<ClientInfo>, fut: F) -> ForClient<F> {
    ForClient {
        client: Some(client),
        fut,
    }
}

pin_project_lite::pin_project! {
    /// See [`for_client`].
    pub struct ForClient<F> {
        client: Option<Arc<ClientInfo>>,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for ForClient<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let fut = this.fut;
        in_client(this.client, || fut.poll(cx))
    }
}

/// Runs `f` with the client in `slot` current, and puts it back after (also on a panic).
pub(crate) fn in_client<R>(slot: &mut Option<Arc<ClientInfo>>, f: impl FnOnce() -> R) -> R {
    struct Restore<'a> {
        slot: &'a mut Option<Arc<ClientInfo>>,
        outer: Option<Arc<ClientInfo>>,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            *self.slot = CURRENT.with(|c| c.replace(self.outer.take()));
        }
    }
    let outer = CURRENT.with(|c| c.replace(slot.take()));
    let _restore = Restore { slot, outer };
    f()
}

/// The client current on this thread (a clone: only for writing a line).
fn current() -> Option<Arc<ClientInfo>> {
    CURRENT.with(|c| {
        let v = c.take();
        let copy = v.clone();
        c.set(v);
        copy
    })
}

/// A recorded field value, kept typed so JSON gets numbers as numbers.
#[derive(Clone, Debug)]
enum Val {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    list: Vec<(&'static str, Val)>,
}

impl Fields {
    fn put(&mut self, name: &'static str, v: Val) {
        match self.list.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = v,
            None => self.list.push((name, v)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.put(field.name(), Val::Str(value.to_owned()));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), Val::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), Val::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field.name(), Val::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), Val::Bool(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%x` fields arrive here too, their Debug being x's Display.
        self.record_str(field, &format!("{value:?}"));
    }
}

impl<S, W> Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // The client's live fields, then the spans' (outermost first); a name the event
        // already has is not repeated.
        if let Some(c) = current() {
            client_fields(&c, &mut fields);
        }
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    for (name, v) in &span_fields.list {
                        add_new(&mut fields, name, v.clone());
                    }
                }
            }
        }
        let meta = event.metadata();
        let mut line = String::with_capacity(256);
        let mut ts = String::with_capacity(32);
        let _ = SystemTime.format_time(&mut Writer::new(&mut ts));
        if self.json {
            json_line(&mut line, &ts, meta, &fields);
        } else {
            human_line(&mut line, &ts, meta, &fields);
        }
        line.push('\n');
        // One write per line, so lines from different threads do not interleave.
        let _ = self
            .make_writer
            .make_writer_for(meta)
            .write_all(line.as_bytes());
    }
}

fn add_new(fields: &mut Fields, name: &'static str, v: Val) {
    if !fields.list.iter().any(|(n, _)| *n == name) {
        fields.list.push((name, v));
    }
}

fn client_fields(c: &ClientInfo, fields: &mut Fields) {
    add_new(fields, "client.id", Val::U64(c.id));
    add_new(fields, "client.addr", Val::Str(c.addr.to_string()));
    if let Some(login) = c.login() {
        add_new(
            fields,
            "pool",
            Val::Str(format!("{}/{}", login.database, login.user)),
        );
    }
    let pid = c.server_pid();
    if pid != 0 {
        add_new(fields, "server.pid", Val::I64(i64::from(pid)));
    }
    if let Some(t) = c.trace_id() {
        add_new(fields, "trace_id", Val::Str(format!("{t:032x}")));
    }
}

fn json_line(out: &mut String, ts: &str, meta: &tracing::Metadata<'_>, f: &Fields) {
    out.push_str("{\"timestamp\":");
    json_str(out, ts);
    out.push_str(",\"level\":");
    json_str(out, meta.level().as_str());
    out.push_str(",\"target\":");
    json_str(out, meta.target());
    if let Some(m) = &f.message {
        out.push_str(",\"message\":");
        json_str(out, m);
    }
    for (name, v) in &f.list {
        out.push(',');
        json_str(out, name);
        out.push(':');
        match v {
            Val::Str(s) => json_str(out, s),
            Val::I64(n) => {
                let _ = write!(out, "{n}");
            }
            Val::U64(n) => {
                let _ = write!(out, "{n}");
            }
            Val::F64(x) if x.is_finite() => {
                let _ = write!(out, "{x}");
            }
            Val::F64(_) => out.push_str("null"),
            Val::Bool(b) => {
                let _ = write!(out, "{b}");
            }
        }
    }
    out.push('}');
}

fn json_str(out: &mut String, s: &str) {
    // Serializing a str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn human_line(out: &mut String, ts: &str, meta: &tracing::Metadata<'_>, f: &Fields) {
    let _ = write!(out, "{ts} {:>5} {}:", meta.level(), meta.target());
    if let Some(m) = &f.message {
        out.push(' ');
        out.push_str(m);
    }
    for (name, v) in &f.list {
        let _ = write!(out, " {name}=");
        match v {
            Val::Str(s) if s.is_empty() || s.contains([' ', '"', '=', '\n', '\t']) => {
                let _ = write!(out, "{s:?}");
            }
            Val::Str(s) => out.push_str(s),
            Val::I64(n) => {
                let _ = write!(out, "{n}");
            }
            Val::U64(n) => {
                let _ = write!(out, "{n}");
            }
            Val::F64(x) => {
                let _ = write!(out, "{x}");
            }
            Val::Bool(b) => {
                let _ = write!(out, "{b}");
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
