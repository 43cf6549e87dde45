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
use crate::records::{every_stack, outcome, status_of};
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
                    let stacks: Vec<(&Desired, &str)> = crate::records::stacks(target, catalog).collect();
                    // Each stack works and waits on its own; the account
                    // keeps its slot while any of them works.
                    slot.split(stacks.len()).await;
                    let slot = &slot;
                    futures::future::join_all(stacks.into_iter().map(|(desired, region)| {
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
                            slot.done().await;
                            result.unwrap_or_else(|f| f.into_outcome(target, region, desired))
                        }
                    }))
                    .await
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
/// delete): the first status read after a write is due when the fastest of
/// its kind finished, not one poll interval after the write. Until one has
/// finished, reads come every poll interval.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    shortest: std::sync::Mutex<std::collections::BTreeMap<&'static str, Duration>>,
}

impl Pace {
    fn record(&self, kind: &'static str, took: Duration) {
        let mut shortest = self.shortest.lock().unwrap_or_else(|e| e.into_inner());
        let entry = shortest.entry(kind).or_insert(took);
        *entry = (*entry).min(took);
    }

    /// The first wait after a write of `kind`, if the run has seen one
    /// finish.
    fn first_wait(&self, kind: &'static str) -> Option<Duration> {
        let shortest = self.shortest.lock().unwrap_or_else(|e| e.into_inner());
        shortest.get(kind).map(|d| (*d).min(MAX_FIRST_WAIT))
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
    /// is gone).
    /// Right after a write of a kind the run has seen finish, the first
    /// read waits until the fastest of them finished (see `Pace`).
    pub(crate) async fn settle(&self, action: Option<Action>) -> Result<Observed, Failure> {
        let started = Instant::now();
        let kind = kind_of(action);
        if let Some(kind) = kind
            && let Some(first) = self.pace.first_wait(kind)
            && !first.is_zero()
        {
            let what = format!("stack {} (its {kind})", self.desired.stack_name);
            self.sleep_for(action, &what, first).await?;
        }
        loop {
            let observed = self.describe(action).await?;
            match &observed {
                Observed::Present(s) if planner::status::in_progress(&s.status) => {}
                _ => {
                    if let Some(kind) = kind {
                        self.pace.record(kind, started.elapsed());
                    }
                    return Ok(observed);
                }
            }
            self.sleep(
                action,
                &format!("stack {} ({})", self.desired.stack_name, status_of(&observed)),
            )
            .await?;
        }
    }

    /// One poll interval, unless the stack's deadline passed or the run
    /// was interrupted.
    pub(crate) async fn sleep(&self, action: Option<Action>, what: &str) -> Result<(), Failure> {
        self.sleep_for(action, what, self.options.poll_interval).await
    }

    /// Waits `wait` (a timer: the account's slot goes to others meanwhile),
    /// unless the stack's deadline passed or the run was interrupted.
    async fn sleep_for(&self, action: Option<Action>, what: &str, wait: Duration) -> Result<(), Failure> {
        let now = Instant::now();
        if now >= self.deadline {
            let message = format!(
                "timed out after {}s waiting for {what}; CloudFormation goes on with it: run apply again to pick it up, or raise --max-wait",
                self.options.max_wait.as_secs()
            );
            return Err(self.fail(None, action, message));
        }
        if self
            .slot
            .idle(self.settings.interrupt.sleep(wait.min(self.deadline - now)))
            .await
        {
            let message = format!("interrupted while waiting for {what}; {}", crate::interrupt::GOES_ON);
            return Err(self.fail(None, action, message));
        }
        Ok(())
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
