//! The one per-account fan-out every pipeline plugs into (plan, apply,
//! destroy): bounded concurrency with no barrier between accounts, one
//! AssumeRole per account, failure tolerance, and the account-level events.
//! A pipeline supplies only what happens inside one reached account.
//!
//! Concurrency bounds the accounts at work, not the accounts waiting: an
//! account holds one of the run's `concurrency` slots while it makes calls,
//! and gives it back while all its stacks wait for CloudFormation
//! (`Slot::idle`), so thousands of stacks can be in progress at once and a
//! wait costs a timer. Work after a wait takes a slot of a second pool of
//! the same size, so a stack that is due is read at once rather than after
//! every account still to start: at most twice `concurrency` accounts make
//! calls at once.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::stream::{self, StreamExt};
use model::{AccountError, Event, EventSink, Target};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cloud::{Cloud, ErrorKind};
use crate::records::account_error;
use crate::settings::Settings;

/// How far the fan-out got with one account before handing it over.
pub enum Reach<S> {
    /// The bootstrap role was assumed: do the work.
    Session(S),
    /// AssumeRole failed; `AccountFailed` was already sent.
    Unreachable(AccountError),
    /// Not started: more accounts failed than the tolerance allows.
    Skipped(String),
}

/// What one account's work returns: its results, and whether it counts
/// as a failed account for the tolerance.
pub struct Done<R> {
    pub result: R,
    pub failed: bool,
}

/// Accounts begun and not finished at most by default, waiting ones
/// included (`Settings::max_in_flight`): what bounds the memory of a run
/// (each holds its credentials session and clients, ≈ 20 KB), not its speed.
pub const ACCOUNTS_IN_FLIGHT: usize = 10_000;

/// An account's hold on one of the run's working slots. The account holds
/// it while any of its stacks works; a stack that waits (`idle`) lets go of
/// its share, and when no stack of the account works the slot goes to
/// another account.
#[derive(Debug)]
pub struct Slot {
    /// Where an account's work goes on after a wait: a pool of its own, so
    /// that a stack that is due is read at once instead of queueing behind
    /// every account not yet started.
    resumes: Arc<Semaphore>,
    hold: tokio::sync::Mutex<Hold>,
}

#[derive(Debug)]
struct Hold {
    /// The account's stacks (or the account itself) at work now.
    busy: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl Hold {
    /// One of the account's stacks stops working (it is done, or waits);
    /// the last one lets the slot go.
    fn leave(&mut self) {
        self.busy = self.busy.saturating_sub(1);
        if self.busy == 0 {
            self.permit = None;
        }
    }
}

impl Slot {
    async fn take(starts: Arc<Semaphore>, resumes: Arc<Semaphore>) -> Slot {
        let permit = starts.acquire_owned().await.expect("the slots are never closed");
        Slot {
            resumes,
            hold: tokio::sync::Mutex::new(Hold {
                busy: 1,
                permit: Some(permit),
            }),
        }
    }

    /// Runs the account's stacks at once, each working and waiting
    /// (`idle`) on its own; the account keeps its slot while any of them
    /// works. Results in the order of `stacks`.
    pub(crate) async fn each_stack<T>(&self, stacks: Vec<impl Future<Output = T>>) -> Vec<T> {
        self.split(stacks.len()).await;
        futures::future::join_all(stacks.into_iter().map(|stack| async move {
            let out = stack.await;
            self.done().await;
            out
        }))
        .await
    }

    /// The account's work goes on as `n` stacks, each working and waiting
    /// on its own.
    async fn split(&self, n: usize) {
        let mut hold = self.hold.lock().await;
        hold.busy = n;
        if n == 0 {
            hold.permit = None;
        }
    }

    /// One stack is done.
    async fn done(&self) {
        self.hold.lock().await.leave();
    }

