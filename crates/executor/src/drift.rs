//! The drift pipeline: read-only. Per account (the shared fan-out), per
//! region: the stack (missing, unhealthy, stale?), then the live IAM role
//! compared with what the inventory wants (`planner::drift`), and, when
//! asked, CloudFormation's own drift detection, rate-limited across
//! accounts. Nothing here writes, except DetectStackDrift's own detection
//! run with `--cfn-drift` (which changes no resource).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use model::{Desired, DriftDetail, DriftFinding, DriftKind, EventSink, Target};
use planner::drift::ExpectedRole;
use tokio::sync::Semaphore;
use tokio::time::Instant;

pub use crate::cloud::CfnDrift;
use crate::cloud::{Cloud, CloudError, ErrorKind, Roles, StackDrift, Stacks};
use crate::fanout::{Done, Reach, Slot, fan_out};
use crate::settings::Settings;

/// How drift runs CloudFormation's drift detection.
#[derive(Clone, Debug)]
pub struct DriftOptions {
    /// Also run DetectStackDrift on every healthy stack.
    pub cfn_drift: bool,
    /// Detections running at once, across all accounts (CloudFormation
    /// throttles DetectStackDrift per account and region).
    pub detections_at_once: usize,
    /// Longest wait for one detection.
    pub detection_timeout: Duration,
    pub poll_interval: Duration,
}

/// The result: one finding per target account/region, and notes (said
/// once, e.g. that drift detection is not available at this endpoint).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriftCheck {
    pub findings: Vec<DriftFinding>,
    pub notes: Vec<String>,
}

/// What the inventory expects of a role (of the catalog) in a region
/// (`None`: an own template, whose role is only checked to exist).
pub type Expect<'a> = &'a (dyn Fn(&Desired, &str) -> Option<ExpectedRole> + Sync);

pub async fn drift<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    catalog: &[Desired],
    targets: &[Target],
    expected: Expect<'_>,
    options: &DriftOptions,
    events: &dyn EventSink,
) -> DriftCheck
where
    C::Session: Stacks + Roles + StackDrift,
{
    let permits = Semaphore::new(options.detections_at_once.max(1));
    let unavailable = AtomicBool::new(false);
    let probe = tokio::sync::Mutex::new(false);
    let shared = Detections {
        permits: &permits,
        unavailable: &unavailable,
        probed: &probe,
    };
    let shared = &shared;
    let results: Vec<Vec<DriftFinding>> = fan_out(
        cloud,
        settings,
        targets,
        events,
        None,
        |target, reach, slot| async move {
            let findings = match reach {
                Reach::Session(session) => {
                    let stacks = crate::records::stacks(target, catalog).map(|(desired, region)| {
                        let here = Here {
                            session: &session,
                            desired,
                            target,
                            region,
                        };
                        check(here, expected, options, shared, settings, &slot)
                    });
                    slot.each_stack(stacks.collect()).await
                }
                Reach::Unreachable(error) => {
                    vec![finding(target, None, None, DriftKind::Error, error.message, Vec::new())]
                }
                Reach::Skipped(why) => vec![finding(target, None, None, DriftKind::Error, why, Vec::new())],
            };
            for f in &findings {
                tracing::info!(
                    account = %f.account_id,
                    name = %f.account_name,
                    role = %f.role.as_deref().unwrap_or("-"),
                    region = %f.region.as_deref().unwrap_or("-"),
                    "{}: {}",
                    f.kind,
                    f.reason
                );
            }
            Done {
                failed: findings.iter().any(|f| f.kind == DriftKind::Error),
                result: findings,
            }
        },
    )
    .await;
    let mut findings: Vec<DriftFinding> = results.into_iter().flatten().collect();
    sort(&mut findings);
    let mut notes = Vec::new();
    if unavailable.load(Ordering::SeqCst) {
        notes.push("CloudFormation drift detection unavailable here; the live-role comparison was used".to_owned());
    }
    DriftCheck { findings, notes }
}

/// By account, then region (account-level findings first).
pub fn sort(findings: &mut [DriftFinding]) {
    findings.sort_by(|a, b| (&a.account_id, &a.region, &a.role).cmp(&(&b.account_id, &b.region, &b.role)));
}

/// What all drift detections of a run share: the rate limit, and whether
/// the endpoint has drift detection at all. The first detection probes
/// alone; if the endpoint lacks it, no other target tries (and pays the
/// SDK's retries of a 500).
struct Detections<'a> {
    permits: &'a Semaphore,
    unavailable: &'a AtomicBool,
    /// Held by the first detection; `true` once one has finished.
    probed: &'a tokio::sync::Mutex<bool>,
}

pub fn finding(
    target: &Target,
    role: Option<&str>,
    region: Option<&str>,
    kind: DriftKind,
    reason: String,
    details: Vec<DriftDetail>,
) -> DriftFinding {
    DriftFinding {
        account_id: target.account_id.clone(),
        account_name: target.account_name.clone(),
        role: role.map(str::to_owned),
        region: region.map(str::to_owned),
        kind,
        reason,
        details,
    }
}

/// One stack of an account being checked.
struct Here<'a, S> {
    session: &'a S,
    desired: &'a Desired,
    target: &'a Target,
    region: &'a str,
}

