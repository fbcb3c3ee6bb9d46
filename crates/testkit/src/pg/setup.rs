//! Building a cluster's data directory: initdb (once, into a shared template),
//! pg_hba.conf, postgresql.conf and TLS files.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use parking_lot::Mutex;

use super::os::{self, RunAs};
use super::sweep;
use super::{HbaAuth, PgError, PgOptions};

/// Bump when the template's initdb arguments change, so old templates are not
/// reused.
const TEMPLATE_VERSION: u32 = 1;
const TEMPLATE_PREFIX: &str = "dbwarden-pgtemplate-";
const TEMPLATE_DONE: &str = "complete";
/// The file, next to postgresql.conf, that holds everything the testkit sets.
pub(crate) const CONF_FILE: &str = "dbwarden.conf";

/// A data directory produced by initdb with trust authentication, shared by
/// every cluster on the machine that uses the same binaries.
///
/// initdb takes most of a second of CPU while copying its result takes a
/// tenth of that, and test suites start dozens of clusters on small machines,
/// so each cluster starts from a copy; pg_hba.conf and the settings are then
/// written per cluster, which is what `initdb --auth-host` would have decided.
pub(crate) fn template(bin: &Path, run_as: Option<RunAs>) -> Result<PathBuf, PgError> {
    // Serialises template creation within the process so that parallel tests
    // wait for one initdb instead of each running their own.
    static BUILDING: Mutex<()> = Mutex::new(());
    let base = sweep::base_dir();
    let template = base.join(format!("{TEMPLATE_PREFIX}{:016x}", template_key(bin)));
    let _guard = BUILDING.lock();
    if template.join(TEMPLATE_DONE).exists() {
        return Ok(template.join("data"));
    }
    // Build in a directory the sweeper recognises, so a build interrupted by a
    // crash is cleaned up, then publish it with an atomic rename.
    let build = tempfile::Builder::new()
        .prefix(sweep::DIR_PREFIX)
        .tempdir_in(&base)
        .map_err(|e| PgError::io("create template build directory", e))?;
    sweep::write_owner(build.path()).map_err(|e| PgError::io("write owner file", e))?;
    if let Some(user) = run_as {
        user.chown(build.path())
            .map_err(|e| PgError::io("chown template build directory", e))?;
    }
    initdb(bin, run_as, &build.path().join("data"))?;
    std::fs::write(build.path().join(TEMPLATE_DONE), b"")
        .map_err(|e| PgError::io("mark template complete", e))?;
    let build = build.keep();
    if let Err(error) = std::fs::rename(&build, &template) {
        // Another process published first (the target exists and is not
        // empty); use theirs.
        let _ = std::fs::remove_dir_all(&build);
        if !template.join(TEMPLATE_DONE).exists() {
            return Err(PgError::io("publish template data directory", error));
        }
    }
    Ok(template.join("data"))
}

/// Identifies the binaries (path and postgres executable) and the account
/// that owns the files, which is everything the template depends on.
fn template_key(bin: &Path) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    TEMPLATE_VERSION.hash(&mut hasher);
    bin.hash(&mut hasher);
    if let Ok(meta) = std::fs::metadata(bin.join("postgres")) {
        meta.len().hash(&mut hasher);
        meta.modified().ok().hash(&mut hasher);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }.hash(&mut hasher);
    hasher.finish()
}

