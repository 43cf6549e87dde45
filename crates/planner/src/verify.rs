//! `verify`: which registered roles to assume, the way their profiles
//! would, and what each answer means. Pure; the executor makes the calls.

use std::collections::{BTreeMap, BTreeSet};

use model::registry::Registry;
use model::{AccountId, Target, Verdict, VerifyResult};

/// One AssumeRole to try: as the role's generated profile would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub account_id: AccountId,
    pub account_name: String,
    pub role: String,
    pub role_arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
    pub duration_seconds: Option<u32>,
    /// The profile needs an MFA code: rolecall cannot type one.
    pub mfa_serial: Option<String>,
}

/// How a role's profiles assume it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssumeAs {
    pub session_name: Option<String>,
    pub external_id: Option<String>,
    pub duration_seconds: Option<u32>,
    pub mfa_serial: Option<String>,
}

/// The session name when a role's profiles name none.
pub const SESSION_NAME: &str = "rolecall-verify";

/// A check per distinct role ARN of each (account, role) the targets have
/// (IAM is global: a role in several regions is one ARN, unless its name
/// holds `{region}`), and MISSING for a target whose role has no ARN in
/// the registry. `how(role)`: how that role's profiles assume it; `None`
/// for a role outside the run (--roles).
pub fn checks(
    registry: Option<&Registry>,
    targets: &[Target],
    how: &dyn Fn(&str) -> Option<AssumeAs>,
) -> (Vec<Check>, Vec<Verdict>) {
    let mut checks = Vec::new();
    let mut missing = Vec::new();
    let mut seen = BTreeSet::new();
    // The registry's ARNs by (account, role): one pass, not one per target.
    let mut registered: BTreeMap<(&AccountId, &str), Vec<(&str, &str)>> = BTreeMap::new();
    for e in registry.iter().flat_map(|reg| &reg.entries) {
        if let Some(arn) = e.role_arn.as_deref() {
            registered
                .entry((&e.account_id, e.role.as_str()))
                .or_default()
                .push((e.region.as_str(), arn));
        }
    }
    for t in targets {
        for r in &t.roles {
            let Some(how) = how(&r.role) else { continue };
            let arns: Vec<&str> = registered
                .get(&(&t.account_id, r.role.as_str()))
                .into_iter()
                .flatten()
                .filter(|(region, _)| r.regions.iter().any(|x| x == region))
                .map(|(_, arn)| *arn)
                .collect();
            if arns.is_empty() {
                missing.push(Verdict {
                    account_id: t.account_id.clone(),
                    account_name: t.account_name.clone(),
                    role: r.role.clone(),
                    role_arn: None,
                    result: VerifyResult::Missing,
                    reason: "a target of this role with no role ARN in the registry: run `rolecall apply`".to_owned(),
                });
                continue;
            }
            for arn in arns {
                if !seen.insert((t.account_id.clone(), r.role.clone(), arn.to_owned())) {
                    continue;
                }
                checks.push(Check {
                    account_id: t.account_id.clone(),
                    account_name: t.account_name.clone(),
                    role: r.role.clone(),
                    role_arn: arn.to_owned(),
                    session_name: how.session_name.clone().unwrap_or_else(|| SESSION_NAME.to_owned()),
                    external_id: how.external_id.clone(),
                    duration_seconds: how.duration_seconds,
                    mfa_serial: how.mfa_serial.clone(),
                });
            }
        }
    }
    (checks, missing)
}

/// What AssumeRole + GetCallerIdentity said, as the executor hands it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The account GetCallerIdentity named.
    Account(String),
    /// AssumeRole was refused, in AWS's words.
    Denied(String),
    /// No answer that decides (throttled, unreachable, expired caller).
    Failed(String),
}

pub fn verdict(check: &Check, answer: &Answer) -> Verdict {
    let (result, reason) = match answer {
        Answer::Account(a) if a == check.account_id.as_str() => (
            VerifyResult::Assumable,
            format!("assumed as session {}", check.session_name),
        ),
        Answer::Account(a) => (
            VerifyResult::WrongAccount,
            format!("the role's credentials are of account {a}, not {}", check.account_id),
        ),
        Answer::Denied(why) => (VerifyResult::Denied, why.clone()),
        Answer::Failed(why) => (VerifyResult::Error, why.clone()),
    };
    Verdict {
        account_id: check.account_id.clone(),
        account_name: check.account_name.clone(),
        role: check.role.clone(),
        role_arn: Some(check.role_arn.clone()),
        result,
        reason,
    }
}

