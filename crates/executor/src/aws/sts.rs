//! STS: AssumeRole into each account, and the account's session that renews
//! itself before it expires.

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_sts as sts;
use model::AccountId;

use super::{SdkCloud, SdkSession, sdk_error};
use crate::cloud::{Cloud, CloudError};
use crate::limit::RateLimit;

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
            clients: std::sync::Mutex::new(Default::default()),
            iam: std::sync::OnceLock::new(),
        })
    }
}

impl crate::cloud::Identity for SdkCloud {
    async fn assumed_account(
        &self,
        role_arn: &str,
        session_name: &str,
        external_id: Option<&str>,
        duration_seconds: Option<u32>,
    ) -> Result<String, CloudError> {
        let creds = assume(
            &self.sts,
            &self.sts_limit,
            role_arn,
            session_name,
            external_id,
            duration_seconds,
            "rolecall-verify",
        )
        .await?;
        let sts = sts::Client::from_conf(
            sts::config::Builder::from(&self.base)
                .credentials_provider(SharedCredentialsProvider::new(creds))
                .interceptor(super::CallLog::new(
                    planner::partition::account_of_arn(role_arn).unwrap_or("-"),
                ))
                .build(),
        );
        self.sts_limit.acquire().await;
        let me = sts.get_caller_identity().send().await.map_err(sdk_error)?;
        Ok(me.account().unwrap_or_default().to_owned())
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

pub(super) fn needs_renewal(creds: Option<&Credentials>, now: std::time::SystemTime) -> bool {
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
        assume(
            &self.sts,
            &self.limit,
            &self.role_arn,
            &self.session_name,
            self.external_id.as_deref(),
            None,
            "rolecall-assume-role",
        )
        .await
    }
}

/// One AssumeRole through the run's STS rate limit; the credentials stay
/// inside this module's providers and clients.
async fn assume(
    sts: &sts::Client,
    limit: &RateLimit,
    role_arn: &str,
    session_name: &str,
    external_id: Option<&str>,
    duration_seconds: Option<u32>,
    provider: &'static str,
) -> Result<Credentials, CloudError> {
    limit.acquire().await;
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .set_external_id(external_id.map(str::to_owned))
        .set_duration_seconds(duration_seconds.map(|d| i32::try_from(d).unwrap_or(i32::MAX)))
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
        provider,
    ))
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move { self.fresh().await.map_err(CredentialsError::provider_error) })
    }
}
