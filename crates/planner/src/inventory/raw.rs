//! Pass 2: the raw serde types the text is read into, before meaning is
//! checked (`deny_unknown_fields`; every field optional where the schema
//! has a default).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInventory {
    pub(super) version: Option<u32>,
    pub(super) name: Option<String>,
    pub(super) source_account: Option<String>,
    #[serde(default)]
    pub(super) allow_source_account: bool,
    pub(super) role: Option<RawRole>,
    pub(super) roles: Option<BTreeMap<String, RawRole>>,
    pub(super) deploy: Option<RawDeploy>,
    pub(super) profiles: Option<RawProfiles>,
    pub(super) accounts: Option<Vec<RawAccount>>,
    pub(super) organization: Option<RawOrganization>,
    pub(super) registry: Option<RawRegistry>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistry {
    pub(super) location: Option<String>,
    pub(super) ssm_prefix: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub(super) name: Option<String>,
    pub(super) stack_name: Option<String>,
    pub(super) trusted_accounts: Option<Vec<String>>,
    pub(super) trusted_principals: Option<Vec<String>>,
    pub(super) trust_conditions: Option<serde_json::Value>,
    pub(super) permissions_boundary: Option<String>,
    pub(super) path: Option<String>,
    pub(super) policy: Option<serde_json::Value>,
    pub(super) managed_policy_arns: Option<Vec<String>>,
    pub(super) external_id: Option<String>,
    pub(super) max_session_duration: Option<u32>,
    pub(super) template: Option<PathBuf>,
    pub(super) parameters: Option<BTreeMap<String, String>>,
    pub(super) output_key: Option<String>,
    pub(super) tags: Option<BTreeMap<String, String>>,
    // Only in `roles:` (pass 1 refuses them under `role:`).
    pub(super) regions: Option<Vec<String>>,
    pub(super) targets: Option<RawRoleTargets>,
    pub(super) profiles: Option<RawRoleProfiles>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoleTargets {
    pub(super) ous: Option<Vec<String>>,
    pub(super) tags: Option<BTreeMap<String, String>>,
    pub(super) accounts: Option<Vec<String>>,
    pub(super) exclude: Option<Vec<String>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoleProfiles {
    pub(super) name: Option<String>,
    pub(super) source_profile: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeploy {
    pub(super) via: Option<String>,
    pub(super) bootstrap_role: Option<String>,
    pub(super) bootstrap_external_id: Option<String>,
    pub(super) regions: Option<Vec<String>>,
    pub(super) concurrency: Option<usize>,
    pub(super) max_in_flight: Option<usize>,
    pub(super) failure_tolerance: Option<usize>,
    pub(super) stackset: Option<RawStackSet>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStackSet {
    pub(super) name: Option<String>,
    pub(super) permission_model: Option<String>,
    pub(super) call_as: Option<String>,
    pub(super) administration_role_arn: Option<String>,
    pub(super) execution_role_name: Option<String>,
    pub(super) auto_deployment: Option<bool>,
    pub(super) retain_stacks_on_account_removal: Option<bool>,
    pub(super) region_concurrency: Option<String>,
    pub(super) concurrency_mode: Option<String>,
    pub(super) max_concurrent_percentage: Option<u32>,
    pub(super) failure_tolerance_percentage: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfiles {
    pub(super) source_profile: Option<String>,
    pub(super) name: Option<String>,
    pub(super) region: Option<String>,
    pub(super) role_session_name: Option<String>,
    pub(super) duration_seconds: Option<u32>,
    pub(super) mfa_serial: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    pub(super) id: String,
    pub(super) name: Option<String>,
    pub(super) regions: Option<Vec<String>>,
    pub(super) tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOrganization {
    pub(super) ous: Option<Vec<String>>,
    #[serde(default = "yes")]
    pub(super) recursive: bool,
    pub(super) tags: Option<BTreeMap<String, String>>,
    pub(super) exclude: Option<Vec<String>>,
}

pub(super) fn yes() -> bool {
    true
}
