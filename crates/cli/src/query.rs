//! `rolecall registry get | list | export`: the ARN registry for scripts,
//! from a file or an S3 object, with no AWS call but reading it.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use model::registry::{Entry, Registry};

use crate::exit;
use crate::setup::AwsArgs;

#[derive(Args)]
pub(crate) struct RegistryArgs {
    #[command(subcommand)]
    command: Query,
}

#[derive(Subcommand)]
enum Query {
    /// Print one role ARN alone on stdout (for scripts)
    Get(GetArgs),
    /// List the entries (a table, or JSON)
    List(ListArgs),
    /// Every entry as csv, json, tfvars or env
    Export(ExportArgs),
}

/// Which registry: `--registry`, else the inventory's.
#[derive(Args)]
struct Source {
    /// The inventory whose registry is read (its registry.location, else rolecall-registry-NAME.json)
    #[arg(short, long = "inventory", value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// The registry itself (overrides the inventory's)
    #[arg(long, value_name = "PATH|s3://BUCKET/KEY")]
    registry: Option<String>,
}

#[derive(Args)]
struct GetArgs {
    #[command(flatten)]
    source: Source,
    /// The account: its id or its name
    #[arg(long, value_name = "ID_OR_NAME")]
    account: String,
    /// The role of the catalog (its key)
    #[arg(long, value_name = "KEY")]
    role: Option<String>,
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    source: Source,
    /// Only this role of the catalog
    #[arg(long, value_name = "KEY")]
    role: Option<String>,
    /// The entries as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Json,
    Tfvars,
    Env,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    source: Source,
    #[arg(long, value_enum)]
    format: Format,
    /// Only this role of the catalog
    #[arg(long, value_name = "KEY")]
    role: Option<String>,
}

pub(crate) async fn registry(aws: &AwsArgs, args: &RegistryArgs) -> anyhow::Result<u8> {
    let source = match &args.command {
        Query::Get(a) => &a.source,
        Query::List(a) => &a.source,
        Query::Export(a) => &a.source,
    };
    let Some(registry) = read(aws, source).await? else {
        return Ok(exit::FAILURE);
    };
    let mut out = std::io::stdout().lock();
    match &args.command {
        Query::Get(a) => return get(&registry, a, &mut out),
        Query::List(a) => {
            let entries = planner::registry::select(&registry, None, a.role.as_deref(), None);
            if a.json {
                out.write_all(reporter::registry::entries_json(&entries).as_bytes())?;
            } else {
                reporter::registry::write_list(&mut out, &entries)?;
            }
        }
        Query::Export(a) => {
            let entries = planner::registry::select(&registry, None, a.role.as_deref(), None);
            let text = match a.format {
                Format::Csv => reporter::registry::to_csv(&entries),
                Format::Json => reporter::registry::entries_json(&entries),
                Format::Tfvars => reporter::registry::to_tfvars(&entries),
                Format::Env => reporter::registry::to_env(&entries).map_err(|why| {
                    anyhow::anyhow!("env names collide: {why}\n  help: export --format tfvars or json instead")
                })?,
            };
            if matches!(a.format, Format::Tfvars | Format::Env) {
                let without = entries.iter().filter(|e| e.role_arn.is_none()).count();
                if without > 0 {
                    eprintln!(
                        "note: {without} entr{} without a role ARN left out",
                        if without == 1 { "y" } else { "ies" }
                    );
                }
            }
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(exit::OK)
}

/// The registry named by `--registry`, else the inventory's (checked to be
/// that inventory's). `None`: the inventory is invalid (said on stderr).
async fn read(aws: &AwsArgs, source: &Source) -> anyhow::Result<Option<Registry>> {
    let inv = match &source.inventory {
        Some(path) => match crate::setup::load_inventory(path)? {
            Some(inv) => Some(inv),
            None => return Ok(None),
        },
        None => None,
    };
    let registries = match &inv {
        Some(inv) => {
            let cloud = crate::setup::connect(aws, inv).await?;
            crate::registry::previous(&cloud, source.registry.as_deref(), inv).await?
        }
        None => {
            let Some(given) = &source.registry else {
                anyhow::bail!(
                    "which registry? pass --registry PATH|s3://BUCKET/KEY, or -i with the inventory that writes it"
                );
            };
            let location = planner::registry::location(given).map_err(|why| anyhow::anyhow!("--registry: {why}"))?;
            let cloud = crate::setup::connect_caller(aws).await;
            let previous = crate::registry::read_at(&cloud, &location).await?;
            crate::registry::Registries { location, previous }
        }
    };
    match registries.previous {
        Some(r) => Ok(Some(r)),
        None => anyhow::bail!(
            "there is no registry at {}\n  help: run `rolecall apply` first, or pass the registry's --registry",
            registries.location
        ),
    }
}

/// `registry get`: exactly one entry, its ARN alone on stdout.
fn get(registry: &Registry, a: &GetArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let found = planner::registry::select(registry, Some(&a.account), a.role.as_deref(), a.region.as_deref());
    let describe = |e: &Entry| {
        format!(
            "  --account {} --role {} --region {}  ({}, {})",
            e.account_id,
            e.role,
            e.region,
            e.status,
            e.role_arn.as_deref().unwrap_or("no ARN")
        )
    };
    match found.as_slice() {
        [] => {
            let known = planner::registry::select(registry, Some(&a.account), None, None);
            if known.is_empty() {
                eprintln!(
                    "error: no account {} in the registry (by id or name)\n  help: `rolecall registry list` shows what it holds",
                    a.account
                );
            } else {
                eprintln!(
                    "error: account {} has no entry for that role and region; its entries:",
                    a.account
                );
                for e in known {
                    eprintln!("{}", describe(e));
                }
            }
            Ok(exit::FAILURE)
        }
        [one] => match &one.role_arn {
            Some(arn) => {
                if !one.status.succeeded() || one.status == model::Status::Orphaned {
                    eprintln!(
                        "note: {} {} {} is {}: this is its last known role ARN{}",
                        one.account_id,
                        one.role,
                        one.region,
                        one.status,
                        one.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
                    );
                }
                writeln!(out, "{arn}")?;
                Ok(exit::OK)
            }
            None => {
                eprintln!(
                    "error: {} {} {} has no role ARN recorded (status {}){}",
                    one.account_id,
                    one.role,
                    one.region,
                    one.status,
                    one.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
                );
                Ok(exit::FAILURE)
            }
        },
        many => {
            eprintln!(
                "error: {} entries match; add --role or --region to pick one:",
                many.len()
            );
            for e in many {
                eprintln!("{}", describe(e));
            }
            Ok(exit::FAILURE)
        }
    }
}
