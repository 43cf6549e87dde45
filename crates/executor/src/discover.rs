//! Finds target accounts through AWS Organizations: the accounts under the
//! given OUs (and their descendants when recursive), with their tags when a
//! tag filter needs them.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use model::{DiscoveredAccount, OrgAccount, OrgDiscovery};

use crate::cloud::{CloudError, Organization};

/// Organizations allows only a few calls per second; more parallelism than
/// this only earns throttling.
const ORG_CONCURRENCY: usize = 4;

#[derive(Debug, thiserror::Error)]
#[error("cannot list accounts under {parent}: {source}")]
pub struct DiscoveryError {
    pub parent: String,
    #[source]
    pub source: CloudError,
}

/// Above this many accounts, one paginated ListAccounts (20 a page) costs
/// fewer calls than a DescribeAccount each.
const DESCRIBE_AT_MOST: usize = 20;

/// The Organizations names of `accounts` (listed in the inventory without
/// a name): DescribeAccount for a few, ListAccounts for many. An account
/// Organizations does not know is left out; a caller that may not read
/// Organizations gets the error (and the ids stay the names).
pub async fn account_names<C: Organization>(
    cloud: &C,
    accounts: &[model::AccountId],
) -> Result<BTreeMap<model::AccountId, String>, CloudError> {
    let found: Vec<OrgAccount> = if accounts.len() > DESCRIBE_AT_MOST {
        cloud.list_organization_accounts().await?
    } else {
        stream::iter(accounts)
            .map(|id| cloud.describe_account(id))
            .buffer_unordered(ORG_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .collect()
    };
    let wanted: std::collections::BTreeSet<&model::AccountId> = accounts.iter().collect();
    Ok(found
        .into_iter()
        .filter(|a| wanted.contains(&a.id) && !a.name.is_empty())
        .map(|a| (a.id, a.name))
        .collect())
}

/// Every ACTIVE account under `org.ous`, sorted by id, each once. With
/// `tags` (a tag filter somewhere in the inventory), each with its tags.
pub async fn discover<C: Organization>(
    cloud: &C,
    org: &OrgDiscovery,
    tags: bool,
) -> Result<Vec<DiscoveredAccount>, DiscoveryError> {
    let mut found: BTreeMap<String, DiscoveredAccount> = BTreeMap::new();
    let mut level: Vec<String> = org.ous.clone();
    let mut seen_parents = std::collections::BTreeSet::new();
    // The OUs above each parent, from the inventory's OU down to it.
    let mut chains: BTreeMap<String, Vec<String>> = level.iter().map(|ou| (ou.clone(), vec![ou.clone()])).collect();
    while !level.is_empty() {
        level.retain(|p| seen_parents.insert(p.clone()));
        let results: Vec<(String, Vec<OrgAccount>, Vec<String>)> = stream::iter(level.iter().cloned())
            .map(|parent| async move {
                let wrap = |source| DiscoveryError {
                    parent: parent.clone(),
                    source,
                };
                let accounts = cloud.list_accounts_for_parent(&parent).await.map_err(wrap)?;
                let children = if org.recursive {
                    cloud.list_child_ous(&parent).await.map_err(wrap)?
                } else {
                    Vec::new()
                };
                Ok::<_, DiscoveryError>((parent, accounts, children))
            })
            .buffered(ORG_CONCURRENCY)
            .try_collect()
            .await?;
        level = Vec::new();
        for (parent, accounts, children) in results {
            let chain = chains.get(&parent).cloned().unwrap_or_else(|| vec![parent.clone()]);
            for a in accounts.into_iter().filter(OrgAccount::is_active) {
                found.entry(a.id.to_string()).or_insert(DiscoveredAccount {
                    id: a.id,
                    name: a.name,
                    parent: parent.clone(),
                    ous: chain.clone(),
                    tags: BTreeMap::new(),
                });
            }
            for child in &children {
                chains
                    .entry(child.clone())
                    .or_insert_with(|| [chain.clone(), vec![child.clone()]].concat());
            }
            level.extend(children);
        }
    }
    if tags || !org.tags.is_empty() {
        let tagged: Vec<(String, Vec<(String, String)>)> = stream::iter(found.values().map(|a| a.id.clone()))
            .map(|id| async move {
                let tags = cloud.list_account_tags(&id).await.map_err(|source| DiscoveryError {
                    parent: format!("account {id} (reading its tags)"),
                    source,
                })?;
                Ok::<_, DiscoveryError>((id.to_string(), tags))
            })
            .buffer_unordered(ORG_CONCURRENCY)
            .try_collect()
            .await?;
        for (id, tags) in tagged {
            if let Some(a) = found.get_mut(&id) {
                a.tags = tags.into_iter().collect();
            }
        }
    }
    Ok(found.into_values().collect())
}
