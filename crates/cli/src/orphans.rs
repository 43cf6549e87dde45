//! What the previous ARN registry knows that the inventory no longer says:
//! account/regions whose rolecall stack may still exist (orphans), read
//! through the same observe pipeline, never deleted here.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use executor::aws::SdkCloud;
use model::{AccountId, Action, Observed, Outcome, PlanEntry, Status, Target, TargetSource};
use reporter::registry::{self, Registry};

use crate::files;

/// The registry at `path`, or `None` when there is none yet. A file that
/// cannot be read stops the run before anything changes.
pub(crate) fn previous_registry(path: &Path) -> anyhow::Result<Option<Registry>> {
    let text = files::read_or_empty(path).with_context(|| format!("cannot read the registry {}", path.display()))?;
    if text.is_empty() {
        return Ok(None);
    }
    registry::parse(&text).map(Some).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}\n  help: fix or move the file, or pass another --registry",
            path.display()
        )
    })
}

/// Registry entries whose account/region is no longer a target, as
/// targets (one per account, with those regions).
pub(crate) fn targets(previous: Option<&Registry>, current: &[Target]) -> Vec<Target> {
    let mut by_account: BTreeMap<AccountId, Target> = BTreeMap::new();
    for e in previous.map(|r| r.entries.as_slice()).unwrap_or_default() {
        let Some(id) = AccountId::parse(&e.account_id) else {
            continue;
        };
        let still = current
            .iter()
            .any(|t| t.account_id == id && t.regions.contains(&e.region));
        if still {
            continue;
        }
        by_account
            .entry(id.clone())
            .or_insert_with(|| Target {
                account_id: id,
                account_name: e.account_name.clone(),
                regions: Vec::new(),
                source: TargetSource::Inventory,
                parent: None,
            })
            .regions
            .push(e.region.clone());
    }
    by_account.into_values().collect()
}

/// Orphans as plan rows and as outcomes for the registry. A stack that is
/// gone (or not rolecall's) drops out; an account that cannot be reached
/// any more stays orphaned with what the registry last knew.
pub(crate) async fn observe(
    cloud: &SdkCloud,
    settings: &executor::Settings,
    desired: &model::Desired,
    orphans: &[Target],
    previous: Option<&Registry>,
) -> (Vec<PlanEntry>, Vec<Outcome>) {
    let stack_name = desired.stack_name.as_str();
    if orphans.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let decide = |o: &Observed| planner::decide::decide_orphan(stack_name, o);
    let progress = reporter::Progress::stderr("checking orphans", false);
    let (mut plan, observed) = executor::observe(cloud, settings, stack_name, orphans, &progress, &decide).await;
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
    let last = |id: &AccountId, region: &str| {
        previous.and_then(|r| {
            r.entries
                .iter()
                .find(|e| e.account_id == id.as_str() && e.region == region)
        })
    };
    let outcomes = plan
        .entries
        .iter()
        .map(|p| {
            let stack = match observed.get(&(p.account_id.clone(), p.region.clone())) {
                Some(Observed::Present(s)) => Some(s),
                _ => None,
            };
            let old = last(&p.account_id, &p.region);
            let outputs = stack
                .map(|s| s.outputs.clone())
                .or_else(|| old.map(|e| e.outputs.clone()))
                .unwrap_or_default();
            Outcome {
                account_id: p.account_id.clone(),
                account_name: p.account_name.clone(),
                region: p.region.clone(),
                action: Some(Action::Orphaned),
                status: Status::Orphaned,
                stack_id: p.stack_id.clone().or_else(|| old.and_then(|e| e.stack_id.clone())),
                role_arn: stack
                    .and_then(|s| s.outputs.get(&desired.output_key).cloned())
                    .or_else(|| old.and_then(|e| e.role_arn.clone())),
                outputs,
                fingerprint: stack
                    .and_then(|s| s.tags.get(model::TAG_FINGERPRINT).cloned())
                    .or_else(|| old.and_then(|e| e.fingerprint.clone())),
                changes: Vec::new(),
                error: None,
            }
        })
        .collect();
    (plan.entries, outcomes)
}
