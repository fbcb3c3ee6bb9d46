//! Logins that never finish: a client that connects and says nothing, one that stops after
//! half a startup packet, one that stops in the middle of SCRAM. Each is closed with FATAL
//! 08P01 naming client_login_timeout, in time, and holds nothing afterwards.

use std::time::{Duration, Instant};

use dbwarden_testkit::raw::{frame, RawClient};

use super::*;

/// SASLInitialResponse for SCRAM-SHA-256 with a client-first-message.
fn sasl_initial(client_first: &str) -> Vec<u8> {
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend_from_slice(&(client_first.len() as i32).to_be_bytes());
    body.extend_from_slice(client_first.as_bytes());
    frame::tagged(b'p', &body)
}

/// Reads until the proxy's FATAL; checks it and that the connection then closes.
async fn expect_login_timeout(raw: &mut RawClient, what: &str, since: Instant) {
    let fatal = loop {
        let m = raw
            .read_message()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .unwrap_or_else(|| panic!("{what}: closed without an error"));
        if m.tag == b'E' {
            break m;
        }
    };
    let took = since.elapsed();
    assert_eq!(fatal.error_code().as_deref(), Some("08P01"), "{what}");
    let message = fatal.error_message().unwrap_or_default();
    assert!(
        message.contains("client_login_timeout"),
        "{what}: {message}"
    );
    assert!(took >= Duration::from_millis(450), "{what}: after {took:?}");
    assert!(took < Duration::from_secs(3), "{what}: after {took:?}");
    assert!(raw.is_closed().await, "{what}: still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_that_never_finish_are_closed_within_client_login_timeout() {
    let pg = cluster_with_db(DB).await;
    let mut c = upstream_config(&pg, 2);
    c.proxy.client_login_timeout = Duration::from_millis(500);
    let proxy = TestProxy::start(c).await;

    let started = Instant::now();
    let mut silent = RawClient::connect(proxy.addr).await.unwrap();
    expect_login_timeout(&mut silent, "silent", started).await;

    let started = Instant::now();
    let mut half = RawClient::connect(proxy.addr).await.unwrap();
    half.send(&64i32.to_be_bytes()).await.unwrap(); // a length, then nothing
    expect_login_timeout(&mut half, "half a startup packet", started).await;

    let started = Instant::now();
    let mut scram = RawClient::connect(proxy.addr).await.unwrap();
    scram.startup(USER, DB).await.unwrap();
    let m = scram.read_message().await.unwrap().expect("auth request");
    assert_eq!(m.tag, b'R');
    scram
        .send(&sasl_initial("n,,n=,r=rOprNGfwEbeRWgbNEkqO"))
        .await
        .unwrap();
    let m = scram.read_message().await.unwrap().expect("SASLContinue");
    assert_eq!(&m.body[..4], &11i32.to_be_bytes(), "SASLContinue");
    // ... and the client-final-message never comes.
    expect_login_timeout(&mut scram, "mid-SCRAM", started).await;

    // None of them holds anything: a proper client logs in at once.
    eventually(
        "the timed-out clients are gone",
        Duration::from_secs(2),
        || async { proxy.proxy.client_count() == 0 },
    )
    .await;
    let ok = client(&proxy).await;
    assert_eq!(value(&ok, "SELECT 1").await, "1");
    drop(ok);
    proxy.shutdown().await;
}
