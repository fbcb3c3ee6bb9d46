//! Per-query deadlines that clients pass in a comment (see docs/deadlines.md):
//! `/* dbwarden_deadline_ms=250 */` (budget left, relative to when the proxy reads the
//! message) or `/* dbwarden_deadline_at=1700000000000 */` (absolute, Unix milliseconds), and
//! the sqlcommenter forms with the value quoted (`/*dbwarden_deadline_ms='250'*/`).

use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memchr::memmem;

const MARKER: &[u8] = b"dbwarden_deadline_";

static FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(MARKER));

/// Finds the marker. Most queries carry none, so this is the whole cost for them: one
/// vectorised substring search (no SQL parsing, no clock read).
fn find_marker(text: &[u8]) -> Option<usize> {
    if text.len() < MARKER.len() {
        return None;
    }
    FINDER.find(text)
}

/// The deadline a statement's text asks for, if any. A malformed value is ignored rather
/// than refused: the comment is advisory, and a typo should not break an application's
/// queries. The clocks are read only when the text holds the marker.
pub fn find_now(text: &[u8]) -> Option<Instant> {
    let at = find_marker(text)?;
    at_marker(&text[at + MARKER.len()..], Instant::now(), unix_ms())
}

/// [`find_now`] as of `now`, which is `now_unix_ms` on the wall clock (an absolute deadline
/// is wall-clock time, timers are monotonic).
#[cfg(test)]
fn find(text: &[u8], now: Instant, now_unix_ms: u64) -> Option<Instant> {
    let at = find_marker(text)?;
    at_marker(&text[at + MARKER.len()..], now, now_unix_ms)
}

/// `rest` follows the marker.
fn at_marker(rest: &[u8], now: Instant, now_unix_ms: u64) -> Option<Instant> {
    let (relative, rest) = if let Some(r) = rest.strip_prefix(b"ms=") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix(b"at=") {
        (false, r)
    } else {
        return None;
    };
    let rest = rest.strip_prefix(b"'").unwrap_or(rest);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let value: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let budget_ms = if relative {
        value
    } else {
        value.saturating_sub(now_unix_ms)
    };
    Some(now + Duration::from_millis(budget_ms))
}

/// Wall-clock now in Unix milliseconds, for absolute deadlines.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(text: &str, now_unix: u64) -> Option<u64> {
        let now = Instant::now();
        find(text.as_bytes(), now, now_unix).map(|d| (d - now).as_millis() as u64)
    }

    #[test]
    fn relative_and_absolute_forms() {
        assert_eq!(
            budget("/* dbwarden_deadline_ms=250 */ SELECT 1", 0),
            Some(250)
        );
        assert_eq!(
            budget("SELECT 1 /*dbwarden_deadline_ms='75'*/", 0),
            Some(75)
        );
        assert_eq!(
            budget("/* dbwarden_deadline_at=10500 */ SELECT 1", 10_000),
            Some(500)
        );
        assert_eq!(
            budget("SELECT 1 /*dbwarden_deadline_at='10200',x='y'*/", 10_000),
            Some(200)
        );
    }

    #[test]
    fn past_absolute_deadline_is_now() {
        assert_eq!(
            budget("/* dbwarden_deadline_at=5 */ SELECT 1", 10_000),
            Some(0)
        );
    }

    #[test]
    fn no_or_malformed_marker_is_none() {
        assert_eq!(budget("SELECT 'd' FROM dual", 0), None);
        assert_eq!(budget("/* dbwarden_deadline_ms=abc */", 0), None);
        assert_eq!(budget("/* dbwarden_deadline_xx=5 */", 0), None);
        assert_eq!(budget("dbwarden_deadline_", 0), None);
        assert_eq!(budget("", 0), None);
    }
}
