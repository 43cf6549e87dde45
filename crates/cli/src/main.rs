//! The `rolecall` command: parses arguments, reads files and the environment,
//! wires planner, executor and reporter, and turns outcomes into exit codes.
//! The only place that touches files, env, stdout and exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use executor::aws::{Connection, SdkCloud};
use model::{Inventory, Target};
use tracing_subscriber::filter::LevelFilter;

mod apply;
mod destroy;
mod drift;
mod files;
mod options;
mod orphans;
mod plan;
mod profiles;
mod registry;
mod stacksets;

/// Where the ARN registry is read and written unless `--registry` says.
pub(crate) const DEFAULT_REGISTRY: &str = "rolecall-registry.json";

/// Exit codes, documented in README.md.
pub(crate) mod exit {
    pub(crate) const OK: u8 = 0;
    /// Bad input, an account failed, or a stack is blocked.
    pub(crate) const FAILURE: u8 = 1;
    /// `--detailed-exitcode`: the plan has changes.
    pub(crate) const CHANGES: u8 = 2;
    /// The command line itself is wrong (clap would say 2, which means "changes").
    pub(crate) const USAGE: u8 = 64;
    /// Ctrl-C or SIGTERM: what was known was written, then the run stopped.
    pub(crate) const INTERRUPTED: u8 = 130;
}

#[derive(Parser)]
#[command(
    name = "rolecall",
    version,
    about = "Put the same cross-account IAM role stack into every AWS account of an organization"
)]
struct Cli {
    #[command(flatten)]
    aws: AwsArgs,
    /// More log output on stderr (-v info, -vv debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
pub(crate) struct AwsArgs {
    /// Send every AWS call to this endpoint (e.g. a local emulator)
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    endpoint_url: Option<String>,
    /// The caller's region: STS calls go there, and its partition (aws, aws-us-gov, aws-cn …) is the one of every ARN rolecall builds; Organizations goes to that partition's home region (default: the AWS config, else the inventory's first deploy.regions)
    #[arg(long, global = true, value_name = "REGION")]
    region: Option<String>,
    /// AWS profile for the caller's credentials (default: the standard chain)
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Check an inventory file; makes no AWS calls
    Validate(InventoryArg),
    /// List the resolved target accounts (inventory plus Organizations discovery)
    Accounts {
        #[command(flatten)]
        inventory: InventoryArg,
        /// JSON on stdout instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show what apply would do in every account and region; writes nothing
    Plan(plan::PlanArgs),
    /// Create or update the role stack everywhere, then write the ARN registry and profiles
    Apply(apply::ApplyArgs),
    /// Delete rolecall's stacks (only those it created), then update the registry and profiles
    Destroy(destroy::DestroyArgs),
    /// Check, read-only, that every account is still covered, healthy and as the inventory says
    Drift(drift::DriftArgs),
    /// Regenerate the profiles file from an ARN registry, offline
    Profiles(profiles::ProfilesArgs),
    /// Print a template for the bootstrap role, for accounts that lack one
    BootstrapTemplate(InventoryArg),
    /// Print the role template exactly as apply deploys it (for review and linters)
    Template {
        #[command(flatten)]
        inventory: InventoryArg,
        /// Print the stack parameters instead, as `--parameters file://…` of the AWS CLI takes them
        #[arg(long)]
        parameters: bool,
    },
}

#[derive(Args)]
pub(crate) struct InventoryArg {
    /// The inventory file
    #[arg(short, long = "inventory", value_name = "FILE")]
    pub(crate) inventory: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    init_tracing(cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        // `rolecall plan | head`: the reader left; that is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(if interrupt().is_set() {
                exit::INTERRUPTED
            } else {
                exit::FAILURE
            })
        }
    }
}

/// The AWS SDK's own log targets, capped whatever ROLECALL_LOG asks: at
/// trace they print canonical requests and, with LOG_SENSITIVE_BODIES set,
/// response bodies (AssumeRole's carry secret keys and session tokens).
const SDK_LOG_CAPS: &[(&str, LevelFilter)] = &[
    ("aws_sigv4", LevelFilter::DEBUG),
    ("aws_smithy_runtime", LevelFilter::DEBUG),
    ("aws_smithy_runtime_api", LevelFilter::DEBUG),
    ("aws_smithy_http_client", LevelFilter::DEBUG),
    ("aws_smithy_types", LevelFilter::DEBUG),
    ("aws_config", LevelFilter::DEBUG),
    ("aws_credential_types", LevelFilter::DEBUG),
    ("aws_sdk_sts", LevelFilter::DEBUG),
    ("aws_sdk_cloudformation", LevelFilter::DEBUG),
    ("aws_sdk_organizations", LevelFilter::DEBUG),
    ("aws_sdk_iam", LevelFilter::DEBUG),
    ("hyper", LevelFilter::INFO),
    ("hyper_util", LevelFilter::INFO),
    ("h2", LevelFilter::INFO),
    ("rustls", LevelFilter::INFO),
];

