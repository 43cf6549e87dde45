//! The real cloud, on the AWS SDK for Rust. The only module that names an SDK
//! type. One `SdkConfig` is built here; every per-account client is derived
//! from it, so all share one HTTP connection pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_cloudformation as cfn;
use aws_sdk_cloudformation::config::retry::{RetryPartition, TokenBucket};
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_iam as iam;
use aws_sdk_organizations as org;
use aws_sdk_sts as sts;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use cfn::config::{ConfigBag, RuntimeComponents, RuntimeComponentsBuilder};
use model::{AccountId, Observed, ResourceChange, StackInfo};
use planner::partition::Partition;

use crate::cloud::{
    AccountSession, CfnDrift, ChangeSetInfo, ChangeSetSummary, Cloud, CloudError, ErrorKind, InstanceTargets,
    InstancesOp, OperationInfo, OperationPrefs, OperationResult, OrgAccount, StackRequest, StackSetRequest, StackSets,
};
use crate::limit::{self, RateLimit};

/// Where and as whom to connect. `None` everywhere means the standard AWS
/// chain (env, profile, SSO, instance role) decides.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Used when neither `region` nor the AWS config names one (the
    /// inventory's first region: it is in the partition the run targets).
    pub default_region: Option<String>,
}

/// Region used for STS when nothing names one.
const FALLBACK_REGION: &str = "us-east-1";

/// Loads the one `SdkConfig` of the process: explicit HTTP client (the SDK's
/// default features are off), timeouts (the SDK has none by default), and
/// standard retries with backoff for throttling.
pub async fn load_config(conn: &Connection) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(30))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(180))
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(8)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(20)),
        )
        // Stalled-stream protection guards large streamed bodies (S3); every
        // call rolecall makes is a few KB, bounded by the read and attempt
        // timeouts above. Left on, it wakes each call in flight every 100 ms
        // to measure throughput: with 64 calls queued at a slow endpoint
        // (moto at 1,000 accounts) that was two fifths of apply's CPU.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
    if let Some(profile) = &conn.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &conn.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &conn.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        let region = conn
            .default_region
            .clone()
            .unwrap_or_else(|| FALLBACK_REGION.to_owned());
        return config.to_builder().region(Region::new(region)).build();
    }
    config
}

fn http_client() -> SharedHttpClient {
    ValidateOnce::wrap(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https(),
    )
}

/// The process's one HTTP client, validated once instead of once per SDK
/// client. The hyper client's validation builds a throw-away TLS connector
/// (it parses every native root certificate) each time a client is built
/// from the config; rolecall builds a CloudFormation client per account and
/// region, and that parsing was an eighth of the client CPU of a `plan`.
/// Connectors are cached by the inner client, so requests are unchanged.
#[derive(Debug)]
struct ValidateOnce {
    inner: SharedHttpClient,
    validated: std::sync::OnceLock<()>,
}

impl ValidateOnce {
    fn wrap(inner: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(ValidateOnce {
            inner,
            validated: std::sync::OnceLock::new(),
        })
    }
}

impl HttpClient for ValidateOnce {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        if self.validated.get().is_none() {
            self.inner.validate_base_client_config(components, cfg)?;
            let _ = self.validated.set(());
        }
        Ok(())
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// Each account gets its own retry token bucket: the SDK's default bucket is
/// shared process-wide per service and region, so a few throttled accounts
/// would use up the retries of all the others.
fn partition(kind: &str, key: &str) -> RetryPartition {
    RetryPartition::custom(format!("rolecall-{kind}-{key}"))
        .token_bucket(TokenBucket::default())
        .build()
}

pub struct SdkCloud {
    base: SdkConfig,
    sts: sts::Client,
    /// Every AssumeRole of the run (first ones and renewals) goes through it.
    sts_limit: Arc<RateLimit>,
    org: org::Client,
    org_limit: RateLimit,
    /// CloudFormation in the caller's account and region: StackSets.
    admin: cfn::Client,
}

impl SdkCloud {
    pub fn new(base: SdkConfig) -> SdkCloud {
        let sts = sts::Client::from_conf(
            sts::config::Builder::from(&base)
                .retry_partition(
                    RetryPartition::custom("rolecall-sts")
                        .token_bucket(TokenBucket::builder().capacity(100_000).build())
                        .build(),
                )
                .build(),
        );
        // Organizations is a global service, served from one region of
        // each partition (us-east-1, us-gov-west-1, cn-northwest-1 …).
        let org = org::Client::from_conf(
            org::config::Builder::from(&base)
                .region(Region::new(Self::partition_of(&base).organizations_region))
                .build(),
        );
        let admin = cfn::Client::new(&base);
        SdkCloud {
            base,
            sts,
            sts_limit: Arc::new(RateLimit::per_second(limit::STS_PER_SECOND, limit::STS_PER_SECOND)),
            org,
            org_limit: RateLimit::per_second(limit::ORGANIZATIONS_PER_SECOND, limit::ORGANIZATIONS_PER_SECOND),
            admin,
        }
    }

