//! `deploy.via: stacksets`: what the stack set and each instance need,
//! from the stack set and its instances as observed. Pure: the same
//! questions as `decide` for stacks, asked of AWS's own fan-out.
//!
//! An unchanged inventory gives `no-op` everywhere, so `apply` starts no
//! stack-set operation at all.

use std::collections::BTreeSet;

use model::{
    Action, CatalogRole, Desired, InstanceInfo, Inventory, Plan, PlanEntry, StackSetDecision, StackSetInfo,
    StackSetSpec, TAG_FINGERPRINT, TAG_MANAGED_BY, Target,
};

/// The stack set of a role: `deploy.stackset.name` for the one role that
/// has it, else the role's `stack_name` (one stack set per role).
pub fn set_name(spec: &StackSetSpec, stack_name: &str) -> String {
    if spec.name.is_empty() {
        stack_name.to_owned()
    } else {
        spec.name.clone()
    }
}

/// Where a service-managed stack set of `role` deploys: OUs, and an
/// account filter within them (AccountFilterType and its accounts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deployment {
    pub ous: Vec<String>,
    pub account_filter: Option<(&'static str, Vec<String>)>,
}

/// The role's OUs (else the inventory's); the listed accounts and the
/// role's accounts as an INTERSECTION (less every exclusion), else every
/// exclusion (the organization's and the role's) as a DIFFERENCE.
/// Validation refuses what this cannot express (tags; OUs with accounts).
pub fn deployment(inv: &Inventory, role: &CatalogRole) -> Deployment {
    let org = inv.organization.as_ref();
    let targets = role.targets.clone().unwrap_or_default();
    let ous = if targets.ous.is_empty() {
        org.map(|o| o.ous.clone()).unwrap_or_default()
    } else {
        targets.ous.clone()
    };
    let mut excluded: Vec<String> = org
        .iter()
        .flat_map(|o| &o.exclude)
        .chain(&targets.exclude)
        .map(ToString::to_string)
        .collect();
    excluded.sort();
    excluded.dedup();
    let listed: Vec<String> = inv.accounts.iter().map(|a| a.id.to_string()).collect();
    let role_accounts: Vec<String> = targets.accounts.iter().map(ToString::to_string).collect();
    let only = match (listed.is_empty(), role_accounts.is_empty()) {
        (true, true) => None,
        (false, true) => Some(listed),
        (true, false) => Some(role_accounts),
        (false, false) => Some(listed.into_iter().filter(|a| role_accounts.contains(a)).collect()),
    };
    let account_filter = match only {
        Some(only) => Some((
            "INTERSECTION",
            only.into_iter().filter(|a| !excluded.contains(a)).collect(),
        )),
        None if !excluded.is_empty() => Some(("DIFFERENCE", excluded)),
        None => None,
    };
    Deployment { ous, account_filter }
}

use crate::decide::{managed, user_tags};

