//! What the previous ARN registry knows that the inventory no longer says:
//! account/regions whose rolecall stack may still exist (orphans), read
//! through the same observe pipeline, never deleted here.

use std::collections::BTreeMap;

use executor::aws::SdkCloud;
use model::registry::Registry;
use model::{AccountId, Action, Observed, Outcome, PlanEntry, Status, Target, TargetSource};

/// Registry entries of `role` whose account/region is no longer a target,
/// as targets (one per account, with those regions).
pub(crate) fn targets(previous: Option<&Registry>, role: &str, current: &[Target]) -> Vec<Target> {
    let mut by_account: BTreeMap<AccountId, Target> = BTreeMap::new();
    for e in previous.iter().flat_map(|r| &r.entries).filter(|e| e.role == role) {
        let id = &e.account_id;
        let still = current
            .iter()
            .any(|t| &t.account_id == id && t.regions.contains(&e.region));
        if still {
            continue;
        }
        by_account
            .entry(id.clone())
            .or_insert_with(|| Target {
                account_id: id.clone(),
                account_name: e.account_name.clone(),
                regions: Vec::new(),
                source: TargetSource::Inventory,
                parent: None,
                roles: Vec::new(),
            })
            .regions
            .push(e.region.clone());
    }
    by_account.into_values().map(|t| t.with_role(role)).collect()
}

/// Orphans as plan rows and as outcomes for the registry. A stack that is
/// gone (or not rolecall's) drops out; an account that cannot be reached
/// any more stays orphaned, with what could be read (nothing): the
/// registry's next state keeps what it last knew (`planner::registry`).
pub(crate) async fn observe(
    cloud: &SdkCloud,
    settings: &executor::Settings,
    desired: &model::Desired,
    orphans: &[Target],
) -> (Vec<PlanEntry>, Vec<Outcome>) {
    if orphans.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let decide = |d: &model::Desired, o: &Observed| planner::decide::decide_orphan(&d.stack_name, o);
    let progress = reporter::Progress::stderr("checking orphans", false);
    let catalog = std::slice::from_ref(desired);
    let (mut plan, observed) = executor::observe(cloud, settings, catalog, orphans, &progress, &decide).await;
    progress.finish();
    for error in plan.errors.drain(..) {
        for region in error.region.clone().map_or_else(
            || {
                orphans
                    .iter()
                    .find(|t| t.account_id == error.account_id)
                    .map(|t| t.regions.clone())
                    .unwrap_or_default()
            },
            |r| vec![r],
        ) {
            plan.entries.push(PlanEntry {
                account_id: error.account_id.clone(),
                account_name: error.account_name.clone(),
                role: desired.role.clone(),
                region,
                action: Action::Orphaned,
                reason: format!(
                    "left the inventory, and its stack could not be checked ({}); it may still exist",
                    error.message
                ),
                differences: Vec::new(),
                stack_status: None,
                stack_id: None,
            });
        }
    }
    plan.sort();
    let outcomes = plan
        .entries
        .iter()
        .map(|p| {
            let stack = match observed.get(&(p.account_id.clone(), p.role.clone(), p.region.clone())) {
                Some(Observed::Present(s)) => Some(s),
                _ => None,
            };
            let role_arn = stack.and_then(|s| s.outputs.get(&desired.output_key).cloned());
            Outcome {
                account_id: p.account_id.clone(),
                account_name: p.account_name.clone(),
                role: p.role.clone(),
                role_name: planner::registry::role_name(&desired.role_name, &p.region, role_arn.as_deref()),
                stack_name: desired.stack_name.clone(),
                region: p.region.clone(),
                action: Some(Action::Orphaned),
                status: Status::Orphaned,
                stack_id: p.stack_id.clone(),
                role_arn,
                outputs: stack.map(|s| s.outputs.clone()).unwrap_or_default(),
                fingerprint: stack.and_then(|s| s.tags.get(model::TAG_FINGERPRINT).cloned()),
                changes: Vec::new(),
                error: None,
            }
        })
        .collect();
    (plan.entries, outcomes)
}