    fn partition_of(base: &SdkConfig) -> Partition {
        Partition::of_region(base.region().map_or(FALLBACK_REGION, |r| r.as_ref()))
    }

    /// The region STS calls go to (the caller's).
    pub fn region(&self) -> &str {
        self.base.region().map_or(FALLBACK_REGION, |r| r.as_ref())
    }

    /// The caller's partition, from its region.
    pub fn partition(&self) -> Partition {
        Self::partition_of(&self.base)
    }
}

fn sdk_error<E, R>(err: SdkError<E, R>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.code() {
        Some(code) => CloudError::service(code, err.message().unwrap_or_default()),
        None => CloudError::transport(DisplayErrorContext(&err).to_string()),
    }
}

impl Cloud for SdkCloud {
    type Session = SdkSession;

    async fn assume_role(
        &self,
        account: &AccountId,
        role_arn: &str,
        session_name: &str,
        external_id: Option<&str>,
    ) -> Result<SdkSession, CloudError> {
        let role = AssumedRole {
            sts: self.sts.clone(),
            limit: self.sts_limit.clone(),
            role_arn: role_arn.to_owned(),
            session_name: session_name.to_owned(),
            external_id: external_id.map(str::to_owned),
            current: tokio::sync::Mutex::new(None),
        };
        // Assumed now, so that an unreachable account fails here, once.
        role.fresh().await?;
        Ok(SdkSession {
            base: self.base.clone(),
            creds: SharedCredentialsProvider::new(role),
            account: account.to_string(),
            clients: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    async fn list_child_ous(&self, parent: &str) -> Result<Vec<String>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .org
            .list_children()
            .parent_id(parent)
            .child_type(org::types::ChildType::OrganizationalUnit)
            .into_paginator()
            .send();
        while let Some(page) = limited(&self.org_limit, pages.next()).await {
            let page = page.map_err(sdk_error)?;
            out.extend(page.children().iter().filter_map(|c| c.id().map(str::to_owned)));
        }
        Ok(out)
    }

    async fn list_accounts_for_parent(&self, parent: &str) -> Result<Vec<OrgAccount>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .org
            .list_accounts_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send();
        while let Some(page) = limited(&self.org_limit, pages.next()).await {
            let page = page.map_err(sdk_error)?;
            out.extend(page.accounts().iter().map(|a| OrgAccount {
                id: a.id().unwrap_or_default().to_owned(),
                name: a.name().unwrap_or_default().to_owned(),
                status: a.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            }));
        }
        Ok(out)
    }

    async fn list_organization_accounts(&self) -> Result<Vec<OrgAccount>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self.org.list_accounts().into_paginator().send();
        while let Some(page) = limited(&self.org_limit, pages.next()).await {
            let page = page.map_err(sdk_error)?;
            out.extend(page.accounts().iter().map(|a| OrgAccount {
                id: a.id().unwrap_or_default().to_owned(),
                name: a.name().unwrap_or_default().to_owned(),
                status: a.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            }));
        }
        Ok(out)
    }

    async fn list_account_tags(&self, account: &AccountId) -> Result<Vec<(String, String)>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .org
            .list_tags_for_resource()
            .resource_id(account.as_str())
            .into_paginator()
            .send();
        while let Some(page) = limited(&self.org_limit, pages.next()).await {
            let page = page.map_err(sdk_error)?;
            out.extend(page.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())));
        }
        Ok(out)
    }
}

/// A call (or a page) of a rate-limited service.
async fn limited<T>(limit: &RateLimit, call: impl std::future::Future<Output = T>) -> T {
    limit.acquire().await;
    call.await
}

fn call_as(delegated: bool) -> cfn::types::CallAs {
    if delegated {
        cfn::types::CallAs::DelegatedAdmin
    } else {
        cfn::types::CallAs::SelfValue
    }
}

fn prefs(p: OperationPrefs) -> cfn::types::StackSetOperationPreferences {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    cfn::types::StackSetOperationPreferences::builder()
        .max_concurrent_count(count(p.max_concurrent.max(1)))
        .failure_tolerance_count(count(p.failure_tolerance))
        .region_concurrency_type(if p.region_parallel {
            cfn::types::RegionConcurrencyType::Parallel
        } else {
            cfn::types::RegionConcurrencyType::Sequential
        })
        .concurrency_mode(if p.soft_failure_tolerance {
            cfn::types::ConcurrencyMode::SoftFailureTolerance
        } else {
            cfn::types::ConcurrencyMode::StrictFailureTolerance
        })
        .build()
}

