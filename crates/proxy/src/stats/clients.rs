//! What the admin console and the HTTP API show of one client connection.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use super::{unix_us, PoolStats};

/// Where a client is in its life. In PgBouncer's terms (SHOW CLIENTS) `Idle` and `Active`
/// are both "active": logged in and not waiting for a server connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ClientState {
    Login = 0,
    /// Logged in, no server connection (transaction mode between transactions).
    Idle = 1,
    /// Waiting for a server connection.
    Waiting = 2,
    /// Holding a server connection.
    Active = 3,
}

impl ClientState {
    fn from_u8(v: u8) -> ClientState {
        match v {
            1 => ClientState::Idle,
            2 => ClientState::Waiting,
            3 => ClientState::Active,
            _ => ClientState::Login,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClientState::Login => "login",
            ClientState::Idle => "idle",
            ClientState::Waiting => "waiting",
            ClientState::Active => "active",
        }
    }
}

/// The kill request of one client. Not a `tokio::sync::Notify`: the client's task polls it
/// each time it wakes (every message batch), and a Notify takes a mutex on every poll; this
/// costs one atomic load and a waker comparison, and locks only to register the waker once.
#[derive(Default)]
struct KillSwitch {
    flag: AtomicBool,
    waker: parking_lot::Mutex<Option<Waker>>,
}

/// The future of [`ClientInfo::killed`].
pub struct Killed<'a> {
    switch: &'a KillSwitch,
    /// The waker last stored in the switch.
    registered: Option<Waker>,
}

impl Future for Killed<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.switch.flag.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        *self.switch.waker.lock() = Some(cx.waker().clone());
        self.registered = Some(cx.waker().clone());
        // A kill between the first load and the registration found no waker to wake.
        if self.switch.flag.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Set once, when a login to the admin console succeeds (such a client has no pool).
pub struct ConsoleLogin {
    pub database: String,
    pub user: String,
    pub application_name: String,
}

/// Set once, when the login succeeds.
pub struct ClientLogin {
    pub database: String,
    pub user: String,
    pub application_name: String,
    pub pool: Arc<PoolStats>,
}

enum Login {
    Pool(ClientLogin),
    Console(ConsoleLogin),
}

pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub local: Option<SocketAddr>,
    pub connected_at: SystemTime,
    pub tls: AtomicBool,
    /// One cell for either kind of login: a client makes one of them, and every client
    /// would otherwise carry room for both.
    login: OnceLock<Login>,
    /// KILL / KILL_CLIENT from the admin console: the client's task ends its session.
    kill: KillSwitch,
    state: AtomicU8,
    /// When the state last changed (Unix µs): PgBouncer's `request_time`, and the start of
    /// a wait.
    since_us: AtomicU64,
    server_pid: AtomicI32,
    /// How long the last wait for a server connection took (µs), until a span takes it.
    checkout_wait_us: AtomicU64,
    /// The W3C trace id of the client's current request, when it sent one (0 = none).
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
}

impl ClientInfo {
    pub fn new(id: u64, addr: SocketAddr, local: Option<SocketAddr>) -> ClientInfo {
        let now = SystemTime::now();
        ClientInfo {
            id,
            addr,
            local,
            connected_at: now,
            tls: AtomicBool::new(false),
            login: OnceLock::new(),
            kill: KillSwitch::default(),
            state: AtomicU8::new(ClientState::Login as u8),
            since_us: AtomicU64::new(unix_us(now)),
            server_pid: AtomicI32::new(0),
            checkout_wait_us: AtomicU64::new(0),
            trace_hi: AtomicU64::new(0),
            trace_lo: AtomicU64::new(0),
        }
    }

    pub fn logged_in(&self, login: ClientLogin) {
        let _ = self.login.set(Login::Pool(login));
        self.set_state(ClientState::Idle);
    }

    pub fn login(&self) -> Option<&ClientLogin> {
        match self.login.get()? {
            Login::Pool(login) => Some(login),
            Login::Console(_) => None,
        }
    }

    pub fn console_login(&self, login: ConsoleLogin) {
        let _ = self.login.set(Login::Console(login));
        self.set_state(ClientState::Idle);
    }

    /// The admin console login, for a client of the console.
    pub fn console(&self) -> Option<&ConsoleLogin> {
        match self.login.get()? {
            Login::Console(login) => Some(login),
            Login::Pool(_) => None,
        }
    }

    /// Asks the client's task to close the session (it need not be waiting yet: the request
    /// is kept until it is).
    pub fn kill(&self) {
        self.kill.flag.store(true, Ordering::Release);
        if let Some(waker) = self.kill.waker.lock().take() {
            waker.wake();
        }
    }

    /// Whether [`ClientInfo::kill`] was called (a task that is woken by [`ClientInfo::killed`]
    /// anyway may look without a future of its own).
    pub fn is_killed(&self) -> bool {
        self.kill.flag.load(Ordering::Acquire)
    }

    /// Completes once [`ClientInfo::kill`] was called.
    pub fn killed(&self) -> Killed<'_> {
        Killed {
            switch: &self.kill,
            registered: None,
        }
    }

    pub fn state(&self) -> ClientState {
        ClientState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Returns the time it read (Unix microseconds), for a server connection linked in the
    /// same breath ([`super::ServerInfo::link_at`]): one clock read for both.
    pub fn set_state(&self, state: ClientState) -> u64 {
        let now = unix_us(SystemTime::now());
        // Only the client's own task changes its state, so load-then-store is enough.
        let before = self.state.load(Ordering::Relaxed);
        self.state.store(state as u8, Ordering::Relaxed);
        let since = self.since_us.load(Ordering::Relaxed);
        self.since_us.store(now, Ordering::Relaxed);
        if before == ClientState::Waiting as u8 && state == ClientState::Active {
            self.checkout_wait_us
                .store(now.saturating_sub(since), Ordering::Relaxed);
        }
        now
    }

    /// The last wait for a server connection, once: a later transaction that needed no
    /// checkout (session mode) reports none.
    pub fn take_checkout_wait(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.checkout_wait_us.swap(0, Ordering::Relaxed))
    }

    /// Unix µs of the last state change.
    pub fn since_us(&self) -> u64 {
        self.since_us.load(Ordering::Relaxed)
    }

    pub fn set_server_pid(&self, pid: i32) {
        self.server_pid.store(pid, Ordering::Relaxed);
    }

    /// The backend pid of the linked server connection, 0 when none.
    pub fn server_pid(&self) -> i32 {
        self.server_pid.load(Ordering::Relaxed)
    }

    pub fn set_trace_id(&self, id: Option<u128>) {
        let v = id.unwrap_or(0);
        self.trace_hi.store((v >> 64) as u64, Ordering::Relaxed);
        self.trace_lo.store(v as u64, Ordering::Relaxed);
    }

    pub fn trace_id(&self) -> Option<u128> {
        let v = (u128::from(self.trace_hi.load(Ordering::Relaxed)) << 64)
            | u128::from(self.trace_lo.load(Ordering::Relaxed));
        (v != 0).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientInfo {
        ClientInfo::new(1, "127.0.0.1:5000".parse().unwrap(), None)
    }

    #[tokio::test]
    async fn a_kill_before_or_while_waiting_ends_the_wait() {
        let early = client();
        early.kill();
        early.killed().await;

        let waiting = Arc::new(client());
        let w = waiting.clone();
        let task = tokio::spawn(async move { w.killed().await });
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        waiting.kill();
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("woken by the kill")
            .unwrap();
    }
}
