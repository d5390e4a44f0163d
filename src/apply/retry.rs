//! Retrying transient cloud errors: exponential backoff with full jitter, up to a deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How one resource's operation is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Backoff before the first retry (before jitter).
    pub initial: Duration,
    /// Largest backoff between two attempts.
    pub max: Duration,
    /// No new attempt starts after this much time since the first.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(15),
            deadline: Duration::from_secs(10 * 60),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `attempt` (0-based), or `None` when the deadline,
    /// counted from `started`, leaves no room for another attempt.
    pub fn backoff(&self, attempt: u32, started: Instant, jitter: &mut Jitter) -> Option<Duration> {
        let ceiling = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max);
        // Full jitter (a uniform pause in [0, ceiling]) spreads out retries of many workers
        // that failed together, which is what throttling needs.
        let pause = ceiling.mul_f64(jitter.next_unit());
        (started.elapsed() + pause < self.deadline).then_some(pause)
    }
}

/// A small xorshift generator: jitter needs spread, not secrecy.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(1);
        Self(nanos ^ u64::from(std::process::id()).rotate_left(32) | 1)
    }

    /// A number in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_bounds_and_stops_at_the_deadline() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            deadline: Duration::from_secs(60),
        };
        let mut jitter = Jitter::new();
        let started = Instant::now();
        for attempt in 0..40 {
            let pause = policy.backoff(attempt, started, &mut jitter).unwrap();
            let ceiling =
                Duration::from_millis(100 * (1u64 << attempt.min(20))).min(Duration::from_secs(1));
            assert!(
                pause <= ceiling,
                "attempt {attempt}: {pause:?} > {ceiling:?}"
            );
        }
        let expired = RetryPolicy {
            deadline: Duration::ZERO,
            ..policy
        };
        assert_eq!(expired.backoff(0, started, &mut jitter), None);
    }

    #[test]
    fn jitter_spreads() {
        let mut jitter = Jitter::new();
        let samples: Vec<f64> = (0..1000).map(|_| jitter.next_unit()).collect();
        assert!(samples.iter().all(|sample| (0.0..1.0).contains(sample)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }
}
