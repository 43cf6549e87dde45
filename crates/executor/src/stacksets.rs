//! `deploy.via: stacksets`: the fan-out runs inside AWS. rolecall observes
//! the stack set and its instances, lets the planner decide, starts only
//! the operations that are needed (none for an unchanged inventory), waits
//! for each, turns the per-account/region results into outcomes, and then
//! reads every instance's outputs through the bootstrap role (AWS has no
//! API for instance outputs in the administrator account).

use std::collections::BTreeMap;
use std::time::Duration;

use model::{
    AccountId, Action, Desired, Event, EventSink, InstanceInfo, Observed, Outcome, PermissionModel, Plan, StackSetSpec,
    Status, Target,
};
use tokio::time::Instant;

use crate::cloud::{
    Cloud, CloudError, ErrorKind, InstanceStacks, InstanceTargets, InstancesOp, OperationPrefs, StackRequest,
    StackSetRequest, StackSets,
};
use crate::fanout::{Done, Reach, fan_out};
use crate::settings::Settings;
use crate::stacks::ApplyOptions;

/// One role's stack set in a run (a catalog has one stack set per role):
/// what every call on it shares.
#[derive(Clone, Debug)]
pub struct StackSetRun<'a> {
    /// `deploy.stackset`, named for this role's stack set.
    pub spec: StackSetSpec,
    pub desired: &'a Desired,
    pub options: &'a ApplyOptions,
    /// deploy.concurrency and deploy.failure_tolerance, as AWS takes them.
    pub prefs: OperationPrefs,
    /// The OUs of a service-managed stack set, and its account filter.
    pub ous: Vec<String>,
    pub account_filter: Option<(&'static str, Vec<String>)>,
    /// The role left the catalog (a stand-in from the registry): its stack
    /// set and instances are orphans.
    pub left: bool,
}

impl StackSetRun<'_> {
    /// The targets' accounts that get this role, in its regions.
    fn targets(&self, targets: &[Target]) -> Vec<Target> {
        if self.left {
            return Vec::new();
        }
        targets.iter().filter_map(|t| t.for_role(&self.desired.role)).collect()
    }
}

/// A run that could not even look at the stack set.
#[derive(Debug, thiserror::Error)]
#[error("stack set {name}: {what} failed: {source}")]
pub struct StackSetError {
    pub name: String,
    pub what: &'static str,
    #[source]
    pub source: CloudError,
}

