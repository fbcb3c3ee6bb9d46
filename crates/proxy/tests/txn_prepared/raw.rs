//! Statement names chosen by hand with the raw client: two clients reusing one name for
//! different SQL on the same server connection, Close and re-Parse, unknown names.

use dbwarden_config::AuthMethod;
use dbwarden_testkit::{frame, RawClient, RawMessage};

use super::common::*;
use super::{txn_config, DB};

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, name);
    cstr(&mut body, sql);
    body.extend_from_slice(&0i16.to_be_bytes()); // the server infers parameter types
    frame::tagged(b'P', &body)
}

/// Bind to the unnamed portal with text parameters and text results.
fn bind(stmt: &str, params: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, "");
    cstr(&mut body, stmt);
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&(params.len() as i16).to_be_bytes());
    for p in params {
        body.extend_from_slice(&(p.len() as i32).to_be_bytes());
        body.extend_from_slice(p.as_bytes());
    }
    body.extend_from_slice(&0i16.to_be_bytes());
    frame::tagged(b'B', &body)
}

fn execute() -> Vec<u8> {
    frame::tagged(b'E', &[0, 0, 0, 0, 0])
}

fn close(name: &str) -> Vec<u8> {
    let mut body = vec![b'S'];
    cstr(&mut body, name);
    frame::tagged(b'C', &body)
}

fn sync() -> Vec<u8> {
    frame::tagged(b'S', &[])
}

/// A raw client logged in through the (trusting) proxy.
async fn login(proxy: &TestProxy) -> RawClient {
    let mut c = RawClient::connect(proxy.addr).await.unwrap();
    c.startup(USER, DB).await.unwrap();
    let messages = c.read_until(b'Z').await.unwrap();
    assert!(messages.iter().all(|m| m.tag != b'E'), "{messages:?}");
    c
}

/// Sends `messages` and reads through ReadyForQuery.
async fn round(c: &mut RawClient, messages: &[Vec<u8>]) -> Vec<RawMessage> {
    c.send(&messages.concat()).await.unwrap();
    c.read_until(b'Z').await.unwrap()
}

/// The first column of each DataRow; panics on an ErrorResponse.
fn rows(messages: &[RawMessage]) -> Vec<String> {
    if let Some(e) = messages.iter().find(|m| m.tag == b'E') {
        panic!("unexpected error {:?}", e.error_message());
    }
    messages
        .iter()
        .filter(|m| m.tag == b'D')
        .map(|row| {
            let len = i32::from_be_bytes(row.body[2..6].try_into().unwrap()) as usize;
            String::from_utf8_lossy(&row.body[6..6 + len]).into_owned()
        })
        .collect()
}

fn tags(messages: &[RawMessage]) -> String {
    messages.iter().map(|m| m.tag as char).collect()
}

fn error_code(messages: &[RawMessage]) -> Option<String> {
    messages.iter().find_map(RawMessage::error_code)
}

