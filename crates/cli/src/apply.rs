//! `rolecall apply`: confirmation, the run (bootstrap role or StackSets),
//! orphans and `--prune`, then the registry, the profiles and the summary.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::bail;
use clap::Args;
use executor::aws::SdkCloud;
use model::registry::Registry;
use model::{AccountId, Inventory};
use planner::registry::Scope;
use std::path::PathBuf;

use crate::profiles::{self, ProfileOutputs};
use crate::setup::{AwsArgs, InventoryArg};
use crate::{exit, options, orphans, registry};

#[derive(Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    pub(crate) inventory: InventoryArg,
    /// Accounts worked on at once (default: deploy.concurrency)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    pub(crate) concurrency: Option<u16>,
    /// Start no new account after more than N accounts failed (default: deploy.failure_tolerance)
    #[arg(long, value_name = "N")]
    failure_tolerance: Option<usize>,
    /// Only these accounts (comma-separated ids); the registry keeps the others' entries
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    accounts: Vec<String>,
    /// Only these roles of the catalog (comma-separated keys); the registry keeps the others' entries
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    pub(crate) roles: Vec<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long)]
    pub(crate) yes: bool,
    /// Where the ARN registry is read and written (default: rolecall-registry-NAME.json, NAME the inventory's name)
    #[arg(long, value_name = "PATH|s3://BUCKET/KEY")]
    registry: Option<String>,
    /// Also write a standalone AWS CLI profiles file
    #[arg(long, value_name = "PATH")]
    profiles: Option<PathBuf>,
    /// Also rewrite the rolecall block inside an AWS config file (e.g. ~/.aws/config)
    #[arg(long, value_name = "PATH")]
    profiles_into: Option<PathBuf>,
    /// With --profiles-into: print the change instead of writing it
    #[arg(long)]
    diff: bool,
    /// The summary as JSON on stdout
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report (summary, a matrix of accounts with filters, every finding) to FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<std::path::PathBuf>,
    /// List every stack in the plan and the summary, the unchanged too (by default only what changes or needs attention)
    #[arg(long)]
    pub(crate) all: bool,
    /// Also delete rolecall's stacks (or stack instances) of accounts/regions that left the inventory
    #[arg(long)]
    pub(crate) prune: bool,
    /// Only put back every role the drift check finds DRIFTED (CloudFormation's drift-aware change set, then IAM on rolecall's own role where it is still drifted); creates and updates nothing else
    #[arg(long, conflicts_with = "prune")]
    revert_drift: bool,
    /// Seconds between two status reads while a stack operation runs
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    poll_interval: f64,
    /// Longest wait for one stack, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1800.0)]
    max_wait: f64,
}

