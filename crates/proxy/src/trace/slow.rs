//! The slow-query log: one WARN line per query (or transaction) over `log.slow_query_threshold`.

use std::time::Duration;

use crate::stats::{ClientInfo, PoolStats};

/// Logs one slow query or transaction. Every field is named here, not left to the client's
/// span, so the line says all there is even under another subscriber.
#[allow(clippy::too_many_arguments)]
pub(super) fn log(
    kind: &'static str,
    took: Duration,
    pool: &PoolStats,
    client: &ClientInfo,
    sqlstate: Option<&str>,
    trace_id: Option<u128>,
    text: &str,
    queries: u32,
) {
    let pid = client.server_pid();
    tracing::warn!(
        target: "dbwarden_proxy::slow_query",
        kind,
        duration_ms = took.as_secs_f64() * 1000.0,
        pool = %format_args!("{}/{}", pool.key.database, pool.key.user),
        server.pid = (pid != 0).then_some(pid),
        sqlstate,
        trace_id = trace_id.map(|t| format!("{t:032x}")),
        queries = (queries > 1).then_some(queries),
        query = (!text.is_empty()).then_some(text),
        "slow {kind}"
    );
}
