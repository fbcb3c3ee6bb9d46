//! The transaction-mode view of the two byte streams.
//!
//! Client messages are looked at one by one: named statements are renamed to their
//! server-side names (and prepared on this server connection first when it lacks them),
//! statements that change session state are noted. Every message that the server answers is
//! queued with what its answer looks like, so that answers the proxy makes up (ParseComplete
//! for a statement the connection already has, CloseComplete for a client-side Close) are
//! slotted in at exactly the place the server would have sent them, and answers to the proxy's
//! own messages are swallowed. The queue also tells when the transaction is over: a
//! ReadyForQuery that says idle with nothing else outstanding.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use dbwarden_wire::backend::{self, tag as be, TxStatus};
use dbwarden_wire::encode;
use dbwarden_wire::frontend::{self, tag as fe};
use dbwarden_wire::ProtocolError;

use super::gucs::ClientGucs;
use super::statements::{ServerStatements, Statement, StatementCache};
use crate::relay::{Act, Hooks};
use crate::sql::{analyze_with, may_touch_session, Effect};

/// What the server (or the proxy) owes the client for one message, in order.
#[derive(Debug)]
pub(crate) enum Expect {
    Parse(Option<(String, Arc<Statement>)>),
    Bind,
    Describe,
    Execute,
    Close,
    Sync,
    /// A simple Query or FunctionCall: answered up to its ReadyForQuery.
    Query,
    SynthParse,
    SynthClose,
    SwallowParse(Arc<Statement>),
    SwallowClose,
    /// The proxy's own simple query (settings sync): swallowed through its ReadyForQuery.
    Internal,
}

impl Expect {
    fn synthetic(&self) -> bool {
        matches!(self, Expect::SynthParse | Expect::SynthClose)
    }
}

/// A client's state that outlives any one server connection.
#[derive(Default)]
pub struct TxnClient {
    pub gucs: ClientGucs,
    pub statements: HashMap<String, Arc<Statement>>,
    /// Why the client is bound to its server connection for good, once it is.
    pub pinned: Option<&'static str>,
    /// Refuse session-only features instead of pinning.
    pub refuse_pins: bool,
}

/// What a transaction did that the session must follow up on once it ends.
#[derive(Default, Debug)]
pub struct Followup {
    /// Settings the client's statements changed: re-read them from the server.
    pub touched: Vec<String>,
    pub touched_all: bool,
    /// Names that a RESET sent back to their defaults.
    pub reset: Vec<String>,
    /// ParameterStatus reports seen.
    pub reported: Vec<(String, String)>,
    /// The proxy's own sync query failed: the connection's state is unknown.
    pub internal_failed: bool,
    /// A pin happened in this transaction (first time only), for logging.
    pub newly_pinned: Option<&'static str>,
    /// Named statements the server connection had / lacked / closed for room (for stats).
    pub prepared: [u64; 3],
}

pub struct TxnHooks<'a> {
    queue: VecDeque<Expect>,
    skipping: bool,
    /// How many made-up answers the queue holds: with none (and no error being skipped
    /// past) a server frame needs no look at the queue's head.
    synthetic: u32,
    pub status: TxStatus,
    client: &'a mut TxnClient,
    server_statements: &'a mut ServerStatements,
    cache: &'a StatementCache,
    max_prepared: usize,
    /// `standard_conforming_strings` of the session: with it off, `\'` escapes a quote,
    /// which moves statement boundaries.
    standard_strings: bool,
    pub followup: Followup,
}

impl<'a> TxnHooks<'a> {
    pub fn new(
        client: &'a mut TxnClient,
        server_statements: &'a mut ServerStatements,
        cache: &'a StatementCache,
        max_prepared: usize,
        status: TxStatus,
        standard_strings: bool,
    ) -> Self {
        TxnHooks {
            queue: spare::take(),
            skipping: false,
            synthetic: 0,
            status,
            client,
            server_statements,
            cache,
            max_prepared,
            standard_strings,
            followup: Followup::default(),
        }
    }

    /// Notes that the proxy sent a query of its own ahead of the client's messages.
    pub fn expect_internal(&mut self) {
        self.queue.push_back(Expect::Internal);
    }

    /// Whether the server still owes answers (the connection cannot be given back yet).
    pub fn outstanding(&self) -> bool {
        !self.queue.is_empty()
    }

    fn pin(&mut self, reason: &'static str) {
        if self.client.pinned.is_none() {
            self.client.pinned = Some(reason);
            self.followup.newly_pinned = Some(reason);
        }
    }