/// A role whose profiles need an MFA code is not assumed: the check is
/// incomplete for it, and says how to check it by hand.
pub fn needs_mfa(check: &Check) -> Option<Verdict> {
    let serial = check.mfa_serial.as_ref()?;
    Some(Verdict {
        account_id: check.account_id.clone(),
        account_name: check.account_name.clone(),
        role: check.role.clone(),
        role_arn: Some(check.role_arn.clone()),
        result: VerifyResult::Error,
        reason: format!(
            "its trust requires MFA ({serial}): not assumed; check it with `aws sts get-caller-identity --profile <its profile>`"
        ),
    })
}

#[cfg(test)]
mod tests {
    use model::registry::Entry;
    use model::{Status, TargetRole, TargetSource};

    use super::*;

    fn entry(account: &str, role: &str, region: &str, arn: Option<&str>) -> Entry {
        Entry {
            account_id: AccountId::parse(account).unwrap(),
            account_name: "a".into(),
            role: role.into(),
            role_name: "R".into(),
            stack_name: "s".into(),
            region: region.into(),
            stack_id: None,
            role_arn: arn.map(str::to_owned),
            outputs: Default::default(),
            fingerprint: None,
            status: Status::Created,
            error: None,
        }
    }

    #[test]
    fn one_check_per_arn_and_missing_for_targets_without_one() {
        let registry = Registry {
            schema_version: 4,
            generated_at: "2026-12-01T00:00:00Z".into(),
            inventory: Some("p".into()),
            source_account: AccountId::parse("111111111111").unwrap(),
            written_by: None,
            entries: vec![
                // One name in two regions: one ARN, one check.
                entry(
                    "222222222222",
                    "admin",
                    "eu-west-1",
                    Some("arn:aws:iam::222222222222:role/Admin"),
                ),
                entry(
                    "222222222222",
                    "admin",
                    "us-east-1",
                    Some("arn:aws:iam::222222222222:role/Admin"),
                ),
                // {region} in the name: two ARNs.
                entry(
                    "222222222222",
                    "deploy",
                    "eu-west-1",
                    Some("arn:aws:iam::222222222222:role/D-eu-west-1"),
                ),
                entry(
                    "222222222222",
                    "deploy",
                    "us-east-1",
                    Some("arn:aws:iam::222222222222:role/D-us-east-1"),
                ),
                // Failed with no ARN ever: missing.
                entry("333333333333", "admin", "us-east-1", None),
            ],
        };
        let target = |id: &str, roles: &[&str]| Target {
            account_id: AccountId::parse(id).unwrap(),
            account_name: format!("n{id}"),
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            source: TargetSource::Inventory,
            parent: None,
            roles: roles
                .iter()
                .map(|r| TargetRole {
                    role: r.to_string(),
                    regions: vec!["us-east-1".into(), "eu-west-1".into()],
                })
                .collect(),
        };
        let targets = [
            target("222222222222", &["admin", "deploy", "audit"]),
            target("333333333333", &["admin"]),
        ];
        let how = |role: &str| {
            (role != "audit").then(|| AssumeAs {
                session_name: None,
                external_id: (role == "deploy").then(|| "ext".to_owned()),
                duration_seconds: Some(900),
                mfa_serial: None,
            })
        };
        let (checks, missing) = checks(Some(&registry), &targets, &how);
        let got: Vec<String> = checks
            .iter()
            .map(|c| format!("{} {} {} {:?}", c.account_id, c.role, c.role_arn, c.external_id))
            .collect();
        assert_eq!(
            got,
            [
                "222222222222 admin arn:aws:iam::222222222222:role/Admin None",
                "222222222222 deploy arn:aws:iam::222222222222:role/D-eu-west-1 Some(\"ext\")",
                "222222222222 deploy arn:aws:iam::222222222222:role/D-us-east-1 Some(\"ext\")",
            ]
        );
        assert!(checks.iter().all(|c| c.session_name == SESSION_NAME));
        let missing: Vec<String> = missing
            .iter()
            .map(|v| format!("{} {} {}", v.account_id, v.role, v.result))
            .collect();
        assert_eq!(missing, ["333333333333 admin MISSING"], "audit is outside the run");
    }
}