fn initdb(bin: &Path, run_as: Option<RunAs>, data: &Path) -> Result<(), PgError> {
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D")
        .arg(data)
        .args(["-U", "postgres", "-A", "trust", "--no-sync"])
        .args(["-E", "UTF8", "--locale=C", "--no-instructions"])
        .current_dir(data.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null());
    os::prepare(&mut cmd, bin, run_as);
    let out = cmd
        .output()
        .map_err(|e| PgError::io(format!("run {}", bin.join("initdb").display()), e))?;
    if !out.status.success() {
        return Err(PgError::Command {
            what: "initdb".into(),
            detail: format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(())
}

/// Copies the template into `dest` with ownership and modes intact
/// (PostgreSQL insists on a 0700 data directory owned by its user).
pub(crate) fn copy_template(template: &Path, dest: &Path) -> Result<(), PgError> {
    let out = Command::new("cp")
        .arg("-a")
        .arg(template)
        .arg(dest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PgError::io("run cp", e))?;
    if !out.status.success() {
        return Err(PgError::Command {
            what: "copying the template data directory".into(),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// Writes pg_hba.conf: trust on the unix socket (the testkit's own `psql`
/// relies on it), `auth` for TCP on loopback, for databases and replication.
pub(crate) fn write_hba(data: &Path, auth: &HbaAuth, run_as: Option<RunAs>) -> io::Result<()> {
    let method = match auth {
        HbaAuth::Trust => "trust",
        HbaAuth::Password => "password",
        HbaAuth::Md5 => "md5",
        HbaAuth::Scram => "scram-sha-256",
    };
    let mut hba = String::from("# written by dbwarden-testkit\n");
    for db in ["all", "replication"] {
        let _ = writeln!(hba, "local {db} all trust");
        let _ = writeln!(hba, "host  {db} all 127.0.0.1/32 {method}");
        let _ = writeln!(hba, "host  {db} all ::1/128 {method}");
    }
    write_owned(&data.join("pg_hba.conf"), hba.as_bytes(), 0o600, run_as)
}

/// Makes postgresql.conf include [`CONF_FILE`], which [`write_conf`] rewrites
/// for every port attempt.
pub(crate) fn include_conf(data: &Path) -> io::Result<()> {
    use std::io::Write as _;
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))?;
    writeln!(conf, "\ninclude '{CONF_FILE}'")
}

/// Writes the testkit's settings: fast and unsafe durability (data is thrown
/// away), loopback only, the socket in the cluster's own directory, then the
/// caller's settings, which win because they come last.
pub(crate) fn write_conf(
    data: &Path,
    socket_dir: &Path,
    port: u16,
    opts: &PgOptions,
    tls: Option<&(PathBuf, PathBuf)>,
    run_as: Option<RunAs>,
) -> io::Result<()> {
    let encryption = match opts.auth {
        HbaAuth::Md5 => "md5",
        HbaAuth::Trust | HbaAuth::Password | HbaAuth::Scram => "scram-sha-256",
    };
    let mut settings: Vec<(String, String)> = [
        ("listen_addresses", "127.0.0.1"),
        ("max_connections", "300"),
        ("shared_buffers", "32MB"),
        ("huge_pages", "off"),
        ("fsync", "off"),
        ("synchronous_commit", "off"),
        ("full_page_writes", "off"),
        ("logging_collector", "off"),
        ("password_encryption", encryption),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    settings.push(("port".into(), port.to_string()));
    settings.push((
        "unix_socket_directories".into(),
        socket_dir.display().to_string(),
    ));
    if let Some((cert, key)) = tls {
        settings.push(("ssl".into(), "on".into()));
        settings.push(("ssl_cert_file".into(), cert.display().to_string()));
        settings.push(("ssl_key_file".into(), key.display().to_string()));
    }
    settings.extend(opts.settings.iter().cloned());
    let mut conf = String::from("# written by dbwarden-testkit\n");
    for (name, value) in &settings {
        let _ = writeln!(conf, "{name} = {}", quote_setting(value));
    }
    write_owned(&data.join(CONF_FILE), conf.as_bytes(), 0o600, run_as)
}

/// Quotes a value for postgresql.conf; values the caller already quoted are
/// kept as they are.
fn quote_setting(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// Copies the caller's certificate and key into the cluster directory, owned
/// by the server's account with mode 0600: PostgreSQL refuses a key that
/// others can read, and the caller's files may sit where it cannot look.
pub(crate) fn install_tls(
    dir: &Path,
    cert: &Path,
    key: &Path,
    run_as: Option<RunAs>,
) -> Result<(PathBuf, PathBuf), PgError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| PgError::io(format!("read {}", path.display()), e))
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let (cert_dest, key_dest) = (dir.join("server.crt"), dir.join("server.key"));
    write_owned(&cert_dest, &cert_pem, 0o600, run_as)
        .map_err(|e| PgError::io("install TLS certificate", e))?;
    write_owned(&key_dest, &key_pem, 0o600, run_as)
        .map_err(|e| PgError::io("install TLS key", e))?;
    Ok((cert_dest, key_dest))
}

fn write_owned(path: &Path, contents: &[u8], mode: u32, run_as: Option<RunAs>) -> io::Result<()> {
    std::fs::write(path, contents)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if let Some(user) = run_as {
        user.chown(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_quoted_once() {
        assert_eq!(quote_setting("200"), "'200'");
        assert_eq!(quote_setting("it's"), "'it''s'");
        assert_eq!(quote_setting("'already'"), "'already'");
    }
}
