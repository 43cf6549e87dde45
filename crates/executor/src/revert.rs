//! `apply --revert-drift`: every stack the drift check found DRIFTED is put
//! back as the inventory has it. First CloudFormation's own way, a change
//! set with DeploymentMode REVERT_DRIFT (the stack's template, which is
//! the inventory's); then the live role is read again, and what still
//! differs (an endpoint that ignores the mode, or drift CloudFormation
//! cannot see) is put back through IAM on rolecall's own role only (the
//! role the stack's output names), with the calls `planner::drift::repairs`
//! chooses. Then the role is read once more: it must match.

use model::{Action, Observed, Outcome, ResourceChange, Stage, Status, Target};

use crate::changesets::Updated;
use crate::cloud::{ChangeSets, Cloud, Roles, Stacks};
use crate::drift::{Expect, role_name};
use crate::settings::Settings;
use crate::stacks::{ApplyOptions, Failure, Stack, StackWork, run_stacks};

/// Reverts the drift of every stack of `targets` (narrowed by the caller to
/// the DRIFTED ones). One outcome per stack: `updated` with the IAM calls
/// made as its changes, or `failed` with what still differs.
pub async fn revert_drift<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    options: &ApplyOptions,
    catalog: &[model::Desired],
    targets: &[Target],
    expected: Expect<'_>,
    events: &dyn model::EventSink,
) -> Vec<Outcome>
where
    C::Session: Stacks + ChangeSets + Roles,
{
    run_stacks(
        &Revert { expected },
        cloud,
        settings,
        options,
        catalog,
        targets,
        None,
        events,
    )
    .await
}

struct Revert<'a> {
    expected: Expect<'a>,
}

impl<S: Stacks + ChangeSets + Roles> StackWork<S> for Revert<'_> {
    const VERB: &'static str = "apply --revert-drift";

    async fn stack(&self, run: &Stack<'_, S>, _planned: Option<Observed>) -> Result<Outcome, Failure> {
        let action = Some(Action::RevertDrift);
        run.stage(Stage::Observing);
        let mut observed = run.describe(action).await?;
        // The plan showed a current, healthy stack; anything else now is
        // for a plain apply, not for a revert.
        let stack = match planner::drift::stack_state(run.desired, &observed) {
            Ok(stack) => stack.clone(),
            Err((kind, why)) => {
                let what = format!("the stack is {kind} now ({why}); run `rolecall apply`, then check drift again");
                return Ok(run.changed_since_plan(Action::RevertDrift, what));
            }
        };
        if run.settings.interrupt.is_set() {
            return Ok(run.interrupted(Action::RevertDrift, &observed));
        }
        let want = (self.expected)(run.desired, run.region);
        let Some(role) = role_name(run.desired, &stack, want.as_ref()) else {
            let message = format!(
                "stack {} has no output {}",
                run.desired.stack_name, run.desired.output_key
            );
            return Err(run.fail(Some(observed), action, message));
        };
        let mut changes = Vec::new();
        // CloudFormation's own revert, through the change-set lifecycle
        // that waits for other runs and cleans up after crashed ones.
        loop {
            match run.update(observed.clone(), false, true).await? {
                Updated::Done(outcome) => {
                    changes.extend(outcome.changes);
                    break;
                }
                Updated::Busy(what) => {
                    run.stage(Stage::Waiting);
                    run.sleep(action, &format!("another rolecall run, {what}")).await?;
                    observed = run.describe(action).await?;
                }
            }
        }
        // An own template: rolecall cannot know its role, so what
        // CloudFormation did is all there is to do.
        let Some(want) = want else {
            let after = run.describe(action).await?;
            return run.finish(Action::RevertDrift, Status::Updated, &after, changes);
        };
        let read = |role: String| async move {
            run.session
                .get_live_role(&role)
                .await
                .map_err(|e| run.cloud(&format!("reading role {role} of"), action, e))
        };
        let Some(live) = read(role.clone()).await? else {
            let message = format!(
                "role {role} is missing (deleted or renamed outside CloudFormation); IAM cannot bring it back: delete the stack with `rolecall destroy --accounts {}` and apply again",
                run.target.account_id
            );
            return Err(run.fail(Some(observed), action, message));
        };
        let repairs = planner::drift::repairs(&want, &live);
        for repair in &repairs {
            tracing::info!(account = %run.target.account_id, region = run.region, role = %role, "reverting drift: {repair}");
            run.session
                .repair_role(&role, repair)
                .await
                .map_err(|e| run.cloud(&format!("{repair} on role {role} of"), action, e))?;
            changes.push(ResourceChange {
                action: repair.to_string(),
                // The built-in template's role (only its roles are
                // repaired through IAM).
                logical_id: "Role".to_owned(),
                resource_type: "AWS::IAM::Role".to_owned(),
                replacement: None,
            });
        }
        if !repairs.is_empty() {
            let live = read(role.clone()).await?;
            let left = planner::drift::compare_role(&want, live.as_ref());
            if !left.is_empty() {
                let paths: Vec<&str> = left.iter().map(|d| d.path.as_str()).collect();
                let message = format!(
                    "role {role} still differs from the inventory after the revert ({}); check `rolecall drift` and fix it by hand",
                    paths.join(", ")
                );
                return Err(run.fail(Some(observed), action, message));
            }
        }
        let after = run.describe(action).await?;
        run.finish(Action::RevertDrift, Status::Updated, &after, changes)
    }
}
