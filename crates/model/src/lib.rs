//! Plain data shared by the rolecall crates: the validated inventory, resolved
//! targets, what was observed in the cloud, the plan, and executor events.
//!
//! Nothing here does IO or decides anything; the types are public-field
//! values so that every crate (and every test) can build them directly.

// Libraries never print: output goes through a writer the CLI hands in
// (or, in the executor, as events).
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Tag on every stack rolecall creates; its absence means "not ours".
pub const TAG_MANAGED_BY: &str = "rolecall:managed-by";
/// Tag holding the sha256 of the rendered template and parameters.
pub const TAG_FINGERPRINT: &str = "rolecall:fingerprint";
/// Value of [`TAG_MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "rolecall";

pub mod registry;

/// A 12-digit AWS account id. Always a string: ids may start with `0`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

/// Read back (a registry) only when it is 12 digits.
impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<AccountId, D::Error> {
        let text = String::deserialize(deserializer)?;
        AccountId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an account id (12 digits)")))
    }
}

impl AccountId {
    /// Accepts exactly 12 ASCII digits.
    pub fn parse(s: &str) -> Option<AccountId> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then(|| AccountId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated inventory: every default filled in, every id checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    /// The inventory file, for messages.
    pub origin: PathBuf,
    /// Its identity (`name:`, else the file's stem): it names the
    /// inventory's block in a config file, its registry and the default
    /// registry path, so that several inventories live side by side.
    pub name: String,
    pub source_account: AccountId,
    pub allow_source_account: bool,
    /// The catalog of roles, by key. An inventory with a single `role:` is
    /// a catalog of one, key `default` (`registry::DEFAULT_ROLE`).
    pub roles: Vec<CatalogRole>,
    pub deploy: Deploy,
    pub profiles: ProfilesSpec,
    pub accounts: Vec<AccountEntry>,
    pub organization: Option<OrgDiscovery>,
    /// `registry:`: where the ARN registry lives, and where it is published.
    pub registry: RegistrySpec,
}

/// `registry:` of the inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistrySpec {
    /// `location` (`--registry` overrides it); `None`:
    /// `rolecall-registry-NAME.json`.
    pub location: Option<registry::Location>,
    /// `ssm_prefix`: every entry's role ARN is published under it as an
    /// SSM parameter in the caller's account and region.
    pub ssm_prefix: Option<String>,
}

/// One role of the catalog: what it is, and where it goes.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogRole {
    /// Its key (`admin`, `readonly`, `deploy`; `default` for `role:`).
    pub key: String,
    pub spec: RoleSpec,
    /// Narrows the inventory's targets for this role; `None`: every target.
    pub targets: Option<RoleTargets>,
    /// Replaces `deploy.regions` for this role; `None`: the inventory's.
    pub regions: Option<Vec<String>>,
    /// The inventory's `profiles:` as they apply to this role.
    pub profiles: ProfilesSpec,
}

/// Which of the inventory's targets a role goes to: accounts under one of
/// `ous` (at any depth) or listed in `accounts` (when either is given),
/// carrying every tag of `tags`, and not in `exclude`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleTargets {
    pub ous: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub accounts: Vec<AccountId>,
    pub exclude: Vec<AccountId>,
}

