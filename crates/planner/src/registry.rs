//! The registry's next state: one pure function from the previous
//! registry, the run's outcomes and the run's scope, whatever command ran
//! and wherever the document is stored. Also which versions are read.
//!
//! Version 3 (rolecall 0.3) names the inventory in the header, and every
//! entry its role (key, IAM name, stack): one inventory may hold several
//! roles. Version 2 (rolecall 0.2) added the statuses `orphaned` and
//! `changed-since-plan`, and a failed entry keeps the last known ARN.
//! Versions 1 and 2 are still read: their entries are role `default`,
//! with the header's role and stack names.

use std::collections::BTreeMap;

use model::registry::{DEFAULT_ROLE, Entry, Location, Registry, SCHEMA_VERSION};
use model::{AccountId, Outcome, Status};
use serde::Deserialize;

/// Versions `parse` reads.
pub const READS: [u32; 3] = [1, 2, 3];

/// What the registry says about the run, besides the outcomes.
#[derive(Clone, Debug)]
pub struct Header<'a> {
    pub generated_at: &'a str,
    /// The inventory's name.
    pub inventory: &'a str,
    pub source_account: &'a AccountId,
    /// The rolecall writing it, with its version.
    pub written_by: &'a str,
}

/// What the run looked at: it decides which entries of the previous
/// registry the run leaves as they were.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// `apply` over the whole inventory: every target and every orphan was
    /// visited, so an earlier entry the run did not report is gone (it left
    /// the inventory and its stack is gone too).
    Inventory,
    /// `apply --accounts` / `--roles`: only these accounts' stacks of these
    /// roles (`None`: all) were visited; every other entry stays as it was.
    Narrowed {
        accounts: Option<&'a [AccountId]>,
        roles: Option<&'a [String]>,
    },
    /// `destroy`: the account/regions with an outcome were visited;
    /// deleted stacks and stacks that were not there leave the registry,
    /// every other entry stays.
    Destroy,
}

/// The registry after this run. Rules, in order:
/// 1. Entries of the previous registry outside the run's scope stay as
///    they were.
/// 2. Each outcome replaces its account/region's entry; a deleted stack
///    (and, for destroy, one that was not there) removes it.
/// 3. An outcome without a role ARN that is not a success, or an orphan
///    whose stack could not be read, keeps the last known `role_arn`,
///    `stack_id`, outputs and fingerprint: the role most likely still
///    exists, and consumers must not lose it.
pub fn next(previous: Option<&Registry>, header: &Header<'_>, outcomes: &[Outcome], scope: Scope<'_>) -> Registry {
    let previous: &[Entry] = previous.map_or(&[], |r| &r.entries);
    let last: BTreeMap<(&AccountId, &str, &str), &Entry> = previous.iter().map(|e| (e.key(), e)).collect();
    let visited = |e: &Entry| {
        outcomes
            .iter()
            .any(|o| o.account_id == e.account_id && o.role == e.role && o.region == e.region)
    };
    let mut entries: BTreeMap<(AccountId, String, String), Entry> = previous
        .iter()
        .filter(|e| match scope {
            Scope::Inventory => false,
            Scope::Narrowed { accounts, roles } => {
                !(accounts.is_none_or(|ids| ids.contains(&e.account_id)) && roles.is_none_or(|r| r.contains(&e.role)))
            }
            Scope::Destroy => !visited(e),
        })
        .map(|e| ((e.account_id.clone(), e.role.clone(), e.region.clone()), e.clone()))
        .collect();
    for o in outcomes {
        let key = (o.account_id.clone(), o.role.clone(), o.region.clone());
        let gone = o.status == Status::Deleted || (matches!(scope, Scope::Destroy) && o.status == Status::Unchanged);
        if gone {
            entries.remove(&key);
            continue;
        }
        let mut e = entry(o);
        if e.role_arn.is_none()
            && let Some(old) = last.get(&(&o.account_id, o.role.as_str(), o.region.as_str()))
        {
            if !o.status.succeeded() {
                // What this run saw of a failed stack is no role: the last
                // known one stands, with its stack.
                e.role_arn = old.role_arn.clone();
                e.stack_id = old.stack_id.clone();
                e.outputs = old.outputs.clone();
                e.fingerprint = old.fingerprint.clone();
            } else if o.status == Status::Orphaned {
                // An orphan: what could be read of its stack, the rest as
                // the registry last knew it.
                e.role_arn = old.role_arn.clone();
                e.stack_id = e.stack_id.or_else(|| old.stack_id.clone());
                if e.outputs.is_empty() {
                    e.outputs = old.outputs.clone();
                }
                e.fingerprint = e.fingerprint.or_else(|| old.fingerprint.clone());
            }
        }
        entries.insert(key, e);
    }
    Registry {
        schema_version: SCHEMA_VERSION,
        generated_at: header.generated_at.to_owned(),
        inventory: Some(header.inventory.to_owned()),
        source_account: header.source_account.clone(),
        written_by: Some(header.written_by.to_owned()),
        entries: entries.into_values().collect(),
    }
}

