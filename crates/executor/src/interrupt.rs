//! Ctrl-C and SIGTERM, as the pipelines see them: once set, the fan-out
//! starts no new account, no new write starts, and waits end early with
//! what is known. The CLI owns the signals and sets it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    set: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    pub fn trigger(&self) {
        self.0.set.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.0.set.load(Ordering::SeqCst)
    }

    /// Returns once interrupted (at once when it already is).
    pub async fn wait(&self) {
        let notified = self.0.notify.notified();
        if !self.is_set() {
            notified.await;
        }
    }

    /// Sleeps `duration`, or less when interrupted meanwhile; true when
    /// interrupted.
    pub async fn sleep(&self, duration: Duration) -> bool {
        // Created before the check: a trigger in between still wakes it.
        let notified = self.0.notify.notified();
        if self.is_set() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => self.is_set(),
            () = notified => true,
        }
    }
}

/// What a pipeline says of work it stopped for an interruption.
pub const GOES_ON: &str = "CloudFormation goes on with it: run the command again to pick it up";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trigger_ends_a_sleep_at_once() {
        let interrupt = Interrupt::default();
        let other = interrupt.clone();
        let start = std::time::Instant::now();
        let sleeper = tokio::spawn(async move { other.sleep(Duration::from_secs(60)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        interrupt.trigger();
        assert!(sleeper.await.unwrap());
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(interrupt.sleep(Duration::from_secs(60)).await, "already set: no sleep");
        assert!(!Interrupt::default().sleep(Duration::from_millis(1)).await);
    }
}