    /// What `sql` does to the session: nothing for almost every query, found by one cheap
    /// pass (no allocation) before any analysis.
    fn effects(&self, sql: &str) -> Vec<Effect> {
        if may_touch_session(sql) {
            analyze_with(sql, self.standard_strings)
        } else {
            Vec::new()
        }
    }

    /// Follows what a statement does to the session. Returns a refusal when the statement
    /// needs a pin, pins are refused and the caller `can_refuse` the message.
    fn inspect(&mut self, effects: &[Effect], can_refuse: bool) -> Option<String> {
        for effect in effects {
            match effect {
                Effect::Set(n) | Effect::SetConfig(n) => self.followup.touched.push(n.clone()),
                Effect::Reset(n) => {
                    self.followup.reset.push(n.clone());
                    self.followup.touched.push(n.clone());
                }
                Effect::ResetAll => self.followup.touched_all = true,
                Effect::DiscardAll => {
                    self.followup.touched_all = true;
                    self.client.statements.clear();
                    self.server_statements.clear();
                }
                Effect::DeallocateAll => {
                    self.client.statements.clear();
                    self.server_statements.clear();
                }
                Effect::Prepare(_) => {
                    if let Some(refusal) = self.pin_or_refuse("SQL PREPARE", can_refuse) {
                        return Some(refusal);
                    }
                }
                Effect::Deallocate(_) | Effect::Execute(_) => {}
                Effect::Pin(reason) => {
                    if let Some(refusal) = self.pin_or_refuse(reason, can_refuse) {
                        return Some(refusal);
                    }
                }
            }
        }
        None
    }

    fn pin_or_refuse(&mut self, reason: &'static str, can_refuse: bool) -> Option<String> {
        if self.client.pinned.is_some() {
            return None;
        }
        if self.client.refuse_pins && can_refuse {
            return Some(format!(
                "dbwarden: {reason} needs a dedicated server connection, and this pool refuses to pin (pool.session_features = \"refuse\")"
            ));
        }
        self.pin(reason);
        None
    }

    /// Makes sure this server connection has `stmt`, preparing it ahead of the current
    /// message when not (its ParseComplete is swallowed).
    fn ensure_prepared(&mut self, stmt: &Arc<Statement>, inject: &mut BytesMut) {
        if self.server_statements.contains_and_touch(stmt) {
            self.followup.prepared[0] += 1;
            return;
        }
        self.followup.prepared[1] += 1;
        self.evict_for_room(stmt.clone(), inject);
        parse_frame(inject, &stmt.server_name, &stmt.body);
        self.queue.push_back(Expect::SwallowParse(stmt.clone()));
    }

    fn evict_for_room(&mut self, stmt: Arc<Statement>, inject: &mut BytesMut) {
        if let Some(old) = self.server_statements.insert(stmt, self.max_prepared) {
            self.followup.prepared[2] += 1;
            close_frame(inject, &old.server_name);
            self.queue.push_back(Expect::SwallowClose);
        }
    }

    fn client_parse(&mut self, frame: &[u8], inject: &mut BytesMut) -> Result<Act, ProtocolError> {
        let body = &frame[5..];
        let (name, sql) = frontend::parse_names(body)?;
        // A refused Parse would leave the server running the Bind/Execute that follow it
        // against whatever statement it has, so a Parse pins even where pins are refused.
        let effects = self.effects(sql);
        self.inspect(&effects, false);
        if name.is_empty() {
            self.queue.push_back(Expect::Parse(None));
            return Ok(Act::Forward);
        }
        let rest = &body[name.len() + 1..];
        let stmt = self.cache.intern(rest);
        self.client.statements.insert(name.to_owned(), stmt.clone());
        if self.server_statements.contains_and_touch(&stmt) {
            self.followup.prepared[0] += 1;
            self.queue.push_back(Expect::SynthParse);
            self.synthetic += 1;
            return Ok(Act::Drop);
        }
        self.followup.prepared[1] += 1;
        self.evict_for_room(stmt.clone(), inject);
        parse_frame(inject, &stmt.server_name, &stmt.body);
        self.queue
            .push_back(Expect::Parse(Some((name.to_owned(), stmt))));
        Ok(Act::Drop)
    }

    fn client_bind(&mut self, frame: &[u8], inject: &mut BytesMut) -> Result<Act, ProtocolError> {
        let body = &frame[5..];
        let (portal, name) = frontend::bind_names(body)?;
        self.queue.push_back(Expect::Bind);
        let rest = &body[portal.len() + 1 + name.len() + 1..];
        let Some(stmt) = self.client.statements.get(name).cloned() else {
            // Unnamed, or unknown: the server answers "does not exist" itself, unless the
            // name is one the proxy gives server-side statements (another client's).
            return Ok(match unreachable_name(name) {
                Some(other) => {
                    bind_frame(inject, portal, &other, rest);
                    Act::Drop
                }
                None => Act::Forward,
            });
        };
        self.queue.pop_back();
        self.ensure_prepared(&stmt, inject);
        self.queue.push_back(Expect::Bind);
        bind_frame(inject, portal, &stmt.server_name, rest);
        Ok(Act::Drop)
    }