/// One outcome as the registry records it.
pub fn entry(o: &Outcome) -> Entry {
    Entry {
        account_id: o.account_id.clone(),
        account_name: o.account_name.clone(),
        role: o.role.clone(),
        role_name: o.role_name.clone(),
        stack_name: o.stack_name.clone(),
        region: o.region.clone(),
        stack_id: o.stack_id.clone(),
        role_arn: o.role_arn.clone(),
        outputs: o.outputs.clone(),
        fingerprint: o.fingerprint.clone(),
        status: o.status,
        error: o.error.clone(),
    }
}

/// Reads a registry written by this or an earlier rolecall (the versions
/// in `READS`).
pub fn parse(text: &str) -> Result<Registry, String> {
    #[derive(Deserialize)]
    struct Version {
        schema_version: u32,
    }
    let not_ours = |e: serde_json::Error| format!("not a rolecall registry: {e}");
    let version: Version = serde_json::from_str(text).map_err(not_ours)?;
    match version.schema_version {
        // Version 4 only added `written_by`.
        3 | SCHEMA_VERSION => serde_json::from_str(text).map_err(not_ours),
        1 | 2 => serde_json::from_str::<Single>(text)
            .map(Single::upgrade)
            .map_err(not_ours),
        v => Err(format!(
            "schema_version {v} is not supported (this rolecall reads 1 to 4; a newer rolecall wrote it)"
        )),
    }
}

/// A registry of versions 1 and 2: one role, named in the header.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Single {
    schema_version: u32,
    generated_at: String,
    source_account: AccountId,
    stack_name: String,
    role_name: String,
    entries: Vec<SingleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SingleEntry {
    account_id: AccountId,
    account_name: String,
    region: String,
    stack_id: Option<String>,
    role_arn: Option<String>,
    outputs: BTreeMap<String, String>,
    fingerprint: Option<String>,
    status: Status,
    error: Option<String>,
}

impl Single {
    /// As version 3: every entry is role `default`, with the header's
    /// stack name and role name.
    fn upgrade(self) -> Registry {
        let entries = self
            .entries
            .into_iter()
            .map(|e| Entry {
                role_name: role_name(&self.role_name, &e.region, e.role_arn.as_deref()),
                account_id: e.account_id,
                account_name: e.account_name,
                role: DEFAULT_ROLE.to_owned(),
                stack_name: self.stack_name.clone(),
                region: e.region,
                stack_id: e.stack_id,
                role_arn: e.role_arn,
                outputs: e.outputs,
                fingerprint: e.fingerprint,
                status: e.status,
                error: e.error,
            })
            .collect();
        Registry {
            schema_version: self.schema_version,
            generated_at: self.generated_at,
            inventory: None,
            source_account: self.source_account,
            written_by: None,
            entries,
        }
    }
}

/// The role's IAM name in a region, as the registry records it: its ARN's,
/// else `role.name` with `{region}` filled in.
pub fn role_name(template: &str, region: &str, role_arn: Option<&str>) -> String {
    role_arn
        .and_then(crate::partition::role_name_of_arn)
        .map_or_else(|| crate::names::role_name_in(template, region), str::to_owned)
}

