//! AWS CLI profile naming, the one home for it: the `profiles.name`
//! template, safe names from real account names, which profiles exist (one
//! per account, or per account and region with `{region}`), and which names
//! are unusable or taken twice. Validation, `apply` and `profiles` all call
//! this module; nothing else renders a profile name.

use std::collections::BTreeMap;

use model::{AccountId, Profile, ProfilesSpec, Target};

use crate::names;

/// Variables a name template may use.
pub const VARIABLES: [&str; 5] = ["account_name", "account_id", "role_name", "role", "region"];

/// Characters the AWS CLI cannot take in a profile name: it reads
/// `[profile NAME]` headers, and `#`/`;` start comments there.
const FORBIDDEN: &str = "[];'\"\\#";

fn rejected(c: char) -> bool {
    c.is_whitespace() || c.is_control() || FORBIDDEN.contains(c)
}

/// Whether the AWS CLI can use `s` as a profile name.
pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".to_owned());
    }
    match s.chars().find(|c| rejected(*c)) {
        Some(c) => Err(format!("it contains {c:?} (whitespace and []\\;'\"# are not allowed)")),
        None => Ok(()),
    }
}

/// A variable's value made fit for a profile name: every run of whitespace
/// or characters the AWS CLI rejects becomes one `-`, and `-` is trimmed at
/// the ends. `Log Archive` → `Log-Archive`, `Prod (EU) #2` → `Prod-(EU)-2`.
/// Letters of any script, digits and other punctuation stay.
pub fn safe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut in_run = false;
    for c in value.chars() {
        if rejected(c) {
            in_run = true;
            continue;
        }
        if in_run && !out.is_empty() {
            out.push('-');
        }
        in_run = false;
        out.push(c);
    }
    out
}

/// Checks a `profiles.name` template: known `{variables}` only, balanced
/// braces, and literal text the AWS CLI accepts (`x [{account_name}]` is
/// wrong whatever the account is called).
pub fn check_template(template: &str) -> Result<(), String> {
    if template.is_empty() {
        return Err("the name template is empty".to_owned());
    }
    let mut rest = template;
    let mut literal = String::new();
    while let Some(open) = rest.find('{') {
        literal.push_str(&rest[..open]);
        let Some(len) = rest[open..].find('}') else {
            return Err(format!("unclosed `{{` in \"{template}\""));
        };
        let var = &rest[open + 1..open + len];
        if !VARIABLES.contains(&var) {
            return Err(format!(
                "unknown variable `{{{var}}}` in \"{template}\" (use {})",
                VARIABLES.map(|v| format!("{{{v}}}")).join(" ")
            ));
        }
        rest = &rest[open + len + 1..];
    }
    literal.push_str(rest);
    if literal.contains('}') {
        return Err(format!("unmatched `}}` in \"{template}\""));
    }
    if let Some(c) = literal.chars().find(|c| rejected(*c)) {
        return Err(format!(
            "the text of \"{template}\" contains {c:?}, which the AWS CLI does not accept in a profile name (whitespace and []\\;'\"# are not allowed)"
        ));
    }
    Ok(())
}

/// Whether the template makes one profile per region.
pub fn per_region(template: &str) -> bool {
    template.contains("{region}")
}

/// One profile name: the template with each variable's safe value.
pub fn render(template: &str, vars: &Vars<'_>) -> String {
    template
        .replace("{account_name}", &safe(vars.account_name))
        .replace("{account_id}", vars.account_id)
        .replace("{role_name}", &safe(vars.role_name))
        .replace("{role}", &safe(vars.role))
        .replace("{region}", vars.region)
}

/// The values of a profile name's variables.
#[derive(Clone, Copy, Debug)]
pub struct Vars<'a> {
    pub account_name: &'a str,
    pub account_id: &'a str,
    pub role_name: &'a str,
    /// The role's key in the catalog.
    pub role: &'a str,
    pub region: &'a str,
}

/// One account/region that gets (or had) the role: a registry entry, or a
/// target before the rollout.
#[derive(Clone, Debug)]
pub struct ProfileSource<'a> {
    pub account_id: &'a AccountId,
    pub account_name: &'a str,
    pub region: &'a str,
    pub role_arn: Option<&'a str>,
    /// The role's name in this region when it is known (the registry's);
    /// else `ProfileSettings::role_name` with `{region}` filled in.
    pub role_name: Option<&'a str>,
}

/// What shapes every profile besides the entries.
#[derive(Clone, Debug)]
pub struct ProfileSettings<'a> {
    pub spec: &'a ProfilesSpec,
    /// The role's key in the catalog (`{role}`).
    pub role: &'a str,
    /// `role.name`, possibly with `{region}`.
    pub role_name: &'a str,
    pub external_id: Option<&'a str>,
    /// The MFA device of profiles whose role's trust requires MFA.
    pub mfa_serial: Option<&'a str>,
    /// Region order per account (inventory order); accounts not in it use
    /// their entries' order.
    pub region_order: &'a BTreeMap<AccountId, Vec<String>>,
}

