//! The per-stack pipeline that apply and destroy share: the fan-out, then
//! every stack of a reached account at once, each with its own deadline,
//! ClientRequestTokens, waits, failures and outcome. A pipeline hands it
//! its work (`StackWork`), the way `fanout::fan_out` takes its work.

use std::time::Duration;

use model::{Action, Desired, Event, EventSink, Observed, Outcome, ResourceChange, Stage, Status, Target};
use tokio::time::Instant;

use crate::cloud::{Cloud, CloudError, StackRequest, Stacks};
use crate::fanout::{Done, Reach, Slot, fan_out};
use crate::observe::ObservedMap;
use crate::records::{every_stack, outcome};
use crate::settings::Settings;

/// How apply and destroy wait and when they stop starting accounts.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// After more than this many accounts failed, no new account starts
    /// (in-flight ones finish), like StackSets' FailureToleranceCount.
    pub failure_tolerance: usize,
    /// Between two DescribeStacks while a stack operation runs.
    pub poll_interval: Duration,
    /// Longest wait for one stack operation before giving up on it.
    pub max_wait: Duration,
    /// The (account, role, region) stacks the last registry has. Where
    /// given, the others (new accounts, new roles, a first rollout) go straight to CreateStack without a
    /// DescribeStacks first: CreateStack refuses when a stack exists
    /// (AlreadyExists), and then rolecall observes and decides as usual,
    /// so nothing is touched that would not be otherwise. `None`: always
    /// observe first.
    pub registered: Option<std::collections::BTreeSet<(model::AccountId, String, String)>>,
}

/// What a pipeline does to one stack.
pub(crate) trait StackWork<S>: Sync {
    /// The command, for messages (`apply`, `destroy`).
    const VERB: &'static str;

    /// `planned`: the stack as the confirmed plan showed it, if there was
    /// a confirmed plan.
    async fn stack(&self, run: &Stack<'_, S>, planned: Option<Observed>) -> Result<Outcome, Failure>;
}

/// Runs `work` on every stack of every target: the shared fan-out, then
/// every region of a reached account at once, one outcome each, sorted by
/// account then region. With `planned` (a confirmed plan), a stack the
/// plan could not observe is left alone.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_stacks<C, W>(
    work: &W,
    cloud: &C,
    settings: &Settings,
    options: &ApplyOptions,
    catalog: &[Desired],
    targets: &[Target],
    planned: Option<&ObservedMap>,
    events: &dyn EventSink,
) -> Vec<Outcome>
where
    C: Cloud,
    C::Session: Stacks,
    W: StackWork<C::Session>,
{
    let pace = Pace::default();
    let pace = &pace;
    let results: Vec<Vec<Outcome>> = fan_out(
        cloud,
        settings,
        targets,
        events,
        Some(options.failure_tolerance),
        |target, reach, slot| async move {
            let outcomes = match reach {
                Reach::Session(session) => {
                    let slot = &slot;
                    let stacks = crate::records::stacks(target, catalog).map(|(desired, region)| {
                        let key = (target.account_id.clone(), desired.role.clone(), region.to_owned());
                        let seen = planned.map(|p| p.get(&key).cloned());
                        let run = Stack {
                            session: &session,
                            settings,
                            options,
                            desired,
                            target,
                            region,
                            events,
                            deadline: Instant::now() + options.max_wait,
                            slot,
                            pace,
                        };
                        async move {
                            let result = match seen {
                                Some(None) => Ok(run.not_observed(W::VERB)),
                                Some(Some(observed)) => work.stack(&run, Some(observed)).await,
                                None => work.stack(&run, None).await,
                            };
                            result.unwrap_or_else(|f| f.into_outcome(target, region, desired))
                        }
                    });
                    slot.each_stack(stacks.collect()).await
                }
                Reach::Unreachable(error) => every_stack(target, Status::Failed, &error.message, catalog),
                Reach::Skipped(reason) => every_stack(target, Status::NotAttempted, &reason, catalog),
            };
            for o in &outcomes {
                events.event(Event::Finished { outcome: o.clone() });
            }
            Done {
                failed: outcomes.iter().any(|o| o.status == Status::Failed),
                result: outcomes,
            }
        },
    )
    .await;
    let mut outcomes: Vec<Outcome> = results.into_iter().flatten().collect();
    outcomes.sort_by(|a, b| (&a.account_id, &a.role, &a.region).cmp(&(&b.account_id, &b.role, &b.region)));
    outcomes
}