/// A registry location as `--registry` or `registry.location` gives it: a
/// path, or `s3://BUCKET/KEY` (a bucket name as S3 allows it, a key).
pub fn location(text: &str) -> Result<Location, String> {
    let Some(rest) = text.strip_prefix("s3://") else {
        if text.is_empty() {
            return Err("the location is empty".to_owned());
        }
        if text.contains("://") {
            return Err(format!("\"{text}\" is neither a path nor an s3:// URL"));
        }
        return Ok(Location::File(text.into()));
    };
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !bucket_ok {
        return Err(format!(
            "\"{bucket}\" is not an S3 bucket name (3-63 lowercase letters, digits, `-` and `.`)"
        ));
    }
    if key.is_empty() || key.ends_with('/') {
        return Err(format!(
            "s3://{rest} names no object: add the key, e.g. s3://{bucket}/rolecall/registry.json"
        ));
    }
    Ok(Location::S3 {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    })
}

/// The entries `registry get` and `registry list` answer with: of an
/// account (its id, or its name), and of a role and a region when given.
pub fn select<'a>(
    registry: &'a Registry,
    account: Option<&str>,
    role: Option<&str>,
    region: Option<&str>,
) -> Vec<&'a Entry> {
    registry
        .entries
        .iter()
        .filter(|e| account.is_none_or(|a| e.account_id.as_str() == a || e.account_name == a))
        .filter(|e| role.is_none_or(|r| e.role == r))
        .filter(|e| region.is_none_or(|r| e.region == r))
        .collect()
}

#[cfg(test)]
mod tests {
    use model::registry::Registry;
    use model::{AccountId, Outcome, Status};

    use super::{Header, Scope, next};

    fn id(n: u64) -> AccountId {
        AccountId::parse(&format!("{n:012}")).unwrap()
    }

    fn outcome(n: u64, region: &str, status: Status, arn: bool) -> Outcome {
        Outcome {
            account_id: id(n),
            account_name: format!("acct-{n}"),
            role: "default".into(),
            role_name: "RolecallTarget".into(),
            stack_name: "rolecall-target-role".into(),
            region: region.into(),
            action: None,
            status,
            stack_id: arn.then(|| format!("stack-{n}-{region}")),
            outputs: if arn {
                [("RoleArn".to_owned(), format!("role-{n}-{region}"))].into()
            } else {
                Default::default()
            },
            role_arn: arn.then(|| format!("role-{n}-{region}")),
            fingerprint: arn.then(|| "fp".to_owned()),
            changes: Vec::new(),
            error: (!status.succeeded()).then(|| "why".to_owned()),
        }
    }

    fn header() -> (AccountId, &'static str) {
        (id(111111111111), "2026-12-01T00:00:00Z")
    }

    fn run(previous: Option<&Registry>, outcomes: &[Outcome], scope: Scope<'_>) -> Registry {
        let (source, at) = header();
        let h = Header {
            generated_at: at,
            inventory: "prod",
            source_account: &source,
            written_by: "rolecall 0.0.0-test",
        };
        next(previous, &h, outcomes, scope)
    }

