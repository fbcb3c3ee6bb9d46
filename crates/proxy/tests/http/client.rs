//! A proxy with its HTTP admin listener, and a plain HTTP/1.1 GET to talk to it.
//!
//! The GET is written out by hand (one request per connection, `Connection: close`, read to
//! EOF): the tests need nothing more, and it shows exactly what goes over the wire.

use std::net::SocketAddr;
use std::time::Duration;

use dbwarden_config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::TestProxy;

pub struct Admin {
    proxy: Option<TestProxy>,
    /// The proxy the admin listener serves (still there after `stop_proxy`).
    pub handle: dbwarden_proxy::Proxy,
    pub http: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Admin {
    /// A proxy on a free port and its admin listener on another.
    pub async fn start(config: Config) -> Admin {
        let proxy = TestProxy::start(config).await;
        let listener = dbwarden_proxy::bind("127.0.0.1:0").await.unwrap();
        let http = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(dbwarden_proxy::http::serve(
            proxy.proxy.clone(),
            listener,
            async {
                let _ = rx.await;
            },
        ));
        Admin {
            handle: proxy.proxy.clone(),
            proxy: Some(proxy),
            http,
            stop: Some(tx),
        }
    }

    pub fn proxy(&self) -> &TestProxy {
        self.proxy.as_ref().expect("the proxy is running")
    }

    /// Stops the client listener (and waits for its sessions) but keeps the admin listener.
    pub async fn stop_proxy(&mut self) {
        if let Some(p) = self.proxy.take() {
            p.shutdown().await;
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        get(self.http, path, "").await
    }

    /// GET with extra header lines (`"Accept: ...\r\n"`).
    pub async fn get_with(&self, path: &str, headers: &str) -> Reply {
        get(self.http, path, headers).await
    }

    /// `path` parsed as JSON, which it must be.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub async fn get(addr: SocketAddr, path: &str, headers: &str) -> Reply {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path}: no answer within 10 s"))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let text = String::from_utf8(raw).expect("UTF-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}
