//! A minimal PostgreSQL client over one socket: startup, authentication and the simple
//! query protocol, with text results. Written on `postgres-protocol` rather than
//! `tokio-postgres` because the doctor must time TLS negotiation, authentication and
//! the first query separately on the same connection and report which
//! authentication method the server actually asked for; `tokio-postgres` hides both.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::{backend::Message, frontend};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::probe::Io;

#[derive(Debug, Error)]
pub enum PgError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{severity} {code}: {message}")]
    Server {
        severity: String,
        code: String,
        message: String,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("connection is unusable after an earlier timeout")]
    Broken,
}

impl PgError {
    /// The SQLSTATE, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            PgError::Server { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Text rows of one result set.
#[derive(Debug, Default, Clone)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// One row with access by column name.
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Option<String>],
}

impl<'a> Row<'a> {
    pub fn str(&self, col: &str) -> Option<&'a str> {
        let i = self.columns.iter().position(|c| c == col)?;
        self.values.get(i)?.as_deref()
    }
    pub fn string(&self, col: &str) -> String {
        self.str(col).unwrap_or("").to_string()
    }
    pub fn f64(&self, col: &str) -> Option<f64> {
        self.str(col)?.parse().ok()
    }
    pub fn i64(&self, col: &str) -> Option<i64> {
        self.str(col)?.parse().ok()
    }
    pub fn bool(&self, col: &str) -> bool {
        self.str(col) == Some("t")
    }
}

impl Rows {
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|v| Row {
            columns: &self.columns,
            values: v,
        })
    }
    pub fn first(&self) -> Option<Row<'_>> {
        self.iter().next()
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

pub struct PgConn {
    io: Box<dyn Io>,
    buf: BytesMut,
    out: BytesMut,
    /// ParameterStatus values (server_version, TimeZone, ...).
    pub params: BTreeMap<String, String>,
    /// The address the probe connected to.
    pub peer: Option<std::net::SocketAddr>,
    broken: bool,
}

impl PgConn {
    pub fn new(io: Box<dyn Io>) -> PgConn {
        PgConn {
            io,
            buf: BytesMut::with_capacity(8192),
            out: BytesMut::with_capacity(1024),
            params: BTreeMap::new(),
            peer: None,
            broken: false,
        }
    }

    pub async fn send_startup(&mut self, params: &[(&str, &str)]) -> Result<(), PgError> {
        self.out.clear();
        frontend::startup_message(params.iter().copied(), &mut self.out)?;
        self.flush().await
    }

    pub async fn send_password(&mut self, pw: &[u8]) -> Result<(), PgError> {
        self.out.clear();
        frontend::password_message(pw, &mut self.out)?;
        self.flush().await
    }

    pub async fn send_sasl_initial(&mut self, mech: &str, data: &[u8]) -> Result<(), PgError> {
        self.out.clear();
        frontend::sasl_initial_response(mech, data, &mut self.out)?;
        self.flush().await
    }

    pub async fn send_sasl(&mut self, data: &[u8]) -> Result<(), PgError> {
        self.out.clear();
        frontend::sasl_response(data, &mut self.out)?;
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), PgError> {
        self.io.write_all(&self.out).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// The next backend message; notices and parameter changes are absorbed here.
    pub async fn next(&mut self) -> Result<Message, PgError> {
        loop {
            if let Some(m) = Message::parse(&mut self.buf)? {
                match m {
                    Message::NoticeResponse(_) => continue,
                    Message::ParameterStatus(p) => {
                        self.params
                            .insert(p.name()?.to_string(), p.value()?.to_string());
                        continue;
                    }
                    m => return Ok(m),
                }
            }
            let n = self.io.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(PgError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Runs one statement with the simple query protocol and returns the last result
    /// set. The client-side wait is bounded too, in case the server never answers.
    pub async fn query(&mut self, sql: &str, timeout: Duration) -> Result<Rows, PgError> {
        if self.broken {
            return Err(PgError::Broken);
        }
        match tokio::time::timeout(timeout, self.query_inner(sql)).await {
            Ok(r) => r,
            Err(_) => {
                // Half-read responses would be taken for the next query's: stop here.
                self.broken = true;
                Err(PgError::Timeout(timeout))
            }
        }
    }

    async fn query_inner(&mut self, sql: &str) -> Result<Rows, PgError> {
        self.out.clear();
        frontend::query(sql, &mut self.out)?;
        self.flush().await?;
        let mut rows = Rows::default();
        let mut error = None;
        loop {
            match self.next().await? {
                Message::RowDescription(d) => {
                    rows = Rows::default();
                    let mut fields = d.fields();
                    while let Some(f) = fields.next()? {
                        rows.columns.push(f.name().to_string());
                    }
                }
                Message::DataRow(r) => {
                    let buf = r.buffer();
                    let mut ranges = r.ranges();
                    let mut vals = Vec::with_capacity(rows.columns.len());
                    while let Some(range) = ranges.next()? {
                        vals.push(range.map(|rg| String::from_utf8_lossy(&buf[rg]).into_owned()));
                    }
                    rows.rows.push(vals);
                }
                Message::ErrorResponse(e) => error = Some(server_error(&e)),
                Message::ReadyForQuery(_) => break,
                Message::CommandComplete(_) | Message::EmptyQueryResponse => {}
                Message::CopyInResponse(_) | Message::CopyOutResponse(_) => {
                    self.broken = true;
                    return Err(PgError::Protocol("unexpected COPY".into()));
                }
                _ => {}
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// Says goodbye so the server logs a clean disconnect rather than an EOF.
    pub async fn close(mut self) {
        self.out.clear();
        frontend::terminate(&mut self.out);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
        let _ = self.io.shutdown().await;
    }
}

pub fn server_error(e: &postgres_protocol::message::backend::ErrorResponseBody) -> PgError {
    let mut severity = String::new();
    let mut code = String::new();
    let mut message = String::new();
    let mut fields = e.fields();
    while let Ok(Some(f)) = fields.next() {
        match f.type_() {
            b'S' => severity = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            b'C' => code = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            _ => {}
        }
    }
    PgError::Server {
        severity,
        code,
        message,
    }
}
