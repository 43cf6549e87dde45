//! The real cloud, on the AWS SDK for Rust: the only module (with its
//! children, one per service) that names an SDK type. One `SdkConfig` is
//! built here; every per-account client is derived from it, so all share
//! one HTTP connection pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_cloudformation as cfn;
use aws_sdk_cloudformation::config::retry::{RetryPartition, TokenBucket};
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_organizations as org;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use cfn::config::{ConfigBag, RuntimeComponents, RuntimeComponentsBuilder};
use planner::partition::Partition;

use crate::cloud::CloudError;
use crate::limit::{self, RateLimit};
use calls::CallLog;

/// Whose credentials a client of the run's own uses, in the call log.
const CALLER: &str = "caller";

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
    sts: aws_sdk_sts::Client,
    /// Every AssumeRole of the run (first ones and renewals) goes through it.
    sts_limit: Arc<RateLimit>,
    org: org::Client,
    org_limit: RateLimit,
    /// CloudFormation in the caller's account and region: StackSets.
    admin: cfn::Client,
    /// S3 and SSM in the caller's account and region: the registry.
    s3: std::sync::OnceLock<aws_sdk_s3::Client>,
    ssm: std::sync::OnceLock<aws_sdk_ssm::Client>,
}

impl SdkCloud {
    pub fn new(base: SdkConfig) -> SdkCloud {
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&base)
                .retry_partition(
                    RetryPartition::custom("rolecall-sts")
                        .token_bucket(TokenBucket::builder().capacity(100_000).build())
                        .build(),
                )
                .interceptor(CallLog::new(CALLER))
                .build(),
        );
        // Organizations is a global service, served from one region of
        // each partition (us-east-1, us-gov-west-1, cn-northwest-1 …).
        let org = org::Client::from_conf(
            org::config::Builder::from(&base)
                .region(Region::new(Self::partition_of(&base).organizations_region))
                .interceptor(CallLog::new(CALLER))
                .build(),
        );
        let admin = cfn::Client::from_conf(
            cfn::config::Builder::from(&base)
                .interceptor(CallLog::new(CALLER))
                .build(),
        );
        SdkCloud {
            base,
            sts,
            sts_limit: Arc::new(RateLimit::per_second(limit::STS_PER_SECOND, limit::STS_PER_SECOND)),
            org,
            org_limit: RateLimit::per_second(limit::ORGANIZATIONS_PER_SECOND, limit::ORGANIZATIONS_PER_SECOND),
            admin,
            s3: std::sync::OnceLock::new(),
            ssm: std::sync::OnceLock::new(),
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

/// A call's answer, where "not found" (no such stack, stack set or role) is
/// an answer, `None`, not a failure.
fn found<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<Option<T>, CloudError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result.map_err(sdk_error) {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A call (or a page) of a rate-limited service.
async fn limited<T>(limit: &RateLimit, call: impl std::future::Future<Output = T>) -> T {
    limit.acquire().await;
    call.await
}

/// Credentials for one account, and its clients: a CloudFormation client
/// per region and one IAM client, each built on first use (all share the
/// process's connection pool and the account's one credentials session).
pub struct SdkSession {
    base: SdkConfig,
    creds: SharedCredentialsProvider,
    account: String,
    clients: std::sync::Mutex<BTreeMap<String, cfn::Client>>,
    iam: std::sync::OnceLock<aws_sdk_iam::Client>,
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
                        .interceptor(CallLog::new(&self.account))
                        .build(),
                )
            })
            .clone()
    }

    /// IAM is global to the account: one client, whatever the region.
    fn iam(&self) -> &aws_sdk_iam::Client {
        self.iam.get_or_init(|| {
            aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&self.base)
                    .credentials_provider(self.creds.clone())
                    .retry_partition(partition("iam", &self.account))
                    .interceptor(CallLog::new(&self.account))
                    .build(),
            )
        })
    }
}

mod calls;
mod changesets;
mod cloudformation;
mod drift;
mod iam;
mod organizations;
mod s3;
mod ssm;
mod stacksets;
mod sts;

#[cfg(test)]
mod tests;
