//! Where cluster directories live, who owns them, and removal of the ones left
//! behind by test processes that died without running destructors (a killed
//! `cargo test`, a panic in a static, `shared()` which is never dropped).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::os;

/// Prefix of every per-cluster (and template-build) directory.
pub(crate) const DIR_PREFIX: &str = "dbwarden-pg-";
/// File in such a directory naming the owning process: "PID STARTTIME".
const OWNER_FILE: &str = "owner";
/// A directory without an owner file is only swept once it is this old, so a
/// directory that another process created a moment ago is left alone.
const UNOWNED_GRACE: Duration = Duration::from_secs(3600);

/// The directory that holds cluster directories. Unix socket paths are limited
/// to 107 bytes, so a long `$TMPDIR` is replaced by /tmp.
pub(crate) fn base_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    if tmp.as_os_str().len() > 48 {
        PathBuf::from("/tmp")
    } else {
        tmp
    }
}

/// Marks `dir` as owned by this process.
pub(crate) fn write_owner(dir: &Path) -> io::Result<()> {
    let pid = std::process::id();
    let start = os::process_start_time(pid).unwrap_or(0);
    std::fs::write(dir.join(OWNER_FILE), format!("{pid} {start}\n"))
}

/// Removes cluster directories whose owning process is gone, after killing a
/// postmaster that may still run from one. Best effort: failures are logged.
pub(crate) fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_ours = name.to_str().is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !is_ours || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        if is_stale(&dir) {
            tracing::debug!(dir = %dir.display(), "removing stale PostgreSQL test directory");
            kill_leftover_postmaster(&dir);
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                // Another process may be sweeping the same directory.
                tracing::debug!(dir = %dir.display(), %error, "could not remove stale directory");
            }
        }
    }
}

fn is_stale(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join(OWNER_FILE)) {
        Ok(owner) => !owner_alive(&owner),
        Err(_) => std::fs::metadata(dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age > UNOWNED_GRACE),
    }
}

fn owner_alive(owner: &str) -> bool {
    let mut fields = owner.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(pid)), Some(Ok(start))) = (fields.next(), fields.next()) else {
        // Unreadable marker: keep the directory rather than guess.
        return true;
    };
    let Ok(pid) = u32::try_from(pid) else {
        return true;
    };
    os::process_start_time(pid) == Some(start)
}

/// A postmaster normally dies with its test process (PDEATHSIG); this covers
/// the case where that did not happen, e.g. a server started by older code.
fn kill_leftover_postmaster(dir: &Path) {
    let data = dir.join("data");
    let Ok(pidfile) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return;
    };
    let Some(pid) = pidfile.lines().next().and_then(|l| l.trim().parse().ok()) else {
        return;
    };
    if os::cmdline_mentions(pid, &data) {
        tracing::debug!(pid, "killing leftover postmaster");
        let _ = os::send_signal(pid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_dead_owners_are_swept_and_live_ones_kept() {
        let base = tempfile::tempdir().unwrap();
        let live = base.path().join(format!("{DIR_PREFIX}live"));
        let dead = base.path().join(format!("{DIR_PREFIX}dead"));
        let young_unowned = base.path().join(format!("{DIR_PREFIX}young"));
        let foreign = base.path().join("someone-else");
        for dir in [&live, &dead, &young_unowned, &foreign] {
            std::fs::create_dir(dir).unwrap();
        }
        write_owner(&live).unwrap();
        // pid_max is at most 2^22, so this pid cannot exist.
        std::fs::write(dead.join(OWNER_FILE), "4294967 12345\n").unwrap();
        std::fs::write(dead.join("junk"), "x").unwrap();
        write_owner(&foreign).unwrap();
        std::fs::write(foreign.join(OWNER_FILE), "4294967 1\n").unwrap();

        sweep_stale(base.path());

        assert!(live.exists(), "live owner's directory must stay");
        assert!(!dead.exists(), "dead owner's directory must go");
        assert!(young_unowned.exists(), "fresh unowned directory must stay");
        assert!(foreign.exists(), "directories without our prefix must stay");
    }
}
