//! The fault-injecting relay in front of a tiny echo server.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dbwarden_testkit::Relay;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// Echoes every byte back until the peer closes; returns its address.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn round_trip(stream: &mut TcpStream, payload: &[u8]) -> io::Result<Vec<u8>> {
    stream.write_all(payload).await?;
    let mut back = vec![0; payload.len()];
    timeout(Duration::from_secs(5), stream.read_exact(&mut back))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    Ok(back)
}

async fn wait_for_connections(relay: &Relay, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while relay.connections() != expected {
        assert!(
            Instant::now() < deadline,
            "relay has {} connections, expected {expected}",
            relay.connections()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn forwards_both_ways_and_counts_connections() {
    let relay = Relay::start(echo_server().await).await.unwrap();
    assert_eq!(relay.connections(), 0);
    let mut a = TcpStream::connect(relay.addr()).await.unwrap();
    let mut b = TcpStream::connect(relay.addr()).await.unwrap();
    assert_eq!(round_trip(&mut a, b"hello").await.unwrap(), b"hello");
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    assert_eq!(round_trip(&mut b, &big).await.unwrap(), big);
    wait_for_connections(&relay, 2).await;
    drop(a);
    wait_for_connections(&relay, 1).await;
}

#[tokio::test]
async fn delay_holds_each_chunk() {
    let relay = Relay::start(echo_server().await).await.unwrap();
    let mut client = TcpStream::connect(relay.addr()).await.unwrap();
    relay.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(round_trip(&mut client, b"slow").await.unwrap(), b"slow");
    // Delayed on the way there and on the way back.
    assert!(started.elapsed() >= Duration::from_millis(600));

    relay.set_delay(Duration::ZERO);
    assert_eq!(round_trip(&mut client, b"fast").await.unwrap(), b"fast");
}

#[tokio::test]
async fn stall_holds_bytes_until_released() {
    let relay = Relay::start(echo_server().await).await.unwrap();
    let mut client = TcpStream::connect(relay.addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"before").await.unwrap(), b"before");

    relay.stall(true);
    client.write_all(b"held").await.unwrap();
    let mut back = [0u8; 4];
    let waited = timeout(Duration::from_millis(500), client.read_exact(&mut back)).await;
    assert!(waited.is_err(), "nothing may arrive while stalled");
    assert_eq!(relay.connections(), 1, "the connection stays open");

    relay.stall(false);
    timeout(Duration::from_secs(5), client.read_exact(&mut back))
        .await
        .expect("bytes arrive after the stall")
        .unwrap();
    assert_eq!(&back, b"held");
}

#[tokio::test]
async fn stalled_replies_hold_only_the_way_back() {
    // A target that reports what it receives, then echoes it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = socket.read(&mut buf).await {
                    let _ = seen_tx.send(buf[..n].to_vec());
                    if socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let relay = Relay::start(target).await.unwrap();
    let mut client = TcpStream::connect(relay.addr()).await.unwrap();
    relay.stall_replies(true);
    client.write_all(b"ping").await.unwrap();
    let got = timeout(Duration::from_secs(5), seen.recv()).await;
    assert_eq!(
        got.unwrap().unwrap(),
        b"ping",
        "the target gets what is sent"
    );
    // A connection opened during the stall reaches the target as well.
    let mut late = TcpStream::connect(relay.addr()).await.unwrap();
    late.write_all(b"late").await.unwrap();
    let got = timeout(Duration::from_secs(5), seen.recv()).await;
    assert_eq!(got.unwrap().unwrap(), b"late");
    let mut back = [0u8; 4];
    let waited = timeout(Duration::from_millis(500), client.read_exact(&mut back)).await;
    assert!(
        waited.is_err(),
        "no reply may arrive while replies are stalled"
    );

    relay.stall_replies(false);
    timeout(Duration::from_secs(5), client.read_exact(&mut back))
        .await
        .expect("the reply arrives after the stall")
        .unwrap();
    assert_eq!(&back, b"ping");
}

#[tokio::test]
async fn reset_all_resets_open_connections_only() {
    let relay = Relay::start(echo_server().await).await.unwrap();
    let mut client = TcpStream::connect(relay.addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"x").await.unwrap(), b"x");

    relay.reset_all();
    let mut buf = [0u8; 1];
    let err = timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .expect("the reset arrives")
        .expect_err("a reset, not a clean EOF");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    wait_for_connections(&relay, 0).await;

    let mut fresh = TcpStream::connect(relay.addr()).await.unwrap();
    assert_eq!(round_trip(&mut fresh, b"y").await.unwrap(), b"y");
}

#[tokio::test]
async fn refuse_closes_new_connections() {
    let relay = Relay::start(echo_server().await).await.unwrap();
    let mut kept = TcpStream::connect(relay.addr()).await.unwrap();
    assert_eq!(round_trip(&mut kept, b"a").await.unwrap(), b"a");

    relay.refuse(true);
    let mut refused = TcpStream::connect(relay.addr()).await.unwrap();
    let mut buf = [0u8; 1];
    let n = timeout(Duration::from_secs(5), refused.read(&mut buf))
        .await
        .expect("closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0, "refused connection is closed");
    assert_eq!(round_trip(&mut kept, b"b").await.unwrap(), b"b");

    relay.refuse(false);
    let mut accepted = TcpStream::connect(relay.addr()).await.unwrap();
    assert_eq!(round_trip(&mut accepted, b"c").await.unwrap(), b"c");
}

#[tokio::test]
async fn drop_closes_listener_and_connections() {
    let relay = Relay::start(echo_server().await).await.unwrap();
    let addr = relay.addr();
    let mut client = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut client, b"z").await.unwrap(), b"z");
    drop(relay);

    let mut buf = [0u8; 1];
    let n = timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .expect("closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // The listener is gone (give the aborted task a moment to drop it).
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "relay still listening");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn unreachable_target_closes_the_client() {
    // A port that was free a moment ago: nothing listens there.
    let target = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let relay = Relay::start(target).await.unwrap();
    let mut client = TcpStream::connect(relay.addr()).await.unwrap();
    let mut buf = [0u8; 1];
    let n = timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .expect("closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(relay.connections(), 0);
}
