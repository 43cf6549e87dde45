//! `accounts:` and `organization:`: listed and discovered targets.

use std::collections::BTreeMap;

use model::{AccountEntry, OrgDiscovery};

use super::raw::*;
use super::*;
use crate::names;

impl Validator<'_> {
    pub(super) fn accounts(&mut self, raw: Vec<RawAccount>) -> Vec<AccountEntry> {
        let mut out: Vec<AccountEntry> = Vec::new();
        let mut names_seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, account) in raw.into_iter().enumerate() {
            let path = format!("accounts[{i}]");
            let id = self.account_id(&format!("{path}.id"), &account.id);
            if let Some(name) = &account.name {
                if name.trim().is_empty() {
                    self.error(
                        &format!("{path}.name"),
                        "the name is empty",
                        "give the account a short name, or remove the key",
                    );
                } else if let Some(first) = names_seen.insert(name.clone(), i) {
                    self.error(
                        &format!("{path}.name"),
                        format!("name \"{name}\" is already used by accounts[{first}]"),
                        "give every account a distinct name",
                    );
                }
            }
            if let Some(regions) = &account.regions {
                self.regions(&format!("{path}.regions"), regions);
            }
            let tags = account.tags.unwrap_or_default();
            let Some(id) = id else { continue };
            if let Some(first) = out.iter().position(|a| a.id == id) {
                self.error(
                    &format!("{path}.id"),
                    format!("account {id} is already listed as accounts[{first}]"),
                    "list every account once; merge the two entries",
                );
                continue;
            }
            out.push(AccountEntry {
                id,
                name: account.name,
                regions: account.regions,
                tags,
            });
        }
        out
    }

    pub(super) fn organization(&mut self, raw: RawOrganization) -> OrgDiscovery {
        let ous = raw.ous.unwrap_or_default();
        if ous.is_empty() {
            self.error(
                "organization.ous",
                "no OUs to discover accounts from",
                "list OU ids (ou-xxxx-xxxxxxxx) or the root id (r-xxxx)",
            );
        }
        for (i, ou) in ous.iter().enumerate() {
            if !names::is_ou_or_root(ou) {
                self.error(&format!("organization.ous[{i}]"), format!("\"{ou}\" is not an OU id or root id"), "use ids like ou-ab12-cd34ef56 or r-ab12 (aws organizations list-roots / list-organizational-units-for-parent)");
            }
        }
        let mut exclude = Vec::new();
        for (i, s) in raw.exclude.unwrap_or_default().iter().enumerate() {
            if let Some(id) = self.account_id(&format!("organization.exclude[{i}]"), s) {
                exclude.push(id);
            }
        }
        OrgDiscovery {
            ous,
            recursive: raw.recursive,
            tags: raw.tags.unwrap_or_default(),
            exclude,
        }
    }
}
