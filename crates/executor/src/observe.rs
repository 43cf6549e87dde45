//! The plan pipeline: per account, assume the bootstrap role once, read the
//! stack in every region, and let the planner decide. Accounts run
//! concurrently up to a bound; one account's failure never stops another.

use std::collections::BTreeMap;

use model::{AccountError, AccountId, Decision, Desired, Event, EventSink, Observed, Plan, PlanEntry, Target};

use crate::cloud::{Cloud, CloudError, ErrorKind, Stacks};
use crate::fanout::{Done, Reach, fan_out};
use crate::records::{account_error, entry};
use crate::settings::Settings;

/// One stack of an account: (account, role key, region).
pub type StackKey = (AccountId, String, String);

/// What was observed, by account, role and region: `apply` after a
/// confirmed plan acts on exactly this.
pub type ObservedMap = BTreeMap<StackKey, Observed>;

/// A decision for one observed stack of a role; `None` leaves it out of
/// the plan.
pub type Decide<'a> = &'a (dyn Fn(&Desired, &Observed) -> Option<Decision> + Sync);

/// Observes every target and decides; returns the plan sorted by account
/// and region.
pub async fn plan<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    catalog: &[Desired],
    targets: &[Target],
    events: &dyn EventSink,
) -> Plan
where
    C::Session: Stacks,
{
    let decide = |d: &Desired, o: &Observed| Some(planner::decide(d, o));
    observe(cloud, settings, catalog, targets, events, &decide).await.0
}

/// The observe pipeline with any decision: the plan (sorted), and every
/// stack as it was read.
pub async fn observe<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    catalog: &[Desired],
    targets: &[Target],
    events: &dyn EventSink,
    decide: Decide<'_>,
) -> (Plan, ObservedMap)
where
    C::Session: Stacks,
{
    type AccountResult = (Vec<PlanEntry>, Vec<AccountError>, Vec<(StackKey, Observed)>);
    let results: Vec<AccountResult> = fan_out(
        cloud,
        settings,
        targets,
        events,
        None,
        |target, reach, _slot| async move {
            let result = match reach {
                Reach::Session(session) => {
                    let result = observe_account(&session, catalog, target, events, decide).await;
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
        },
    )
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

/// DescribeStacks, and GetTemplate where the tags alone prove nothing: a
/// stack of rolecall's whose last update rolled back. A template that
/// cannot be read stays `None`, and the planner plans an update.
pub(crate) async fn read_stack<S: Stacks>(session: &S, region: &str, stack_name: &str) -> Result<Observed, CloudError> {
    let mut observed = session.describe_stack(region, stack_name).await?;
    if let Observed::Present(stack) = &mut observed
        && planner::status::rolled_back(&stack.status)
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

/// Reads every stack of one account (all at once) and decides each.
async fn observe_account<S: Stacks>(
    session: &S,
    catalog: &[Desired],
    target: &Target,
    events: &dyn EventSink,
    decide: Decide<'_>,
) -> (Vec<PlanEntry>, Vec<AccountError>, Vec<(StackKey, Observed)>) {
    let observed = futures::future::join_all(crate::records::stacks(target, catalog).map(
        |(desired, region)| async move { (desired, region, read_stack(session, region, &desired.stack_name).await) },
    ))
    .await;
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for (desired, region, result) in observed {
        match result {
            Ok(observed) => {
                if let Some(decision) = decide(desired, &observed) {
                    let entry = entry(target, &desired.role, region, decision, &observed);
                    crate::records::planned(events, entry.clone());
                    entries.push(entry);
                }
                seen.push((
                    (target.account_id.clone(), desired.role.clone(), region.to_owned()),
                    observed,
                ));
            }
            Err(e) => errors.push(region_error(target, region, &desired.stack_name, &e)),
        }
    }
    (entries, errors, seen)
}

fn region_error(target: &Target, region: &str, stack_name: &str, e: &CloudError) -> AccountError {
    let message = match e.kind {
        ErrorKind::ExpiredCredentials => format!(
            "cannot read stack {stack_name}: {e}; the credentials expired: renew the caller's own (e.g. `aws sso login`) and run again"
        ),
        ErrorKind::RegionNotEnabled => format!(
            "cannot read stack {stack_name}: {e}; is region {region} enabled for this account? Enable it, or remove it from the account's regions"
        ),
        ErrorKind::AccessDenied => {
            format!("cannot read stack {stack_name}: {e}; the bootstrap role needs cloudformation:DescribeStacks")
        }
        ErrorKind::Throttled => format!(
            "cannot read stack {stack_name}: {e} (still throttled after every retry); run again, or lower --concurrency"
        ),
        _ => format!("cannot read stack {stack_name}: {e}"),
    };
    account_error(target, Some(region), message)
}
