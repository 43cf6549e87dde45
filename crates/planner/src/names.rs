//! Rules for the names rolecall writes or reads: regions, IAM roles, stacks,
//! external ids, OU ids and managed policies. Profile names live in
//! `profiles.rs`.

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
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@-_/".contains(*c)))
    {
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

/// An inventory's name: 1-64 letters, digits, `-` and `_`.
pub fn check_inventory_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("{} characters; give 1 to 64", name.chars().count()));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        Some(c) => Err(format!("{c:?} is not allowed")),
        None => Ok(()),
    }
}

/// An IAM path: `/`, or `/a/b/` (at most 512 characters, printable ASCII).
pub fn check_role_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || !path.ends_with('/') {
        return Err("it must start and end with /".to_owned());
    }
    if path.len() > 512 {
        return Err(format!("{} characters; at most 512", path.len()));
    }
    match path.chars().find(|c| !('!'..='~').contains(c)) {
        Some(c) => Err(format!("{c:?} is not allowed")),
        None => Ok(()),
    }
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
}
