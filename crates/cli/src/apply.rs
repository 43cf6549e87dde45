//! `rolecall apply` and `rolecall profiles`: confirmation, the run, and the
//! files they write (ARN registry, profiles file or managed block).

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use model::{AccountId, Inventory, Profile, ProfilesSpec};
use planner::profiles::{ProfileSettings, ProfileSource};
use reporter::registry::{self, Registry};

use crate::{AwsArgs, InventoryArg, exit, files, orphans};
use executor::aws::SdkCloud;

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
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long)]
    pub(crate) yes: bool,
    /// Where to write the ARN registry
    #[arg(long, value_name = "PATH", default_value = crate::DEFAULT_REGISTRY)]
    registry: PathBuf,
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
    /// Also delete rolecall's stacks (or stack instances) of accounts/regions that left the inventory
    #[arg(long)]
    pub(crate) prune: bool,
    /// Seconds between two status reads while a stack operation runs
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    poll_interval: f64,
    /// Longest wait for one stack, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1800.0)]
    max_wait: f64,
}

#[derive(Args)]
pub(crate) struct ProfilesArgs {
    /// The ARN registry written by `apply`
    #[arg(long, value_name = "FILE")]
    registry: PathBuf,
    /// Write a standalone profiles file
    #[arg(long, value_name = "PATH", conflicts_with = "into", required_unless_present = "into")]
    out: Option<PathBuf>,
    /// Rewrite the rolecall block inside an AWS config file
    #[arg(long, value_name = "PATH")]
    into: Option<PathBuf>,
    /// The inventory, for its `profiles:` settings (default: source_profile default, name {account_name})
    #[arg(short, long = "inventory", value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// With --into: print the change instead of writing it
    #[arg(long)]
    diff: bool,
}

/// `--poll-interval` and `--max-wait`, bounded: no overflow on huge values,
/// and no poll loop that AWS would throttle (below 1 s only against an
/// emulator, `--endpoint-url`).
pub(crate) fn waits(poll_interval: f64, max_wait: f64, emulator: bool) -> anyhow::Result<(Duration, Duration)> {
    const DAY: f64 = 86_400.0;
    let least = if emulator { 0.01 } else { 1.0 };
    if !(least..=300.0).contains(&poll_interval) {
        bail!(
            "--poll-interval {poll_interval} is out of range: give {least}–300 seconds{}",
            if emulator {
                ""
            } else {
                " (AWS throttles faster polling; below 1 s is allowed only with --endpoint-url)"
            }
        );
    }
    if !(1.0..=DAY).contains(&max_wait) || max_wait < poll_interval {
        bail!("--max-wait {max_wait} is out of range: give 1–86400 seconds (a day), and at least --poll-interval");
    }
    Ok((
        Duration::from_secs_f64(poll_interval),
        Duration::from_secs_f64(max_wait),
    ))
}

