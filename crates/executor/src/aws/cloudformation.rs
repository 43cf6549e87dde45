//! CloudFormation stacks in a target account: read, create, update (tags),
//! delete, their
//! template and the reasons of a failed operation.

use std::collections::BTreeMap;

use aws_sdk_cloudformation as cfn;
use model::{Observed, StackInfo};

use super::{SdkSession, found, sdk_error};
use crate::cloud::{CloudError, StackRequest, Stacks};

pub(super) fn parameters(request: &StackRequest) -> Vec<cfn::types::Parameter> {
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

pub(super) fn tags(request: &StackRequest) -> Vec<cfn::types::Tag> {
    request
        .tags
        .iter()
        .map(|(k, v)| cfn::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(super) fn capabilities(request: &StackRequest) -> Vec<cfn::types::Capability> {
    let mut out = vec![
        cfn::types::Capability::CapabilityIam,
        cfn::types::Capability::CapabilityNamedIam,
    ];
    if request.auto_expand {
        out.push(cfn::types::Capability::CapabilityAutoExpand);
    }
    out
}

impl Stacks for SdkSession {
    async fn describe_stack(&self, region: &str, stack_name: &str) -> Result<Observed, CloudError> {
        let result = self.cfn(region).describe_stacks().stack_name(stack_name).send().await;
        // CloudFormation says "Stack with id X does not exist" as a
        // ValidationError; that is the answer "no stack", not a failure.
        let Some(out) = found(result)? else {
            return Ok(Observed::Absent);
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

    async fn update_stack(&self, region: &str, request: &StackRequest, token: &str) -> Result<(), CloudError> {
        let mut call = self
            .cfn(region)
            .update_stack()
            .stack_name(&request.stack_name)
            .template_body(&request.template_body)
            .set_tags(Some(tags(request)))
            .set_capabilities(Some(capabilities(request)))
            .client_request_token(token);
        // Only a template that has parameters gets the list: every one
        // named with its value (one left out would go back to its default).
        if !request.parameters.is_empty() {
            call = call.set_parameters(Some(parameters(request)));
        }
        call.send().await.map_err(sdk_error)?;
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