impl Inventory {
    /// The role of the catalog with this key.
    pub fn role(&self, key: &str) -> Option<&CatalogRole> {
        self.roles.iter().find(|r| r.key == key)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RoleSpec {
    pub name: String,
    pub stack_name: String,
    pub trusted_accounts: Vec<AccountId>,
    /// IAM role or user ARNs trusted besides (or, without
    /// `trusted_accounts`, instead of) whole accounts.
    pub trusted_principals: Vec<String>,
    /// An IAM condition block (operator → key → value) added to every
    /// trust statement, e.g. `aws:PrincipalOrgID`.
    pub trust_conditions: Option<serde_json::Value>,
    /// A managed policy (name or ARN) bounding the role's permissions.
    pub permissions_boundary: Option<String>,
    /// The role's IAM path (`/` by default).
    pub path: Option<String>,
    /// The inline policy document; `None`: no inline policy (`policy:
    /// none`, or managed policies alone). Validation puts the full-access
    /// policy here when the inventory gives neither.
    pub policy: Option<serde_json::Value>,
    pub managed_policy_arns: Vec<String>,
    pub external_id: Option<String>,
    pub max_session_duration: u32,
    /// The user's own template instead of the built-in one.
    pub template: Option<CustomTemplate>,
    /// Name of the stack output that holds the role ARN.
    pub output_key: String,
    /// Stack tags (CloudFormation propagates them to the role).
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CustomTemplate {
    /// As written in the inventory (relative to it).
    pub path: PathBuf,
    pub body: String,
    pub parameters: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployVia {
    BootstrapRole,
    Stacksets,
}

/// How a stack set reaches accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PermissionModel {
    /// An administration role in the caller's account assumes an execution
    /// role in each target; targets are accounts.
    SelfManaged,
    /// Organizations trusted access; targets are OUs, and accounts that join
    /// them can get the stack automatically.
    ServiceManaged,
}

/// `deploy.stackset`: the stack set and its operation preferences.
#[derive(Clone, Debug, PartialEq)]
pub struct StackSetSpec {
    pub name: String,
    pub permission_model: PermissionModel,
    /// `CallAs: DELEGATED_ADMIN` (service-managed from a delegated
    /// administrator account) instead of `SELF`.
    pub delegated_admin: bool,
    /// Self-managed; `None`: AWS's default (AWSCloudFormationStackSetAdministrationRole).
    pub administration_role_arn: Option<String>,
    /// Self-managed; `None`: AWS's default (AWSCloudFormationStackSetExecutionRole).
    pub execution_role_name: Option<String>,
    /// Service-managed: new accounts in the OUs get the stack.
    pub auto_deployment: bool,
    pub retain_stacks_on_account_removal: bool,
    /// Regions of one operation at once (PARALLEL) or one after another.
    pub region_parallel: bool,
    /// SOFT_FAILURE_TOLERANCE instead of STRICT_FAILURE_TOLERANCE.
    pub soft_failure_tolerance: bool,
    /// MaxConcurrentPercentage instead of a count (`deploy.concurrency`).
    pub max_concurrent_percentage: Option<u8>,
    /// FailureTolerancePercentage instead of a count (`failure_tolerance`).
    pub failure_tolerance_percentage: Option<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Deploy {
    pub via: DeployVia,
    /// Set when `via` is stacksets.
    pub stackset: Option<StackSetSpec>,
    pub bootstrap_role: String,
    pub bootstrap_external_id: Option<String>,
    pub regions: Vec<String>,
    /// Accounts making calls at once (waiting ones do not count).
    pub concurrency: usize,
    /// Accounts begun and not finished at most, waiting ones included.
    pub max_in_flight: usize,
    pub failure_tolerance: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProfilesSpec {
    pub source_profile: String,
    /// Name template with `{account_name}` `{account_id}` `{role_name}` `{region}`.
    pub name: String,
    /// `None`: the target's first region.
    pub region: Option<String>,
    pub role_session_name: Option<String>,
    /// Must not exceed `role.max_session_duration`.
    pub duration_seconds: Option<u32>,
    /// The MFA device every profile names, for roles whose trust requires
    /// MFA (`aws:MultiFactorAuthPresent`).
    pub mfa_serial: Option<String>,
}

/// An account listed in the inventory.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountEntry {
    pub id: AccountId,
    pub name: Option<String>,
    pub regions: Option<Vec<String>>,
    pub tags: BTreeMap<String, String>,
}

impl AccountEntry {
    /// The account's regions: its own `regions`, else `deploy.regions`.
    pub fn regions<'a>(&'a self, deploy_regions: &'a [String]) -> &'a [String] {
        self.regions.as_deref().unwrap_or(deploy_regions)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrgDiscovery {
    /// OU ids (`ou-…`) or root ids (`r-…`).
    pub ous: Vec<String>,
    pub recursive: bool,
    /// Account tags that must all match.
    pub tags: BTreeMap<String, String>,
    pub exclude: Vec<AccountId>,
}

/// An account as AWS Organizations lists it (ListAccounts,
/// ListAccountsForParent): the one type for it in every crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: AccountId,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
}

impl OrgAccount {
    /// Organizations' status of an account in use.
    pub const ACTIVE: &'static str = "ACTIVE";

    pub fn is_active(&self) -> bool {
        self.status == Self::ACTIVE
    }
}

/// An ACTIVE account that discovery found under one of the inventory's
/// OUs: where it was listed, and its tags when a tag filter needed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredAccount {
    pub id: AccountId,
    pub name: String,
    /// The OU (or root) it was listed under.
    pub parent: String,
    /// Every OU (or root) above it that discovery walked, from the
    /// inventory's OU down to `parent`: a role's `targets.ous` match any.
    pub ous: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetSource {
    Inventory,
    Organization,
}

/// One account to act on, with the regions to act in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    pub account_id: AccountId,
    pub account_name: String,
    /// Every region any of its roles goes to, in the inventory's order.
    pub regions: Vec<String>,
    pub source: TargetSource,
    /// Where discovery found it (OU or root id); `None` for inventory-only accounts.
    pub parent: Option<String>,
    /// The stacks of this account: each role of the catalog it gets, in
    /// that role's regions. One AssumeRole serves them all.
    pub roles: Vec<TargetRole>,
}

/// One role of the catalog in one target account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetRole {
    /// The role's key in the inventory.
    pub role: String,
    pub regions: Vec<String>,
}

impl Target {
    /// The account with one role in `regions` (its `regions` too).
    pub fn with_role(mut self, role: &str) -> Target {
        self.roles = vec![TargetRole {
            role: role.to_owned(),
            regions: self.regions.clone(),
        }];
        self
    }

    /// An account known from what was deployed there (a registry entry,
    /// an outcome), with no stacks yet: `add_stack` gives it its stacks.
    pub fn known(account_id: &AccountId, account_name: &str) -> Target {
        Target {
            account_id: account_id.clone(),
            account_name: account_name.to_owned(),
            regions: Vec::new(),
            source: TargetSource::Inventory,
            parent: None,
            roles: Vec::new(),
        }
    }

    /// One more stack of the account: `role` in `region`.
    pub fn add_stack(&mut self, role: &str, region: &str) {
        if !self.regions.iter().any(|r| r == region) {
            self.regions.push(region.to_owned());
        }
        match self.roles.iter_mut().find(|r| r.role == role) {
            Some(r) => r.regions.push(region.to_owned()),
            None => self.roles.push(TargetRole {
                role: role.to_owned(),
                regions: vec![region.to_owned()],
            }),
        }
    }

    /// The account with only `role`'s stacks; `None` when the role does
    /// not go there.
    pub fn for_role(&self, role: &str) -> Option<Target> {
        let mine = self.roles.iter().find(|r| r.role == role)?;
        Some(Target {
            regions: mine.regions.clone(),
            roles: vec![mine.clone()],
            ..self.clone()
        })
    }

    /// Every stack of the account: (role key, region).
    pub fn stacks(&self) -> impl Iterator<Item = (&str, &str)> {
        self.roles
            .iter()
            .flat_map(|r| r.regions.iter().map(move |region| (r.role.as_str(), region.as_str())))
    }
}

/// What the role stack should be, the same for every target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The role's key in the inventory (`default` for a single `role:`).
    pub role: String,
    /// `role.name`, possibly with `{region}`.
    pub role_name: String,
    pub stack_name: String,
    pub template_body: String,
    pub parameters: BTreeMap<String, String>,
    /// User tags only; the executor adds the rolecall tags.
    pub tags: BTreeMap<String, String>,
    pub fingerprint: String,
    pub output_key: String,
    /// The template declares a `Transform` (macros, SAM): CloudFormation
    /// wants CAPABILITY_AUTO_EXPAND as well.
    pub auto_expand: bool,
}

impl Desired {
    /// User tags plus the two rolecall tags, as they go on the stack.
    pub fn stack_tags(&self) -> BTreeMap<String, String> {
        let mut tags = self.tags.clone();
        tags.insert(TAG_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned());
        tags.insert(TAG_FINGERPRINT.to_owned(), self.fingerprint.clone());
        tags
    }
}

/// A stack as DescribeStacks reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StackInfo {
    pub stack_id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    /// GetTemplate's body, read only where the tags alone cannot be
    /// trusted: a stack whose last update rolled back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_template: Option<String>,
}

/// A stack set as DescribeStackSet reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StackSetInfo {
    pub name: String,
    /// `ACTIVE` or `DELETED`.
    pub status: String,
    pub tags: BTreeMap<String, String>,
}

