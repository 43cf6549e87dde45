//! Which AWS CLI profiles exist after an apply: one per account (or per
//! account and region when the name template has `{region}`), pointing at
//! the role ARN the stack reported.

use std::collections::BTreeMap;

use model::{AccountId, Profile, ProfilesSpec};

use crate::names;

/// One registry entry, as far as profiles need it.
#[derive(Clone, Debug)]
pub struct ProfileSource<'a> {
    pub account_id: &'a AccountId,
    pub account_name: &'a str,
    pub region: &'a str,
    pub role_arn: Option<&'a str>,
}

/// What shapes every profile besides the entries.
#[derive(Clone, Debug)]
pub struct ProfileSettings<'a> {
    pub spec: &'a ProfilesSpec,
    /// `role.name`, possibly with `{region}`.
    pub role_name: &'a str,
    pub external_id: Option<&'a str>,
    /// Region order per account (inventory order); accounts not in it use
    /// their entries' order.
    pub region_order: &'a BTreeMap<AccountId, Vec<String>>,
}

/// Profiles sorted by name. Entries must be sorted by account, then region.
pub fn profiles(settings: &ProfileSettings<'_>, entries: &[ProfileSource<'_>]) -> Vec<Profile> {
    let per_region = names::uses_region(&settings.spec.name);
    let mut by_account: BTreeMap<&AccountId, Vec<&ProfileSource<'_>>> = BTreeMap::new();
    for e in entries {
        by_account.entry(e.account_id).or_default().push(e);
    }
    let mut out = Vec::new();
    for (account, mut list) in by_account {
        if let Some(order) = settings.region_order.get(account) {
            list.sort_by_key(|e| order.iter().position(|r| r == e.region).unwrap_or(usize::MAX));
        }
        let chosen: Vec<&ProfileSource<'_>> = if per_region {
            list
        } else {
            list.into_iter().take(1).collect()
        };
        for e in chosen {
            let role_name = names::role_name_in(settings.role_name, e.region);
            out.push(Profile {
                name: names::render_profile_name(
                    &settings.spec.name,
                    e.account_name,
                    account.as_str(),
                    &role_name,
                    e.region,
                ),
                account_id: account.clone(),
                role_arn: e.role_arn.map(str::to_owned),
                source_profile: settings.spec.source_profile.clone(),
                region: settings.spec.region.clone().unwrap_or_else(|| e.region.to_owned()),
                role_session_name: settings.spec.role_session_name.clone(),
                external_id: settings.external_id.map(str::to_owned),
                duration_seconds: settings.spec.duration_seconds,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Names that are invalid or used twice, as messages.
pub fn problems(profiles: &[Profile]) -> Vec<String> {
    names::name_problems(profiles.iter().map(|p| (p.name.as_str(), p.account_id.as_str())))
        .into_iter()
        .map(|p| p.message)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ProfilesSpec {
        ProfilesSpec {
            source_profile: "default".into(),
            name: name.into(),
            region: None,
            role_session_name: None,
            duration_seconds: Some(7200),
        }
    }

    #[test]
    fn one_per_account_in_its_first_region_or_one_per_region() {
        let a = AccountId::parse("222222222222").unwrap();
        let b = AccountId::parse("033333333333").unwrap();
        let entries = [
            ProfileSource {
                account_id: &b,
                account_name: "b",
                region: "us-east-1",
                role_arn: None,
            },
            ProfileSource {
                account_id: &a,
                account_name: "a",
                region: "eu-west-1",
                role_arn: Some("arn:aws:iam::222222222222:role/R-eu-west-1"),
            },
            ProfileSource {
                account_id: &a,
                account_name: "a",
                region: "us-east-1",
                role_arn: Some("arn:aws:iam::222222222222:role/R-us-east-1"),
            },
        ];
        let order = BTreeMap::from([(a.clone(), vec!["us-east-1".to_owned(), "eu-west-1".to_owned()])]);
        let s = spec("{account_name}");
        let settings = ProfileSettings {
            spec: &s,
            role_name: "R-{region}",
            external_id: Some("ext"),
            region_order: &order,
        };
        let got = profiles(&settings, &entries);
        let summary: Vec<String> = got
            .iter()
            .map(|p| format!("{} {} {:?}", p.name, p.region, p.role_arn))
            .collect();
        assert_eq!(
            summary,
            [
                "a us-east-1 Some(\"arn:aws:iam::222222222222:role/R-us-east-1\")",
                "b us-east-1 None"
            ]
        );
        assert_eq!(
            (got[0].external_id.as_deref(), got[0].duration_seconds),
            (Some("ext"), Some(7200))
        );
        let s = spec("{account_name}-{region}-{role_name}");
        let settings = ProfileSettings {
            spec: &s,
            role_name: "R-{region}",
            external_id: None,
            region_order: &order,
        };
        let names: Vec<String> = profiles(&settings, &entries).into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "a-eu-west-1-R-eu-west-1",
                "a-us-east-1-R-us-east-1",
                "b-us-east-1-R-us-east-1"
            ]
        );
        let s = spec("x");
        let settings = ProfileSettings {
            spec: &s,
            role_name: "R",
            external_id: None,
            region_order: &order,
        };
        assert_eq!(
            problems(&profiles(&settings, &entries)),
            ["profile name \"x\" for account 222222222222 is also generated for account 033333333333"]
        );
    }
}