pub(crate) async fn apply(aws: &AwsArgs, inv: &Inventory, args: &ApplyArgs) -> anyhow::Result<u8> {
    let (poll_interval, max_wait) = options::waits(args.poll_interval, args.max_wait, aws.endpoint_url.is_some())?;
    let needs = format!(
        "error: apply changes AWS accounts and needs confirmation, but stdin is not a terminal\n  help: review `rolecall plan -i {}` and pass --yes",
        args.inventory.inventory.display()
    );
    if !options::can_confirm(args.yes, &needs) {
        return Ok(exit::FAILURE);
    }
    // Read before any account is touched (a file before any AWS call): an
    // unreadable registry, or another inventory's, must stop the run here,
    // not after it, when its results could no longer be recorded.
    let cloud = crate::setup::connect(aws, inv).await?;
    let registry::Registries {
        location: registry_location,
        previous,
    } = registry::previous(&cloud, args.registry.as_deref(), inv).await?;
    let Some(mut targets) = crate::setup::resolve_targets(&cloud, inv).await? else {
        return Ok(exit::FAILURE);
    };
    // Each account's region order picks its profile's region; taken before
    // --accounts narrows the run, for the entries carried over too.
    let region_order: BTreeMap<AccountId, Vec<String>> = targets
        .iter()
        .map(|t| (t.account_id.clone(), t.regions.clone()))
        .collect();
    // Profile names of discovered accounts are known only now: check them
    // (and the user's config) before any account is touched, not after a
    // long rollout.
    if (args.profiles.is_some() || args.profiles_into.is_some())
        && !profiles::check_before_run(inv, &targets, &region_order, args.profiles_into.as_deref())?
    {
        return Ok(exit::FAILURE);
    }
    let all_targets = targets.clone();
    options::only_accounts(
        &mut targets,
        &args.accounts,
        "targets of this inventory (see `rolecall accounts -i ...`)",
    )?;
    let settings = crate::setup::settings(&cloud, inv, args.concurrency, "apply");
    let mut catalog = planner::catalog(inv);
    options::only_roles(&mut catalog, &mut targets, &args.roles)?;
    let options = executor::ApplyOptions {
        failure_tolerance: args.failure_tolerance.unwrap_or(inv.deploy.failure_tolerance),
        poll_interval,
        max_wait,
        registered: Some(
            previous
                .iter()
                .flat_map(|r| &r.entries)
                .map(|e| (e.account_id.clone(), e.role.clone(), e.region.clone()))
                .collect(),
        ),
    };
    if args.revert_drift {
        if inv.deploy.via == model::DeployVia::Stacksets {
            bail!(
                "--revert-drift works on stacks rolecall deploys through the bootstrap role; a stack set's instances are CloudFormation's to repair (detect drift on the stack set, then update it)"
            );
        }
        return revert_drift(&cloud, inv, args, &settings, &catalog, &targets, &options).await;
    }
    let run = match inv.deploy.via {
        model::DeployVia::Stacksets => {
            if !args.accounts.is_empty() {
                bail!(
                    "--accounts cannot narrow a stack set (its instances are deployed as one set); leave it out (--roles picks whole stack sets)"
                );
            }
            // One stack set per role; the stack sets of roles that left
            // the catalog are orphans (deleted with --prune).
            let roles = if args.roles.is_empty() {
                orphans::with_stand_ins(previous.as_ref(), &catalog)
            } else {
                catalog.clone()
            };
            let runs = crate::stacksets::runs(inv, &roles, &options, args.concurrency);
            crate::stacksets::apply(&cloud, &settings, &runs, &targets, args.yes, args.prune, args.all).await?
        }
        model::DeployVia::BootstrapRole => {
            bootstrap_apply(
                &cloud,
                &settings,
                &catalog,
                &targets,
                &all_targets,
                previous.as_ref(),
                args,
                &options,
            )
            .await?
        }
    };
    let Some(mut outcomes) = run else {
        return Ok(exit::FAILURE);
    };
    outcomes.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    // The registry records what happened, also when accounts failed.
    let accounts: Vec<AccountId> = targets.iter().map(|t| t.account_id.clone()).collect();
    let scope = if args.accounts.is_empty() && args.roles.is_empty() {
        Scope::Inventory
    } else {
        Scope::Narrowed {
            accounts: (!args.accounts.is_empty()).then_some(&accounts[..]),
            roles: (!args.roles.is_empty()).then_some(&args.roles[..]),
        }
    };
    let written = registry::write_next(&cloud, &registry_location, inv, previous.as_ref(), &outcomes, scope).await?;
    let registry = &written.registry;
    let outputs = ProfileOutputs {
        standalone: args.profiles.as_deref(),
        into: args.profiles_into.as_deref(),
        diff: args.diff,
        json: args.json,
        all: args.all,
        origin: &args.inventory.inventory,
    };
    crate::html::write(args.html.as_deref(), "apply", inv, || {
        reporter::html::outcome_rows(&outcomes, &crate::html::ous(&all_targets))
    })
    .await?;
    let code = profiles::finish_run(
        inv,
        registry,
        &region_order,
        &outputs,
        &outcomes,
        reporter::write_summary,
    )
    .await?;
    // A registry that was not written fails the run (it is kept locally).
    written.write_problems(args.json)?;
    Ok(if written.failed() { exit::FAILURE } else { code })
}

