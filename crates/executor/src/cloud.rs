//! The one seam to the cloud: a narrow trait with one real implementation on
//! the AWS SDK (`aws.rs`) and fakes in tests. Orchestration code sees only this.

use std::future::Future;

use std::collections::BTreeMap;

use model::{AccountId, Observed, ResourceChange};

/// An account as AWS Organizations lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
}

/// Calls made with the caller's own credentials.
pub trait Cloud: Send + Sync {
    type Session: AccountSession;

    /// AssumeRole into `account`; one call per account, valid for all regions.
    fn assume_role(
        &self,
        account: &AccountId,
        role_arn: &str,
        session_name: &str,
        external_id: Option<&str>,
    ) -> impl Future<Output = Result<Self::Session, CloudError>> + Send;

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
}

/// A change set as DescribeChangeSet reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSetInfo {
    /// `CREATE_PENDING`, `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `FAILED` …
    pub status: String,
    pub status_reason: Option<String>,
    pub changes: Vec<ResourceChange>,
}

/// Calls made inside one target account, with its assumed credentials.
pub trait AccountSession: Send + Sync {
    /// The stack by name; `Observed::Absent` when there is none.
    fn describe_stack(
        &self,
        region: &str,
        stack_name: &str,
    ) -> impl Future<Output = Result<Observed, CloudError>> + Send;

    /// Returns the new stack's id.
    fn create_stack(
        &self,
        region: &str,
        request: &StackRequest,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;

    /// An UPDATE change set for an existing stack.
    fn create_change_set(
        &self,
        region: &str,
        request: &StackRequest,
        change_set: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

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
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    fn delete_change_set(
        &self,
        region: &str,
        stack_name: &str,
        change_set: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    fn delete_stack(&self, region: &str, stack_name: &str) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// Why the last operation failed: the reasons of the most recent failed
    /// resource events (newest first), for messages.
    fn failure_reasons(
        &self,
        region: &str,
        stack_name: &str,
    ) -> impl Future<Output = Result<Vec<String>, CloudError>> + Send;
}

/// A failed cloud call. The message is AWS's own (it never holds secrets).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The service answered with an error code.
    #[error("{code}: {message}")]
    Service { code: String, message: String },
    /// No usable answer: connection refused, timeout, unparseable response.
    #[error("{0}")]
    Transport(String),
}

impl CloudError {
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Service { code, .. } => Some(code),
            CloudError::Transport(_) => None,
        }
    }

    pub fn is_access_denied(&self) -> bool {
        matches!(
            self.code(),
            Some("AccessDenied" | "AccessDeniedException" | "AccessDeniedForDependencyException")
        )
    }

    pub fn message(&self) -> &str {
        match self {
            CloudError::Service { message, .. } => message,
            CloudError::Transport(message) => message,
        }
    }

    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "Throttling"
                    | "ThrottlingException"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded"
                    | "LimitExceededException"
            )
        )
    }

    /// The credentials are not valid where they were used: typically a
    /// region that is not enabled for the account.
    pub fn is_region_not_enabled(&self) -> bool {
        matches!(
            self.code(),
            Some("InvalidClientTokenId" | "UnrecognizedClientException" | "OptInRequired" | "AuthFailure")
        )
    }
}