    fn client_describe(
        &mut self,
        frame: &[u8],
        inject: &mut BytesMut,
    ) -> Result<Act, ProtocolError> {
        let (kind, name) = frontend::target(&frame[5..])?;
        let stmt = match kind {
            b'S' => self.client.statements.get(name).cloned(),
            _ => None,
        };
        let Some(stmt) = stmt else {
            self.queue.push_back(Expect::Describe);
            if kind == b'S' {
                if let Some(other) = unreachable_name(name) {
                    describe_frame(inject, &other);
                    return Ok(Act::Drop);
                }
            }
            return Ok(Act::Forward);
        };
        self.ensure_prepared(&stmt, inject);
        self.queue.push_back(Expect::Describe);
        describe_frame(inject, &stmt.server_name);
        Ok(Act::Drop)
    }

    fn client_close(&mut self, frame: &[u8]) -> Result<Act, ProtocolError> {
        let (kind, name) = frontend::target(&frame[5..])?;
        if kind == b'S' && !name.is_empty() {
            // The server-side statement stays for other clients; only the client's name goes.
            self.client.statements.remove(name);
            self.queue.push_back(Expect::SynthClose);
            self.synthetic += 1;
            return Ok(Act::Drop);
        }
        self.queue.push_back(Expect::Close);
        Ok(Act::Forward)
    }

    /// `DEALLOCATE name` alone in a Query, for a name in the client's own namespace: the
    /// server-side statement is deallocated instead (prepared first when this connection
    /// lacks it, so that the answer is the server's own, in the right transaction state).
    /// Other clients prepare it again when they next need it here. A name the client does
    /// not have must not reach one of the proxy's statements. Returns the query to send.
    fn deallocate_by_name(
        &mut self,
        sql: &str,
        effects: &[Effect],
        inject: &mut BytesMut,
    ) -> Option<String> {
        let [Effect::Deallocate(name)] = effects else {
            return None;
        };
        // In a failed transaction the server refuses any statement, as it should. A `;`
        // before the end may separate another statement, whose effects the server must
        // see: such a query passes through (conservative).
        if self.status == TxStatus::Failed || sql.trim_end().trim_end_matches(';').contains(';') {
            return None;
        }
        let Some(stmt) = self.client.statements.remove(name) else {
            return unreachable_name(name).map(|n| format!("DEALLOCATE \"{n}\""));
        };
        if !self.server_statements.contains_and_touch(&stmt) {
            parse_frame(inject, &stmt.server_name, &stmt.body);
            complete(inject, fe::SYNC);
            self.queue.push_back(Expect::Internal);
        }
        self.server_statements.remove(&stmt);
        Some(format!("DEALLOCATE {}", stmt.server_name))
    }

    /// Emits (or, after an error, discards) the made-up answers at the head of the queue.
    fn emit_synthetic(&mut self, inject: &mut BytesMut) {
        if self.synthetic == 0 && !self.skipping {
            return;
        }
        while let Some(head) = self.queue.front() {
            if self.skipping && !matches!(head, Expect::Sync) {
                // The server discards every message up to Sync after an error; so do we.
                match self.queue.pop_front() {
                    Some(Expect::Parse(Some((name, stmt)))) => {
                        self.forget_failed_parse(&name, &stmt)
                    }
                    Some(e) if e.synthetic() => self.synthetic -= 1,
                    _ => {}
                }
                continue;
            }
            if !head.synthetic() {
                return;
            }
            match self.queue.pop_front() {
                Some(Expect::SynthParse) => {
                    self.synthetic -= 1;
                    complete(inject, be::PARSE_COMPLETE)
                }
                Some(Expect::SynthClose) => {
                    self.synthetic -= 1;
                    complete(inject, be::CLOSE_COMPLETE)
                }
                _ => unreachable!("only synthetic entries reach here"),
            }
        }
    }

    fn forget_failed_parse(&mut self, name: &str, stmt: &Arc<Statement>) {
        self.server_statements.remove(stmt);
        if self
            .client
            .statements
            .get(name)
            .is_some_and(|s| Arc::ptr_eq(s, stmt))
        {
            self.client.statements.remove(name);
        }
    }

