//! A client-side rate limit shared by every task of the process, for the
//! calls that all land on the caller's own account (STS AssumeRole,
//! Organizations): a thousand accounts at once must not stampede them into
//! throttling. Per-account CloudFormation calls spread over many accounts
//! and are not limited here (the SDK's retries handle their throttling).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A generic cell rate limit: `rate` calls per second on average, up to
/// `burst` at once after a quiet spell.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    tolerance: Duration,
    /// When the next call would be due if calls came evenly spaced.
    due: Mutex<Option<Instant>>,
}

/// STS: AWS allows 600 requests per second per account and region; a
/// sixth of it leaves room for everything else the caller runs.
pub const STS_PER_SECOND: u32 = 100;
/// Organizations publishes no rate; its API throttles early.
pub const ORGANIZATIONS_PER_SECOND: u32 = 20;

impl RateLimit {
    pub fn per_second(rate: u32, burst: u32) -> RateLimit {
        let interval = Duration::from_secs(1) / rate.max(1);
        RateLimit {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            due: Mutex::new(None),
        }
    }

    /// Waits until one more call is allowed.
    pub async fn acquire(&self) {
        let wait = {
            let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
            let (next, wait) = schedule(*due, Instant::now(), self.interval, self.tolerance);
            *due = Some(next);
            wait
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// (the new due time, how long this call waits).
fn schedule(due: Option<Instant>, now: Instant, interval: Duration, tolerance: Duration) -> (Instant, Duration) {
    let start = due.map_or(now, |d| d.max(now));
    let next = start + interval;
    (next, next.saturating_duration_since(now + tolerance + interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_calls_are_spaced() {
        let interval = Duration::from_millis(100);
        let tolerance = interval * 4; // burst of 5
        let t0 = Instant::now();
        let mut due = None;
        let waits: Vec<Duration> = (0..8)
            .map(|_| {
                let (next, wait) = schedule(due, t0, interval, tolerance);
                due = Some(next);
                wait
            })
            .collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 0, 0, 0, 0, 100, 200, 300]);
        // After a quiet second the burst is available again.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(schedule(due, later, interval, tolerance).1, Duration::ZERO);
    }

    #[tokio::test]
    async fn the_limit_holds_across_tasks() {
        let limit = std::sync::Arc::new(RateLimit::per_second(50, 5));
        let start = std::time::Instant::now();
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let limit = limit.clone();
                tokio::spawn(async move { limit.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 5 at once, then 25 at 20 ms each: at least 0.5 s.
        assert!(start.elapsed() >= Duration::from_millis(480), "{:?}", start.elapsed());
    }
}
