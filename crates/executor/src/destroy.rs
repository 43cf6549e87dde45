//! The destroy pipeline: per account (the shared fan-out), per region
//! observe → decide (`planner::decide::decide_destroy`: only rolecall's own
//! stacks) → DeleteStack → wait until it is gone.

use model::{Action, Desired, EventSink, Observed, Outcome, Stage, Status, Target};

use crate::cloud::{Cloud, Stacks};
use crate::observe::ObservedMap;
use crate::records::{entry, status_of};
use crate::settings::Settings;
use crate::stacks::{ApplyOptions, Failure, Stack, StackWork, run_stacks};

/// Deletes rolecall's stack in every target account/region. With
/// `planned`, acts on what the confirmed preview showed: a stack that is
/// not the one previewed is left alone (`changed-since-plan`).
pub async fn destroy<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    options: &ApplyOptions,
    catalog: &[Desired],
    targets: &[Target],
    planned: Option<&ObservedMap>,
    events: &dyn EventSink,
) -> Vec<Outcome>
where
    C::Session: Stacks,
{
    run_stacks(&Destroy, cloud, settings, options, catalog, targets, planned, events).await
}

struct Destroy;

impl<S: Stacks> StackWork<S> for Destroy {
    const VERB: &'static str = "destroy";

    /// Deletes one stack. `planned`: the stack as the confirmed preview
    /// showed it, if there was one.
    async fn stack(&self, run: &Stack<'_, S>, planned: Option<Observed>) -> Result<Outcome, Failure> {
        tear_down(run, planned).await
    }
}

async fn tear_down<S: Stacks>(run: &Stack<'_, S>, planned: Option<Observed>) -> Result<Outcome, Failure> {
    let stack_name = &run.desired.stack_name;
    let finish = |action, status, observed: Option<&Observed>, error: Option<String>| {
        run.outcome(Some(action), status, observed, error)
    };
    let confirmed = planned.is_some();
    let mut observed = match planned {
        Some(observed) => observed,
        None => {
            run.stage(Stage::Observing);
            run.describe(None).await?
        }
    };
    loop {
        let decision = planner::decide::decide_destroy(stack_name, &observed);
        let entry = entry(run.target, &run.desired.role, run.region, decision.clone(), &observed);
        crate::records::planned(run.events, entry);
        match decision.action {
            Action::NoOp => return Ok(finish(Action::NoOp, Status::Unchanged, None, None)),
            Action::Blocked => {
                return Ok(finish(
                    Action::Blocked,
                    Status::Blocked,
                    Some(&observed),
                    Some(decision.reason),
                ));
            }
            Action::Wait => {
                run.stage(Stage::Waiting);
                observed = run.settle(Some(Action::Wait)).await?;
            }
            _ => break,
        }
    }
    let Observed::Present(stack) = &observed else {
        return Ok(finish(Action::NoOp, Status::Unchanged, None, None));
    };
    if run.settings.interrupt.is_set() {
        return Ok(run.interrupted(Action::Delete, &observed));
    }
    run.stage(Stage::Deleting);
    // By stack id: a stack that was deleted and created again since it was
    // observed is another stack, and this delete leaves it alone.
    let id = if stack.stack_id.is_empty() {
        stack_name
    } else {
        &stack.stack_id
    };
    run.session
        .delete_stack(run.region, id, &run.token("delete"))
        .await
        .map_err(|e| {
            run.fail(
                Some(observed.clone()),
                Some(Action::Delete),
                format!("DeleteStack {stack_name} failed: {e}"),
            )
        })?;
    let after = run.settle(Some(Action::Delete)).await?;
    match &after {
        Observed::Absent => Ok(finish(Action::Delete, Status::Deleted, None, None)),
        Observed::Present(now) if now.stack_id != stack.stack_id && confirmed => Ok(finish(
            Action::Delete,
            Status::ChangedSincePlan,
            Some(&after),
            Some(format!(
                "the previewed stack is gone, but another stack {stack_name} ({}) is there now; it was left alone",
                now.status
            )),
        )),
        Observed::Present(_) => {
            let why = run.reasons().await;
            Err(run.fail(
                Some(after.clone()),
                Some(Action::Delete),
                format!(
                    "delete ended in {}{why}; fix it by hand (retain what cannot be deleted), then run destroy again",
                    status_of(&after)
                ),
            ))
        }
    }
}
