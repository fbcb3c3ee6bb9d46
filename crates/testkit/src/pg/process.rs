//! Running the postmaster and psql: start, readiness, shutdown.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::os::{self, RunAs};
use super::{PgError, StopMode, SUPERUSER};

/// The postmaster's stdout and stderr, appended to across restarts.
pub(crate) const LOG_FILE: &str = "postgres.log";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);
const LOG_TAIL_LINES: usize = 30;

/// Starts the postmaster in the foreground (as our child, not daemonised by
/// pg_ctl) so that it dies with this process, and waits until it accepts
/// connections.
pub(crate) fn launch(
    bin: &Path,
    dir: &Path,
    data: &Path,
    port: u16,
    run_as: Option<RunAs>,
) -> Result<Child, PgError> {
    let log_path = dir.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| PgError::io("open the server log", e))?;
    // Only this attempt's lines matter when deciding why it failed.
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let stderr = log
        .try_clone()
        .map_err(|e| PgError::io("duplicate the server log handle", e))?;
    let mut cmd = Command::new(bin.join("postgres"));
    cmd.arg("-D")
        .arg(data)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr);
    os::prepare(&mut cmd, bin, run_as);
    let mut child = os::spawn_long_lived(cmd)
        .map_err(|e| PgError::io(format!("run {}", bin.join("postgres").display()), e))?;
    match wait_ready(&mut child, data) {
        Ok(()) => Ok(child),
        Err(reason) => {
            kill_quickly(&mut child);
            Err(PgError::Start {
                port,
                reason,
                log_tail: log_tail(&log_path, log_start),
            })
        }
    }
}

/// Waits for postmaster.pid to name our child and say "ready" (its 8th line,
/// which is what `pg_ctl -w` waits for). Returns why it did not get there.
fn wait_ready(child: &mut Child, data: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let pid = child.id().to_string();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Err(format!("postgres exited: {status}")),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot watch postgres: {e}")),
        }
        if let Ok(pidfile) = std::fs::read_to_string(data.join("postmaster.pid")) {
            let lines: Vec<&str> = pidfile.lines().collect();
            if lines.first() == Some(&pid.as_str())
                && lines.get(7).map(|s| s.trim()) == Some("ready")
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("not ready after {START_TIMEOUT:?}"));
        }
        std::thread::sleep(POLL);
    }
}

/// Whether a failed start only lost the race for its port.
pub(crate) fn is_bind_failure(log_tail: &str) -> bool {
    log_tail.contains("could not bind")
        || log_tail.contains("could not create any TCP/IP sockets")
        || log_tail.contains("Address already in use")
}

/// The last lines of the log written since byte `from`.
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|mut file| {
        file.seek(SeekFrom::Start(from))?;
        file.read_to_string(&mut text)
    });
    if let Err(e) = read {
        return format!("(cannot read {}: {e})", path.display());
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// `pg_ctl stop -m fast|immediate` for our own child: signal, then wait.
pub(crate) fn shut_down(child: &mut Child, mode: StopMode) -> io::Result<()> {
    let signal = match mode {
        StopMode::Fast => libc::SIGINT,
        StopMode::Immediate => libc::SIGQUIT,
    };
    os::send_signal(child.id(), signal)?;
    if wait_exit(child, STOP_TIMEOUT)? {
        return Ok(());
    }
    kill_quickly(child);
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("PostgreSQL did not stop within {STOP_TIMEOUT:?} ({mode:?}); killed it"),
    ))
}

/// Immediate shutdown, escalating to SIGKILL; never fails (for Drop).
pub(crate) fn kill_quickly(child: &mut Child) {
    let _ = os::send_signal(child.id(), libc::SIGQUIT);
    // Immediate shutdown SIGKILLs stuck backends itself after 5 s.
    if !wait_exit(child, Duration::from_secs(8)).unwrap_or(false) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Polls for exit (and reaps the child); `Ok(false)` on timeout.
fn wait_exit(child: &mut Child, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

/// Runs psql as the superuser over the unix socket in `socket_dir`, feeding
/// `sql` on stdin: unlike `-c`, every statement runs on its own, so
/// `CREATE DATABASE` and friends work in a multi-statement script.
pub(crate) fn psql(
    bin: &Path,
    socket_dir: &Path,
    port: u16,
    db: &str,
    sql: &str,
) -> Result<String, PgError> {
    let program = if bin.join("psql").exists() {
        bin.join("psql")
    } else {
        "psql".into()
    };
    let mut cmd = Command::new(&program);
    cmd.args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(socket_dir)
        .args(["-p", &port.to_string(), "-U", SUPERUSER, "-d", db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The caller's PGSSLMODE, PGOPTIONS and the like must not leak in.
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(name);
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| PgError::io(format!("run {}", program.display()), e))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Written from another thread: psql may fill its stdout pipe before it
    // has read all of a long script.
    let out = std::thread::scope(|scope| {
        scope.spawn(move || {
            // A write error means psql exited early; its stderr says why.
            let _ = stdin.write_all(sql.as_bytes());
        });
        child.wait_with_output()
    })
    .map_err(|e| PgError::io("wait for psql", e))?;
    if !out.status.success() {
        return Err(PgError::Command {
            what: format!("psql ({})", out.status),
            detail: String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
        });
    }
    let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    while stdout.ends_with('\n') {
        stdout.pop();
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_failures_are_recognised() {
        let tail = "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use\n\
                    WARNING:  could not create listen socket for \"127.0.0.1\"\n\
                    FATAL:  could not create any TCP/IP sockets";
        assert!(is_bind_failure(tail));
        assert!(!is_bind_failure(
            "FATAL:  invalid value for parameter \"shared_buffers\""
        ));
    }

    #[test]
    fn log_tail_keeps_only_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "old line\n").unwrap();
        let from = std::fs::metadata(&path).unwrap().len();
        let mut text = String::from("old line\n");
        for i in 0..40 {
            text.push_str(&format!("new {i}\n"));
        }
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path, from);
        assert!(!tail.contains("old line"));
        assert!(tail.starts_with("new 10"));
        assert!(tail.ends_with("new 39"));
    }
}
