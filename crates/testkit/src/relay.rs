//! A TCP relay that forwards to a target and injects faults on command:
//! latency, stalls (both ways, or only the target's replies), resets and
//! refused connections.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The faults in force; connection tasks watch it.
#[derive(Clone, Debug, Default)]
struct Faults {
    delay: Duration,
    stalled: bool,
    /// Only the target-to-client direction is held.
    replies_stalled: bool,
    refuse: bool,
    /// Bumped by `reset_all`; a connection resets when it changes.
    resets: u64,
    shutdown: bool,
}

/// Forwards connections from [`Relay::addr`] to the target. Dropping it stops
/// the listener and closes every relayed connection.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    faults: watch::Sender<Faults>,
    open: Arc<AtomicUsize>,
    listener: JoinHandle<()>,
}

impl Relay {
    /// Listens on 127.0.0.1 at a free port; must be called inside a tokio
    /// runtime, which then runs the relay's tasks.
    pub async fn start(target: SocketAddr) -> io::Result<Relay> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (faults, _) = watch::channel(Faults::default());
        let open = Arc::new(AtomicUsize::new(0));
        let listener = tokio::spawn(accept_loop(
            listener,
            target,
            faults.subscribe(),
            open.clone(),
        ));
        Ok(Relay {
            addr,
            faults,
            open,
            listener,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits `d` before forwarding each chunk, in both directions.
    pub fn set_delay(&self, d: Duration) {
        self.faults.send_modify(|f| f.delay = d);
    }

    /// While on, nothing is forwarded: bytes wait in the relay and in socket
    /// buffers, and connections stay open.
    pub fn stall(&self, on: bool) {
        self.faults.send_modify(|f| f.stalled = on);
    }

    /// While on, nothing the target sends is forwarded, while what clients send
    /// still reaches it: a backend that has gone quiet. New connections reach the
    /// target too (a CancelRequest gets through), but wait for any reply.
    pub fn stall_replies(&self, on: bool) {
        self.faults.send_modify(|f| f.replies_stalled = on);
    }

    /// Resets (TCP RST, SO_LINGER 0) both sides of every open connection.
    /// Connections accepted afterwards are not affected.
    pub fn reset_all(&self) {
        self.faults.send_modify(|f| f.resets += 1);
    }

    /// While on, new connections are accepted and closed at once.
    pub fn refuse(&self, on: bool) {
        self.faults.send_modify(|f| f.refuse = on);
    }

    /// Open relayed connections (accepted and connected to the target). It
    /// changes asynchronously, so tests should poll it.
    pub fn connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.listener.abort();
        self.faults.send_modify(|f| f.shutdown = true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    faults: watch::Receiver<Faults>,
    open: Arc<AtomicUsize>,
) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(error) => {
                // Usually EMFILE; back off instead of spinning.
                tracing::warn!(%error, "relay accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if faults.borrow().refuse {
            drop(client);
            continue;
        }
        let faults = faults.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let server = match TcpStream::connect(target).await {
                Ok(server) => server,
                Err(error) => {
                    tracing::debug!(%error, %target, "relay cannot reach its target");
                    return;
                }
            };
            let _counted = Counted::new(open);
            relay_connection(client, server, faults).await;
        });
    }
}

/// Counts a connection as open for as long as it lives.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(open: Arc<AtomicUsize>) -> Counted {
        open.fetch_add(1, Ordering::SeqCst);
        Counted(open)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn relay_connection(
    mut client: TcpStream,
    mut server: TcpStream,
    mut faults: watch::Receiver<Faults>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let resets_at_start = faults.borrow_and_update().resets;
    let reset = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let upstream = pump(client_read, server_write, faults.clone(), |f| f.stalled);
        let downstream = pump(server_read, client_write, faults.clone(), |f| {
            f.stalled || f.replies_stalled
        });
        let interrupted = faults.wait_for(|f| f.shutdown || f.resets != resets_at_start);
        tokio::select! {
            _ = async { tokio::join!(upstream, downstream) } => false,
            current = interrupted => current.map(|f| !f.shutdown).unwrap_or(false),
        }
    };
    if reset {
        // SO_LINGER 0 turns the close below into an RST.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}

/// Copies one direction chunk by chunk, holding chunks while `held` says so and
/// honouring delays; passes EOF on as a half-close so protocols that rely on it
/// keep working.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    mut faults: watch::Receiver<Faults>,
    held: fn(&Faults) -> bool,
) where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if faults.wait_for(|f| !held(f)).await.is_err() {
            break;
        }
        let delay = faults.borrow().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
            // A stall that began during the delay holds this chunk too.
            if faults.wait_for(|f| !held(f)).await.is_err() {
                break;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
