//! Change sets of other rolecall runs on the same stack. Each run names
//! its change sets after itself and writes its owner (session and host) in
//! the description. Before making its own, a run deletes what crashed runs
//! left behind and waits for what live runs are about to execute, instead
//! of deleting another run's change set from under it. An update's whole
//! change-set lifecycle is here: clean up, create, wait, execute, settle.

use std::time::{Duration, SystemTime};

use model::{Action, Difference, Observed, Outcome, ResourceChange, Stage, Status};

use crate::cloud::{ChangeSetSummary, ChangeSets, ErrorKind, StackRequest, Stacks, says_no_changes};
use crate::records::status_of;
use crate::stacks::{Failure, Stack};

/// A live run executes its change set seconds after CloudFormation has
/// made it; one of ours still not executed after this long is abandoned.
pub(crate) const ABANDONED_AFTER: Duration = Duration::from_secs(600);

const PREFIX: &str = "rolecall-";
const OWNER: &str = "rolecall run ";

/// The run making change sets.
pub(crate) struct Run<'a> {
    pub(crate) session: &'a str,
    pub(crate) host: &'a str,
}

impl Run<'_> {
    pub(crate) fn description(&self) -> String {
        format!("{OWNER}{} on {}", self.session, self.host)
    }

    /// `rolecall-<fingerprint>-<run>`: unique to the run, and says what it
    /// deploys. At most 128 characters, letters, digits and hyphens.
    pub(crate) fn change_set_name(&self, fingerprint: &str) -> String {
        let tail = self.session.strip_prefix(PREFIX).unwrap_or(self.session);
        let mut name: String = format!("{PREFIX}{}-{tail}", &fingerprint[..12.min(fingerprint.len())])
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
            .collect();
        name.truncate(128);
        name
    }
}

/// Another run's change set.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Other {
    /// Finished, failed, or left by a run that is gone: delete it.
    Stale { name: String },
    /// Made by a run that may still execute it: wait.
    InFlight { name: String, owner: String },
}

/// rolecall's change sets on the stack other than `me`'s, judged.
/// `alive(pid)` says whether a process of this host still runs.
pub(crate) fn others(
    sets: &[ChangeSetSummary],
    me: &Run<'_>,
    now: SystemTime,
    alive: &dyn Fn(u32) -> bool,
) -> Vec<Other> {
    let mine = me.description();
    sets.iter()
        .filter(|s| s.name.starts_with(PREFIX) && s.description.as_deref() != Some(mine.as_str()))
        .map(|s| {
            let stale = Other::Stale { name: s.name.clone() };
            let finished = s.status == "FAILED"
                || matches!(
                    s.execution_status.as_str(),
                    "EXECUTE_COMPLETE" | "EXECUTE_FAILED" | "OBSOLETE"
                );
            if finished {
                return stale;
            }
            let owner = s
                .description
                .as_deref()
                .and_then(|d| d.strip_prefix(OWNER))
                .and_then(|d| d.rsplit_once(" on "));
            if let Some((session, host)) = owner
                && host == me.host
                && let Some(pid) = session.rsplit('-').next().and_then(|p| p.parse().ok())
                && !alive(pid)
            {
                return stale;
            }
            let age = s.created.and_then(|c| now.duration_since(c).ok()).unwrap_or_default();
            if s.execution_status != "EXECUTE_IN_PROGRESS" && age > ABANDONED_AFTER {
                return stale;
            }
            Other::InFlight {
                name: s.name.clone(),
                owner: match owner {
                    Some((session, host)) => format!("rolecall run {session} on {host}"),
                    None => "an earlier rolecall".to_owned(),
                },
            }
        })
        .collect()
}

/// What an update through a change set came to.
pub(crate) enum Updated {
    /// Boxed: an outcome is large, and `Busy` is the common wait.
    Done(Box<Outcome>),
    /// Another live run has a change set on the stack.
    Busy(String),
}