    fn ready(&mut self, frame: &[u8]) -> Result<Act, ProtocolError> {
        self.status = backend::ready_status(&frame[5..])?;
        self.skipping = false;
        if self.queue.is_empty() && self.status == TxStatus::Idle && self.client.pinned.is_none() {
            Ok(Act::ForwardStop)
        } else {
            Ok(Act::Forward)
        }
    }
}

/// A statement that makes the server raise `message` as SQLSTATE 0A000. PL/pgSQL is in
/// every database unless someone dropped it; dollar quoting keeps the text literal whatever
/// `standard_conforming_strings` says.
fn raise_sql(message: &str) -> String {
    format!(
        "DO $dbwarden$ BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', \
         MESSAGE = $dbwarden_message${message}$dbwarden_message$; END $dbwarden$"
    )
}

/// For a statement name the client never prepared that has the form of the proxy's own
/// server-side names (`dbw_N`, see `statements`): another name, which the server cannot
/// have, so that the client gets "does not exist" instead of another client's statement.
fn unreachable_name(name: &str) -> Option<String> {
    let n = name.strip_prefix("dbw_")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{name} (not prepared by this client)"))
}

fn bind_frame(buf: &mut BytesMut, portal: &str, statement: &str, rest: &[u8]) {
    let start = buf.len();
    buf.put_u8(fe::BIND);
    buf.put_u32(0);
    buf.put_slice(portal.as_bytes());
    buf.put_u8(0);
    buf.put_slice(statement.as_bytes());
    buf.put_u8(0);
    buf.put_slice(rest);
    patch_len(buf, start);
}

fn describe_frame(buf: &mut BytesMut, statement: &str) {
    let start = buf.len();
    buf.put_u8(fe::DESCRIBE);
    buf.put_u32(0);
    buf.put_u8(b'S');
    buf.put_slice(statement.as_bytes());
    buf.put_u8(0);
    patch_len(buf, start);
}

fn patch_len(buf: &mut BytesMut, start: usize) {
    let len = (buf.len() - start - 1) as u32;
    buf[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
}

fn parse_frame(buf: &mut BytesMut, name: &str, body: &[u8]) {
    let start = buf.len();
    buf.put_u8(fe::PARSE);
    buf.put_u32(0);
    buf.put_slice(name.as_bytes());
    buf.put_u8(0);
    buf.put_slice(body);
    patch_len(buf, start);
}

fn close_frame(buf: &mut BytesMut, name: &str) {
    let start = buf.len();
    buf.put_u8(fe::CLOSE);
    buf.put_u32(0);
    buf.put_u8(b'S');
    buf.put_slice(name.as_bytes());
    buf.put_u8(0);
    patch_len(buf, start);
}

fn complete(buf: &mut BytesMut, tag: u8) {
    buf.put_u8(tag);
    buf.put_u32(4);
}

impl Drop for TxnHooks<'_> {
    fn drop(&mut self) {
        spare::give(std::mem::take(&mut self.queue));
    }
}

/// Empty queues for the next transactions' hooks, per worker thread: a transaction does not
/// allocate its own, and an idle client keeps none (a queue per client, kept between its
/// transactions, cost every idle client its capacity).
mod spare {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::Expect;

    /// Queues kept per thread: one per transaction running at once on it, about.
    const KEEP: usize = 64;
    /// A queue grown past this (a long pipeline) goes back to the allocator.
    const MAX_CAPACITY: usize = 64;

