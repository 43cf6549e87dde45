//! `rolecall profiles`, and the profiles `apply` and `destroy` write: the
//! standalone file or the managed block of a user's config, checked before
//! a run and written after it, then the run's summary and exit code.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use model::registry::Registry;
use model::{AccountId, Inventory, Profile, ProfilesSpec};
use planner::profiles::{ProfileSettings, ProfileSource};

use crate::{exit, files};

#[derive(Args)]
pub(crate) struct ProfilesArgs {
    /// The ARN registry written by `apply` (a file: offline; an S3 object: read with the caller's credentials)
    #[arg(long, value_name = "PATH|s3://BUCKET/KEY")]
    registry: String,
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

/// Where `apply` and `destroy` write profiles.
pub(crate) struct ProfileOutputs<'a> {
    pub(crate) standalone: Option<&'a Path>,
    pub(crate) into: Option<&'a Path>,
    pub(crate) diff: bool,
    /// stdout is a JSON document: a diff goes to stderr.
    pub(crate) json: bool,
    /// Every stack in the text summary, the unchanged too.
    pub(crate) all: bool,
    /// What the profiles were generated from, for their header.
    pub(crate) origin: &'a Path,
}

/// Writes the profiles of `registry` where asked. False when the managed
/// block was refused (nothing written then).
pub(crate) async fn write_profile_outputs(
    inv: &Inventory,
    registry: &Registry,
    region_order: &BTreeMap<AccountId, Vec<String>>,
    outputs: &ProfileOutputs<'_>,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    if outputs.standalone.is_none() && outputs.into.is_none() {
        return Ok(true);
    }
    let profiles = inventory_profiles(inv, registry, region_order)?;
    let origin = outputs.origin.display().to_string();
    if let Some(path) = outputs.standalone {
        write_standalone(path, &profiles, &origin).await?;
    }
    if let Some(path) = outputs.into {
        let mut stderr = std::io::stderr();
        let diff_out: &mut dyn Write = if outputs.json { &mut stderr } else { out };
        return write_into(path, &profiles, &origin, &inv.name, outputs.diff, diff_out).await;
    }
    Ok(true)
}

/// The end of `apply` and `destroy`: the profiles where asked, then the
/// summary (JSON with --json, else `text`). Exit 0 only when every stack
/// succeeded and the profiles could be written.
pub(crate) async fn finish_run(
    inv: &Inventory,
    registry: &Registry,
    region_order: &BTreeMap<AccountId, Vec<String>>,
    outputs: &ProfileOutputs<'_>,
    outcomes: &[model::Outcome],
    text: fn(&mut dyn Write, &[model::Outcome], bool) -> std::io::Result<()>,
) -> anyhow::Result<u8> {
    let mut out = std::io::stdout();
    let written = write_profile_outputs(inv, registry, region_order, outputs, &mut out).await?;
    let mut out = out.lock();
    if outputs.json {
        reporter::write_summary_json(&mut out, outcomes)?;
    } else {
        text(&mut out, outcomes, outputs.all)?;
    }
    out.flush()?;
    Ok(if written && outcomes.iter().all(|o| o.status.succeeded()) {
        exit::OK
    } else {
        exit::FAILURE
    })
}

/// Profile names of discovered accounts are known only once the targets
/// are: checked (and the user's config) before any account is touched, not
/// after a long rollout. False when the managed block would be refused.
pub(crate) fn check_before_run(
    inv: &Inventory,
    targets: &[model::Target],
    region_order: &BTreeMap<AccountId, Vec<String>>,
    into: Option<&Path>,
) -> anyhow::Result<bool> {
    let planned: Vec<Profile> = inv
        .roles
        .iter()
        .flat_map(|role| {
            let settings = ProfileSettings::of(role, region_order);
            planner::profiles::for_targets(&settings, &role_targets(targets, &role.key))
        })
        .collect();
    check_profiles(&planned)?;
    if let Some(path) = into {
        let existing = files::read_or_empty(path).with_context(|| format!("cannot read {}", path.display()))?;
        if let Err(e) = reporter::profiles::splice(&existing, &planned, "", &inv.name) {
            report_splice_error(path, &inv.name, &e);
            return Ok(false);
        }
    }
    Ok(true)
}