impl<S: Stacks + ChangeSets> Stack<'_, S> {
    /// `revert_drift`: the change set also puts back what was changed
    /// outside CloudFormation (`apply --revert-drift`).
    pub(crate) async fn update(
        &self,
        before: Observed,
        confirmed: bool,
        revert_drift: bool,
    ) -> Result<Updated, Failure> {
        let action = Some(Action::Update);
        self.stage(Stage::Updating);
        // Tags alone: no resource changes to review, and a change set of
        // tags alone may be refused as "no changes".
        if !revert_drift && planner::decide(self.desired, &before).differences == [Difference::Tags] {
            return self
                .retag(&before, confirmed, Vec::new())
                .await
                .map(|o| Updated::Done(Box::new(o)));
        }
        let stack = self.desired.stack_name.clone();
        let run = Run {
            session: &self.settings.session_name,
            host: &self.settings.host,
        };
        // Unique to the run: two runs at once never touch each other's.
        let name = run.change_set_name(&self.desired.fingerprint);
        let description = run.description();
        // What other runs left: crashed runs' change sets go, live runs'
        // are waited for. A bootstrap role without ListChangeSets (made by
        // an older rolecall) only loses that cleanup.
        match self.session.list_change_sets(self.region, &stack).await {
            Ok(sets) => {
                let mut busy = None;
                for other in others(&sets, &run, SystemTime::now(), &self.settings.process_alive) {
                    match other {
                        Other::Stale { name } => {
                            tracing::info!(account = %self.target.account_id, region = self.region, change_set = %name, "deleting an abandoned change set");
                            let _ = self.session.delete_change_set(self.region, &stack, &name).await;
                        }
                        Other::InFlight { name, owner } => busy = Some(format!("{owner} (change set {name})")),
                    }
                }
                if let Some(what) = busy {
                    return Ok(Updated::Busy(what));
                }
            }
            Err(e) => {
                tracing::warn!(account = %self.target.account_id, region = self.region, "cannot list the change sets of {stack}: {e}")
            }
        }
        let request = StackRequest {
            revert_drift,
            ..self.request()
        };
        let mut created = self
            .session
            .create_change_set(self.region, &request, &name, &description)
            .await;
        // This run's own, from a retry the SDK made: replaced.
        if matches!(&created, Err(e) if e.kind == ErrorKind::AlreadyExists) {
            self.session
                .delete_change_set(self.region, &stack, &name)
                .await
                .map_err(|e| self.cloud("deleting the old change set of", action, e))?;
            created = self
                .session
                .create_change_set(self.region, &request, &name, &description)
                .await;
        }
        match created {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NoChanges => {
                return self
                    .unchanged(&before, confirmed)
                    .await
                    .map(|o| Updated::Done(Box::new(o)));
            }
            // CloudFormation's own check: the stack is gone or busy now.
            Err(e) if confirmed && matches!(e.kind, ErrorKind::NotFound | ErrorKind::NotUpdatable) => {
                let what = format!("the stack changed since the plan ({})", e.message());
                return Ok(Updated::Done(Box::new(self.changed_since_plan(Action::Update, what))));
            }
            Err(e) => return Err(self.cloud("CreateChangeSet for", action, e)),
        }
        let info = loop {
            let info = self
                .session
                .describe_change_set(self.region, &stack, &name)
                .await
                .map_err(|e| self.cloud("DescribeChangeSet for", action, e))?;
            if !matches!(info.status.as_str(), "CREATE_PENDING" | "CREATE_IN_PROGRESS") {
                break info;
            }
            self.sleep(action, "the change set").await?;
        };
        if info.status != "CREATE_COMPLETE" {
            let reason = info.status_reason.unwrap_or_default();
            // Best effort: a failed change set is useless either way.
            let _ = self.session.delete_change_set(self.region, &stack, &name).await;
            if says_no_changes(&reason) {
                return self
                    .unchanged(&before, confirmed)
                    .await
                    .map(|o| Updated::Done(Box::new(o)));
            }
            return Err(self.fail(
                Some(before),
                action,
                format!("change set {name} {}: {reason}", info.status),
            ));
        }
        // Executed even when it lists no resource change: it still carries
        // the new template and tags (and the fingerprint), so the next run
        // is a no-op instead of the same update again.
        self.session
            .execute_change_set(self.region, &stack, &name, &self.token("update"))
            .await
            .map_err(|e| self.cloud("ExecuteChangeSet for", action, e))?;
        let observed = self.settle(action).await?;
        match status_of(&observed) {
            // The change set's tags not applied (an endpoint that drops
            // them, as moto does): put them on, or the next run updates again.
            "UPDATE_COMPLETE" if stale_tags(self.desired, &observed) => self
                .retag(&observed, false, info.changes)
                .await
                .map(|o| Updated::Done(Box::new(o))),
            "UPDATE_COMPLETE" => self
                .finish(Action::Update, Status::Updated, &observed, info.changes)
                .map(|o| Updated::Done(Box::new(o))),
            other => {
                let why = self.reasons().await;
                Err(self.fail(Some(observed.clone()), action, format!("update ended in {other}{why}")))
            }
        }
    }

    /// The change set found nothing to change: template and parameters are
    /// the inventory's. Tags that still differ (the user's, or the
    /// fingerprint) are updated on their own; otherwise the stack is
    /// unchanged.
    async fn unchanged(&self, before: &Observed, confirmed: bool) -> Result<Outcome, Failure> {
        if stale_tags(self.desired, before) {
            return self.retag(before, confirmed, Vec::new()).await;
        }
        self.finish(Action::Update, Status::Unchanged, before, Vec::new())
    }

    /// UpdateStack with the inventory's template, parameters and tags:
    /// what CloudFormation documents for changing a stack's tags, and what
    /// applies them where a change set did not.
    async fn retag(
        &self,
        before: &Observed,
        confirmed: bool,
        changes: Vec<ResourceChange>,
    ) -> Result<Outcome, Failure> {
        let action = Some(Action::Update);
        match self
            .session
            .update_stack(self.region, &self.request(), &self.token("retag"))
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NoChanges => {
                return self.finish(Action::Update, Status::Unchanged, before, changes);
            }
            Err(e) if confirmed && matches!(e.kind, ErrorKind::NotFound | ErrorKind::NotUpdatable) => {
                let what = format!("the stack changed since the plan ({})", e.message());
                return Ok(self.changed_since_plan(Action::Update, what));
            }
            Err(e) => return Err(self.cloud("UpdateStack (tags) for", action, e)),
        }
        let observed = self.settle(action).await?;
        match status_of(&observed) {
            "UPDATE_COMPLETE" => self.finish(Action::Update, Status::Updated, &observed, changes),
            other => {
                let why = self.reasons().await;
                Err(self.fail(
                    Some(observed.clone()),
                    action,
                    format!("tag update ended in {other}{why}"),
                ))
            }
        }
    }
}

