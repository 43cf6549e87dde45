//! `deploy:`: regions, concurrency, the bootstrap role, StackSets.

use model::{Deploy, DeployVia, PermissionModel, StackSetSpec};

use super::raw::*;
use super::*;
use crate::names;

impl Validator<'_> {
    pub(super) fn deploy(&mut self, raw: RawDeploy) -> Deploy {
        let via = match raw.via.as_deref() {
            None | Some("bootstrap-role") => DeployVia::BootstrapRole,
            Some("stacksets") => DeployVia::Stacksets,
            Some(other) => {
                self.error(
                    "deploy.via",
                    format!("\"{other}\" is not a deployment method"),
                    "use `bootstrap-role` or `stacksets`",
                );
                DeployVia::BootstrapRole
            }
        };
        let bootstrap_role = raw.bootstrap_role.unwrap_or_else(|| DEFAULT_BOOTSTRAP_ROLE.to_owned());
        if let Err(why) = names::check_role_name(&bootstrap_role) {
            self.error(
                "deploy.bootstrap_role",
                format!("\"{bootstrap_role}\" is not a valid IAM role name: {why}"),
                "give the role's name (not its ARN), e.g. OrganizationAccountAccessRole",
            );
        }
        if let Some(external_id) = &raw.bootstrap_external_id
            && let Err(why) = names::check_external_id(external_id)
        {
            self.error(
                "deploy.bootstrap_external_id",
                why,
                "use 2-1224 letters, digits and +=,.@:/-",
            );
        }
        let regions = raw.regions.unwrap_or_else(|| vec!["us-east-1".to_owned()]);
        self.regions("deploy.regions", &regions);
        let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            self.error(
                "deploy.concurrency",
                format!("{concurrency} is out of range"),
                format!("use 1 to {MAX_CONCURRENCY}"),
            );
        }
        let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if !(1..=MAX_MAX_IN_FLIGHT).contains(&max_in_flight) {
            self.error(
                "deploy.max_in_flight",
                format!("{max_in_flight} is out of range"),
                format!("use 1 to {MAX_MAX_IN_FLIGHT} (the same as `concurrency` limits a bad template to that many accounts)"),
            );
        }
        let stackset = match (via, raw.stackset) {
            (DeployVia::Stacksets, raw) => Some(self.stackset(raw.unwrap_or_default())),
            (DeployVia::BootstrapRole, Some(_)) => {
                self.error(
                    "deploy.stackset",
                    "`stackset` only applies with `via: stacksets`",
                    "set `deploy.via: stacksets`, or remove `deploy.stackset`",
                );
                None
            }
            (DeployVia::BootstrapRole, None) => None,
        };
        Deploy {
            via,
            stackset,
            bootstrap_role,
            bootstrap_external_id: raw.bootstrap_external_id,
            regions,
            concurrency,
            max_in_flight,
            failure_tolerance: raw.failure_tolerance.unwrap_or(0),
        }
    }

    pub(super) fn choice(&mut self, path: &str, value: Option<&str>, choices: [&str; 2]) -> bool {
        match value {
            None => false,
            Some(v) if v == choices[0] => false,
            Some(v) if v == choices[1] => true,
            Some(v) => {
                self.error(
                    path,
                    format!("\"{v}\" is not one of {} and {}", choices[0], choices[1]),
                    format!("use `{}` or `{}`", choices[0], choices[1]),
                );
                false
            }
        }
    }

    /// `deploy.stackset`. The defaults are for many accounts: AWS's own
    /// (one account at a time, no failure tolerated, regions one by one)
    /// would take hours at 1,000 accounts.
    pub(super) fn stackset(&mut self, raw: RawStackSet) -> StackSetSpec {
        let service = self.choice(
            "deploy.stackset.permission_model",
            raw.permission_model.as_deref(),
            ["self-managed", "service-managed"],
        );
        let delegated_admin = self.choice(
            "deploy.stackset.call_as",
            raw.call_as.as_deref(),
            ["self", "delegated-admin"],
        );
        let sequential = self.choice(
            "deploy.stackset.region_concurrency",
            raw.region_concurrency.as_deref(),
            ["parallel", "sequential"],
        );
        let strict = self.choice(
            "deploy.stackset.concurrency_mode",
            raw.concurrency_mode.as_deref(),
            ["soft", "strict"],
        );
        for (key, value, lowest) in [
            ("max_concurrent_percentage", raw.max_concurrent_percentage, 1),
            ("failure_tolerance_percentage", raw.failure_tolerance_percentage, 0),
        ] {
            if let Some(v) = value
                && !(lowest..=100).contains(&v)
            {
                self.error(
                    &format!("deploy.stackset.{key}"),
                    format!("{v} is not a percentage from {lowest} to 100"),
                    format!("give {lowest}-100, or remove it to use a count"),
                );
            }
        }
        if let Some(name) = &raw.name
            && let Err(why) = names::check_stack_name(name)
        {
            self.error(
                "deploy.stackset.name",
                format!("\"{name}\" is not a valid stack set name: {why}"),
                "start with a letter; use up to 128 letters, digits and hyphens",
            );
        }
        if let Some(arn) = &raw.administration_role_arn
            && !crate::partition::is_role_arn(arn)
        {
            self.error(
                "deploy.stackset.administration_role_arn",
                format!("\"{arn}\" is not an IAM role ARN"),
                "write arn:aws:iam::<source account>:role/AWSCloudFormationStackSetAdministrationRole, or remove it for AWS's default",
            );
        }
        if let Some(name) = &raw.execution_role_name
            && let Err(why) = names::check_role_name(name)
        {
            self.error(
                "deploy.stackset.execution_role_name",
                format!("\"{name}\" is not a valid IAM role name: {why}"),
                "give the role's name, e.g. AWSCloudFormationStackSetExecutionRole",
            );
        }
        let only = |set: bool, key: &str, model: &str| set.then(|| (key.to_owned(), model.to_owned()));
        let misplaced = if service {
            [
                only(
                    raw.administration_role_arn.is_some(),
                    "administration_role_arn",
                    "self-managed",
                ),
                only(raw.execution_role_name.is_some(), "execution_role_name", "self-managed"),
            ]
        } else {
            [
                only(raw.auto_deployment.is_some(), "auto_deployment", "service-managed"),
                only(
                    raw.retain_stacks_on_account_removal.is_some(),
                    "retain_stacks_on_account_removal",
                    "service-managed",
                ),
            ]
        };
        for (key, model) in misplaced.into_iter().flatten() {
            self.error(
                &format!("deploy.stackset.{key}"),
                format!("`{key}` only applies to {model} stack sets"),
                format!("remove it, or set permission_model: {model}"),
            );
        }
        if delegated_admin && !service {
            self.error(
                "deploy.stackset.call_as",
                "`delegated-admin` only applies to service-managed stack sets",
                "set permission_model: service-managed, or call_as: self",
            );
        }
        StackSetSpec {
            name: raw.name.unwrap_or_default(),
            permission_model: if service {
                PermissionModel::ServiceManaged
            } else {
                PermissionModel::SelfManaged
            },
            delegated_admin,
            administration_role_arn: raw.administration_role_arn,
            execution_role_name: raw.execution_role_name,
            auto_deployment: raw.auto_deployment.unwrap_or(true),
            retain_stacks_on_account_removal: raw.retain_stacks_on_account_removal.unwrap_or(false),
            region_parallel: !sequential,
            soft_failure_tolerance: !strict,
            max_concurrent_percentage: raw.max_concurrent_percentage.map(|p| p.min(100) as u8),
            failure_tolerance_percentage: raw.failure_tolerance_percentage.map(|p| p.min(100) as u8),
        }
    }
}