/// Observes every role's stack set and its instances, and decides.
pub async fn plan<C: StackSets>(
    cloud: &C,
    runs: &[StackSetRun<'_>],
    targets: &[Target],
) -> Result<Plan, StackSetError> {
    let plans = futures::future::try_join_all(runs.iter().map(|run| plan_one(cloud, run, targets))).await?;
    Ok(merge(plans.into_iter().map(|(plan, _)| plan)))
}

fn merge(plans: impl Iterator<Item = Plan>) -> Plan {
    let mut all = Plan::default();
    for plan in plans {
        all.entries.extend(plan.entries);
        all.errors.extend(plan.errors);
        all.stack_sets.extend(plan.stack_sets);
    }
    all.sort();
    all
}

/// One role's stack set, against the targets that get the role.
async fn plan_one<C: StackSets>(
    cloud: &C,
    run: &StackSetRun<'_>,
    targets: &[Target],
) -> Result<(Plan, Vec<InstanceInfo>), StackSetError> {
    let targets = &run.targets(targets)[..];
    let name = &run.spec.name;
    let err = |what| {
        move |source| StackSetError {
            name: name.clone(),
            what,
            source,
        }
    };
    let set = cloud
        .describe_stack_set(name, run.spec.delegated_admin)
        .await
        .map_err(err("DescribeStackSet"))?;
    let instances = match &set {
        Some(_) => cloud
            .list_stack_instances(name, run.spec.delegated_admin)
            .await
            .map_err(err("ListStackInstances"))?,
        None => Vec::new(),
    };
    let mut plan = planner::stacksets::decide(run.desired, name, set.as_ref(), &instances, targets, run.left);
    let names: BTreeMap<&AccountId, &str> = targets
        .iter()
        .map(|t| (&t.account_id, t.account_name.as_str()))
        .collect();
    for e in &mut plan.entries {
        if let Some(name) = names.get(&e.account_id) {
            e.account_name = (*name).to_owned();
        }
    }
    Ok((plan, instances))
}

/// An instance of one stack set: (account, region).
type Key = (AccountId, String);

/// A stack of the run: (account, role, region).
type StackKey = (AccountId, String, String);

fn stack_key(account: &AccountId, role: &str, region: &str) -> StackKey {
    (account.clone(), role.to_owned(), region.to_owned())
}

/// Applies the inventory through every role's stack set: each set is
/// observed first (nothing is written unless every one could be), then the
/// sets' operations run side by side (AWS serializes them per set), then
/// every instance's outputs are read in one fan-out (one AssumeRole per
/// account). `prune` also deletes the instances of account/regions (and
/// the stack sets of roles) that left the inventory.
pub async fn apply<C: Cloud + StackSets>(
    cloud: &C,
    settings: &Settings,
    runs: &[StackSetRun<'_>],
    targets: &[Target],
    prune: bool,
    events: &dyn EventSink,
) -> Result<Vec<Outcome>, StackSetError>
where
    C::Session: InstanceStacks,
{
    let begun = futures::future::try_join_all(runs.iter().map(|run| begin(cloud, settings, run, targets))).await?;
    let outcomes = futures::future::join_all(begun.into_iter().map(|begun| operate(begun, prune, events))).await;
    let mut outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
    gather_outputs(cloud, settings, runs, &mut outcomes, events).await;
    Ok(outcomes)
}

/// One role's stack set: the operations its plan needs, one at a time.
async fn operate<C: StackSets>(begun: Begun<'_, C>, prune: bool, events: &dyn EventSink) -> Vec<Outcome> {
    let Begun {
        ops,
        plan,
        instances,
        names,
    } = begun;
    let (cloud, run) = (ops.cloud, ops.run);
    let name = &run.spec.name;
    for entry in &plan.entries {
        crate::records::planned(events, entry.clone());
    }
    let Some(set) = plan.stack_sets.first() else {
        return Vec::new();
    };
    let mut outcomes: BTreeMap<Key, Outcome> = BTreeMap::new();
    let mut pending: BTreeMap<Action, Vec<Key>> = BTreeMap::new();
    for e in &plan.entries {
        let key = (e.account_id.clone(), e.region.clone());
        let (status, error) = match e.action {
            Action::NoOp => (Status::Unchanged, None),
            Action::Blocked => (Status::Blocked, Some(e.reason.clone())),
            Action::Orphaned if prune => (
                Status::NotAttempted,
                Some("not reached: an earlier stack-set operation failed".to_owned()),
            ),
            Action::Orphaned => (Status::Orphaned, None),
            _ => (
                Status::NotAttempted,
                Some("not reached: an earlier stack-set operation failed".to_owned()),
            ),
        };
        let mut o = outcome(
            &e.account_id,
            &names,
            run.desired,
            &e.region,
            Some(e.action),
            status,
            error,
        );
        o.stack_id.clone_from(&e.stack_id);
        outcomes.insert(key.clone(), o);
        if e.action.changes() || e.action == Action::Wait || (prune && e.action == Action::Orphaned) {
            pending.entry(e.action).or_default().push(key);
        }
    }
    let stack = StackRequest {
        stack_name: name.clone(),
        template_body: run.desired.template_body.clone(),
        parameters: run.desired.parameters.clone(),
        tags: run.desired.stack_tags(),
        auto_expand: run.desired.auto_expand,
        revert_drift: false,
    };
    let request = StackSetRequest {
        stack,
        spec: run.spec.clone(),
    };
    let result = async {
        match set.action {
            Action::Blocked => return Ok(()),
            Action::Create => {
                cloud.create_stack_set(&request).await.map_err(|source| StackSetError {
                    name: name.clone(),
                    what: "CreateStackSet",
                    source,
                })?;
            }
            Action::Update => {
                // The set and the instances that exist change in one
                // operation (the first group); other groups follow.
                let keys = pending.remove(&Action::Update).unwrap_or_default();
                let mut groups = ops.groups(&keys).into_iter();
                let first = groups.next().unwrap_or_else(|| ops.targets(Vec::new(), Vec::new()));
                let id = ops
                    .start("UpdateStackSet", |id| {
                        let (request, first) = (&request, &first);
                        async move { cloud.update_stack_set(request, first, run.prefs, &id).await }
                    })
                    .await?;
                ops.finish(&id, &keys, Status::Updated, &mut outcomes).await?;
                for group in groups {
                    let id = ops
                        .start("UpdateStackInstances", |id| {
                            let group = &group;
                            async move {
                                cloud
                                    .instances(
                                        InstancesOp::Update,
                                        name,
                                        run.spec.delegated_admin,
                                        group,
                                        run.prefs,
                                        &id,
                                    )
                                    .await
                            }
                        })
                        .await?;
                    ops.finish(&id, &keys, Status::Updated, &mut outcomes).await?;
                }
            }
            _ => {}
        }
        let deleting = pending.get(&Action::Orphaned).map_or(0, Vec::len);
        for (action, op, status) in [
            (Action::Create, InstancesOp::Create, Status::Created),
            (Action::Update, InstancesOp::Update, Status::Updated),
            (Action::Wait, InstancesOp::Update, Status::Updated),
            (
                Action::Orphaned,
                InstancesOp::Delete { retain_stacks: false },
                Status::Deleted,
            ),
        ] {
            let keys = pending.remove(&action).unwrap_or_default();
            for group in ops.groups(&keys) {
                let what = match op {
                    InstancesOp::Create => "CreateStackInstances",
                    InstancesOp::Update => "UpdateStackInstances",
                    InstancesOp::Delete { .. } => "DeleteStackInstances",
                };
                let id = ops
                    .start(what, |id| {
                        let group = &group;
                        async move {
                            cloud
                                .instances(op, name, run.spec.delegated_admin, group, run.prefs, &id)
                                .await
                        }
                    })
                    .await?;
                ops.finish(&id, &keys, status, &mut outcomes).await?;
            }
        }
        // A role that left the catalog: its stack set goes with its last
        // instance.
        let emptied = outcomes.values().filter(|o| o.status == Status::Deleted).count() == deleting;
        if set.action == Action::Orphaned && prune && deleting == instances && emptied {
            ops.delete_set().await?;
        }
        Ok::<(), StackSetError>(())
    }
    .await;
    fail_the_rest(&result, &mut outcomes);
    outcomes.into_values().collect()
}

/// After a failed operation, what was not reached failed with it.
fn fail_the_rest(result: &Result<(), StackSetError>, outcomes: &mut BTreeMap<Key, Outcome>) {
    if let Err(e) = result {
        for o in outcomes.values_mut() {
            if o.status == Status::NotAttempted {
                o.status = Status::Failed;
                o.error = Some(e.to_string());
            }
        }
    }
}

/// Deletes the instances of every role's stack set (only the orphaned ones
/// with `orphans_only`), and each stack set once it has none left. Only
/// rolecall's stack sets are touched.
pub async fn destroy<C: StackSets>(
    cloud: &C,
    settings: &Settings,
    runs: &[StackSetRun<'_>],
    targets: &[Target],
    orphans_only: bool,
    events: &dyn EventSink,
) -> Result<Vec<Outcome>, StackSetError> {
    let begun = futures::future::try_join_all(runs.iter().map(|run| begin(cloud, settings, run, targets))).await?;
    events.event(Event::Started {
        accounts: targets.len(),
    });
    let outcomes = futures::future::join_all(begun.into_iter().map(|begun| destroy_one(begun, orphans_only))).await;
    let outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
    for o in &outcomes {
        events.event(Event::Finished { outcome: o.clone() });
    }
    Ok(outcomes)
}

async fn destroy_one<C: StackSets>(begun: Begun<'_, C>, orphans_only: bool) -> Vec<Outcome> {
    let Begun {
        ops,
        plan,
        instances,
        names,
    } = begun;
    let (cloud, run) = (ops.cloud, ops.run);
    let name = &run.spec.name;
    let Some(set) = plan.stack_sets.first() else {
        return Vec::new();
    };
    if set.action == Action::Blocked {
        return plan
            .entries
            .iter()
            .map(|e| {
                outcome(
                    &e.account_id,
                    &names,
                    run.desired,
                    &e.region,
                    Some(Action::Blocked),
                    Status::Blocked,
                    Some(set.reason.clone()),
                )
            })
            .collect();
    }
    let doomed: Vec<Key> = plan
        .entries
        .iter()
        .filter(|e| e.stack_status.is_some() && (e.action == Action::Orphaned) == orphans_only)
        .map(|e| (e.account_id.clone(), e.region.clone()))
        .collect();
    let mut outcomes: BTreeMap<Key, Outcome> = plan
        .entries
        .iter()
        .filter(|e| (e.action == Action::Orphaned) == orphans_only)
        .map(|e| {
            let gone = e.stack_status.is_none();
            let (status, error) = if gone {
                (Status::Unchanged, None)
            } else {
                (
                    Status::NotAttempted,
                    Some("not reached: an earlier stack-set operation failed".to_owned()),
                )
            };
            (
                (e.account_id.clone(), e.region.clone()),
                outcome(
                    &e.account_id,
                    &names,
                    run.desired,
                    &e.region,
                    Some(Action::Delete),
                    status,
                    error,
                ),
            )
        })
        .collect();
    let result = async {
        for group in ops.groups(&doomed) {
            let id = ops
                .start("DeleteStackInstances", |id| {
                    let group = &group;
                    async move {
                        let op = InstancesOp::Delete { retain_stacks: false };
                        cloud
                            .instances(op, name, run.spec.delegated_admin, group, run.prefs, &id)
                            .await
                    }
                })
                .await?;
            ops.finish(&id, &doomed, Status::Deleted, &mut outcomes).await?;
        }
        if instances == doomed.len() && set.action != Action::Create {
            ops.delete_set().await?;
        }
        Ok::<(), StackSetError>(())
    }
    .await;
    fail_the_rest(&result, &mut outcomes);
    outcomes.into_values().collect()
}

/// One role's stack set, observed and ready to act on.
struct Begun<'a, C> {
    ops: Operations<'a, C>,
    plan: Plan,
    /// How many instances the set has.
    instances: usize,
    /// The targets' names, by account.
    names: BTreeMap<AccountId, String>,
}

/// Where apply and destroy start for one role's stack set: no operation
/// running on it (one is waited for), the plan, and the targets' names.
async fn begin<'a, C: StackSets>(
    cloud: &'a C,
    settings: &'a Settings,
    run: &'a StackSetRun<'a>,
    targets: &[Target],
) -> Result<Begun<'a, C>, StackSetError> {
    let ops = Operations {
        cloud,
        run,
        session: &settings.session_name,
        interrupt: &settings.interrupt,
        counter: std::sync::atomic::AtomicUsize::new(0),
    };
    ops.wait_running().await?;
    let (plan, instances) = plan_one(cloud, run, targets).await?;
    let names = targets
        .iter()
        .map(|t| (t.account_id.clone(), t.account_name.clone()))
        .collect();
    Ok(Begun {
        ops,
        plan,
        instances: instances.len(),
        names,
    })
}