/// One stack instance as ListStackInstances reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstanceInfo {
    pub account_id: AccountId,
    pub region: String,
    /// `CURRENT`, `OUTDATED` or `INOPERABLE`.
    pub status: String,
    /// `SUCCEEDED`, `FAILED`, `PENDING`, `RUNNING`, `CANCELLED`, `INOPERABLE`.
    pub detailed_status: Option<String>,
    pub reason: Option<String>,
    /// The instance's stack in the target account, when AWS knows it.
    pub stack_id: Option<String>,
}

/// The planner's verdict for the stack set itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StackSetDecision {
    pub name: String,
    pub action: Action,
    pub reason: String,
}

/// What is there in one account/region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    Absent,
    Present(StackInfo),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Recover,
    /// In progress: wait, then observe and decide again.
    Wait,
    NoOp,
    Blocked,
    /// `destroy`: delete rolecall's stack.
    Delete,
    /// The account (or region) left the inventory but its stack is still
    /// there; only `destroy --orphans` removes it.
    Orphaned,
    /// `apply --revert-drift`: the role differs from the inventory while its
    /// stack is current; put it back.
    RevertDrift,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::Create,
        Action::Update,
        Action::Recover,
        Action::Wait,
        Action::NoOp,
        Action::Blocked,
        Action::Delete,
        Action::Orphaned,
        Action::RevertDrift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Recover => "recover",
            Action::Wait => "wait",
            Action::NoOp => "no-op",
            Action::Blocked => "blocked",
            Action::Delete => "delete",
            Action::Orphaned => "orphaned",
            Action::RevertDrift => "revert-drift",
        }
    }

    /// Whether applying this action writes to the account.
    pub fn changes(self) -> bool {
        matches!(
            self,
            Action::Create | Action::Update | Action::Recover | Action::Delete | Action::RevertDrift
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of a healthy stack differs from the desired one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Difference {
    Template,
    Parameters,
    Tags,
}

/// The planner's verdict for one stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub action: Action,
    /// One line a human reads: why this action.
    pub reason: String,
    pub differences: Vec<Difference>,
}

/// One row of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlanEntry {
    pub account_id: AccountId,
    pub account_name: String,
    /// The role's key in the inventory.
    pub role: String,
    pub region: String,
    pub action: Action,
    pub reason: String,
    pub differences: Vec<Difference>,
    /// The stack's status when observed; `None` when there is no stack.
    pub stack_status: Option<String>,
    pub stack_id: Option<String>,
}

