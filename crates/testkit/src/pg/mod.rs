//! Throw-away PostgreSQL clusters for tests and demos.
//!
//! Each [`PgCluster`] is a fresh data directory in a temporary directory and a
//! postmaster listening on 127.0.0.1 at a free port. The postmaster is a
//! direct child of this process that the kernel kills when this process dies,
//! and the directory is removed on drop (or by the next test run when the
//! process died first).

mod os;
mod process;
mod setup;
mod sweep;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Once, OnceLock};

use parking_lot::Mutex;

/// The method pg_hba.conf requires for TCP connections (127.0.0.1 and ::1).
/// The unix socket always trusts, which [`PgCluster::psql`] relies on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HbaAuth {
    /// No password is checked.
    #[default]
    Trust,
    /// Cleartext password (`password` method); stored as SCRAM.
    Password,
    /// `md5`; passwords are stored as MD5 hashes.
    Md5,
    /// `scram-sha-256`; passwords are stored as SCRAM verifiers.
    Scram,
}

/// How [`PgCluster::start_with`] sets the cluster up.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// What pg_hba.conf uses for host connections. Default [`HbaAuth::Trust`].
    pub auth: HbaAuth,
    /// Extra `LOGIN` roles (not superusers) created with these passwords.
    pub users: Vec<(String, String)>,
    /// `(certificate, key)` PEM files: turns `ssl` on. The files are copied
    /// into the cluster directory, so they may live anywhere.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Extra postgresql.conf settings, applied after the testkit's own, e.g.
    /// `("max_connections", "200")`. Values are quoted unless already quoted.
    pub settings: Vec<(String, String)>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            auth: HbaAuth::Trust,
            users: Vec::new(),
            tls: None,
            settings: Vec::new(),
        }
    }
}

/// How [`PgCluster::stop`] shuts the server down (`pg_ctl stop -m ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnect clients, checkpoint, exit (SIGINT).
    Fast,
    /// Kill everything at once; the next start runs crash recovery (SIGQUIT).
    Immediate,
}

