//! The plan pipeline: per account, assume the bootstrap role once, read the
//! stack in every region, and let the planner decide. Accounts run
//! concurrently up to a bound; one account's failure never stops another.

use futures::stream::{self, StreamExt};
use model::{AccountError, Desired, Event, EventSink, Plan, PlanEntry, Target};

use crate::cloud::{AccountSession, Cloud, CloudError};

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
}

impl Settings {
    pub fn bootstrap_role_arn(&self, account: &model::AccountId) -> String {
        self.partition.role_arn(account.as_str(), &self.bootstrap_role)
    }
}

/// Observes every target and decides; returns the plan sorted by account
/// and region.
pub async fn plan<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    desired: &Desired,
    targets: &[Target],
    events: &dyn EventSink,
) -> Plan {
    events.event(Event::Started {
        accounts: targets.len(),
    });
    let results: Vec<(Vec<PlanEntry>, Vec<AccountError>)> = stream::iter(targets)
        .map(|target| async move {
            events.event(Event::AccountStarted {
                account_id: target.account_id.clone(),
            });
            let result = match assume(cloud, settings, target).await {
                Ok(session) => observe_account(&session, desired, target, events).await,
                Err(error) => (Vec::new(), vec![error]),
            };
            for error in &result.1 {
                events.event(Event::AccountFailed { error: error.clone() });
            }
            events.event(Event::AccountFinished {
                account_id: target.account_id.clone(),
            });
            result
        })
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    let mut plan = Plan::default();
    for (entries, errors) in results {
        plan.entries.extend(entries);
        plan.errors.extend(errors);
    }
    plan.sort();
    plan
}

/// AssumeRole into the target's bootstrap role; a failure is that account's
/// error, with what to do about it.
pub async fn assume<C: Cloud>(cloud: &C, settings: &Settings, target: &Target) -> Result<C::Session, AccountError> {
    let arn = settings.bootstrap_role_arn(&target.account_id);
    cloud
        .assume_role(&target.account_id, &arn, &settings.session_name, settings.bootstrap_external_id.as_deref())
        .await
        .map_err(|e| {
            let help = if e.is_access_denied() {
                "the bootstrap role is missing or does not trust the caller (invited accounts have no OrganizationAccountAccessRole): create it once with the template from `rolecall bootstrap-template`, or set deploy.bootstrap_role"
            } else {
                "check the network, the endpoint and the caller's credentials"
            };
            account_error(target, None, format!("cannot assume {arn}: {e}; {help}"))
        })
}

/// Reads the stack in each region of one account (regions concurrently).
pub async fn observe_account<S: AccountSession>(
    session: &S,
    desired: &Desired,
    target: &Target,
    events: &dyn EventSink,
) -> (Vec<PlanEntry>, Vec<AccountError>) {
    let observed = futures::future::join_all(
        target
            .regions
            .iter()
            .map(|region| async move { (region, session.describe_stack(region, &desired.stack_name).await) }),
    )
    .await;
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (region, result) in observed {
        match result {
            Ok(observed) => {
                let entry = plan_entry(target, region, desired, &observed);
                events.event(Event::Planned { entry: entry.clone() });
                entries.push(entry);
            }
            Err(e) => errors.push(region_error(target, region, &desired.stack_name, &e)),
        }
    }
    (entries, errors)
}

pub fn plan_entry(target: &Target, region: &str, desired: &Desired, observed: &model::Observed) -> PlanEntry {
    let decision = planner::decide(desired, observed);
    let stack = match observed {
        model::Observed::Present(s) => Some(s),
        model::Observed::Absent => None,
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
    let message = if e.is_region_not_enabled() {
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
