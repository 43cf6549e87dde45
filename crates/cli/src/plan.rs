//! `rolecall plan`: observe every target (and the registry's orphans),
//! decide, and show it; writes nothing.

use std::io::Write;

use clap::Args;
use model::Inventory;

use crate::setup::{AwsArgs, InventoryArg};
use crate::{exit, orphans};

#[derive(Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) inventory: InventoryArg,
    /// JSON on stdout instead of a table
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report (summary, a matrix of accounts with filters, every finding) to FILE
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// List every stack, the unchanged too (by default only what changes or needs attention)
    #[arg(long)]
    all: bool,
    /// Exit 0 when nothing would change, 2 when changes are pending, 1 on errors
    #[arg(long)]
    detailed_exitcode: bool,
    /// Accounts observed at once (default: deploy.concurrency)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    concurrency: Option<u16>,
    /// Only these roles of the catalog (comma-separated keys); orphans are then not checked
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    roles: Vec<String>,
    /// Only these accounts (comma-separated ids); orphans are not checked then
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    accounts: Vec<String>,
    /// The ARN registry of the last apply (default: rolecall-registry-NAME.json): its accounts that left the inventory are reported as orphaned
    #[arg(long, value_name = "PATH|s3://BUCKET/KEY")]
    registry: Option<String>,
}

pub(crate) async fn plan(aws: &AwsArgs, inv: &Inventory, args: &PlanArgs) -> anyhow::Result<u8> {
    let cloud = crate::setup::connect(aws, inv).await?;
    // Before any account is touched: another inventory's registry stops the run.
    let previous = crate::registry::previous(&cloud, args.registry.as_deref(), inv)
        .await?
        .previous;
    let Some(targets) = crate::setup::resolve_targets(&cloud, inv).await? else {
        return Ok(exit::FAILURE);
    };
    let settings = crate::setup::settings(&cloud, inv, args.concurrency, "plan");
    let mut catalog = planner::catalog(inv);
    let mut targets = targets;
    crate::options::only_roles(&mut catalog, &mut targets, &args.roles)?;
    let all_targets = targets.clone();
    crate::options::only_accounts(
        &mut targets,
        &args.accounts,
        "targets of this inventory (see `rolecall accounts -i ...`)",
    )?;
    let plan = if inv.deploy.via == model::DeployVia::Stacksets {
        // The instances are the truth: orphans come from them.
        let options = executor::ApplyOptions {
            failure_tolerance: inv.deploy.failure_tolerance,
            poll_interval: std::time::Duration::from_secs(5),
            max_wait: std::time::Duration::from_secs(1800),
            registered: None,
        };
        let roles = if args.roles.is_empty() {
            orphans::with_stand_ins(previous.as_ref(), &catalog)
        } else {
            catalog.clone()
        };
        let runs = crate::stacksets::runs(inv, &roles, &options, args.concurrency);
        // A stack set is planned whole (an instance outside --accounts is
        // not an orphan); the rows shown are those of --accounts.
        let mut plan = crate::stacksets::plan(&cloud, &runs, &all_targets).await?;
        if !args.accounts.is_empty() {
            plan.entries
                .retain(|e| targets.iter().any(|t| t.account_id == e.account_id));
        }
        plan
    } else {
        let progress = reporter::Progress::stderr("observing", false);
        let mut plan = executor::plan(&cloud, &settings, &catalog, &targets, &progress).await;
        progress.finish();
        if args.roles.is_empty() && args.accounts.is_empty() {
            let with_orphans = orphans::with_stand_ins(previous.as_ref(), &catalog);
            let orphan_targets = orphans::targets(previous.as_ref(), &with_orphans, &targets);
            let (rows, _) = orphans::observe(&cloud, &settings, &with_orphans, &orphan_targets).await;
            plan.entries.extend(rows);
        }
        plan.sort();
        plan
    };
    crate::html::write(args.html.as_deref(), "plan", inv, || {
        reporter::html::plan_rows(&plan, &crate::html::ous(&all_targets))
    })
    .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        reporter::write_plan_json(&mut out, &plan)?;
    } else {
        reporter::write_plan(&mut out, &plan, args.all)?;
    }
    out.flush()?;
    Ok(if plan.needs_attention() {
        exit::FAILURE
    } else if args.detailed_exitcode && plan.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    })
}