fn outcome(
    account: &AccountId,
    names: &BTreeMap<AccountId, String>,
    desired: &Desired,
    region: &str,
    action: Option<Action>,
    status: Status,
    error: Option<String>,
) -> Outcome {
    Outcome {
        account_id: account.clone(),
        account_name: names.get(account).cloned().unwrap_or_else(|| account.to_string()),
        role: desired.role.clone(),
        role_name: planner::names::role_name_in(&desired.role_name, region),
        stack_name: desired.stack_name.clone(),
        region: region.to_owned(),
        action,
        status,
        stack_id: None,
        outputs: BTreeMap::new(),
        role_arn: None,
        fingerprint: None,
        changes: Vec::new(),
        error,
    }
}

/// Starting, waiting for and reading stack-set operations, one at a time.
struct Operations<'a, C> {
    cloud: &'a C,
    run: &'a StackSetRun<'a>,
    session: &'a str,
    interrupt: &'a crate::interrupt::Interrupt,
    counter: std::sync::atomic::AtomicUsize,
}

impl<C: StackSets> Operations<'_, C> {
    fn targets(&self, accounts: Vec<String>, regions: Vec<String>) -> InstanceTargets {
        if self.run.spec.permission_model == PermissionModel::ServiceManaged {
            InstanceTargets {
                accounts: Vec::new(),
                ous: self.run.ous.clone(),
                account_filter: self.run.account_filter.clone(),
                regions,
            }
        } else {
            InstanceTargets {
                accounts,
                ous: Vec::new(),
                account_filter: None,
                regions,
            }
        }
    }

    /// One operation per set of accounts that share the same regions (an
    /// operation is accounts × regions). Service-managed: one operation on
    /// the OUs for every region concerned.
    fn groups(&self, keys: &[Key]) -> Vec<InstanceTargets> {
        if keys.is_empty() {
            return Vec::new();
        }
        let mut by_account: BTreeMap<&AccountId, Vec<String>> = BTreeMap::new();
        for (account, region) in keys {
            by_account.entry(account).or_default().push(region.clone());
        }
        if self.run.spec.permission_model == PermissionModel::ServiceManaged {
            let mut regions: Vec<String> = by_account.values().flatten().cloned().collect();
            regions.sort();
            regions.dedup();
            return vec![self.targets(Vec::new(), regions)];
        }
        let mut by_regions: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for (account, mut regions) in by_account {
            regions.sort();
            by_regions.entry(regions).or_default().push(account.to_string());
        }
        by_regions
            .into_iter()
            .map(|(regions, accounts)| self.targets(accounts, regions))
            .collect()
    }

    async fn delete_set(&self) -> Result<(), StackSetError> {
        let spec = &self.run.spec;
        self.cloud
            .delete_stack_set(&spec.name, spec.delegated_admin)
            .await
            .map_err(|source| StackSetError {
                name: spec.name.clone(),
                what: "DeleteStackSet",
                source,
            })
    }

    /// A fresh operation id: makes a retried call idempotent.
    fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut id: String = format!("{}-{n}", self.session)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
            .collect();
        id.truncate(128);
        id
    }

    /// Starts an operation; another one running on the stack set is waited
    /// for, never a failure.
    async fn start<F, Fut>(&self, what: &'static str, call: F) -> Result<String, StackSetError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<String, CloudError>>,
    {
        if self.interrupt.is_set() {
            return Err(StackSetError {
                name: self.run.spec.name.clone(),
                what,
                source: CloudError::transport("not started: the run was interrupted".to_owned()),
            });
        }
        let id = self.next_id();
        let deadline = Instant::now() + self.run.options.max_wait;
        loop {
            match call(id.clone()).await {
                Ok(id) => return Ok(id),
                Err(e) if e.kind == ErrorKind::OperationInProgress && Instant::now() < deadline => {
                    self.wait_running().await?;
                }
                Err(source) => {
                    return Err(StackSetError {
                        name: self.run.spec.name.clone(),
                        what,
                        source,
                    });
                }
            }
        }
    }

    /// Waits for every operation not finished on the stack set.
    async fn wait_running(&self) -> Result<(), StackSetError> {
        let spec = &self.run.spec;
        let running = match self.cloud.running_operations(&spec.name, spec.delegated_admin).await {
            Ok(ids) => ids,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(StackSetError {
                    name: spec.name.clone(),
                    what: "ListStackSetOperations",
                    source,
                });
            }
        };
        for id in running {
            self.wait(&id).await?;
        }
        Ok(())
    }

    /// Polls DescribeStackSetOperation with backoff until it ends or
    /// `--max-wait` passes.
    async fn wait(&self, id: &str) -> Result<crate::cloud::OperationInfo, StackSetError> {
        let spec = &self.run.spec;
        let options = self.run.options;
        let deadline = Instant::now() + options.max_wait;
        let mut delay = options.poll_interval;
        loop {
            let info = self
                .cloud
                .describe_operation(&spec.name, spec.delegated_admin, id)
                .await
                .map_err(|source| StackSetError {
                    name: spec.name.clone(),
                    what: "DescribeStackSetOperation",
                    source,
                })?;
            if !planner::status::operation_running(&info.status) {
                return Ok(info);
            }
            let stop = |why: String| StackSetError {
                name: spec.name.clone(),
                what: "waiting for the operation",
                source: CloudError::transport(why),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(stop(format!(
                    "operation {id} still {} after {}s; CloudFormation goes on with it: run apply again to pick it up, or raise --max-wait",
                    info.status,
                    options.max_wait.as_secs()
                )));
            }
            if self.interrupt.sleep(delay.min(deadline - now)).await {
                return Err(stop(format!(
                    "interrupted while operation {id} was {}; {}",
                    info.status,
                    crate::interrupt::GOES_ON
                )));
            }
            delay = (delay * 2).min(Duration::from_secs(30).max(options.poll_interval));
        }
    }

    /// Waits for operation `id` and records each account/region's result
    /// (paginated) for the `keys` it covered.
    async fn finish(
        &self,
        id: &str,
        keys: &[Key],
        success: Status,
        outcomes: &mut BTreeMap<Key, Outcome>,
    ) -> Result<(), StackSetError> {
        let spec = &self.run.spec;
        let info = self.wait(id).await?;
        let mut next = None;
        let mut seen = 0;
        loop {
            let (results, token) = self
                .cloud
                .operation_results(&spec.name, spec.delegated_admin, id, next)
                .await
                .map_err(|source| StackSetError {
                    name: spec.name.clone(),
                    what: "ListStackSetOperationResults",
                    source,
                })?;
            for r in results {
                let Some(account) = AccountId::parse(&r.account) else {
                    continue;
                };
                let key = (account, r.region.clone());
                let Some(o) = outcomes.get_mut(&key) else { continue };
                seen += 1;
                let reason = r.reason.clone().unwrap_or_default();
                (o.status, o.error) = match r.status.as_str() {
                    "SUCCEEDED" => (success, None),
                    "CANCELLED" => (
                        Status::NotAttempted,
                        Some(format!(
                            "cancelled by CloudFormation (failure tolerance reached){}",
                            colon(&reason)
                        )),
                    ),
                    other => (
                        Status::Failed,
                        Some(format!(
                            "stack instance in account {} region {}: {other}{}",
                            r.account,
                            r.region,
                            colon(&reason)
                        )),
                    ),
                };
            }
            match token {
                Some(t) => next = Some(t),
                None => break,
            }
        }
        // Results name every instance on AWS; where they do not, the
        // operation's own status stands for the keys it covered.
        if seen == 0 {
            for key in keys {
                if let Some(o) = outcomes.get_mut(key)
                    && o.status == Status::NotAttempted
                {
                    (o.status, o.error) = if info.status == "SUCCEEDED" {
                        (success, None)
                    } else {
                        (
                            Status::Failed,
                            Some(format!(
                                "operation {id} {}{}",
                                info.status,
                                colon(info.reason.as_deref().unwrap_or_default())
                            )),
                        )
                    };
                }
            }
        }
        Ok(())
    }
}

