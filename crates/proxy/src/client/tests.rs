//! The size of a client's task: every connected client pays for it, idle or not, so what
//! only a login, a server connect or a cancel needs is boxed and freed after use.

use tokio::net::{TcpListener, TcpStream};

use crate::Proxy;

/// Release builds measured 4 KB when this was written (8.5 KB before the login, the server
/// connect and the cancel were boxed); debug builds lay futures out a little larger.
const MAX_TASK_BYTES: usize = 6 * 1024;

#[tokio::test]
async fn a_client_task_stays_small() {
    let config = dbwarden_config::Config::from_upstream_url("postgres://u:p@127.0.0.1:1").unwrap();
    let proxy = Proxy::new(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let peer = tcp.local_addr().unwrap();
    let task = super::handle_client(tcp, peer, proxy.shared.clone());
    let size = std::mem::size_of_val(&task);
    assert!(
        size <= MAX_TASK_BYTES,
        "a client's task is {size} bytes; box what only a rare path needs"
    );
}