pub(crate) async fn apply(aws: &AwsArgs, inv: &Inventory, args: &ApplyArgs) -> anyhow::Result<u8> {
    let (poll_interval, max_wait) = waits(args.poll_interval, args.max_wait, aws.endpoint_url.is_some())?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.yes && !interactive {
        eprintln!(
            "error: apply changes AWS accounts and needs confirmation, but stdin is not a terminal\n  help: review `rolecall plan -i {}` and pass --yes",
            args.inventory.inventory.display()
        );
        return Ok(exit::FAILURE);
    }
    let cloud = crate::connect(aws, inv).await?;
    let Some(mut targets) = crate::resolve_targets(&cloud, inv).await? else {
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
    if args.profiles.is_some() || args.profiles_into.is_some() {
        let planned = planner::profiles::for_targets(&ProfileSettings::of(inv, &region_order), &targets);
        check_profiles(&planned)?;
        if let Some(path) = &args.profiles_into {
            let existing = files::read_or_empty(path).with_context(|| format!("cannot read {}", path.display()))?;
            if let Err(e) = reporter::profiles::splice(&existing, &planned, "") {
                report_splice_error(path, &e);
                return Ok(exit::FAILURE);
            }
        }
    }
    let all_targets = targets.clone();
    only_accounts(
        &mut targets,
        &args.accounts,
        "targets of this inventory (see `rolecall accounts -i ...`)",
    )?;
    // Read before any stack changes: an unreadable registry must stop the
    // run here, not after it, when its results could no longer be recorded.
    let previous = orphans::previous_registry(&args.registry)?;
    let previous_entries = previous.as_ref().map(|r| r.entries.clone()).unwrap_or_default();
    let settings = crate::settings(&cloud, inv, args.concurrency, "apply");
    let desired = planner::desired(inv);
    let options = executor::ApplyOptions {
        failure_tolerance: args.failure_tolerance.unwrap_or(inv.deploy.failure_tolerance),
        poll_interval,
        max_wait,
        registered: Some(
            previous_entries
                .iter()
                .filter_map(|e| Some((AccountId::parse(&e.account_id)?, e.region.clone())))
                .collect(),
        ),
    };
    let run = match inv.deploy.via {
        model::DeployVia::Stacksets => {
            if !args.accounts.is_empty() {
                bail!("--accounts cannot narrow a stack set (its instances are deployed as one set); leave it out");
            }
            crate::stacksets::apply(&cloud, &settings, inv, &desired, &targets, args, &options).await?
        }
        model::DeployVia::BootstrapRole => {
            bootstrap_apply(
                &cloud,
                &settings,
                &desired,
                &targets,
                &all_targets,
                previous.as_ref(),
                args,
                &options,
            )
            .await?
        }
    };
    let Some((mut outcomes, kept)) = run else {
        return Ok(exit::FAILURE);
    };
    outcomes.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    // Stacks deleted by --prune leave the registry.
    let deleted = |o: &model::Outcome| o.status == model::Status::Deleted;
    let recorded: Vec<model::Outcome> = outcomes.iter().filter(|o| !deleted(o)).cloned().collect();
    let kept: Vec<registry::Entry> = kept
        .into_iter()
        .filter(|e| {
            !outcomes
                .iter()
                .any(|o| deleted(o) && o.account_id.as_str() == e.account_id && o.region == e.region)
        })
        .collect();

    // The registry records what happened, also when accounts failed.
    let registry = write_registry(&args.registry, inv, &recorded, kept, &previous_entries)?;

    let outputs = ProfileOutputs {
        standalone: args.profiles.as_deref(),
        into: args.profiles_into.as_deref(),
        diff: args.diff,
        json: args.json,
        origin: &args.inventory.inventory,
    };
    finish_run(
        inv,
        &registry,
        &region_order,
        &outputs,
        &outcomes,
        reporter::write_summary,
    )
}

/// The end of `apply` and `destroy`: the profiles where asked, then the
/// summary (JSON with --json, else `text`). Exit 0 only when every stack
/// succeeded and the profiles could be written.
pub(crate) fn finish_run(
    inv: &Inventory,
    registry: &Registry,
    region_order: &BTreeMap<AccountId, Vec<String>>,
    outputs: &ProfileOutputs<'_>,
    outcomes: &[model::Outcome],
    text: fn(&mut dyn Write, &[model::Outcome]) -> std::io::Result<()>,
) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    let written = write_profile_outputs(inv, registry, region_order, outputs, &mut out)?;
    if outputs.json {
        reporter::write_summary_json(&mut out, outcomes)?;
    } else {
        text(&mut out, outcomes)?;
    }
    out.flush()?;
    Ok(if written && outcomes.iter().all(|o| o.status.succeeded()) {
        exit::OK
    } else {
        exit::FAILURE
    })
}

