//! A tiny DNS server for tests: answers A queries for any name with one address that the
//! test can change, or never answers at all.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

pub struct DnsStub {
    addr: SocketAddr,
    answer: Arc<AtomicU32>,
    queries: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl DnsStub {
    /// Answers every A query with `ip` (TTL `ttl_secs`); other types get an empty answer.
    pub async fn answering(ip: Ipv4Addr, ttl_secs: u32) -> DnsStub {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let answer = Arc::new(AtomicU32::new(u32::from(ip)));
        let queries = Arc::new(AtomicUsize::new(0));
        let (a, q) = (answer.clone(), queries.clone());
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                q.fetch_add(1, Ordering::SeqCst);
                let ip = Ipv4Addr::from(a.load(Ordering::SeqCst));
                if let Some(reply) = reply(&buf[..n], ip, ttl_secs) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        DnsStub {
            addr,
            answer,
            queries,
            task,
        }
    }

    /// Reads queries and never answers them, like a resolver behind a dead link.
    pub async fn silent() -> DnsStub {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let q = queries.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while socket.recv_from(&mut buf).await.is_ok() {
                q.fetch_add(1, Ordering::SeqCst);
            }
        });
        DnsStub {
            addr,
            answer: Arc::default(),
            queries,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_answer(&self, ip: Ipv4Addr) {
        self.answer.store(u32::from(ip), Ordering::SeqCst);
    }

    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for DnsStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The response to `query`: its header and question, and one A record if it asked for A.
fn reply(query: &[u8], ip: Ipv4Addr, ttl: u32) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question starts after the 12-byte header: labels up to a zero byte, then
    // QTYPE and QCLASS.
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + usize::from(query[end]);
    }
    let qtype = u16::from_be_bytes([*query.get(end + 1)?, *query.get(end + 2)?]);
    end += 5;
    let question = query.get(12..end)?;
    let is_a = qtype == 1;
    let mut out = Vec::with_capacity(end + 16);
    out.extend_from_slice(&query[..2]); // id
    out.extend_from_slice(&[0x81, 0x80]); // response, recursion desired and available
    out.extend_from_slice(&1u16.to_be_bytes()); // one question
    out.extend_from_slice(&u16::from(is_a).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // no authority, no additional records
    out.extend_from_slice(question);
    if is_a {
        out.extend_from_slice(&[0xc0, 0x0c]); // name: pointer to the question's
        out.extend_from_slice(&1u16.to_be_bytes()); // A
        out.extend_from_slice(&1u16.to_be_bytes()); // IN
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    Some(out)
}
