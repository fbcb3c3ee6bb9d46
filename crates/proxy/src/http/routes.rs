//! Which path answers what. Every handler is quick and synchronous: it reads counters and
//! registries and formats them.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::exposition::{self, OPENMETRICS, PROMETHEUS_TEXT};
use super::{api, ready, State};

pub type Body = Full<Bytes>;

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// The dashboard: one page, its script and styles inline, nothing loaded from elsewhere.
const DASHBOARD: &str = include_str!("dashboard.html");

pub fn route<B>(state: &State, req: &Request<B>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let query = req.uri().query().unwrap_or("");
    match req.uri().path() {
        "/" => respond(StatusCode::OK, HTML, DASHBOARD),
        "/metrics" => {
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
            metrics(state, exposition::wants_openmetrics(accept))
        }
        "/healthz" => respond(StatusCode::OK, TEXT, "ok\n"),
        "/readyz" => {
            let r = ready::check(&state.shared);
            let status = if r.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(status, &r)
        }
        "/api/pools" => match since(query) {
            Ok(since) => json(StatusCode::OK, &api::pools(state, since)),
            Err(msg) => respond(StatusCode::BAD_REQUEST, TEXT, msg),
        },
        "/api/clients" => json(StatusCode::OK, &api::clients(&state.shared)),
        _ => respond(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found; try /, /metrics, /healthz, /readyz, /api/pools, /api/clients\n",
        ),
    }
}

fn metrics(state: &State, openmetrics: bool) -> Response<Body> {
    let mut text = String::with_capacity(16 * 1024);
    let encoded =
        prometheus_client::encoding::text::encode(&mut text, &state.shared.stats.registry.lock());
    match encoded {
        Ok(()) if openmetrics => respond(StatusCode::OK, OPENMETRICS, text),
        Ok(()) => respond(
            StatusCode::OK,
            PROMETHEUS_TEXT,
            exposition::to_prometheus_text(&text),
        ),
        Err(e) => {
            tracing::error!(error = %e, "encoding /metrics failed");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                "encoding the metrics failed\n",
            )
        }
    }
}

/// `since=<unix ms>`: only history samples after it (the dashboard's refreshes).
fn since(query: &str) -> Result<u64, &'static str> {
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("since=") {
            return v
                .parse()
                .map_err(|_| "since: expected milliseconds since the Unix epoch\n");
        }
    }
    Ok(0)
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => respond(status, JSON, body),
        Err(e) => {
            tracing::error!(error = %e, "encoding JSON failed");
            respond(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "encoding failed\n")
        }
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
