//! The one per-account fan-out every pipeline plugs into (plan, apply,
//! destroy): bounded concurrency with no barrier between accounts, one
//! AssumeRole per account, failure tolerance, and the account-level events.
//! A pipeline supplies only what happens inside one reached account.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::stream::{self, StreamExt};
use model::{AccountError, Event, EventSink, Target};

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

/// Runs `work` for every target, at most `settings.concurrency` accounts at
/// once. With `failure_tolerance: Some(n)`, once more than `n` accounts
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
    W: Fn(&'a Target, Reach<C::Session>) -> Fut,
    Fut: Future<Output = Done<R>> + 'a,
{
    events.event(Event::Started {
        accounts: targets.len(),
    });
    let failed = AtomicUsize::new(0);
    let failed = &failed;
    let work = &work;
    stream::iter(targets)
        .map(|target| async move {
            if settings.interrupt.is_set() {
                return work(
                    target,
                    Reach::Skipped("not attempted: the run was interrupted".to_owned()),
                )
                .await
                .result;
            }
            if let Some(tolerance) = failure_tolerance
                && failed.load(Ordering::SeqCst) > tolerance
            {
                let reason = format!("not attempted: more than {tolerance} account(s) failed (failure tolerance)");
                return work(target, Reach::Skipped(reason)).await.result;
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
            let done = work(target, reach).await;
            if done.failed {
                failed.fetch_add(1, Ordering::SeqCst);
            }
            events.event(Event::AccountFinished {
                account_id: target.account_id.clone(),
            });
            done.result
        })
        .buffer_unordered(settings.concurrency.max(1))
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
