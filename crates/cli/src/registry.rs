//! The ARN registry's bytes: read the previous document before a run, write
//! the next one after it. What the next one holds is
//! `planner::registry::next`; how it is spelled is `reporter::registry`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use model::Inventory;
use model::registry::Registry;
use planner::registry::Header;

use crate::files;

/// Where rolecall 0.2 kept every inventory's registry by default; read
/// (never written) when an inventory's own default file is not there yet.
pub(crate) const LEGACY_REGISTRY: &str = "rolecall-registry.json";

/// The registry's default path: named after the inventory, so that two
/// inventories in one folder never share a file.
pub(crate) fn default_path(inv: &Inventory) -> PathBuf {
    PathBuf::from(format!("rolecall-registry-{}.json", inv.name))
}

/// Where this run reads the previous registry and writes the next one.
pub(crate) struct Registries {
    /// Where the next registry is written.
    pub(crate) path: PathBuf,
    /// The previous registry, if there is one.
    pub(crate) previous: Option<Registry>,
}

/// The previous registry of `inv`: at `--registry` when given, else at the
/// inventory's default path, else at rolecall 0.2's default path when that
/// one is this inventory's. Read before any AWS call: a file that cannot be
/// read, or that is another inventory's registry, stops the run before
/// anything changes.
pub(crate) fn previous(given: Option<&Path>, inv: &Inventory) -> anyhow::Result<Registries> {
    if let Some(path) = given {
        let previous = read_previous(path)?;
        if let Some(r) = &previous {
            check_owner(r, inv).map_err(|why| {
                anyhow::anyhow!(
                    "{}: {why}; nothing was done\n  help: pass --registry with this inventory's own registry (or a new path); without --registry it is {}",
                    path.display(),
                    default_path(inv).display()
                )
            })?;
        }
        return Ok(Registries {
            path: path.to_path_buf(),
            previous,
        });
    }
    let path = default_path(inv);
    let mut previous = read_previous(&path)?;
    if let Some(r) = &previous {
        check_owner(r, inv).map_err(|why| {
            anyhow::anyhow!(
                "{}: {why}; nothing was done\n  help: move the file, or pass --registry",
                path.display()
            )
        })?;
    }
    let legacy = Path::new(LEGACY_REGISTRY);
    if previous.is_none() && legacy.exists() {
        match read_previous(legacy)?.map(|r| (check_owner(&r, inv), r)) {
            Some((Ok(()), r)) => {
                eprintln!(
                    "rolecall: read the previous registry from {LEGACY_REGISTRY} (an earlier rolecall's default); this run writes {}",
                    path.display()
                );
                previous = Some(r);
            }
            Some((Err(why), _)) => {
                eprintln!("note: {LEGACY_REGISTRY} is not read: {why}");
            }
            None => {}
        }
    }
    Ok(Registries { path, previous })
}

/// A registry belongs to an inventory when it names it (version 3), or,
/// for versions 1 and 2, when its stacks are the inventory's; and when its
/// source account is the inventory's.
fn check_owner(registry: &Registry, inv: &Inventory) -> Result<(), String> {
    if let Some(name) = &registry.inventory
        && name != &inv.name
    {
        return Err(format!("it is the registry of inventory {name}, not of {}", inv.name));
    }
    if registry.source_account != inv.source_account {
        return Err(format!(
            "its source account is {}, this inventory's is {}",
            registry.source_account, inv.source_account
        ));
    }
    // A version 1 or 2 registry is of one role (default): this inventory's
    // when its stacks are that role's.
    let ours = inv
        .role(model::registry::DEFAULT_ROLE)
        .map(|r| r.spec.stack_name.as_str());
    if registry.inventory.is_none()
        && let Some(e) = registry.entries.iter().find(|e| Some(e.stack_name.as_str()) != ours)
    {
        return Err(format!(
            "it is the registry of another inventory (its stacks are {}, this inventory's are {})",
            e.stack_name,
            ours.unwrap_or("of other roles")
        ));
    }
    Ok(())
}

