//! `rolecall verify`: every registered role assumed the way its generated
//! profile would, proving that the registry's ARNs can be used.

use std::collections::BTreeMap;

use clap::Args;
use model::{Inventory, VerifyResult};

use crate::setup::{AwsArgs, InventoryArg};
use crate::{exit, options};

#[derive(Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) inventory: InventoryArg,
    /// Only these accounts (comma-separated ids)
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    accounts: Vec<String>,
    /// Only these roles of the catalog (comma-separated keys)
    #[arg(long, value_name = "KEY,...", value_delimiter = ',')]
    roles: Vec<String>,
    /// The report as JSON on stdout (schemas/verify.v1.schema.json)
    #[arg(long)]
    json: bool,
    /// Show every role, also those that are assumable
    #[arg(long)]
    all: bool,
    /// Exit 0 when every role is assumable, 2 on any finding, 1 when errors kept the check from being complete
    #[arg(long)]
    detailed_exitcode: bool,
    /// Roles assumed at once (default: deploy.concurrency)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    concurrency: Option<u16>,
    /// The ARN registry (default: registry.location, else rolecall-registry-NAME.json)
    #[arg(long, value_name = "PATH|s3://BUCKET/KEY")]
    registry: Option<String>,
}

pub(crate) async fn verify(aws: &AwsArgs, inv: &Inventory, args: &VerifyArgs) -> anyhow::Result<u8> {
    let cloud = crate::setup::connect(aws, inv).await?;
    let previous = crate::registry::previous(&cloud, args.registry.as_deref(), inv)
        .await?
        .previous;
    let Some(mut targets) = crate::setup::resolve_targets(&cloud, inv).await? else {
        return Ok(exit::FAILURE);
    };
    let mut catalog = planner::catalog(inv);
    options::only_roles(&mut catalog, &mut targets, &args.roles)?;
    options::only_accounts(
        &mut targets,
        &args.accounts,
        "targets of this inventory (see `rolecall accounts -i ...`)",
    )?;
    let order = BTreeMap::new();
    let how = |key: &str| {
        let role = inv.role(key).filter(|_| catalog.iter().any(|d| d.role == key))?;
        let settings = planner::profiles::ProfileSettings::of(role, &order);
        Some(planner::verify::AssumeAs {
            session_name: settings.spec.role_session_name.clone(),
            external_id: settings.external_id.map(str::to_owned),
            duration_seconds: settings.spec.duration_seconds,
            mfa_serial: settings.mfa_serial.map(str::to_owned),
        })
    };
    let (checks, mut verdicts) = planner::verify::checks(previous.as_ref(), &targets, &how);
    let concurrency = args.concurrency.map_or(inv.deploy.concurrency, usize::from);
    let progress = reporter::Progress::stderr("assuming", false);
    verdicts.extend(executor::verify::verify(&cloud, &checks, concurrency, &progress).await);
    progress.finish();
    verdicts.sort_by(|a, b| (&a.account_id, &a.role, &a.role_arn).cmp(&(&b.account_id, &b.role, &b.role_arn)));

    let mut out = std::io::stdout().lock();
    if args.json {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        reporter::verify::write_json(&mut out, &now, &verdicts)?;
    } else {
        reporter::verify::write_table(&mut out, &verdicts, args.all)?;
    }
    std::io::Write::flush(&mut out)?;
    let incomplete = verdicts.iter().any(|v| v.result == VerifyResult::Error);
    let found = verdicts.iter().any(|v| v.result != VerifyResult::Assumable);
    Ok(exit::of_check(incomplete, found, args.detailed_exitcode))
}
