//! Why a stack operation failed, from DescribeStackEvents: only the events
//! of the latest operation (newest first, read back to the event that
//! started it), so that a failure of last week never explains today's.

/// One stack event, as much of it as the reasons need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StackEvent {
    pub(crate) logical_id: String,
    pub(crate) resource_type: String,
    pub(crate) status: String,
    pub(crate) reason: Option<String>,
}

/// Collects reasons page by page (events newest first).
#[derive(Debug, Default)]
pub(crate) struct Reasons {
    failures: Vec<String>,
    /// The event that started the operation was seen: read no further.
    pub(crate) complete: bool,
}

/// The stack's own status events that start an operation.
const STARTS: &[&str] = &[
    "CREATE_IN_PROGRESS",
    "UPDATE_IN_PROGRESS",
    "DELETE_IN_PROGRESS",
    "IMPORT_IN_PROGRESS",
];

impl Reasons {
    /// Takes one page; `stack_name` tells the stack's own events from its
    /// resources'.
    pub(crate) fn page(&mut self, stack_name: &str, events: impl IntoIterator<Item = StackEvent>) {
        for e in events {
            if self.complete {
                return;
            }
            let own = e.resource_type == "AWS::CloudFormation::Stack" && e.logical_id == stack_name;
            if own && STARTS.contains(&e.status.as_str()) {
                self.complete = true;
                return;
            }
            if e.status.ends_with("_FAILED")
                && let Some(reason) = e.reason
                && !reason.contains("Resource creation cancelled")
                && !reason.contains("Resource update cancelled")
            {
                self.failures.push(format!("{}: {reason}", e.logical_id));
            }
        }
    }

    /// The first failures of the operation (the root cause comes first), at
    /// most three.
    pub(crate) fn finish(mut self) -> Vec<String> {
        self.failures.reverse();
        self.failures.truncate(3);
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(logical_id: &str, resource_type: &str, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent {
            logical_id: logical_id.to_owned(),
            resource_type: resource_type.to_owned(),
            status: status.to_owned(),
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn only_the_latest_operation_counts_and_pages_stop_at_its_start() {
        const STACK: &str = "AWS::CloudFormation::Stack";
        let mut r = Reasons::default();
        // Newest first: this update's rollback, its failure, its start …
        r.page(
            "s",
            [
                e("s", STACK, "UPDATE_ROLLBACK_COMPLETE", None),
                e(
                    "Policy",
                    "AWS::IAM::Policy",
                    "UPDATE_FAILED",
                    Some("Resource update cancelled"),
                ),
                e(
                    "Role",
                    "AWS::IAM::Role",
                    "UPDATE_FAILED",
                    Some("MalformedPolicyDocument"),
                ),
            ],
        );
        assert!(!r.complete);
        r.page(
            "s",
            [
                e("s", STACK, "UPDATE_IN_PROGRESS", Some("User Initiated")),
                // … and last week's failed create, which must not show.
                e("Role", "AWS::IAM::Role", "CREATE_FAILED", Some("old news")),
            ],
        );
        assert!(r.complete);
        assert_eq!(r.finish(), ["Role: MalformedPolicyDocument"]);
    }

    #[test]
    fn the_root_cause_comes_first() {
        let mut r = Reasons::default();
        r.page(
            "s",
            [
                e("C", "T", "CREATE_FAILED", Some("third")),
                e("B", "T", "CREATE_FAILED", Some("second")),
                e("A", "T", "CREATE_FAILED", Some("first")),
                e("Z", "T", "CREATE_FAILED", Some("zeroth")),
            ],
        );
        assert_eq!(r.finish(), ["Z: zeroth", "A: first", "B: second"]);
    }
}