/// A stack that ended in failure: what was last seen of it, what was
/// being done, and why.
pub(crate) struct Failure {
    /// Boxed: a stack with its maps is large, and failures are rare.
    observed: Option<Box<Observed>>,
    action: Option<Action>,
    message: String,
}

impl Failure {
    pub(crate) fn into_outcome(self, target: &Target, region: &str, desired: &Desired) -> Outcome {
        outcome(
            target,
            region,
            self.action,
            Status::Failed,
            self.observed.as_deref(),
            Some(self.message),
            desired,
        )
    }
}

/// One stack of one account/region, and everything its pipeline needs.
pub(crate) struct Stack<'a, S> {
    pub(crate) session: &'a S,
    /// The run's: its session name (for ClientRequestTokens), host,
    /// interrupt.
    pub(crate) settings: &'a Settings,
    pub(crate) options: &'a ApplyOptions,
    pub(crate) desired: &'a Desired,
    pub(crate) target: &'a Target,
    pub(crate) region: &'a str,
    pub(crate) events: &'a dyn EventSink,
    /// One deadline per stack: waiting for another operation, deleting a
    /// failed stack and creating it again all share it.
    pub(crate) deadline: Instant,
    /// The account's working slot, let go while this stack waits.
    pub(crate) slot: &'a Slot,
    /// How long the run's operations take, for the first status read.
    pub(crate) pace: &'a Pace,
}

/// The longest first wait after a write: a stack that takes longer is read
/// every poll interval from then on.
const MAX_FIRST_WAIT: Duration = Duration::from_secs(600);

/// How long this run's own operations took, by kind (create, update,
/// delete): a stack's first status read after a write is due when the
/// fastest of its kind finished, not one poll interval after the write.
/// Until one of a kind has finished, `SCOUTS` stacks of that kind poll
/// every poll interval and the others wait for their news (reading every
/// `NEWS_WAIT` meanwhile, in case the scouts are the slow ones): at 1,000
/// accounts every stack starts before the first finishes, and polling them
/// all would read each 8–11 times.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    kinds: std::sync::Mutex<std::collections::BTreeMap<&'static str, Kind>>,
    /// Sent when a kind's first operation finished.
    news: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Kind {
    shortest: Option<Duration>,
    /// Stacks polling every interval before the kind's first finish.
    scouts: usize,
}

/// Stacks of a kind that poll every interval until one finishes.
const SCOUTS: usize = 8;
/// The longest a stack waits for the scouts' news before reading anyway.
const NEWS_WAIT: Duration = Duration::from_secs(30);

/// What a stack does before its next status read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Read,
    Sleep(Duration),
    /// Wait for the news of a kind's first finish, at most this long.
    News(Duration),
}

impl Pace {
    fn kinds(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<&'static str, Kind>> {
        self.kinds.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, kind: &'static str, took: Duration) {
        let first = {
            let mut kinds = self.kinds();
            let k = kinds.entry(kind).or_default();
            let first = k.shortest.is_none();
            k.shortest = Some(k.shortest.map_or(took, |s| s.min(took)));
            first
        };
        if first {
            self.news.notify_waiters();
        }
    }

