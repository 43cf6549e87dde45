//! Change sets of other rolecall runs on the same stack. Each run names
//! its change sets after itself and writes its owner (session and host) in
//! the description. Before making its own, a run deletes what crashed runs
//! left behind and waits for what live runs are about to execute, instead
//! of deleting another run's change set from under it.

use std::time::{Duration, SystemTime};

use crate::cloud::ChangeSetSummary;

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

/// This machine's name, for change set owners: read once per process, not
/// once per stack update.
pub(crate) fn this_host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned())
    })
}

/// Whether a process of this host runs. Where that cannot be told (no
/// /proc), every owner counts as alive and only age makes a change set
/// abandoned.
pub(crate) fn pid_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
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
