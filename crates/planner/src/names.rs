//! Rules for the names rolecall writes or reads: regions, IAM roles, stacks,
//! external ids, OU ids, and AWS CLI profile names built from a template.

use std::collections::BTreeMap;

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, `us-isob-east-1`.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

pub fn check_role_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err(format!("{} characters (1-64 allowed)", s.len()));
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        Some(c) => Err(format!("character {c:?} is not allowed")),
        None => Ok(()),
    }
}

/// A role name that may contain `{region}` (rendered per region, because
/// IAM role names are global to an account).
pub fn check_role_name_template(s: &str) -> Result<(), String> {
    let rendered = s.replace("{region}", "us-east-1");
    if rendered.contains(['{', '}']) {
        return Err("the only variable a role name may use is {region}".to_owned());
    }
    check_role_name(&rendered)
}

/// The role name in one region.
pub fn role_name_in(template: &str, region: &str) -> String {
    template.replace("{region}", region)
}

pub fn check_stack_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 128 {
        return Err(format!("{} characters (1-128 allowed)", s.len()));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("it must start with a letter".to_owned());
    }
    match s.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
        Some(c) => Err(format!("character {c:?} is not allowed")),
        None => Ok(()),
    }
}

pub fn check_external_id(s: &str) -> Result<(), String> {
    if s.len() < 2 || s.len() > 1224 {
        return Err(format!("an external id has 2-1224 characters, this one {}", s.len()));
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(*c)))
    {
        Some(c) => Err(format!("character {c:?} is not allowed in an external id")),
        None => Ok(()),
    }
}

/// An entry of `role.managed_policy_arns`: a full policy ARN of a known
/// partition, or the name (with path) of an AWS managed policy, which the
/// template turns into an ARN of whatever partition it is deployed in.
pub fn check_managed_policy(s: &str) -> Result<(), String> {
    if s.contains(':') {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let ok = parts.len() == 6
            && crate::partition::Partition::of_arn(s).is_some()
            && parts[2] == "iam"
            && parts[3].is_empty()
            && (parts[4] == "aws" || parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit()))
            && parts[5].starts_with("policy/")
            && parts[5].len() > "policy/".len();
        return if ok {
            Ok(())
        } else {
            Err("is not an IAM policy ARN (arn:<partition>:iam::<account or aws>:policy/<name>)".to_owned())
        };
    }
    if s.is_empty() || s.starts_with('/') || s.ends_with('/') {
        return Err("is not an AWS managed policy name".to_owned());
    }
    match s.chars().find(|c| !(c.is_ascii_alphanumeric() || "+=,.@-_/".contains(*c))) {
        Some(c) => Err(format!("is not an AWS managed policy name: {c:?} is not allowed")),
        None => Ok(()),
    }
}

/// `ou-ab12-cd34ef56` or `r-ab12`.
pub fn is_ou_or_root(s: &str) -> bool {
    let lower_alnum = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    match s.split('-').collect::<Vec<_>>().as_slice() {
        ["ou", a, b] => (4..=32).contains(&a.len()) && (8..=32).contains(&b.len()) && lower_alnum(a) && lower_alnum(b),
        ["r", a] => (4..=32).contains(&a.len()) && lower_alnum(a),
        _ => false,
    }
}

/// Characters the AWS CLI cannot take in a profile name (it reads
/// `[profile NAME]` headers and breaks on these).
const PROFILE_FORBIDDEN: &str = "[];'\"\\#";

pub fn check_profile_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".to_owned());
    }
    match s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || PROFILE_FORBIDDEN.contains(*c))
    {
        Some(c) => Err(format!("it contains {c:?} (whitespace and []\\;'\"# are not allowed)")),
        None => Ok(()),
    }
}

pub const PROFILE_VARIABLES: [&str; 4] = ["account_name", "account_id", "role_name", "region"];

/// Checks `{variable}` use in a profile name template.
pub fn check_name_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            return Err(format!("unclosed `{{` in \"{template}\""));
        };
        let var = &rest[open + 1..open + len];
        if !PROFILE_VARIABLES.contains(&var) {
            return Err(format!("unknown variable `{{{var}}}` in \"{template}\""));
        }
        rest = &rest[open + len + 1..];
    }
    if rest.contains('}') || template.is_empty() {
        return Err(format!("\"{template}\" is not a valid name template"));
    }
    Ok(())
}

pub fn uses_region(template: &str) -> bool {
    template.contains("{region}")
}

pub fn render_profile_name(
    template: &str,
    account_name: &str,
    account_id: &str,
    role_name: &str,
    region: &str,
) -> String {
    template
        .replace("{account_name}", account_name)
        .replace("{account_id}", account_id)
        .replace("{role_name}", role_name)
        .replace("{region}", region)
}

