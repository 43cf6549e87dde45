//! The ARN registry's document: a versioned JSON file other tools read.
//! Plain data with typed ids; what the next registry holds is decided by
//! `planner::registry::next`, the bytes are rendered by
//! `reporter::registry`. Its JSON Schema is schemas/registry.v2.schema.json.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AccountId, Status};

/// The version rolecall writes.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub schema_version: u32,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub source_account: AccountId,
    pub stack_name: String,
    pub role_name: String,
    /// Sorted by account, then region; one per account/region.
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub account_id: AccountId,
    pub account_name: String,
    pub region: String,
    pub stack_id: Option<String>,
    /// The stack's output, never computed.
    pub role_arn: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub fingerprint: Option<String>,
    /// created, updated, unchanged, failed, blocked, not-attempted,
    /// orphaned, changed-since-plan
    pub status: Status,
    pub error: Option<String>,
}

impl Entry {
    /// The account/region it is about: one entry each.
    pub fn key(&self) -> (&AccountId, &str) {
        (&self.account_id, &self.region)
    }
}