fn init_tracing(verbose: u8) {
    use tracing_subscriber::filter::{FilterExt, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let level = match verbose {
        0 => "warn",
        1 => "rolecall=info,executor=info,warn",
        _ => "rolecall=debug,executor=debug,planner=debug,info",
    };
    let wanted = EnvFilter::try_from_env("ROLECALL_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // Both must let an event through: the caps only ever lower a level.
    let caps = SDK_LOG_CAPS
        .iter()
        .fold(Targets::new().with_default(LevelFilter::TRACE), |t, (target, level)| {
            t.with_target(*target, *level)
        });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(wanted.and(caps)),
        )
        .init();
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Validate(arg) => {
            let Some(inv) = load_inventory(&arg.inventory)? else {
                return Ok(exit::FAILURE);
            };
            let regions: usize = inv.accounts.iter().map(|a| a.regions(&inv.deploy.regions).len()).sum();
            println!(
                "{}: valid ({} listed account{}, {} account/region pair{}{})",
                inv.origin.display(),
                inv.accounts.len(),
                if inv.accounts.len() == 1 { "" } else { "s" },
                regions,
                if regions == 1 { "" } else { "s" },
                if inv.organization.is_some() {
                    ", plus accounts discovered through Organizations"
                } else {
                    ""
                },
            );
            Ok(exit::OK)
        }
        Command::Accounts { inventory, json } => {
            let Some(inv) = load_inventory(&inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(async {
                let cloud = connect(&cli.aws, &inv).await?;
                let Some(targets) = resolve_targets(&cloud, &inv).await? else {
                    return Ok(exit::FAILURE);
                };
                let mut out = std::io::stdout().lock();
                if *json {
                    reporter::write_targets_json(&mut out, &targets)?;
                } else {
                    reporter::write_targets(&mut out, &targets)?;
                }
                Ok(exit::OK)
            })
        }
        Command::Plan(args) => {
            let Some(inv) = load_inventory(&args.inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(plan::plan(&cli.aws, &inv, args))
        }
        Command::Apply(args) => {
            let Some(inv) = load_inventory(&args.inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(apply::apply(&cli.aws, &inv, args))
        }
        Command::Destroy(args) => {
            let Some(inv) = load_inventory(&args.inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(destroy::destroy(&cli.aws, &inv, args))
        }
        Command::Drift(args) => {
            let Some(inv) = load_inventory(&args.inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            block_on(drift::drift(&cli.aws, &inv, args))
        }
        Command::Profiles(args) => profiles::profiles(args),
        Command::Template { inventory, parameters } => {
            let Some(inv) = load_inventory(&inventory.inventory)? else {
                return Ok(exit::FAILURE);
            };
            let desired = planner::desired(&inv);
            let mut out = std::io::stdout().lock();
            if *parameters {
                reporter::write_parameters_json(&mut out, &desired.parameters)?;
            } else {
                out.write_all(desired.template_body.as_bytes())?;
            }
            out.flush()?;
            Ok(exit::OK)
        }
        Command::BootstrapTemplate(arg) => {
            let Some(inv) = load_inventory(&arg.inventory)? else {
                return Ok(exit::FAILURE);
            };
            print!("{}", planner::template::bootstrap(&inv));
            let region = inv.deploy.regions.first().map_or("us-east-1", String::as_str);
            eprintln!(
                "# Launch it once in each account whose bootstrap role is missing (e.g. invited accounts),\n\
                 # with that account's own administrator credentials:\n\
                 #   rolecall bootstrap-template -i {} > rolecall-bootstrap.json\n\
                 #   aws cloudformation create-stack --stack-name {} --template-body file://rolecall-bootstrap.json --capabilities CAPABILITY_NAMED_IAM --region {region}\n\
                 # It creates role {} trusting account {}, allowed to manage only stack {} and role {}.",
                arg.inventory.display(),
                planner::template::BOOTSTRAP_STACK_NAME,
                inv.deploy.bootstrap_role,
                inv.source_account,
                inv.role.stack_name,
                inv.role.name,
            );
            Ok(exit::OK)
        }
    }
}

/// Ctrl-C and SIGTERM of this process, as the pipelines see them.
pub(crate) fn interrupt() -> &'static executor::interrupt::Interrupt {
    static INTERRUPT: std::sync::OnceLock<executor::interrupt::Interrupt> = std::sync::OnceLock::new();
    INTERRUPT.get_or_init(Default::default)
}

/// Runs a command on a runtime that listens for Ctrl-C and SIGTERM. The
/// first one stops new work: the command writes what is known, prints its
/// summary and exits 130. The second exits at once.
pub(crate) fn block_on(work: impl std::future::Future<Output = anyhow::Result<u8>>) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = runtime.block_on(async {
        tokio::spawn(listen_for_signals());
        work.await
    })?;
    Ok(if interrupt().is_set() { exit::INTERRUPTED } else { code })
}

async fn listen_for_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!(
        "\nrolecall: interrupted: no new account or write starts; finishing the calls in flight, then writing the registry, profiles and summary (interrupt again to exit now)"
    );
    interrupt().trigger();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!(
        "rolecall: interrupted again: exiting now; CloudFormation goes on with what was started, and the next run picks it up"
    );
    std::process::exit(exit::INTERRUPTED.into());
}

/// Reads and validates the inventory. Problems go to stderr; `None` means
/// the file is not usable (exit 1).
pub(crate) fn load_inventory(path: &Path) -> anyhow::Result<Option<Inventory>> {
    let bytes = match read_limited(path, MAX_INVENTORY_BYTES) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!(
                "error: cannot read inventory {}: {e}\n  help: pass the path of an inventory file with -i (see inventory/example.yaml)",
                path.display()
            );
            return Ok(None);
        }
    };
    // Templates are refused above 51,200 bytes; reading a bigger file whole
    // only to say so would be waste (or worse, a device or a pipe).
    let read = |p: &Path| {
        read_limited(p, planner::template::MAX_BODY_BYTES as u64 * 4)
            .and_then(|b| String::from_utf8(b).map_err(|_| std::io::Error::other("not UTF-8 text")))
    };
    match planner::inventory::parse_bytes(&bytes, path, &read) {
        Ok((inv, warnings)) => {
            eprint!("{}", planner::inventory::render(&warnings));
            Ok(Some(inv))
        }
        Err(diagnostics) => {
            eprint!("{}", planner::inventory::render(&diagnostics));
            Ok(None)
        }
    }
}

