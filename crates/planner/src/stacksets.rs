//! `deploy.via: stacksets`: what the stack set and each instance need,
//! from the stack set and its instances as observed. Pure: the same
//! questions as `decide` for stacks, asked of AWS's own fan-out.
//!
//! An unchanged inventory gives `no-op` everywhere, so `apply` starts no
//! stack-set operation at all.

use std::collections::BTreeSet;

use model::{
    Action, Desired, InstanceInfo, Plan, PlanEntry, StackSetDecision, StackSetInfo, TAG_FINGERPRINT, TAG_MANAGED_BY,
    Target,
};

use crate::decide::{managed, user_tags};

/// The plan for a stack set: its own action, and one row per target
/// account/region (plus orphaned instances).
pub fn decide(
    desired: &Desired,
    name: &str,
    set: Option<&StackSetInfo>,
    instances: &[InstanceInfo],
    targets: &[Target],
) -> Plan {
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
    let mut entries = Vec::new();
    for t in targets {
        for region in &t.regions {
            let instance = instances
                .iter()
                .find(|i| i.account_id == t.account_id && &i.region == region);
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
    for i in instances {
        if !wanted.contains(&(i.account_id.as_str(), i.region.as_str())) {
            entries.push(PlanEntry {
                account_id: i.account_id.clone(),
                account_name: i.account_id.to_string(),
                role: desired.role.clone(),
                region: i.region.clone(),
                action: Action::Orphaned,
                reason: "the instance's account or region left the inventory; `apply --prune` or `destroy --orphans` removes it".to_owned(),
                differences: Vec::new(),
                stack_status: Some(i.status.clone()),
                stack_id: i.stack_id.clone(),
            });
        }
    }
    let mut plan = Plan {
        entries,
        errors: Vec::new(),
        stack_set: Some(StackSetDecision {
            name: name.to_owned(),
            action: set_action,
            reason: set_reason,
        }),
    };
    plan.sort();
    plan
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
