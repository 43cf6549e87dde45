//! Which accounts and regions a run acts on: inventory accounts, plus the
//! accounts Organizations discovery found that carry every required tag,
//! minus `organization.exclude`.

use std::collections::BTreeMap;

use model::{DiscoveredAccount, Inventory, Target, TargetSource};

/// The resolved targets (sorted by account id) and notes about accounts
/// that were left out, for the user to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
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
            .map(|t| t.with_role(model::registry::DEFAULT_ROLE))
            .collect(),
        notes,
    }
}