/// What went wrong while running a cluster. Public functions return it inside
/// an [`io::Error`] (`err.get_ref()` and `downcast_ref::<PgError>()`).
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("running as root, but there is no `postgres` OS user to run PostgreSQL as")]
    NoPostgresUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error(
        "PostgreSQL on port {port} did not start: {reason}\n--- server log (tail) ---\n{log_tail}"
    )]
    Start {
        port: u16,
        reason: String,
        log_tail: String,
    },
    #[error("cannot {context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl PgError {
    fn io(context: impl Into<String>, source: io::Error) -> PgError {
        PgError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<PgError> for io::Error {
    fn from(err: PgError) -> io::Error {
        let kind = match &err {
            PgError::Io { source, .. } => source.kind(),
            PgError::NoPostgresUser => io::ErrorKind::NotFound,
            PgError::Command { .. } | PgError::Start { .. } => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

/// The superuser every cluster has; its password is also "postgres".
const SUPERUSER: &str = "postgres";
const HOST: &str = "127.0.0.1";

/// A running throw-away PostgreSQL server. Dropping it stops the server
/// (immediate mode) and removes its directory.
pub struct PgCluster {
    /// Holds `data/`, the unix socket, the server log and TLS files.
    dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<os::RunAs>,
    /// The postmaster; `None` while stopped.
    child: Mutex<Option<Child>>,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCluster")
            .field("port", &self.port)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl PgCluster {
    /// Starts a cluster with [`PgOptions::default`].
    ///
    /// Blocks for about a second (much longer for the very first cluster on
    /// a machine, which runs initdb into a template kept in the temporary
    /// directory); from async code, call it through `spawn_blocking`.
    pub fn start() -> io::Result<PgCluster> {
        PgCluster::start_with(PgOptions::default())
    }

    /// Starts a cluster set up as `opts` asks.
    pub fn start_with(opts: PgOptions) -> io::Result<PgCluster> {
        Ok(PgCluster::create(opts)?)
    }

    /// One trust-auth cluster per test process, started on first use and
    /// shared by every test in it (use [`PgCluster::create_database`] for
    /// isolation). Panics if it cannot start.
    pub fn shared() -> &'static PgCluster {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        static CLEANUP: Once = Once::new();
        extern "C" fn remove_shared() {
            if let Some(cluster) = SHARED.get() {
                cluster.terminate();
                let _ = std::fs::remove_dir_all(cluster.dir.path());
            }
        }
        let cluster = SHARED.get_or_init(|| {
            PgCluster::start().unwrap_or_else(|e| panic!("cannot start the shared cluster: {e}"))
        });
        // Statics are never dropped; without this the directory would stay
        // until the next run's sweep.
        CLEANUP.call_once(|| {
            // SAFETY: registering a plain extern "C" fn has no preconditions;
            // it runs once at normal process exit and never panics.
            unsafe { libc::atexit(remove_shared) };
        });
        cluster
    }

    /// Always "127.0.0.1".
    pub fn host(&self) -> &str {
        HOST
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "postgres", whose password is "postgres".
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// `postgres://user:password@127.0.0.1:port/db`, with the parts
    /// percent-encoded.
    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "postgres://{}:{}@{HOST}:{}/{}",
            percent_encode(user),
            percent_encode(password),
            self.port,
            percent_encode(db)
        )
    }

    /// Runs `sql` (any number of statements, psql meta-commands allowed) with
    /// `psql -XAtq -v ON_ERROR_STOP=1` as the superuser over the unix socket.
    /// Returns stdout without its trailing newline; the error carries stderr.
    pub fn psql(&self, db: &str, sql: &str) -> io::Result<String> {
        Ok(process::psql(
            &self.bin,
            self.dir.path(),
            self.port,
            db,
            sql,
        )?)
    }

    /// `CREATE DATABASE name` (the name is quoted as an identifier).
    pub fn create_database(&self, name: &str) -> io::Result<()> {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {}", quote_ident(name)),
        )
        .map(drop)
    }

    /// Shuts the server down and waits for it to exit. Stopping a stopped
    /// cluster does nothing.
    pub fn stop(&self, mode: StopMode) -> io::Result<()> {
        let mut child = self.child.lock();
        if let Some(running) = child.as_mut() {
            process::shut_down(running, mode)?;
        }
        *child = None;
        Ok(())
    }

    /// Starts a stopped cluster again on the same port and data directory.
    pub fn start_again(&self) -> io::Result<()> {
        let mut child = self.child.lock();
        if let Some(running) = child.as_mut() {
            if running.try_wait()?.is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the cluster is already running",
                ));
            }
        }
        *child = Some(self.launch()?);
        Ok(())
    }

    /// The data directory (PGDATA).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Where the PostgreSQL binaries are: `$PG_BIN_DIR`, else the newest
    /// `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`.
    pub fn bin_dir() -> PathBuf {
        os::bin_dir()
    }

    /// The server's log file (stdout and stderr of the postmaster).
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join(process::LOG_FILE)
    }

    fn create(opts: PgOptions) -> Result<PgCluster, PgError> {
        static SWEEP: Once = Once::new();
        let base = sweep::base_dir();
        SWEEP.call_once(|| sweep::sweep_stale(&base));

        let bin = os::bin_dir();
        let run_as = os::RunAs::detect()?;
        let template = setup::template(&bin, run_as)?;
        let dir = tempfile::Builder::new()
            .prefix(sweep::DIR_PREFIX)
            .tempdir_in(&base)
            .map_err(|e| PgError::io("create cluster directory", e))?;
        sweep::write_owner(dir.path()).map_err(|e| PgError::io("write owner file", e))?;
        if let Some(user) = run_as {
            user.chown(dir.path())
                .map_err(|e| PgError::io("chown cluster directory", e))?;
        }
        let data = dir.path().join("data");
        setup::copy_template(&template, &data)?;
        setup::write_hba(&data, &opts.auth, run_as)
            .map_err(|e| PgError::io("write pg_hba.conf", e))?;
        setup::include_conf(&data).map_err(|e| PgError::io("extend postgresql.conf", e))?;
        let tls = match &opts.tls {
            Some((cert, key)) => Some(setup::install_tls(dir.path(), cert, key, run_as)?),
            None => None,
        };

        let mut cluster = PgCluster {
            dir,
            data,
            bin,
            port: 0,
            run_as,
            child: Mutex::new(None),
        };
        let child = cluster.launch_on_free_port(&opts, tls.as_ref())?;
        *cluster.child.get_mut() = Some(child);
        process::psql(
            &cluster.bin,
            cluster.dir.path(),
            cluster.port,
            "postgres",
            &bootstrap_sql(&opts),
        )?;
        tracing::debug!(port = cluster.port, data = %cluster.data.display(), "PostgreSQL cluster started");
        Ok(cluster)
    }

    /// Ports come from binding 127.0.0.1:0 and closing, so another process can
    /// take one before the server binds it; such failures are retried.
    fn launch_on_free_port(
        &mut self,
        opts: &PgOptions,
        tls: Option<&(PathBuf, PathBuf)>,
    ) -> Result<Child, PgError> {
        const ATTEMPTS: usize = 5;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.port = free_port().map_err(|e| PgError::io("find a free port", e))?;
            setup::write_conf(
                &self.data,
                self.dir.path(),
                self.port,
                opts,
                tls,
                self.run_as,
            )
            .map_err(|e| PgError::io("write postgresql.conf settings", e))?;
            match self.launch() {
                Err(PgError::Start { log_tail, .. })
                    if attempt < ATTEMPTS && process::is_bind_failure(&log_tail) =>
                {
                    tracing::debug!(
                        port = self.port,
                        "port taken before the server bound it; retrying"
                    );
                }
                other => return other,
            }
        }
    }

    fn launch(&self) -> Result<Child, PgError> {
        process::launch(
            &self.bin,
            self.dir.path(),
            &self.data,
            self.port,
            self.run_as,
        )
    }

    /// Immediate shutdown without reporting errors, for Drop and exit.
    fn terminate(&self) {
        // At process exit another thread may hold the lock; skip rather than hang.
        let Some(mut child) = self.child.try_lock_for(std::time::Duration::from_secs(1)) else {
            return;
        };
        if let Some(running) = child.as_mut() {
            process::kill_quickly(running);
        }
        *child = None;
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.terminate();
        // `dir` is removed when the field drops, after the server is gone.
    }
}