    /// A stack of `kind` (`None`: not after a write of ours), `elapsed`
    /// since its write, `reads` status reads so far: what it does next.
    /// A stack may become a scout (`scout` set; `leave` when it is done).
    fn next(
        &self,
        kind: Option<&'static str>,
        elapsed: Duration,
        reads: usize,
        scout: &mut bool,
        poll: Duration,
    ) -> Next {
        let poll_or_read = if reads == 0 { Next::Read } else { Next::Sleep(poll) };
        let Some(kind) = kind else {
            return poll_or_read;
        };
        let mut kinds = self.kinds();
        let k = kinds.entry(kind).or_default();
        match k.shortest.map(|s| s.min(MAX_FIRST_WAIT)) {
            Some(first) if elapsed < first => Next::Sleep(first - elapsed),
            Some(_) => poll_or_read,
            None if *scout => poll_or_read,
            None if k.scouts < SCOUTS => {
                k.scouts += 1;
                *scout = true;
                poll_or_read
            }
            None => Next::News(NEWS_WAIT),
        }
    }

    /// A scout of `kind` is done (its stack finished, failed or gave up).
    fn leave(&self, kind: &'static str) {
        if let Some(k) = self.kinds().get_mut(kind) {
            k.scouts = k.scouts.saturating_sub(1);
        }
    }
}

/// The kind of operation a settle waits for, for `Pace`.
fn kind_of(action: Option<Action>) -> Option<&'static str> {
    match action? {
        Action::Create => Some("create"),
        Action::Update | Action::RevertDrift => Some("update"),
        Action::Recover | Action::Delete => Some("delete"),
        _ => None,
    }
}