/// An inventory of 50,000 accounts is about 3 MB.
const MAX_INVENTORY_BYTES: u64 = 16 << 20;

/// A regular file's bytes, refused when it is a directory or larger than
/// `limit` (checked before reading).
fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(std::io::Error::other("it is a directory, not a file"));
    }
    if meta.len() > limit {
        return Err(std::io::Error::other(format!(
            "it is {} bytes, more than the {limit} bytes rolecall reads",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "it is more than the {limit} bytes rolecall reads"
        )));
    }
    Ok(bytes)
}

/// The cloud of the caller. Refuses a caller whose partition is not the
/// inventory's: its credentials could not work in any target.
pub(crate) async fn connect(args: &AwsArgs, inv: &Inventory) -> anyhow::Result<SdkCloud> {
    let conn = Connection {
        endpoint_url: args.endpoint_url.clone(),
        region: args.region.clone(),
        profile: args.profile.clone(),
        default_region: inv.deploy.regions.first().cloned(),
    };
    let cloud = SdkCloud::new(executor::aws::load_config(&conn).await);
    let theirs = planner::partition::Partition::of_region(&inv.deploy.regions[0]);
    if cloud.partition() != theirs {
        anyhow::bail!(
            "the caller's region {} is in partition {}, but {} deploys to {} in partition {}; credentials never cross partitions\n  help: pass --region (or set AWS_REGION / the profile's region) to a region of {}",
            cloud.region(),
            cloud.partition().name,
            inv.origin.display(),
            inv.deploy.regions[0],
            theirs.name,
            theirs.name
        );
    }
    Ok(cloud)
}

/// Inventory accounts plus discovered ones. Notes and problems go to stderr;
/// `None` when the targets are unusable.
pub(crate) async fn resolve_targets(cloud: &SdkCloud, inv: &Inventory) -> anyhow::Result<Option<Vec<Target>>> {
    Ok(resolve_with_discovered(cloud, inv).await?.map(|(targets, _)| targets))
}

/// The targets, and every account discovery found (before tag filters and
/// exclusions), for coverage checks.
pub(crate) async fn resolve_with_discovered(
    cloud: &SdkCloud,
    inv: &Inventory,
) -> anyhow::Result<Option<(Vec<Target>, Vec<model::DiscoveredAccount>)>> {
    let discovered = match &inv.organization {
        Some(org) => executor::discover(cloud, org).await.with_context(|| {
            "account discovery through AWS Organizations failed; the caller needs organizations:ListAccountsForParent, ListChildren and ListTagsForResource (run from the management account or a delegated administrator)"
        })?,
        None => Vec::new(),
    };
    let resolution = planner::targets::resolve(inv, &discovered);
    for note in &resolution.notes {
        eprintln!("note: {note}");
    }
    if resolution.targets.is_empty() {
        eprintln!("warning: no target accounts: the inventory lists none and discovery found none that match");
    }
    Ok(Some((resolution.targets, discovered)))
}

pub(crate) fn settings(cloud: &SdkCloud, inv: &Inventory, concurrency: Option<u16>, verb: &str) -> executor::Settings {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    executor::Settings {
        bootstrap_role: inv.deploy.bootstrap_role.clone(),
        bootstrap_external_id: inv.deploy.bootstrap_external_id.clone(),
        concurrency: concurrency.map_or(inv.deploy.concurrency, usize::from),
        session_name: format!("rolecall-{verb}-{secs}-{}", std::process::id()),
        partition: cloud.partition(),
        interrupt: interrupt().clone(),
        host: this_host().to_owned(),
        process_alive: pid_alive,
    }
}

/// This machine's name, for change set owners: read once per process.
fn this_host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned())
    })
}

/// Whether a process of this host runs. Where that cannot be told (no
/// /proc), every owner counts as alive and only age makes a change set
/// abandoned.
fn pid_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}
