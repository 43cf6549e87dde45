//! CloudFormation StackSets: the stack set and its operations in the caller's
//! account, and the stacks its instances made in each target account.

use aws_sdk_cloudformation as cfn;
use model::{AccountId, Observed};

use super::cloudformation::{capabilities, parameters, tags};
use super::{SdkCloud, SdkSession, found, sdk_error};
use crate::cloud::{
    CloudError, InstanceStacks, InstanceTargets, InstancesOp, OperationInfo, OperationPrefs, OperationResult,
    StackSetRequest, StackSets, Stacks,
};

fn call_as(delegated: bool) -> cfn::types::CallAs {
    if delegated {
        cfn::types::CallAs::DelegatedAdmin
    } else {
        cfn::types::CallAs::SelfValue
    }
}

/// StackSets takes a count or a percentage of each, never both.
pub(super) fn prefs(p: OperationPrefs) -> cfn::types::StackSetOperationPreferences {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let builder = cfn::types::StackSetOperationPreferences::builder();
    let builder = match p.max_concurrent_percentage {
        Some(percent) => builder.max_concurrent_percentage(i32::from(percent)),
        None => builder.max_concurrent_count(count(p.max_concurrent.max(1))),
    };
    let builder = match p.failure_tolerance_percentage {
        Some(percent) => builder.failure_tolerance_percentage(i32::from(percent)),
        None => builder.failure_tolerance_count(count(p.failure_tolerance)),
    };
    builder
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
        let answer = self
            .admin
            .describe_stack_set()
            .stack_set_name(name)
            .call_as(call_as(delegated))
            .send()
            .await;
        let Some(out) = found(answer)? else {
            return Ok(None);
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
                    .is_some_and(|s| planner::status::operation_running(s.as_str()))
            })
            .filter_map(|o| o.operation_id().map(str::to_owned))
            .collect())
    }
}

impl InstanceStacks for SdkSession {
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
                planner::status::HEALTHY.map(cfn::types::StackStatus::from).to_vec(),
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
}