impl<S: Stacks> Stack<'_, S> {
    pub(crate) fn stage(&self, stage: Stage) {
        self.events.event(Event::Stage {
            account_id: self.target.account_id.clone(),
            role: self.desired.role.clone(),
            region: self.region.to_owned(),
            stage,
        });
    }

    /// ClientRequestToken of one write: unique to the run, role, account,
    /// region and operation, so that CloudFormation recognises an SDK retry of a
    /// request it already received (and tags that operation's events).
    pub(crate) fn token(&self, operation: &str) -> String {
        let mut token: String = format!(
            "{}-{operation}-{}-{}-{}",
            self.settings.session_name, self.desired.role, self.target.account_id, self.region
        )
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
        token.truncate(128);
        token
    }

    pub(crate) fn fail(&self, observed: Option<Observed>, action: Option<Action>, message: String) -> Failure {
        Failure {
            observed: observed.map(Box::new),
            action,
            message,
        }
    }

    /// A failed call: `<what> <stack> failed: <error>`.
    pub(crate) fn cloud(&self, what: &str, action: Option<Action>, e: CloudError) -> Failure {
        self.fail(None, action, format!("{what} {} failed: {e}", self.desired.stack_name))
    }

    /// What CreateStack and CreateChangeSet send.
    pub(crate) fn request(&self) -> StackRequest {
        StackRequest {
            stack_name: self.desired.stack_name.clone(),
            template_body: self.desired.template_body.clone(),
            parameters: self.desired.parameters.clone(),
            tags: self.desired.stack_tags(),
            auto_expand: self.desired.auto_expand,
            revert_drift: false,
        }
    }

    pub(crate) async fn describe(&self, action: Option<Action>) -> Result<Observed, Failure> {
        crate::observe::read_stack(self.session, self.region, &self.desired.stack_name)
            .await
            .map_err(|e| self.cloud("reading stack", action, e))
    }

    /// This stack's outcome with `status`.
    pub(crate) fn outcome(
        &self,
        action: Option<Action>,
        status: Status,
        observed: Option<&Observed>,
        error: Option<String>,
    ) -> Outcome {
        outcome(self.target, self.region, action, status, observed, error, self.desired)
    }

    /// Interrupted before a write: nothing was done.
    pub(crate) fn interrupted(&self, action: Action, observed: &Observed) -> Outcome {
        self.outcome(
            Some(action),
            Status::NotAttempted,
            Some(observed),
            Some(format!("interrupted before `{action}`; nothing was done: run again")),
        )
    }

    /// A write that found the stack no longer what the confirmed plan showed.
    pub(crate) fn changed_since_plan(&self, action: Action, what: String) -> Outcome {
        self.outcome(
            Some(action),
            Status::ChangedSincePlan,
            None,
            Some(format!("{what}; nothing was done: run plan and apply again")),
        )
    }

    /// The confirmed plan could not observe this stack.
    fn not_observed(&self, verb: &str) -> Outcome {
        self.outcome(
            None,
            Status::NotAttempted,
            None,
            Some(format!(
                "not observed when the plan was made, so not in what was confirmed; nothing was done (run {verb} again)"
            )),
        )
    }

    /// A successful outcome, provided the stack has the output with the
    /// role ARN.
    pub(crate) fn finish(
        &self,
        action: Action,
        status: Status,
        observed: &Observed,
        changes: Vec<ResourceChange>,
    ) -> Result<Outcome, Failure> {
        let mut o = self.outcome(Some(action), status, Some(observed), None);
        if o.role_arn.is_none() {
            let message = format!(
                "stack {} has no output {}; the template must output the role ARN under that key (role.output_key)",
                self.desired.stack_name, self.desired.output_key
            );
            return Err(self.fail(Some(observed.clone()), Some(action), message));
        }
        o.changes = changes;
        Ok(o)
    }

    /// Polls DescribeStacks until no operation is in progress (or the stack
    /// is gone), on `Pace`'s schedule: after a write, the first read waits
    /// until the fastest of its kind finished.
    pub(crate) async fn settle(&self, action: Option<Action>) -> Result<Observed, Failure> {
        let started = Instant::now();
        let kind = kind_of(action);
        let mut scout = false;
        let result = async {
            let mut reads = 0;
            let mut what = format!(
                "stack {} (its {})",
                self.desired.stack_name,
                kind.unwrap_or("operation")
            );
            loop {
                // Before the check: news sent in between still wakes it.
                let news = self.pace.news.notified();
                let poll = self.options.poll_interval;
                match self.pace.next(kind, started.elapsed(), reads, &mut scout, poll) {
                    Next::Read => {}
                    Next::Sleep(wait) => {
                        self.sleep_for(action, &what, wait, None).await?;
                    }
                    Next::News(wait) => {
                        if self.sleep_for(action, &what, wait, Some(news)).await? {
                            continue;
                        }
                    }
                }
                let observed = self.describe(action).await?;
                reads += 1;
                match &observed {
                    Observed::Present(s) if planner::status::in_progress(&s.status) => {
                        what = format!("stack {} ({})", self.desired.stack_name, s.status);
                    }
                    _ => {
                        if let Some(kind) = kind {
                            self.pace.record(kind, started.elapsed());
                        }
                        return Ok(observed);
                    }
                }
            }
        }
        .await;
        if let Some(kind) = kind
            && scout
        {
            self.pace.leave(kind);
        }
        result
    }

    /// One poll interval, unless the stack's deadline passed or the run
    /// was interrupted.
    pub(crate) async fn sleep(&self, action: Option<Action>, what: &str) -> Result<(), Failure> {
        self.sleep_for(action, what, self.options.poll_interval, None)
            .await
            .map(|_| ())
    }

    /// Waits `wait` (a timer: the account's slot goes to others meanwhile),
    /// or until `news` comes (true then), unless the stack's deadline
    /// passed or the run was interrupted.
    async fn sleep_for(
        &self,
        action: Option<Action>,
        what: &str,
        wait: Duration,
        news: Option<tokio::sync::futures::Notified<'_>>,
    ) -> Result<bool, Failure> {
        let now = Instant::now();
        if now >= self.deadline {
            let message = format!(
                "timed out after {}s waiting for {what}; CloudFormation goes on with it: run apply again to pick it up, or raise --max-wait",
                self.options.max_wait.as_secs()
            );
            return Err(self.fail(None, action, message));
        }
        let sleep = self.settings.interrupt.sleep(wait.min(self.deadline - now));
        let (interrupted, heard) = self
            .slot
            .idle(async {
                match news {
                    None => (sleep.await, false),
                    Some(news) => tokio::select! {
                        interrupted = sleep => (interrupted, false),
                        () = news => (false, true),
                    },
                }
            })
            .await;
        if interrupted {
            let message = format!("interrupted while waiting for {what}; {}", crate::interrupt::GOES_ON);
            return Err(self.fail(None, action, message));
        }
        Ok(heard)
    }

    /// `: reason; reason` from the stack's failed events, or nothing.
    pub(crate) async fn reasons(&self) -> String {
        match self
            .session
            .failure_reasons(self.region, &self.desired.stack_name)
            .await
        {
            Ok(r) if !r.is_empty() => format!(": {}", r.join("; ")),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(5);

    #[test]
    fn before_a_kind_has_finished_scouts_poll_and_the_others_wait_for_news() {
        let pace = Pace::default();
        let secs = Duration::from_secs;
        // The first SCOUTS stacks of a kind read at once, then every poll.
        let mut scouts = vec![false; SCOUTS];
        for scout in &mut scouts {
            assert_eq!(pace.next(Some("create"), secs(0), 0, scout, POLL), Next::Read);
            assert!(*scout);
        }
        assert_eq!(
            pace.next(Some("create"), secs(5), 1, &mut scouts[0], POLL),
            Next::Sleep(POLL)
        );
        // The others wait for news, reading every NEWS_WAIT meanwhile.
        let mut other = false;
        assert_eq!(
            pace.next(Some("create"), secs(0), 0, &mut other, POLL),
            Next::News(NEWS_WAIT)
        );
        assert_eq!(
            pace.next(Some("create"), secs(30), 1, &mut other, POLL),
            Next::News(NEWS_WAIT)
        );
        assert!(!other);
        // A scout that gives up makes room for another.
        pace.leave("create");
        assert_eq!(
            pace.next(Some("create"), secs(31), 1, &mut other, POLL),
            Next::Sleep(POLL)
        );
        assert!(other);
        // Another kind has scouts of its own.
        let mut update = false;
        assert_eq!(pace.next(Some("update"), secs(0), 0, &mut update, POLL), Next::Read);
    }

    #[test]
    fn once_one_finished_the_others_read_when_the_fastest_was_done() {
        let pace = Pace::default();
        let secs = Duration::from_secs;
        let mut scout = false;
        assert_eq!(pace.next(Some("create"), secs(0), 0, &mut scout, POLL), Next::Read);
        pace.record("create", secs(42));
        pace.record("create", secs(50));
        let mut waiting = false;
        // Started 10 s ago: its first read is due at 42 s.
        assert_eq!(
            pace.next(Some("create"), secs(10), 0, &mut waiting, POLL),
            Next::Sleep(secs(32))
        );
        assert_eq!(pace.next(Some("create"), secs(42), 0, &mut waiting, POLL), Next::Read);
        assert_eq!(
            pace.next(Some("create"), secs(43), 1, &mut waiting, POLL),
            Next::Sleep(POLL)
        );
        assert!(!waiting, "no scouts once the kind is known");
        // A slow first finish is capped.
        pace.record("delete", secs(3600));
        assert_eq!(
            pace.next(Some("delete"), secs(0), 0, &mut waiting, POLL),
            Next::Sleep(MAX_FIRST_WAIT)
        );
        // A wait that is not after a write of ours: read, then poll.
        assert_eq!(pace.next(None, secs(0), 0, &mut waiting, POLL), Next::Read);
        assert_eq!(pace.next(None, secs(0), 1, &mut waiting, POLL), Next::Sleep(POLL));
    }

    #[tokio::test]
    async fn the_first_finish_is_news_to_every_waiting_stack() {
        let pace = std::sync::Arc::new(Pace::default());
        let news = pace.news.notified();
        let waiting = {
            let pace = pace.clone();
            tokio::spawn(async move {
                let news = pace.news.notified();
                news.await;
            })
        };
        tokio::task::yield_now().await;
        pace.record("create", Duration::from_secs(40));
        news.await;
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
        // Later finishes of the kind are no news.
        let later = pace.news.notified();
        pace.record("create", Duration::from_secs(30));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), later).await.is_err(),
            "no news after the first"
        );
    }
}
