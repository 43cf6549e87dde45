//! `rolecall destroy`: removes rolecall's stacks (only those carrying its
//! tag) from the inventory's targets, or with `--orphans` from the
//! account/regions that left it; then updates the registry and profiles.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use model::{AccountId, Inventory};
use planner::registry::Scope;

use crate::options::{confirm, only_accounts};
use crate::profiles::{self, ProfileOutputs};
use crate::setup::{AwsArgs, InventoryArg};
use crate::{exit, options, orphans, registry};

#[derive(Args)]
pub(crate) struct DestroyArgs {
    #[command(flatten)]
    pub(crate) inventory: InventoryArg,
    /// Only the account/regions that left the inventory but still have rolecall's stack
    #[arg(long)]
    orphans: bool,
    /// Only these accounts (comma-separated ids)
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    accounts: Vec<String>,
    /// Only these roles of the catalog (comma-separated keys)
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    roles: Vec<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long)]
    yes: bool,
    /// Accounts worked on at once (default: deploy.concurrency)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    concurrency: Option<u16>,
    /// The ARN registry to update (default: rolecall-registry-NAME.json)
    #[arg(long, value_name = "PATH|s3://BUCKET/KEY")]
    registry: Option<String>,
    /// Also rewrite a standalone profiles file
    #[arg(long, value_name = "PATH")]
    profiles: Option<PathBuf>,
    /// Also rewrite the rolecall block inside an AWS config file
    #[arg(long, value_name = "PATH")]
    profiles_into: Option<PathBuf>,
    /// The summary as JSON on stdout
    #[arg(long)]
    json: bool,
    /// List every stack in the plan and the summary (by default only what is deleted or needs attention)
    #[arg(long)]
    all: bool,
    /// Seconds between two status reads while a stack is deleted
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    poll_interval: f64,
    /// Longest wait for one stack, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1800.0)]
    max_wait: f64,
}

pub(crate) async fn destroy(aws: &AwsArgs, inv: &Inventory, args: &DestroyArgs) -> anyhow::Result<u8> {
    let (poll_interval, max_wait) = options::waits(args.poll_interval, args.max_wait, aws.endpoint_url.is_some())?;
    if !options::can_confirm(
        args.yes,
        "error: destroy deletes stacks and needs confirmation, but stdin is not a terminal\n  help: review the preview in a terminal, or pass --yes",
    ) {
        return Ok(exit::FAILURE);
    }
    let cloud = crate::setup::connect(aws, inv).await?;
    let registries = registry::previous(&cloud, args.registry.as_deref(), inv).await?;
    let previous = registries.previous.as_ref();
    let Some(all) = crate::setup::resolve_targets(&cloud, inv).await? else {
        return Ok(exit::FAILURE);
    };
    let region_order: BTreeMap<AccountId, Vec<String>> =
        all.iter().map(|t| (t.account_id.clone(), t.regions.clone())).collect();
    // With --orphans, the roles that left the catalog are destroyed too.
    let inventory_roles = planner::catalog(inv);
    let with_orphans = orphans::with_stand_ins(previous, &inventory_roles);
    let mut catalog = if args.orphans {
        with_orphans
    } else {
        inventory_roles.clone()
    };
    let mut targets = if args.orphans {
        orphans::targets(previous, &catalog, &all)
    } else {
        all.clone()
    };
    crate::options::only_roles(&mut catalog, &mut targets, &args.roles)?;
    let catalog = &catalog[..];
    let among = if args.orphans {
        "orphans (account/regions of the registry that left the inventory; see `rolecall plan`)"
    } else {
        "targets of this inventory (see `rolecall accounts -i ...`)"
    };
    only_accounts(&mut targets, &args.accounts, among)?;
    let settings = crate::setup::settings(&cloud, inv, args.concurrency, "destroy");
    let options = executor::ApplyOptions {
        failure_tolerance: inv.deploy.failure_tolerance,
        poll_interval,
        max_wait,
        registered: None,
    };
    if inv.deploy.via == model::DeployVia::Stacksets {
        if !args.accounts.is_empty() {
            anyhow::bail!(
                "--accounts cannot narrow a stack set's destroy (its instances are deleted as one set); leave it out (or use --orphans, or --roles for whole stack sets)"
            );
        }
        // One stack set per role (--roles picks whole sets); with
        // --orphans, also those of roles that left the catalog.
        let runs = crate::stacksets::runs(inv, catalog, &options, args.concurrency);
        if !args.yes {
            let plan = executor::stacksets::plan(&cloud, &runs, &all).await?;
            reporter::write_plan(&mut std::io::stdout().lock(), &plan, args.all)?;
            if !confirm(
                "Delete these stack instances (and the stack set once empty)?",
                "destroy",
            )
            .await?
            {
                return Ok(exit::FAILURE);
            }
        }
        let progress = reporter::Progress::stderr("deleting", true);
        let outcomes = executor::stacksets::destroy(&cloud, &settings, &runs, &all, args.orphans, &progress).await;
        progress.finish();
        return finish(&cloud, inv, args, &registries, &region_order, outcomes?).await;
    }

    let mut planned = None;
    if !args.yes {
        let progress = reporter::Progress::stderr("observing", false);
        let decide = |d: &model::Desired, o: &model::Observed| Some(planner::decide::decide_destroy(&d.stack_name, o));
        let (plan, observed) = executor::observe(&cloud, &settings, catalog, &targets, &progress, &decide).await;
        progress.finish();
        reporter::write_plan(&mut std::io::stdout().lock(), &plan, args.all)?;
        if plan.count(model::Action::Delete) == 0 {
            eprintln!("nothing to delete");
            return Ok(if plan.needs_attention() {
                exit::FAILURE
            } else {
                exit::OK
            });
        }
        if !confirm("Delete these stacks and their roles?", "destroy").await? {
            return Ok(exit::FAILURE);
        }
        planned = Some(observed);
    }
    let progress = reporter::Progress::stderr("deleting", true);
    let outcomes = executor::destroy(
        &cloud,
        &settings,
        &options,
        catalog,
        &targets,
        planned.as_ref(),
        &progress,
    )
    .await;
    progress.finish();
    finish(&cloud, inv, args, &registries, &region_order, outcomes).await
}

/// The registry and profiles after a destroy, and the summary: deleted
/// (or already gone) entries leave the registry; the others keep theirs,
/// updated with what happened this run (`Scope::Destroy`).
async fn finish(
    cloud: &executor::aws::SdkCloud,
    inv: &Inventory,
    args: &DestroyArgs,
    registries: &registry::Registries,
    region_order: &BTreeMap<AccountId, Vec<String>>,
    outcomes: Vec<model::Outcome>,
) -> anyhow::Result<u8> {
    let written = registry::write_next(
        cloud,
        &registries.location,
        inv,
        registries.previous.as_ref(),
        &outcomes,
        Scope::Destroy,
    )
    .await?;
    let registry = &written.registry;
    let outputs = ProfileOutputs {
        standalone: args.profiles.as_deref(),
        into: args.profiles_into.as_deref(),
        diff: false,
        json: args.json,
        all: args.all,
        origin: &args.inventory.inventory,
    };
    let code = profiles::finish_run(
        inv,
        registry,
        region_order,
        &outputs,
        &outcomes,
        reporter::write_destroy_summary,
    )
    .await?;
    written.write_problems(args.json)?;
    Ok(if written.failed() { exit::FAILURE } else { code })
}
