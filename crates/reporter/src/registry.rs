//! The ARN registry: a versioned JSON document other tools read. Sorted by
//! account then region, stable formatting; `role_arn` is the stack output,
//! never computed. Its JSON Schema is schemas/registry.v1.schema.json.

use std::collections::BTreeMap;

use model::{AccountId, Outcome};
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

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
    /// created, updated, unchanged, failed, blocked, not-attempted
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

/// The registry of this run. `carried` are entries of an earlier registry
/// for accounts this run did not visit (`apply --accounts`); entries of
/// this run win.
pub fn build(meta: &Meta<'_>, outcomes: &[Outcome], carried: Vec<Entry>) -> Registry {
    let mut entries: BTreeMap<(String, String), Entry> = carried
        .into_iter()
        .map(|e| ((e.account_id.clone(), e.region.clone()), e))
        .collect();
    for o in outcomes {
        entries.insert((o.account_id.to_string(), o.region.clone()), entry(o));
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
    if registry.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "schema_version {} is not supported (this rolecall reads {SCHEMA_VERSION})",
            registry.schema_version
        ));
    }
    Ok(registry)
}
