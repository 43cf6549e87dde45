//! Rules across sections: one role per account (IAM is global), StackSets
//! targets, one partition per run.

use model::{AccountEntry, Deploy, OrgDiscovery, PermissionModel, RoleSpec};

use super::*;
use crate::names;
use crate::partition::Partition;

impl Validator<'_> {
    /// IAM role names are global to an account: the built-in template with a
    /// fixed name collides in the second region of an account
    /// (EntityAlreadyExists) and leaves a failed stack behind.
    pub(super) fn one_role_per_account(&mut self, role: &RoleSpec, deploy: &Deploy, accounts: &[AccountEntry]) {
        if role.template.is_some() || role.name.contains("{region}") || names::check_role_name(&role.name).is_err() {
            return;
        }
        let multi = std::iter::once(("deploy.regions".to_owned(), deploy.regions.len()))
            .chain(
                accounts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| a.regions.as_ref().map(|r| (format!("accounts[{i}].regions"), r.len()))),
            )
            .find(|(_, n)| *n > 1);
        if let Some((path, n)) = multi {
            self.error(
                &path,
                format!("role \"{}\" ({}) would be created in {n} regions of one account, but IAM role names are global to an account: the second stack fails with EntityAlreadyExists", role.name, self.role_key("name")),
                format!("put {{region}} in the name (e.g. name: \"{}-{{region}}\") to get one role per region, or deploy to one region", role.name),
            );
        }
    }

    /// Service-managed stack sets target OUs: the accounts come from
    /// Organizations, narrowed by the listed accounts (INTERSECTION) or by
    /// `organization.exclude` (DIFFERENCE), never both; tag filters and
    /// per-account regions cannot be expressed.
    pub(super) fn stackset_targets(&mut self, deploy: &Deploy, accounts: &[AccountEntry], org: Option<&OrgDiscovery>) {
        let Some(set) = &deploy.stackset else { return };
        if set.permission_model != PermissionModel::ServiceManaged {
            return;
        }
        let Some(org) = org else {
            self.error(
                "deploy.stackset.permission_model",
                "a service-managed stack set deploys to OUs, but `organization.ous` is not given",
                "add `organization: {ous: [...]}`, or use permission_model: self-managed to target listed accounts",
            );
            return;
        };
        if !accounts.is_empty() && !org.exclude.is_empty() {
            self.error(
                "organization.exclude",
                "a service-managed stack set can narrow its OUs to the listed accounts or exclude accounts, not both (AccountFilterType is INTERSECTION or DIFFERENCE)",
                "keep either `accounts` or `organization.exclude`",
            );
        }
        if !org.tags.is_empty() {
            self.error(
                "organization.tags",
                "a service-managed stack set targets whole OUs; a tag filter cannot be expressed",
                "remove the tag filter, or use permission_model: self-managed",
            );
        }
        if let Some(i) = accounts.iter().position(|a| a.regions.is_some()) {
            self.error(
                &format!("accounts[{i}].regions"),
                "a service-managed stack set deploys to the same regions in every account",
                "remove the per-account regions, or use permission_model: self-managed",
            );
        }
    }

    /// A role's `targets` on a service-managed stack set: its OUs become
    /// the set's OUs, its accounts an INTERSECTION filter within the
    /// inventory's OUs, its exclusions part of the DIFFERENCE; a tag filter
    /// and OUs together with accounts (a union) cannot be expressed.
    pub(super) fn stackset_role_targets(&mut self, deploy: &Deploy, at: &str, targets: Option<&model::RoleTargets>) {
        let (Some(set), Some(targets)) = (&deploy.stackset, targets) else {
            return;
        };
        if set.permission_model != PermissionModel::ServiceManaged {
            return;
        }
        if !targets.tags.is_empty() {
            self.error(
                &format!("{at}.targets.tags"),
                "a service-managed stack set targets whole OUs; a tag filter cannot be expressed",
                "target the role by `ous` or `accounts`, or use permission_model: self-managed",
            );
        }
        if !targets.ous.is_empty() && !targets.accounts.is_empty() {
            self.error(
                &format!("{at}.targets"),
                "a service-managed stack set deploys to OUs, narrowed to accounts within them; `ous` and `accounts` together (either one) cannot be expressed",
                "keep either `ous` or `accounts`, or use permission_model: self-managed",
            );
        }
    }

    /// Credentials of one partition (aws, aws-us-gov, aws-cn …) never work in
    /// another: one run stays in one partition, and so do the ARNs it names.
    pub(super) fn one_partition(&mut self, role: Option<&RoleSpec>, deploy: &Deploy, accounts: &[AccountEntry]) {
        let Some(first) = deploy.regions.first() else { return };
        let partition = Partition::of_region(first);
        let regions = deploy
            .regions
            .iter()
            .enumerate()
            .map(|(j, r)| (format!("deploy.regions[{j}]"), r));
        let listed = accounts.iter().enumerate().flat_map(|(i, a)| {
            a.regions
                .iter()
                .flatten()
                .enumerate()
                .map(move |(j, r)| (format!("accounts[{i}].regions[{j}]"), r))
        });
        for (path, region) in regions.chain(listed).collect::<Vec<_>>() {
            let other = Partition::of_region(region);
            if names::is_region(region) && other != partition {
                self.error(
                    &path,
                    format!("region {region} is in partition {}, but deploy.regions starts with {first} in partition {}; one run cannot cross partitions (their credentials are separate)", other.name, partition.name),
                    "use one inventory per partition",
                );
            }
        }
        let arns = role.into_iter().flat_map(|r| {
            let managed = r
                .managed_policy_arns
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("{}.managed_policy_arns[{i}]", self.role_at), a));
            let principals = r
                .trusted_principals
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("{}.trusted_principals[{i}]", self.role_at), a));
            let boundary = r
                .permissions_boundary
                .iter()
                .map(|a| (self.role_key("permissions_boundary"), a));
            managed.chain(principals).chain(boundary).collect::<Vec<_>>()
        });
        for (path, arn) in arns.collect::<Vec<_>>() {
            if let Some(other) = Partition::of_arn(arn)
                && other != partition
            {
                self.error(
                    &path,
                    format!(
                        "\"{arn}\" is in partition {}, but the stacks go to partition {} ({first})",
                        other.name, partition.name
                    ),
                    if path.contains(".trusted_principals[") {
                        "trust principals of the deployment's partition (one inventory per partition)"
                    } else {
                        "write an AWS managed policy by name, or use an ARN of the deployment's partition"
                    },
                );
            }
        }
    }
}
