//! Operating-system plumbing for throw-away PostgreSQL servers: which OS user
//! runs them, how their processes die together with the test process, and
//! signals.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;

/// The unprivileged account PostgreSQL runs under when the tests run as root
/// (the server refuses to start as root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// `Ok(None)` when we are not root: the server then runs as ourselves.
    pub(crate) fn detect() -> Result<Option<RunAs>, super::PgError> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        lookup_user(&passwd, "postgres")
            .map(Some)
            .ok_or(super::PgError::NoPostgresUser)
    }

    pub(crate) fn chown(&self, path: &Path) -> io::Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
    }
}

/// Finds `name` in passwd(5) text: `name:x:uid:gid:...`.
fn lookup_user(passwd: &str, name: &str) -> Option<RunAs> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(RunAs { uid, gid })
    })
}

/// Prepares `cmd` to run as `run_as` with a minimal, predictable environment
/// (the caller's `PG*` variables or locale must not change how the server or
/// initdb behave), and to be killed when this process dies.
pub(crate) fn prepare(cmd: &mut Command, bin: &Path, run_as: Option<RunAs>) {
    cmd.env_clear()
        .env("PATH", search_path(bin))
        .env("LC_ALL", "C")
        .env("LANG", "C");
    if let Some(user) = run_as {
        // std drops supplementary groups (setgroups(0)) when root sets a uid.
        cmd.uid(user.uid).gid(user.gid);
    }
    die_with_parent(cmd);
}

fn search_path(bin: &Path) -> std::ffi::OsString {
    let mut path = bin.as_os_str().to_owned();
    path.push(":/usr/local/bin:/usr/bin:/bin");
    path
}

/// Asks the kernel to SIGKILL the child when the thread that forked it exits,
/// so that no server outlives a test process that crashed or was killed.
fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns a long-lived child (a postmaster) from a dedicated thread that lives
/// as long as the process.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the
/// process; the test harness runs every test on its own short-lived thread, and
/// tokio retires idle blocking threads, so forking from the caller's thread
/// would kill servers that are still in use (e.g. [`super::PgCluster::shared`]).
pub(crate) fn spawn_long_lived(cmd: Command) -> io::Result<Child> {
    // The only process-wide state besides `PgCluster::shared`: one thread that
    // must outlive every test thread by construction.
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("testkit-pg-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // The requester may have given up; nothing to do then.
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the PostgreSQL spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("PostgreSQL spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("PostgreSQL spawner thread dropped the request"))?
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub(crate) fn send_signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// The start time of `pid` in clock ticks since boot (field 22 of
/// /proc/PID/stat); with the pid it identifies a process even across pid reuse.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; the
    // fields after the last ')' start with field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether `pid` runs a command line that mentions `needle` (used to make sure
/// a pid read from a stale postmaster.pid is still that postmaster).
pub(crate) fn cmdline_mentions(pid: u32, needle: &Path) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = needle.as_os_str().as_encoded_bytes();
    raw.split(|b| *b == 0).any(|arg| {
        arg.windows(needle.len().max(1))
            .any(|window| window == needle)
    })
}

/// PostgreSQL binaries: `$PG_BIN_DIR`, else the newest
/// `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`, else an empty path
/// (commands are then looked up in `$PATH`).
pub(crate) fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    if let Some(dir) = newest_debian_bin_dir(Path::new("/usr/lib/postgresql")) {
        return dir;
    }
    Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| PathBuf::from(s.trim()))
        .filter(|dir| dir.join("postgres").exists())
        .unwrap_or_default()
}

fn newest_debian_bin_dir(root: &Path) -> Option<PathBuf> {
    let version = |name: &str| -> Option<Vec<u32>> {
        name.split('.').map(|part| part.parse().ok()).collect()
    };
    std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let v = version(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup_reads_uid_and_gid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgresql:x:7:7::/:/bin/false\n\
                      postgres:x:101:104:PostgreSQL:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(
            lookup_user(passwd, "postgres"),
            Some(RunAs { uid: 101, gid: 104 })
        );
        assert_eq!(lookup_user(passwd, "nobody"), None);
    }

    #[test]
    fn own_start_time_is_readable_and_stable() {
        let me = std::process::id();
        let first = process_start_time(me).expect("own /proc stat");
        assert_eq!(process_start_time(me), Some(first));
    }

    #[test]
    fn newest_version_directory_wins() {
        let root = tempfile::tempdir().unwrap();
        for v in ["9.6", "13", "15", "notaversion"] {
            let bin = root.path().join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("postgres"), b"").unwrap();
        }
        assert_eq!(
            newest_debian_bin_dir(root.path()),
            Some(root.path().join("15").join("bin"))
        );
    }
}
