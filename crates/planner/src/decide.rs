//! The decision for one stack: what observed state plus desired state means.

use std::collections::BTreeMap;

use model::{
    Action, Decision, Desired, Difference, MANAGED_BY_VALUE, Observed, StackInfo, TAG_FINGERPRINT, TAG_MANAGED_BY,
};

use crate::status::{FAILED_CREATE, REVIEW, healthy, in_progress, rolled_back};

pub fn decide(desired: &Desired, observed: &Observed) -> Decision {
    let stack = match observed {
        Observed::Absent => return decision(Action::Create, format!("no stack {}", desired.stack_name)),
        Observed::Present(stack) => stack,
    };
    let status = stack.status.as_str();
    if !ours(stack) {
        return decision(
            Action::Blocked,
            format!(
                "stack {} ({status}) was not created by rolecall (no {TAG_MANAGED_BY} tag); rolecall does not adopt stacks: delete or rename it, or choose another role.stack_name",
                desired.stack_name
            ),
        );
    }
    if healthy(status) {
        return compare(desired, stack);
    }
    if FAILED_CREATE.contains(&status) {
        return decision(
            Action::Recover,
            format!(
                "{status} is what a failed create leaves; delete it and create again{}",
                reason_suffix(stack)
            ),
        );
    }
    if status == REVIEW {
        return decision(
            Action::Blocked,
            "REVIEW_IN_PROGRESS: the stack has a change set that was never executed; execute or delete it in the CloudFormation console, then run again".to_owned(),
        );
    }
    if in_progress(status) {
        return decision(
            Action::Wait,
            format!("{status}: another operation is running; wait for it to finish, then decide again"),
        );
    }
    let help = match status {
        "UPDATE_ROLLBACK_FAILED" => {
            "continue the rollback (aws cloudformation continue-update-rollback) or fix the resource by hand, then run again"
        }
        "ROLLBACK_FAILED" => "delete the stack by hand (retaining resources that cannot be deleted), then run again",
        _ => "inspect the stack in the CloudFormation console and fix it by hand, then run again",
    };
    decision(
        Action::Blocked,
        format!(
            "{status}{}: rolecall never touches such a stack; {help}",
            reason_suffix(stack)
        ),
    )
}

/// The stack carries rolecall's managed-by tag.
pub fn ours(stack: &StackInfo) -> bool {
    managed(&stack.tags)
}

/// Tags (of a stack or a stack set) that say rolecall made it.
pub(crate) fn managed(tags: &BTreeMap<String, String>) -> bool {
    tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE)
}

/// The tags that are the user's: without rolecall's and AWS's own.
pub(crate) fn user_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| !k.starts_with("rolecall:") && !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `destroy`: rolecall deletes only stacks it created, and waits for an
/// operation in progress before deciding.
pub fn decide_destroy(stack_name: &str, observed: &Observed) -> Decision {
    let stack = match observed {
        Observed::Absent => return decision(Action::NoOp, format!("no stack {stack_name}: nothing to delete")),
        Observed::Present(stack) => stack,
    };
    let status = stack.status.as_str();
    if !ours(stack) {
        return decision(
            Action::Blocked,
            format!(
                "stack {stack_name} ({status}) was not created by rolecall (no {TAG_MANAGED_BY} tag); rolecall never deletes it"
            ),
        );
    }
    if in_progress(status) {
        return decision(
            Action::Wait,
            format!("{status}: another operation is running; wait for it to finish, then decide again"),
        );
    }
    decision(
        Action::Delete,
        format!("{status}: rolecall's stack; delete it and the role"),
    )
}

/// A stack in an account/region that left the inventory: reported while it
/// is rolecall's; gone or foreign stacks are none of rolecall's business.
pub fn decide_orphan(stack_name: &str, observed: &Observed) -> Option<Decision> {
    match observed {
        Observed::Present(stack) if ours(stack) => Some(decision(
            Action::Orphaned,
            format!(
                "{} ({}): its account or region left the inventory, and the stack is still there; `rolecall destroy --orphans` removes it",
                stack_name, stack.status
            ),
        )),
        _ => None,
    }
}

