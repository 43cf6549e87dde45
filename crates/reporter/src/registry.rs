//! The ARN registry: a versioned JSON document other tools read. Sorted by
//! account then region, stable formatting; `role_arn` is the stack output,
//! never computed. Its JSON Schema is schemas/registry.v2.schema.json.
//!
//! Version 2 (rolecall 0.2) adds the statuses `orphaned` and
//! `changed-since-plan`, and a failed entry keeps the last known ARN.
//! Version 1 files are still read.

use std::collections::BTreeMap;

use model::{AccountId, Outcome};
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 2;
/// Versions `parse` reads.
pub const READS: [u32; 2] = [1, 2];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub schema_version: u32,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub source_account: String,
    pub stack_name: String,
    pub role_name: String,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub account_id: String,
    pub account_name: String,
    pub region: String,
    pub stack_id: Option<String>,
    pub role_arn: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub fingerprint: Option<String>,
    /// created, updated, unchanged, failed, blocked, not-attempted,
    /// orphaned, changed-since-plan
    pub status: String,
    pub error: Option<String>,
}

/// What the registry says about the run, besides the outcomes.
#[derive(Clone, Debug)]
pub struct Meta<'a> {
    pub generated_at: &'a str,
    pub source_account: &'a AccountId,
    pub stack_name: &'a str,
    pub role_name: &'a str,
}

pub fn entry(o: &Outcome) -> Entry {
    Entry {
        account_id: o.account_id.to_string(),
        account_name: o.account_name.clone(),
        region: o.region.clone(),
        stack_id: o.stack_id.clone(),
        role_arn: o.role_arn.clone(),
        outputs: o.outputs.clone(),
        fingerprint: o.fingerprint.clone(),
        status: o.status.to_string(),
        error: o.error.clone(),
    }
}

/// The registry of this run. `kept` are entries of the earlier registry
/// this run leaves as they were (accounts `apply --accounts` did not visit).
/// An account/region that did not succeed this run and has no ARN of its
/// own keeps the last known `role_arn`, `stack_id`, outputs and
/// fingerprint from `previous`: the role most likely still exists, and
/// consumers must not lose it. Entries of this run win.
pub fn build(meta: &Meta<'_>, outcomes: &[Outcome], kept: Vec<Entry>, previous: &[Entry]) -> Registry {
    let last: BTreeMap<(&str, &str), &Entry> = previous
        .iter()
        .map(|e| ((e.account_id.as_str(), e.region.as_str()), e))
        .collect();
    let mut entries: BTreeMap<(String, String), Entry> = kept
        .into_iter()
        .map(|e| ((e.account_id.clone(), e.region.clone()), e))
        .collect();
    for o in outcomes {
        let mut e = entry(o);
        if !o.status.succeeded()
            && e.role_arn.is_none()
            && let Some(old) = last.get(&(e.account_id.as_str(), e.region.as_str()))
        {
            e.role_arn = old.role_arn.clone();
            e.stack_id = old.stack_id.clone();
            e.outputs = old.outputs.clone();
            e.fingerprint = old.fingerprint.clone();
        }
        entries.insert((e.account_id.clone(), e.region.clone()), e);
    }
    Registry {
        schema_version: SCHEMA_VERSION,
        generated_at: meta.generated_at.to_owned(),
        source_account: meta.source_account.to_string(),
        stack_name: meta.stack_name.to_owned(),
        role_name: meta.role_name.to_owned(),
        entries: entries.into_values().collect(),
    }
}

/// Pretty JSON with a trailing newline: the bytes that go to the file.
pub fn to_json(registry: &Registry) -> String {
    let mut text = serde_json::to_string_pretty(registry).expect("the registry always serialises");
    text.push('\n');
    text
}

/// Reads a registry written by this or an earlier rolecall of the same
/// schema version.
pub fn parse(text: &str) -> Result<Registry, String> {
    let registry: Registry = serde_json::from_str(text).map_err(|e| format!("not a rolecall registry: {e}"))?;
    if !READS.contains(&registry.schema_version) {
        return Err(format!(
            "schema_version {} is not supported (this rolecall reads 1 and 2)",
            registry.schema_version
        ));
    }
    Ok(registry)
}
