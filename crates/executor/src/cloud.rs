//! The one seam to the cloud: a narrow trait with one real implementation on
//! the AWS SDK (`aws.rs`) and fakes in tests. Orchestration code sees only this.

use std::future::Future;

use std::collections::BTreeMap;

pub use model::OrgAccount;
use model::{AccountId, Observed, ResourceChange};

/// AssumeRole with the caller's own credentials: how an account is reached.
pub trait Cloud: Send + Sync {
    /// What the calls inside the account need. Each pipeline asks of it
    /// only the services it uses (`Stacks`, `ChangeSets`, `Roles` …).
    type Session: Send + Sync;

    /// AssumeRole into `account`; one call per account, valid for all regions.
    fn assume_role(
        &self,
        account: &AccountId,
        role_arn: &str,
        session_name: &str,
        external_id: Option<&str>,
    ) -> impl Future<Output = Result<Self::Session, CloudError>> + Send;
}

/// `verify`: assume a target role with the caller's own credentials, then
/// ask STS whose credentials they are. The credentials never leave it.
pub trait Identity: Send + Sync {
    /// The account GetCallerIdentity names for the role's session.
    fn assumed_account(
        &self,
        role_arn: &str,
        session_name: &str,
        external_id: Option<&str>,
        duration_seconds: Option<u32>,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
}

/// AWS Organizations, with the caller's own credentials.
pub trait Organization: Send + Sync {
    /// Child OU ids of an OU or root.
    fn list_child_ous(&self, parent: &str) -> impl Future<Output = Result<Vec<String>, CloudError>> + Send;

    /// Accounts directly under an OU or root.
    fn list_accounts_for_parent(
        &self,
        parent: &str,
    ) -> impl Future<Output = Result<Vec<OrgAccount>, CloudError>> + Send;

    fn list_account_tags(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Vec<(String, String)>, CloudError>> + Send;

    /// Every account of the organization, with its status (ListAccounts).
    fn list_organization_accounts(&self) -> impl Future<Output = Result<Vec<OrgAccount>, CloudError>> + Send;

    /// One account (DescribeAccount); `None` when it is not in the
    /// organization.
    fn describe_account(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Option<OrgAccount>, CloudError>> + Send;
}

/// What CreateStack and CreateChangeSet send. Capabilities are always
/// CAPABILITY_IAM and CAPABILITY_NAMED_IAM (the stack holds an IAM role),
/// plus CAPABILITY_AUTO_EXPAND for templates with a `Transform`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackRequest {
    pub stack_name: String,
    pub template_body: String,
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Also CAPABILITY_AUTO_EXPAND (the template has a `Transform`).
    pub auto_expand: bool,
    /// A change set that also reverts drift (DeploymentMode REVERT_DRIFT:
    /// resources changed outside CloudFormation go back to the template).
    pub revert_drift: bool,
}

/// A change set as DescribeChangeSet reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSetInfo {
    /// `CREATE_PENDING`, `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `FAILED` …
    pub status: String,
    pub status_reason: Option<String>,
    pub changes: Vec<ResourceChange>,
}

/// One change set of a stack as ListChangeSets reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeSetSummary {
    pub name: String,
    pub stack_name: String,
    /// `CREATE_PENDING`, `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `FAILED` …
    pub status: String,
    /// `UNAVAILABLE`, `AVAILABLE`, `EXECUTE_IN_PROGRESS`, `EXECUTE_COMPLETE` …
    pub execution_status: String,
    /// rolecall writes its owner here: `rolecall run <session> on <host>`.
    pub description: Option<String>,
    pub created: Option<std::time::SystemTime>,
}

/// CloudFormation stacks inside one target account, with its assumed
/// credentials.
pub trait Stacks: Send + Sync {
    /// The stack by name; `Observed::Absent` when there is none.
    fn describe_stack(
        &self,
        region: &str,
        stack_name: &str,
    ) -> impl Future<Output = Result<Observed, CloudError>> + Send;

