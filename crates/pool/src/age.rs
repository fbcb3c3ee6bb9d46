//! How old a connection is, when it was last used, and its own share of the lifetime jitter.

use std::time::{Duration, Instant};

use rand::Rng;

/// How far a connection's lifetime may stray from `server_lifetime`, either way, as a
/// fraction of it. Connections opened together (a restart, a burst) would otherwise all
/// expire in the same second and be reopened together, again and again.
pub const LIFETIME_JITTER: f64 = 0.10;

#[derive(Clone, Copy, Debug)]
pub struct Age {
    /// When the connection was opened.
    pub created: Instant,
    /// When a client last gave it back (or it was opened): what `server_idle_timeout` counts.
    pub idle_since: Instant,
    /// When it last proved to work: a client used it, or it passed a health check. What
    /// `server_check_delay` counts; a background check moves this, never `idle_since`.
    pub known_good: Instant,
    /// This connection's lifetime as a multiple of the configured one, drawn once when it
    /// opens: in `[1 - LIFETIME_JITTER, 1 + LIFETIME_JITTER]`.
    lifetime_scale: f64,
}

impl Age {
    /// A connection opened now.
    pub fn new() -> Age {
        let now = Instant::now();
        Age {
            created: now,
            idle_since: now,
            known_good: now,
            lifetime_scale: 1.0 + rand::thread_rng().gen_range(-LIFETIME_JITTER..=LIFETIME_JITTER),
        }
    }

    /// This connection's lifetime when the configured one is `lifetime` (zero stays zero:
    /// no limit).
    pub fn lifetime(&self, lifetime: Duration) -> Duration {
        lifetime.mul_f64(self.lifetime_scale)
    }

    /// Whether the connection has outlived its (jittered) lifetime; never when `lifetime` is 0.
    pub fn outlived(&self, lifetime: Duration, now: Instant) -> bool {
        !lifetime.is_zero()
            && now.saturating_duration_since(self.created) >= self.lifetime(lifetime)
    }

    /// How long since a client last gave the connection back.
    pub fn idle_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.idle_since)
    }

    /// How long since the connection last proved to work.
    pub fn unchecked_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.known_good)
    }
}

impl Default for Age {
    fn default() -> Age {
        Age::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_stays_within_the_jitter_bounds() {
        let hour = Duration::from_secs(3600);
        let (low, high) = (hour.mul_f64(0.9), hour.mul_f64(1.1));
        for _ in 0..10_000 {
            let l = Age::new().lifetime(hour);
            assert!(l >= low && l <= high, "{l:?} outside [{low:?}, {high:?}]");
        }
    }

    #[test]
    fn connections_opened_together_expire_apart() {
        let hour = Duration::from_secs(3600);
        let lifetimes: Vec<Duration> = (0..200).map(|_| Age::new().lifetime(hour)).collect();
        let min = lifetimes.iter().min().unwrap();
        let max = lifetimes.iter().max().unwrap();
        // 200 uniform draws over ±6 minutes: the spread is far above a minute unless the
        // jitter is broken (the chance of less is about 200 * (1/12)^199).
        assert!(*max - *min > Duration::from_secs(60), "{min:?}..{max:?}");
        let below = lifetimes.iter().filter(|l| **l < hour).count();
        assert!(
            below > 0 && below < 200,
            "jitter goes both ways: {below} of 200 below"
        );
    }

    #[test]
    fn zero_lifetime_means_no_limit() {
        let age = Age::new();
        let later = age.created + Duration::from_secs(1_000_000);
        assert!(!age.outlived(Duration::ZERO, later));
        assert!(age.outlived(Duration::from_secs(1), later));
        assert!(!age.outlived(Duration::from_secs(3600), age.created));
    }
}
