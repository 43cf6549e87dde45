//! CloudFormation's own drift detection of a stack in a target account.

use aws_sdk_cloudformation as cfn;

use super::{SdkSession, sdk_error};
use crate::cloud::{CfnDrift, CloudError, StackDrift};

impl StackDrift for SdkSession {
    async fn start_drift_detection(&self, region: &str, stack_name: &str) -> Result<String, CloudError> {
        let started = self
            .cfn(region)
            .detect_stack_drift()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(started.stack_drift_detection_id().unwrap_or_default().to_owned())
    }

    async fn drift_detection(
        &self,
        region: &str,
        stack_name: &str,
        detection_id: &str,
    ) -> Result<Option<CfnDrift>, CloudError> {
        let cfn = self.cfn(region);
        let status = cfn
            .describe_stack_drift_detection_status()
            .stack_drift_detection_id(detection_id)
            .send()
            .await
            .map_err(sdk_error)?;
        match status.detection_status().map(|s| s.as_str()) {
            Some("DETECTION_IN_PROGRESS") => return Ok(None),
            Some("DETECTION_FAILED") => {
                return Err(CloudError::service(
                    "DETECTION_FAILED",
                    status.detection_status_reason().unwrap_or_default(),
                ));
            }
            _ if status.stack_drift_status().map(|s| s.as_str()) == Some("IN_SYNC") => {
                return Ok(Some(CfnDrift::InSync));
            }
            _ => {}
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
        Ok(Some(CfnDrift::Drifted(details)))
    }
}