    /// Returns the new stack's id. `token` (ClientRequestToken) makes an
    /// SDK retry of a request that did reach CloudFormation idempotent.
    fn create_stack(
        &self,
        region: &str,
        request: &StackRequest,
        token: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;

    /// UpdateStack with the request's template, parameters and tags: the
    /// way CloudFormation documents for a change of stack tags alone (a
    /// change set of tags alone may list no change). `ErrorKind::NoChanges`
    /// when there is nothing to update.
    fn update_stack(
        &self,
        region: &str,
        request: &StackRequest,
        token: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// The template the stack runs (GetTemplate, stage Original).
    fn get_template(&self, region: &str, stack: &str) -> impl Future<Output = Result<String, CloudError>> + Send;

    fn delete_stack(
        &self,
        region: &str,
        stack_name: &str,
        token: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// Why the last operation failed: the reasons of the most recent failed
    /// resource events (newest first), for messages.
    fn failure_reasons(
        &self,
        region: &str,
        stack_name: &str,
    ) -> impl Future<Output = Result<Vec<String>, CloudError>> + Send;
}

/// CloudFormation change sets of a stack (updates).
pub trait ChangeSets: Send + Sync {
    /// An UPDATE change set for an existing stack; `description` says
    /// which run made it.
    fn create_change_set(
        &self,
        region: &str,
        request: &StackRequest,
        change_set: &str,
        description: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// The change sets of a stack, every page.
    fn list_change_sets(
        &self,
        region: &str,
        stack_name: &str,
    ) -> impl Future<Output = Result<Vec<ChangeSetSummary>, CloudError>> + Send;

    fn describe_change_set(
        &self,
        region: &str,
        stack_name: &str,
        change_set: &str,
    ) -> impl Future<Output = Result<ChangeSetInfo, CloudError>> + Send;

    fn execute_change_set(
        &self,
        region: &str,
        stack_name: &str,
        change_set: &str,
        token: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    fn delete_change_set(
        &self,
        region: &str,
        stack_name: &str,
        change_set: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// The stacks StackSets made in a target account.
pub trait InstanceStacks: Send + Sync {
    /// The stack a stack-set instance made in this account: by its stack id
    /// where AWS gave one, else by the name StackSets gives instance stacks
    /// (`StackSet-<name>-<uuid>`).
    fn find_instance_stack(
        &self,
        region: &str,
        stack_set: &str,
        stack_id: Option<&str>,
    ) -> impl Future<Output = Result<Observed, CloudError>> + Send;
}

/// IAM in the target account (global to it).
pub trait Roles: Send + Sync {
    /// One IAM call on rolecall's own role (`apply --revert-drift`).
    fn repair_role(
        &self,
        role_name: &str,
        repair: &model::RoleRepair,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// The IAM role by name (IAM is global to the account); `None` when
    /// there is no such role.
    fn get_live_role(
        &self,
        role_name: &str,
    ) -> impl Future<Output = Result<Option<model::LiveRole>, CloudError>> + Send;
}

/// CloudFormation's own drift detection.
pub trait StackDrift: Send + Sync {
    /// Starts CloudFormation's drift detection of one stack; the
    /// detection's id.
    fn start_drift_detection(
        &self,
        region: &str,
        stack_name: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;

    /// Where a detection stands: `None` while CloudFormation is still
    /// detecting (the caller waits a poll interval, holding no slot); then
    /// in sync, or the resources that drifted.
    fn drift_detection(
        &self,
        region: &str,
        stack_name: &str,
        detection_id: &str,
    ) -> impl Future<Output = Result<Option<CfnDrift>, CloudError>> + Send;
}

/// What a failed call means to a pipeline: decided once, where the error
/// is read (`CloudError::service`, `CloudError::transport`), from AWS's
/// codes and, where AWS has no code of its own, its documented wording.
/// Pipelines match on this, never on message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The stack, stack set, change set, role or parent does not exist.
    NotFound,
    /// CreateStack / CreateChangeSet: one of that name exists.
    AlreadyExists,
    /// CloudFormation's "No updates are to be performed".
    NoChanges,
    /// The stack is in a state that cannot be updated now.
    NotUpdatable,
    /// StackSets: another operation is running on the stack set.
    OperationInProgress,
    Throttled,
    AccessDenied,
    /// The credentials used have expired (the caller's own, or a session
    /// that could not be renewed). Never a disabled region.
    ExpiredCredentials,
    /// The credentials are not valid where they were used: typically a
    /// region that is not enabled for the account.
    RegionNotEnabled,
    /// The endpoint does not offer the call (moto answers drift detection
    /// with HTTP 500 and HTML; some partitions and proxies lack it too).
    Unavailable,
    /// No usable answer: connection refused, timeout, unparseable response.
    Transport,
    /// S3: a conditional write found another version (412
    /// PreconditionFailed: another run wrote meanwhile).
    PreconditionFailed,
    /// S3: a concurrent conditional write was in flight (409
    /// ConditionalRequestConflict); try again.
    Conflict,
    Other,
}

/// STS's wording when a session expired, also inside a transport error
/// (a credentials provider that could not renew).
const EXPIRED: &str = "security token included in the request is expired";

/// CloudFormation's ways of saying "nothing to do", as an error or as a
/// change set's status reason.
pub fn says_no_changes(message: &str) -> bool {
    message.contains("No updates are to be performed") || message.contains("didn't contain changes")
}

impl ErrorKind {
    /// The kind of a service error.
    fn of(code: &str, message: &str) -> ErrorKind {
        match code {
            "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
                ErrorKind::ExpiredCredentials
            }
            _ if message.contains(EXPIRED) => ErrorKind::ExpiredCredentials,
            "AccessDenied" | "AccessDeniedException" | "AccessDeniedForDependencyException" => ErrorKind::AccessDenied,
            "Throttling"
            | "ThrottlingException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "LimitExceededException" => ErrorKind::Throttled,
            "InvalidClientTokenId" | "UnrecognizedClientException" | "OptInRequired" | "AuthFailure" => {
                ErrorKind::RegionNotEnabled
            }
            "AlreadyExistsException" | "ParameterAlreadyExists" => ErrorKind::AlreadyExists,
            "StackSetNotFoundException"
            | "NoSuchEntity"
            | "ChangeSetNotFound"
            | "ChangeSetNotFoundException"
            | "ParentNotFoundException"
            | "AccountNotFoundException" => ErrorKind::NotFound,
            "OperationInProgressException" => ErrorKind::OperationInProgress,
            "NoSuchKey" | "ParameterNotFound" => ErrorKind::NotFound,
            "PreconditionFailed" => ErrorKind::PreconditionFailed,
            "ConditionalRequestConflict" => ErrorKind::Conflict,
            "NotImplemented" | "InternalFailure" | "UnknownOperationException" => ErrorKind::Unavailable,
            // CloudFormation answers these as ValidationError, told apart
            // only by its wording.
            "ValidationError" if says_no_changes(message) => ErrorKind::NoChanges,
            "ValidationError" if message.contains("does not exist") => ErrorKind::NotFound,
            "ValidationError" if message.contains("can not be updated") => ErrorKind::NotUpdatable,
            _ => ErrorKind::Other,
        }
    }
}

/// An S3 object as read: its text and its ETag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub body: String,
    pub etag: String,
}

/// The condition of a conditional PutObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteIf {
    /// `If-None-Match: *`: no object is there.
    Absent,
    /// `If-Match: <etag>`: the object is still the version read.
    Matches(String),
}

/// S3 in the caller's account: the registry object.
pub trait Objects: Send + Sync {
    /// `None`: no such object.
    fn get_object(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Option<Object>, CloudError>> + Send;
    /// A conditional PutObject with `Content-Type: application/json`.
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: &str,
        condition: &WriteIf,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// SSM Parameter Store in the caller's account and region: the registry's
/// published ARNs.
pub trait Parameters: Send + Sync {
    /// Every parameter under `path` (recursive): name → value.
    fn parameters_under(&self, path: &str)
    -> impl Future<Output = Result<BTreeMap<String, String>, CloudError>> + Send;
    /// The names under `path` that carry every tag of `tags`.
    fn tagged_under(
        &self,
        path: &str,
        tags: &[(&str, &str)],
    ) -> impl Future<Output = Result<std::collections::BTreeSet<String>, CloudError>> + Send;
    /// A new `String` parameter, with `tags` (refused when it exists).
    fn create_parameter(
        &self,
        name: &str,
        value: &str,
        tags: &[(&str, &str)],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// A new value for an existing parameter (its tags stay).
    fn overwrite_parameter(&self, name: &str, value: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Deletes up to 10 parameters.
    fn delete_parameters(&self, names: &[String]) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// CloudFormation's drift detection of one stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CfnDrift {
    InSync,
    /// Resources that differ, as details.
    Drifted(Vec<model::DriftDetail>),
}

/// A failed cloud call. The message is AWS's own (it never holds secrets).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", match &self.code { Some(code) => format!("{code}: {}", self.message), None => self.message.clone() })]
pub struct CloudError {
    pub kind: ErrorKind,
    /// The service's error code; `None` when there was no usable answer.
    pub code: Option<String>,
    pub message: String,
}

impl CloudError {
    /// The service answered with an error code.
    pub fn service(code: &str, message: &str) -> CloudError {
        CloudError {
            kind: ErrorKind::of(code, message),
            code: Some(code.to_owned()),
            message: message.to_owned(),
        }
    }

    /// No usable answer. An HTTP 500 or "not implemented" without a code
    /// is an endpoint that lacks the call.
    pub fn transport(message: impl Into<String>) -> CloudError {
        let message = message.into();
        let kind = if message.contains(EXPIRED) {
            ErrorKind::ExpiredCredentials
        } else if message.contains("500") || message.contains("not implemented") || message.contains("NotImplemented") {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Transport
        };
        CloudError {
            kind,
            code: None,
            message,
        }
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Where a stack-set operation goes: accounts (self-managed) or OUs
/// (service-managed, optionally narrowed), and regions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceTargets {
    pub accounts: Vec<String>,
    pub ous: Vec<String>,
    /// Service-managed: `INTERSECTION` (only these accounts of the OUs) or
    /// `DIFFERENCE` (all but these).
    pub account_filter: Option<(&'static str, Vec<String>)>,
    pub regions: Vec<String>,
}

/// StackSetOperationPreferences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperationPrefs {
    pub max_concurrent: usize,
    pub failure_tolerance: usize,
    /// Where set, MaxConcurrentPercentage instead of `max_concurrent`.
    pub max_concurrent_percentage: Option<u8>,
    /// Where set, FailureTolerancePercentage instead of `failure_tolerance`.
    pub failure_tolerance_percentage: Option<u8>,
    pub region_parallel: bool,
    pub soft_failure_tolerance: bool,
}

/// What CreateStackSet and UpdateStackSet send.
#[derive(Clone, Debug, PartialEq)]
pub struct StackSetRequest {
    pub stack: StackRequest,
    pub spec: model::StackSetSpec,
}

/// DescribeStackSetOperation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationInfo {
    /// `RUNNING`, `QUEUED`, `STOPPING`, `SUCCEEDED`, `FAILED`, `STOPPED`.
    pub status: String,
    pub reason: Option<String>,
}

/// One account/region of ListStackSetOperationResults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationResult {
    pub account: String,
    pub region: String,
    /// `SUCCEEDED`, `FAILED`, `CANCELLED`, `PENDING`, `RUNNING`.
    pub status: String,
    pub reason: Option<String>,
}

/// Calls on the stack set, in the caller's (administrator) account and
/// region. `delegated` is CallAs DELEGATED_ADMIN.
pub trait StackSets: Send + Sync {
    /// `None` when there is no stack set of that name.
    fn describe_stack_set(
        &self,
        name: &str,
        delegated: bool,
    ) -> impl Future<Output = Result<Option<model::StackSetInfo>, CloudError>> + Send;

    fn list_stack_instances(
        &self,
        name: &str,
        delegated: bool,
    ) -> impl Future<Output = Result<Vec<model::InstanceInfo>, CloudError>> + Send;

    fn create_stack_set(&self, request: &StackSetRequest) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// Returns the operation id. `operation_id` makes a retry idempotent.
    fn update_stack_set(
        &self,
        request: &StackSetRequest,
        targets: &InstanceTargets,
        prefs: OperationPrefs,
        operation_id: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;

    /// `kind`: create, update or delete instances. Returns the operation id.
    fn instances(
        &self,
        kind: InstancesOp,
        name: &str,
        delegated: bool,
        targets: &InstanceTargets,
        prefs: OperationPrefs,
        operation_id: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;

    fn delete_stack_set(&self, name: &str, delegated: bool) -> impl Future<Output = Result<(), CloudError>> + Send;

    fn describe_operation(
        &self,
        name: &str,
        delegated: bool,
        operation_id: &str,
    ) -> impl Future<Output = Result<OperationInfo, CloudError>> + Send;

    /// One page of results and the token of the next.
    fn operation_results(
        &self,
        name: &str,
        delegated: bool,
        operation_id: &str,
        next: Option<String>,
    ) -> impl Future<Output = Result<(Vec<OperationResult>, Option<String>), CloudError>> + Send;

    /// Ids of operations not finished yet (RUNNING, QUEUED, STOPPING).
    fn running_operations(
        &self,
        name: &str,
        delegated: bool,
    ) -> impl Future<Output = Result<Vec<String>, CloudError>> + Send;
}

/// Which stack-instance operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstancesOp {
    Create,
    Update,
    /// `retain_stacks`: leave the stacks in the accounts.
    Delete {
        retain_stacks: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::{CloudError, ErrorKind};

    /// AWS's codes and wordings, and the kind each pipeline decides on.
    #[test]
    fn error_kinds_are_decided_where_the_error_is_made() {
        use ErrorKind::*;
        for (code, message, kind) in [
            ("ValidationError", "Stack with id x does not exist", NotFound),
            ("ValidationError", "No updates are to be performed.", NoChanges),
            (
                "ValidationError",
                "Stack:x is in UPDATE_IN_PROGRESS state and can not be updated.",
                NotUpdatable,
            ),
            ("ValidationError", "Template format error", Other),
            ("AlreadyExistsException", "Stack [x] already exists", AlreadyExists),
            ("StackSetNotFoundException", "x", NotFound),
            ("NoSuchEntity", "The role with name x cannot be found.", NotFound),
            ("OperationInProgressException", "x", OperationInProgress),
            ("Throttling", "Rate exceeded", Throttled),
            ("TooManyRequestsException", "x", Throttled),
            ("AccessDenied", "not authorized", AccessDenied),
            ("ExpiredToken", "x", ExpiredCredentials),
            (
                "InvalidClientTokenId",
                "The security token included in the request is expired",
                ExpiredCredentials,
            ),
            (
                "InvalidClientTokenId",
                "The security token included in the request is invalid",
                RegionNotEnabled,
            ),
            ("OptInRequired", "x", RegionNotEnabled),
            ("InternalFailure", "x", Unavailable),
        ] {
            assert_eq!(CloudError::service(code, message).kind, kind, "{code}: {message}");
        }
        assert_eq!(CloudError::transport("connection refused").kind, Transport);
        assert_eq!(
            CloudError::transport("unhandled error (HTTP 500: <html>)").kind,
            Unavailable
        );
        assert_eq!(
            CloudError::transport("dispatch failure: The security token included in the request is expired").kind,
            ExpiredCredentials
        );
        // Messages read as AWS wrote them.
        assert_eq!(
            CloudError::service("Throttling", "Rate exceeded").to_string(),
            "Throttling: Rate exceeded"
        );
        assert_eq!(CloudError::transport("timed out").to_string(), "timed out");
    }
}