/// An account (or one region of it) that could not be observed or acted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountError {
    pub account_id: AccountId,
    pub account_name: String,
    /// `None` when the whole account failed (e.g. AssumeRole denied).
    pub region: Option<String>,
    pub message: String,
}

/// The result of `plan`: rows sorted by account then region, and errors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub entries: Vec<PlanEntry>,
    pub errors: Vec<AccountError>,
    /// `deploy.via: stacksets`: what happens to each stack set (one per
    /// role of the catalog).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stack_sets: Vec<StackSetDecision>,
}

impl Plan {
    /// Sorts rows by account, role, then region, and errors by account,
    /// then region, for stable output.
    pub fn sort(&mut self) {
        self.entries
            .sort_by(|a, b| (&a.account_id, &a.role, &a.region).cmp(&(&b.account_id, &b.role, &b.region)));
        self.errors
            .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    }

    pub fn count(&self, action: Action) -> usize {
        self.entries.iter().filter(|e| e.action == action).count()
    }

    /// True when applying would write somewhere (or has to wait for a
    /// stack), or a stack outside the inventory is left over.
    pub fn has_changes(&self) -> bool {
        self.stack_sets.iter().any(|s| s.action.changes())
            || self
                .entries
                .iter()
                .any(|e| e.action.changes() || matches!(e.action, Action::Wait | Action::Orphaned))
    }

    /// True when a human must look: unreachable accounts or blocked stacks.
    pub fn needs_attention(&self) -> bool {
        !self.errors.is_empty()
            || self.count(Action::Blocked) > 0
            || self.stack_sets.iter().any(|s| s.action == Action::Blocked)
    }
}