async fn check<S: Stacks + Roles + StackDrift>(
    at: Here<'_, S>,
    expected: Expect<'_>,
    options: &DriftOptions,
    shared: &Detections<'_>,
    settings: &Settings,
    slot: &Slot,
) -> DriftFinding {
    let Here {
        session,
        desired,
        target,
        region,
    } = at;
    let here =
        |kind, reason: String, details| finding(target, Some(&desired.role), Some(region), kind, reason, details);
    let observed = match session.describe_stack(region, &desired.stack_name).await {
        Ok(o) => o,
        Err(e) => {
            return here(
                DriftKind::Error,
                format!("cannot read stack {}: {e}", desired.stack_name),
                Vec::new(),
            );
        }
    };
    let stack = match planner::drift::stack_state(desired, &observed) {
        Ok(stack) => stack,
        Err((kind, reason)) => return here(kind, reason, Vec::new()),
    };
    let want = expected(desired, region);
    let Some(role_name) = role_name(desired, stack, want.as_ref()) else {
        return here(
            DriftKind::Drifted,
            format!("the stack has no output {}", desired.output_key),
            Vec::new(),
        );
    };
    let live = match session.get_live_role(&role_name).await {
        Ok(live) => live,
        Err(e) => {
            return here(
                DriftKind::Error,
                format!("cannot read role {role_name}: {e}"),
                Vec::new(),
            );
        }
    };
    let mut details = match &want {
        Some(want) => planner::drift::compare_role(want, live.as_ref()),
        None if live.is_none() => vec![DriftDetail {
            path: "role".to_owned(),
            expected: role_name.clone(),
            actual: "missing (deleted or renamed outside CloudFormation)".to_owned(),
        }],
        None => Vec::new(),
    };
    let mut incomplete = None;
    if options.cfn_drift {
        let detected = {
            // The first detection of the run probes while holding `probed`;
            // the others wait for its answer, then run up to the limit.
            // Waiting for the probe's answer is waiting, not work.
            let mut probed = slot.idle(shared.probed.lock()).await;
            let wait = Wait {
                options,
                settings,
                slot,
            };
            if *probed {
                drop(probed);
                detect(session, desired, region, shared, wait).await
            } else {
                let result = detect(session, desired, region, shared, wait).await;
                *probed = true;
                result
            }
        };
        match detected {
            Detected::Skipped => {}
            Detected::Done(Ok(CfnDrift::InSync)) => {}
            Detected::Done(Ok(CfnDrift::Drifted(more))) => details.extend(more),
            Detected::Done(Err(e)) if e.kind == ErrorKind::Unavailable => {}
            Detected::Done(Err(e)) => incomplete = Some(format!("CloudFormation drift detection failed: {e}")),
            Detected::TimedOut => {
                incomplete = Some(format!(
                    "CloudFormation drift detection did not finish within {:?}",
                    options.detection_timeout
                ));
            }
            Detected::Interrupted => {
                incomplete = Some("interrupted while CloudFormation's drift detection ran".to_owned());
            }
        }
    }
    match (incomplete, details.is_empty()) {
        (Some(why), _) => here(DriftKind::Error, why, details),
        (None, true) => here(
            DriftKind::InSync,
            format!("{} matches the inventory", stack.status),
            details,
        ),
        (None, false) => here(
            DriftKind::Drifted,
            format!(
                "role {role_name} differs from the inventory ({} difference{})",
                details.len(),
                if details.len() == 1 { "" } else { "s" }
            ),
            details,
        ),
    }
}

/// The role the stack made: its output, else the name the inventory gives.
pub(crate) fn role_name(desired: &Desired, stack: &model::StackInfo, want: Option<&ExpectedRole>) -> Option<String> {
    stack
        .outputs
        .get(&desired.output_key)
        .and_then(|arn| planner::partition::role_name_of_arn(arn))
        .map(str::to_owned)
        .or_else(|| want.map(|w| w.name.clone()))
}

/// How a detection ended.
enum Detected {
    /// The endpoint is known to lack drift detection: not tried.
    Skipped,
    Done(Result<CfnDrift, CloudError>),
    TimedOut,
    Interrupted,
}

/// How a detection waits: a poll interval at a time, holding no share of
/// the account's slot, until its timeout or an interruption.
#[derive(Clone, Copy)]
struct Wait<'a> {
    options: &'a DriftOptions,
    settings: &'a Settings,
    slot: &'a Slot,
}

/// One detection within the rate limit (its permit is held while it runs,
/// its account's slot only while it makes calls).
async fn detect<S: Stacks + Roles + StackDrift>(
    session: &S,
    desired: &Desired,
    region: &str,
    shared: &Detections<'_>,
    wait: Wait<'_>,
) -> Detected {
    if shared.unavailable.load(Ordering::SeqCst) {
        return Detected::Skipped;
    }
    // Waiting for a permit holds no share of the account's slot either.
    let _permit = wait
        .slot
        .idle(shared.permits.acquire())
        .await
        .expect("the semaphore is never closed");
    if shared.unavailable.load(Ordering::SeqCst) {
        return Detected::Skipped;
    }
    let deadline = Instant::now() + wait.options.detection_timeout;
    let result = async {
        let id = session.start_drift_detection(region, &desired.stack_name).await?;
        loop {
            if let Some(done) = session.drift_detection(region, &desired.stack_name, &id).await? {
                return Ok(Detected::Done(Ok(done)));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Detected::TimedOut);
            }
            let pause = wait.options.poll_interval.min(deadline - now);
            if wait.slot.idle(wait.settings.interrupt.sleep(pause)).await {
                return Ok(Detected::Interrupted);
            }
        }
    }
    .await
    .unwrap_or_else(|e: CloudError| Detected::Done(Err(e)));
    if matches!(&result, Detected::Done(Err(e)) if e.kind == ErrorKind::Unavailable) {
        shared.unavailable.store(true, Ordering::SeqCst);
    }
    result
}
