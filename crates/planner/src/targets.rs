//! Which accounts and regions a run acts on: inventory accounts, plus the
//! accounts Organizations discovery found that carry every required tag,
//! minus `organization.exclude`.

use std::collections::BTreeMap;

use model::{DiscoveredAccount, Inventory, Target, TargetRole, TargetSource};

/// The resolved targets (sorted by account id) and notes about accounts
/// that were left out, for the user to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
}

/// `targets` narrowed to the stacks in `keep` (account, role, region):
/// each target with only those roles and regions, and the targets left
/// with none dropped (what `--prune` deletes, what `--revert-drift` reverts).
pub fn narrowed(
    targets: &[Target],
    keep: &std::collections::BTreeSet<(model::AccountId, String, String)>,
) -> Vec<Target> {
    targets
        .iter()
        .filter_map(|t| {
            let roles: Vec<TargetRole> = t
                .roles
                .iter()
                .filter_map(|r| {
                    let regions: Vec<String> = r
                        .regions
                        .iter()
                        .filter(|region| keep.contains(&(t.account_id.clone(), r.role.clone(), (*region).clone())))
                        .cloned()
                        .collect();
                    (!regions.is_empty()).then(|| TargetRole {
                        role: r.role.clone(),
                        regions,
                    })
                })
                .collect();
            (!roles.is_empty()).then(|| Target {
                regions: roles.iter().flat_map(|r| r.regions.clone()).collect(),
                roles,
                ..t.clone()
            })
        })
        .collect()
}

/// Listed accounts the inventory gives no name and discovery did not find:
/// their names are asked of Organizations.
pub fn unnamed(inv: &Inventory, discovered: &[DiscoveredAccount]) -> Vec<model::AccountId> {
    let found: std::collections::BTreeSet<&model::AccountId> = discovered.iter().map(|d| &d.id).collect();
    inv.accounts
        .iter()
        .filter(|a| a.name.is_none() && !found.contains(&a.id))
        .map(|a| a.id.clone())
        .collect()
}

/// The Organizations names of listed accounts without one (see
/// `unnamed`); the others keep theirs (the id where Organizations gave none).
pub fn name_listed(targets: &mut [Target], names: &BTreeMap<model::AccountId, String>) {
    for t in targets.iter_mut().filter(|t| t.source == TargetSource::Inventory) {
        if let Some(name) = names.get(&t.account_id) {
            t.account_name.clone_from(name);
        }
    }
}

pub fn resolve(inv: &Inventory, discovered: &[DiscoveredAccount]) -> Resolution {
    let mut notes = Vec::new();
    let mut by_id: BTreeMap<String, Target> = BTreeMap::new();
    let excluded = |id: &model::AccountId| inv.organization.as_ref().is_some_and(|o| o.exclude.contains(id));

    for a in &inv.accounts {
        if excluded(&a.id) {
            notes.push(format!(
                "{} is listed in accounts but excluded by organization.exclude",
                a.id
            ));
            continue;
        }
        let org_name = discovered.iter().find(|d| d.id == a.id).map(|d| d.name.clone());
        by_id.insert(
            a.id.to_string(),
            Target {
                account_id: a.id.clone(),
                account_name: a.name.clone().or(org_name).unwrap_or_else(|| a.id.to_string()),
                regions: a.regions(&inv.deploy.regions).to_vec(),
                source: TargetSource::Inventory,
                parent: discovered.iter().find(|d| d.id == a.id).map(|d| d.parent.clone()),
                roles: Vec::new(),
            },
        );
    }

    let required = inv.organization.as_ref().map(|o| &o.tags);
    for d in discovered {
        if by_id.contains_key(d.id.as_str()) || excluded(&d.id) {
            continue;
        }
        if let Some(required) = required
            && !required.iter().all(|(k, v)| d.tags.get(k) == Some(v))
        {
            continue;
        }
        if d.id == inv.source_account && !inv.allow_source_account {
            notes.push(format!(
                "{} ({}) is the source account; skipped (set allow_source_account: true to include it)",
                d.id, d.name
            ));
            continue;
        }
        by_id.insert(
            d.id.to_string(),
            Target {
                account_id: d.id.clone(),
                account_name: d.name.clone(),
                regions: inv.deploy.regions.clone(),
                source: TargetSource::Organization,
                parent: Some(d.parent.clone()),
                roles: Vec::new(),
            },
        );
    }
    Resolution {
        targets: by_id
            .into_values()
            .filter_map(|t| with_roles(inv, discovered, t))
            .collect(),
        notes,
    }
}

/// A role of the catalog targets by tag: discovery reads every account's
/// tags.
pub fn needs_tags(inv: &Inventory) -> bool {
    inv.roles
        .iter()
        .any(|r| r.targets.as_ref().is_some_and(|t| !t.tags.is_empty()))
}

/// The target with the roles of the catalog it gets, each in its regions;
/// `None` when it gets none.
///
/// A role goes to an account when its `targets` (if any) take it: under
/// one of `ous` (at any depth of what discovery walked) or listed in
/// `accounts`, when either is given; with every tag of `tags` (the
/// account's Organizations tags, and its `tags` in the inventory); not in
/// `exclude`. Its regions are its own `regions` (else `deploy.regions`);
/// for an account that lists its own `regions`, those of them the role's
/// list has, in the role's order (the account's, without role regions).
fn with_roles(inv: &Inventory, discovered: &[DiscoveredAccount], mut target: Target) -> Option<Target> {
    let found = discovered.iter().find(|d| d.id == target.account_id);
    let listed = inv.accounts.iter().find(|a| a.id == target.account_id);
    let tags: BTreeMap<&String, &String> = found
        .iter()
        .flat_map(|d| &d.tags)
        .chain(listed.iter().flat_map(|a| &a.tags))
        .collect();
    let mut regions: Vec<String> = Vec::new();
    target.roles = inv
        .roles
        .iter()
        .filter(|role| {
            let Some(t) = &role.targets else { return true };
            let by_place = !t.ous.is_empty() || !t.accounts.is_empty();
            let placed = t.accounts.contains(&target.account_id)
                || found.is_some_and(|d| d.ous.iter().any(|ou| t.ous.contains(ou)));
            (!by_place || placed)
                && t.tags.iter().all(|(k, v)| tags.get(k) == Some(&v))
                && !t.exclude.contains(&target.account_id)
        })
        .filter_map(|role| {
            let own = listed.and_then(|a| a.regions.as_ref());
            let role_regions: Vec<String> = match (&role.regions, own) {
                (Some(r), Some(own)) => r.iter().filter(|x| own.contains(x)).cloned().collect(),
                (Some(r), None) => r.clone(),
                (None, _) => target.regions.clone(),
            };
            for r in &role_regions {
                if !regions.contains(r) {
                    regions.push(r.clone());
                }
            }
            (!role_regions.is_empty()).then(|| TargetRole {
                role: role.key.clone(),
                regions: role_regions,
            })
        })
        .collect();
    target.regions = regions;
    (!target.roles.is_empty()).then_some(target)
}