/// What `apply` did to one stack, as the registry records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Created,
    Updated,
    Unchanged,
    Failed,
    Blocked,
    NotAttempted,
    /// Its account or region left the inventory; the stack is still there.
    Orphaned,
    /// `destroy` deleted the stack.
    Deleted,
    /// Apply after a confirmed plan: the stack was no longer what the plan
    /// showed, so nothing was done to it.
    ChangedSincePlan,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Updated => "updated",
            Status::Unchanged => "unchanged",
            Status::Failed => "failed",
            Status::Blocked => "blocked",
            Status::NotAttempted => "not-attempted",
            Status::Orphaned => "orphaned",
            Status::Deleted => "deleted",
            Status::ChangedSincePlan => "changed-since-plan",
        }
    }

    /// The run did what it was asked for this stack. An orphan is not a
    /// failure of the run: it is reported, and left alone.
    pub fn succeeded(self) -> bool {
        matches!(
            self,
            Status::Created | Status::Updated | Status::Unchanged | Status::Orphaned | Status::Deleted
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource in a change set: `Add`, `Modify` or `Remove`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// `True`, `False` or `Conditional` for modifications.
    pub replacement: Option<String>,
}

/// The result for one account/region after `apply`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub account_id: AccountId,
    pub account_name: String,
    /// The role's key in the inventory, its IAM name in this region, and
    /// the stack that holds it.
    pub role: String,
    pub role_name: String,
    pub stack_name: String,
    pub region: String,
    /// What the planner decided (the last decision, after any wait).
    pub action: Option<Action>,
    pub status: Status,
    pub stack_id: Option<String>,
    /// The stack's outputs as last read; empty when there is no stack.
    pub outputs: BTreeMap<String, String>,
    /// `outputs[output_key]`, never computed.
    pub role_arn: Option<String>,
    /// The `rolecall:fingerprint` tag of the stack as last read.
    pub fingerprint: Option<String>,
    /// For updates: what the change set changed.
    pub changes: Vec<ResourceChange>,
    pub error: Option<String>,
}

/// What the executor reports while it works. Sent to a sink; the reporter
/// renders them. Never carries credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The run knows how many accounts it will visit.
    Started {
        accounts: usize,
    },
    AccountStarted {
        account_id: AccountId,
    },
    /// One region was observed and decided.
    Planned {
        entry: PlanEntry,
    },
    /// A stack operation began or moved on (`creating`, `updating`,
    /// `deleting`, `waiting`) for one role in one region.
    Stage {
        account_id: AccountId,
        role: String,
        region: String,
        stage: Stage,
    },
    /// One region is done.
    Finished {
        outcome: Outcome,
    },
    AccountFailed {
        error: AccountError,
    },
    AccountFinished {
        account_id: AccountId,
    },
}

/// What is happening to one stack right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    Observing,
    Creating,
    Updating,
    Deleting,
    Waiting,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Observing => "observing",
            Stage::Creating => "creating",
            Stage::Updating => "updating",
            Stage::Deleting => "deleting",
            Stage::Waiting => "waiting",
        }
    }
}

/// Receives executor events. Implemented by the reporter (progress) and by
/// tests; called from many tasks at once.
pub trait EventSink: Send + Sync {
    fn event(&self, event: Event);
}

/// A sink that drops everything.
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _: Event) {}
}

/// One AWS CLI profile rolecall writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub name: String,
    pub account_id: AccountId,
    /// The account's real name (the profile name holds its safe form).
    pub account_name: String,
    /// `None` when the account has no role ARN this run (a failure): the
    /// profile already in the file, if any, is kept as it is.
    pub role_arn: Option<String>,
    pub source_profile: String,
    pub region: String,
    pub role_session_name: Option<String>,
    pub external_id: Option<String>,
    pub duration_seconds: Option<u32>,
    /// The role's trust requires MFA: the AWS CLI asks for a code.
    pub mfa_serial: Option<String>,
}

/// The verdict of `drift` for one target account/region (or account).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DriftKind {
    InSync,
    /// The live role differs from what the inventory wants.
    Drifted,
    /// The stack's fingerprint is not the inventory's.
    Stale,
    /// A target without rolecall's stack.
    Missing,
    /// The stack is not settled and healthy.
    Unhealthy,
    /// An ACTIVE account the inventory does not cover.
    Uncovered,
    /// An inventory account that is not ACTIVE, or rolecall's stack in an
    /// account/region that left the inventory.
    Orphaned,
    /// It could not be read; the check is incomplete.
    Error,
}

