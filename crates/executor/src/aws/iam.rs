//! IAM in a target account: the live role, as drift compares it, and the
//! calls that put a drifted one back (`apply --revert-drift`).

use std::collections::BTreeMap;

use super::{SdkSession, found, sdk_error};
use model::RoleRepair;

use crate::cloud::{CloudError, Roles};

impl Roles for SdkSession {
    async fn repair_role(&self, role_name: &str, repair: &RoleRepair) -> Result<(), CloudError> {
        let iam = self.iam();
        match repair {
            RoleRepair::Trust(doc) => iam
                .update_assume_role_policy()
                .role_name(role_name)
                .policy_document(doc)
                .send()
                .await
                .map(drop)
                .map_err(sdk_error),
            RoleRepair::PutInline(name, doc) => iam
                .put_role_policy()
                .role_name(role_name)
                .policy_name(name)
                .policy_document(doc)
                .send()
                .await
                .map(drop)
                .map_err(sdk_error),
            RoleRepair::DeleteInline(name) => iam
                .delete_role_policy()
                .role_name(role_name)
                .policy_name(name)
                .send()
                .await
                .map(drop)
                .map_err(sdk_error),
            RoleRepair::Attach(arn) => iam
                .attach_role_policy()
                .role_name(role_name)
                .policy_arn(arn)
                .send()
                .await
                .map(drop)
                .map_err(sdk_error),
            RoleRepair::Detach(arn) => iam
                .detach_role_policy()
                .role_name(role_name)
                .policy_arn(arn)
                .send()
                .await
                .map(drop)
                .map_err(sdk_error),
            RoleRepair::Boundary(Some(arn)) => iam
                .put_role_permissions_boundary()
                .role_name(role_name)
                .permissions_boundary(arn)
                .send()
                .await
                .map(drop)
                .map_err(sdk_error),
            RoleRepair::Boundary(None) => iam
                .delete_role_permissions_boundary()
                .role_name(role_name)
                .send()
                .await
                .map(drop)
                .map_err(sdk_error),
            RoleRepair::MaxSessionDuration(seconds) => iam
                .update_role()
                .role_name(role_name)
                .max_session_duration(i32::try_from(*seconds).unwrap_or(i32::MAX))
                .send()
                .await
                .map(drop)
                .map_err(sdk_error),
        }
    }

    async fn get_live_role(&self, role_name: &str) -> Result<Option<model::LiveRole>, CloudError> {
        let iam = self.iam();
        let Some(role) = found(iam.get_role().role_name(role_name).send().await)? else {
            return Ok(None);
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
            permissions_boundary: role
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .map(str::to_owned),
        }))
    }
}
