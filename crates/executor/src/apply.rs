//! The apply pipeline. Per account, with no barrier between accounts:
//! assume the bootstrap role → per region (concurrently) observe → decide
//! (the planner) → act → wait → read outputs. CloudFormation is the state:
//! a run killed half-way and started again observes where things stand and
//! goes on from there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use model::{Action, Desired, Event, EventSink, Observed, Outcome, ResourceChange, Stage, Status, Target};
use tokio::time::Instant;

use crate::cloud::{AccountSession, Cloud, CloudError, StackRequest};
use crate::observe::{Settings, assume, plan_entry};

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
}

/// Applies `desired` to every target. Returns one outcome per
/// account/region, sorted by account then region.
pub async fn apply<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    options: &ApplyOptions,
    desired: &Desired,
    targets: &[Target],
    events: &dyn EventSink,
) -> Vec<Outcome> {
    events.event(Event::Started {
        accounts: targets.len(),
    });
    let failed_accounts = AtomicUsize::new(0);
    let failed = &failed_accounts;
    let results: Vec<Vec<Outcome>> = stream::iter(targets)
        .map(|target| async move {
            if failed.load(Ordering::SeqCst) > options.failure_tolerance {
                let reason = format!(
                    "not attempted: more than {} account(s) failed (failure tolerance)",
                    options.failure_tolerance
                );
                let outcomes = every_region(target, Status::NotAttempted, &reason, desired);
                for o in &outcomes {
                    events.event(Event::Finished { outcome: o.clone() });
                }
                return outcomes;
            }
            events.event(Event::AccountStarted {
                account_id: target.account_id.clone(),
            });
            let outcomes = match assume(cloud, settings, target).await {
                Ok(session) => {
                    futures::future::join_all(
                        target
                            .regions
                            .iter()
                            .map(|region| converge(&session, options, desired, target, region, events)),
                    )
                    .await
                }
                Err(error) => {
                    events.event(Event::AccountFailed { error: error.clone() });
                    every_region(target, Status::Failed, &error.message, desired)
                }
            };
            for o in &outcomes {
                events.event(Event::Finished { outcome: o.clone() });
            }
            if outcomes.iter().any(|o| o.status == Status::Failed) {
                failed.fetch_add(1, Ordering::SeqCst);
            }
            events.event(Event::AccountFinished {
                account_id: target.account_id.clone(),
            });
            outcomes
        })
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    let mut outcomes: Vec<Outcome> = results.into_iter().flatten().collect();
    outcomes.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    outcomes
}

/// Drives one stack to the desired state.
async fn converge<S: AccountSession>(
    session: &S,
    options: &ApplyOptions,
    desired: &Desired,
    target: &Target,
    region: &str,
    events: &dyn EventSink,
) -> Outcome {
    let run = Converge {
        session,
        options,
        desired,
        target,
        region,
        events,
        deadline: Instant::now() + options.max_wait,
    };
    match run.go().await {
        Ok(o) => o,
        Err(Failure {
            observed,
            action,
            message,
        }) => outcome(
            target,
            region,
            action,
            Status::Failed,
            observed.as_deref(),
            Some(message),
            desired,
        ),
    }
}

struct Failure {
    /// Boxed: a stack with its maps is large, and failures are rare.
    observed: Option<Box<Observed>>,
    action: Option<Action>,
    message: String,
}

struct Converge<'a, S> {
    session: &'a S,
    options: &'a ApplyOptions,
    desired: &'a Desired,
    target: &'a Target,
    region: &'a str,
    events: &'a dyn EventSink,
    /// One deadline per stack: waiting for another operation, deleting a
    /// failed stack and creating it again all share it.
    deadline: Instant,
}

impl<S: AccountSession> Converge<'_, S> {
    fn stage(&self, stage: Stage) {
        self.events.event(Event::Stage {
            account_id: self.target.account_id.clone(),
            region: self.region.to_owned(),
            stage,
        });
    }

    fn fail(&self, observed: Option<Observed>, action: Option<Action>, message: String) -> Failure {
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

    async fn describe(&self, action: Option<Action>) -> Result<Observed, Failure> {
        self.session
            .describe_stack(self.region, &self.desired.stack_name)
            .await
            .map_err(|e| self.cloud("reading stack", action, e))
    }

    async fn go(&self) -> Result<Outcome, Failure> {
        self.stage(Stage::Observing);
        let mut observed = self.describe(None).await?;
        let mut recovered = false;
        loop {
            let entry = plan_entry(self.target, self.region, self.desired, &observed);
            let action = entry.action;
            self.events.event(Event::Planned { entry: entry.clone() });
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
                Action::Create => return self.create().await,
                Action::Update => return self.update(observed).await,
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
                    self.session
                        .delete_stack(self.region, &self.desired.stack_name)
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

    async fn create(&self) -> Result<Outcome, Failure> {
        let action = Some(Action::Create);
        self.stage(Stage::Creating);
        self.session
            .create_stack(self.region, &self.request())
            .await
            .map_err(|e| self.cloud("CreateStack", action, e))?;
        let observed = self.settle(action).await?;
        match status_of(&observed) {
            "CREATE_COMPLETE" => self.finish(Action::Create, Status::Created, &observed, Vec::new()),
            other => {
                let why = self.reasons().await;
                Err(self.fail(Some(observed.clone()), action, format!("create ended in {other}{why}")))
            }
        }
    }

    async fn update(&self, before: Observed) -> Result<Outcome, Failure> {
        let action = Some(Action::Update);
        self.stage(Stage::Updating);
        let stack = self.desired.stack_name.clone();
        // Named after what it deploys, so a run killed after creating it
        // finds it again (and replaces it) instead of piling up change sets.
        let name = format!(
            "rolecall-{}",
            &self.desired.fingerprint[..16.min(self.desired.fingerprint.len())]
        );
        let request = self.request();
        let mut created = self.session.create_change_set(self.region, &request, &name).await;
        if matches!(&created, Err(e) if e.code() == Some("AlreadyExistsException")) {
            self.session
                .delete_change_set(self.region, &stack, &name)
                .await
                .map_err(|e| self.cloud("deleting the old change set of", action, e))?;
            created = self.session.create_change_set(self.region, &request, &name).await;
        }
        match created {
            Ok(()) => {}
            Err(e) if no_changes(e.message()) => {
                return self.finish(Action::Update, Status::Unchanged, &before, Vec::new());
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
                return self.finish(Action::Update, Status::Unchanged, &before, Vec::new());
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
            .execute_change_set(self.region, &stack, &name)
            .await
            .map_err(|e| self.cloud("ExecuteChangeSet for", action, e))?;
        let observed = self.settle(action).await?;
        match status_of(&observed) {
            "UPDATE_COMPLETE" => self.finish(Action::Update, Status::Updated, &observed, info.changes),
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
    async fn settle(&self, action: Option<Action>) -> Result<Observed, Failure> {
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
        tokio::time::sleep(self.options.poll_interval.min(self.deadline - now)).await;
        Ok(())
    }

    /// `: reason; reason` from the stack's failed events, or nothing.
    async fn reasons(&self) -> String {
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

fn status_of(observed: &Observed) -> &str {
    match observed {
        Observed::Present(s) => &s.status,
        Observed::Absent => "gone",
    }
}

/// The same outcome in every region of an account that was not reached.
fn every_region(target: &Target, status: Status, error: &str, desired: &Desired) -> Vec<Outcome> {
    target
        .regions
        .iter()
        .map(|r| outcome(target, r, None, status, None, Some(error.to_owned()), desired))
        .collect()
}

fn outcome(
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