/// Accounts for self-managed, DeploymentTargets for service-managed.
fn deployment(t: &InstanceTargets) -> (Option<Vec<String>>, Option<cfn::types::DeploymentTargets>) {
    if t.ous.is_empty() {
        return (Some(t.accounts.clone()), None);
    }
    let mut d = cfn::types::DeploymentTargets::builder().set_organizational_unit_ids(Some(t.ous.clone()));
    if let Some((kind, accounts)) = &t.account_filter {
        d = d
            .account_filter_type(cfn::types::AccountFilterType::from(*kind))
            .set_accounts(Some(accounts.clone()));
    }
    (None, Some(d.build()))
}

impl StackSets for SdkCloud {
    async fn describe_stack_set(&self, name: &str, delegated: bool) -> Result<Option<model::StackSetInfo>, CloudError> {
        let out = match self
            .admin
            .describe_stack_set()
            .stack_set_name(name)
            .call_as(call_as(delegated))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let e = sdk_error(e);
                return if e.kind == ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        Ok(out.stack_set().map(|s| model::StackSetInfo {
            name: s.stack_set_name().unwrap_or(name).to_owned(),
            status: s.status().map(|x| x.as_str().to_owned()).unwrap_or_default(),
            tags: s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
                .collect(),
        }))
    }