/// The values one target gives to a profile name template.
#[derive(Clone, Debug)]
pub struct ProfileVars<'a> {
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub regions: &'a [String],
}

/// One generated profile name and what it points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileName {
    pub name: String,
    pub account_id: String,
    /// The region the name was rendered for (the first one when the
    /// template has no `{region}`).
    pub region: String,
}

/// Renders every profile name: one per account, or one per account and
/// region when the template uses `{region}`.
pub fn profile_names(template: &str, role_name: &str, targets: &[ProfileVars<'_>]) -> Vec<ProfileName> {
    let mut out = Vec::new();
    for t in targets {
        let regions: &[String] = if uses_region(template) {
            t.regions
        } else {
            &t.regions[..t.regions.len().min(1)]
        };
        for region in regions {
            out.push(ProfileName {
                name: render_profile_name(
                    template,
                    t.account_name,
                    t.account_id,
                    &role_name_in(role_name, region),
                    region,
                ),
                account_id: t.account_id.to_owned(),
                region: region.clone(),
            });
        }
    }
    out
}

/// A profile name the template would produce that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileProblem {
    pub account_id: String,
    /// True for a name the AWS CLI rejects, false for a duplicate.
    pub invalid: bool,
    pub message: String,
}

/// Invalid or duplicate names the template would produce.
pub fn profile_name_clashes(template: &str, role_name: &str, targets: &[ProfileVars<'_>]) -> Vec<ProfileProblem> {
    if check_name_template(template).is_err() {
        return Vec::new();
    }
    let names = profile_names(template, role_name, targets);
    name_problems(names.iter().map(|p| (p.name.as_str(), p.account_id.as_str())))
}

/// Invalid or duplicate profile names among (name, account id) pairs, in order.
pub fn name_problems<'a>(names: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<ProfileProblem> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, account_id) in names {
        if let Err(why) = check_profile_name(name) {
            problems.push(ProfileProblem {
                message: format!("profile name \"{name}\" for account {account_id} is not valid: {why}"),
                account_id: account_id.to_owned(),
                invalid: true,
            });
        } else if let Some(first) = seen.insert(name, account_id) {
            let other = if first == account_id {
                "another region of the same account".to_owned()
            } else {
                format!("account {first}")
            };
            problems.push(ProfileProblem {
                message: format!("profile name \"{name}\" for account {account_id} is also generated for {other}"),
                account_id: account_id.to_owned(),
                invalid: false,
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "us-isob-east-1",
            "ap-southeast-4",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "useast1",
            "US-EAST-1",
            "us-east-1a",
            "u-east-1",
            "us--1",
            "us-east-x",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(check_role_name("Rolecall+Target=1,.@_-").is_ok());
        assert!(check_role_name("has space").is_err());
        assert!(check_role_name(&"a".repeat(65)).is_err());
        assert!(check_stack_name("rolecall-target-role").is_ok());
        assert!(check_stack_name("1abc").is_err());
        assert!(check_stack_name("a_b").is_err());
        assert!(is_ou_or_root("ou-abcd-12345678"));
        assert!(is_ou_or_root("r-ab12"));
        assert!(!is_ou_or_root("ou-abcd"));
        assert!(!is_ou_or_root("OU-ABCD-12345678"));
        assert!(check_external_id("x").is_err());
        assert!(check_external_id("secret-123").is_ok());
    }

    #[test]
    fn name_templates() {
        assert!(check_name_template("{account_name}-{region}").is_ok());
        assert_eq!(
            check_name_template("{acct}").unwrap_err(),
            "unknown variable `{acct}` in \"{acct}\""
        );
        assert!(check_name_template("{account_name").is_err());
        assert!(check_name_template("x}").is_err());
        let regions = vec!["us-east-1".to_owned(), "eu-west-1".to_owned()];
        let t = [ProfileVars {
            account_id: "222222222222",
            account_name: "dev",
            regions: &regions,
        }];
        let names: Vec<_> = profile_names("{account_name}-{region}", "R", &t)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["dev-us-east-1", "dev-eu-west-1"]);
        assert_eq!(profile_names("{account_name}", "R", &t).len(), 1);
        assert_eq!(
            profile_name_clashes(
                "{role_name}",
                "R",
                &[
                    t[0].clone(),
                    ProfileVars {
                        account_id: "333333333333",
                        ..t[0].clone()
                    }
                ]
            )
            .len(),
            1
        );
        let spaced = [ProfileVars {
            account_name: "my dev",
            ..t[0].clone()
        }];
        assert!(profile_name_clashes("{account_name}", "R", &spaced)[0].invalid);
    }
}
