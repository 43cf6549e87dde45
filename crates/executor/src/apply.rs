//! The apply pipeline. Per account, with no barrier between accounts:
//! assume the bootstrap role → per region (concurrently) observe → decide
//! (the planner) → act → wait → read outputs. CloudFormation is the state:
//! a run killed half-way and started again observes where things stand and
//! goes on from there.

use std::time::Duration;

use model::{Action, Desired, Event, EventSink, Observed, Outcome, ResourceChange, Stage, Status, Target};
use tokio::time::Instant;

use crate::changesets;
use crate::cloud::{AccountSession, Cloud, CloudError, StackRequest};
use crate::fanout::{Done, Reach, fan_out};
use crate::observe::{ObservedMap, Settings, plan_entry};

/// How apply waits and when it stops starting accounts.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// After more than this many accounts failed, no new account starts
    /// (in-flight ones finish), like StackSets' FailureToleranceCount.
    pub failure_tolerance: usize,
    /// Between two DescribeStacks while a stack operation runs.
    pub poll_interval: Duration,
    /// Longest wait for one stack operation before giving up on it.
    pub max_wait: Duration,
    /// The account/regions the last registry has. Where given, the others
    /// (new accounts, a first rollout) go straight to CreateStack without a
    /// DescribeStacks first: CreateStack refuses when a stack exists
    /// (AlreadyExists), and then rolecall observes and decides as usual,
    /// so nothing is touched that would not be otherwise. `None`: always
    /// observe first.
    pub registered: Option<std::collections::BTreeSet<(model::AccountId, String)>>,
}

/// Applies `desired` to every target. Returns one outcome per
/// account/region, sorted by account then region. With `planned` (a
/// confirmed plan), acts on exactly what was observed then.
pub async fn apply<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    options: &ApplyOptions,
    desired: &Desired,
    targets: &[Target],
    planned: Option<&ObservedMap>,
    events: &dyn EventSink,
) -> Vec<Outcome> {
    run_stacks(Work::Apply, cloud, settings, options, desired, targets, planned, events).await
}

/// What the stack pipeline does to each stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    Apply,
    Destroy,
}

impl Work {
    fn verb(self) -> &'static str {
        match self {
            Work::Apply => "apply",
            Work::Destroy => "destroy",
        }
    }
}