    async fn list_stack_instances(&self, name: &str, delegated: bool) -> Result<Vec<model::InstanceInfo>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .admin
            .list_stack_instances()
            .stack_set_name(name)
            .call_as(call_as(delegated))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk_error)?;
            for i in page.summaries() {
                let Some(account_id) = i.account().and_then(AccountId::parse) else {
                    continue;
                };
                out.push(model::InstanceInfo {
                    account_id,
                    region: i.region().unwrap_or_default().to_owned(),
                    status: i.status().map(|x| x.as_str().to_owned()).unwrap_or_default(),
                    detailed_status: i
                        .stack_instance_status()
                        .and_then(|s| s.detailed_status())
                        .map(|d| d.as_str().to_owned()),
                    reason: i.status_reason().map(str::to_owned),
                    stack_id: i.stack_id().map(str::to_owned),
                });
            }
        }
        Ok(out)
    }

    async fn create_stack_set(&self, request: &StackSetRequest) -> Result<(), CloudError> {
        let spec = &request.spec;
        let service = spec.permission_model == model::PermissionModel::ServiceManaged;
        let mut call = self
            .admin
            .create_stack_set()
            .stack_set_name(&spec.name)
            .description("rolecall: cross-account IAM role (managed by rolecall)")
            .template_body(&request.stack.template_body)
            .set_parameters(Some(parameters(&request.stack)))
            .set_tags(Some(tags(&request.stack)))
            .set_capabilities(Some(capabilities(&request.stack)))
            .call_as(call_as(spec.delegated_admin))
            .set_administration_role_arn(spec.administration_role_arn.clone())
            .set_execution_role_name(spec.execution_role_name.clone());
        if service {
            call = call
                .permission_model(cfn::types::PermissionModels::ServiceManaged)
                .auto_deployment(
                    cfn::types::AutoDeployment::builder()
                        .enabled(spec.auto_deployment)
                        .retain_stacks_on_account_removal(spec.retain_stacks_on_account_removal)
                        .build(),
                );
        } else {
            call = call.permission_model(cfn::types::PermissionModels::SelfManaged);
        }
        call.send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn update_stack_set(
        &self,
        request: &StackSetRequest,
        targets: &InstanceTargets,
        p: OperationPrefs,
        operation_id: &str,
    ) -> Result<String, CloudError> {
        let (accounts, deployment) = deployment(targets);
        let out = self
            .admin
            .update_stack_set()
            .stack_set_name(&request.spec.name)
            .template_body(&request.stack.template_body)
            .set_parameters(Some(parameters(&request.stack)))
            .set_tags(Some(tags(&request.stack)))
            .set_capabilities(Some(capabilities(&request.stack)))
            .call_as(call_as(request.spec.delegated_admin))
            .set_administration_role_arn(request.spec.administration_role_arn.clone())
            .set_execution_role_name(request.spec.execution_role_name.clone())
            .set_accounts(accounts)
            .set_deployment_targets(deployment)
            .set_regions(Some(targets.regions.clone()))
            .operation_preferences(prefs(p))
            .operation_id(operation_id)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.operation_id().unwrap_or(operation_id).to_owned())
    }

    async fn instances(
        &self,
        kind: InstancesOp,
        name: &str,
        delegated: bool,
        targets: &InstanceTargets,
        p: OperationPrefs,
        operation_id: &str,
    ) -> Result<String, CloudError> {
        let (accounts, deployment) = deployment(targets);
        let regions = Some(targets.regions.clone());
        let id = match kind {
            InstancesOp::Create => self
                .admin
                .create_stack_instances()
                .stack_set_name(name)
                .call_as(call_as(delegated))
                .set_accounts(accounts)
                .set_deployment_targets(deployment)
                .set_regions(regions)
                .operation_preferences(prefs(p))
                .operation_id(operation_id)
                .send()
                .await
                .map_err(sdk_error)?
                .operation_id()
                .map(str::to_owned),
            InstancesOp::Update => self
                .admin
                .update_stack_instances()
                .stack_set_name(name)
                .call_as(call_as(delegated))
                .set_accounts(accounts)
                .set_deployment_targets(deployment)
                .set_regions(regions)
                .operation_preferences(prefs(p))
                .operation_id(operation_id)
                .send()
                .await
                .map_err(sdk_error)?
                .operation_id()
                .map(str::to_owned),
            InstancesOp::Delete { retain_stacks } => self
                .admin
                .delete_stack_instances()
                .stack_set_name(name)
                .call_as(call_as(delegated))
                .set_accounts(accounts)
                .set_deployment_targets(deployment)
                .set_regions(regions)
                .retain_stacks(retain_stacks)
                .operation_preferences(prefs(p))
                .operation_id(operation_id)
                .send()
                .await
                .map_err(sdk_error)?
                .operation_id()
                .map(str::to_owned),
        };
        Ok(id.unwrap_or_else(|| operation_id.to_owned()))
    }

    async fn delete_stack_set(&self, name: &str, delegated: bool) -> Result<(), CloudError> {
        self.admin
            .delete_stack_set()
            .stack_set_name(name)
            .call_as(call_as(delegated))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn describe_operation(
        &self,
        name: &str,
        delegated: bool,
        operation_id: &str,
    ) -> Result<OperationInfo, CloudError> {
        let out = self
            .admin
            .describe_stack_set_operation()
            .stack_set_name(name)
            .operation_id(operation_id)
            .call_as(call_as(delegated))
            .send()
            .await
            .map_err(sdk_error)?;
        let op = out.stack_set_operation();
        Ok(OperationInfo {
            status: op
                .and_then(|o| o.status())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            reason: op.and_then(|o| o.status_reason()).map(str::to_owned),
        })
    }

    async fn operation_results(
        &self,
        name: &str,
        delegated: bool,
        operation_id: &str,
        next: Option<String>,
    ) -> Result<(Vec<OperationResult>, Option<String>), CloudError> {
        let out = self
            .admin
            .list_stack_set_operation_results()
            .stack_set_name(name)
            .operation_id(operation_id)
            .call_as(call_as(delegated))
            .set_next_token(next)
            .send()
            .await
            .map_err(sdk_error)?;
        let results = out
            .summaries()
            .iter()
            .map(|r| OperationResult {
                account: r.account().unwrap_or_default().to_owned(),
                region: r.region().unwrap_or_default().to_owned(),
                status: r.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                reason: r.status_reason().map(str::to_owned),
            })
            .collect();
        Ok((results, out.next_token().map(str::to_owned)))
    }

    async fn running_operations(&self, name: &str, delegated: bool) -> Result<Vec<String>, CloudError> {
        let out = self
            .admin
            .list_stack_set_operations()
            .stack_set_name(name)
            .call_as(call_as(delegated))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out
            .summaries()
            .iter()
            .filter(|o| {
                o.status()
                    .is_some_and(|s| matches!(s.as_str(), "RUNNING" | "QUEUED" | "STOPPING"))
            })
            .filter_map(|o| o.operation_id().map(str::to_owned))
            .collect())
    }
}

/// An account's bootstrap-role session, renewed before it expires: a
/// stack operation may outlast the hour an AssumeRole session lasts. Every
/// client of the account shares it, so a renewal is one AssumeRole, and it
/// goes through the run's STS rate limit. (aws-config's AssumeRoleProvider
/// would build its own STS client per account, outside that limit.)
#[derive(Debug)]
struct AssumedRole {
    sts: sts::Client,
    limit: Arc<RateLimit>,
    role_arn: String,
    session_name: String,
    external_id: Option<String>,
    current: tokio::sync::Mutex<Option<Credentials>>,
}

