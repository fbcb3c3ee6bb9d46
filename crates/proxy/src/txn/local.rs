//! What a transaction-mode client with no server connection gets answered by the proxy
//! itself, without taking a server connection for it.

use bytes::{BufMut, BytesMut};
use dbwarden_wire::backend::{tag as be, TxStatus};
use dbwarden_wire::encode::{self, Severity};
use dbwarden_wire::frontend::{self, tag as fe};
use dbwarden_wire::SqlState;
use tokio::io::AsyncWriteExt;

use super::TxnClient;
use crate::error::SessionError;
use crate::relay::Half;
use crate::stream::Stream;

/// A client whose next simple Query carries a deadline that has already passed gets its
/// 57014 at once. Returns whether the query was answered here.
pub(super) async fn refuse_past_deadline(
    up: &mut Half,
    client: &mut Stream,
) -> Result<bool, SessionError> {
    let Some((fe::QUERY, frame)) = up.first_frame() else {
        return Ok(false);
    };
    match crate::deadline::find_now(frame) {
        Some(at) if at <= std::time::Instant::now() => {}
        _ => return Ok(false),
    }
    let len = frame.len();
    up.consume_front(len);
    let mut answer = BytesMut::new();
    encode::error_response(
        &mut answer,
        Severity::Error,
        SqlState::QUERY_CANCELED,
        "canceling statement due to the client's dbwarden_deadline (already past)",
    );
    encode::ready_for_query(&mut answer, TxStatus::Idle);
    send(client, &answer).await?;
    Ok(true)
}

/// Close of named statements followed by Sync, between transactions: what drivers send when
/// a statement handle is dropped (tokio-postgres after every `query(&str)`). The client's
/// names are the proxy's own (the server-side statements stay cached for everyone), and a
/// Sync outside a transaction only says ReadyForQuery idle, so the proxy answers the whole
/// exchange itself. That saves a checkout and a server round trip each time, and the client
/// gets its answer even while every server connection is busy or a backend is hung.
/// Anything else in the batch (a portal, the unnamed statement, another message before the
/// Sync) goes to a server as usual. Returns whether the batch was answered here.
pub(super) async fn close_statements(
    up: &mut Half,
    client: &mut Stream,
    tx: &mut TxnClient,
) -> Result<bool, SessionError> {
    let Some((offset, names)) = lone_closes(up) else {
        return Ok(false);
    };
    let mut answer = BytesMut::with_capacity(names.len() * 5 + 6);
    for name in &names {
        tx.statements.remove(name.as_str());
        answer.put_u8(be::CLOSE_COMPLETE);
        answer.put_u32(4);
    }
    encode::ready_for_query(&mut answer, TxStatus::Idle);
    up.consume_front(offset);
    send(client, &answer).await?;
    Ok(true)
}

/// The names in a buffered batch of Close('S', name)… Sync, and the batch's length.
fn lone_closes(up: &Half) -> Option<(usize, Vec<String>)> {
    let mut names = Vec::new();
    let mut offset = 0;
    loop {
        let (tag, frame) = up.frame_at(offset)?;
        offset += frame.len();
        match tag {
            fe::CLOSE => match frontend::target(&frame[5..]) {
                Ok((b'S', name)) if !name.is_empty() => names.push(name.to_owned()),
                _ => return None,
            },
            fe::SYNC if !names.is_empty() && frame.len() == 5 => return Some((offset, names)),
            _ => return None,
        }
    }
}

async fn send(client: &mut Stream, answer: &[u8]) -> Result<(), SessionError> {
    client
        .write_all(answer)
        .await
        .map_err(SessionError::ClientIo)?;
    client.flush().await.map_err(SessionError::ClientIo)
}

#[cfg(test)]
mod tests {
    use dbwarden_testkit::frame::tagged as frame;

    use super::*;

    fn close(kind: u8, name: &str) -> Vec<u8> {
        let mut body = vec![kind];
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        frame(fe::CLOSE, &body)
    }

    fn batch(frames: &[Vec<u8>]) -> Option<(usize, Vec<String>)> {
        let mut up = Half::new(1 << 20);
        up.seed(&frames.concat());
        lone_closes(&up)
    }

    #[test]
    fn only_whole_batches_of_named_statement_closes_are_answered_here() {
        let sync = frame(fe::SYNC, &[]);
        let (a, b) = (close(b'S', "a"), close(b'S', "b"));
        let both = (a.len() + b.len() + sync.len(), vec!["a".into(), "b".into()]);
        assert_eq!(
            batch(&[a.clone(), b.clone(), sync.clone()]),
            Some(both.clone())
        );
        // Whatever follows the Sync is the next transaction's: left where it is.
        let next = frame(fe::QUERY, b"SELECT 1\0");
        assert_eq!(batch(&[a.clone(), b, sync.clone(), next]), Some(both));

        assert_eq!(batch(std::slice::from_ref(&sync)), None, "a Sync alone");
        assert_eq!(batch(std::slice::from_ref(&a)), None, "no Sync yet");
        assert_eq!(batch(&[close(b'P', "a"), sync.clone()]), None, "a portal");
        assert_eq!(
            batch(&[close(b'S', ""), sync.clone()]),
            None,
            "the unnamed statement"
        );
        let flush = frame(b'H', &[]);
        assert_eq!(batch(&[a.clone(), flush, sync.clone()]), None, "other work");
        let mut cut = [a.clone(), sync.clone()].concat();
        cut.pop();
        assert_eq!(batch(&[cut]), None, "a Sync not here whole");
        assert_eq!(
            batch(&[frame(fe::CLOSE, b"S"), sync]),
            None,
            "malformed Close"
        );
    }
}
