//! One client from accept to close: login, a server connection for the session, the relay,
//! and the release that makes the connection safe for the next client.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use dbwarden_config::{Config, PoolMode, SessionFeatures};
use dbwarden_pool::Lease;
use dbwarden_wire::backend::{self, tag as be, TxStatus};
use dbwarden_wire::encode::{self, Severity};
use dbwarden_wire::frontend::{self, tag as fe};
use dbwarden_wire::{ProtocolError, SqlState};
use tokio::net::TcpStream;

use super::handshake::{self, Opening, StartupInfo};
use super::{auth, params};
use crate::cancel::CancelKey;
use crate::conn::Conn;
use crate::error::SessionError;
use crate::pools::PoolHandle;
use crate::relay::{Act, Half, Hooks, RelayEnd};
use crate::server::{send_cancel, ServerConn};
use crate::stats::{ClientInfo, ClientLogin, ClientState, Meter, TimeoutKind};
use crate::stream::{tune, Stream};
use crate::timeouts::{relay_timed, Ended, Limits, Progress, Timed};
use crate::txn::gucs::{valid_name, ClientGucs};
use crate::txn::TxnClient;
use crate::Shared;

/// How long a reset query may take before the connection is closed instead.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// Not an `async fn`, and the set-up is done before the future is made: what only the
/// set-up needs (the accepted socket, the peer's address) would otherwise stay in the
/// client's task, next to what the session holds, for as long as the client is connected.
pub fn handle_client(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> impl std::future::Future<Output = ()> + Send {
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let slot = ClientSlot::take(&shared);
    tune(&tcp);
    let me = shared
        .stats
        .clients
        .insert(id, ClientInfo::new(id, peer, tcp.local_addr().ok()));
    let config = shared.config.load_full();
    let mut client = Conn::new(Stream::Plain(tcp), config.proxy.max_message_size);
    let current = me.shared();
    let session = async move {
        let _slot = &slot; // held until the client is gone
                           // KILL / KILL_CLIENT from the admin console end the session wherever it is; dropping
                           // it drops its server connection, which PostgreSQL sees close. (In transaction mode
                           // the session notices first and ends itself, see `txn::run`.)
        let ended = tokio::select! {
            // The session first, and no random branch order: this runs on every wake-up.
            biased;
            ended = session(&mut client, &shared, &config, &me) => ended,
            () = me.killed() => Err(killed()),
        };
        if let Err(e) = ended {
            // Boxed: rare, and its state would otherwise be laid out beside the session's.
            Box::pin(report(&mut client, e, &me)).await;
        }
    };
    crate::trace::log::for_client(current, session)
}

/// Tells the client why its session ended, when it should hear it.
async fn report(client: &mut Conn, e: SessionError, me: &ClientInfo) {
    match e.for_client() {
        Some((code, message)) => {
            if let Some(login) = me.login() {
                login.pool.error(code.code());
            }
            tracing::info!(error = %e, code = %code, "client session ended with an error");
            encode::error_response(&mut client.wbuf, Severity::Fatal, code, &message);
            let _ = client.flush().await;
        }
        None => tracing::debug!(error = %e, "client went away"),
    }
}

/// What a client closed from the admin console (KILL, KILL_CLIENT) is told.
pub fn killed() -> SessionError {
    SessionError::refused(
        SqlState::ADMIN_SHUTDOWN,
        "dbwarden: connection closed from the admin console (KILL)",
    )
}

/// Counts live clients for `max_client_conn`.
struct ClientSlot(Arc<Shared>);

impl ClientSlot {
    fn take(shared: &Arc<Shared>) -> ClientSlot {
        shared.clients.fetch_add(1, Ordering::Relaxed);
        ClientSlot(shared.clone())
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn session(
    client: &mut Conn,
    shared: &Arc<Shared>,
    config: &Arc<Config>,
    me: &ClientInfo,
) -> Result<(), SessionError> {
    // Boxed: the login's state (handshake, SCRAM, checkout) is the largest this task ever
    // holds, and a boxed future is freed when the login ends instead of sizing every
    // client's task for the rest of its session. For the same reason nothing of the login
    // is kept in a named local here: a future keeps the storage of every local still in
    // scope at an await, and this one lives as long as the client.
    let Some(logged_in) = Box::pin(login_or_console(client, shared, config, me)).await? else {
        return Ok(());
    };
    let mode = logged_in.mode;
    tracing::debug!(db = %logged_in.info.database, user = %logged_in.info.user, ?mode, "session started");
    // What login needed and the session does not: the buffers that carried the handshake
    // (the startup packet goes with `logged_in`).
    client.shrink();

    if mode == PoolMode::Transaction {
        let idle = transaction_client(client, logged_in, shared, config, me);
        return crate::txn::run(client, idle).await;
    }
    Box::pin(session_mode(client, shared, config, me, logged_in)).await
}

/// The login, within `client_login_timeout`: the pool client's login, or `None` when there
/// is no pool session to run (a cancel request, or an admin console session, run here).
async fn login_or_console(
    client: &mut Conn,
    shared: &Arc<Shared>,
    config: &Arc<Config>,
    me: &ClientInfo,
) -> Result<Option<Box<LoggedIn>>, SessionError> {
    let login_timeout = config.proxy.client_login_timeout;
    let opened = tokio::time::timeout(login_timeout, login(client, shared, config, me))
        .await
        .map_err(|_| login_timed_out(shared, login_timeout))??;
    match opened {
        None => Ok(None), // a cancel request
        Some(Opened::Console(role, _cancel_key)) => {
            // Boxed: a console session's state should not size every pool client's login.
            Box::pin(crate::admin::run(client, shared, role)).await?;
            Ok(None)
        }
        Some(Opened::Pool(logged_in)) => Ok(Some(logged_in)),
    }
}

fn login_timed_out(shared: &Shared, limit: Duration) -> SessionError {
    shared.stats.metrics.timeout(TimeoutKind::ClientLogin);
    SessionError::refused(
        SqlState::PROTOCOL_VIOLATION,
        format!("dbwarden: client_login_timeout: login not completed within {limit:?}"),
    )
}

/// A transaction-mode client's state between transactions. Not `async`: what the login
/// left behind is taken apart here rather than kept in the session's own future.
fn transaction_client(
    client: &mut Conn,
    logged_in: Box<LoggedIn>,
    shared: &Arc<Shared>,
    config: &Arc<Config>,
    me: &ClientInfo,
) -> Box<crate::txn::Client> {
    let LoggedIn {
        pool,
        mut lease,
        gucs,
        cancel_key,
        ..
    } = *logged_in;
    // The login's connection goes back at once; each transaction checks one out. Unlinked
    // first: SHOW SERVERS would otherwise show it active for this client until another
    // client's checkout took it.
    unlink(me, &mut lease);
    lease.release();
    let tx = TxnClient {
        gucs,
        refuse_pins: config.pool.session_features == SessionFeatures::Refuse,
        ..TxnClient::default()
    };
    crate::txn::client(client, tx, pool, shared, config, cancel_key, me)
}

/// Session pooling: the login's server connection serves the client until it leaves. Its
/// own function so that its state is not part of a transaction-mode client's task.
async fn session_mode(
    client: &mut Conn,
    shared: &Arc<Shared>,
    config: &Config,
    me: &ClientInfo,
    logged_in: Box<LoggedIn>,
) -> Result<(), SessionError> {
    let LoggedIn {
        info,
        pool,
        mut lease,
        cancel_key,
        ..
    } = {
        let unboxed = logged_in; // freed at the end of this block, not of the session
        *unboxed
    };
    drop(info); // the startup packet
    let (pool, cancel_key) = (&pool, &cancel_key);
    cancel_key.attach(Some(lease.conn().cancel.clone()));
    link(me, &mut lease);
    let ctx = shared.server_ctx.load_full();
    let server = lease.conn_mut();
    let session_hooks = SessionHooks {
        pending: 0,
        status: server.status,
        params: Vec::new(),
    };
    let mut timed = Timed::new(session_hooks, Limits::from_config(&config.pool), true)
        .metered(Meter::new(pool.entry().stats.clone()).watched(watch(shared, config, me)));
    let max_message = config.proxy.max_message_size;
    let (mut up, mut down) = (Half::new(max_message), Half::new(max_message));
    up.seed(&client.rbuf.split());
    down.seed(&server.conn.rbuf.split());
    up.count_into(pool.entry().stats.clone(), true);
    down.count_into(pool.entry().stats.clone(), false);
    let ended = relay_timed(
        &mut client.stream,
        &mut server.conn.stream,
        &server.cancel,
        &mut up,
        &mut down,
        &mut timed,
        &ctx,
    )
    .await;
    cancel_key.attach(None);
    let hooks = &mut timed.inner;
    for (k, v) in std::mem::take(&mut hooks.params) {
        server.set_param(&k, &v);
    }
    server.status = hooks.status;

    let end = match ended {
        Ended::Relay(end) => end,
        Ended::Close(code, message) => {
            close_busy(lease, hooks.pending, shared);
            return Err(SessionError::refused(code, message));
        }
    };
    tracing::debug!(?end, pending = hooks.pending, "relay ended");
    match end {
        // `Deadline` is handled inside `relay_timed`; it never gets here.
        RelayEnd::ClientTerminate | RelayEnd::ClientEof | RelayEnd::Done | RelayEnd::Deadline => {
            finish_session(lease, hooks.pending, shared, config).await;
            Ok(())
        }
        RelayEnd::ClientGoneMidMessage => {
            // Resetting would append the reset query to the half message; close instead.
            close_busy(lease, hooks.pending, shared);
            Ok(())
        }
        RelayEnd::ClientIo(e) => {
            tracing::debug!(error = %e, "client connection failed");
            finish_session(lease, hooks.pending, shared, config).await;
            Ok(())
        }
        RelayEnd::ClientProtocol(e) => {
            close_busy(lease, hooks.pending, shared);
            Err(SessionError::ClientProtocol(e))
        }
        RelayEnd::ServerEof => Ok(()),
        RelayEnd::ServerIo(e) => Err(crate::error::ServerError::Io(e).into()),
        RelayEnd::ServerProtocol(e) => Err(crate::error::ServerError::Protocol(e).into()),
    }
}

impl Progress for SessionHooks {
    fn outstanding(&self) -> bool {
        self.pending > 0
    }

    fn in_transaction(&self) -> bool {
        self.status != TxStatus::Idle
    }
}

/// Session mode only watches: ReadyForQuery status, what is outstanding, Terminate.
struct SessionHooks {
    /// Queries and Syncs sent that have not had their ReadyForQuery yet.
    pending: u32,
    status: TxStatus,
    /// ParameterStatus reports seen on the way to the client.
    params: Vec<(String, String)>,
}

impl Hooks for SessionHooks {
    fn client_whole(&self, tag: u8) -> bool {
        tag == fe::TERMINATE
    }

    fn server_whole(&self, tag: u8) -> bool {
        tag == be::READY_FOR_QUERY || tag == be::PARAMETER_STATUS
    }

    fn client_frame(&mut self, tag: u8, _: &[u8], _: &mut BytesMut) -> Result<Act, ProtocolError> {
        if tag == fe::TERMINATE {
            return Ok(Act::Stop);
        }
        if frontend::expects_ready(tag) {
            self.pending += 1;
        }
        Ok(Act::Forward)
    }

    fn server_frame(
        &mut self,
        tag: u8,
        frame: &[u8],
        _: &mut BytesMut,
    ) -> Result<Act, ProtocolError> {
        match tag {
            be::READY_FOR_QUERY => {
                self.status = backend::ready_status(&frame[5..])?;
                self.pending = self.pending.saturating_sub(1);
            }
            be::PARAMETER_STATUS => {
                let (k, v) = backend::parameter_status(&frame[5..])?;
                self.params.push((k.to_owned(), v.to_owned()));
            }
            _ => {}
        }
        Ok(Act::Forward)
    }
}

/// Where a login leads: a pool, or the admin console (with the client's cancel key).
enum Opened {
    Pool(Box<LoggedIn>),
    Console(crate::admin::Role, CancelKey),
}

struct LoggedIn {
    info: StartupInfo,
    mode: PoolMode,
    pool: PoolHandle,
    lease: Lease<ServerConn>,
    gucs: ClientGucs,
    cancel_key: CancelKey,
}

async fn login(
    client: &mut Conn,
    shared: &Arc<Shared>,
    config: &Config,
    me: &ClientInfo,
) -> Result<Option<Opened>, SessionError> {
    let info = match handshake::open(client, shared).await? {
        Opening::Cancelled => return Ok(None),
        Opening::Session(info) => info,
    };
    if shared.clients.load(Ordering::Relaxed) > config.proxy.max_client_conn as usize {
        return Err(SessionError::refused(
            SqlState::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already (dbwarden max_client_conn)",
        ));
    }
    if crate::admin::is_console(&info.database) {
        // The same authentication as any client; who may use the console is checked after,
        // so a refusal does not tell a stranger which names are admins.
        auth::authenticate(client, &info.user, shared).await?;
        let role = crate::admin::role(config, &info.user)?;
        let key = crate::admin::greet(client, shared, &info, me);
        client.flush().await.map_err(SessionError::ClientIo)?;
        return Ok(Some(Opened::Console(role, key)));
    }
    let Some(db) = config.database(&info.database) else {
        return Err(SessionError::refused(
            SqlState::INVALID_CATALOG_NAME,
            format!("database \"{}\" does not exist", info.database),
        ));
    };
    auth::authenticate(client, &info.user, shared).await?;

    let unknown = || {
        SessionError::refused(
            SqlState::INVALID_CATALOG_NAME,
            format!("database \"{}\" does not exist", info.database),
        )
    };
    // The database was checked above, but a reload may have removed it since.
    let mut pool = PoolHandle::new(shared, &info.database, &info.user).ok_or_else(unknown)?;
    me.tls.store(client.stream.is_tls(), Ordering::Relaxed);
    me.logged_in(ClientLogin {
        database: info.database.clone(),
        user: info.user.clone(),
        application_name: params::requested(&info.params)
            .iter()
            .find(|(k, _)| k == "application_name")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        pool: pool.entry().stats.clone(),
    });
    me.set_state(ClientState::Waiting);
    let ctx = shared.server_ctx.load_full();
    shared
        .wait_while_paused(&info.database, config.pool.query_wait_timeout)
        .await?;
    let mut lease = pool
        .checkout(shared, &ctx, config.pool.query_wait_timeout, &info.user)
        .await?;
    link(me, &mut lease);

    // Bring the server connection to the client's startup settings (only what differs). In
    // transaction mode this also checks them: a bad TimeZone fails the login, as it would
    // on PostgreSQL, rather than some later transaction.
    let gucs = ClientGucs::from_startup(&params::requested(&info.params));
    if let Some(bad) = gucs.wanted.keys().find(|n| !valid_name(n)) {
        return Err(SessionError::refused(
            SqlState::PROTOCOL_VIOLATION,
            format!("invalid configuration parameter name \"{bad}\""),
        ));
    }
    let server = lease.conn_mut();
    let sql = server.sync_sql(&gucs);
    if let Some(sql) = sql {
        if let Some(err) = server.run(&sql).await? {
            let code = SqlState::from_code(&err.code).unwrap_or(SqlState::PROTOCOL_VIOLATION);
            return Err(SessionError::refused(code, err.message));
        }
    }

    let cancel_key = shared.cancels.register();
    encode::auth_ok(&mut client.wbuf);
    for (k, v) in &server.params {
        encode::parameter_status(&mut client.wbuf, k, v);
    }
    encode::backend_key_data(&mut client.wbuf, cancel_key.pid, &cancel_key.key);
    encode::ready_for_query(&mut client.wbuf, TxStatus::Idle);
    client.flush().await.map_err(SessionError::ClientIo)?;
    Ok(Some(Opened::Pool(Box::new(LoggedIn {
        info,
        mode: db.mode,
        pool,
        lease,
        gucs,
        cancel_key,
    }))))
}

/// The trace id, slow-query and span watcher of client `me`.
pub fn watch(shared: &Shared, config: &Config, me: &ClientInfo) -> crate::trace::Watch {
    let info = shared.stats.clients.get(me.id);
    // Registered for as long as its session runs; a stand-in only if that ever changes.
    let info = info.unwrap_or_else(|| Arc::new(ClientInfo::new(me.id, me.addr, me.local)));
    crate::trace::Watch::new(info, &config.log, shared.spans.clone())
}

/// Marks `me` and the server connection as linked to each other (SHOW CLIENTS/SERVERS).
pub fn link(me: &ClientInfo, lease: &mut Lease<ServerConn>) {
    let server = lease.conn();
    me.set_server_pid(server.pid());
    let now = me.set_state(ClientState::Active);
    if let Some(info) = &server.info {
        info.link_at(Some(me.id), now);
    }
}

/// The reverse of [`link`], as the connection goes back to the pool.
pub fn unlink(me: &ClientInfo, lease: &mut Lease<ServerConn>) {
    me.set_server_pid(0);
    let now = me.set_state(ClientState::Idle);
    if let Some(info) = &lease.conn().info {
        info.link_at(None, now);
    }
}

/// Session over: reset the connection and return it, or close it when it is not clean.
pub async fn finish_session(
    mut lease: Lease<ServerConn>,
    pending: u32,
    shared: &Shared,
    config: &Config,
) {
    if pending > 0 {
        // The client left with a query still running: stop it, and do not reuse the connection.
        close_busy(lease, pending, shared);
        return;
    }
    let server = lease.conn_mut();
    if server.status != TxStatus::Idle {
        tracing::debug!(
            server.pid = server.pid(),
            "closing server connection left in a transaction"
        );
        return; // dropping the lease closes it; PostgreSQL rolls the transaction back
    }
    let reset = &config.pool.reset_query;
    if !reset.is_empty() {
        match tokio::time::timeout(RESET_TIMEOUT, server.run(reset)).await {
            Ok(Ok(None)) if server.status == TxStatus::Idle => {
                // DISCARD ALL (or the configured reset) took settings and statements with it.
                server.gucs = Default::default();
                server.statements.clear();
            }
            outcome => {
                tracing::warn!(
                    server.pid = server.pid(),
                    ?outcome,
                    "reset query failed; closing the server connection"
                );
                return;
            }
        }
    }
    if lease.outlived(config.pool.server_lifetime, std::time::Instant::now()) {
        tokio::spawn(lease.detach().close());
        return;
    }
    if let Some(info) = &lease.conn().info {
        info.link(None);
    }
    lease.release();
}

/// Closes a server connection that may still be running something, cancelling the work first.
pub fn close_busy(lease: Lease<ServerConn>, pending: u32, shared: &Shared) {
    if pending > 0 {
        let target = lease.conn().cancel.clone();
        let ctx = shared.server_ctx.load_full();
        tokio::spawn(async move {
            if let Err(e) = send_cancel(&target, &ctx).await {
                tracing::warn!(error = %e, "cancelling abandoned query failed");
            }
        });
    }
    drop(lease);
}