impl DriftKind {
    pub const ALL: [DriftKind; 8] = [
        DriftKind::InSync,
        DriftKind::Drifted,
        DriftKind::Stale,
        DriftKind::Missing,
        DriftKind::Unhealthy,
        DriftKind::Uncovered,
        DriftKind::Orphaned,
        DriftKind::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::InSync => "IN_SYNC",
            DriftKind::Drifted => "DRIFTED",
            DriftKind::Stale => "STALE",
            DriftKind::Missing => "MISSING",
            DriftKind::Unhealthy => "UNHEALTHY",
            DriftKind::Uncovered => "UNCOVERED",
            DriftKind::Orphaned => "ORPHANED",
            DriftKind::Error => "ERROR",
        }
    }
}

impl fmt::Display for DriftKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One difference: where, what the inventory wants, what is there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriftDetail {
    pub path: String,
    pub expected: String,
    pub actual: String,
}

/// One row of a drift report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriftFinding {
    pub account_id: AccountId,
    pub account_name: String,
    /// The role of the catalog whose stack it is about; `None` for
    /// account-level findings.
    pub role: Option<String>,
    /// `None` for account-level findings (uncovered, closed, unreachable).
    pub region: Option<String>,
    pub kind: DriftKind,
    pub reason: String,
    pub details: Vec<DriftDetail>,
}

/// The live IAM role as GetRole, ListRolePolicies/GetRolePolicy and
/// ListAttachedRolePolicies show it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveRole {
    pub trust: serde_json::Value,
    pub inline: BTreeMap<String, serde_json::Value>,
    pub managed: std::collections::BTreeSet<String>,
    pub max_session_duration: u32,
    /// The permissions boundary's ARN, if the role has one.
    pub permissions_boundary: Option<String>,
}

/// One IAM call that puts a drifted role back as the inventory has it
/// (`apply --revert-drift`, where CloudFormation's own revert did not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleRepair {
    /// UpdateAssumeRolePolicy with this document (JSON).
    Trust(String),
    /// PutRolePolicy of this inline policy (name, JSON document).
    PutInline(String, String),
    /// DeleteRolePolicy of an inline policy the inventory does not have.
    DeleteInline(String),
    /// AttachRolePolicy / DetachRolePolicy of a managed policy ARN.
    Attach(String),
    Detach(String),
    /// PutRolePermissionsBoundary (`Some`) or DeleteRolePermissionsBoundary.
    Boundary(Option<String>),
    /// UpdateRole's MaxSessionDuration, in seconds.
    MaxSessionDuration(u32),
}

impl fmt::Display for RoleRepair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleRepair::Trust(_) => f.write_str("UpdateAssumeRolePolicy"),
            RoleRepair::PutInline(name, _) => write!(f, "PutRolePolicy {name}"),
            RoleRepair::DeleteInline(name) => write!(f, "DeleteRolePolicy {name}"),
            RoleRepair::Attach(arn) => write!(f, "AttachRolePolicy {arn}"),
            RoleRepair::Detach(arn) => write!(f, "DetachRolePolicy {arn}"),
            RoleRepair::Boundary(Some(arn)) => write!(f, "PutRolePermissionsBoundary {arn}"),
            RoleRepair::Boundary(None) => f.write_str("DeleteRolePermissionsBoundary"),
            RoleRepair::MaxSessionDuration(s) => write!(f, "UpdateRole MaxSessionDuration={s}"),
        }
    }
}

/// The verdict of `verify` for one registered role in one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerifyResult {
    /// AssumeRole worked, and GetCallerIdentity named the right account.
    Assumable,
    /// AssumeRole was refused (trust policy, SCP, missing role): AWS's words.
    Denied,
    /// The credentials are of another account than the registry says.
    WrongAccount,
    /// A target of the role with no ARN in the registry.
    Missing,
    /// Not checked: an MFA code is needed, or the call failed (throttled,
    /// unreachable). The check is incomplete.
    Error,
}

impl VerifyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyResult::Assumable => "ASSUMABLE",
            VerifyResult::Denied => "DENIED",
            VerifyResult::WrongAccount => "WRONG_ACCOUNT",
            VerifyResult::Missing => "MISSING",
            VerifyResult::Error => "ERROR",
        }
    }
}

impl std::fmt::Display for VerifyResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub account_id: AccountId,
    pub account_name: String,
    pub role: String,
    pub role_arn: Option<String>,
    pub result: VerifyResult,
    pub reason: String,
}
