//! The relay over loopback sockets: buffers are lent while bytes are pending, grow for a
//! frame the hooks need whole, and go back (or are freed, when grown) once a side is drained.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

use bytes::BytesMut;
use dbwarden_wire::ProtocolError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::buffers::{self, BUF_SIZE};
use super::{relay, Act, Half, Hooks, RelayEnd};
use crate::stream::Stream;

const MB: usize = 1024 * 1024;

async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.unwrap(), b.unwrap().0)
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![tag];
    f.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// Wants Query and DataRow whole (so a big one must grow the buffer) and ends the exchange
/// after ReadyForQuery, as transaction mode does. Records the length of every whole frame.
#[derive(Default)]
struct Whole {
    client_frames: Vec<(u8, usize)>,
    server_frames: Vec<(u8, usize)>,
}

impl Hooks for Whole {
    fn client_whole(&self, tag: u8) -> bool {
        tag == b'Q'
    }
    fn server_whole(&self, tag: u8) -> bool {
        tag == b'D' || tag == b'Z'
    }
    fn client_frame(&mut self, tag: u8, f: &[u8], _: &mut BytesMut) -> Result<Act, ProtocolError> {
        self.client_frames.push((tag, f.len()));
        Ok(Act::Forward)
    }
    fn server_frame(&mut self, tag: u8, f: &[u8], _: &mut BytesMut) -> Result<Act, ProtocolError> {
        self.server_frames.push((tag, f.len()));
        Ok(if tag == b'Z' {
            Act::ForwardStop
        } else {
            Act::Forward
        })
    }
}

/// The four sockets of one proxied exchange: the application's, the proxy's two, the server's.
struct Link {
    app: TcpStream,
    client: Stream,
    server: Stream,
    backend: TcpStream,
}

async fn link() -> Link {
    let (app, client) = socket_pair().await;
    let (server, backend) = socket_pair().await;
    Link {
        app,
        client: Stream::Plain(client),
        server: Stream::Plain(server),
        backend,
    }
}

fn next_buffer_is_standard() -> bool {
    let buf = buffers::take();
    let standard = buf.len() == BUF_SIZE;
    buffers::give(buf);
    standard
}

fn ready_for_query() -> Vec<u8> {
    frame(b'Z', b"I")
}

#[tokio::test]
async fn a_one_megabyte_row_grows_the_buffer_and_the_grown_buffer_is_not_kept() {
    let mut l = link().await;
    let (mut up, mut down) = (Half::new(64 * MB as u32), Half::new(64 * MB as u32));
    let mut hooks = Whole::default();
    let row: Vec<u8> = (0..MB).map(|i| (i % 251) as u8).collect();
    let mut reply = frame(b'D', &row);
    reply.extend(ready_for_query());

    let query = frame(b'Q', b"SELECT big\0");
    l.app.write_all(&query).await.unwrap();
    let backend = async {
        let mut got = vec![0; query.len()];
        l.backend.read_exact(&mut got).await.unwrap();
        l.backend.write_all(&reply).await.unwrap();
        got
    };
    let app = async {
        let mut got = vec![0; reply.len()];
        l.app.read_exact(&mut got).await.unwrap();
        got
    };
    let relayed = relay(&mut l.client, &mut l.server, &mut up, &mut down, &mut hooks);
    let (end, server_got, app_got) = tokio::join!(relayed, backend, app);

    assert!(matches!(end, RelayEnd::Done), "{end:?}");
    assert_eq!(server_got, query);
    assert!(app_got == reply, "the row arrived changed");
    assert_eq!(hooks.server_frames, vec![(b'D', 5 + MB), (b'Z', 6)]);
    assert!(
        !up.has_buffer() && !down.has_buffer(),
        "drained halves keep no buffer"
    );
    // The buffer that grew to hold the row was freed, not put on the free list.
    assert!(next_buffer_is_standard());
}

