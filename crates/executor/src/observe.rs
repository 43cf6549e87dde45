//! The plan pipeline: per account, assume the bootstrap role once, read the
//! stack in every region, and let the planner decide. Accounts run
//! concurrently up to a bound; one account's failure never stops another.

use std::collections::BTreeMap;

use model::{AccountError, AccountId, Decision, Desired, Event, EventSink, Observed, Plan, PlanEntry, Target};

use crate::cloud::{AccountSession, Cloud, CloudError};
use crate::fanout::{Done, Reach, fan_out};

/// How the executor reaches each account.
#[derive(Clone, Debug)]
pub struct Settings {
    pub bootstrap_role: String,
    pub bootstrap_external_id: Option<String>,
    /// Accounts worked on at once.
    pub concurrency: usize,
    /// RoleSessionName: names rolecall and the run in CloudTrail.
    pub session_name: String,
    /// The caller's partition: every ARN rolecall builds is in it.
    pub partition: planner::partition::Partition,
    /// Set on Ctrl-C / SIGTERM: no new account, no new write, waits end.
    pub interrupt: crate::interrupt::Interrupt,
}

impl Settings {
    pub fn bootstrap_role_arn(&self, account: &model::AccountId) -> String {
        self.partition.role_arn(account.as_str(), &self.bootstrap_role)
    }
}

/// What was observed, by account and region: `apply` after a confirmed
/// plan acts on exactly this.
pub type ObservedMap = BTreeMap<(AccountId, String), Observed>;

/// A decision for one observed stack; `None` leaves it out of the plan.
pub type Decide<'a> = &'a (dyn Fn(&Observed) -> Option<Decision> + Sync);

/// Observes every target and decides; returns the plan sorted by account
/// and region.
pub async fn plan<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    desired: &Desired,
    targets: &[Target],
    events: &dyn EventSink,
) -> Plan {
    let decide = |o: &Observed| Some(planner::decide(desired, o));
    observe(cloud, settings, &desired.stack_name, targets, events, &decide)
        .await
        .0
}

/// The observe pipeline with any decision: the plan (sorted), and every
/// stack as it was read.
pub async fn observe<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    stack_name: &str,
    targets: &[Target],
    events: &dyn EventSink,
    decide: Decide<'_>,
) -> (Plan, ObservedMap) {
    type AccountResult = (Vec<PlanEntry>, Vec<AccountError>, Vec<((AccountId, String), Observed)>);
    let results: Vec<AccountResult> = fan_out(cloud, settings, targets, events, None, |target, reach| async move {
        let result = match reach {
            Reach::Session(session) => {
                let result = observe_account(&session, stack_name, target, events, decide).await;
                for error in &result.1 {
                    events.event(Event::AccountFailed { error: error.clone() });
                }
                result
            }
            Reach::Unreachable(error) => (Vec::new(), vec![error], Vec::new()),
            Reach::Skipped(_) => (Vec::new(), Vec::new(), Vec::new()),
        };
        Done {
            failed: !result.1.is_empty(),
            result,
        }
    })
    .await;
    let mut plan = Plan::default();
    let mut observed = ObservedMap::new();
    for (entries, errors, seen) in results {
        plan.entries.extend(entries);
        plan.errors.extend(errors);
        observed.extend(seen);
    }
    plan.sort();
    (plan, observed)
}

/// AssumeRole into the target's bootstrap role; a failure is that account's
/// error, with what to do about it.
pub async fn assume<C: Cloud>(cloud: &C, settings: &Settings, target: &Target) -> Result<C::Session, AccountError> {
    let arn = settings.bootstrap_role_arn(&target.account_id);
    cloud
        .assume_role(&target.account_id, &arn, &settings.session_name, settings.bootstrap_external_id.as_deref())
        .await
        .map_err(|e| {
            let help = if e.is_expired_credentials() {
                "the caller's credentials expired: renew them (e.g. `aws sso login`) and run again"
            } else if e.is_access_denied() {
                "the bootstrap role is missing or does not trust the caller (invited accounts have no OrganizationAccountAccessRole): create it once with the template from `rolecall bootstrap-template`, or set deploy.bootstrap_role"
            } else {
                "check the network, the endpoint and the caller's credentials"
            };
            account_error(target, None, format!("cannot assume {arn}: {e}; {help}"))
        })
}

