use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tracing_subscriber::layer::SubscriberExt;

use super::*;
use crate::pools::PoolKey;
use crate::stats::{ClientLogin, Stats};

/// Log output kept in memory.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    pub(crate) fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

pub(crate) fn client(stats: &Stats) -> Arc<ClientInfo> {
    let addr: SocketAddr = "127.0.0.1:5555".parse().unwrap();
    let c = Arc::new(ClientInfo::new(7, addr, None));
    let pool = stats.pool(&PoolKey {
        database: "appdb".into(),
        user: "app".into(),
    });
    c.logged_in(ClientLogin {
        database: "appdb".into(),
        user: "app".into(),
        application_name: String::new(),
        pool,
    });
    c
}

/// Runs `f` with a subscriber that writes to the returned buffer.
pub(crate) fn capture(json: bool, f: impl FnOnce()) -> Vec<String> {
    let out = Captured::default();
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(json, out.clone()));
    tracing::subscriber::with_default(subscriber, f);
    out.lines()
}

#[test]
fn json_lines_carry_the_clients_live_fields() {
    let stats = Stats::default();
    let me = client(&stats);
    let lines = capture(true, || {
        tracing::info!(listen = "127.0.0.1:6432", "outside any client");
        let mut slot = Some(me.clone());
        in_client(&mut slot, || {
            tracing::info!(reason = "listen", "pinned");
            me.set_server_pid(4242);
            me.set_trace_id(Some(0xabc));
            tracing::warn!(
                server.pid = 4242,
                n = 3u64,
                ok = true,
                took = 1.5,
                "with a server"
            );
            me.set_server_pid(0);
            me.set_trace_id(None);
            tracing::info!("after the transaction");
        });
        assert!(slot.is_some(), "the client is given back");
        tracing::info!("after the client");
    });
    let v: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(v.len(), 5, "{lines:#?}");
    assert_eq!(v[0]["message"], "outside any client");
    assert_eq!(v[0]["level"], "INFO");
    assert!(v[0].get("client.id").is_none());

    assert_eq!(v[1]["message"], "pinned");
    assert_eq!(v[1]["reason"], "listen");
    assert_eq!(v[1]["client.id"], 7);
    assert_eq!(v[1]["client.addr"], "127.0.0.1:5555");
    assert_eq!(v[1]["pool"], "appdb/app");
    assert!(v[1].get("server.pid").is_none());
    assert!(v[1].get("trace_id").is_none());

    assert_eq!(v[2]["level"], "WARN");
    assert_eq!(v[2]["server.pid"], 4242);
    assert_eq!(v[2]["trace_id"], "00000000000000000000000000000abc");
    assert_eq!(
        (v[2]["n"].clone(), v[2]["ok"].clone()),
        (3.into(), true.into())
    );
    assert_eq!(v[2]["took"], 1.5);
    // The event's own server.pid is not repeated.
    assert_eq!(lines[2].matches("server.pid").count(), 1, "{}", lines[2]);

    assert!(v[3].get("server.pid").is_none());
    assert!(v[3].get("trace_id").is_none());
    assert!(v[3]["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(v[4].get("client.id").is_none(), "{}", lines[4]);
}

#[test]
fn human_lines_use_the_same_names() {
    let stats = Stats::default();
    let me = client(&stats);
    me.set_server_pid(99);
    let lines = capture(false, || {
        in_client(&mut Some(me.clone()), || {
            tracing::info!(error = "two words", "session ended");
        });
    });
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert!(
        l.contains(" INFO dbwarden_proxy::trace::log::tests: session ended"),
        "{l}"
    );
    for part in [
        "error=\"two words\"",
        "client.id=7",
        "client.addr=127.0.0.1:5555",
        "pool=appdb/app",
        "server.pid=99",
    ] {
        assert!(l.contains(part), "{part} missing from {l}");
    }
}