/// The bootstrap-role path of apply: orphans, the confirmed plan, the
/// rollout, and `--prune`. `None`: the user said no.
#[allow(clippy::too_many_arguments)]
async fn bootstrap_apply(
    cloud: &SdkCloud,
    settings: &executor::Settings,
    desired: &model::Desired,
    targets: &[model::Target],
    all_targets: &[model::Target],
    previous: Option<&Registry>,
    args: &ApplyArgs,
    options: &executor::ApplyOptions,
) -> anyhow::Result<Option<(Vec<model::Outcome>, Vec<registry::Entry>)>> {
    let previous_entries = previous.map(|r| r.entries.clone()).unwrap_or_default();
    // With --accounts the other accounts' entries stay as they were;
    // otherwise entries that left the inventory are checked as orphans.
    let (kept, orphan_targets) = if args.accounts.is_empty() {
        (Vec::new(), orphans::targets(previous, all_targets))
    } else {
        let kept = previous_entries
            .iter()
            .filter(|e| !targets.iter().any(|t| t.account_id.as_str() == e.account_id))
            .cloned()
            .collect();
        (kept, Vec::new())
    };
    let (orphan_rows, orphan_outcomes) = orphans::observe(cloud, settings, desired, &orphan_targets, previous).await;

    // Without --yes: observe once, show the plan, ask, and act on exactly
    // what was shown.
    let mut planned = None;
    if !args.yes {
        let progress = reporter::Progress::stderr("observing", false);
        let decide = |o: &model::Observed| Some(planner::decide(desired, o));
        let (mut plan, observed) =
            executor::observe(cloud, settings, &desired.stack_name, targets, &progress, &decide).await;
        progress.finish();
        plan.entries.extend(orphan_rows);
        plan.sort();
        reporter::write_plan(&mut std::io::stdout().lock(), &plan)?;
        let changes = plan
            .entries
            .iter()
            .any(|e| e.action.changes() || e.action == model::Action::Wait);
        if changes && !confirm("Apply these changes?", "apply")? {
            return Ok(None);
        }
        planned = Some(observed);
    }

    let progress = reporter::Progress::stderr("applying", true);
    let mut outcomes = executor::apply(cloud, settings, options, desired, targets, planned.as_ref(), &progress).await;
    progress.finish();
    if args.prune {
        // Only the orphans whose stack is still there (rolecall's, as the
        // orphan check found them).
        let doomed: Vec<model::Target> = orphan_targets
            .iter()
            .filter_map(|t| {
                let regions: Vec<String> = orphan_outcomes
                    .iter()
                    .filter(|o| o.account_id == t.account_id && o.stack_id.is_some())
                    .map(|o| o.region.clone())
                    .collect();
                (!regions.is_empty()).then(|| model::Target { regions, ..t.clone() })
            })
            .collect();
        let progress = reporter::Progress::stderr("pruning", true);
        let pruned = executor::destroy(cloud, settings, options, desired, &doomed, None, &progress).await;
        progress.finish();
        outcomes.extend(orphan_outcomes.into_iter().filter(|o| {
            !pruned
                .iter()
                .any(|p| p.account_id == o.account_id && p.region == o.region)
        }));
        outcomes.extend(pruned);
    } else {
        outcomes.extend(orphan_outcomes);
    }
    Ok(Some((outcomes, kept)))
}

/// Narrows `targets` to `--accounts` (when given); an id that is not a
/// target is an error before anything happens.
/// `among` says what `targets` are, for the message.
pub(crate) fn only_accounts(targets: &mut Vec<model::Target>, accounts: &[String], among: &str) -> anyhow::Result<()> {
    if accounts.is_empty() {
        return Ok(());
    }
    let unknown: Vec<&String> = accounts
        .iter()
        .filter(|a| !targets.iter().any(|t| t.account_id.as_str() == a.as_str()))
        .collect();
    if !unknown.is_empty() {
        bail!("--accounts names {unknown:?}, which are not {among}");
    }
    targets.retain(|t| accounts.iter().any(|a| a == t.account_id.as_str()));
    Ok(())
}

/// Asks on the terminal; only `yes` goes on.
pub(crate) fn confirm(question: &str, verb: &str) -> anyhow::Result<bool> {
    eprint!("\n{question} Only 'yes' is accepted: ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let yes = answer.trim() == "yes";
    if !yes {
        eprintln!("{verb} cancelled; nothing was changed");
    }
    Ok(yes)
}

/// Where `apply` and `destroy` write profiles.
pub(crate) struct ProfileOutputs<'a> {
    pub(crate) standalone: Option<&'a Path>,
    pub(crate) into: Option<&'a Path>,
    pub(crate) diff: bool,
    /// stdout is a JSON document: a diff goes to stderr.
    pub(crate) json: bool,
    /// What the profiles were generated from, for their header.
    pub(crate) origin: &'a Path,
}