/// Renewed when less than this is left. The SDK's identity cache asks
/// again 10–15 s before the expiry it was given.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

fn needs_renewal(creds: Option<&Credentials>, now: std::time::SystemTime) -> bool {
    match creds.map(Credentials::expiry) {
        None => true,
        Some(None) => false,
        Some(Some(expiry)) => expiry.duration_since(now).map_or(true, |left| left < RENEW_BEFORE),
    }
}

impl AssumedRole {
    async fn fresh(&self) -> Result<Credentials, CloudError> {
        let mut current = self.current.lock().await;
        if needs_renewal(current.as_ref(), std::time::SystemTime::now()) {
            *current = Some(self.assume().await?);
        }
        Ok(current.clone().expect("set above"))
    }

    async fn assume(&self) -> Result<Credentials, CloudError> {
        self.limit.acquire().await;
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.external_id.clone())
            .send()
            .await
            .map_err(sdk_error)?;
        let c = out
            .credentials()
            .ok_or_else(|| CloudError::transport("AssumeRole returned no credentials".to_owned()))?;
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            std::time::SystemTime::try_from(*c.expiration()).ok(),
            "rolecall-assume-role",
        ))
    }
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move { self.fresh().await.map_err(CredentialsError::provider_error) })
    }
}

/// Credentials for one account; builds a CloudFormation client per region.
pub struct SdkSession {
    base: SdkConfig,
    creds: SharedCredentialsProvider,
    account: String,
    /// One client per region, built on first use (they share the pool).
    clients: std::sync::Mutex<BTreeMap<String, cfn::Client>>,
}

impl SdkSession {
    fn cfn(&self, region: &str) -> cfn::Client {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                cfn::Client::from_conf(
                    cfn::config::Builder::from(&self.base)
                        .credentials_provider(self.creds.clone())
                        .region(Region::new(region.to_owned()))
                        .retry_partition(partition("cfn", &format!("{}-{region}", self.account)))
                        .build(),
                )
            })
            .clone()
    }
}