/// The plan for a stack set: its own action, and one row per target
/// account/region (plus orphaned instances). `left`: the role left the
/// catalog, so the stack set and every instance of it are orphaned.
pub fn decide(
    desired: &Desired,
    name: &str,
    set: Option<&StackSetInfo>,
    instances: &[InstanceInfo],
    targets: &[Target],
    left: bool,
) -> Plan {
    if left {
        return left_catalog(desired, name, set, instances);
    }
    let wanted: BTreeSet<(&str, &str)> = targets
        .iter()
        .flat_map(|t| t.regions.iter().map(move |r| (t.account_id.as_str(), r.as_str())))
        .collect();
    let (set_action, set_reason) = match set {
        None => (Action::Create, format!("no stack set {name}")),
        Some(s) if !managed(&s.tags) => (
            Action::Blocked,
            format!(
                "stack set {name} was not created by rolecall (no {TAG_MANAGED_BY} tag); rolecall does not adopt it: delete or rename it, or set deploy.stackset.name"
            ),
        ),
        Some(s) if s.tags.get(TAG_FINGERPRINT) != Some(&desired.fingerprint) => (
            Action::Update,
            "template or parameters differ from the inventory".to_owned(),
        ),
        Some(s) if user_tags(&s.tags) != desired.tags => (Action::Update, "tags differ from the inventory".to_owned()),
        Some(_) => (Action::NoOp, "matches the inventory".to_owned()),
    };
    let by_stack: std::collections::BTreeMap<(&str, &str), &InstanceInfo> = instances
        .iter()
        .map(|i| ((i.account_id.as_str(), i.region.as_str()), i))
        .collect();
    let mut entries = Vec::new();
    for t in targets {
        for region in &t.regions {
            let instance = by_stack.get(&(t.account_id.as_str(), region.as_str())).copied();
            let (action, reason) = match (set_action, instance) {
                (Action::Blocked, _) => (Action::Blocked, "the stack set is not rolecall's".to_owned()),
                (_, None) => (Action::Create, "no stack instance".to_owned()),
                (Action::Update, Some(_)) => (Action::Update, format!("the stack set changes: {set_reason}")),
                (_, Some(i)) => instance_action(i),
            };
            entries.push(PlanEntry {
                account_id: t.account_id.clone(),
                account_name: t.account_name.clone(),
                role: desired.role.clone(),
                region: region.clone(),
                action,
                reason,
                differences: Vec::new(),
                stack_status: instance.map(|i| i.status.clone()),
                stack_id: instance.and_then(|i| i.stack_id.clone()),
            });
        }
    }
    entries.extend(
        instances
            .iter()
            .filter(|i| !wanted.contains(&(i.account_id.as_str(), i.region.as_str())))
            .map(|i| {
                orphan(
                    desired,
                    i,
                    "the instance's account or region left the inventory; `apply --prune` or `destroy --orphans` removes it",
                )
            }),
    );
    let mut plan = Plan {
        entries,
        errors: Vec::new(),
        stack_sets: vec![StackSetDecision {
            name: name.to_owned(),
            action: set_action,
            reason: set_reason,
        }],
    };
    plan.sort();
    plan
}

/// A role that left the catalog: its stack set (when there is one, and it
/// is rolecall's) and every instance are orphaned.
fn left_catalog(desired: &Desired, name: &str, set: Option<&StackSetInfo>, instances: &[InstanceInfo]) -> Plan {
    let Some(set) = set.filter(|s| managed(&s.tags)) else {
        return Plan::default();
    };
    let why = format!(
        "role {} left the catalog; `destroy --orphans` deletes its instances and stack set {}",
        desired.role, set.name
    );
    let mut plan = Plan {
        entries: instances.iter().map(|i| orphan(desired, i, &why)).collect(),
        errors: Vec::new(),
        stack_sets: vec![StackSetDecision {
            name: name.to_owned(),
            action: Action::Orphaned,
            reason: why.clone(),
        }],
    };
    plan.sort();
    plan
}

fn orphan(desired: &Desired, i: &InstanceInfo, reason: &str) -> PlanEntry {
    PlanEntry {
        account_id: i.account_id.clone(),
        account_name: i.account_id.to_string(),
        role: desired.role.clone(),
        region: i.region.clone(),
        action: Action::Orphaned,
        reason: reason.to_owned(),
        differences: Vec::new(),
        stack_status: Some(i.status.clone()),
        stack_id: i.stack_id.clone(),
    }
}

fn instance_action(i: &InstanceInfo) -> (Action, String) {
    let why = i
        .reason
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    match (i.status.as_str(), i.detailed_status.as_deref()) {
        (_, Some("RUNNING" | "PENDING")) => (
            Action::Wait,
            "an operation is running on the instance; wait for it, then decide again".to_owned(),
        ),
        ("CURRENT", _) => (Action::NoOp, "CURRENT".to_owned()),
        ("OUTDATED", _) => (Action::Update, format!("OUTDATED{why}")),
        (status, _) => (
            Action::Blocked,
            format!(
                "{status}{why}: fix the instance in the CloudFormation console (or delete it with retained stacks), then run again"
            ),
        ),
    }
}