/// The stack's tags are not what the inventory wants: its user tags, or
/// the fingerprint tag that says which template and parameters it runs.
/// After an update that changed no resource (or one whose tags CloudFormation
/// did not apply), this says whether the tags alone still need an update.
pub fn tags_differ(desired: &Desired, stack: &StackInfo) -> bool {
    stack.tags.get(TAG_FINGERPRINT) != Some(&desired.fingerprint) || user_tags(&stack.tags) != desired.tags
}

fn compare(desired: &Desired, stack: &StackInfo) -> Decision {
    let mut differences = Vec::new();
    let fingerprint_differs = stack.tags.get(TAG_FINGERPRINT) != Some(&desired.fingerprint);
    let parameters_differ = parameters_differ(desired, stack);
    if fingerprint_differs && !parameters_differ {
        differences.push(Difference::Template);
    }
    if parameters_differ {
        differences.push(Difference::Parameters);
    }
    if user_tags(&stack.tags) != desired.tags {
        differences.push(Difference::Tags);
    }
    if differences.is_empty() && rolled_back(&stack.status) && !deployed_is_desired(desired, stack) {
        // The tags say "as the inventory", but the last update rolled back:
        // what runs may be the template before it.
        return Decision {
            action: Action::Update,
            reason: format!(
                "{}: the last {} rolled back and the deployed template {}; update again",
                stack.status,
                if stack.status.starts_with("IMPORT") {
                    "import"
                } else {
                    "update"
                },
                if stack.deployed_template.is_some() {
                    "is not the inventory's"
                } else {
                    "could not be read"
                }
            ),
            differences: vec![Difference::Template],
        };
    }
    if differences.is_empty() {
        return decision(Action::NoOp, format!("{} matches the inventory", stack.status));
    }
    let what: Vec<&str> = differences
        .iter()
        .map(|d| match d {
            Difference::Template => "template",
            Difference::Parameters => "parameters",
            Difference::Tags => "tags",
        })
        .collect();
    Decision {
        action: Action::Update,
        reason: format!(
            "{} differ{} from the inventory",
            what.join(", "),
            if what == ["template"] { "s" } else { "" }
        ),
        differences,
    }
}

/// The deployed template (GetTemplate) is the inventory's, compared by
/// meaning (JSON or YAML, key order and whitespace aside).
fn deployed_is_desired(desired: &Desired, stack: &StackInfo) -> bool {
    let Some(deployed) = &stack.deployed_template else {
        return false;
    };
    if deployed == &desired.template_body {
        return true;
    }
    let parse = |text: &str| serde_yaml::from_str::<serde_yaml::Value>(text).ok();
    matches!((parse(deployed), parse(&desired.template_body)), (Some(a), Some(b)) if a == b)
}

/// What DescribeStacks shows instead of a NoEcho parameter's value.
const NO_ECHO: &str = "****";

/// Only the parameters the inventory sets are compared: the others are at
/// their template defaults (DescribeStacks lists those too), and NoEcho
/// values are masked. The fingerprint tag covers both.
fn parameters_differ(desired: &Desired, stack: &StackInfo) -> bool {
    desired
        .parameters
        .iter()
        .any(|(key, want)| match stack.parameters.get(key) {
            Some(have) => have != want && have != NO_ECHO,
            None => true,
        })
}

fn reason_suffix(stack: &StackInfo) -> String {
    match &stack.status_reason {
        Some(r) if !r.is_empty() => format!(" ({r})"),
        _ => String::new(),
    }
}

fn decision(action: Action, reason: String) -> Decision {
    Decision {
        action,
        reason,
        differences: Vec::new(),
    }
}