/// Bind + Execute + Sync of `stmt` with one parameter; its single value.
async fn run(c: &mut RawClient, stmt: &str, param: &str) -> String {
    let got = rows(&round(c, &[bind(stmt, &[param]), execute(), sync()]).await);
    assert_eq!(got.len(), 1, "{stmt}({param})");
    got.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_reuse_one_name_for_different_sql() {
    let pg = cluster_with_db(DB).await;
    // One server connection, so both clients' statements live side by side on it.
    let mut config = txn_config(&pg, 1);
    config.auth.method = AuthMethod::Trust;
    let proxy = TestProxy::start(config).await;
    let (mut a, mut b) = (login(&proxy).await, login(&proxy).await);

    let m = round(&mut a, &[parse("q", "SELECT 'a:' || $1::text"), sync()]).await;
    assert_eq!(tags(&m), "1Z");
    // B's Parse, Bind and Execute in one batch, with a parameter of another type.
    let m = round(
        &mut b,
        &[
            parse("q", "SELECT $1::int * 1000"),
            bind("q", &["7"]),
            execute(),
            sync(),
        ],
    )
    .await;
    assert_eq!(rows(&m), ["7000"]);
    for n in 0..20 {
        let p = n.to_string();
        assert_eq!(run(&mut a, "q", &p).await, format!("a:{n}"));
        assert_eq!(run(&mut b, "q", &p).await, (n * 1000).to_string());
    }

    // Close, then the same name for other SQL: A sees its new statement, B its old one.
    let m = round(&mut a, &[close("q"), sync()]).await;
    assert_eq!(tags(&m), "3Z");
    let m = round(
        &mut a,
        &[
            parse("q", "SELECT 'again:' || $1::text"),
            bind("q", &["x"]),
            execute(),
            sync(),
        ],
    )
    .await;
    assert_eq!(rows(&m), ["again:x"]);
    assert_eq!(run(&mut b, "q", "3").await, "3000");

    // A closed name is gone for its client only, with PostgreSQL's own error.
    round(&mut a, &[close("q"), sync()]).await;
    let m = round(&mut a, &[bind("q", &["1"]), execute(), sync()]).await;
    assert_eq!(error_code(&m).as_deref(), Some("26000"), "{m:?}");
    assert_eq!(run(&mut b, "q", "4").await, "4000");

    // Identical SQL is shared on the server; one client's Close leaves the other's intact.
    round(&mut a, &[parse("same", "SELECT $1::int + 1"), sync()]).await;
    round(&mut b, &[parse("other", "SELECT $1::int + 1"), sync()]).await;
    round(&mut b, &[close("other"), sync()]).await;
    assert_eq!(run(&mut a, "same", "1").await, "2");

    // A name the client never prepared is unknown, whatever the proxy calls its own.
    let mut c = login(&proxy).await;
    for guess in ["dbw_0", "dbw_1", "dbw_2", "q", "same"] {
        let m = round(&mut c, &[bind(guess, &["1"]), execute(), sync()]).await;
        assert_eq!(error_code(&m).as_deref(), Some("26000"), "{guess}: {m:?}");
    }
    drop((a, b, c));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_parse_leaves_no_name_behind() {
    let pg = cluster_with_db(DB).await;
    let mut config = txn_config(&pg, 1);
    config.auth.method = AuthMethod::Trust;
    let proxy = TestProxy::start(config).await;
    let mut a = login(&proxy).await;
    let m = round(
        &mut a,
        &[
            parse("bad", "SELECT * FROM no_such_table"),
            bind("bad", &[]),
            execute(),
            sync(),
        ],
    )
    .await;
    assert_eq!(error_code(&m).as_deref(), Some("42P01"), "{m:?}");
    assert_eq!(tags(&m), "EZ");
    let m = round(&mut a, &[bind("bad", &[]), execute(), sync()]).await;
    assert_eq!(error_code(&m).as_deref(), Some("26000"), "{m:?}");
    // The same name for good SQL works afterwards.
    let m = round(
        &mut a,
        &[
            parse("bad", "SELECT 1"),
            bind("bad", &[]),
            execute(),
            sync(),
        ],
    )
    .await;
    assert_eq!(rows(&m), ["1"]);
    drop(a);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_deallocate_removes_a_protocol_level_name() {
    let pg = cluster_with_db(DB).await;
    let mut config = txn_config(&pg, 1);
    config.auth.method = AuthMethod::Trust;
    let proxy = TestProxy::start(config).await;
    let (mut a, mut b) = (login(&proxy).await, login(&proxy).await);
    round(&mut a, &[parse("named", "SELECT 7"), sync()]).await;
    round(&mut b, &[parse("named", "SELECT 8"), sync()]).await;
    // On PostgreSQL, DEALLOCATE also removes statements made with Parse.
    let m = round(&mut a, &[frame::query("DEALLOCATE named")]).await;
    assert_eq!(error_code(&m), None, "{m:?}");
    let m = round(&mut a, &[bind("named", &[]), execute(), sync()]).await;
    assert_eq!(error_code(&m).as_deref(), Some("26000"), "{m:?}");
    let m = round(&mut b, &[bind("named", &[]), execute(), sync()]).await;
    assert_eq!(rows(&m), ["8"]);
    drop((a, b));
    proxy.shutdown().await;
}

fn query(sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, sql);
    frame::tagged(b'Q', &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_statements_between_transactions_needs_no_server_connection() {
    let pg = cluster_with_db(DB).await;
    let mut config = txn_config(&pg, 1);
    config.auth.method = AuthMethod::Trust;
    config.pool.query_wait_timeout = std::time::Duration::from_secs(30);
    let proxy = TestProxy::start(config).await;
    let (mut a, mut holder) = (login(&proxy).await, login(&proxy).await);
    let m = round(
        &mut a,
        &[parse("q", "SELECT $1::int"), parse("r", "SELECT 2"), sync()],
    )
    .await;
    assert_eq!(tags(&m), "11Z");

    // The only server connection is held inside another client's transaction: a batch that
    // needed it would wait for query_wait_timeout. Dropping statements does not.
    assert_eq!(tags(&round(&mut holder, &[query("BEGIN")]).await), "CZ");
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        round(&mut a, &[close("q"), close("r"), sync()]),
    )
    .await
    .expect("closing statements waited for a server connection");
    assert_eq!(tags(&closed), "33Z");
    assert_eq!(&closed.last().unwrap().body[..], b"I");
    assert_eq!(tags(&round(&mut holder, &[query("COMMIT")]).await), "CZ");

    // The names are gone for the client, with PostgreSQL's own error.
    let m = round(&mut a, &[bind("q", &["1"]), execute(), sync()]).await;
    assert_eq!(error_code(&m).as_deref(), Some("26000"), "{m:?}");
    // A batch the proxy does not answer itself still reaches the server: a portal's Close,
    // and a Close with other work before its Sync.
    let mut portal = vec![b'P'];
    cstr(&mut portal, "");
    let m = round(&mut a, &[frame::tagged(b'C', &portal), sync()]).await;
    assert_eq!(tags(&m), "3Z");
    let m = round(
        &mut a,
        &[
            parse("s", "SELECT $1::text"),
            close("s"),
            parse("s", "SELECT 'x' || $1::text"),
            bind("s", &["y"]),
            execute(),
            sync(),
        ],
    )
    .await;
    assert_eq!(rows(&m), ["xy"]);
    drop((a, holder));
    proxy.shutdown().await;
}
