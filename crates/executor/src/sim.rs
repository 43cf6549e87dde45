//! An in-memory cloud that answers at once, for scale runs of the
//! pipelines in one process (`cargo run --release -p executor --features
//! sim --example scale`): what rolecall itself costs per account, with no
//! emulator and no network in the way. Only the services plan and apply use
//! are simulated (stacks, change sets); of those, what a create-only rollout
//! does not call answers an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use model::{AccountId, Observed, StackInfo};

use crate::cloud::{
    ChangeSetInfo, ChangeSetSummary, ChangeSets, Cloud, CloudError, OrgAccount, Organization, StackRequest, Stacks,
};

type StackMap = Arc<Mutex<HashMap<(String, String), StackInfo>>>;

/// Every account's stacks, by (account, region).
#[derive(Clone, Debug, Default)]
pub struct SimCloud {
    stacks: StackMap,
}

#[derive(Debug)]
pub struct SimSession {
    account: String,
    stacks: StackMap,
}

fn not_simulated() -> CloudError {
    CloudError::transport("not simulated".to_owned())
}

impl Cloud for SimCloud {
    type Session = SimSession;

    async fn assume_role(
        &self,
        account: &AccountId,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<SimSession, CloudError> {
        Ok(SimSession {
            account: account.to_string(),
            stacks: self.stacks.clone(),
        })
    }
}

impl Organization for SimCloud {
    async fn describe_account(&self, _: &AccountId) -> Result<Option<OrgAccount>, CloudError> {
        Ok(None)
    }

    async fn list_child_ous(&self, _: &str) -> Result<Vec<String>, CloudError> {
        Ok(Vec::new())
    }

    async fn list_accounts_for_parent(&self, _: &str) -> Result<Vec<OrgAccount>, CloudError> {
        Ok(Vec::new())
    }

    async fn list_account_tags(&self, _: &AccountId) -> Result<Vec<(String, String)>, CloudError> {
        Ok(Vec::new())
    }

    async fn list_organization_accounts(&self) -> Result<Vec<OrgAccount>, CloudError> {
        Ok(Vec::new())
    }
}

impl Stacks for SimSession {
    async fn describe_stack(&self, region: &str, _: &str) -> Result<Observed, CloudError> {
        let stacks = self.stacks.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match stacks.get(&(self.account.clone(), region.to_owned())) {
            Some(s) => Observed::Present(s.clone()),
            None => Observed::Absent,
        })
    }

    async fn create_stack(&self, region: &str, request: &StackRequest, _: &str) -> Result<String, CloudError> {
        let mut stacks = self.stacks.lock().unwrap_or_else(|e| e.into_inner());
        let key = (self.account.clone(), region.to_owned());
        if stacks.contains_key(&key) {
            return Err(CloudError::service("AlreadyExistsException", "Stack already exists"));
        }
        let stack_id = planner::partition::AWS.stack_arn(region, &self.account, &request.stack_name, "sim");
        stacks.insert(
            key,
            StackInfo {
                stack_id: stack_id.clone(),
                status: "CREATE_COMPLETE".to_owned(),
                tags: request.tags.clone(),
                parameters: request.parameters.clone(),
                outputs: [(
                    "RoleArn".to_owned(),
                    planner::partition::AWS.role_arn(&self.account, "RolecallTarget"),
                )]
                .into(),
                ..StackInfo::default()
            },
        );
        Ok(stack_id)
    }

    async fn update_stack(&self, _: &str, _: &StackRequest, _: &str) -> Result<(), CloudError> {
        Err(not_simulated())
    }

    async fn get_template(&self, _: &str, _: &str) -> Result<String, CloudError> {
        Err(not_simulated())
    }

    async fn delete_stack(&self, _: &str, _: &str, _: &str) -> Result<(), CloudError> {
        Err(not_simulated())
    }

    async fn failure_reasons(&self, _: &str, _: &str) -> Result<Vec<String>, CloudError> {
        Ok(Vec::new())
    }
}

impl ChangeSets for SimSession {
    async fn create_change_set(&self, _: &str, _: &StackRequest, _: &str, _: &str) -> Result<(), CloudError> {
        Err(not_simulated())
    }

    async fn list_change_sets(&self, _: &str, _: &str) -> Result<Vec<ChangeSetSummary>, CloudError> {
        Ok(Vec::new())
    }

    async fn describe_change_set(&self, _: &str, _: &str, _: &str) -> Result<ChangeSetInfo, CloudError> {
        Err(not_simulated())
    }

    async fn execute_change_set(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), CloudError> {
        Err(not_simulated())
    }

    async fn delete_change_set(&self, _: &str, _: &str, _: &str) -> Result<(), CloudError> {
        Err(not_simulated())
    }
}