/// Writes the profiles of `registry` where asked. False when the managed
/// block was refused (nothing written then).
pub(crate) fn write_profile_outputs(
    inv: &Inventory,
    registry: &Registry,
    region_order: &BTreeMap<AccountId, Vec<String>>,
    outputs: &ProfileOutputs<'_>,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    if outputs.standalone.is_none() && outputs.into.is_none() {
        return Ok(true);
    }
    let profiles = profile_list(registry, &ProfileSettings::of(inv, region_order))?;
    let origin = outputs.origin.display().to_string();
    if let Some(path) = outputs.standalone {
        write_standalone(path, &profiles, &origin)?;
    }
    if let Some(path) = outputs.into {
        let mut stderr = std::io::stderr();
        let diff_out: &mut dyn Write = if outputs.json { &mut stderr } else { out };
        return write_into(path, &profiles, &origin, outputs.diff, diff_out);
    }
    Ok(true)
}

/// Builds and writes the registry of this run; returns it.
pub(crate) fn write_registry(
    path: &Path,
    inv: &Inventory,
    outcomes: &[model::Outcome],
    kept: Vec<registry::Entry>,
    previous: &[registry::Entry],
) -> anyhow::Result<Registry> {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let meta = registry::Meta {
        generated_at: &now,
        source_account: &inv.source_account,
        stack_name: &inv.role.stack_name,
        role_name: &inv.role.name,
    };
    let registry = registry::build(&meta, outcomes, kept, previous);
    files::write_atomic(path, &registry::to_json(&registry), 0o644)
        .with_context(|| format!("cannot write the registry {}", path.display()))?;
    eprintln!(
        "rolecall: wrote the ARN registry {} ({} entries)",
        path.display(),
        registry.entries.len()
    );
    Ok(registry)
}

fn profile_list(registry: &Registry, settings: &ProfileSettings<'_>) -> anyhow::Result<Vec<Profile>> {
    let ids: Vec<Option<AccountId>> = registry
        .entries
        .iter()
        .map(|e| AccountId::parse(&e.account_id))
        .collect();
    // Profiles follow the inventory: orphans keep their registry entry but
    // leave the profiles.
    let sources: Vec<ProfileSource<'_>> = registry
        .entries
        .iter()
        .zip(&ids)
        .filter(|(e, _)| e.status != model::Status::Orphaned.as_str())
        .filter_map(|(e, id)| {
            Some(ProfileSource {
                account_id: id.as_ref()?,
                account_name: &e.account_name,
                region: &e.region,
                role_arn: e.role_arn.as_deref(),
            })
        })
        .collect();
    let profiles = planner::profiles::profiles(settings, &sources);
    check_profiles(&profiles)?;
    Ok(profiles)
}