/// The account servers run as when we are root (None otherwise, or when it
/// does not exist); files the server must read are handed to it.
pub(crate) fn server_account() -> Option<os::RunAs> {
    os::RunAs::detect().ok().flatten()
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind((HOST, 0))?.local_addr()?.port())
}

fn bootstrap_sql(opts: &PgOptions) -> String {
    // password_encryption is set in the configuration, so these are stored
    // as SCRAM verifiers or MD5 hashes to match the auth method.
    let mut sql = format!(
        "ALTER ROLE {} PASSWORD {};\n",
        quote_ident(SUPERUSER),
        quote_literal(SUPERUSER)
    );
    for (user, password) in &opts.users {
        sql.push_str(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {};\n",
            quote_ident(user),
            quote_literal(password)
        ));
    }
    sql
}

/// Quotes an SQL identifier: `a"b` becomes `"a""b"`.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal: `it's` becomes `'it''s'`
/// (standard_conforming_strings is on, so backslashes are literal).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn percent_encode(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
        assert_eq!(percent_encode("plain-user_1.x~"), "plain-user_1.x~");
    }

    #[test]
    fn bootstrap_creates_requested_roles() {
        let sql = bootstrap_sql(&PgOptions {
            users: vec![("app".into(), "s'cret".into())],
            ..PgOptions::default()
        });
        assert!(sql.contains(r#"ALTER ROLE "postgres" PASSWORD 'postgres';"#));
        assert!(sql.contains(r#"CREATE ROLE "app" LOGIN PASSWORD 's''cret';"#));
    }
}