fn parameters(request: &StackRequest) -> Vec<cfn::types::Parameter> {
    request
        .parameters
        .iter()
        .map(|(k, v)| {
            cfn::types::Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect()
}

fn tags(request: &StackRequest) -> Vec<cfn::types::Tag> {
    request
        .tags
        .iter()
        .map(|(k, v)| cfn::types::Tag::builder().key(k).value(v).build())
        .collect()
}

fn capabilities(request: &StackRequest) -> Vec<cfn::types::Capability> {
    let mut out = vec![
        cfn::types::Capability::CapabilityIam,
        cfn::types::Capability::CapabilityNamedIam,
    ];
    if request.auto_expand {
        out.push(cfn::types::Capability::CapabilityAutoExpand);
    }
    out
}

impl AccountSession for SdkSession {
    async fn describe_stack(&self, region: &str, stack_name: &str) -> Result<Observed, CloudError> {
        let result = self.cfn(region).describe_stacks().stack_name(stack_name).send().await;
        let out = match result {
            Ok(out) => out,
            Err(err) => {
                let err = sdk_error(err);
                // CloudFormation says "Stack with id X does not exist" as a
                // ValidationError; that is the answer "no stack", not a failure.
                if err.kind == ErrorKind::NotFound {
                    return Ok(Observed::Absent);
                }
                return Err(err);
            }
        };
        let Some(stack) = out.stacks().first() else {
            return Ok(Observed::Absent);
        };
        Ok(Observed::Present(stack_info(stack)))
    }

    async fn create_stack(&self, region: &str, request: &StackRequest, token: &str) -> Result<String, CloudError> {
        let out = self
            .cfn(region)
            .create_stack()
            .stack_name(&request.stack_name)
            .template_body(&request.template_body)
            .set_parameters(Some(parameters(request)))
            .set_tags(Some(tags(request)))
            .set_capabilities(Some(capabilities(request)))
            .client_request_token(token)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.stack_id().unwrap_or_default().to_owned())
    }

    async fn create_change_set(
        &self,
        region: &str,
        request: &StackRequest,
        change_set: &str,
        description: &str,
    ) -> Result<(), CloudError> {
        self.cfn(region)
            .create_change_set()
            .stack_name(&request.stack_name)
            .change_set_name(change_set)
            .change_set_type(cfn::types::ChangeSetType::Update)
            .template_body(&request.template_body)
            .set_parameters(Some(parameters(request)))
            .set_tags(Some(tags(request)))
            .set_capabilities(Some(capabilities(request)))
            .description(description)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn get_template(&self, region: &str, stack: &str) -> Result<String, CloudError> {
        let out = self
            .cfn(region)
            .get_template()
            .stack_name(stack)
            .template_stage(cfn::types::TemplateStage::Original)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.template_body().unwrap_or_default().to_owned())
    }

    async fn list_change_sets(&self, region: &str, stack_name: &str) -> Result<Vec<ChangeSetSummary>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .cfn(region)
            .list_change_sets()
            .stack_name(stack_name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for c in page.map_err(sdk_error)?.summaries() {
                out.push(ChangeSetSummary {
                    name: c.change_set_name().unwrap_or_default().to_owned(),
                    stack_name: c.stack_name().unwrap_or_default().to_owned(),
                    status: c.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    execution_status: c.execution_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    description: c.description().map(str::to_owned),
                    created: c.creation_time().and_then(|t| std::time::SystemTime::try_from(*t).ok()),
                });
            }
        }
        // moto lists the change sets of every stack.
        out.retain(|c| c.stack_name.is_empty() || c.stack_name == stack_name);
        Ok(out)
    }

    async fn describe_change_set(
        &self,
        region: &str,
        stack_name: &str,
        change_set: &str,
    ) -> Result<ChangeSetInfo, CloudError> {
        // The list of changes comes in pages; status and reason are on each.
        let mut info = ChangeSetInfo::default();
        let mut next = None;
        loop {
            let out = self
                .cfn(region)
                .describe_change_set()
                .stack_name(stack_name)
                .change_set_name(change_set)
                .set_next_token(next)
                .send()
                .await
                .map_err(sdk_error)?;
            info.status = out.status().map(|s| s.as_str().to_owned()).unwrap_or_default();
            info.status_reason = out.status_reason().map(str::to_owned);
            info.changes.extend(
                out.changes()
                    .iter()
                    .filter_map(|c| c.resource_change())
                    .map(|r| ResourceChange {
                        action: r.action().map(|a| a.as_str().to_owned()).unwrap_or_default(),
                        logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
                        resource_type: r.resource_type().unwrap_or_default().to_owned(),
                        replacement: r.replacement().map(|x| x.as_str().to_owned()),
                    }),
            );
            match out.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(info),
            }
        }
    }

    async fn execute_change_set(
        &self,
        region: &str,
        stack_name: &str,
        change_set: &str,
        token: &str,
    ) -> Result<(), CloudError> {
        self.cfn(region)
            .execute_change_set()
            .stack_name(stack_name)
            .change_set_name(change_set)
            .client_request_token(token)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn delete_change_set(&self, region: &str, stack_name: &str, change_set: &str) -> Result<(), CloudError> {
        self.cfn(region)
            .delete_change_set()
            .stack_name(stack_name)
            .change_set_name(change_set)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn delete_stack(&self, region: &str, stack_name: &str, token: &str) -> Result<(), CloudError> {
        self.cfn(region)
            .delete_stack()
            .stack_name(stack_name)
            .client_request_token(token)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn find_instance_stack(
        &self,
        region: &str,
        stack_set: &str,
        stack_id: Option<&str>,
    ) -> Result<Observed, CloudError> {
        if let Some(id) = stack_id
            && let Ok(Observed::Present(stack)) = self.describe_stack(region, id).await
        {
            return Ok(Observed::Present(stack));
        }
        // StackSets names instance stacks `StackSet-<name>-<uuid>` (moto:
        // `StackSet:<name>`); the newest live one is the instance's.
        let mut pages = self
            .cfn(region)
            .list_stacks()
            .set_stack_status_filter(Some(
                [
                    "CREATE_COMPLETE",
                    "UPDATE_COMPLETE",
                    "UPDATE_ROLLBACK_COMPLETE",
                    "IMPORT_COMPLETE",
                ]
                .map(cfn::types::StackStatus::from)
                .to_vec(),
            ))
            .into_paginator()
            .send();
        let prefix = format!("StackSet-{stack_set}-");
        let exact = format!("StackSet:{stack_set}");
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk_error)?;
            if let Some(found) = page
                .stack_summaries()
                .iter()
                .find(|s| s.stack_name().is_some_and(|n| n.starts_with(&prefix) || n == exact))
            {
                let id = found.stack_id().or(found.stack_name()).unwrap_or_default();
                return self.describe_stack(region, id).await;
            }
        }
        Ok(Observed::Absent)
    }

    async fn get_live_role(&self, role_name: &str) -> Result<Option<model::LiveRole>, CloudError> {
        let iam = iam::Client::from_conf(
            iam::config::Builder::from(&self.base)
                .credentials_provider(self.creds.clone())
                .retry_partition(partition("iam", &self.account))
                .build(),
        );
        let role = match iam.get_role().role_name(role_name).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = sdk_error(e);
                return if e.kind == ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        let role = role
            .role()
            .ok_or_else(|| CloudError::transport("GetRole returned no role".to_owned()))?;
        let document = |text: &str| {
            planner::drift::parse_document(text).map_err(|e| CloudError::transport(format!("role {role_name}: {e}")))
        };
        let trust = document(role.assume_role_policy_document().unwrap_or("{}"))?;
        let mut inline = BTreeMap::new();
        let mut pages = iam.list_role_policies().role_name(role_name).into_paginator().send();
        while let Some(page) = pages.next().await {
            for name in page.map_err(sdk_error)?.policy_names() {
                let policy = iam
                    .get_role_policy()
                    .role_name(role_name)
                    .policy_name(name)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                inline.insert(name.clone(), document(policy.policy_document())?);
            }
        }
        let mut managed = std::collections::BTreeSet::new();
        let mut pages = iam
            .list_attached_role_policies()
            .role_name(role_name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for p in page.map_err(sdk_error)?.attached_policies() {
                managed.extend(p.policy_arn().map(str::to_owned));
            }
        }
        Ok(Some(model::LiveRole {
            trust,
            inline,
            managed,
            max_session_duration: role
                .max_session_duration()
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(3600),
        }))
    }

    async fn detect_drift(
        &self,
        region: &str,
        stack_name: &str,
        poll_interval: Duration,
    ) -> Result<CfnDrift, CloudError> {
        let cfn = self.cfn(region);
        let started = cfn
            .detect_stack_drift()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(sdk_error)?;
        let id = started.stack_drift_detection_id().unwrap_or_default().to_owned();
        loop {
            let status = cfn
                .describe_stack_drift_detection_status()
                .stack_drift_detection_id(&id)
                .send()
                .await
                .map_err(sdk_error)?;
            match status.detection_status().map(|s| s.as_str()) {
                Some("DETECTION_IN_PROGRESS") => tokio::time::sleep(poll_interval).await,
                Some("DETECTION_FAILED") => {
                    return Err(CloudError::service(
                        "DETECTION_FAILED",
                        status.detection_status_reason().unwrap_or_default(),
                    ));
                }
                _ if status.stack_drift_status().map(|s| s.as_str()) == Some("IN_SYNC") => {
                    return Ok(CfnDrift::InSync);
                }
                _ => break,
            }
        }
        let mut details = Vec::new();
        let mut pages = cfn
            .describe_stack_resource_drifts()
            .stack_name(stack_name)
            .set_stack_resource_drift_status_filters(Some(vec![
                cfn::types::StackResourceDriftStatus::Modified,
                cfn::types::StackResourceDriftStatus::Deleted,
            ]))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for r in page.map_err(sdk_error)?.stack_resource_drifts() {
                let resource = r.logical_resource_id().unwrap_or("resource");
                if r.property_differences().is_empty() {
                    details.push(model::DriftDetail {
                        path: format!("CloudFormation:{resource}"),
                        expected: "as in the template".to_owned(),
                        actual: r
                            .stack_resource_drift_status()
                            .map(|s| s.as_str())
                            .unwrap_or("DRIFTED")
                            .to_owned(),
                    });
                }
                for d in r.property_differences() {
                    details.push(model::DriftDetail {
                        path: format!("CloudFormation:{resource}{}", d.property_path().unwrap_or_default()),
                        expected: d.expected_value().unwrap_or_default().to_owned(),
                        actual: d.actual_value().unwrap_or_default().to_owned(),
                    });
                }
            }
        }
        Ok(CfnDrift::Drifted(details))
    }

    async fn failure_reasons(&self, region: &str, stack_name: &str) -> Result<Vec<String>, CloudError> {
        // Newest first, back to the event that started the operation: a
        // stack with a long history has many pages, and only the last
        // operation's failures explain this run. At most 20 pages.
        let mut reasons = crate::events::Reasons::default();
        let mut pages = self
            .cfn(region)
            .describe_stack_events()
            .stack_name(stack_name)
            .into_paginator()
            .send();
        let mut read = 0;
        while !reasons.complete && read < 20 {
            let Some(page) = pages.next().await else { break };
            read += 1;
            let page = page.map_err(sdk_error)?;
            reasons.page(
                stack_name,
                page.stack_events().iter().map(|e| crate::events::StackEvent {
                    logical_id: e.logical_resource_id().unwrap_or("stack").to_owned(),
                    resource_type: e.resource_type().unwrap_or_default().to_owned(),
                    status: e.resource_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    reason: e.resource_status_reason().map(str::to_owned),
                }),
            );
        }
        Ok(reasons.finish())
    }
}