/// Refuses profiles the AWS CLI cannot use or that two accounts share.
fn check_profiles(profiles: &[Profile]) -> anyhow::Result<()> {
    let problems: Vec<String> = planner::profiles::problems(profiles)
        .into_iter()
        .map(|p| p.message)
        .collect();
    if !problems.is_empty() {
        bail!(
            "cannot write profiles; nothing was changed:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

fn write_standalone(path: &Path, profiles: &[Profile], origin: &str) -> anyhow::Result<()> {
    files::write_atomic(path, &reporter::profiles::standalone(profiles, origin), 0o600)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let written = profiles.iter().filter(|p| p.role_arn.is_some()).count();
    eprintln!("rolecall: wrote {written} profiles to {}", path.display());
    Ok(())
}

/// Rewrites (or with `diff` shows) the managed block. Returns false when it
/// refused to write; nothing is written then.
fn write_into(
    path: &Path,
    profiles: &[Profile],
    origin: &str,
    diff: bool,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    if diff {
        let existing = files::read_or_empty(path).with_context(|| format!("cannot read {}", path.display()))?;
        let new = match reporter::profiles::splice(&existing, profiles, origin) {
            Ok(new) => new,
            Err(e) => {
                report_splice_error(path, &e);
                return Ok(false);
            }
        };
        if new == existing {
            writeln!(out, "{}: no change", path.display())?;
        } else {
            write!(
                out,
                "{}",
                reporter::profiles::diff(&existing, &new, &path.display().to_string())
            )?;
        }
        return Ok(true);
    }
    // Spliced under the folder's lock, on the text as it is at that moment.
    let mut refused = None;
    files::update(path, 0o600, |existing| {
        Ok::<_, std::io::Error>(match reporter::profiles::splice(existing, profiles, origin) {
            Ok(new) if new == existing => None,
            Ok(new) => Some(new),
            Err(e) => {
                refused = Some(e);
                None
            }
        })
    })
    .with_context(|| format!("cannot write {}", path.display()))?;
    if let Some(e) = refused {
        report_splice_error(path, &e);
        return Ok(false);
    }
    eprintln!(
        "rolecall: {} profiles in the rolecall block of {}",
        profiles.len(),
        path.display()
    );
    Ok(true)
}

fn report_splice_error(path: &Path, e: &reporter::profiles::SpliceError) {
    match e {
        reporter::profiles::SpliceError::Conflicts(names) => eprintln!(
            "error: {} already has hand-written profiles named {} outside the rolecall block; nothing was written\n  help: rename or remove them, or change profiles.name",
            path.display(),
            names.join(", ")
        ),
        reporter::profiles::SpliceError::Damaged(why) => eprintln!(
            "error: the rolecall block in {} is damaged: {why}; nothing was written\n  help: fix or remove the markers by hand",
            path.display()
        ),
    }
}

pub(crate) fn profiles(args: &ProfilesArgs) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(&args.registry)
        .with_context(|| format!("cannot read the registry {}", args.registry.display()))?;
    let registry = registry::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.registry.display()))?;
    let inventory = match &args.inventory {
        Some(path) => match crate::load_inventory(path)? {
            Some(inv) => Some(inv),
            None => return Ok(exit::FAILURE),
        },
        None => None,
    };
    let default_spec = ProfilesSpec {
        source_profile: "default".to_owned(),
        name: planner::inventory::DEFAULT_PROFILE_NAME.to_owned(),
        region: None,
        role_session_name: None,
        duration_seconds: None,
    };
    let mut region_order = BTreeMap::new();
    if let Some(inv) = &inventory {
        for a in &inv.accounts {
            region_order.insert(a.id.clone(), a.regions(&inv.deploy.regions).to_vec());
        }
        for e in &registry.entries {
            if let Some(id) = AccountId::parse(&e.account_id) {
                region_order.entry(id).or_insert_with(|| inv.deploy.regions.clone());
            }
        }
    }
    let spec = inventory.as_ref().map_or(&default_spec, |i| &i.profiles);
    let external_id = inventory.as_ref().and_then(|i| i.role.external_id.as_deref());
    let settings = ProfileSettings {
        spec,
        role_name: &registry.role_name,
        external_id,
        region_order: &region_order,
    };
    let profiles = profile_list(&registry, &settings)?;
    let origin = args.registry.display().to_string();
    if let Some(path) = &args.out {
        write_standalone(path, &profiles, &origin)?;
    }
    if let Some(path) = &args.into
        && !write_into(path, &profiles, &origin, args.diff, &mut std::io::stdout().lock())?
    {
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::waits;

    #[test]
    fn waits_are_bounded() {
        assert!(waits(5.0, 1800.0, false).is_ok());
        assert!(waits(0.05, 10.0, true).is_ok());
        for (poll, max, emulator) in [
            (0.05, 10.0, false),
            (0.0, 10.0, true),
            (-1.0, 10.0, true),
            (f64::NAN, 10.0, true),
            (5.0, 1e300, false),
            (5.0, f64::INFINITY, false),
            (1e20, 1e20, false),
            (10.0, 5.0, false),
        ] {
            let err = waits(poll, max, emulator).unwrap_err().to_string();
            assert!(err.contains("out of range"), "{poll} {max}: {err}");
        }
    }
}