    thread_local! {
        static FREE: RefCell<Vec<VecDeque<Expect>>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn take() -> VecDeque<Expect> {
        FREE.try_with(|free| free.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub(super) fn give(mut queue: VecDeque<Expect>) {
        if queue.capacity() == 0 || queue.capacity() > MAX_CAPACITY {
            return;
        }
        queue.clear();
        let _ = FREE.try_with(|free| {
            let mut free = free.borrow_mut();
            if free.len() < KEEP {
                free.push(queue);
            }
        });
    }
}

impl Hooks for TxnHooks<'_> {
    fn client_whole(&self, tag: u8) -> bool {
        // CopyData can be any size and needs no looking at; everything else is small.
        tag != fe::COPY_DATA
    }

    fn server_whole(&self, tag: u8) -> bool {
        tag != be::DATA_ROW && tag != be::COPY_DATA
    }

    fn client_frame(
        &mut self,
        tag: u8,
        frame: &[u8],
        inject: &mut BytesMut,
    ) -> Result<Act, ProtocolError> {
        match tag {
            fe::QUERY => {
                let sql = frontend::query_text(&frame[5..])?;
                let effects = self.effects(sql);
                if let Some(refusal) = self.inspect(&effects, true) {
                    // The server raises the refusal itself: in a transaction block it fails
                    // the transaction as any error would, and the server's own
                    // ReadyForQuery ends the exchange (so the connection goes back).
                    encode::query(inject, &raise_sql(&refusal));
                    self.queue.push_back(Expect::Query);
                    return Ok(Act::Drop);
                }
                if let Some(instead) = self.deallocate_by_name(sql, &effects, inject) {
                    encode::query(inject, &instead);
                    self.queue.push_back(Expect::Query);
                    return Ok(Act::Drop);
                }
                self.queue.push_back(Expect::Query);
                Ok(Act::Forward)
            }
            fe::PARSE => self.client_parse(frame, inject),
            fe::BIND => self.client_bind(frame, inject),
            fe::DESCRIBE => self.client_describe(frame, inject),
            fe::CLOSE => self.client_close(frame),
            fe::EXECUTE => {
                self.queue.push_back(Expect::Execute);
                Ok(Act::Forward)
            }
            fe::SYNC => {
                self.queue.push_back(Expect::Sync);
                Ok(Act::Forward)
            }
            fe::FUNCTION_CALL => {
                self.queue.push_back(Expect::Query);
                Ok(Act::Forward)
            }
            fe::TERMINATE => Ok(Act::Stop),
            _ => Ok(Act::Forward),
        }
    }

    fn server_frame(
        &mut self,
        tag: u8,
        frame: &[u8],
        inject: &mut BytesMut,
    ) -> Result<Act, ProtocolError> {
        self.emit_synthetic(inject);
        if tag == be::PARAMETER_STATUS {
            let (k, v) = backend::parameter_status(&frame[5..])?;
            if k.eq_ignore_ascii_case("standard_conforming_strings") {
                self.standard_strings = v != "off";
            }
            self.followup.reported.push((k.to_owned(), v.to_owned()));
            let ours = matches!(self.queue.front(), Some(Expect::Internal));
            return Ok(if ours { Act::Drop } else { Act::Forward });
        }
        if matches!(tag, be::NOTICE_RESPONSE | be::NOTIFICATION_RESPONSE) {
            let ours = matches!(self.queue.front(), Some(Expect::Internal));
            return Ok(if ours { Act::Drop } else { Act::Forward });
        }
        let Some(head) = self.queue.front() else {
            // Unsolicited (a FATAL before the server closes): the client should see it.
            if tag == be::READY_FOR_QUERY {
                return self.ready(frame);
            }
            return Ok(Act::Forward);
        };
        let act = match (head, tag) {
            (Expect::Internal, be::READY_FOR_QUERY) => {
                self.queue.pop_front();
                self.status = backend::ready_status(&frame[5..])?;
                Act::Drop
            }
            (Expect::Internal, be::ERROR_RESPONSE) => {
                let e = backend::error_fields(&frame[5..])?;
                tracing::warn!(code = %e.code, message = %e.message, "settings sync failed");
                self.followup.internal_failed = true;
                Act::Drop
            }
            (Expect::Internal, _) => Act::Drop,
            (Expect::SwallowParse(_), be::PARSE_COMPLETE)
            | (Expect::SwallowClose, be::CLOSE_COMPLETE) => {
                self.queue.pop_front();
                Act::Drop
            }
            (Expect::Sync | Expect::Query, be::READY_FOR_QUERY) => {
                self.queue.pop_front();
                return self.ready(frame);
            }
            (Expect::Query, _) => Act::Forward,
            (_, be::ERROR_RESPONSE) => {
                match self.queue.pop_front() {
                    Some(Expect::Parse(Some((name, stmt)))) => {
                        self.forget_failed_parse(&name, &stmt)
                    }
                    Some(Expect::SwallowParse(stmt)) => self.server_statements.remove(&stmt),
                    _ => {}
                }
                self.skipping = true;
                Act::Forward
            }
            (Expect::Parse(_), be::PARSE_COMPLETE)
            | (Expect::Bind, be::BIND_COMPLETE)
            | (Expect::Close, be::CLOSE_COMPLETE)
            | (Expect::Describe, be::ROW_DESCRIPTION | be::NO_DATA)
            | (
                Expect::Execute,
                be::COMMAND_COMPLETE | be::EMPTY_QUERY_RESPONSE | be::PORTAL_SUSPENDED,
            ) => {
                self.queue.pop_front();
                Act::Forward
            }
            _ => Act::Forward,
        };
        Ok(act)
    }

    fn server_at_rest(&mut self, inject: &mut BytesMut) {
        self.emit_synthetic(inject);
    }
}
