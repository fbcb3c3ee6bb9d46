//! Startup and authentication, reporting the method the server actually asked for.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::backend::Message;
use serde_json::json;

use super::conn::{server_error, PgConn, PgError};
use crate::model::{Finding, Severity};
use crate::options::Options;
use crate::probe::{attrs, ms, Recorder};
use crate::target::{Secret, Target};

/// Runs startup and authentication within the auth timeout; records the `auth` phase
/// and the `probe.auth` finding.
pub async fn authenticate(
    conn: &mut PgConn,
    target: &Target,
    opts: &Options,
    rec: &mut Recorder,
) -> Option<()> {
    let t = rec.begin("auth", "authenticating");
    let timeout = target.connect_timeout.unwrap_or(opts.timeouts.auth);
    let mut state = State {
        method: "none yet",
        prompt: Duration::ZERO,
        password: target.password.clone(),
    };
    let r = tokio::time::timeout(timeout, run(conn, target, opts, &mut state)).await;
    // A human typing a password is not server latency.
    let took = ms(t_elapsed(&t).saturating_sub(state.prompt));
    let method = state.method;
    match r {
        Ok(Ok(())) => {
            let version = conn
                .params
                .get("server_version")
                .cloned()
                .unwrap_or_default();
            rec.end_with(
                t,
                Some(took),
                true,
                format!("{method}; server {version}"),
                attrs([
                    ("method", json!(method)),
                    ("server_version", json!(version)),
                ]),
            );
            let f = auth_finding(method, took, opts);
            rec.push(f.value("method", method));
            Some(())
        }
        Ok(Err(e)) => {
            let err = e.to_string();
            rec.end_with(
                t,
                Some(took),
                false,
                format!("{method}: {err}"),
                attrs([("method", json!(method))]),
            );
            let title = match e.code() {
                Some("28P01") => {
                    format!("authentication failed ({method}): wrong password or user")
                }
                Some("28000") => format!("no pg_hba.conf entry or role not permitted: {err}"),
                Some("53300") => "server refused the connection: too many clients".to_string(),
                Some("57P03") => "server is starting up, shutting down or in recovery".to_string(),
                _ => format!("startup or authentication failed: {err}"),
            };
            rec.failed("probe.auth", title, &err, took);
            None
        }
        Err(_) => {
            let err = format!("no answer within {timeout:?} after {method}");
            rec.end_with(
                t,
                Some(took),
                false,
                err.clone(),
                attrs([("method", json!(method))]),
            );
            rec.failed("probe.auth", format!("startup stalled: {err}"), &err, took);
            None
        }
    }
}

fn t_elapsed(t: &crate::probe::Timer) -> Duration {
    Duration::from_secs_f64(t.elapsed_ms() / 1000.0)
}

fn auth_finding(method: &str, took: f64, opts: &Options) -> Finding {
    let limit = opts.thresholds.get("probe.auth.warn_ms");
    if method == "password" {
        return Finding::new(
            "probe.auth",
            Severity::Warning,
            "server asked for the password in clear text (password auth)",
        )
        .value("duration_ms", took);
    }
    if took > limit {
        return Finding::new(
            "probe.auth",
            Severity::Warning,
            format!("startup and {method} authentication took {took:.1} ms (threshold {limit} ms)"),
        )
        .value("duration_ms", took)
        .value("threshold_ms", limit);
    }
    if method == "md5" {
        return Finding::new(
            "probe.auth",
            Severity::Info,
            "authenticated with md5 (deprecated; prefer scram-sha-256)",
        )
        .value("duration_ms", took);
    }
    Finding::new(
        "probe.auth",
        Severity::Ok,
        format!("authenticated with {method} in {took:.1} ms"),
    )
    .value("duration_ms", took)
}

struct State {
    method: &'static str,
    prompt: Duration,
    password: Option<Secret>,
}

impl State {
    async fn password(&mut self, target: &Target, opts: &Options) -> Result<Secret, PgError> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        if !(opts.prompt_password && std::io::stdin().is_terminal()) {
            return Err(PgError::Protocol("server asked for a password and none was given (URL, PGPASSWORD or a terminal prompt)".into()));
        }
        let who = target.user.clone().unwrap_or_default();
        let started = Instant::now();
        let p = tokio::task::spawn_blocking(move || {
            rpassword::prompt_password(format!("Password for user {who}: "))
        })
        .await
        .map_err(|e| PgError::Protocol(e.to_string()))??;
        self.prompt += started.elapsed();
        let p = Secret::new(p);
        self.password = Some(p.clone());
        Ok(p)
    }
}

async fn run(
    conn: &mut PgConn,
    target: &Target,
    opts: &Options,
    st: &mut State,
) -> Result<(), PgError> {
    let user = target.user.clone().unwrap_or_default();
    let db = target.database.clone().unwrap_or_else(|| user.clone());
    let app = target
        .params
        .get("application_name")
        .map(String::as_str)
        .unwrap_or("dbwarden-doctor");
    conn.send_startup(&[
        ("user", &user),
        ("database", &db),
        ("application_name", app),
        ("client_encoding", "UTF8"),
    ])
    .await?;
    let mut scram: Option<ScramSha256> = None;
    loop {
        match conn.next().await? {
            Message::AuthenticationOk => {
                if st.method == "none yet" {
                    st.method = "trust";
                }
            }
            Message::AuthenticationCleartextPassword => {
                st.method = "password";
                let pw = st.password(target, opts).await?;
                conn.send_password(pw.expose().as_bytes()).await?;
            }
            Message::AuthenticationMd5Password(b) => {
                st.method = "md5";
                let pw = st.password(target, opts).await?;
                let hash = md5_hash(user.as_bytes(), pw.expose().as_bytes(), b.salt());
                conn.send_password(hash.as_bytes()).await?;
            }
            Message::AuthenticationSasl(b) => {
                let mut mechs = Vec::new();
                let mut it = b.mechanisms();
                while let Some(m) = fallible_iterator::FallibleIterator::next(&mut it)? {
                    mechs.push(m.to_string());
                }
                if !mechs.iter().any(|m| m == "SCRAM-SHA-256") {
                    st.method = "sasl (unsupported mechanism)";
                    return Err(PgError::Protocol(format!("server offers only {mechs:?}")));
                }
                st.method = "scram-sha-256";
                let pw = st.password(target, opts).await?;
                // Channel binding is not used: the doctor reports on the server, and 'n'
                // is always accepted where binding is optional.
                let s = ScramSha256::new(pw.expose().as_bytes(), ChannelBinding::unsupported());
                conn.send_sasl_initial("SCRAM-SHA-256", s.message()).await?;
                scram = Some(s);
            }
            Message::AuthenticationSaslContinue(b) => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| PgError::Protocol("unexpected SASL continue".into()))?;
                s.update(b.data())?;
                let msg = s.message().to_vec();
                conn.send_sasl(&msg).await?;
            }
            Message::AuthenticationSaslFinal(b) => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| PgError::Protocol("unexpected SASL final".into()))?;
                s.finish(b.data())?;
            }
            Message::AuthenticationGss
            | Message::AuthenticationSspi
            | Message::AuthenticationKerberosV5 => {
                st.method = "gss/sspi (unsupported by the doctor)";
                return Err(PgError::Protocol(
                    "GSSAPI/SSPI authentication is not supported".into(),
                ));
            }
            Message::BackendKeyData(_) => {}
            Message::ReadyForQuery(_) => return Ok(()),
            Message::ErrorResponse(e) => return Err(server_error(&e)),
            _ => {
                return Err(PgError::Protocol(
                    "unexpected message during startup".into(),
                ))
            }
        }
    }
}