/// `apply --revert-drift`: the drift check, a plan of the DRIFTED roles,
/// confirmation, the revert, the summary. The registry and profiles stay
/// as they are: the roles and their ARNs do not change.
async fn revert_drift(
    cloud: &SdkCloud,
    inv: &Inventory,
    args: &ApplyArgs,
    settings: &executor::Settings,
    catalog: &[model::Desired],
    targets: &[model::Target],
    options: &executor::ApplyOptions,
) -> anyhow::Result<u8> {
    let check = crate::drift::check_roles(
        cloud,
        inv,
        settings,
        catalog,
        targets,
        false,
        std::time::Duration::from_secs(300),
    )
    .await;
    let plan = planner::drift::revert_plan(&check.findings);
    // What is reverted: each target narrowed to its drifted roles and regions.
    let drifted: std::collections::BTreeSet<(AccountId, String, String)> = plan
        .entries
        .iter()
        .filter(|e| e.action == model::Action::RevertDrift)
        .map(|e| (e.account_id.clone(), e.role.clone(), e.region.clone()))
        .collect();
    let doomed = planner::targets::narrowed(targets, &drifted);
    let attention = plan.needs_attention();
    if !args.json || !args.yes {
        reporter::write_plan(&mut std::io::stdout().lock(), &plan, args.all)?;
    }
    if doomed.is_empty() {
        eprintln!("rolecall: no role is drifted: nothing to revert");
        return Ok(if attention { exit::FAILURE } else { exit::OK });
    }
    if !args.yes && !options::confirm("Revert the drift of these roles?", "apply --revert-drift").await? {
        return Ok(exit::FAILURE);
    }
    let expected = crate::drift::expected_roles(inv, settings.partition);
    let progress = reporter::Progress::stderr("reverting", true);
    let outcomes = executor::revert_drift(cloud, settings, options, catalog, &doomed, &expected, &progress).await;
    progress.finish();
    crate::html::write(args.html.as_deref(), "apply --revert-drift", inv, || {
        reporter::html::outcome_rows(&outcomes, &crate::html::ous(targets))
    })
    .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        reporter::write_summary_json(&mut out, &outcomes)?;
    } else {
        writeln!(out)?;
        reporter::write_summary(&mut out, &outcomes, args.all)?;
    }
    let ok = outcomes.iter().all(|o| o.status.succeeded());
    Ok(if ok && !attention { exit::OK } else { exit::FAILURE })
}

/// The bootstrap-role path of apply: orphans, the confirmed plan, the
/// rollout, and `--prune`. `None`: the user said no.
#[allow(clippy::too_many_arguments)]
async fn bootstrap_apply(
    cloud: &SdkCloud,
    settings: &executor::Settings,
    catalog: &[model::Desired],
    targets: &[model::Target],
    all_targets: &[model::Target],
    previous: Option<&Registry>,
    args: &ApplyArgs,
    options: &executor::ApplyOptions,
) -> anyhow::Result<Option<Vec<model::Outcome>>> {
    // With --accounts or --roles the other entries stay as they were
    // (`Scope::Narrowed`); otherwise entries that left the inventory are
    // checked as orphans.
    let with_orphans = orphans::with_stand_ins(previous, catalog);
    let orphan_targets = if args.accounts.is_empty() && args.roles.is_empty() {
        orphans::targets(previous, &with_orphans, all_targets)
    } else {
        Vec::new()
    };
    let (orphan_rows, orphan_outcomes) = orphans::observe(cloud, settings, &with_orphans, &orphan_targets).await;

    // Without --yes: observe once, show the plan, ask, and act on exactly
    // what was shown.
    let mut planned = None;
    if !args.yes {
        let progress = reporter::Progress::stderr("observing", false);
        let decide = |d: &model::Desired, o: &model::Observed| Some(planner::decide(d, o));
        let (mut plan, observed) = executor::observe(cloud, settings, catalog, targets, &progress, &decide).await;
        progress.finish();
        plan.entries.extend(orphan_rows);
        plan.sort();
        reporter::write_plan(&mut std::io::stdout().lock(), &plan, args.all)?;
        let changes = plan
            .entries
            .iter()
            .any(|e| e.action.changes() || e.action == model::Action::Wait);
        if changes && !options::confirm("Apply these changes?", "apply").await? {
            return Ok(None);
        }
        planned = Some(observed);
    }

    let progress = reporter::Progress::stderr("applying", true);
    let mut outcomes = executor::apply(cloud, settings, options, catalog, targets, planned.as_ref(), &progress).await;
    progress.finish();
    if args.prune {
        // Only the orphans whose stack is still there (rolecall's, as the
        // orphan check found them, or as the registry last knew them when
        // the check could not read it).
        let known = |o: &model::Outcome| {
            o.stack_id.is_some()
                || previous.is_some_and(|r| {
                    r.entries
                        .iter()
                        .any(|e| e.key() == (&o.account_id, o.role.as_str(), o.region.as_str()) && e.stack_id.is_some())
                })
        };
        let doomed = planner::targets::narrowed(
            &orphan_targets,
            &orphan_outcomes
                .iter()
                .filter(|o| known(o))
                .map(|o| (o.account_id.clone(), o.role.clone(), o.region.clone()))
                .collect(),
        );
        let progress = reporter::Progress::stderr("pruning", true);
        let pruned = executor::destroy(cloud, settings, options, &with_orphans, &doomed, None, &progress).await;
        progress.finish();
        outcomes.extend(orphan_outcomes.into_iter().filter(|o| {
            !pruned
                .iter()
                .any(|p| p.account_id == o.account_id && p.role == o.role && p.region == o.region)
        }));
        outcomes.extend(pruned);
    } else {
        outcomes.extend(orphan_outcomes);
    }
    Ok(Some(outcomes))
}