/// The stack pipeline of apply and destroy: the shared fan-out, then every
/// region of a reached account at once, one outcome each.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_stacks<C: Cloud>(
    work: Work,
    cloud: &C,
    settings: &Settings,
    options: &ApplyOptions,
    desired: &Desired,
    targets: &[Target],
    planned: Option<&ObservedMap>,
    events: &dyn EventSink,
) -> Vec<Outcome> {
    let session_name = settings.session_name.as_str();
    let interrupt = &settings.interrupt;
    let results: Vec<Vec<Outcome>> = fan_out(
        cloud,
        settings,
        targets,
        events,
        Some(options.failure_tolerance),
        |target, reach| async move {
            let outcomes = match reach {
                Reach::Session(session) => {
                    futures::future::join_all(target.regions.iter().map(|region| {
                        let seen = planned.map(|p| p.get(&(target.account_id.clone(), region.clone())).cloned());
                        one_stack(
                            work,
                            &session,
                            (session_name, interrupt),
                            options,
                            desired,
                            target,
                            region,
                            seen,
                            events,
                        )
                    }))
                    .await
                }
                Reach::Unreachable(error) => every_region(target, Status::Failed, &error.message, desired),
                Reach::Skipped(reason) => every_region(target, Status::NotAttempted, &reason, desired),
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
    outcomes.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    outcomes
}

/// One stack: `seen` is `None` without a confirmed plan, `Some(None)` when
/// the plan could not observe it (then nothing is done).
#[allow(clippy::too_many_arguments)]
async fn one_stack<S: AccountSession>(
    work: Work,
    session: &S,
    (session_name, interrupt): (&str, &crate::interrupt::Interrupt),
    options: &ApplyOptions,
    desired: &Desired,
    target: &Target,
    region: &str,
    seen: Option<Option<Observed>>,
    events: &dyn EventSink,
) -> Outcome {
    let run = Converge {
        session,
        session_name,
        interrupt,
        options,
        desired,
        target,
        region,
        events,
        deadline: Instant::now() + options.max_wait,
    };
    let result = match (seen, work) {
        (Some(None), _) => Ok(outcome(
            target,
            region,
            None,
            Status::NotAttempted,
            None,
            Some(format!(
                "not observed when the plan was made, so not in what was confirmed; nothing was done (run {} again)",
                work.verb()
            )),
            desired,
        )),
        (None, Work::Apply)
            if options
                .registered
                .as_ref()
                .is_some_and(|r| !r.contains(&(target.account_id.clone(), region.to_owned()))) =>
        {
            run.create_first().await
        }
        (seen, Work::Apply) => run.go(seen.flatten()).await,
        (seen, Work::Destroy) => crate::destroy::tear_down(&run, seen.flatten()).await,
    };
    match result {
        Ok(o) => o,
        Err(f) => f.into_outcome(target, region, desired),
    }
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

enum Updated {
    Done(Outcome),
    /// Another live run has a change set on the stack.
    Busy(String),
}

enum Created {
    Done(Box<Outcome>),
    AlreadyExists,
}

pub(crate) struct Failure {
    /// Boxed: a stack with its maps is large, and failures are rare.
    observed: Option<Box<Observed>>,
    action: Option<Action>,
    message: String,
}

pub(crate) struct Converge<'a, S> {
    pub(crate) session: &'a S,
    /// The run's session name, for ClientRequestTokens.
    pub(crate) session_name: &'a str,
    pub(crate) interrupt: &'a crate::interrupt::Interrupt,
    pub(crate) options: &'a ApplyOptions,
    pub(crate) desired: &'a Desired,
    pub(crate) target: &'a Target,
    pub(crate) region: &'a str,
    pub(crate) events: &'a dyn EventSink,
    /// One deadline per stack: waiting for another operation, deleting a
    /// failed stack and creating it again all share it.
    pub(crate) deadline: Instant,
}

impl<S: AccountSession> Converge<'_, S> {
    pub(crate) fn stage(&self, stage: Stage) {
        self.events.event(Event::Stage {
            account_id: self.target.account_id.clone(),
            region: self.region.to_owned(),
            stage,
        });
    }

    /// ClientRequestToken of one write: unique to the run, account, region
    /// and operation, so that CloudFormation recognises an SDK retry of a
    /// request it already received (and tags that operation's events).
    pub(crate) fn token(&self, operation: &str) -> String {
        let mut token: String = format!(
            "{}-{operation}-{}-{}",
            self.session_name, self.target.account_id, self.region
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

    fn cloud(&self, what: &str, action: Option<Action>, e: CloudError) -> Failure {
        self.fail(None, action, format!("{what} {} failed: {e}", self.desired.stack_name))
    }

    fn request(&self) -> StackRequest {
        StackRequest {
            stack_name: self.desired.stack_name.clone(),
            template_body: self.desired.template_body.clone(),
            parameters: self.desired.parameters.clone(),
            tags: self.desired.stack_tags(),
            auto_expand: self.desired.auto_expand,
        }
    }

    pub(crate) async fn describe(&self, action: Option<Action>) -> Result<Observed, Failure> {
        crate::observe::read_stack(self.session, self.region, &self.desired.stack_name)
            .await
            .map_err(|e| self.cloud("reading stack", action, e))
    }

    /// An account/region rolecall never recorded: CreateStack at once; if a
    /// stack is there after all, observe and decide as usual.
    async fn create_first(&self) -> Result<Outcome, Failure> {
        let mut entry = plan_entry(self.target, self.region, self.desired, &Observed::Absent);
        entry.reason =
            "not in the registry: CreateStack without reading first (it refuses an existing stack)".to_owned();
        self.events.event(Event::Planned { entry });
        match self.create(false).await? {
            Created::Done(o) => Ok(*o),
            Created::AlreadyExists => {
                self.stage(Stage::Observing);
                let observed = self.describe(None).await?;
                self.converge(observed, false).await
            }
        }
    }

    /// `planned`: the stack as the confirmed plan showed it. Then every
    /// write fails safe when the stack is no longer that (the outcome is
    /// `changed-since-plan`), instead of doing what the user did not see.
    async fn go(&self, planned: Option<Observed>) -> Result<Outcome, Failure> {
        let confirmed = planned.is_some();
        let observed = match planned {
            Some(observed) => observed,
            None => {
                self.stage(Stage::Observing);
                self.describe(None).await?
            }
        };
        self.converge(observed, confirmed).await
    }

    /// Decide, act, and decide again until the stack is where the inventory
    /// wants it (or a human must act).
    async fn converge(&self, mut observed: Observed, confirmed: bool) -> Result<Outcome, Failure> {
        let mut recovered = false;
        let mut raced = false;
        loop {
            let entry = plan_entry(self.target, self.region, self.desired, &observed);
            let action = entry.action;
            self.events.event(Event::Planned { entry: entry.clone() });
            if self.interrupt.is_set() && matches!(action, Action::Create | Action::Update | Action::Recover) {
                return Ok(self.interrupted(action, &observed));
            }
            match action {
                Action::NoOp => return self.finish(Action::NoOp, Status::Unchanged, &observed, Vec::new()),
                Action::Blocked => {
                    let o = outcome(
                        self.target,
                        self.region,
                        Some(action),
                        Status::Blocked,
                        Some(&observed),
                        Some(entry.reason),
                        self.desired,
                    );
                    return Ok(o);
                }
                Action::Wait => {
                    self.stage(Stage::Waiting);
                    observed = self.settle(Some(action)).await?;
                }
                Action::Delete | Action::Orphaned => {
                    let message = format!(
                        "the planner chose `{action}` during apply; this is a bug in rolecall, please report it"
                    );
                    return Err(self.fail(Some(observed), Some(action), message));
                }
                Action::Create => match self.create(confirmed).await? {
                    Created::Done(o) => return Ok(*o),
                    // Another run created it meanwhile (or a retry the SDK
                    // could not match): observe again and decide, once.
                    Created::AlreadyExists if !raced => {
                        raced = true;
                        observed = self.describe(Some(action)).await?;
                    }
                    Created::AlreadyExists => {
                        let message = "CreateStack keeps answering AlreadyExists while DescribeStacks finds no stack; run apply again".to_owned();
                        return Err(self.fail(Some(observed), Some(action), message));
                    }
                },
                Action::Update => match self.update(observed, confirmed).await? {
                    Updated::Done(o) => return Ok(o),
                    // Another run is about to update this stack: wait, then
                    // observe and decide again (it may have done our work).
                    Updated::Busy(what) => {
                        self.stage(Stage::Waiting);
                        self.sleep(Some(action), &format!("another rolecall run, {what}"))
                            .await?;
                        observed = self.describe(Some(action)).await?;
                    }
                },
                Action::Recover => {
                    if recovered {
                        let message = format!(
                            "the stack is still {} after deleting it once; fix it by hand",
                            status_of(&observed)
                        );
                        return Err(self.fail(Some(observed), Some(action), message));
                    }
                    recovered = true;
                    self.stage(Stage::Deleting);
                    // By stack id: if this failed stack was replaced since it
                    // was observed, the new one is left alone.
                    let id = match &observed {
                        Observed::Present(s) if !s.stack_id.is_empty() => s.stack_id.clone(),
                        _ => self.desired.stack_name.clone(),
                    };
                    self.session
                        .delete_stack(self.region, &id, &self.token("delete"))
                        .await
                        .map_err(|e| self.cloud("deleting failed stack", Some(action), e))?;
                    observed = self.settle(Some(action)).await?;
                    if let Observed::Present(stack) = &observed
                        && stack.status == "DELETE_FAILED"
                    {
                        let why = self.reasons().await;
                        let message = format!(
                            "could not delete the failed stack (DELETE_FAILED{why}); delete it by hand, then run again"
                        );
                        return Err(self.fail(Some(observed), Some(action), message));
                    }
                }
            }
        }
    }

    /// Interrupted before a write: nothing was done.
    pub(crate) fn interrupted(&self, action: Action, observed: &Observed) -> Outcome {
        outcome(
            self.target,
            self.region,
            Some(action),
            Status::NotAttempted,
            Some(observed),
            Some(format!("interrupted before `{action}`; nothing was done: run again")),
            self.desired,
        )
    }

    fn changed_since_plan(&self, action: Action, what: String) -> Outcome {
        outcome(
            self.target,
            self.region,
            Some(action),
            Status::ChangedSincePlan,
            None,
            Some(format!("{what}; nothing was done: run plan and apply again")),
            self.desired,
        )
    }

    async fn create(&self, confirmed: bool) -> Result<Created, Failure> {
        let action = Some(Action::Create);
        self.stage(Stage::Creating);
        match self
            .session
            .create_stack(self.region, &self.request(), &self.token("create"))
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("AlreadyExistsException") && confirmed => {
                let what = format!(
                    "the plan showed no stack {}, but one exists now",
                    self.desired.stack_name
                );
                return Ok(Created::Done(Box::new(self.changed_since_plan(Action::Create, what))));
            }
            Err(e) if e.code() == Some("AlreadyExistsException") => return Ok(Created::AlreadyExists),
            Err(e) => return Err(self.cloud("CreateStack", action, e)),
        }
        let observed = self.settle(action).await?;
        match status_of(&observed) {
            "CREATE_COMPLETE" => self
                .finish(Action::Create, Status::Created, &observed, Vec::new())
                .map(|o| Created::Done(Box::new(o))),
            other => {
                let why = self.reasons().await;
                Err(self.fail(Some(observed.clone()), action, format!("create ended in {other}{why}")))
            }
        }
    }

    async fn update(&self, before: Observed, confirmed: bool) -> Result<Updated, Failure> {
        let action = Some(Action::Update);
        self.stage(Stage::Updating);
        let stack = self.desired.stack_name.clone();
        let run = changesets::Run {
            session: self.session_name,
            host: changesets::this_host(),
        };
        // Unique to the run: two runs at once never touch each other's.
        let name = run.change_set_name(&self.desired.fingerprint);
        let description = run.description();
        // What other runs left: crashed runs' change sets go, live runs'
        // are waited for. A bootstrap role without ListChangeSets (made by
        // an older rolecall) only loses that cleanup.
        match self.session.list_change_sets(self.region, &stack).await {
            Ok(sets) => {
                let mut busy = None;
                for other in changesets::others(&sets, &run, std::time::SystemTime::now(), &changesets::pid_alive) {
                    match other {
                        changesets::Other::Stale { name } => {
                            tracing::info!(account = %self.target.account_id, region = self.region, change_set = %name, "deleting an abandoned change set");
                            let _ = self.session.delete_change_set(self.region, &stack, &name).await;
                        }
                        changesets::Other::InFlight { name, owner } => {
                            busy = Some(format!("{owner} (change set {name})"))
                        }
                    }
                }
                if let Some(what) = busy {
                    return Ok(Updated::Busy(what));
                }
            }
            Err(e) => {
                tracing::warn!(account = %self.target.account_id, region = self.region, "cannot list the change sets of {stack}: {e}")
            }
        }
        let request = self.request();
        let mut created = self
            .session
            .create_change_set(self.region, &request, &name, &description)
            .await;
        // This run's own, from a retry the SDK made: replaced.
        if matches!(&created, Err(e) if e.code() == Some("AlreadyExistsException")) {
            self.session
                .delete_change_set(self.region, &stack, &name)
                .await
                .map_err(|e| self.cloud("deleting the old change set of", action, e))?;
            created = self
                .session
                .create_change_set(self.region, &request, &name, &description)
                .await;
        }
        match created {
            Ok(()) => {}
            Err(e) if no_changes(e.message()) => {
                return self
                    .finish(Action::Update, Status::Unchanged, &before, Vec::new())
                    .map(Updated::Done);
            }
            // CloudFormation's own check: the stack is gone or busy now.
            Err(e)
                if confirmed
                    && e.code() == Some("ValidationError")
                    && (e.message().contains("does not exist") || e.message().contains("can not be updated")) =>
            {
                let what = format!("the stack changed since the plan ({})", e.message());
                return Ok(Updated::Done(self.changed_since_plan(Action::Update, what)));
            }
            Err(e) => return Err(self.cloud("CreateChangeSet for", action, e)),
        }
        let info = loop {
            let info = self
                .session
                .describe_change_set(self.region, &stack, &name)
                .await
                .map_err(|e| self.cloud("DescribeChangeSet for", action, e))?;
            if !matches!(info.status.as_str(), "CREATE_PENDING" | "CREATE_IN_PROGRESS") {
                break info;
            }
            self.sleep(action, "the change set").await?;
        };
        if info.status != "CREATE_COMPLETE" {
            let reason = info.status_reason.unwrap_or_default();
            // Best effort: a failed change set is useless either way.
            let _ = self.session.delete_change_set(self.region, &stack, &name).await;
            if no_changes(&reason) {
                return self
                    .finish(Action::Update, Status::Unchanged, &before, Vec::new())
                    .map(Updated::Done);
            }
            return Err(self.fail(
                Some(before),
                action,
                format!("change set {name} {}: {reason}", info.status),
            ));
        }
        // Executed even when it lists no resource change: it still carries
        // the new template and tags (and the fingerprint), so the next run
        // is a no-op instead of the same update again.
        self.session
            .execute_change_set(self.region, &stack, &name, &self.token("update"))
            .await
            .map_err(|e| self.cloud("ExecuteChangeSet for", action, e))?;
        let observed = self.settle(action).await?;
        match status_of(&observed) {
            "UPDATE_COMPLETE" => self
                .finish(Action::Update, Status::Updated, &observed, info.changes)
                .map(Updated::Done),
            other => {
                let why = self.reasons().await;
                Err(self.fail(Some(observed.clone()), action, format!("update ended in {other}{why}")))
            }
        }
    }

    /// A successful outcome, provided the stack has the output with the
    /// role ARN.
    fn finish(
        &self,
        action: Action,
        status: Status,
        observed: &Observed,
        changes: Vec<ResourceChange>,
    ) -> Result<Outcome, Failure> {
        let mut o = outcome(
            self.target,
            self.region,
            Some(action),
            status,
            Some(observed),
            None,
            self.desired,
        );
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
    pub(crate) async fn settle(&self, action: Option<Action>) -> Result<Observed, Failure> {
        loop {
            let observed = self.describe(action).await?;
            match &observed {
                Observed::Present(s) if planner::decide::in_progress(&s.status) => {}
                _ => return Ok(observed),
            }
            self.sleep(
                action,
                &format!("stack {} ({})", self.desired.stack_name, status_of(&observed)),
            )
            .await?;
        }
    }

    async fn sleep(&self, action: Option<Action>, what: &str) -> Result<(), Failure> {
        let now = Instant::now();
        if now >= self.deadline {
            let message = format!(
                "timed out after {}s waiting for {what}; CloudFormation goes on with it: run apply again to pick it up, or raise --max-wait",
                self.options.max_wait.as_secs()
            );
            return Err(self.fail(None, action, message));
        }
        if self
            .interrupt
            .sleep(self.options.poll_interval.min(self.deadline - now))
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

/// CloudFormation's ways of saying "nothing to do".
fn no_changes(message: &str) -> bool {
    message.contains("No updates are to be performed") || message.contains("didn't contain changes")
}

pub(crate) fn status_of(observed: &Observed) -> &str {
    match observed {
        Observed::Present(s) => &s.status,
        Observed::Absent => "gone",
    }
}

/// The same outcome in every region of an account that was not reached.
pub(crate) fn every_region(target: &Target, status: Status, error: &str, desired: &Desired) -> Vec<Outcome> {
    target
        .regions
        .iter()
        .map(|r| outcome(target, r, None, status, None, Some(error.to_owned()), desired))
        .collect()
}

pub(crate) fn outcome(
    target: &Target,
    region: &str,
    action: Option<Action>,
    status: Status,
    observed: Option<&Observed>,
    error: Option<String>,
    desired: &Desired,
) -> Outcome {
    let stack = match observed {
        Some(Observed::Present(s)) => Some(s),
        _ => None,
    };
    Outcome {
        account_id: target.account_id.clone(),
        account_name: target.account_name.clone(),
        region: region.to_owned(),
        action,
        status,
        stack_id: stack.map(|s| s.stack_id.clone()).filter(|s| !s.is_empty()),
        outputs: stack.map(|s| s.outputs.clone()).unwrap_or_default(),
        role_arn: stack.and_then(|s| s.outputs.get(&desired.output_key).cloned()),
        fingerprint: stack.and_then(|s| s.tags.get(model::TAG_FINGERPRINT).cloned()),
        changes: Vec::new(),
        error,
    }
}