fn stale_tags(desired: &model::Desired, observed: &Observed) -> bool {
    matches!(observed, Observed::Present(stack) if planner::decide::tags_differ(desired, stack))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, status: &str, execution: &str, description: Option<&str>, age: u64) -> ChangeSetSummary {
        ChangeSetSummary {
            name: name.to_owned(),
            stack_name: "rolecall-target-role".to_owned(),
            status: status.to_owned(),
            execution_status: execution.to_owned(),
            description: description.map(str::to_owned),
            created: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(10_000 - age)),
        }
    }

    #[test]
    fn crashed_finished_and_old_ones_go_live_ones_are_waited_for() {
        let me = Run {
            session: "rolecall-apply-100-42",
            host: "ci-1",
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let alive = |pid: u32| pid == 7;
        let sets = [
            set(
                "rolecall-aaa-apply-100-42",
                "CREATE_COMPLETE",
                "AVAILABLE",
                Some(&me.description()),
                1,
            ),
            set("someone-elses", "CREATE_COMPLETE", "AVAILABLE", None, 1),
            set("rolecall-b", "FAILED", "UNAVAILABLE", None, 1),
            set("rolecall-c", "CREATE_COMPLETE", "EXECUTE_COMPLETE", None, 1),
            set(
                "rolecall-d",
                "CREATE_COMPLETE",
                "AVAILABLE",
                Some("rolecall run rolecall-apply-1-9 on ci-1"),
                5,
            ),
            set(
                "rolecall-e",
                "CREATE_COMPLETE",
                "AVAILABLE",
                Some("rolecall run rolecall-apply-1-7 on ci-1"),
                5,
            ),
            set(
                "rolecall-f",
                "CREATE_PENDING",
                "UNAVAILABLE",
                Some("rolecall run rolecall-apply-1-9 on ci-2"),
                5,
            ),
            set(
                "rolecall-g",
                "CREATE_COMPLETE",
                "AVAILABLE",
                Some("rolecall run rolecall-apply-1-9 on ci-2"),
                601,
            ),
            set("rolecall-h", "CREATE_COMPLETE", "EXECUTE_IN_PROGRESS", None, 900),
            set("rolecall-i", "CREATE_COMPLETE", "AVAILABLE", None, 30),
        ];
        let stale = |n: &str| Other::Stale { name: n.to_owned() };
        let live = |n: &str, owner: &str| Other::InFlight {
            name: n.to_owned(),
            owner: owner.to_owned(),
        };
        assert_eq!(
            others(&sets, &me, now, &alive),
            [
                stale("rolecall-b"),
                stale("rolecall-c"),
                stale("rolecall-d"),
                live("rolecall-e", "rolecall run rolecall-apply-1-7 on ci-1"),
                live("rolecall-f", "rolecall run rolecall-apply-1-9 on ci-2"),
                stale("rolecall-g"),
                live("rolecall-h", "an earlier rolecall"),
                live("rolecall-i", "an earlier rolecall"),
            ]
        );
    }

    #[test]
    fn names_are_unique_per_run_and_valid() {
        let a = Run {
            session: "rolecall-apply-100-42",
            host: "h",
        };
        let b = Run {
            session: "rolecall-apply-100-43",
            host: "h",
        };
        let fp = "0123456789abcdef0123";
        assert_eq!(a.change_set_name(fp), "rolecall-0123456789ab-apply-100-42");
        assert_ne!(a.change_set_name(fp), b.change_set_name(fp));
        let long = Run {
            session: &"x.".repeat(100),
            host: "h",
        };
        let name = long.change_set_name(fp);
        assert!(name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
