//! Each SHOW answers with PgBouncer 1.25's columns, in its order, with its types: the table
//! below is copied from PgBouncer 1.25's source (`pktbuf_write_RowDescription` calls in
//! src/admin.c and src/stats.c, type letters as there), not from dbwarden's code.

use dbwarden_config::AuthMethod;
use dbwarden_testkit::raw::{frame, RawClient};

use super::{cluster_with_db, txn_config, TestProxy, PASSWORD, USER};

/// (command, PgBouncer's type letters, column names).
const PGBOUNCER_1_25: &[(&str, &str, &[&str])] = &[
    (
        "SHOW POOLS",
        "ssiiiiiiiiiiiiiss",
        &[
            "database",
            "user",
            "cl_active",
            "cl_waiting",
            "cl_active_cancel_req",
            "cl_waiting_cancel_req",
            "sv_active",
            "sv_active_cancel",
            "sv_being_canceled",
            "sv_idle",
            "sv_used",
            "sv_tested",
            "sv_login",
            "maxwait",
            "maxwait_us",
            "pool_mode",
            "load_balance_hosts",
        ],
    ),
    (
        "SHOW STATS",
        "sNNNNNNNNNNNNNNNNNNNNNN",
        &[
            "database",
            "total_server_assignment_count",
            "total_xact_count",
            "total_query_count",
            "total_received",
            "total_sent",
            "total_xact_time",
            "total_query_time",
            "total_wait_time",
            "total_client_parse_count",
            "total_server_parse_count",
            "total_bind_count",
            "avg_server_assignment_count",
            "avg_xact_count",
            "avg_query_count",
            "avg_recv",
            "avg_sent",
            "avg_xact_time",
            "avg_query_time",
            "avg_wait_time",
            "avg_client_parse_count",
            "avg_server_parse_count",
            "avg_bind_count",
        ],
    ),
    (
        "SHOW STATS_TOTALS",
        "sNNNNNNNNNNN",
        &[
            "database",
            "server_assignment_count",
            "xact_count",
            "query_count",
            "bytes_received",
            "bytes_sent",
            "xact_time",
            "query_time",
            "wait_time",
            "client_parse_count",
            "server_parse_count",
            "bind_count",
        ],
    ),
    (
        "SHOW STATS_AVERAGES",
        "sNNNNNNNNNNN",
        &[
            "database",
            "server_assignment_count",
            "xact_count",
            "query_count",
            "bytes_received",
            "bytes_sent",
            "xact_time",
            "query_time",
            "wait_time",
            "avg_client_parse_count",
            "avg_server_parse_count",
            "avg_bind_count",
        ],
    ),
    ("SHOW TOTALS", "sN", &["name", "value"]),
    (
        "SHOW CLIENTS",
        "ssssssisiTTiiississii",
        &[
            "type",
            "user",
            "database",
            "replication",
            "state",
            "addr",
            "port",
            "local_addr",
            "local_port",
            "connect_time",
            "request_time",
            "wait",
            "wait_us",
            "close_needed",
            "ptr",
            "link",
            "remote_pid",
            "tls",
            "application_name",
            "prepared_statements",
            "id",
        ],
    ),
    (
        "SHOW SERVERS",
        "ssssssisiTTiiississii",
        &[
            "type",
            "user",
            "database",
            "replication",
            "state",
            "addr",
            "port",
            "local_addr",
            "local_port",
            "connect_time",
            "request_time",
            "wait",
            "wait_us",
            "close_needed",
            "ptr",
            "link",
            "remote_pid",
            "tls",
            "application_name",
            "prepared_statements",
            "id",
        ],
    ),
    (
        "SHOW DATABASES",
        "ssissiiiissiiiiii",
        &[
            "name",
            "host",
            "port",
            "database",
            "force_user",
            "pool_size",
            "min_pool_size",
            "reserve_pool_size",
            "server_lifetime",
            "pool_mode",
            "load_balance_hosts",
            "max_connections",
            "current_connections",
            "max_client_connections",
            "current_client_connections",
            "paused",
            "disabled",
        ],
    ),
    (
        "SHOW CONFIG",
        "ssss",
        &["key", "value", "default", "changeable"],
    ),
    ("SHOW LISTS", "si", &["list", "items"]),
    ("SHOW VERSION", "s", &["version"]),
    (
        "SHOW USERS",
        "ssssiiii",
        &[
            "name",
            "pool_size",
            "reserve_pool_size",
            "pool_mode",
            "max_user_connections",
            "current_connections",
            "max_user_client_connections",
            "current_client_connections",
        ],
    ),
    ("SHOW STATE", "ss", &["key", "value"]),
];

/// PgBouncer's `pktbuf_write_RowDescription`: s text, i int4, q int8, N numeric, T text.
fn oid(letter: char) -> u32 {
    match letter {
        's' | 'T' => 25,
        'i' => 23,
        'q' => 20,
        'N' => 1700,
        other => panic!("type letter {other}"),
    }
}

/// (name, type OID) of each field of a RowDescription body.
fn fields(body: &[u8]) -> Vec<(String, u32)> {
    let n = u16::from_be_bytes([body[0], body[1]]) as usize;
    let mut at = 2;
    let mut out = Vec::new();
    for _ in 0..n {
        let end = at + body[at..].iter().position(|&b| b == 0).unwrap();
        let name = String::from_utf8(body[at..end].to_vec()).unwrap();
        at = end + 1 + 4 + 2;
        let oid = u32::from_be_bytes(body[at..at + 4].try_into().unwrap());
        at += 4 + 2 + 4 + 2;
        out.push((name, oid));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_show_has_pgbouncer_1_25s_columns_and_types() {
    let pg = cluster_with_db("cols").await;
    let mut config = txn_config(&pg, 2);
    // Trust, so that the raw client below needs no SCRAM; the console's columns do not
    // depend on how the user logged in.
    config.auth.method = AuthMethod::Trust;
    let proxy = TestProxy::start(config).await;
    // Some traffic, so every SHOW has rows too.
    let c = super::connect(&proxy.conn_str(USER, PASSWORD, "cols"))
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();

    let mut raw = RawClient::connect(proxy.addr).await.unwrap();
    raw.startup(USER, "pgbouncer").await.unwrap();
    let greeting = raw.read_until(b'Z').await.unwrap();
    assert_eq!(greeting[0].tag, b'R', "authentication ok first");
    for (sql, letters, names) in PGBOUNCER_1_25 {
        assert_eq!(letters.len(), names.len(), "{sql}: the table itself");
        raw.send(&frame::query(sql)).await.unwrap();
        let reply = raw.read_until(b'Z').await.unwrap();
        let desc = reply
            .iter()
            .find(|m| m.tag == b'T')
            .unwrap_or_else(|| panic!("{sql}: no RowDescription in {reply:?}"));
        let want: Vec<(String, u32)> = names
            .iter()
            .zip(letters.chars())
            .map(|(n, l)| ((*n).to_owned(), oid(l)))
            .collect();
        assert_eq!(fields(&desc.body), want, "{sql}");
        let rows = reply.iter().filter(|m| m.tag == b'D').count();
        assert!(rows > 0, "{sql}: no rows");
        assert!(
            reply.iter().any(|m| m.tag == b'C'),
            "{sql}: no CommandComplete"
        );
    }
    drop((c, raw));
    proxy.shutdown().await;
}
