//! Calls per second per business system: a token bucket per system, in this process (each
//! `fapiao serve` process limits its own share; the limit protects the database from one busy
//! ERP, not an exact global quota).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_sec` = 0: no limit.
    pub fn new(per_sec: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_sec: per_sec as f64,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one call from `system`'s bucket, if there is one.
    pub fn allow(&self, system: &str) -> bool {
        self.allow_at(system, Instant::now())
    }

    fn allow_at(&self, system: &str, now: Instant) -> bool {
        if self.per_sec == 0.0 {
            return true;
        }
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let (tokens, at) = buckets.entry(system.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_system() {
        let limiter = RateLimiter::new(2, 3);
        let t = Instant::now();
        assert!((0..3).all(|_| limiter.allow_at("A", t)));
        assert!(!limiter.allow_at("A", t));
        assert!(limiter.allow_at("B", t), "another system has its own bucket");
        assert!(limiter.allow_at("A", t + Duration::from_millis(500)));
        assert!(!limiter.allow_at("A", t + Duration::from_millis(500)));
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = RateLimiter::new(0, 0);
        assert!((0..10_000).all(|_| limiter.allow("A")));
    }
}
