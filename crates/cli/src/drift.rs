//! `rolecall drift`: the scheduled, read-only check that every account is
//! still covered, healthy and exactly as the inventory says.

use anyhow::Context;
use clap::Args;
use executor::Organization;
use model::{DriftKind, Inventory};

use crate::setup::{AwsArgs, InventoryArg};
use crate::{exit, orphans};

#[derive(Args)]
pub(crate) struct DriftArgs {
    #[command(flatten)]
    pub(crate) inventory: InventoryArg,
    /// Check coverage against the whole organization (ListAccounts), not only the inventory's OUs
    #[arg(long)]
    org: bool,
    /// Also run CloudFormation drift detection on every healthy stack (slower; rate-limited)
    #[arg(long)]
    cfn_drift: bool,
    /// A JSON report on stdout (schemas/drift.v2.schema.json)
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// A Markdown report on stdout, for a CI job summary or a ticket
    #[arg(long)]
    markdown: bool,
    /// Also write a self-contained HTML report (summary, a matrix of accounts with filters, every finding) to FILE
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// List every target in the table, the in-sync too (by default only findings)
    #[arg(long)]
    all: bool,
    /// Exit 0 when all is in sync, 2 on any finding, 1 when errors kept the check from being complete
    #[arg(long)]
    detailed_exitcode: bool,
    /// Accounts checked at once (default: deploy.concurrency)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    concurrency: Option<u16>,
    /// Only these accounts (comma-separated ids)
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    accounts: Vec<String>,
    /// Only these roles of the catalog (comma-separated keys)
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    roles: Vec<String>,
    /// The ARN registry of the last apply (default: rolecall-registry-NAME.json): rolecall stacks in accounts that left the inventory are ORPHANED
    #[arg(long, value_name = "PATH|s3://BUCKET/KEY")]
    registry: Option<String>,
    /// Longest wait for one CloudFormation drift detection, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    detection_timeout: f64,
}

/// What the inventory expects of each role of the catalog in a region
/// (`None` for an own template).
pub(crate) fn expected_roles(
    inv: &Inventory,
    partition: planner::partition::Partition,
) -> impl Fn(&model::Desired, &str) -> Option<planner::drift::ExpectedRole> + Sync + '_ {
    move |d: &model::Desired, region: &str| {
        let role = inv.role(&d.role)?;
        planner::drift::expected_role(&role.spec, region, partition)
    }
}

/// The drift check of every stack of `targets`: stack state and the live
/// role (and CloudFormation's detection with `cfn_drift`), with progress.
pub(crate) async fn check_roles(
    cloud: &executor::aws::SdkCloud,
    inv: &Inventory,
    settings: &executor::Settings,
    catalog: &[model::Desired],
    targets: &[model::Target],
    cfn_drift: bool,
    detection_timeout: std::time::Duration,
) -> executor::drift::DriftCheck {
    let expected = expected_roles(inv, settings.partition);
    let options = executor::drift::DriftOptions {
        cfn_drift,
        detections_at_once: 8,
        detection_timeout,
        poll_interval: std::time::Duration::from_secs(2),
    };
    let progress = reporter::Progress::stderr("checking", false);
    let check = executor::drift::drift(cloud, settings, catalog, targets, &expected, &options, &progress).await;
    progress.finish();
    check
}

pub(crate) async fn drift(aws: &AwsArgs, inv: &Inventory, args: &DriftArgs) -> anyhow::Result<u8> {
    if !(1.0..=86_400.0).contains(&args.detection_timeout) {
        anyhow::bail!(
            "--detection-timeout {} is out of range: give 1–86400 seconds",
            args.detection_timeout
        );
    }
    let detection_timeout = std::time::Duration::from_secs_f64(args.detection_timeout);
    let cloud = crate::setup::connect(aws, inv).await?;
    let previous = crate::registry::previous(&cloud, args.registry.as_deref(), inv)
        .await?
        .previous;
    let Some((mut targets, discovered)) = crate::setup::resolve_with_discovered(&cloud, inv).await? else {
        return Ok(exit::FAILURE);
    };
    // The organization's statuses tell which targets are no longer ACTIVE;
    // with --org they also scope the search for uncovered accounts.
    let members = if args.org || inv.organization.is_some() {
        let accounts = cloud.list_organization_accounts().await.context(
            "listing the organization's accounts failed; drift needs organizations:ListAccounts with --org or organization discovery (run from the management account or a delegated administrator)",
        )?;
        Some(accounts)
    } else {
        None
    };
    let mut findings = planner::drift::coverage(inv, &targets, &discovered, members.as_deref(), args.org);
    // Targets that are not ACTIVE any more are reported, not checked.
    targets.retain(|t| {
        !findings
            .iter()
            .any(|f| f.account_id == t.account_id && f.kind == DriftKind::Orphaned)
    });
    crate::options::only_accounts(
        &mut targets,
        &args.accounts,
        "targets of this inventory (see `rolecall accounts -i ...`)",
    )?;
    if !args.accounts.is_empty() {
        findings.retain(|f| args.accounts.iter().any(|a| a == f.account_id.as_str()));
    }

    let settings = crate::setup::settings(&cloud, inv, args.concurrency, "drift");
    let mut catalog = planner::catalog(inv);
    crate::options::only_roles(&mut catalog, &mut targets, &args.roles)?;
    let (orphan_rows, _) = if args.accounts.is_empty() && args.roles.is_empty() {
        let with_orphans = orphans::with_stand_ins(previous.as_ref(), &catalog);
        let orphan_targets = orphans::targets(previous.as_ref(), &with_orphans, &targets);
        orphans::observe(&cloud, &settings, &with_orphans, &orphan_targets).await
    } else {
        (Vec::new(), Vec::new())
    };
    findings.extend(orphan_rows.into_iter().map(|r| model::DriftFinding {
        account_id: r.account_id,
        account_name: r.account_name,
        role: Some(r.role),
        region: Some(r.region),
        kind: DriftKind::Orphaned,
        reason: r.reason,
        details: Vec::new(),
    }));

    let check = check_roles(
        &cloud,
        inv,
        &settings,
        &catalog,
        &targets,
        args.cfn_drift,
        detection_timeout,
    )
    .await;
    findings.extend(check.findings);
    executor::drift::sort(&mut findings);

    crate::html::write(args.html.as_deref(), "drift", inv, || {
        let mut ous = crate::html::ous(&targets);
        ous.extend(discovered.iter().map(|d| (d.id.to_string(), d.parent.clone())));
        reporter::html::drift_rows(&findings, &ous)
    })
    .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        reporter::drift::write_json(&mut out, &now, &findings, &check.notes)?;
    } else if args.markdown {
        reporter::drift::write_markdown(&mut out, &findings, &check.notes)?;
    } else {
        reporter::drift::write_table(&mut out, &findings, &check.notes, args.all)?;
    }
    std::io::Write::flush(&mut out)?;
    let incomplete = findings.iter().any(|f| f.kind == DriftKind::Error);
    let found = findings.iter().any(|f| f.kind != DriftKind::InSync);
    Ok(exit::of_check(incomplete, found, args.detailed_exitcode))
}