impl<'a> ProfileSettings<'a> {
    /// A role's of the catalog: its `profiles:`, its name and external id,
    /// its MFA device when its trust requires MFA.
    pub fn of(role: &'a model::CatalogRole, region_order: &'a BTreeMap<AccountId, Vec<String>>) -> ProfileSettings<'a> {
        ProfileSettings {
            spec: &role.profiles,
            role: &role.key,
            role_name: &role.spec.name,
            external_id: role.spec.external_id.as_deref(),
            mfa_serial: role
                .profiles
                .mfa_serial
                .as_deref()
                .filter(|_| crate::template::requires_mfa(role.spec.trust_conditions.as_ref())),
            region_order,
        }
    }
}

/// Profiles sorted by name: one per account in its first region, or one
/// per account and region when the template uses `{region}`.
pub fn profiles(settings: &ProfileSettings<'_>, entries: &[ProfileSource<'_>]) -> Vec<Profile> {
    let per_region = per_region(&settings.spec.name);
    let mut by_account: BTreeMap<&AccountId, Vec<&ProfileSource<'_>>> = BTreeMap::new();
    for e in entries {
        by_account.entry(e.account_id).or_default().push(e);
    }
    let mut out = Vec::new();
    for (account, mut list) in by_account {
        if let Some(order) = settings.region_order.get(account) {
            list.sort_by_key(|e| order.iter().position(|r| r == e.region).unwrap_or(usize::MAX));
        }
        if !per_region {
            list.truncate(1);
        }
        for e in list {
            let role_name = e
                .role_name
                .map_or_else(|| names::role_name_in(settings.role_name, e.region), str::to_owned);
            out.push(Profile {
                name: render(
                    &settings.spec.name,
                    &Vars {
                        account_name: e.account_name,
                        account_id: account.as_str(),
                        role_name: &role_name,
                        role: settings.role,
                        region: e.region,
                    },
                ),
                account_id: account.clone(),
                account_name: e.account_name.to_owned(),
                role_arn: e.role_arn.map(str::to_owned),
                source_profile: settings.spec.source_profile.clone(),
                region: settings.spec.region.clone().unwrap_or_else(|| e.region.to_owned()),
                role_session_name: settings.spec.role_session_name.clone(),
                external_id: settings.external_id.map(str::to_owned),
                duration_seconds: settings.spec.duration_seconds,
                mfa_serial: settings.mfa_serial.map(str::to_owned),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The profiles targets will get, before any of them has a role ARN.
pub fn for_targets(settings: &ProfileSettings<'_>, targets: &[Target]) -> Vec<Profile> {
    let sources: Vec<ProfileSource<'_>> = targets
        .iter()
        .flat_map(|t| {
            t.regions.iter().map(|region| ProfileSource {
                account_id: &t.account_id,
                account_name: &t.account_name,
                region,
                role_arn: None,
                role_name: None,
            })
        })
        .collect();
    profiles(settings, &sources)
}

/// A profile that cannot be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub account_id: AccountId,
    /// True for a name the AWS CLI rejects, false for one taken twice.
    pub invalid: bool,
    pub message: String,
}

/// Names the AWS CLI rejects, and names two accounts (or two regions of
/// one account) would share. Each message names the accounts and the fix.
pub fn problems(profiles: &[Profile]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<&str, &Profile> = BTreeMap::new();
    for p in profiles {
        let who = format!("account {} ({})", p.account_id, p.account_name);
        if let Err(why) = check_name(&p.name) {
            problems.push(Problem {
                account_id: p.account_id.clone(),
                invalid: true,
                message: format!("profile name \"{}\" for {who} is not valid: {why}; give the account a name with letters or digits, or put {{account_id}} in profiles.name", p.name),
            });
        } else if let Some(first) = seen.insert(&p.name, p) {
            let message = if first.account_id == p.account_id {
                format!(
                    "profile name \"{}\" is generated for two regions of {who}; put {{region}} in profiles.name, or set profiles.region",
                    p.name
                )
            } else {
                format!(
                    "profile name \"{}\" is generated for both account {} ({}) and {who}; put {{account_id}} in profiles.name (e.g. \"{{account_name}}-{{account_id}}\"), or give the accounts distinct names",
                    p.name, first.account_id, first.account_name
                )
            };
            problems.push(Problem {
                account_id: p.account_id.clone(),
                invalid: false,
                message,
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        for (name, expect) in [
            ("Log Archive", "Log-Archive"),
            ("Audit", "Audit"),
            ("  Shared   Services  ", "Shared-Services"),
            ("Prod (EU) #2", "Prod-(EU)-2"),
            ("team.platform", "team.platform"),
            ("Zürich Ops", "Zürich-Ops"),
            ("データ 本番", "データ-本番"),
            ("a\tb\nc", "a-b-c"),
            ("[sandbox]", "sandbox"),
            ("x;y'z\"w\\v", "x-y-z-w-v"),
            ("###", ""),
        ] {
            assert_eq!(safe(name), expect, "{name:?}");
        }
    }

    #[test]
    fn templates() {
        assert!(check_template("{account_name}-{region}").is_ok());
        assert!(check_template("org.{account_id}").is_ok());
        assert_eq!(
            check_template("{acct}").unwrap_err(),
            "unknown variable `{acct}` in \"{acct}\" (use {account_name} {account_id} {role_name} {role} {region})"
        );
        assert!(check_template("{account_name").is_err());
        assert!(check_template("x}").is_err());
        assert!(check_template("").is_err());
        assert_eq!(
            check_template("x [{account_name}]").unwrap_err(),
            "the text of \"x [{account_name}]\" contains ' ', which the AWS CLI does not accept in a profile name (whitespace and []\\;'\"# are not allowed)"
        );
        assert_eq!(
            render(
                "ct-{account_name}-{role}",
                &Vars {
                    account_name: "Log Archive",
                    account_id: "1",
                    role_name: "R",
                    role: "read-only",
                    region: "us-east-1"
                }
            ),
            "ct-Log-Archive-read-only"
        );
    }

    fn spec(name: &str) -> ProfilesSpec {
        ProfilesSpec {
            source_profile: "default".into(),
            name: name.into(),
            region: None,
            role_session_name: None,
            duration_seconds: Some(7200),
            mfa_serial: None,
        }
    }

    #[test]
    fn one_per_account_in_its_first_region_or_one_per_region() {
        let a = AccountId::parse("222222222222").unwrap();
        let b = AccountId::parse("033333333333").unwrap();
        let entries = [
            ProfileSource {
                account_id: &b,
                account_name: "Log Archive",
                region: "us-east-1",
                role_arn: None,
                role_name: None,
            },
            ProfileSource {
                account_id: &a,
                account_name: "a",
                region: "eu-west-1",
                role_arn: Some("arn:aws:iam::222222222222:role/R-eu-west-1"),
                role_name: None,
            },
            ProfileSource {
                account_id: &a,
                account_name: "a",
                region: "us-east-1",
                role_arn: Some("arn:aws:iam::222222222222:role/R-us-east-1"),
                role_name: None,
            },
        ];
        let order = BTreeMap::from([(a.clone(), vec!["us-east-1".to_owned(), "eu-west-1".to_owned()])]);
        let s = spec("{account_name}");
        let settings = ProfileSettings {
            spec: &s,
            role: "default",
            role_name: "R-{region}",
            external_id: Some("ext"),
            mfa_serial: None,
            region_order: &order,
        };
        let got = profiles(&settings, &entries);
        let summary: Vec<String> = got
            .iter()
            .map(|p| format!("{} {} {} {:?}", p.name, p.account_name, p.region, p.role_arn))
            .collect();
        assert_eq!(
            summary,
            [
                "Log-Archive Log Archive us-east-1 None",
                "a a us-east-1 Some(\"arn:aws:iam::222222222222:role/R-us-east-1\")",
            ]
        );
        assert_eq!(
            (got[1].external_id.as_deref(), got[1].duration_seconds),
            (Some("ext"), Some(7200))
        );
        let s = spec("{account_name}-{region}-{role_name}");
        let settings = ProfileSettings {
            spec: &s,
            role: "default",
            role_name: "R-{region}",
            external_id: None,
            mfa_serial: None,
            region_order: &order,
        };
        let names: Vec<String> = profiles(&settings, &entries).into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "Log-Archive-us-east-1-R-us-east-1",
                "a-eu-west-1-R-eu-west-1",
                "a-us-east-1-R-us-east-1",
            ]
        );
    }

    #[test]
    fn collisions_name_both_accounts_and_the_fix() {
        let a = AccountId::parse("222222222222").unwrap();
        let b = AccountId::parse("033333333333").unwrap();
        let c = AccountId::parse("044444444444").unwrap();
        let entries = [
            ProfileSource {
                account_id: &a,
                account_name: "Log Archive",
                region: "us-east-1",
                role_arn: None,
                role_name: None,
            },
            ProfileSource {
                account_id: &b,
                account_name: "Log-Archive",
                region: "us-east-1",
                role_arn: None,
                role_name: None,
            },
            ProfileSource {
                account_id: &c,
                account_name: "###",
                region: "us-east-1",
                role_arn: None,
                role_name: None,
            },
        ];
        let order = BTreeMap::new();
        let s = spec("{account_name}");
        let settings = ProfileSettings {
            spec: &s,
            role: "default",
            role_name: "R",
            external_id: None,
            mfa_serial: None,
            region_order: &order,
        };
        let messages: Vec<String> = problems(&profiles(&settings, &entries))
            .into_iter()
            .map(|p| p.message)
            .collect();
        assert_eq!(
            messages,
            [
                "profile name \"\" for account 044444444444 (###) is not valid: it is empty; give the account a name with letters or digits, or put {account_id} in profiles.name",
                "profile name \"Log-Archive\" is generated for both account 033333333333 (Log-Archive) and account 222222222222 (Log Archive); put {account_id} in profiles.name (e.g. \"{account_name}-{account_id}\"), or give the accounts distinct names",
            ]
        );
        let s = spec("{account_name}-{account_id}");
        let settings = ProfileSettings { spec: &s, ..settings };
        assert!(problems(&profiles(&settings, &entries)).is_empty());
    }
}