/// The registry at `path`, or `None` when there is none yet. A file that
/// cannot be read stops the run before anything changes.
fn read_previous(path: &Path) -> anyhow::Result<Option<Registry>> {
    let text = files::read_or_empty(path).with_context(|| format!("cannot read the registry {}", path.display()))?;
    if text.is_empty() {
        return Ok(None);
    }
    planner::registry::parse(&text).map(Some).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}\n  help: fix or move the file, or pass another --registry",
            path.display()
        )
    })
}

/// The registry a file names (the `profiles` command): it must be there.
pub(crate) fn read(path: &Path) -> anyhow::Result<Registry> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the registry {}", path.display()))?;
    planner::registry::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The next registry of a run of `inv`, written to `path`; returns it.
pub(crate) fn write_next(
    path: &Path,
    inv: &Inventory,
    previous: Option<&Registry>,
    outcomes: &[model::Outcome],
    scope: planner::registry::Scope<'_>,
) -> anyhow::Result<Registry> {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let header = Header {
        generated_at: &now,
        inventory: &inv.name,
        source_account: &inv.source_account,
    };
    let registry = planner::registry::next(previous, &header, outcomes, scope);
    files::write_atomic(path, &reporter::registry::to_json(&registry), 0o644)
        .with_context(|| format!("cannot write the registry {}", path.display()))?;
    eprintln!(
        "rolecall: wrote the ARN registry {} ({} entries)",
        path.display(),
        registry.entries.len()
    );
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use model::registry::{DEFAULT_ROLE, Entry, Registry};
    use model::{AccountId, Status};

    use super::check_owner;

    fn inventory(name: &str) -> model::Inventory {
        let text = "version: 1\nsource_account: \"111111111111\"\naccounts:\n  - id: \"222222222222\"\n";
        let read = |_: &Path| Ok(String::new());
        let (mut inv, _) = planner::inventory::parse(text, Path::new("inv/x.yaml"), &read).unwrap();
        inv.name = name.to_owned();
        inv
    }

    fn registry(inventory: Option<&str>, source: &str, stack: &str) -> Registry {
        Registry {
            schema_version: 3,
            generated_at: "2026-12-01T00:00:00Z".into(),
            inventory: inventory.map(str::to_owned),
            source_account: AccountId::parse(source).unwrap(),
            entries: vec![Entry {
                account_id: AccountId::parse("222222222222").unwrap(),
                account_name: "a".into(),
                role: DEFAULT_ROLE.into(),
                role_name: "RolecallTarget".into(),
                stack_name: stack.into(),
                region: "us-east-1".into(),
                stack_id: None,
                role_arn: None,
                outputs: Default::default(),
                fingerprint: None,
                status: Status::Created,
                error: None,
            }],
        }
    }

    #[test]
    fn a_registry_is_only_read_by_its_own_inventory() {
        let admin = inventory("admin");
        let ours = "rolecall-target-role";
        assert_eq!(
            check_owner(&registry(Some("admin"), "111111111111", ours), &admin),
            Ok(())
        );
        assert_eq!(
            check_owner(&registry(Some("readonly"), "111111111111", ours), &admin),
            Err("it is the registry of inventory readonly, not of admin".to_owned())
        );
        assert_eq!(
            check_owner(&registry(Some("admin"), "999999999999", ours), &admin),
            Err("its source account is 999999999999, this inventory's is 111111111111".to_owned())
        );
        // Versions 1 and 2 do not name their inventory: their stacks do.
        assert_eq!(check_owner(&registry(None, "111111111111", ours), &admin), Ok(()));
        assert_eq!(
            check_owner(&registry(None, "111111111111", "rolecall-readonly"), &admin),
            Err("it is the registry of another inventory (its stacks are rolecall-readonly, this inventory's are rolecall-target-role)".to_owned())
        );
    }
}
