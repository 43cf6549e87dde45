//! What the pipelines report, built in one place: plan rows, outcomes
//! (one per account/region) and account errors.

use model::{AccountError, Action, Decision, Desired, Event, EventSink, Observed, Outcome, PlanEntry, Status, Target};

pub(crate) fn plan_entry(target: &Target, region: &str, desired: &Desired, observed: &Observed) -> PlanEntry {
    entry(
        target,
        &desired.role,
        region,
        planner::decide(desired, observed),
        observed,
    )
}

/// The plan row of one stack: the role's (`role`, its key) in `region`.
pub(crate) fn entry(target: &Target, role: &str, region: &str, decision: Decision, observed: &Observed) -> PlanEntry {
    let stack = match observed {
        Observed::Present(s) => Some(s),
        Observed::Absent => None,
    };
    PlanEntry {
        account_id: target.account_id.clone(),
        account_name: target.account_name.clone(),
        role: role.to_owned(),
        region: region.to_owned(),
        action: decision.action,
        reason: decision.reason,
        differences: decision.differences,
        stack_status: stack.map(|s| s.status.clone()),
        stack_id: stack.map(|s| s.stack_id.clone()),
    }
}

pub(crate) fn account_error(target: &Target, region: Option<&str>, message: String) -> AccountError {
    AccountError {
        account_id: target.account_id.clone(),
        account_name: target.account_name.clone(),
        region: region.map(str::to_owned),
        message,
    }
}

pub(crate) fn status_of(observed: &Observed) -> &str {
    match observed {
        Observed::Present(s) => &s.status,
        Observed::Absent => "gone",
    }
}

/// The same outcome for every stack of an account that was not reached.
pub(crate) fn every_stack(target: &Target, status: Status, error: &str, catalog: &[Desired]) -> Vec<Outcome> {
    stacks(target, catalog)
        .map(|(desired, region)| outcome(target, region, None, status, None, Some(error.to_owned()), desired))
        .collect()
}

/// The stacks of an account: each of its roles (as the catalog describes
/// it) in each of that role's regions. A role the catalog lacks has none.
pub(crate) fn stacks<'a>(target: &'a Target, catalog: &'a [Desired]) -> impl Iterator<Item = (&'a Desired, &'a str)> {
    target
        .stacks()
        .filter_map(move |(role, region)| Some((catalog.iter().find(|d| d.role == role)?, region)))
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
    let role_arn = stack.and_then(|s| s.outputs.get(&desired.output_key).cloned());
    Outcome {
        account_id: target.account_id.clone(),
        account_name: target.account_name.clone(),
        role: desired.role.clone(),
        role_name: planner::registry::role_name(&desired.role_name, region, role_arn.as_deref()),
        stack_name: desired.stack_name.clone(),
        region: region.to_owned(),
        action,
        status,
        stack_id: stack.map(|s| s.stack_id.clone()).filter(|s| !s.is_empty()),
        outputs: stack.map(|s| s.outputs.clone()).unwrap_or_default(),
        role_arn,
        fingerprint: stack.and_then(|s| s.tags.get(model::TAG_FINGERPRINT).cloned()),
        changes: Vec::new(),
        error,
    }
}

/// Sends `Planned` for a decision, and logs it at info (`-v`): one line per
/// stack with what was decided and why.
pub(crate) fn planned(events: &dyn EventSink, entry: PlanEntry) {
    tracing::info!(
        account = %entry.account_id,
        name = %entry.account_name,
        role = %entry.role,
        region = %entry.region,
        "{}: {}",
        entry.action,
        entry.reason
    );
    events.event(Event::Planned { entry });
}
