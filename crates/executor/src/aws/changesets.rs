//! CloudFormation change sets of a stack in a target account.

use aws_sdk_cloudformation as cfn;
use model::ResourceChange;

use super::cloudformation::{capabilities, parameters, tags};
use super::{SdkSession, sdk_error};
use crate::cloud::{ChangeSetInfo, ChangeSetSummary, ChangeSets, CloudError, StackRequest};

impl ChangeSets for SdkSession {
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
            .set_deployment_mode(request.revert_drift.then_some(cfn::types::DeploymentMode::RevertDrift))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
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
}