    /// `account region status arn stack` per entry.
    fn rows(r: &Registry) -> Vec<String> {
        r.entries
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {} {}",
                    e.account_id.as_str().trim_start_matches('0'),
                    e.region,
                    e.status,
                    e.role_arn.as_deref().unwrap_or("-"),
                    e.stack_id.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    fn first() -> Registry {
        run(
            None,
            &[
                outcome(1, "us-east-1", Status::Created, true),
                outcome(2, "us-east-1", Status::Created, true),
                outcome(2, "eu-west-1", Status::Created, true),
                outcome(3, "us-east-1", Status::Created, true),
            ],
            Scope::Inventory,
        )
    }

    #[test]
    fn entries_are_sorted_and_carry_the_header() {
        let r = run(
            None,
            &[
                outcome(2, "us-east-1", Status::Created, true),
                outcome(1, "us-east-1", Status::Failed, false),
            ],
            Scope::Inventory,
        );
        assert_eq!(
            rows(&r),
            [
                "1 us-east-1 failed - -",
                "2 us-east-1 created role-2-us-east-1 stack-2-us-east-1"
            ]
        );
        assert_eq!(
            (
                r.schema_version,
                r.inventory.as_deref(),
                r.source_account.as_str(),
                r.written_by.as_deref()
            ),
            (4, Some("prod"), "111111111111", Some("rolecall 0.0.0-test"))
        );
    }

    #[test]
    fn a_whole_inventory_run_drops_what_it_did_not_report() {
        let r = run(
            Some(&first()),
            &[outcome(1, "us-east-1", Status::Unchanged, true)],
            Scope::Inventory,
        );
        assert_eq!(rows(&r), ["1 us-east-1 unchanged role-1-us-east-1 stack-1-us-east-1"]);
    }

    #[test]
    fn accounts_keeps_the_other_accounts_entries_as_they_were() {
        let only = [id(2)];
        let r = run(
            Some(&first()),
            &[outcome(2, "us-east-1", Status::Updated, true)],
            Scope::Narrowed {
                accounts: Some(&only),
                roles: None,
            },
        );
        // Account 2's eu-west-1 was in the run's scope but not reported:
        // it left the account's regions, so its entry goes.
        assert_eq!(
            rows(&r),
            [
                "1 us-east-1 created role-1-us-east-1 stack-1-us-east-1",
                "2 us-east-1 updated role-2-us-east-1 stack-2-us-east-1",
                "3 us-east-1 created role-3-us-east-1 stack-3-us-east-1",
            ]
        );
    }

    #[test]
    fn a_failure_keeps_the_last_known_arn_stack_outputs_and_fingerprint() {
        let r = run(
            Some(&first()),
            &[
                outcome(1, "us-east-1", Status::Failed, false),
                outcome(2, "us-east-1", Status::NotAttempted, false),
                outcome(2, "eu-west-1", Status::ChangedSincePlan, false),
                outcome(3, "us-east-1", Status::Blocked, false),
                // Never had an entry: nothing to keep.
                outcome(4, "us-east-1", Status::Failed, false),
            ],
            Scope::Inventory,
        );
        assert_eq!(
            rows(&r),
            [
                "1 us-east-1 failed role-1-us-east-1 stack-1-us-east-1",
                "2 eu-west-1 changed-since-plan role-2-eu-west-1 stack-2-eu-west-1",
                "2 us-east-1 not-attempted role-2-us-east-1 stack-2-us-east-1",
                "3 us-east-1 blocked role-3-us-east-1 stack-3-us-east-1",
                "4 us-east-1 failed - -",
            ]
        );
        let e = &r.entries[0];
        assert_eq!(
            (e.outputs.len(), e.fingerprint.as_deref(), e.error.as_deref()),
            (1, Some("fp"), Some("why"))
        );
    }

    #[test]
    fn an_orphan_keeps_what_the_registry_knew_when_its_stack_could_not_be_read() {
        let mut orphan = outcome(3, "us-east-1", Status::Orphaned, false);
        orphan.error = None;
        let seen = outcome(2, "eu-west-1", Status::Orphaned, true);
        let r = run(
            Some(&first()),
            &[outcome(1, "us-east-1", Status::Unchanged, true), seen, orphan],
            Scope::Inventory,
        );
        assert_eq!(
            rows(&r),
            [
                "1 us-east-1 unchanged role-1-us-east-1 stack-1-us-east-1",
                "2 eu-west-1 orphaned role-2-eu-west-1 stack-2-eu-west-1",
                "3 us-east-1 orphaned role-3-us-east-1 stack-3-us-east-1",
            ]
        );
    }

    #[test]
    fn pruned_stacks_leave_the_registry() {
        let r = run(
            Some(&first()),
            &[
                outcome(1, "us-east-1", Status::Unchanged, true),
                outcome(2, "us-east-1", Status::Unchanged, true),
                outcome(2, "eu-west-1", Status::Deleted, false),
                outcome(3, "us-east-1", Status::Deleted, false),
            ],
            Scope::Inventory,
        );
        assert_eq!(
            rows(&r),
            [
                "1 us-east-1 unchanged role-1-us-east-1 stack-1-us-east-1",
                "2 us-east-1 unchanged role-2-us-east-1 stack-2-us-east-1",
            ]
        );
    }

    #[test]
    fn destroy_removes_what_it_deleted_or_found_gone_and_keeps_the_rest() {
        let r = run(
            Some(&first()),
            &[
                outcome(2, "us-east-1", Status::Deleted, false),
                // No stack there: nothing to delete, nothing to record.
                outcome(2, "eu-west-1", Status::Unchanged, false),
                outcome(3, "us-east-1", Status::Failed, false),
            ],
            Scope::Destroy,
        );
        assert_eq!(
            rows(&r),
            [
                "1 us-east-1 created role-1-us-east-1 stack-1-us-east-1",
                "3 us-east-1 failed role-3-us-east-1 stack-3-us-east-1",
            ]
        );
    }

    /// `--roles`: the other roles' entries stay as they were.
    #[test]
    fn roles_keeps_the_other_roles_entries() {
        let mut deploy = outcome(1, "us-east-1", Status::Created, true);
        deploy.role = "deploy".into();
        let before = run(
            None,
            &[outcome(1, "us-east-1", Status::Created, true), deploy.clone()],
            Scope::Inventory,
        );
        deploy.status = Status::Updated;
        let only = ["deploy".to_owned()];
        let r = run(
            Some(&before),
            &[deploy],
            Scope::Narrowed {
                accounts: None,
                roles: Some(&only),
            },
        );
        let keys: Vec<(String, String)> = r
            .entries
            .iter()
            .map(|e| (e.role.clone(), e.status.to_string()))
            .collect();
        assert_eq!(
            keys,
            [
                ("default".into(), "created".into()),
                ("deploy".into(), "updated".into())
            ]
        );
    }

    /// The same stack of two roles: two entries, each kept by its own
    /// rules.
    #[test]
    fn entries_are_per_role() {
        let mut deploy = outcome(1, "us-east-1", Status::Created, true);
        deploy.role = "deploy".into();
        let r = run(
            Some(&first()),
            &[outcome(1, "us-east-1", Status::Failed, false), deploy],
            Scope::Inventory,
        );
        let keys: Vec<(String, String)> = r
            .entries
            .iter()
            .map(|e| (e.role.clone(), e.status.to_string()))
            .collect();
        assert_eq!(
            keys,
            [("default".into(), "failed".into()), ("deploy".into(), "created".into())]
        );
        assert_eq!(
            r.entries[0].role_arn.as_deref(),
            Some("role-1-us-east-1"),
            "the failure keeps its own role's ARN"
        );
    }

    #[test]
    fn versions_read_and_refused() {
        let text = serde_json::to_string(&first()).unwrap();
        assert_eq!(super::parse(&text).unwrap(), first());
        // Version 3: the same without `written_by`.
        let v3 = serde_json::to_value(first()).unwrap();
        let mut v3 = v3.as_object().unwrap().clone();
        v3.remove("written_by");
        v3.insert("schema_version".into(), 3.into());
        let read = super::parse(&serde_json::Value::Object(v3).to_string()).unwrap();
        assert_eq!(
            (read.schema_version, read.written_by, read.entries),
            (3, None, first().entries)
        );
        assert!(
            super::parse("{\"schema_version\": 5}")
                .unwrap_err()
                .contains("newer rolecall")
        );
        let bad_id = text.replace("\"000000000001\"", "\"1\"");
        assert_ne!(bad_id, text);
        let err = super::parse(&bad_id).unwrap_err();
        assert!(err.contains("is not an account id"), "{err}");
    }

    #[test]
    fn a_location_is_a_path_or_an_s3_object() {
        use model::registry::Location;
        assert_eq!(super::location("reg.json"), Ok(Location::File("reg.json".into())));
        assert_eq!(
            super::location("s3://platform-registry/rolecall/apps.json"),
            Ok(Location::S3 {
                bucket: "platform-registry".into(),
                key: "rolecall/apps.json".into()
            })
        );
        for (bad, why) in [
            ("", "the location is empty"),
            ("https://x/y", "\"https://x/y\" is neither a path nor an s3:// URL"),
            (
                "s3://Bad_Bucket/k",
                "\"Bad_Bucket\" is not an S3 bucket name (3-63 lowercase letters, digits, `-` and `.`)",
            ),
            (
                "s3://bucket",
                "s3://bucket names no object: add the key, e.g. s3://bucket/rolecall/registry.json",
            ),
            (
                "s3://bucket/dir/",
                "s3://bucket/dir/ names no object: add the key, e.g. s3://bucket/rolecall/registry.json",
            ),
        ] {
            assert_eq!(super::location(bad), Err(why.to_owned()), "{bad}");
        }
    }
}
