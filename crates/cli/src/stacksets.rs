//! `deploy.via: stacksets` in the commands: the same inventory, plan,
//! confirmation, summary, registry and profiles as the bootstrap-role path;
//! the fan-out is AWS's.

use executor::aws::SdkCloud;
use executor::stacksets::{self, StackSetRun};
use model::{Desired, Inventory, Outcome, Plan, Target};

use crate::options::confirm;

/// The stack set, its targets and its operation preferences.
pub(crate) fn run<'a>(
    inv: &'a Inventory,
    desired: &'a Desired,
    options: &'a executor::ApplyOptions,
    concurrency: Option<u16>,
) -> StackSetRun<'a> {
    let spec = inv
        .deploy
        .stackset
        .as_ref()
        .expect("validation sets deploy.stackset with via: stacksets");
    let org = inv.organization.as_ref();
    let account_filter = if !inv.accounts.is_empty() {
        Some(("INTERSECTION", inv.accounts.iter().map(|a| a.id.to_string()).collect()))
    } else {
        org.filter(|o| !o.exclude.is_empty())
            .map(|o| ("DIFFERENCE", o.exclude.iter().map(|a| a.to_string()).collect()))
    };
    StackSetRun {
        spec,
        desired,
        options,
        prefs: executor::OperationPrefs {
            max_concurrent: concurrency.map_or(inv.deploy.concurrency, usize::from),
            failure_tolerance: options.failure_tolerance,
            region_parallel: spec.region_parallel,
            soft_failure_tolerance: spec.soft_failure_tolerance,
        },
        ous: org.map(|o| o.ous.clone()).unwrap_or_default(),
        account_filter,
    }
}

pub(crate) async fn plan(cloud: &SdkCloud, run: &StackSetRun<'_>, targets: &[Target]) -> anyhow::Result<Plan> {
    let (plan, _) = stacksets::plan(cloud, run, targets).await?;
    Ok(plan)
}

/// Plan, confirm (without --yes), apply, gather outputs. `None`: the user
/// said no.
pub(crate) async fn apply(
    cloud: &SdkCloud,
    settings: &executor::Settings,
    run: &StackSetRun<'_>,
    targets: &[Target],
    yes: bool,
    prune: bool,
) -> anyhow::Result<Option<Vec<Outcome>>> {
    if !yes {
        let plan = plan(cloud, run, targets).await?;
        reporter::write_plan(&mut std::io::stdout().lock(), &plan)?;
        let pruning = prune && plan.count(model::Action::Orphaned) > 0;
        if (plan.has_changes() || pruning) && !confirm("Apply these changes?", "apply")? {
            return Ok(None);
        }
    }
    let progress = reporter::Progress::stderr("applying", true);
    let outcomes = stacksets::apply(cloud, settings, run, targets, prune, &progress).await;
    progress.finish();
    Ok(Some(outcomes?))
}

/// StackSets deploy one role (one stack set): the inventory's.
pub(crate) fn one_role(catalog: &[Desired]) -> anyhow::Result<&Desired> {
    match catalog {
        [one] => Ok(one),
        _ => anyhow::bail!(
            "deploy.via stacksets deploys one role, and the catalog has {}; use deploy.via bootstrap-role",
            catalog.len()
        ),
    }
}
