//! `deploy.via: stacksets` in the commands: the same inventory, plan,
//! confirmation, summary, registry and profiles as the bootstrap-role path;
//! the fan-out is AWS's.

use executor::aws::SdkCloud;
use executor::stacksets::{self, StackSetRun};
use model::{Desired, Inventory, Outcome, Plan, Target};

use crate::options::confirm;

/// One stack set per role of `roles` (the catalog, narrowed by --roles;
/// `left`: the stand-ins of roles that left it), with its targets and
/// operation preferences.
pub(crate) fn runs<'a>(
    inv: &'a Inventory,
    roles: &'a [Desired],
    options: &'a executor::ApplyOptions,
    concurrency: Option<u16>,
) -> Vec<StackSetRun<'a>> {
    let spec = inv
        .deploy
        .stackset
        .as_ref()
        .expect("validation sets deploy.stackset with via: stacksets");
    let mut runs: Vec<StackSetRun<'a>> = Vec::new();
    for desired in roles {
        let role = inv.role(&desired.role);
        let name = match role {
            Some(_) => planner::stacksets::set_name(spec, &desired.stack_name),
            None => desired.stack_name.clone(),
        };
        // A stand-in whose stack set is still one of the catalog's (a
        // renamed single role keeps `deploy.stackset.name`) is not an orphan.
        if runs.iter().any(|r| r.spec.name == name) {
            continue;
        }
        let deployment = role.map(|r| planner::stacksets::deployment(inv, r)).unwrap_or_default();
        runs.push(StackSetRun {
            spec: model::StackSetSpec { name, ..spec.clone() },
            desired,
            options,
            prefs: executor::OperationPrefs {
                max_concurrent: concurrency.map_or(inv.deploy.concurrency, usize::from),
                failure_tolerance: options.failure_tolerance,
                region_parallel: spec.region_parallel,
                soft_failure_tolerance: spec.soft_failure_tolerance,
                max_concurrent_percentage: spec.max_concurrent_percentage,
                failure_tolerance_percentage: spec.failure_tolerance_percentage,
            },
            ous: deployment.ous,
            account_filter: deployment.account_filter,
            left: role.is_none(),
        });
    }
    runs
}

pub(crate) async fn plan(cloud: &SdkCloud, runs: &[StackSetRun<'_>], targets: &[Target]) -> anyhow::Result<Plan> {
    Ok(stacksets::plan(cloud, runs, targets).await?)
}

/// Plan, confirm (without --yes), apply, gather outputs. `None`: the user
/// said no.
pub(crate) async fn apply(
    cloud: &SdkCloud,
    settings: &executor::Settings,
    runs: &[StackSetRun<'_>],
    targets: &[Target],
    yes: bool,
    prune: bool,
    all: bool,
) -> anyhow::Result<Option<Vec<Outcome>>> {
    if !yes {
        let plan = plan(cloud, runs, targets).await?;
        reporter::write_plan(&mut std::io::stdout().lock(), &plan, all)?;
        let pruning = prune && plan.count(model::Action::Orphaned) > 0;
        if (plan.has_changes() || pruning) && !confirm("Apply these changes?", "apply").await? {
            return Ok(None);
        }
    }
    let progress = reporter::Progress::stderr("applying", true);
    let outcomes = stacksets::apply(cloud, settings, runs, targets, prune, &progress).await;
    progress.finish();
    Ok(Some(outcomes?))
}
