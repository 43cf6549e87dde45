//! The ARN registry's document: a versioned JSON file other tools read.
//! Plain data with typed ids; what the next registry holds is decided by
//! `planner::registry::next` (which also reads versions 1 and 2), the
//! bytes are rendered by `reporter::registry`. Its JSON Schema is
//! schemas/registry.v4.schema.json.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AccountId, Status};

/// The version rolecall writes.
pub const SCHEMA_VERSION: u32 = 4;

/// The role key of an inventory with a single `role:`, and of every entry
/// of a version 1 or 2 registry.
pub const DEFAULT_ROLE: &str = "default";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub schema_version: u32,
    /// RFC 3339, UTC.
    pub generated_at: String,
    /// The inventory that wrote it (its `name`); `None` only for a
    /// registry of version 1 or 2, which did not record it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    pub source_account: AccountId,
    /// The rolecall that wrote it (`rolecall 0.4.0 (abc123def456)`); `None`
    /// in a registry of version 3 or earlier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
    /// Sorted by account, then role, then region; one per
    /// account/role/region.
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub account_id: AccountId,
    pub account_name: String,
    /// The role's key in the inventory (`default` for a single `role:`).
    pub role: String,
    /// The IAM role's name in this account and region.
    pub role_name: String,
    pub stack_name: String,
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
    /// The stack it is about: one entry each.
    pub fn key(&self) -> (&AccountId, &str, &str) {
        (&self.account_id, &self.role, &self.region)
    }
}

/// Where a registry lives: a file, or an S3 object (`s3://BUCKET/KEY`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    File(std::path::PathBuf),
    S3 { bucket: String, key: String },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}
