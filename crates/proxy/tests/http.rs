//! The HTTP admin listener against a real proxy and PostgreSQL: health, readiness, the JSON
//! API, `/metrics` (checked by promtool and against the Grafana dashboard) and the dashboard
//! page in headless Chromium.

mod common;

#[path = "http/client.rs"]
mod client;
#[path = "http/dashboard.rs"]
mod dashboard;
#[path = "http/endpoints.rs"]
mod endpoints;
#[path = "http/metrics.rs"]
mod metrics;
#[path = "http/ready.rs"]
mod ready;

use common::*;