/// DescribeStacks, and GetTemplate where the tags alone prove nothing: a
/// stack of rolecall's whose last update rolled back. A template that
/// cannot be read stays `None`, and the planner plans an update.
pub(crate) async fn read_stack<S: AccountSession>(
    session: &S,
    region: &str,
    stack_name: &str,
) -> Result<Observed, CloudError> {
    let mut observed = session.describe_stack(region, stack_name).await?;
    if let Observed::Present(stack) = &mut observed
        && stack.status == planner::decide::ROLLED_BACK
        && planner::decide::ours(stack)
    {
        let id = if stack.stack_id.is_empty() {
            stack_name
        } else {
            &stack.stack_id
        };
        stack.deployed_template = session.get_template(region, id).await.ok();
    }
    Ok(observed)
}

/// Reads the stack in each region of one account (regions concurrently).
async fn observe_account<S: AccountSession>(
    session: &S,
    stack_name: &str,
    target: &Target,
    events: &dyn EventSink,
    decide: Decide<'_>,
) -> (Vec<PlanEntry>, Vec<AccountError>, Vec<((AccountId, String), Observed)>) {
    let observed = futures::future::join_all(
        target
            .regions
            .iter()
            .map(|region| async move { (region, read_stack(session, region, stack_name).await) }),
    )
    .await;
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for (region, result) in observed {
        match result {
            Ok(observed) => {
                if let Some(decision) = decide(&observed) {
                    let entry = entry(target, region, decision, &observed);
                    events.event(Event::Planned { entry: entry.clone() });
                    entries.push(entry);
                }
                seen.push(((target.account_id.clone(), region.clone()), observed));
            }
            Err(e) => errors.push(region_error(target, region, stack_name, &e)),
        }
    }
    (entries, errors, seen)
}

pub fn plan_entry(target: &Target, region: &str, desired: &Desired, observed: &Observed) -> PlanEntry {
    entry(target, region, planner::decide(desired, observed), observed)
}

pub fn entry(target: &Target, region: &str, decision: Decision, observed: &Observed) -> PlanEntry {
    let stack = match observed {
        Observed::Present(s) => Some(s),
        Observed::Absent => None,
    };
    PlanEntry {
        account_id: target.account_id.clone(),
        account_name: target.account_name.clone(),
        region: region.to_owned(),
        action: decision.action,
        reason: decision.reason,
        differences: decision.differences,
        stack_status: stack.map(|s| s.status.clone()),
        stack_id: stack.map(|s| s.stack_id.clone()),
    }
}

fn region_error(target: &Target, region: &str, stack_name: &str, e: &CloudError) -> AccountError {
    let message = if e.is_expired_credentials() {
        format!(
            "cannot read stack {stack_name}: {e}; the credentials expired: renew the caller's own (e.g. `aws sso login`) and run again"
        )
    } else if e.is_region_not_enabled() {
        format!(
            "cannot read stack {stack_name}: {e}; is region {region} enabled for this account? Enable it, or remove it from the account's regions"
        )
    } else if e.is_access_denied() {
        format!("cannot read stack {stack_name}: {e}; the bootstrap role needs cloudformation:DescribeStacks")
    } else if e.is_throttling() {
        format!(
            "cannot read stack {stack_name}: {e} (still throttled after every retry); run again, or lower --concurrency"
        )
    } else {
        format!("cannot read stack {stack_name}: {e}")
    };
    account_error(target, Some(region), message)
}

pub fn account_error(target: &Target, region: Option<&str>, message: String) -> AccountError {
    AccountError {
        account_id: target.account_id.clone(),
        account_name: target.account_name.clone(),
        region: region.map(str::to_owned),
        message,
    }
}