    /// Runs `wait` (a timer) without a share of the slot, then works again
    /// once the account has a slot.
    pub(crate) async fn idle<T>(&self, wait: impl Future<Output = T>) -> T {
        self.hold.lock().await.leave();
        let out = wait.await;
        let mut hold = self.hold.lock().await;
        if hold.permit.is_none() {
            hold.permit = Some(
                self.resumes
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the slots are never closed"),
            );
        }
        hold.busy += 1;
        out
    }
}

/// Runs `work` for every target, at most `settings.concurrency` accounts at
/// work at once (an account whose stacks all wait gives its slot back; see
/// `Slot`). With `failure_tolerance: Some(n)`, once more than `n` accounts
/// failed, accounts not yet started are handed over as `Skipped` without
/// any call. Results come back in completion order.
pub async fn fan_out<'a, C, R, W, Fut>(
    cloud: &'a C,
    settings: &'a Settings,
    targets: &'a [Target],
    events: &'a dyn EventSink,
    failure_tolerance: Option<usize>,
    work: W,
) -> Vec<R>
where
    C: Cloud,
    W: Fn(&'a Target, Reach<C::Session>, Arc<Slot>) -> Fut,
    Fut: Future<Output = Done<R>> + 'a,
{
    events.event(Event::Started {
        accounts: targets.len(),
    });
    let failed = AtomicUsize::new(0);
    let failed = &failed;
    let work = &work;
    let starts = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let resumes = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let (starts, resumes) = (&starts, &resumes);
    stream::iter(targets)
        .map(|target| async move {
            // In order: the first accounts take the first slots.
            let slot = Arc::new(Slot::take(starts.clone(), resumes.clone()).await);
            if settings.interrupt.is_set() {
                return work(
                    target,
                    Reach::Skipped("not attempted: the run was interrupted".to_owned()),
                    slot,
                )
                .await
                .result;
            }
            if let Some(tolerance) = failure_tolerance
                && failed.load(Ordering::SeqCst) > tolerance
            {
                let reason = format!("not attempted: more than {tolerance} account(s) failed (failure tolerance)");
                return work(target, Reach::Skipped(reason), slot).await.result;
            }
            events.event(Event::AccountStarted {
                account_id: target.account_id.clone(),
            });
            let reach = match assume(cloud, settings, target).await {
                Ok(session) => Reach::Session(session),
                Err(error) => {
                    events.event(Event::AccountFailed { error: error.clone() });
                    Reach::Unreachable(error)
                }
            };
            // Held here until the work is done, whether or not it waits.
            let done = work(target, reach, slot.clone()).await;
            drop(slot);
            if done.failed {
                failed.fetch_add(1, Ordering::SeqCst);
            }
            events.event(Event::AccountFinished {
                account_id: target.account_id.clone(),
            });
            done.result
        })
        .buffer_unordered(settings.max_in_flight.max(1))
        .collect()
        .await
}

/// AssumeRole into the target's bootstrap role; a failure is that account's
/// error, with what to do about it.
pub async fn assume<C: Cloud>(cloud: &C, settings: &Settings, target: &Target) -> Result<C::Session, AccountError> {
    let arn = settings.bootstrap_role_arn(&target.account_id);
    cloud
        .assume_role(&target.account_id, &arn, &settings.session_name, settings.bootstrap_external_id.as_deref())
        .await
        .map_err(|e| {
            let help = if e.kind == ErrorKind::ExpiredCredentials {
                "the caller's credentials expired: renew them (e.g. `aws sso login`) and run again"
            } else if e.kind == ErrorKind::AccessDenied {
                "the bootstrap role is missing or does not trust the caller (invited accounts have no OrganizationAccountAccessRole): create it once with the template from `rolecall bootstrap-template`, or set deploy.bootstrap_role"
            } else {
                "check the network, the endpoint and the caller's credentials"
            };
            account_error(target, None, format!("cannot assume {arn}: {e}; {help}"))
        })
}
