//! The apply pipeline. Per account, with no barrier between accounts:
//! assume the bootstrap role → per region (concurrently) observe → decide
//! (the planner) → act → wait → read outputs. CloudFormation is the state:
//! a run killed half-way and started again observes where things stand and
//! goes on from there. The shared per-stack pipeline is `stacks`; the
//! change-set lifecycle of an update is `changesets`.

use model::{Action, Desired, EventSink, Observed, Outcome, Stage, Status, Target};

use crate::changesets::Updated;
use crate::cloud::{ChangeSets, Cloud, ErrorKind, Stacks};
use crate::observe::ObservedMap;
use crate::records::{plan_entry, status_of};
use crate::settings::Settings;
pub use crate::stacks::ApplyOptions;
use crate::stacks::{Failure, Stack, StackWork, run_stacks};

/// Applies `desired` to every target. Returns one outcome per
/// account/region, sorted by account then region. With `planned` (a
/// confirmed plan), acts on exactly what was observed then.
pub async fn apply<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    options: &ApplyOptions,
    catalog: &[Desired],
    targets: &[Target],
    planned: Option<&ObservedMap>,
    events: &dyn EventSink,
) -> Vec<Outcome>
where
    C::Session: Stacks + ChangeSets,
{
    run_stacks(&Apply, cloud, settings, options, catalog, targets, planned, events).await
}

struct Apply;

impl<S: Stacks + ChangeSets> StackWork<S> for Apply {
    const VERB: &'static str = "apply";

    async fn stack(&self, run: &Stack<'_, S>, planned: Option<Observed>) -> Result<Outcome, Failure> {
        let unregistered = run.options.registered.as_ref().is_some_and(|r| {
            !r.contains(&(
                run.target.account_id.clone(),
                run.desired.role.clone(),
                run.region.to_owned(),
            ))
        });
        if planned.is_none() && unregistered {
            run.create_first().await
        } else {
            run.go(planned).await
        }
    }
}

enum Created {
    Done(Box<Outcome>),
    AlreadyExists,
}

impl<S: Stacks + ChangeSets> Stack<'_, S> {
    async fn create_first(&self) -> Result<Outcome, Failure> {
        let mut entry = plan_entry(self.target, self.region, self.desired, &Observed::Absent);
        entry.reason =
            "not in the registry: CreateStack without reading first (it refuses an existing stack)".to_owned();
        crate::records::planned(self.events, entry);
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
            crate::records::planned(self.events, entry.clone());
            if self.settings.interrupt.is_set() && matches!(action, Action::Create | Action::Update | Action::Recover) {
                return Ok(self.interrupted(action, &observed));
            }
            match action {
                Action::NoOp => return self.finish(Action::NoOp, Status::Unchanged, &observed, Vec::new()),
                Action::Blocked => {
                    return Ok(self.outcome(Some(action), Status::Blocked, Some(&observed), Some(entry.reason)));
                }
                Action::Wait => {
                    self.stage(Stage::Waiting);
                    observed = self.settle(Some(action)).await?;
                }
                Action::Delete | Action::Orphaned | Action::RevertDrift => {
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
                Action::Update => match self.update(observed, confirmed, false).await? {
                    Updated::Done(o) => return Ok(*o),
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
    async fn create(&self, confirmed: bool) -> Result<Created, Failure> {
        let action = Some(Action::Create);
        self.stage(Stage::Creating);
        match self
            .session
            .create_stack(self.region, &self.request(), &self.token("create"))
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::AlreadyExists && confirmed => {
                let what = format!(
                    "the plan showed no stack {}, but one exists now",
                    self.desired.stack_name
                );
                return Ok(Created::Done(Box::new(self.changed_since_plan(Action::Create, what))));
            }
            Err(e) if e.kind == ErrorKind::AlreadyExists => return Ok(Created::AlreadyExists),
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
}
