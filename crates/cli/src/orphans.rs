//! What the previous ARN registry knows that the inventory no longer says:
//! account/regions whose rolecall stack may still exist (orphans), read
//! through the same observe pipeline, never deleted here.

use std::collections::BTreeMap;

use executor::aws::SdkCloud;
use model::registry::Registry;
use model::{AccountId, Action, Desired, Observed, Outcome, PlanEntry, Status, Target};

/// The catalog, with a stand-in for every role of the previous registry
/// that left it: its stacks are orphans (plan and apply report them,
/// `destroy --orphans` deletes them), found by the stack name and output
/// the registry recorded. A stand-in deploys nothing.
pub(crate) fn with_stand_ins(previous: Option<&Registry>, catalog: &[Desired]) -> Vec<Desired> {
    let mut out = catalog.to_vec();
    for e in previous.iter().flat_map(|r| &r.entries) {
        if out.iter().any(|d| d.role == e.role) {
            continue;
        }
        let output_key = e
            .outputs
            .iter()
            .find(|(_, v)| Some(v.as_str()) == e.role_arn.as_deref())
            .map_or_else(|| planner::inventory::DEFAULT_OUTPUT_KEY.to_owned(), |(k, _)| k.clone());
        out.push(Desired {
            role: e.role.clone(),
            role_name: e.role_name.clone(),
            stack_name: e.stack_name.clone(),
            template_body: String::new(),
            parameters: Default::default(),
            tags: Default::default(),
            fingerprint: String::new(),
            output_key,
            auto_expand: false,
        });
    }
    out
}

/// Registry entries of the catalog's roles whose stack is no longer one of
/// the targets' (the account, or the role's region there, left), as
/// targets: one per account, with those roles and regions.
pub(crate) fn targets(previous: Option<&Registry>, catalog: &[Desired], current: &[Target]) -> Vec<Target> {
    let mut by_account: BTreeMap<AccountId, Target> = BTreeMap::new();
    let known = |role: &str| catalog.iter().any(|d| d.role == role);
    // The targets' stacks, once: entries are looked up, not rescanned.
    let current: std::collections::BTreeSet<(&AccountId, &str, &str)> = current
        .iter()
        .flat_map(|t| t.stacks().map(move |(role, region)| (&t.account_id, role, region)))
        .collect();
    for e in previous.iter().flat_map(|r| &r.entries).filter(|e| known(&e.role)) {
        if current.contains(&(&e.account_id, e.role.as_str(), e.region.as_str())) {
            continue;
        }
        by_account
            .entry(e.account_id.clone())
            .or_insert_with(|| Target::known(&e.account_id, &e.account_name))
            .add_stack(&e.role, &e.region);
    }
    by_account.into_values().collect()
}

/// Orphans as plan rows and as outcomes for the registry. A stack that is
/// gone (or not rolecall's) drops out; an account that cannot be reached
/// any more stays orphaned, with what could be read (nothing): the
/// registry's next state keeps what it last knew (`planner::registry`).
pub(crate) async fn observe(
    cloud: &SdkCloud,
    settings: &executor::Settings,
    catalog: &[Desired],
    orphans: &[Target],
) -> (Vec<PlanEntry>, Vec<Outcome>) {
    if orphans.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let decide = |d: &Desired, o: &Observed| planner::decide::decide_orphan(&d.stack_name, o);
    let progress = reporter::Progress::stderr("checking orphans", false);
    let (mut plan, observed) = executor::observe(cloud, settings, catalog, orphans, &progress, &decide).await;
    progress.finish();
    for error in plan.errors.drain(..) {
        // The orphan stacks the error kept from being checked: the
        // account's (all of them), or those of its region.
        let unchecked: Vec<(String, String)> = orphans
            .iter()
            .filter(|t| t.account_id == error.account_id)
            .flat_map(|t| t.stacks().map(|(role, region)| (role.to_owned(), region.to_owned())))
            .filter(|(_, region)| error.region.as_deref().is_none_or(|r| r == region))
            .collect();
        for (role, region) in unchecked {
            plan.entries.push(PlanEntry {
                account_id: error.account_id.clone(),
                account_name: error.account_name.clone(),
                role,
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
            let desired = catalog
                .iter()
                .find(|d| d.role == p.role)
                .expect("orphan rows are of the catalog's roles");
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