fn stack_info(stack: &cfn::types::Stack) -> StackInfo {
    let pairs = |it: &mut dyn Iterator<Item = (Option<&str>, Option<&str>)>| -> BTreeMap<String, String> {
        it.filter_map(|(k, v)| Some((k?.to_owned(), v.unwrap_or_default().to_owned())))
            .collect()
    };
    StackInfo {
        stack_id: stack.stack_id().unwrap_or_default().to_owned(),
        status: stack.stack_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        status_reason: stack.stack_status_reason().map(str::to_owned),
        tags: pairs(&mut stack.tags().iter().map(|t| (t.key(), t.value()))),
        parameters: pairs(
            &mut stack
                .parameters()
                .iter()
                .map(|p| (p.parameter_key(), p.parameter_value())),
        ),
        outputs: pairs(&mut stack.outputs().iter().map(|o| (o.output_key(), o.output_value()))),
        deployed_template: None,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts the validations the SDK asks of an HTTP client.
    #[derive(Debug)]
    struct Counting(Arc<AtomicUsize>, SharedHttpClient);

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            self.1.http_connector(settings, components)
        }

        fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Builds five CloudFormation clients the way a session does and says
    /// how many times the base HTTP client was validated.
    async fn validations(wrap: bool) -> usize {
        let count = Arc::new(AtomicUsize::new(0));
        let counting = SharedHttpClient::new(Counting(count.clone(), http_client()));
        let base = aws_config::defaults(BehaviorVersion::latest())
            .http_client(if wrap { ValidateOnce::wrap(counting) } else { counting })
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDCALLER", "callersecret", None, None, "test"))
            .load()
            .await;
        for account in 0..5 {
            let _ = cfn::Client::from_conf(
                cfn::config::Builder::from(&base)
                    .region(Region::new("eu-west-1"))
                    .retry_partition(partition("cfn", &account.to_string()))
                    .build(),
            );
        }
        count.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn the_http_client_is_validated_once_not_per_client() {
        // The SDK validates per client (for hyper: a TLS connector built
        // and thrown away, every root certificate parsed); ours once.
        assert_eq!(validations(false).await, 5);
        assert_eq!(validations(true).await, 1);
    }

    /// A one-operation STS on loopback: AssumeRole answers whose first
    /// credentials expire in a minute and later ones in an hour.
    fn stub_sts(calls: Arc<AtomicUsize>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                let lasts = if n == 1 { 60 } else { 3600 };
                let expiry = cfn::primitives::DateTime::from(std::time::SystemTime::now() + Duration::from_secs(lasts))
                    .fmt(cfn::primitives::DateTimeFormat::DateTime)
                    .unwrap();
                let xml = format!(
                    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials><AccessKeyId>ASIAKEY{n}</AccessKeyId><SecretAccessKey>secret{n}</SecretAccessKey><SessionToken>token{n}</SessionToken><Expiration>{expiry}</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::111111111111:assumed-role/R/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r{n}</RequestId></ResponseMetadata></AssumeRoleResponse>"
                );
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                );
            }
        });
        url
    }

    #[tokio::test]
    async fn an_account_session_is_renewed_before_it_expires() {
        let calls = Arc::new(AtomicUsize::new(0));
        let base = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .region(Region::new("us-east-1"))
            .endpoint_url(stub_sts(calls.clone()))
            .credentials_provider(Credentials::new("AKIDCALLER", "callersecret", None, None, "test"))
            .load()
            .await;
        let cloud = SdkCloud::new(base);
        let account = AccountId::parse("111111111111").unwrap();
        let session = cloud
            .assume_role(&account, "arn:aws:iam::111111111111:role/Boot", "s", None)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The first session has a minute left: the next use renews it.
        let creds = session.creds.provide_credentials().await.unwrap();
        assert_eq!(creds.access_key_id(), "ASIAKEY2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // An hour left: kept.
        let creds = session.creds.provide_credentials().await.unwrap();
        assert_eq!(creds.access_key_id(), "ASIAKEY2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn renewal_window() {
        let now = std::time::SystemTime::now();
        let lasting = |secs| Credentials::new("a", "b", None, Some(now + Duration::from_secs(secs)), "t");
        assert!(needs_renewal(None, now));
        assert!(needs_renewal(Some(&lasting(299)), now));
        assert!(!needs_renewal(Some(&lasting(301)), now));
        let expired = Credentials::new("a", "b", None, Some(now - Duration::from_secs(1)), "t");
        assert!(needs_renewal(Some(&expired), now));
    }
}