#[tokio::test]
async fn a_one_megabyte_query_grows_the_buffer_and_arrives_whole() {
    let mut l = link().await;
    let (mut up, mut down) = (Half::new(64 * MB as u32), Half::new(64 * MB as u32));
    let mut hooks = Whole::default();
    let mut sql = b"SELECT '".to_vec();
    sql.extend((0..MB).map(|i| b'a' + (i % 26) as u8));
    sql.extend_from_slice(b"'\0");
    let query = frame(b'Q', &sql);

    let app = async {
        l.app.write_all(&query).await.unwrap();
        let mut got = vec![0; 6];
        l.app.read_exact(&mut got).await.unwrap();
        got
    };
    let backend = async {
        let mut got = vec![0; query.len()];
        l.backend.read_exact(&mut got).await.unwrap();
        l.backend.write_all(&ready_for_query()).await.unwrap();
        got
    };
    let relayed = relay(&mut l.client, &mut l.server, &mut up, &mut down, &mut hooks);
    let (end, app_got, server_got) = tokio::join!(relayed, app, backend);

    assert!(matches!(end, RelayEnd::Done), "{end:?}");
    assert!(server_got == query, "the query arrived changed");
    assert_eq!(app_got, ready_for_query());
    assert_eq!(hooks.client_frames, vec![(b'Q', query.len())]);
    assert!(!up.has_buffer() && !down.has_buffer());
    assert!(next_buffer_is_standard());
}

#[tokio::test]
async fn exchanges_after_a_big_one_start_again_from_a_standard_buffer() {
    let mut l = link().await;
    let (mut up, mut down) = (Half::new(64 * MB as u32), Half::new(64 * MB as u32));
    for size in [MB, 10, 3 * BUF_SIZE, 0] {
        let mut hooks = Whole::default();
        let mut reply = frame(b'D', &vec![7; size]);
        reply.extend(ready_for_query());
        let query = frame(b'Q', b"SELECT 1\0");
        l.app.write_all(&query).await.unwrap();
        let backend = async {
            let mut got = vec![0; query.len()];
            l.backend.read_exact(&mut got).await.unwrap();
            l.backend.write_all(&reply).await.unwrap();
        };
        let app = async {
            let mut got = vec![0; reply.len()];
            l.app.read_exact(&mut got).await.unwrap();
            got
        };
        let relayed = relay(&mut l.client, &mut l.server, &mut up, &mut down, &mut hooks);
        let (end, (), app_got) = tokio::join!(relayed, backend, app);
        assert!(matches!(end, RelayEnd::Done), "{end:?}");
        assert!(app_got == reply, "reply of {size} bytes arrived changed");
        assert_eq!(hooks.server_frames[0], (b'D', 5 + size));
        assert!(!down.has_buffer());
        down = up.opposite(); // as transaction mode does: a new one for each exchange
    }
    assert!(next_buffer_is_standard());
}

#[tokio::test]
async fn an_idle_client_waits_without_a_buffer_and_gets_one_when_it_speaks() {
    let (mut app, client) = socket_pair().await;
    let mut client = Stream::Plain(client);
    let mut up = Half::new(MB as u32);
    {
        let mut fill = pin!(up.fill(&mut client));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fill.as_mut().poll(&mut cx).is_pending());
    }
    assert!(
        !up.has_buffer(),
        "waiting for a read must not hold a buffer"
    );

    let query = frame(b'Q', b"SELECT 1\0");
    app.write_all(&query).await.unwrap();
    let mut got = 0;
    while got < query.len() {
        let n = up.fill(&mut client).await.unwrap();
        assert!(n > 0);
        got += n;
    }
    assert!(up.has_buffer());
    assert_eq!(up.first_frame(), Some((b'Q', &query[..])));
}

#[test]
fn a_seed_of_nothing_takes_no_buffer() {
    let mut h = Half::new(1024);
    h.seed(&[]);
    assert!(!h.has_buffer() && h.is_empty());
    h.seed(b"Q\0\0\0\x04");
    assert!(h.has_buffer());
}

#[test]
fn buffers_go_back_to_the_free_list_unless_they_grew() {
    let (a, b) = (buffers::take(), buffers::take());
    let before = buffers::free_here();
    buffers::give(a);
    assert_eq!(buffers::free_here(), before + 1);
    let mut grown = b;
    grown.resize(2 * BUF_SIZE, 0);
    buffers::give(grown);
    assert_eq!(buffers::free_here(), before + 1, "a grown buffer is freed");
}
