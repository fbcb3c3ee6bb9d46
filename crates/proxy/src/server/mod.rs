//! Connections to PostgreSQL: open (TCP, TLS, startup, auth), control queries, cancel.

mod connect;

pub use connect::{connect, PhaseTimeouts, ServerCtx, ServerTarget};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dbwarden_wire::backend::{self, tag, ErrorFields, TxStatus};
use dbwarden_wire::encode;

use crate::conn::{Conn, ReadError};
use crate::error::{CheckFailed, ServerError};
use crate::txn::gucs::{sync_sql, ClientGucs, ServerGucs};
use crate::txn::statements::ServerStatements;

/// Where and how to send a CancelRequest for one server connection.
#[derive(Clone, Debug)]
pub struct CancelTarget {
    pub addr: SocketAddr,
    pub host: String,
    pub pid: i32,
    pub key: Vec<u8>,
    pub tls: bool,
}

/// One open, logged-in server connection.
pub struct ServerConn {
    pub conn: Conn,
    /// The server's reportable settings as last reported by ParameterStatus.
    pub params: Vec<(String, String)>,
    /// Shared with the cancel registry while a client holds the connection.
    pub cancel: Arc<CancelTarget>,
    pub status: TxStatus,
    /// Settings changed away from the login defaults (transaction mode keeps this exact).
    pub gucs: ServerGucs,
    /// Server-side prepared statements this connection holds (transaction mode).
    pub statements: ServerStatements,
    /// Its entry in SHOW SERVERS, once a pool owns it.
    pub info: Option<crate::stats::Registered<crate::stats::ServerInfo>>,
    /// The runtime its socket is registered with (see [`ServerConn::keep_to_this_runtime`]).
    pub runtime: Option<tokio::runtime::Id>,
}

impl ServerConn {
    pub fn pid(&self) -> i32 {
        self.cancel.pid
    }

    pub fn set_param(&mut self, name: &str, value: &str) {
        self.gucs.reported_changed();
        match self
            .params
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.params.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Moves the socket to the calling task's runtime when another one registered it: the
    /// pool is shared by every worker runtime, and a socket left on the runtime that opened
    /// it may miss wake-ups (tokio-rs/tokio#7337). A few syscalls, and only on a change.
    pub fn keep_to_this_runtime(&mut self) -> std::io::Result<()> {
        let here = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
        if here != self.runtime {
            self.conn.stream.rehome()?;
            self.runtime = here;
        }
        Ok(())
    }

    /// Says goodbye (Terminate) so the server logs a clean disconnect, then closes.
    pub async fn close(mut self) {
        if self.keep_to_this_runtime().is_err() {
            return;
        }
        encode::terminate(&mut self.conn.wbuf);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.conn.flush()).await;
    }

    /// Runs a control statement (reset query, SET) and reads through its ReadyForQuery.
    /// Returns the server's error, if it raised one; `Err` means the connection is unusable.
    pub async fn run(&mut self, sql: &str) -> Result<Option<ErrorFields>, ServerError> {
        Ok(self.query(sql).await?.1)
    }

    /// The health check of an idle connection: `sql` (`""` sends an empty query, one round
    /// trip that touches nothing) must come back without an error within `limit` and leave
    /// the connection idle. On `Err` the connection's state is unknown: close it.
    pub async fn check(&mut self, sql: &str, limit: Duration) -> Result<(), CheckFailed> {
        self.keep_to_this_runtime().map_err(ServerError::Io)?;
        // SHOW SERVERS and the gauges show it as `tested` meanwhile.
        let before = self.info.as_ref().map(|i| i.state());
        self.set_info_state(Some(crate::stats::ServerState::Tested));
        let out = match tokio::time::timeout(limit, self.run(sql)).await {
            Err(_) => Err(CheckFailed::Timeout(limit)),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(Some(fields))) => Err(CheckFailed::Rejected(fields)),
            Ok(Ok(None)) if self.status != TxStatus::Idle => Err(CheckFailed::NotIdle),
            Ok(Ok(None)) => Ok(()),
        };
        self.set_info_state(before);
        out
    }

    fn set_info_state(&self, state: Option<crate::stats::ServerState>) {
        if let (Some(info), Some(state)) = (&self.info, state) {
            info.set_state(state);
        }
    }

    /// Runs a query that returns one row and gives its columns as text (`None` for NULL).
    pub async fn fetch_row(&mut self, sql: &str) -> Result<Vec<Option<String>>, ServerError> {
        match self.query(sql).await? {
            (row, None) => Ok(row),
            (_, Some(fields)) => Err(ServerError::Rejected {
                addr: self.cancel.addr.to_string(),
                fields,
            }),
        }
    }

    /// The proxy's own simple query: its last row, and the error if the server raised one.
    /// ParameterStatus reports are recorded; notices and command tags are for no one.
    async fn query(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<Option<String>>, Option<ErrorFields>), ServerError> {
        encode::query(&mut self.conn.wbuf, sql);
        self.conn.flush().await?;
        let (mut row, mut error) = (Vec::new(), None);
        loop {
            let frame = self.conn.read_frame().await.map_err(read_err)?;
            match frame.tag() {
                tag::DATA_ROW => row = backend::data_row(frame.body())?,
                tag::ERROR_RESPONSE => error = Some(backend::error_fields(frame.body())?),
                tag::PARAMETER_STATUS => {
                    let (k, v) = backend::parameter_status(frame.body())?;
                    let (k, v) = (k.to_owned(), v.to_owned());
                    self.set_param(&k, &v);
                }
                tag::READY_FOR_QUERY => {
                    self.status = backend::ready_status(frame.body())?;
                    return Ok((row, error));
                }
                _ => {}
            }
        }
    }

    /// The query that brings this connection to `client`'s settings (see `txn::gucs`).
    pub fn sync_sql(&mut self, client: &ClientGucs) -> Option<String> {
        let params = &self.params;
        sync_sql(client, &mut self.gucs, |n| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        })
    }
}

pub(crate) fn read_err(e: ReadError) -> ServerError {
    match e {
        ReadError::Io(e) => ServerError::Io(e),
        ReadError::Protocol(e) => ServerError::Protocol(e),
        ReadError::Eof => ServerError::Closed,
    }
}

/// Sends a CancelRequest for `target` on a new connection, as PostgreSQL requires.
pub async fn send_cancel(target: &CancelTarget, ctx: &ServerCtx) -> Result<(), ServerError> {
    let mut conn = connect::open_stream(target.addr, &target.host, ctx, Some(target.tls)).await?;
    encode::cancel_request(&mut conn.wbuf, target.pid, &target.key);
    conn.flush().await?;
    // The server closes without answering; wait briefly so the request is read, not reset.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), conn.read_frame()).await;
    Ok(())
}
