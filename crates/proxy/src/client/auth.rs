//! Verifying a client: trust, md5 or SCRAM-SHA-256, with the proxy as the server.

use dbwarden_auth::{md5_salt, md5_verify, scram_mock_verifier, ScramServer, Secret};
use dbwarden_config::AuthMethod;
use dbwarden_wire::frontend::{self, tag};
use dbwarden_wire::{encode, Frame, ProtocolError, SqlState};

use super::handshake::read_err;
use crate::conn::Conn;
use crate::error::SessionError;
use crate::Shared;

fn failed(user: &str) -> SessionError {
    SessionError::refused(
        SqlState::INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    )
}

async fn read_password_frame(conn: &mut Conn) -> Result<Frame, SessionError> {
    conn.flush().await.map_err(SessionError::ClientIo)?;
    let frame = conn.read_frame().await.map_err(read_err)?;
    if frame.tag() != tag::PASSWORD {
        return Err(SessionError::ClientProtocol(
            ProtocolError::UnexpectedMessage {
                tag: frame.tag(),
                during: "authentication",
            },
        ));
    }
    Ok(frame)
}

pub async fn authenticate(
    conn: &mut Conn,
    user: &str,
    shared: &Shared,
) -> Result<(), SessionError> {
    let config = shared.config.load();
    let method = config.auth.method;
    let secret = shared.secret(user);
    match method {
        // Trust skips the password, not the user list (as PgBouncer's auth_file): otherwise
        // any name would reach the server, with no password to log in upstream.
        AuthMethod::Trust if config.user(user).is_none() => Err(SessionError::refused(
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            format!("dbwarden: user \"{user}\" is not in [[users]]"),
        )),
        AuthMethod::Trust => Ok(()),
        AuthMethod::Md5 => match secret.as_deref().map(|s| &s.secret) {
            // A SCRAM secret cannot answer md5; PostgreSQL switches to SCRAM, and so do we.
            Some(Secret::Scram(_)) => scram(conn, user, shared).await,
            Some(secret) => {
                let salt = md5_salt();
                encode::auth_md5(&mut conn.wbuf, salt);
                let frame = read_password_frame(conn).await?;
                let response =
                    frontend::password(frame.body()).map_err(SessionError::ClientProtocol)?;
                if md5_verify(secret, user, salt, response) {
                    Ok(())
                } else {
                    Err(failed(user))
                }
            }
            None => {
                // Ask anyway, so an unknown user looks like a wrong password.
                encode::auth_md5(&mut conn.wbuf, md5_salt());
                read_password_frame(conn).await?;
                Err(failed(user))
            }
        },
        AuthMethod::ScramSha256 => scram(conn, user, shared).await,
    }
}

async fn scram(conn: &mut Conn, user: &str, shared: &Shared) -> Result<(), SessionError> {
    let known = shared.secret(user).and_then(|s| s.scram.clone());
    // Unknown users run the whole exchange against a verifier no proof matches, so the
    // answer does not reveal which user names exist.
    let verifier = known.clone().unwrap_or_else(|| scram_mock_verifier(user));
    let mut server = ScramServer::new(verifier);
    encode::auth_sasl(&mut conn.wbuf, &[ScramServer::MECHANISM]);
    let frame = read_password_frame(conn).await?;
    let (mechanism, data) =
        frontend::sasl_initial(frame.body()).map_err(SessionError::ClientProtocol)?;
    if mechanism != ScramServer::MECHANISM {
        return Err(SessionError::refused(
            SqlState::PROTOCOL_VIOLATION,
            "client selected an invalid SASL authentication mechanism",
        ));
    }
    let first = server
        .client_first(data)
        .map_err(|e| SessionError::refused(SqlState::PROTOCOL_VIOLATION, format!("SCRAM: {e}")))?;
    encode::auth_sasl_continue(&mut conn.wbuf, &first);
    let frame = read_password_frame(conn).await?;
    match server.client_final(frame.body()) {
        Ok(fin) if known.is_some() => {
            encode::auth_sasl_final(&mut conn.wbuf, &fin);
            Ok(())
        }
        Ok(_) | Err(dbwarden_auth::AuthError::WrongPassword) => Err(failed(user)),
        Err(e) => Err(SessionError::refused(
            SqlState::PROTOCOL_VIOLATION,
            format!("SCRAM: {e}"),
        )),
    }
}
