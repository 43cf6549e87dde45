//! What every command sets up before its own work: the inventory read and
//! validated, the runtime with its signal handling, the connection to AWS,
//! the targets, and the executor's settings for the run.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use executor::aws::{Connection, SdkCloud};
use model::{Inventory, Target};

use crate::exit;

#[derive(Args)]
pub(crate) struct AwsArgs {
    /// Send every AWS call to this endpoint (e.g. a local emulator)
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// The caller's region: STS calls go there, and its partition (aws, aws-us-gov, aws-cn …) is the one of every ARN rolecall builds; Organizations goes to that partition's home region (default: the AWS config, else the inventory's first deploy.regions)
    #[arg(long, global = true, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// AWS profile for the caller's credentials (default: the standard chain)
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) profile: Option<String>,
}

#[derive(Args)]
pub(crate) struct InventoryArg {
    /// The inventory file
    #[arg(short, long = "inventory", value_name = "FILE")]
    pub(crate) inventory: PathBuf,
}

/// Ctrl-C and SIGTERM of this process, as the pipelines see them.
pub(crate) fn interrupt() -> &'static executor::interrupt::Interrupt {
    static INTERRUPT: std::sync::OnceLock<executor::interrupt::Interrupt> = std::sync::OnceLock::new();
    INTERRUPT.get_or_init(Default::default)
}

/// Runs a command on a runtime that listens for Ctrl-C and SIGTERM. The
/// first one stops new work: the command writes what is known, prints its
/// summary and exits 130. The second exits at once.
/// A value from async work, on a runtime of its own (a command that is
/// otherwise offline).
pub(crate) fn block_on_value<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}

pub(crate) fn block_on(work: impl std::future::Future<Output = anyhow::Result<u8>>) -> anyhow::Result<u8> {
    // One thread: rolecall's own work per call is small next to the SDK's,
    // and at AWS's rates (100 AssumeRole a second) a run needs a fraction
    // of a core; a second worker only added cross-thread wake-ups (CPU) at
    // the same wall time. Nothing blocks it: file locks and writes go to
    // the blocking threads (`files`), so the calls in flight and the
    // second Ctrl-C are always served.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = runtime.block_on(async {
        tokio::spawn(listen_for_signals());
        work.await
    });
    // Not waiting for a prompt's read of stdin that Ctrl-C abandoned; every
    // file write was awaited.
    runtime.shutdown_background();
    let code = code?;
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

/// The cloud of the caller without an inventory (`registry get` of an S3
/// object): the caller's region from the flags or the AWS config.
pub(crate) async fn connect_caller(args: &AwsArgs) -> SdkCloud {
    let conn = Connection {
        endpoint_url: args.endpoint_url.clone(),
        region: args.region.clone(),
        profile: args.profile.clone(),
        default_region: None,
    };
    SdkCloud::new(executor::aws::load_config(&conn).await)
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
        // A role that targets by tag needs every discovered account's tags.
        Some(org) => executor::discover(cloud, org, planner::targets::needs_tags(inv)).await.with_context(|| {
            "account discovery through AWS Organizations failed; the caller needs organizations:ListAccountsForParent, ListChildren and ListTagsForResource (run from the management account or a delegated administrator)"
        })?,
        None => Vec::new(),
    };
    let mut resolution = planner::targets::resolve(inv, &discovered);
    // Listed accounts without a name: Organizations' name when the caller
    // may read it, else the id (said with -v).
    let unnamed = planner::targets::unnamed(inv, &discovered);
    if !unnamed.is_empty() {
        match executor::account_names(cloud, &unnamed).await {
            Ok(names) => planner::targets::name_listed(&mut resolution.targets, &names),
            Err(e) => tracing::info!(
                "listed accounts without a name are shown by id: their names could not be read from Organizations ({e})"
            ),
        }
    }
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
        max_in_flight: inv.deploy.max_in_flight,
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