fn colon(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// Reads each instance's outputs in its account, concurrently, through the
/// bootstrap role. An instance whose outputs cannot be read keeps its
/// status and gets no ARN, with the reason: never an invented one.
async fn gather_outputs<C: Cloud>(
    cloud: &C,
    settings: &Settings,
    runs: &[StackSetRun<'_>],
    outcomes: &mut [Outcome],
    events: &dyn EventSink,
) where
    C::Session: InstanceStacks,
{
    let mut targets: BTreeMap<AccountId, Target> = BTreeMap::new();
    for o in outcomes
        .iter()
        .filter(|o| o.status.succeeded() && o.status != Status::Orphaned && o.status != Status::Deleted)
    {
        targets
            .entry(o.account_id.clone())
            .or_insert_with(|| Target::known(&o.account_id, &o.account_name))
            .add_stack(&o.role, &o.region);
    }
    let targets: Vec<Target> = targets.into_values().collect();
    let ids: BTreeMap<StackKey, Option<String>> = outcomes
        .iter()
        .map(|o| (stack_key(&o.account_id, &o.role, &o.region), o.stack_id.clone()))
        .collect();
    let run_of = |role: &str| runs.iter().find(|r| r.desired.role == role);
    let (ids, run_of) = (&ids, &run_of);
    let read: Vec<Vec<(StackKey, Result<Observed, String>)>> = fan_out(
        cloud,
        settings,
        &targets,
        events,
        None,
        |target, reach, _slot| async move {
            let keys = target
                .stacks()
                .map(|(role, region)| stack_key(&target.account_id, role, region));
            let result = match reach {
                Reach::Session(session) => {
                    futures::future::join_all(keys.map(|key| {
                        let id = ids.get(&key).cloned().flatten();
                        let session = &session;
                        async move {
                            let Some(run) = run_of(&key.1) else {
                                return (key, Err("no stack set of this role in the run".to_owned()));
                            };
                            let found = session
                                .find_instance_stack(&key.2, &run.spec.name, id.as_deref())
                                .await
                                .map_err(|e| format!("cannot read the instance's stack: {e}"));
                            (key, found)
                        }
                    }))
                    .await
                }
                Reach::Unreachable(e) => keys.map(|k| (k, Err(e.message.clone()))).collect(),
                Reach::Skipped(why) => keys.map(|k| (k, Err(why.clone()))).collect(),
            };
            Done { failed: false, result }
        },
    )
    .await;
    let read: BTreeMap<StackKey, Result<Observed, String>> = read.into_iter().flatten().collect();
    for o in outcomes.iter_mut() {
        let (Some(found), Some(run)) = (read.get(&stack_key(&o.account_id, &o.role, &o.region)), run_of(&o.role))
        else {
            continue;
        };
        match found {
            Ok(Observed::Present(stack)) => {
                o.stack_id = Some(stack.stack_id.clone()).filter(|s| !s.is_empty());
                o.outputs = stack.outputs.clone();
                o.role_arn = stack.outputs.get(&run.desired.output_key).cloned();
                o.fingerprint = Some(run.desired.fingerprint.clone());
                if o.role_arn.is_none() {
                    o.error = Some(format!(
                        "the instance's stack has no output {}; no role ARN recorded",
                        run.desired.output_key
                    ));
                }
            }
            Ok(Observed::Absent) => {
                o.error = Some("the instance's stack was not found in the account; no role ARN recorded".to_owned());
            }
            Err(why) => o.error = Some(format!("outputs not read ({why}); no role ARN recorded")),
        }
    }
    for o in outcomes.iter() {
        events.event(Event::Finished { outcome: o.clone() });
    }
}
