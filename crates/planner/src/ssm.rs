//! The registry published as SSM parameters: which parameters it wants,
//! and what to change to get there. Pure; the executor reads and writes.
//!
//! One `String` parameter per entry with a role ARN,
//! `{prefix}/{role}/{account_id}/{region}/role-arn`. rolecall's own carry
//! two tags (`rolecall:managed-by`, `rolecall:inventory`); only those are
//! ever overwritten or deleted, so a hand-made parameter under the prefix
//! (or another inventory's) is never touched.

use std::collections::{BTreeMap, BTreeSet};

use model::registry::{Entry, Registry};

/// The tag of rolecall's parameters that names their inventory: two
/// inventories may share a prefix without deleting each other's.
pub const TAG_INVENTORY: &str = "rolecall:inventory";

/// The parameter of an entry.
pub fn name(prefix: &str, e: &Entry) -> String {
    format!("{prefix}/{}/{}/{}/role-arn", e.role, e.account_id, e.region)
}

/// Every parameter the registry wants: name → role ARN. An entry without
/// an ARN has nothing to publish (a failed entry keeps its last one).
pub fn wanted(registry: &Registry, prefix: &str) -> BTreeMap<String, String> {
    registry
        .entries
        .iter()
        .filter_map(|e| Some((name(prefix, e), e.role_arn.clone()?)))
        .collect()
}

/// What a publish does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New parameters (created with rolecall's tags).
    pub create: Vec<(String, String)>,
    /// rolecall's parameters whose value changed.
    pub overwrite: Vec<(String, String)>,
    /// rolecall's parameters the registry no longer has.
    pub delete: Vec<String>,
    /// Names the registry wants that a parameter not made by rolecall (for
    /// this inventory) holds: left alone, and said.
    pub foreign: Vec<String>,
    pub unchanged: usize,
}

/// From what is under the prefix (`existing`, name → value) and which of
/// it is this inventory's (`ours`) to what the registry wants.
pub fn changes(
    wanted: &BTreeMap<String, String>,
    existing: &BTreeMap<String, String>,
    ours: &BTreeSet<String>,
) -> Changes {
    let mut out = Changes::default();
    for (name, value) in wanted {
        match existing.get(name) {
            None => out.create.push((name.clone(), value.clone())),
            Some(_) if !ours.contains(name) => out.foreign.push(name.clone()),
            Some(v) if v == value => out.unchanged += 1,
            Some(_) => out.overwrite.push((name.clone(), value.clone())),
        }
    }
    out.delete = existing
        .keys()
        .filter(|n| ours.contains(*n) && !wanted.contains_key(*n))
        .cloned()
        .collect();
    out
}

/// `registry.ssm_prefix`: a parameter path of its own (AWS reserves `/aws`
/// and `/ssm`), leaving room for the four levels rolecall adds (a name has
/// at most 15).
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.len() < 2 {
        return Err(format!(
            "\"{prefix}\" is not a parameter path: start with `/`, no trailing `/`"
        ));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-')))
    {
        return Err(format!("\"{prefix}\": '{c}' is not allowed in a parameter name"));
    }
    if prefix.contains("//") {
        return Err(format!("\"{prefix}\" has an empty level"));
    }
    let first = prefix
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Err(format!(
            "\"{prefix}\": paths beginning with /aws or /ssm are reserved by AWS"
        ));
    }
    let levels = prefix.matches('/').count();
    if levels + 4 > 15 {
        return Err(format!(
            "\"{prefix}\" has {levels} levels; with rolecall's 4 (role/account/region/role-arn) a name may have at most 15"
        ));
    }
    if prefix.len() + 96 > 1011 {
        return Err(format!("\"{prefix}\" is too long for a parameter name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_changed_and_only_rolecalls_own() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let wanted = map(&[
            ("/p/a/1/r/role-arn", "arn:1"),
            ("/p/a/2/r/role-arn", "arn:2"),
            ("/p/a/3/r/role-arn", "arn:3"),
            ("/p/a/4/r/role-arn", "arn:4"),
        ]);
        let existing = map(&[
            ("/p/a/1/r/role-arn", "arn:1"),   // ours, same: unchanged
            ("/p/a/2/r/role-arn", "arn:old"), // ours, changed: overwrite
            ("/p/a/3/r/role-arn", "by hand"), // not ours: left alone
            ("/p/a/9/r/role-arn", "arn:9"),   // ours, gone from the registry: delete
            ("/p/notes", "by hand"),          // not ours, not wanted: untouched
        ]);
        let ours: BTreeSet<String> = ["/p/a/1/r/role-arn", "/p/a/2/r/role-arn", "/p/a/9/r/role-arn"]
            .map(String::from)
            .into();
        assert_eq!(
            changes(&wanted, &existing, &ours),
            Changes {
                create: vec![("/p/a/4/r/role-arn".into(), "arn:4".into())],
                overwrite: vec![("/p/a/2/r/role-arn".into(), "arn:2".into())],
                delete: vec!["/p/a/9/r/role-arn".into()],
                foreign: vec!["/p/a/3/r/role-arn".into()],
                unchanged: 1,
            }
        );
        // An unchanged registry writes nothing.
        let all: BTreeSet<String> = wanted.keys().cloned().collect();
        let same = changes(&wanted, &wanted, &all);
        assert_eq!(
            (
                same.create.len(),
                same.overwrite.len(),
                same.delete.len(),
                same.unchanged
            ),
            (0, 0, 0, 4)
        );
    }

    #[test]
    fn a_prefix_is_a_path_of_its_own() {
        assert_eq!(check_prefix("/rolecall/platform"), Ok(()));
        for (bad, why) in [
            (
                "rolecall",
                "\"rolecall\" is not a parameter path: start with `/`, no trailing `/`",
            ),
            (
                "/rolecall/",
                "\"/rolecall/\" is not a parameter path: start with `/`, no trailing `/`",
            ),
            ("/role call", "\"/role call\": ' ' is not allowed in a parameter name"),
            ("/a//b", "\"/a//b\" has an empty level"),
            (
                "/aws/rolecall",
                "\"/aws/rolecall\": paths beginning with /aws or /ssm are reserved by AWS",
            ),
            (
                "/1/2/3/4/5/6/7/8/9/10/11/12",
                "\"/1/2/3/4/5/6/7/8/9/10/11/12\" has 12 levels; with rolecall's 4 (role/account/region/role-arn) a name may have at most 15",
            ),
        ] {
            assert_eq!(check_prefix(bad), Err(why.to_owned()), "{bad}");
        }
    }
}
