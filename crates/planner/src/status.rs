//! CloudFormation's statuses as rolecall reads them: one list of each kind,
//! used by plan, apply, destroy, drift and the StackSets path alike.

/// A stack that is settled and usable: its role exists as some template
/// made it.
pub const HEALTHY: [&str; 5] = [
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
];

/// Healthy, after an operation that failed and was rolled back: the stack
/// works, but its tags are no proof of the template it runs (the rollback
/// restored the template before the operation). An import that rolled back
/// is decided like an update that did: the deployed template decides.
pub const ROLLED_BACK: [&str; 2] = ["UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"];

/// What a failed create leaves behind: nothing usable, safe to replace.
pub const FAILED_CREATE: [&str; 3] = ["ROLLBACK_COMPLETE", "CREATE_FAILED", "DELETE_FAILED"];

/// A stack with a change set that was never executed: it never settles by
/// itself, so it is not "in progress" for waiting.
pub const REVIEW: &str = "REVIEW_IN_PROGRESS";

/// A stack-set operation that has not finished.
pub const OPERATION_RUNNING: [&str; 3] = ["RUNNING", "QUEUED", "STOPPING"];

pub fn healthy(status: &str) -> bool {
    HEALTHY.contains(&status)
}

pub fn rolled_back(status: &str) -> bool {
    ROLLED_BACK.contains(&status)
}

/// An operation is running on the stack and will end by itself: wait for it.
pub fn in_progress(status: &str) -> bool {
    status.ends_with("_IN_PROGRESS") && status != REVIEW
}

/// A stack-set operation still running (or queued, or stopping).
pub fn operation_running(status: &str) -> bool {
    OPERATION_RUNNING.contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rolled_back_status_is_healthy_and_none_is_in_progress() {
        for s in ROLLED_BACK {
            assert!(healthy(s), "{s}");
        }
        for s in HEALTHY.iter().chain(&FAILED_CREATE).chain([&REVIEW]) {
            assert!(!in_progress(s), "{s}");
        }
        assert!(in_progress("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"));
        assert!(!healthy("IMPORT_IN_PROGRESS"));
    }
}