/// The targets that get `role`, each with that role's regions.
fn role_targets(targets: &[model::Target], role: &str) -> Vec<model::Target> {
    targets
        .iter()
        .filter_map(|t| {
            let regions = &t.roles.iter().find(|r| r.role == role)?.regions;
            Some(model::Target {
                regions: regions.clone(),
                ..t.clone()
            })
        })
        .collect()
}

/// The profiles of every role of the inventory, from the registry's
/// entries of that role; checked together (a name two roles generate is
/// refused).
fn inventory_profiles(
    inv: &Inventory,
    registry: &Registry,
    region_order: &BTreeMap<AccountId, Vec<String>>,
) -> anyhow::Result<Vec<Profile>> {
    let mut all = Vec::new();
    for role in &inv.roles {
        all.extend(profile_list(
            registry,
            Some(&role.key),
            &ProfileSettings::of(role, region_order),
        ));
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    check_profiles(&all)?;
    Ok(all)
}

/// The profiles of the registry's entries (of `role`, when given).
fn profile_list(registry: &Registry, role: Option<&str>, settings: &ProfileSettings<'_>) -> Vec<Profile> {
    // Profiles follow the inventory: orphans keep their registry entry but
    // leave the profiles.
    let sources: Vec<ProfileSource<'_>> = registry
        .entries
        .iter()
        .filter(|e| e.status != model::Status::Orphaned)
        .filter(|e| role.is_none_or(|r| r == e.role))
        .map(|e| ProfileSource {
            account_id: &e.account_id,
            account_name: &e.account_name,
            region: &e.region,
            role_arn: e.role_arn.as_deref(),
            role_name: Some(&e.role_name),
        })
        .collect();
    planner::profiles::profiles(settings, &sources)
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

async fn write_standalone(path: &Path, profiles: &[Profile], origin: &str) -> anyhow::Result<()> {
    files::write_atomic(path, &reporter::profiles::standalone(profiles, origin), 0o600)
        .await
        .with_context(|| format!("cannot write {}", path.display()))?;
    let written = profiles.iter().filter(|p| p.role_arn.is_some()).count();
    eprintln!("rolecall: wrote {written} profiles to {}", path.display());
    Ok(())
}

/// Rewrites (or with `diff` shows) the managed block. Returns false when it
/// refused to write; nothing is written then.
async fn write_into(
    path: &Path,
    profiles: &[Profile],
    origin: &str,
    inventory: &str,
    diff: bool,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    if diff {
        let existing = files::read(path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        let new = match reporter::profiles::splice(&existing, profiles, origin, inventory) {
            Ok(new) => new,
            Err(e) => {
                report_splice_error(path, inventory, &e);
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
        Ok::<_, std::io::Error>(
            match reporter::profiles::splice(existing, profiles, origin, inventory) {
                Ok(new) if new == existing => None,
                Ok(new) => Some(new),
                Err(e) => {
                    refused = Some(e);
                    None
                }
            },
        )
    })
    .await
    .with_context(|| format!("cannot write {}", path.display()))?;
    if let Some(e) = refused {
        report_splice_error(path, inventory, &e);
        return Ok(false);
    }
    eprintln!(
        "rolecall: {} profiles in the rolecall block of {}",
        profiles.len(),
        path.display()
    );
    Ok(true)
}

fn report_splice_error(path: &Path, inventory: &str, e: &reporter::profiles::SpliceError) {
    match e {
        reporter::profiles::SpliceError::Conflicts(names) => eprintln!(
            "error: {} already has hand-written profiles named {} outside the rolecall block; nothing was written\n  help: rename or remove them, or change profiles.name",
            path.display(),
            names.join(", ")
        ),
        reporter::profiles::SpliceError::Damaged(why) => eprintln!(
            "error: the rolecall blocks in {} are damaged: {why}; nothing was written\n  help: fix or remove the markers by hand",
            path.display()
        ),
        reporter::profiles::SpliceError::OtherInventory {
            inventory: other,
            names,
        } => eprintln!(
            "error: inventory {inventory} generates profiles named {}, which {} already has in {}; nothing was written\n  help: give one of the two inventories another profiles.name (a prefix, or {{role}}) so that each profile name has one owner",
            names.join(", "),
            match other {
                Some(other) => format!("inventory {other}"),
                None => "the unnamed rolecall block (written by rolecall 0.2 for another inventory)".to_owned(),
            },
            path.display()
        ),
    }
}

pub(crate) fn profiles(aws: &crate::setup::AwsArgs, args: &ProfilesArgs) -> anyhow::Result<u8> {
    let inventory = match &args.inventory {
        Some(path) => match crate::setup::load_inventory(path)? {
            Some(inv) => Some(inv),
            None => return Ok(exit::FAILURE),
        },
        None => None,
    };
    let location = planner::registry::location(&args.registry).map_err(|why| anyhow::anyhow!("--registry: {why}"))?;
    let registry = match &location {
        model::registry::Location::File(path) => crate::registry::read(path)?,
        model::registry::Location::S3 { .. } => crate::setup::block_on_value(async {
            let cloud = crate::setup::connect_caller(aws).await;
            crate::registry::read_at(&cloud, &location)
                .await?
                .ok_or_else(|| anyhow::anyhow!("there is no registry at {location}"))
        })?,
    };
    let default_spec = ProfilesSpec {
        source_profile: "default".to_owned(),
        name: planner::inventory::DEFAULT_PROFILE_NAME.to_owned(),
        region: None,
        role_session_name: None,
        duration_seconds: None,
        mfa_serial: None,
    };
    let mut region_order = BTreeMap::new();
    if let Some(inv) = &inventory {
        for a in &inv.accounts {
            region_order.insert(a.id.clone(), a.regions(&inv.deploy.regions).to_vec());
        }
        for e in &registry.entries {
            region_order
                .entry(e.account_id.clone())
                .or_insert_with(|| inv.deploy.regions.clone());
        }
    }
    let profiles = match &inventory {
        Some(inv) => inventory_profiles(inv, &registry, &region_order)?,
        None => {
            let settings = ProfileSettings {
                spec: &default_spec,
                role: model::registry::DEFAULT_ROLE,
                // Every entry names its role; this only fills in what they lack.
                role_name: planner::inventory::DEFAULT_ROLE_NAME,
                external_id: None,
                mfa_serial: None,
                region_order: &region_order,
            };
            let profiles = profile_list(&registry, None, &settings);
            check_profiles(&profiles)?;
            profiles
        }
    };
    let origin = args.registry.clone();
    crate::setup::block_on_value(write_profiles_command(
        args,
        inventory.as_ref(),
        &registry,
        &profiles,
        &origin,
    ))
}

/// `rolecall profiles`' writes, on a runtime of their own.
async fn write_profiles_command(
    args: &ProfilesArgs,
    inventory: Option<&Inventory>,
    registry: &Registry,
    profiles: &[Profile],
    origin: &str,
) -> anyhow::Result<u8> {
    if let Some(path) = &args.out {
        write_standalone(path, profiles, origin).await?;
    }
    if let Some(path) = &args.into {
        // The block is the inventory's: its name comes from the inventory,
        // else from the registry (schema 3 records it).
        let Some(name) = inventory.map(|i| i.name.as_str()).or(registry.inventory.as_deref()) else {
            bail!(
                "--into writes an inventory's own block, and this registry does not say which inventory it is of\n  help: pass -i with the inventory that wrote {}",
                args.registry
            );
        };
        if !write_into(path, profiles, origin, name, args.diff, &mut std::io::stdout()).await? {
            return Ok(exit::FAILURE);
        }
    }
    Ok(exit::OK)
}
