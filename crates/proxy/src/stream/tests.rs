use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::{keepalive, TcpTuning};

async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.unwrap(), b.unwrap().0)
}

#[tokio::test]
async fn keepalive_and_user_timeout_are_set_as_configured() {
    let (a, _b) = socket_pair().await;
    let tuning = TcpTuning {
        keepalive_idle: Duration::from_secs(7),
        keepalive_interval: Duration::from_secs(3),
        keepalive_count: 4,
        user_timeout: Duration::from_millis(2500),
    };
    keepalive(&a, &tuning);
    let sock = socket2::SockRef::from(&a);
    assert!(sock.keepalive().unwrap());
    assert_eq!(sock.keepalive_time().unwrap(), Duration::from_secs(7));
    assert_eq!(sock.keepalive_interval().unwrap(), Duration::from_secs(3));
    assert_eq!(sock.keepalive_retries().unwrap(), 4);
    #[cfg(target_os = "linux")]
    assert_eq!(
        sock.tcp_user_timeout().unwrap(),
        Some(Duration::from_millis(2500))
    );
}

#[tokio::test]
async fn zero_idle_turns_keepalive_off() {
    let (a, _b) = socket_pair().await;
    socket2::SockRef::from(&a).set_keepalive(true).unwrap();
    let tuning = TcpTuning {
        keepalive_idle: Duration::ZERO,
        keepalive_interval: Duration::from_secs(10),
        keepalive_count: 6,
        user_timeout: Duration::ZERO,
    };
    keepalive(&a, &tuning);
    let sock = socket2::SockRef::from(&a);
    assert!(!sock.keepalive().unwrap());
    #[cfg(target_os = "linux")]
    assert_eq!(sock.tcp_user_timeout().unwrap(), None);
}
