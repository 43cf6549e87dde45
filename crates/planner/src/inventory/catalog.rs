//! `role:` or `roles:`: the catalog of roles, each checked as `role:` is
//! (under its own path, `roles.<key>`), with where it goes (`targets`,
//! `regions`), its profile overrides, and the rules across roles.

use std::collections::BTreeMap;

use model::{AccountId, CatalogRole, ProfilesSpec, RoleTargets};

use super::raw::*;
use super::*;
use crate::names;

impl Validator<'_> {
    /// The catalog: `(path, role)` per role, in key order (`None` where the
    /// role had errors).
    pub(super) fn catalog(
        &mut self,
        role: Option<RawRole>,
        roles: Option<BTreeMap<String, RawRole>>,
        source: Option<&AccountId>,
        profiles: Option<&ProfilesSpec>,
    ) -> Vec<(String, Option<CatalogRole>)> {
        let entries: Vec<(String, String, RawRole)> = match (role, roles) {
            (Some(_), Some(_)) => {
                self.error(
                    "roles",
                    "`role` and `roles` are both given",
                    "a single role is `role:`; a catalog is `roles:`, one key per role (move the role under roles: with a key, e.g. admin)",
                );
                return Vec::new();
            }
            (None, Some(map)) => {
                if map.is_empty() {
                    self.error(
                        "roles",
                        "the catalog has no role",
                        "give each role a key under roles:, or use role: for one",
                    );
                }
                map.into_iter().map(|(k, r)| (format!("roles.{k}"), k, r)).collect()
            }
            (role, None) => vec![(
                "role".to_owned(),
                model::registry::DEFAULT_ROLE.to_owned(),
                role.unwrap_or_default(),
            )],
        };
        let several = entries.len() > 1;
        let mut out = Vec::new();
        let mut role_named = false;
        for (at, key, raw) in entries {
            self.role_at = at.clone();
            if at != "role"
                && let Err(why) = names::check_inventory_name(&key)
            {
                self.error(
                    &at,
                    format!("\"{key}\" is not a role key: {why}"),
                    "use 1-64 letters, digits, `-` and `_` (admin, read-only, deploy)",
                );
            }
            let regions = raw.regions.clone();
            if let Some(list) = &regions {
                let path = self.role_key("regions");
                if list.is_empty() {
                    self.error(
                        &path,
                        "the list is empty",
                        "list the role's regions, or remove the key for deploy.regions",
                    );
                }
                self.regions(&path, list);
            }
            let targets = raw.targets.clone().map(|t| self.role_targets(t));
            let overrides = raw.profiles.clone().unwrap_or_default();
            if let Some(name) = &overrides.name
                && let Err(why) = crate::profiles::check_template(name)
            {
                self.error(
                    &self.role_key("profiles.name"),
                    why,
                    "see profiles.name in inventory/README.md",
                );
            }
            if let Some(profile) = &overrides.source_profile
                && let Err(why) = crate::profiles::check_name(profile)
            {
                self.error(
                    &self.role_key("profiles.source_profile"),
                    format!("\"{profile}\" cannot be an AWS CLI profile name: {why}"),
                    "use the name of a profile in your AWS config",
                );
            }
            let profiles = profiles.map(|p| ProfilesSpec {
                name: overrides.name.clone().unwrap_or_else(|| p.name.clone()),
                source_profile: overrides
                    .source_profile
                    .clone()
                    .unwrap_or_else(|| p.source_profile.clone()),
                ..p.clone()
            });
            if several
                && overrides.name.is_none()
                && !role_named
                && profiles.as_ref().is_some_and(|p| !p.name.contains("{role}"))
            {
                role_named = true;
                self.error(
                    "profiles.name",
                    "with several roles, each profile name must say its role, but profiles.name has no {role}",
                    "add {role}, e.g. name: \"{account_name}-{role}\" (or give each role its own profiles.name)",
                );
            }
            let mut raw = raw;
            if at != "role" && raw.stack_name.is_none() && names::check_inventory_name(&key).is_ok() {
                // Each role of a catalog has its own stack (and stack set):
                // rolecall-KEY. `role:` keeps 0.2's rolecall-target-role.
                raw.stack_name = Some(format!("rolecall-{}", key.replace('_', "-")));
            }
            let spec = self.role(raw, source);
            let role = match (spec, profiles) {
                (Some(spec), Some(profiles)) => Some(CatalogRole {
                    key,
                    spec,
                    targets,
                    regions,
                    profiles,
                }),
                _ => None,
            };
            out.push((at, role));
        }
        self.role_at = "role".to_owned();
        self.across_roles(&out);
        out
    }

    /// Where a role goes, checked: OU or root ids, account ids, tags.
    fn role_targets(&mut self, raw: RawRoleTargets) -> RoleTargets {
        let ous = raw.ous.unwrap_or_default();
        for (i, ou) in ous.iter().enumerate() {
            if !names::is_ou_or_root(ou) {
                self.error(
                    &format!("{}.targets.ous[{i}]", self.role_at),
                    format!("\"{ou}\" is not an OU id or root id"),
                    "use ids like ou-ab12-cd34ef56 or r-ab12",
                );
            }
        }
        let mut ids = |list: Option<Vec<String>>, key: &str| -> Vec<AccountId> {
            list.unwrap_or_default()
                .iter()
                .enumerate()
                .filter_map(|(i, s)| self.account_id(&format!("{}.targets.{key}[{i}]", self.role_at), s))
                .collect()
        };
        let accounts = ids(raw.accounts, "accounts");
        let exclude = ids(raw.exclude, "exclude");
        let tags = raw.tags.unwrap_or_default();
        self.tags(&self.role_key("targets.tags"), &tags);
        RoleTargets {
            ous,
            tags,
            accounts,
            exclude,
        }
    }

    /// Two roles of one catalog may share neither an IAM role name (names
    /// are global to an account) nor a stack name.
    fn across_roles(&mut self, roles: &[(String, Option<CatalogRole>)]) {
        for (i, (at, role)) in roles.iter().enumerate() {
            let Some(role) = role else { continue };
            for (other_at, other) in &roles[..i] {
                let Some(other) = other else { continue };
                if other.spec.name == role.spec.name {
                    self.error(
                        &format!("{at}.name"),
                        format!(
                            "{at} and {other_at} have the same role name \"{}\"; IAM role names are global to an account, so the second stack would fail",
                            role.spec.name
                        ),
                        "give each role its own name",
                    );
                }
                if other.spec.stack_name == role.spec.stack_name {
                    self.error(
                        &format!("{at}.stack_name"),
                        format!(
                            "{at} and {other_at} have the same stack name \"{}\"",
                            role.spec.stack_name
                        ),
                        "give each role its own stack_name",
                    );
                }
            }
        }
    }
}
