//! Orchestration against a fake cloud: what moto cannot show (denied
//! AssumeRole, disabled regions) and what it cannot measure (calls per
//! account, the concurrency bound).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::{AccountId, Action, Desired, Event, EventSink, Observed, OrgDiscovery, StackInfo, Target, TargetSource};

use crate::cloud::{
    ChangeSetInfo, ChangeSetSummary, ChangeSets, Cloud, CloudError, InstanceStacks, OrgAccount, Organization, Roles,
    StackDrift, StackRequest, Stacks,
};
use crate::{ApplyOptions, Settings, apply, discover, plan};

/// How the fake CloudFormation behaves in one account/region.
#[derive(Clone, Debug)]
struct Script {
    /// DescribeStacks calls that still show *_IN_PROGRESS after an operation.
    polls: usize,
    /// Where a create ends.
    create_result: &'static str,
    /// Where an executed change set ends.
    update_result: &'static str,
    /// Where a delete ends ("gone" or DELETE_FAILED).
    delete_result: &'static str,
    /// What DescribeChangeSet says once created.
    change_set: ChangeSetInfo,
    /// What CreateChangeSet answers instead, if anything.
    create_change_set_error: Option<CloudError>,
    reasons: Vec<String>,
    /// Leave the RoleArn output out.
    no_output: bool,
    /// ExecuteChangeSet leaves the stack's tags as they were (as moto does).
    change_set_drops_tags: bool,
    /// What UpdateStack answers instead, if anything.
    update_stack_error: Option<CloudError>,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            polls: 2,
            create_result: "CREATE_COMPLETE",
            update_result: "UPDATE_COMPLETE",
            delete_result: "gone",
            change_set: ChangeSetInfo {
                status: "CREATE_COMPLETE".into(),
                status_reason: None,
                changes: vec![model::ResourceChange {
                    action: "Modify".into(),
                    logical_id: "Role".into(),
                    resource_type: "AWS::IAM::Role".into(),
                    replacement: Some("False".into()),
                }],
            },
            create_change_set_error: None,
            reasons: vec!["Role: Resource handler returned message: \"Access denied\"".into()],
            no_output: false,
            change_set_drops_tags: false,
            update_stack_error: None,
        }
    }
}

/// A stack in the fake, with where it goes after its polls.
#[derive(Clone, Debug)]
struct FakeStack {
    info: StackInfo,
    polls_left: usize,
    /// Status after the polls; "gone" removes the stack.
    then: String,
    /// Tags to take on when `then` is reached (an update that completes).
    then_tags: Option<BTreeMap<String, String>>,
}

/// DetectStackDrift in the fake.
#[derive(Clone, Debug)]
enum Detection {
    Answer(Result<crate::cloud::CfnDrift, CloudError>),
    Hangs,
}

/// (account, region, change set name).
type SetKey = (String, String, String);

#[derive(Default)]
struct State {
    /// The partition every assumed role ARN must be in (default `aws`).
    partition: Option<&'static str>,
    /// Accounts whose bootstrap role cannot be assumed.
    denied: Vec<String>,
    /// (account, region) → a failure of DescribeStacks.
    region_errors: BTreeMap<(String, String), CloudError>,
    /// (account, region) → the stack there.
    stacks: Mutex<BTreeMap<(String, String), FakeStack>>,
    scripts: BTreeMap<(String, String), Script>,
    /// Change sets by (account, region, name).
    change_sets: Mutex<BTreeMap<SetKey, ChangeSetInfo>>,
    /// GetTemplate's answer by (account, region); none: an error.
    templates: BTreeMap<(String, String), String>,
    /// Their description (owner) and creation time, where known.
    change_set_owners: Mutex<BTreeMap<SetKey, (Option<String>, std::time::SystemTime)>>,
    /// Every call: (account, region, operation).
    calls: Mutex<Vec<(String, String, &'static str)>>,
    /// parent → (child OUs, accounts).
    tree: BTreeMap<String, (Vec<String>, Vec<OrgAccount>)>,
    tags: BTreeMap<String, Vec<(String, String)>>,
    assume_calls: Mutex<Vec<String>>,
    describe_calls: AtomicUsize,
    tag_calls: AtomicUsize,
    list_accounts_calls: AtomicUsize,
    describe_account_calls: AtomicUsize,
    /// What every Organizations call of account names answers instead.
    org_error: Option<CloudError>,
    /// The stack set side (see `stacksets` tests).
    set: Mutex<SetState>,
    /// Every ClientRequestToken sent.
    tokens: Mutex<Vec<String>>,
    /// (account, role name) → the live role (see `drift` tests).
    roles: Mutex<BTreeMap<(String, String), model::LiveRole>>,
    /// Change sets made with DeploymentMode REVERT_DRIFT.
    reverting: Mutex<std::collections::BTreeSet<SetKey>>,
    /// What an executed REVERT_DRIFT change set makes of the account's
    /// roles (`None`: it changes nothing, as moto's).
    revert_to: Option<model::LiveRole>,
    /// (account, region) → how DetectStackDrift behaves there.
    detections: Mutex<BTreeMap<(String, String), Detection>>,
    detecting: AtomicUsize,
    /// Detections read at least once (the first read finds them in progress).
    detection_reads: Mutex<std::collections::BTreeSet<String>>,
    max_detecting: AtomicUsize,
    /// Accounts between AssumeRole and their last DescribeStacks.
    in_flight: AtomicUsize,
    /// DescribeStacks calls under way now, and the most at once.
    calls_now: AtomicUsize,
    max_calls: AtomicUsize,
    /// The most stacks in progress at once (after a CreateStack).
    max_in_progress: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl State {
    fn with_stack(self, account: usize, region: &str, status: &str, tags: BTreeMap<String, String>) -> State {
        let info = StackInfo {
            stack_id: format!(
                "arn:aws:cloudformation:{region}:{}:stack/rolecall-target-role/1",
                id(account)
            ),
            status: status.into(),
            tags,
            outputs: [(
                "RoleArn".to_owned(),
                format!("arn:aws:iam::{}:role/RolecallTarget", id(account)),
            )]
            .into(),
            ..StackInfo::default()
        };
        let stack = FakeStack {
            info,
            polls_left: 0,
            then: status.into(),
            then_tags: None,
        };
        self.stacks.lock().unwrap().insert((id(account), region.into()), stack);
        self
    }

    fn script(mut self, account: usize, region: &str, script: Script) -> State {
        self.scripts.insert((id(account), region.into()), script);
        self
    }

    fn calls(&self, account: usize, region: &str) -> Vec<&'static str> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 == id(account) && c.1 == region)
            .map(|c| c.2)
            .collect()
    }
}

#[derive(Clone, Default)]
struct Fake(Arc<State>);

struct FakeSession {
    state: Arc<State>,
    account: String,
    regions_left: AtomicUsize,
}

fn service(code: &str, message: &str) -> CloudError {
    CloudError::service(code, message)
}

impl Cloud for Fake {
    type Session = FakeSession;

    async fn assume_role(
        &self,
        account: &AccountId,
        role_arn: &str,
        session: &str,
        _: Option<&str>,
    ) -> Result<FakeSession, CloudError> {
        let s = &self.0;
        s.assume_calls.lock().unwrap().push(account.to_string());
        let partition = s.partition.unwrap_or("aws");
        assert_eq!(
            role_arn,
            format!("arn:{partition}:iam::{account}:role/OrganizationAccountAccessRole")
        );
        assert!(session.starts_with("rolecall-"), "{session}");
        tokio::time::sleep(Duration::from_millis(2)).await;
        if s.denied.contains(&account.to_string()) {
            return Err(service(
                "AccessDenied",
                "User is not authorized to perform: sts:AssumeRole",
            ));
        }
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Ok(FakeSession {
            state: s.clone(),
            account: account.to_string(),
            regions_left: AtomicUsize::new(2),
        })
    }
}

impl Organization for Fake {
    async fn list_child_ous(&self, parent: &str) -> Result<Vec<String>, CloudError> {
        Ok(self.0.tree.get(parent).map(|t| t.0.clone()).unwrap_or_default())
    }

    async fn list_accounts_for_parent(&self, parent: &str) -> Result<Vec<OrgAccount>, CloudError> {
        match self.0.tree.get(parent) {
            Some(t) => Ok(t.1.clone()),
            None => Err(service("ParentNotFoundException", &format!("{parent} not found"))),
        }
    }

    async fn list_account_tags(&self, account: &AccountId) -> Result<Vec<(String, String)>, CloudError> {
        self.0.tag_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.0.tags.get(account.as_str()).cloned().unwrap_or_default())
    }

    async fn list_organization_accounts(&self) -> Result<Vec<OrgAccount>, CloudError> {
        self.0.list_accounts_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = &self.0.org_error {
            return Err(e.clone());
        }
        Ok(self.0.tree.values().flat_map(|t| t.1.clone()).collect())
    }

    async fn describe_account(&self, account: &AccountId) -> Result<Option<OrgAccount>, CloudError> {
        self.0.describe_account_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = &self.0.org_error {
            return Err(e.clone());
        }
        Ok(self
            .0
            .tree
            .values()
            .flat_map(|t| t.1.clone())
            .find(|a| &a.id == account))
    }
}

impl FakeSession {
    fn call(&self, region: &str, op: &'static str) -> (String, String) {
        let key = (self.account.clone(), region.to_owned());
        self.state
            .calls
            .lock()
            .unwrap()
            .push((key.0.clone(), key.1.clone(), op));
        key
    }

    fn script(&self, key: &(String, String)) -> Script {
        self.state.scripts.get(key).cloned().unwrap_or_default()
    }

    /// Puts a stack into an in-progress status that ends in `then`.
    fn start(
        &self,
        key: (String, String),
        status: &str,
        then: &str,
        info: Option<StackInfo>,
        then_tags: Option<BTreeMap<String, String>>,
    ) {
        let script = self.script(&key);
        let mut stacks = self.state.stacks.lock().unwrap();
        let mut info = info
            .or_else(|| stacks.get(&key).map(|s| s.info.clone()))
            .unwrap_or_default();
        info.status = status.into();
        stacks.insert(
            key,
            FakeStack {
                info,
                polls_left: script.polls,
                then: then.into(),
                then_tags,
            },
        );
    }
}

impl FakeSession {
    /// Every write carries a ClientRequestToken naming the run, the
    /// operation, the account and the region, within CloudFormation's
    /// limits (1-128 of letters, digits and `-`).
    fn token(&self, key: &(String, String), operation: &str, token: &str) {
        assert!(
            token.len() <= 128 && !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "malformed ClientRequestToken {token:?}"
        );
        assert!(
            token.starts_with("rolecall-")
                && token.contains(operation)
                && token.contains(&key.0)
                && token.ends_with(&key.1),
            "the token names the run, {operation}, {} and {}: {token}",
            key.0,
            key.1
        );
        self.state.tokens.lock().unwrap().push(token.to_owned());
    }
}

impl Stacks for FakeSession {
    async fn describe_stack(&self, region: &str, _: &str) -> Result<Observed, CloudError> {
        let key = self.call(region, "DescribeStacks");
        let s = &self.state;
        s.describe_calls.fetch_add(1, Ordering::SeqCst);
        let now = s.calls_now.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_calls.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        s.calls_now.fetch_sub(1, Ordering::SeqCst);
        if self.regions_left.fetch_sub(1, Ordering::SeqCst) == 1 {
            s.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(e) = s.region_errors.get(&key) {
            return Err(e.clone());
        }
        let mut stacks = s.stacks.lock().unwrap();
        let Some(stack) = stacks.get_mut(&key) else {
            return Ok(Observed::Absent);
        };
        if stack.polls_left > 0 {
            stack.polls_left -= 1;
            return Ok(Observed::Present(stack.info.clone()));
        }
        if stack.then == "gone" {
            stacks.remove(&key);
            return Ok(Observed::Absent);
        }
        stack.info.status = stack.then.clone();
        if let Some(tags) = stack.then_tags.take() {
            stack.info.tags = tags;
        }
        Ok(Observed::Present(stack.info.clone()))
    }

    async fn create_stack(&self, region: &str, request: &StackRequest, token: &str) -> Result<String, CloudError> {
        let key = self.call(region, "CreateStack");
        self.token(&key, "create", token);
        if self.state.stacks.lock().unwrap().contains_key(&key) {
            return Err(service("AlreadyExistsException", "Stack already exists"));
        }
        let script = self.script(&key);
        let stack_id = format!(
            "arn:aws:cloudformation:{region}:{}:stack/{}/new",
            self.account, request.stack_name
        );
        let mut outputs = BTreeMap::new();
        if script.create_result == "CREATE_COMPLETE" && !script.no_output {
            outputs.insert(
                "RoleArn".to_owned(),
                format!("arn:aws:iam::{}:role/RolecallTarget", self.account),
            );
        }
        let info = StackInfo {
            stack_id: stack_id.clone(),
            tags: request.tags.clone(),
            outputs,
            ..StackInfo::default()
        };
        self.start(key, "CREATE_IN_PROGRESS", script.create_result, Some(info), None);
        let in_progress = self
            .state
            .stacks
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.info.status.ends_with("_IN_PROGRESS"))
            .count();
        self.state.max_in_progress.fetch_max(in_progress, Ordering::SeqCst);
        Ok(stack_id)
    }

    async fn update_stack(&self, region: &str, request: &StackRequest, token: &str) -> Result<(), CloudError> {
        self.token(&(self.account.clone(), region.to_owned()), "retag", token);
        let key = self.call(region, "UpdateStack");
        let script = self.script(&key);
        if let Some(e) = script.update_stack_error {
            return Err(e);
        }
        let tags = (script.update_result == "UPDATE_COMPLETE").then(|| request.tags.clone());
        self.start(key, "UPDATE_IN_PROGRESS", script.update_result, None, tags);
        Ok(())
    }

    async fn get_template(&self, region: &str, _: &str) -> Result<String, CloudError> {
        let key = self.call(region, "GetTemplate");
        self.state
            .templates
            .get(&key)
            .cloned()
            .ok_or_else(|| service("ValidationError", "Stack does not exist"))
    }

    async fn delete_stack(&self, region: &str, stack: &str, token: &str) -> Result<(), CloudError> {
        self.token(&(self.account.clone(), region.to_owned()), "delete", token);
        // Deletes go by stack id: a stack replaced since it was observed is
        // another stack and must be left alone.
        assert!(
            stack.starts_with("arn:aws:cloudformation:"),
            "DeleteStack by name: {stack}"
        );
        let key = self.call(region, "DeleteStack");
        let script = self.script(&key);
        self.start(key, "DELETE_IN_PROGRESS", script.delete_result, None, None);
        Ok(())
    }

    async fn failure_reasons(&self, region: &str, _: &str) -> Result<Vec<String>, CloudError> {
        let key = self.call(region, "DescribeStackEvents");
        Ok(self.script(&key).reasons)
    }
}

impl ChangeSets for FakeSession {
    async fn create_change_set(
        &self,
        region: &str,
        request: &StackRequest,
        name: &str,
        description: &str,
    ) -> Result<(), CloudError> {
        let key = self.call(region, "CreateChangeSet");
        let script = self.script(&key);
        if let Some(e) = script.create_change_set_error {
            return Err(e);
        }
        let mut sets = self.state.change_sets.lock().unwrap();
        let set_key = (key.0, key.1, name.to_owned());
        if sets.contains_key(&set_key) {
            return Err(service(
                "AlreadyExistsException",
                &format!("ChangeSet {name} already exists"),
            ));
        }
        assert!(request.tags.contains_key(model::TAG_FINGERPRINT));
        if request.revert_drift {
            self.state.reverting.lock().unwrap().insert(set_key.clone());
        }
        self.state.change_set_owners.lock().unwrap().insert(
            set_key.clone(),
            (Some(description.to_owned()), std::time::SystemTime::now()),
        );
        sets.insert(set_key, script.change_set);
        Ok(())
    }

    async fn list_change_sets(&self, region: &str, stack: &str) -> Result<Vec<ChangeSetSummary>, CloudError> {
        let key = self.call(region, "ListChangeSets");
        let sets = self.state.change_sets.lock().unwrap();
        let owners = self.state.change_set_owners.lock().unwrap();
        Ok(sets
            .iter()
            .filter(|((a, r, _), _)| (a, r) == (&key.0, &key.1))
            .map(|(k, info)| {
                let (description, created) = owners.get(k).cloned().unwrap_or((None, std::time::SystemTime::now()));
                ChangeSetSummary {
                    name: k.2.clone(),
                    stack_name: stack.to_owned(),
                    status: if info.status.is_empty() {
                        "CREATE_COMPLETE".to_owned()
                    } else {
                        info.status.clone()
                    },
                    execution_status: "AVAILABLE".to_owned(),
                    description,
                    created: Some(created),
                }
            })
            .collect())
    }

    async fn describe_change_set(&self, region: &str, _: &str, name: &str) -> Result<ChangeSetInfo, CloudError> {
        let key = self.call(region, "DescribeChangeSet");
        let sets = self.state.change_sets.lock().unwrap();
        sets.get(&(key.0, key.1, name.to_owned()))
            .cloned()
            .ok_or_else(|| service("ChangeSetNotFound", name))
    }

    async fn execute_change_set(&self, region: &str, _: &str, name: &str, token: &str) -> Result<(), CloudError> {
        self.token(&(self.account.clone(), region.to_owned()), "update", token);
        let key = self.call(region, "ExecuteChangeSet");
        let set_key = (key.0.clone(), key.1.clone(), name.to_owned());
        self.state.change_sets.lock().unwrap().remove(&set_key);
        if self.state.reverting.lock().unwrap().contains(&set_key)
            && let Some(role) = &self.state.revert_to
        {
            for (k, live) in self.state.roles.lock().unwrap().iter_mut() {
                if k.0 == self.account {
                    *live = role.clone();
                }
            }
        }
        let script = self.script(&key);
        let tags = (script.update_result == "UPDATE_COMPLETE" && !script.change_set_drops_tags)
            .then(|| desired().stack_tags());
        self.start(key, "UPDATE_IN_PROGRESS", script.update_result, None, tags);
        Ok(())
    }

    async fn delete_change_set(&self, region: &str, _: &str, name: &str) -> Result<(), CloudError> {
        let key = self.call(region, "DeleteChangeSet");
        self.state
            .change_sets
            .lock()
            .unwrap()
            .remove(&(key.0, key.1, name.to_owned()));
        Ok(())
    }
}

impl InstanceStacks for FakeSession {
    async fn find_instance_stack(&self, region: &str, _: &str, _: Option<&str>) -> Result<Observed, CloudError> {
        let key = self.call(region, "FindInstanceStack");
        Ok(match self.state.stacks.lock().unwrap().get(&key) {
            Some(stack) => Observed::Present(stack.info.clone()),
            None => Observed::Absent,
        })
    }
}

impl Roles for FakeSession {
    async fn repair_role(&self, name: &str, repair: &model::RoleRepair) -> Result<(), CloudError> {
        use model::RoleRepair;
        self.call("global", "IAM");
        let mut roles = self.state.roles.lock().unwrap();
        let role = roles
            .get_mut(&(self.account.clone(), name.to_owned()))
            .ok_or_else(|| service("NoSuchEntity", name))?;
        match repair {
            RoleRepair::Trust(doc) => role.trust = serde_json::from_str(doc).unwrap(),
            RoleRepair::PutInline(n, doc) => {
                role.inline.insert(n.clone(), serde_json::from_str(doc).unwrap());
            }
            RoleRepair::DeleteInline(n) => {
                role.inline.remove(n);
            }
            RoleRepair::Attach(arn) => {
                role.managed.insert(arn.clone());
            }
            RoleRepair::Detach(arn) => {
                role.managed.remove(arn);
            }
            RoleRepair::Boundary(b) => role.permissions_boundary.clone_from(b),
            RoleRepair::MaxSessionDuration(s) => role.max_session_duration = *s,
        }
        Ok(())
    }

    async fn get_live_role(&self, name: &str) -> Result<Option<model::LiveRole>, CloudError> {
        self.call("global", "GetRole");
        Ok(self
            .state
            .roles
            .lock()
            .unwrap()
            .get(&(self.account.clone(), name.to_owned()))
            .cloned())
    }
}

impl StackDrift for FakeSession {
    async fn start_drift_detection(&self, region: &str, _: &str) -> Result<String, CloudError> {
        let key = self.call(region, "DetectStackDrift");
        let s = &self.state;
        // An endpoint without drift detection fails here, as moto does.
        if let Some(Detection::Answer(Err(e))) = s.detections.lock().unwrap().get(&key)
            && e.kind == crate::ErrorKind::Unavailable
        {
            return Err(e.clone());
        }
        let now = s.detecting.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_detecting.fetch_max(now, Ordering::SeqCst);
        Ok(format!("detection-{}-{region}", self.account))
    }

    /// In progress at the first read, then the script's answer (a
    /// detection that `Hangs` stays in progress).
    async fn drift_detection(
        &self,
        region: &str,
        _: &str,
        detection_id: &str,
    ) -> Result<Option<crate::cloud::CfnDrift>, CloudError> {
        let key = self.call(region, "DescribeStackDriftDetectionStatus");
        let s = &self.state;
        if s.detection_reads.lock().unwrap().insert(detection_id.to_owned()) {
            return Ok(None);
        }
        let script = s.detections.lock().unwrap().get(&key).cloned();
        if !matches!(script, Some(Detection::Hangs)) {
            s.detecting.fetch_sub(1, Ordering::SeqCst);
        }
        match script {
            None => Ok(Some(crate::cloud::CfnDrift::InSync)),
            Some(Detection::Hangs) => Ok(None),
            Some(Detection::Answer(result)) => result.map(Some),
        }
    }
}

fn id(n: usize) -> String {
    format!("{n:012}")
}

fn targets(n: usize) -> Vec<Target> {
    (1..=n)
        .map(|i| {
            Target {
                account_id: AccountId::parse(&id(i)).unwrap(),
                account_name: format!("acct-{i}"),
                regions: vec!["us-east-1".into(), "eu-west-1".into()],
                source: TargetSource::Inventory,
                parent: None,
                roles: Vec::new(),
            }
            .with_role("default")
        })
        .collect()
}

fn desired() -> Desired {
    Desired {
        role: "default".into(),
        role_name: "RolecallTarget".into(),
        stack_name: "rolecall-target-role".into(),
        template_body: "{}".into(),
        parameters: BTreeMap::new(),
        tags: BTreeMap::new(),
        fingerprint: "f".repeat(64),
        output_key: "RoleArn".into(),
        auto_expand: false,
    }
}

fn settings(concurrency: usize) -> Settings {
    Settings {
        bootstrap_role: "OrganizationAccountAccessRole".into(),
        bootstrap_external_id: None,
        concurrency,
        max_in_flight: crate::fanout::ACCOUNTS_IN_FLIGHT,
        session_name: "rolecall-plan-test".into(),
        partition: planner::partition::AWS,
        interrupt: Default::default(),
        host: HOST.into(),
        process_alive: |pid| pid != DEAD_PID,
    }
}

/// The host the tests run on, as the settings give it.
const HOST: &str = "test-host";
/// The one process of `HOST` that is gone.
const DEAD_PID: u32 = u32::MAX - 1;

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn event(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn one_assume_role_per_account_and_bounded_concurrency() {
    let fake = Fake::default();
    let events = Recorder::default();
    let plan = run(plan(&fake, &settings(4), &[desired()], &targets(40), &events));
    assert_eq!(plan.entries.len(), 80);
    assert!(plan.errors.is_empty());
    assert!(plan.entries.iter().all(|e| e.action == Action::Create));
    let mut calls = fake.0.assume_calls.lock().unwrap().clone();
    calls.sort();
    calls.dedup();
    assert_eq!(
        (fake.0.assume_calls.lock().unwrap().len(), calls.len()),
        (40, 40),
        "one STS call per account, not per region"
    );
    assert_eq!(fake.0.describe_calls.load(Ordering::SeqCst), 80);
    let max = fake.0.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 4, "at most 4 accounts at once, saw {max}");
    assert!(max >= 2, "accounts run concurrently, saw {max}");
    // Sorted by account, then region.
    assert_eq!(
        (plan.entries[0].account_id.as_str(), plan.entries[0].region.as_str()),
        ("000000000001", "eu-west-1")
    );
    let events = events.0.lock().unwrap();
    assert_eq!(events[0], Event::Started { accounts: 40 });
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::AccountFinished { .. }))
            .count(),
        40
    );
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Planned { .. })).count(), 80);
}

#[test]
fn an_unreachable_account_or_region_fails_alone() {
    let mut state = State {
        denied: vec![id(2)],
        ..State::default()
    };
    state.region_errors.insert(
        (id(3), "eu-west-1".into()),
        service(
            "InvalidClientTokenId",
            "The security token included in the request is invalid",
        ),
    );
    state.region_errors.insert(
        (id(4), "us-east-1".into()),
        service("ExpiredToken", "The security token included in the request is expired"),
    );
    let state = state.with_stack(
        1,
        "us-east-1",
        "UPDATE_ROLLBACK_FAILED",
        [(model::TAG_MANAGED_BY.to_owned(), "rolecall".to_owned())].into(),
    );
    let fake = Fake(Arc::new(state));
    let events = Recorder::default();
    let plan = run(plan(&fake, &settings(16), &[desired()], &targets(4), &events));
    assert_eq!(plan.errors.len(), 3, "{:#?}", plan.errors);
    let expired = &plan.errors[2];
    assert!(
        expired.message.contains("the credentials expired") && !expired.message.contains("enabled"),
        "{}",
        expired.message
    );
    let denied = &plan.errors[0];
    assert_eq!(
        (denied.account_id.as_str(), denied.region.as_deref()),
        ("000000000002", None)
    );
    assert!(
        denied
            .message
            .contains("cannot assume arn:aws:iam::000000000002:role/OrganizationAccountAccessRole: AccessDenied"),
        "{}",
        denied.message
    );
    assert!(
        denied.message.contains("rolecall bootstrap-template"),
        "{}",
        denied.message
    );
    let region = &plan.errors[1];
    assert_eq!(
        (region.account_id.as_str(), region.region.as_deref()),
        ("000000000003", Some("eu-west-1"))
    );
    assert!(
        region.message.contains("is region eu-west-1 enabled"),
        "{}",
        region.message
    );
    // Everything else was planned: 4 accounts × 2 regions − 2 (denied) − 2 (regions).
    assert_eq!(plan.entries.len(), 4);
    assert_eq!(
        plan.entries
            .iter()
            .find(|e| e.account_id.as_str() == id(1) && e.region == "us-east-1")
            .unwrap()
            .action,
        Action::Blocked
    );
    assert!(plan.needs_attention());
    assert_eq!(
        events
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::AccountFailed { .. }))
            .count(),
        3
    );
}

fn org_account(n: usize, status: &str) -> OrgAccount {
    OrgAccount {
        id: AccountId::parse(&id(n)).unwrap(),
        name: format!("acct-{n}"),
        status: status.into(),
    }
}

fn org_fake() -> Fake {
    let mut state = State::default();
    state.tree.insert(
        "r-root".into(),
        (vec!["ou-a".into(), "ou-b".into()], vec![org_account(1, "ACTIVE")]),
    );
    state.tree.insert(
        "ou-a".into(),
        (
            vec!["ou-a1".into()],
            vec![org_account(2, "ACTIVE"), org_account(3, "SUSPENDED")],
        ),
    );
    state
        .tree
        .insert("ou-a1".into(), (vec![], vec![org_account(4, "ACTIVE")]));
    state.tree.insert(
        "ou-b".into(),
        (
            vec![],
            vec![org_account(5, "ACTIVE"), org_account(6, "PENDING_CLOSURE")],
        ),
    );
    state.tags.insert(id(4), vec![("env".into(), "prod".into())]);
    state
        .tags
        .insert(id(5), vec![("env".into(), "prod".into()), ("team".into(), "x".into())]);
    Fake(Arc::new(state))
}

fn org(ous: &[&str], recursive: bool, tags: &[(&str, &str)]) -> OrgDiscovery {
    OrgDiscovery {
        ous: ous.iter().map(|s| s.to_string()).collect(),
        recursive,
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        exclude: vec![],
    }
}

#[test]
fn discovery_walks_ous_and_keeps_active_accounts() {
    let fake = org_fake();
    let ids = |found: Vec<model::DiscoveredAccount>| {
        found
            .iter()
            .map(|a| format!("{}@{}", a.id.as_str().trim_start_matches('0'), a.parent))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(run(discover(&fake, &org(&["r-root"], true, &[]), false)).unwrap()),
        ["1@r-root", "2@ou-a", "4@ou-a1", "5@ou-b"]
    );
    assert_eq!(
        ids(run(discover(&fake, &org(&["r-root"], false, &[]), false)).unwrap()),
        ["1@r-root"]
    );
    // Overlapping OUs list each account once.
    assert_eq!(
        ids(run(discover(&fake, &org(&["ou-a", "ou-a1"], true, &[]), false)).unwrap()),
        ["2@ou-a", "4@ou-a1"]
    );
    assert_eq!(
        fake.0.tag_calls.load(Ordering::SeqCst),
        0,
        "tags are read only for a tag filter"
    );
    let tagged = run(discover(&fake, &org(&["r-root"], true, &[("env", "prod")]), false)).unwrap();
    assert_eq!(fake.0.tag_calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        tagged.iter().find(|a| a.id.as_str() == id(5)).unwrap().tags["team"],
        "x"
    );
    let err = run(discover(&fake, &org(&["ou-missing"], true, &[]), false)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot list accounts under ou-missing: ParentNotFoundException: ou-missing not found"
    );
}

/// Listed accounts without a name get Organizations' name: DescribeAccount
/// for a few, one ListAccounts for many; an account Organizations does not
/// know keeps its id; a caller that may not read Organizations gets the
/// error, after one call.
#[test]
fn names_of_listed_accounts_come_from_organizations() {
    let fake = org_fake();
    let few: Vec<AccountId> = [1, 4, 99].iter().map(|n| AccountId::parse(&id(*n)).unwrap()).collect();
    let names = run(crate::account_names(&fake, &few)).unwrap();
    assert_eq!(
        names.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        [format!("{}=acct-1", id(1)), format!("{}=acct-4", id(4))]
    );
    assert_eq!(fake.0.describe_account_calls.load(Ordering::SeqCst), 3);
    assert_eq!(fake.0.list_accounts_calls.load(Ordering::SeqCst), 0);

    let many: Vec<AccountId> = (1..=30).map(|n| AccountId::parse(&id(n)).unwrap()).collect();
    let names = run(crate::account_names(&fake, &many)).unwrap();
    assert_eq!(names.len(), 6, "every account of the organization: {names:?}");
    assert_eq!(fake.0.describe_account_calls.load(Ordering::SeqCst), 3);
    assert_eq!(fake.0.list_accounts_calls.load(Ordering::SeqCst), 1);

    let denied = Fake(Arc::new(State {
        org_error: Some(service("AWSOrganizationsNotInUseException", "not in an organization")),
        ..State::default()
    }));
    let err = run(crate::account_names(&denied, &few)).unwrap_err();
    assert!(err.message().contains("not in an organization"), "{err}");
}

// ---------------------------------------------------------------------------
// apply: what moto cannot show (it is synchronous and never fails a stack).

fn options() -> ApplyOptions {
    ApplyOptions {
        failure_tolerance: 100,
        poll_interval: Duration::from_millis(1),
        max_wait: Duration::from_secs(5),
        registered: None,
    }
}

/// Applies to accounts 1..=n in us-east-1 only, concurrency 1 (ordered).
fn apply_to(state: State, n: usize, options: &ApplyOptions) -> (Arc<State>, Vec<model::Outcome>) {
    let fake = Fake(Arc::new(state));
    let targets: Vec<Target> = targets(n)
        .into_iter()
        .map(|mut t| {
            t.regions.truncate(1);
            t.with_role("default")
        })
        .collect();
    let outcomes = run(apply(
        &fake,
        &settings(1),
        options,
        &[desired()],
        &targets,
        None,
        &Recorder::default(),
    ));
    (fake.0, outcomes)
}

fn ours() -> BTreeMap<String, String> {
    desired().stack_tags()
}

fn old() -> BTreeMap<String, String> {
    let mut tags = ours();
    tags.insert(model::TAG_FINGERPRINT.to_owned(), "0".repeat(64));
    tags
}

fn status(o: &model::Outcome) -> String {
    format!("{} {}", o.status, o.error.as_deref().unwrap_or(""))
}

#[test]
fn create_waits_for_complete_and_reads_outputs_from_the_last_describe() {
    let (state, outcomes) = apply_to(State::default(), 1, &options());
    let o = &outcomes[0];
    assert_eq!(status(o), "created ");
    assert_eq!(
        o.role_arn.as_deref(),
        Some("arn:aws:iam::000000000001:role/RolecallTarget")
    );
    assert_eq!(o.fingerprint.as_deref(), Some(desired().fingerprint.as_str()));
    // Observe, create, then polls until CREATE_COMPLETE; no extra call for outputs.
    assert_eq!(
        state.calls(1, "us-east-1"),
        [
            "DescribeStacks",
            "CreateStack",
            "DescribeStacks",
            "DescribeStacks",
            "DescribeStacks"
        ]
    );
}

#[test]
fn a_failed_create_is_that_stacks_failure_with_the_events_reason() {
    let script = Script {
        create_result: "ROLLBACK_COMPLETE",
        ..Script::default()
    };
    let (_, outcomes) = apply_to(State::default().script(1, "us-east-1", script), 2, &options());
    assert_eq!(
        status(&outcomes[0]),
        "failed create ended in ROLLBACK_COMPLETE: Role: Resource handler returned message: \"Access denied\""
    );
    assert_eq!(outcomes[0].role_arn, None);
    assert_eq!(status(&outcomes[1]), "created ", "the other account goes on");
}

#[test]
fn waiting_too_long_gives_up_with_advice() {
    let script = Script {
        polls: usize::MAX,
        ..Script::default()
    };
    let options = ApplyOptions {
        max_wait: Duration::from_millis(30),
        poll_interval: Duration::from_millis(5),
        ..options()
    };
    let (_, outcomes) = apply_to(State::default().script(1, "us-east-1", script), 1, &options);
    let o = &outcomes[0];
    assert_eq!(o.status, model::Status::Failed);
    let error = o.error.as_deref().unwrap();
    assert!(
        error.starts_with("timed out after 0s waiting for stack rolecall-target-role (CREATE_IN_PROGRESS)"),
        "{error}"
    );
    assert!(error.contains("run apply again to pick it up"), "{error}");
}

#[test]
fn an_operation_in_progress_is_waited_for_then_decided_again() {
    let state = State::default().with_stack(1, "us-east-1", "UPDATE_COMPLETE", ours());
    {
        let mut stacks = state.stacks.lock().unwrap();
        let stack = stacks.get_mut(&(id(1), "us-east-1".to_owned())).unwrap();
        stack.info.status = "UPDATE_IN_PROGRESS".into();
        stack.polls_left = 3;
    }
    let (state, outcomes) = apply_to(state, 1, &options());
    assert_eq!(status(&outcomes[0]), "unchanged ");
    assert_eq!(outcomes[0].action, Some(Action::NoOp));
    // Three reads still in progress (the first is the observation), then the settled one.
    assert_eq!(state.calls(1, "us-east-1"), ["DescribeStacks"; 4]);
}

#[test]
fn recover_deletes_the_failed_stack_then_creates() {
    let state = State::default().with_stack(1, "us-east-1", "ROLLBACK_COMPLETE", ours());
    let (state, outcomes) = apply_to(state, 1, &options());
    assert_eq!(status(&outcomes[0]), "created ");
    let calls = state.calls(1, "us-east-1");
    assert_eq!(calls.iter().filter(|c| **c == "DeleteStack").count(), 1);
    assert_eq!(calls.iter().filter(|c| **c == "CreateStack").count(), 1);
    assert!(calls.iter().position(|c| *c == "DeleteStack") < calls.iter().position(|c| *c == "CreateStack"));
    // Each write has its own ClientRequestToken (checked for shape by the
    // fake): a retry of one is recognised, two writes are never confused.
    let tokens = state.tokens.lock().unwrap().clone();
    assert_eq!(
        tokens,
        [
            "rolecall-plan-test-delete-default-000000000001-us-east-1",
            "rolecall-plan-test-create-default-000000000001-us-east-1"
        ]
    );

    let script = Script {
        delete_result: "DELETE_FAILED",
        ..Script::default()
    };
    let state = State::default()
        .with_stack(1, "us-east-1", "ROLLBACK_COMPLETE", ours())
        .script(1, "us-east-1", script);
    let (_, outcomes) = apply_to(state, 1, &options());
    assert!(
        status(&outcomes[0]).starts_with("failed could not delete the failed stack (DELETE_FAILED: Role:"),
        "{}",
        status(&outcomes[0])
    );
}

#[test]
fn update_goes_through_a_change_set() {
    let state = State::default().with_stack(1, "us-east-1", "CREATE_COMPLETE", old());
    let (state, outcomes) = apply_to(state, 1, &options());
    let o = &outcomes[0];
    assert_eq!(status(o), "updated ");
    assert_eq!(
        o.changes
            .iter()
            .map(|c| format!("{} {}", c.action, c.logical_id))
            .collect::<Vec<_>>(),
        ["Modify Role"]
    );
    assert_eq!(o.fingerprint.as_deref(), Some(desired().fingerprint.as_str()));
    let calls = state.calls(1, "us-east-1");
    assert_eq!(
        &calls[..5],
        [
            "DescribeStacks",
            "ListChangeSets",
            "CreateChangeSet",
            "DescribeChangeSet",
            "ExecuteChangeSet"
        ]
    );
    assert!(state.change_sets.lock().unwrap().is_empty());

    // A rolled-back update fails with the reason; the stack keeps working.
    let script = Script {
        update_result: "UPDATE_ROLLBACK_COMPLETE",
        ..Script::default()
    };
    let state = State::default()
        .with_stack(1, "us-east-1", "CREATE_COMPLETE", old())
        .script(1, "us-east-1", script);
    let (_, outcomes) = apply_to(state, 1, &options());
    assert!(
        status(&outcomes[0]).starts_with("failed update ended in UPDATE_ROLLBACK_COMPLETE: Role:"),
        "{}",
        status(&outcomes[0])
    );
    assert!(
        outcomes[0].role_arn.is_some(),
        "the old role is still there and reported"
    );
}

/// A change set that finds nothing to change is deleted. Template and
/// parameters are then the inventory's, so a stale fingerprint tag is put
/// right with UpdateStack (else every later plan would say `update`); an
/// UpdateStack that also finds nothing leaves the stack unchanged.
#[test]
fn no_changes_is_success_and_the_empty_change_set_is_deleted() {
    let failed = || {
        Script {
        change_set: ChangeSetInfo { status: "FAILED".into(), status_reason: Some("The submitted information didn't contain changes. Submit different information to create a change set.".into()), changes: vec![] },
        ..Script::default()
    }
    };
    let state = State::default()
        .with_stack(1, "us-east-1", "CREATE_COMPLETE", old())
        .script(1, "us-east-1", failed());
    let (state, outcomes) = apply_to(state, 1, &options());
    assert_eq!(status(&outcomes[0]), "updated ");
    assert_eq!(outcomes[0].fingerprint.as_deref(), Some(desired().fingerprint.as_str()));
    let calls = state.calls(1, "us-east-1");
    assert_eq!(
        calls[..6],
        [
            "DescribeStacks",
            "ListChangeSets",
            "CreateChangeSet",
            "DescribeChangeSet",
            "DeleteChangeSet",
            "UpdateStack"
        ]
    );
    assert!(state.change_sets.lock().unwrap().is_empty());

    let no_updates = || Some(service("ValidationError", "No updates are to be performed."));
    let refused = Script {
        create_change_set_error: no_updates(),
        update_stack_error: no_updates(),
        ..Script::default()
    };
    let state = State::default()
        .with_stack(1, "us-east-1", "CREATE_COMPLETE", old())
        .script(1, "us-east-1", refused);
    let (_, outcomes) = apply_to(state, 1, &options());
    assert_eq!(status(&outcomes[0]), "unchanged ");
}

/// Tags alone differ: one UpdateStack with the inventory's template,
/// parameters and tags, no change set. An update whose change set left the
/// tags as they were (moto's ExecuteChangeSet) is followed by one: the
/// next plan is a no-op either way.
#[test]
fn tags_converge_in_one_apply() {
    let mut tags = ours();
    tags.insert("team".into(), "someone-changed-it".into());
    let state = State::default().with_stack(1, "us-east-1", "UPDATE_COMPLETE", tags);
    let (state, outcomes) = apply_to(state, 1, &options());
    assert_eq!(status(&outcomes[0]), "updated ");
    let calls = state.calls(1, "us-east-1");
    assert_eq!(calls[..2], ["DescribeStacks", "UpdateStack"]);
    assert!(!calls.contains(&"CreateChangeSet"), "{calls:?}");
    assert_eq!(
        state.tokens.lock().unwrap().clone(),
        ["rolecall-plan-test-retag-default-000000000001-us-east-1"]
    );
    let stacks = state.stacks.lock().unwrap();
    let after = &stacks[&(id(1), "us-east-1".to_owned())].info;
    assert_eq!(
        planner::decide(&desired(), &Observed::Present(after.clone())).action,
        Action::NoOp
    );
    drop(stacks);

    let dropped = Script {
        change_set_drops_tags: true,
        ..Script::default()
    };
    let state = State::default()
        .with_stack(1, "us-east-1", "CREATE_COMPLETE", old())
        .script(1, "us-east-1", dropped);
    let (state, outcomes) = apply_to(state, 1, &options());
    assert_eq!(status(&outcomes[0]), "updated ");
    assert_eq!(outcomes[0].changes.len(), 1, "the change set's changes are reported");
    let calls = state.calls(1, "us-east-1");
    assert!(
        calls.iter().position(|c| *c == "ExecuteChangeSet") < calls.iter().position(|c| *c == "UpdateStack"),
        "{calls:?}"
    );
    let stacks = state.stacks.lock().unwrap();
    let after = &stacks[&(id(1), "us-east-1".to_owned())].info;
    assert_eq!(
        planner::decide(&desired(), &Observed::Present(after.clone())).action,
        Action::NoOp
    );
}

#[test]
fn change_sets_of_crashed_runs_go_and_a_live_runs_is_waited_for() {
    let leftover = |state: &State, name: &str, owner: &str, age_secs: u64| {
        let key = (id(1), "us-east-1".to_owned(), name.to_owned());
        state
            .change_sets
            .lock()
            .unwrap()
            .insert(key.clone(), ChangeSetInfo::default());
        state.change_set_owners.lock().unwrap().insert(
            key,
            (
                Some(owner.to_owned()),
                std::time::SystemTime::now() - Duration::from_secs(age_secs),
            ),
        );
    };
    // Left by a run that crashed an hour ago, and by a killed run of this
    // host (its pid is gone): both deleted, then this run's own is made.
    let state = State::default().with_stack(1, "us-east-1", "CREATE_COMPLETE", old());
    leftover(
        &state,
        "rolecall-old-apply-1-1",
        "rolecall run rolecall-apply-1-1 on elsewhere",
        3600,
    );
    let dead = format!("rolecall run rolecall-apply-1-{} on {}", DEAD_PID, HOST);
    leftover(&state, "rolecall-dead-apply-1-4294967294", &dead, 5);
    let (state, outcomes) = apply_to(state, 1, &options());
    assert_eq!(status(&outcomes[0]), "updated ");
    assert_eq!(
        &state.calls(1, "us-east-1")[..5],
        [
            "DescribeStacks",
            "ListChangeSets",
            "DeleteChangeSet",
            "DeleteChangeSet",
            "CreateChangeSet"
        ]
    );
    assert!(state.change_sets.lock().unwrap().is_empty());

    // A run on another machine made one a second ago: this run waits for
    // it instead of deleting it, and says what it waited for.
    let state = State::default().with_stack(1, "us-east-1", "CREATE_COMPLETE", old());
    leftover(
        &state,
        "rolecall-live-apply-2-2",
        "rolecall run rolecall-apply-2-2 on ci-7",
        1,
    );
    let short = ApplyOptions {
        max_wait: Duration::from_millis(100),
        ..options()
    };
    let (state, outcomes) = apply_to(state, 1, &short);
    assert!(
        status(&outcomes[0]).contains("waiting for another rolecall run, rolecall run rolecall-apply-2-2 on ci-7 (change set rolecall-live-apply-2-2)"),
        "{}",
        status(&outcomes[0])
    );
    assert!(!state.calls(1, "us-east-1").contains(&"DeleteChangeSet"));
    assert!(!state.calls(1, "us-east-1").contains(&"CreateChangeSet"));
    assert_eq!(
        state.change_sets.lock().unwrap().len(),
        1,
        "the other run's change set is untouched"
    );
}

#[test]
fn a_rolled_back_stack_is_checked_against_its_deployed_template() {
    // The tags say "as the inventory", the status says the last update
    // rolled back: GetTemplate decides.
    let rolled_back = |template: Option<String>| {
        let mut state = State::default().with_stack(1, "us-east-1", "UPDATE_ROLLBACK_COMPLETE", ours());
        if let Some(t) = template {
            state.templates.insert((id(1), "us-east-1".to_owned()), t);
        }
        state
    };
    let (state, outcomes) = apply_to(rolled_back(Some(desired().template_body)), 1, &options());
    assert_eq!(status(&outcomes[0]), "unchanged ");
    assert_eq!(state.calls(1, "us-east-1"), ["DescribeStacks", "GetTemplate"]);

    for deployed in [Some("{\"Resources\": {}}".to_owned()), None] {
        let (state, outcomes) = apply_to(rolled_back(deployed), 1, &options());
        assert_eq!(status(&outcomes[0]), "updated ");
        assert_eq!(
            &state.calls(1, "us-east-1")[..4],
            ["DescribeStacks", "GetTemplate", "ListChangeSets", "CreateChangeSet"]
        );
    }
}

#[test]
fn account_regions_the_registry_lacks_are_created_without_reading_first() {
    // Account 1 is new (no stack), account 2 has a stack rolecall does not
    // know of, account 3 a foreign one, account 4 is registered.
    let foreign = BTreeMap::from([("owner".to_owned(), "someone".to_owned())]);
    let state = State::default()
        .with_stack(2, "us-east-1", "CREATE_COMPLETE", ours())
        .with_stack(3, "us-east-1", "CREATE_COMPLETE", foreign)
        .with_stack(4, "us-east-1", "CREATE_COMPLETE", ours());
    let registered = ApplyOptions {
        registered: Some(
            [(
                model::AccountId::parse(&id(4)).unwrap(),
                model::registry::DEFAULT_ROLE.to_owned(),
                "us-east-1".to_owned(),
            )]
            .into(),
        ),
        ..options()
    };
    let (state, outcomes) = apply_to(state, 4, &registered);
    assert_eq!(status(&outcomes[0]), "created ");
    let calls = state.calls(1, "us-east-1");
    assert_eq!(calls[0], "CreateStack", "no DescribeStacks first: {calls:?}");
    assert!(calls[1..].iter().all(|c| *c == "DescribeStacks"), "{calls:?}");
    // A stack after all: AlreadyExists, then observed and decided as usual.
    assert_eq!(status(&outcomes[1]), "unchanged ");
    assert_eq!(state.calls(2, "us-east-1"), ["CreateStack", "DescribeStacks"]);
    assert!(status(&outcomes[2]).starts_with("blocked "), "{}", status(&outcomes[2]));
    assert_eq!(state.calls(3, "us-east-1"), ["CreateStack", "DescribeStacks"]);
    assert_eq!(state.calls(4, "us-east-1"), ["DescribeStacks"]);
}

#[test]
fn blocked_and_unchanged_stacks_only_get_reads() {
    let foreign = BTreeMap::from([("owner".to_owned(), "someone".to_owned())]);
    let state = State::default()
        .with_stack(1, "us-east-1", "CREATE_COMPLETE", foreign)
        .with_stack(2, "us-east-1", "UPDATE_COMPLETE", ours());
    let (state, outcomes) = apply_to(state, 2, &options());
    assert!(
        status(&outcomes[0])
            .starts_with("blocked stack rolecall-target-role (CREATE_COMPLETE) was not created by rolecall")
    );
    assert_eq!(status(&outcomes[1]), "unchanged ");
    assert_eq!(state.calls(1, "us-east-1"), ["DescribeStacks"]);
    assert_eq!(state.calls(2, "us-east-1"), ["DescribeStacks"]);
}

#[test]
fn a_stack_without_the_output_is_a_failure() {
    let script = Script {
        no_output: true,
        ..Script::default()
    };
    let (_, outcomes) = apply_to(State::default().script(1, "us-east-1", script), 1, &options());
    assert!(
        status(&outcomes[0]).contains("has no output RoleArn"),
        "{}",
        status(&outcomes[0])
    );
}

#[test]
fn failure_tolerance_stops_new_accounts_but_not_running_ones() {
    let state = State {
        denied: vec![id(2), id(3)],
        ..State::default()
    };
    let (state, outcomes) = apply_to(
        state,
        8,
        &ApplyOptions {
            failure_tolerance: 1,
            ..options()
        },
    );
    let statuses: Vec<String> = outcomes.iter().map(|o| o.status.to_string()).collect();
    assert_eq!(
        statuses,
        [
            "created",
            "failed",
            "failed",
            "not-attempted",
            "not-attempted",
            "not-attempted",
            "not-attempted",
            "not-attempted"
        ]
    );
    assert!(outcomes[1].error.as_deref().unwrap().contains("cannot assume"));
    assert!(
        outcomes[3]
            .error
            .as_deref()
            .unwrap()
            .contains("more than 1 account(s) failed")
    );
    assert_eq!(
        state.assume_calls.lock().unwrap().len(),
        3,
        "no AssumeRole for accounts not attempted"
    );

    // With room for every failure, every account is attempted.
    let state = State {
        denied: vec![id(2), id(3)],
        ..State::default()
    };
    let (_, outcomes) = apply_to(
        state,
        8,
        &ApplyOptions {
            failure_tolerance: 2,
            ..options()
        },
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o.status == model::Status::NotAttempted)
            .count(),
        0
    );
}

/// Waiting is not work: an account whose stacks wait for CloudFormation
/// gives its slot to the next account, so more accounts than
/// `concurrency` have stacks in progress at once, while the calls under
/// way stay within it. Every stack still gets created.
#[test]
fn apply_waits_hold_no_slot_and_calls_stay_bounded() {
    let fake = Fake::default();
    let events = Recorder::default();
    let mut s = settings(8);
    s.session_name = "rolecall-apply-test".into();
    let options = ApplyOptions {
        poll_interval: Duration::from_millis(30),
        ..options()
    };
    let outcomes = run(apply(&fake, &s, &options, &[desired()], &targets(40), None, &events));
    assert_eq!(outcomes.len(), 80);
    assert!(outcomes.iter().all(|o| o.status == model::Status::Created));
    let stacks = fake.0.max_in_progress.load(Ordering::SeqCst);
    assert!(
        stacks > 16,
        "waiting accounts held their slots: at most {stacks} stacks in progress at once"
    );
    // At most 8 accounts starting and 8 going on after a wait, each with
    // its 2 regions' stacks.
    let calls = fake.0.max_calls.load(Ordering::SeqCst);
    assert!(
        (2..=2 * 8 * 2).contains(&calls),
        "DescribeStacks under way at once: {calls}"
    );
    let events = events.0.lock().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::AccountFinished { .. }))
            .count(),
        40
    );
}

/// `max_in_flight` bounds the accounts begun and not finished, waiting
/// ones included: set to the concurrency, no more stacks are in progress
/// at once than that (0.3's behaviour, and the smallest blast radius of a
/// bad template).
#[test]
fn max_in_flight_bounds_the_stacks_in_progress() {
    let fake = Fake::default();
    let settings = Settings {
        max_in_flight: 4,
        ..settings(4)
    };
    let options = ApplyOptions {
        poll_interval: Duration::from_millis(30),
        ..options()
    };
    let outcomes = run(apply(
        &fake,
        &settings,
        &options,
        &[desired()],
        &east(20),
        None,
        &NoEventsSink,
    ));
    assert!(outcomes.iter().all(|o| o.status == model::Status::Created));
    let stacks = fake.0.max_in_progress.load(Ordering::SeqCst);
    assert!((1..=4).contains(&stacks), "{stacks} stacks in progress at once");
}

#[test]
fn bootstrap_role_arns_are_in_the_callers_partition() {
    for (region, partition) in [
        ("us-gov-west-1", "aws-us-gov"),
        ("cn-north-1", "aws-cn"),
        ("us-east-1", "aws"),
    ] {
        // The fake asserts every AssumeRole ARN is in `partition`.
        let fake = Fake(Arc::new(State {
            partition: Some(partition),
            ..State::default()
        }));
        let settings = Settings {
            partition: planner::partition::Partition::of_region(region),
            interrupt: Default::default(),
            ..settings(4)
        };
        let plan = run(plan(&fake, &settings, &[desired()], &targets(3), &NoEventsSink));
        assert!(plan.errors.is_empty(), "{region}: {:?}", plan.errors);
        assert_eq!(fake.0.assume_calls.lock().unwrap().len(), 3, "{region}");
    }
}

struct NoEventsSink;

impl EventSink for NoEventsSink {
    fn event(&self, _: Event) {}
}

/// Targets 1..=n in us-east-1 only.
fn east(n: usize) -> Vec<Target> {
    targets(n)
        .into_iter()
        .map(|mut t| {
            t.regions.truncate(1);
            t.with_role("default")
        })
        .collect()
}

#[test]
fn a_confirmed_plan_is_acted_on_and_fails_safe_when_a_stack_changed() {
    // The plan saw no stack in accounts 1 and 2; meanwhile someone created
    // one in account 1. Account 3 was not observed when the plan was made.
    let fake = Fake(Arc::new(State::default().with_stack(
        1,
        "us-east-1",
        "CREATE_COMPLETE",
        ours(),
    )));
    let mut planned = crate::ObservedMap::new();
    for n in [1, 2] {
        planned.insert(
            (
                AccountId::parse(&id(n)).unwrap(),
                "default".to_owned(),
                "us-east-1".to_owned(),
            ),
            Observed::Absent,
        );
    }
    let outcomes = run(apply(
        &fake,
        &settings(1),
        &options(),
        &[desired()],
        &east(3),
        Some(&planned),
        &NoEventsSink,
    ));
    let got: Vec<String> = outcomes.iter().map(status).collect();
    assert_eq!(
        got,
        [
            "changed-since-plan the plan showed no stack rolecall-target-role, but one exists now; nothing was done: run plan and apply again",
            "created ",
            "not-attempted not observed when the plan was made, so not in what was confirmed; nothing was done (run apply again)",
        ]
    );
    // Acting on the plan reads nothing first: no DescribeStacks before the write.
    assert_eq!(fake.0.calls(1, "us-east-1"), ["CreateStack"]);
    assert_eq!(fake.0.calls(2, "us-east-1")[0], "CreateStack");
    assert!(fake.0.calls(3, "us-east-1").is_empty());

    // An update whose stack is busy or gone by now: CloudFormation refuses
    // the change set, and that is reported as changed since the plan.
    let script = Script {
        create_change_set_error: Some(service(
            "ValidationError",
            "Stack:arn:aws:cloudformation:us-east-1:000000000001:stack/rolecall-target-role/1 is in UPDATE_IN_PROGRESS state and can not be updated.",
        )),
        ..Script::default()
    };
    let fake = Fake(Arc::new(
        State::default()
            .with_stack(1, "us-east-1", "UPDATE_COMPLETE", old())
            .script(1, "us-east-1", script),
    ));
    let Observed::Present(info) = Observed::Present(
        fake.0.stacks.lock().unwrap()[&(id(1), "us-east-1".to_owned())]
            .info
            .clone(),
    ) else {
        unreachable!()
    };
    let planned = crate::ObservedMap::from([(
        (
            AccountId::parse(&id(1)).unwrap(),
            "default".to_owned(),
            "us-east-1".to_owned(),
        ),
        Observed::Present(info),
    )]);
    let outcomes = run(apply(
        &fake,
        &settings(1),
        &options(),
        &[desired()],
        &east(1),
        Some(&planned),
        &NoEventsSink,
    ));
    assert!(
        status(&outcomes[0]).starts_with("changed-since-plan the stack changed since the plan"),
        "{}",
        status(&outcomes[0])
    );
}

#[test]
fn destroy_deletes_only_rolecalls_stacks_by_id_and_waits() {
    let fake = Fake(Arc::new(
        State::default()
            .with_stack(1, "us-east-1", "UPDATE_COMPLETE", ours())
            .with_stack(
                2,
                "us-east-1",
                "CREATE_COMPLETE",
                [("team".to_owned(), "x".to_owned())].into(),
            )
            .with_stack(4, "us-east-1", "ROLLBACK_COMPLETE", ours()),
    ));
    let outcomes = run(crate::destroy(
        &fake,
        &settings(2),
        &options(),
        &[desired()],
        &east(4),
        None,
        &NoEventsSink,
    ));
    let got: Vec<String> = outcomes.iter().map(status).collect();
    assert_eq!(
        got,
        [
            "deleted ",
            "blocked stack rolecall-target-role (CREATE_COMPLETE) was not created by rolecall (no rolecall:managed-by tag); rolecall never deletes it",
            "unchanged ",
            "deleted ",
        ]
    );
    assert_eq!(fake.0.calls(1, "us-east-1")[..2], ["DescribeStacks", "DeleteStack"]);
    assert!(
        !fake.0.calls(2, "us-east-1").contains(&"DeleteStack"),
        "a foreign stack is never deleted"
    );
    assert_eq!(fake.0.calls(3, "us-east-1"), ["DescribeStacks"]);
}

// ---------------------------------------------------------------------------
// StackSets: what moto cannot show (its operations succeed at once, its
// instances never go OUTDATED, its service-managed stacks are invisible,
// and it never answers OperationInProgressException).

use crate::cloud::{
    InstanceTargets, InstancesOp, OperationInfo, OperationPrefs, OperationResult, StackSetRequest, StackSets,
};
use crate::stacksets::StackSetRun;

#[derive(Default)]
struct SetState {
    set: Option<model::StackSetInfo>,
    instances: Vec<model::InstanceInfo>,
    /// operation id → (polls left while RUNNING, results).
    ops: BTreeMap<String, (usize, Vec<OperationResult>)>,
    /// Calls that answer OperationInProgressException first (a foreign
    /// operation is then running for two polls).
    busy: usize,
    /// (account, region) → why its instance fails.
    failing: BTreeMap<(String, String), String>,
    /// OU → its accounts, for service-managed targets.
    ous: BTreeMap<String, Vec<String>>,
    calls: Vec<&'static str>,
    targets: Vec<InstanceTargets>,
    results_calls: usize,
    /// What CreateStackSet was asked for.
    created: Option<model::StackSetSpec>,
}

impl Fake {
    fn set(&self) -> std::sync::MutexGuard<'_, SetState> {
        self.0.set.lock().unwrap()
    }

    /// Accounts × regions an operation covers.
    fn pairs(&self, t: &InstanceTargets) -> Vec<(String, String)> {
        let s = self.set();
        let accounts: Vec<String> = if t.ous.is_empty() {
            t.accounts.clone()
        } else {
            let all: Vec<String> = t
                .ous
                .iter()
                .flat_map(|ou| s.ous.get(ou).cloned().unwrap_or_default())
                .collect();
            match &t.account_filter {
                Some(("DIFFERENCE", out)) => all.into_iter().filter(|a| !out.contains(a)).collect(),
                Some((_, only)) => all.into_iter().filter(|a| only.contains(a)).collect(),
                None => all,
            }
        };
        accounts
            .iter()
            .flat_map(|a| t.regions.iter().map(move |r| (a.clone(), r.clone())))
            .collect()
    }

    /// Runs an operation over `t`: `change` is applied to each pair that
    /// does not fail; results come back on later polls.
    fn operate(
        &self,
        what: &'static str,
        t: &InstanceTargets,
        id: &str,
        change: impl Fn(&mut SetState, &str, &str),
    ) -> Result<String, CloudError> {
        {
            let mut s = self.set();
            s.calls.push(what);
            s.targets.push(t.clone());
            if s.busy > 0 {
                s.busy -= 1;
                let foreign = format!("foreign-{}", s.busy);
                s.ops.insert(foreign, (2, Vec::new()));
                return Err(service(
                    "OperationInProgressException",
                    "Another Operation on StackSet rolecall-target-role is in progress",
                ));
            }
        }
        let pairs = self.pairs(t);
        let mut s = self.set();
        let mut results = Vec::new();
        for (account, region) in pairs {
            let failed = s.failing.get(&(account.clone(), region.clone())).cloned();
            if failed.is_none() {
                change(&mut s, &account, &region);
            }
            results.push(OperationResult {
                account,
                region,
                status: if failed.is_some() { "FAILED" } else { "SUCCEEDED" }.into(),
                reason: failed,
            });
        }
        s.ops.insert(id.to_owned(), (1, results));
        Ok(id.to_owned())
    }
}

fn instance_of(account: &str, region: &str, status: &str) -> model::InstanceInfo {
    model::InstanceInfo {
        account_id: AccountId::parse(account).unwrap(),
        region: region.into(),
        status: status.into(),
        detailed_status: Some("SUCCEEDED".into()),
        reason: None,
        stack_id: None,
    }
}

impl StackSets for Fake {
    async fn describe_stack_set(&self, _: &str, _: bool) -> Result<Option<model::StackSetInfo>, CloudError> {
        let mut s = self.set();
        s.calls.push("DescribeStackSet");
        Ok(s.set.clone())
    }

    async fn list_stack_instances(&self, _: &str, _: bool) -> Result<Vec<model::InstanceInfo>, CloudError> {
        let mut s = self.set();
        s.calls.push("ListStackInstances");
        Ok(s.instances.clone())
    }

    async fn create_stack_set(&self, request: &StackSetRequest) -> Result<(), CloudError> {
        let mut s = self.set();
        s.calls.push("CreateStackSet");
        s.created = Some(request.spec.clone());
        s.set = Some(model::StackSetInfo {
            name: request.spec.name.clone(),
            status: "ACTIVE".into(),
            tags: request.stack.tags.clone(),
        });
        Ok(())
    }

    async fn update_stack_set(
        &self,
        request: &StackSetRequest,
        t: &InstanceTargets,
        _: OperationPrefs,
        id: &str,
    ) -> Result<String, CloudError> {
        let id = self.operate("UpdateStackSet", t, id, |s, a, r| {
            if let Some(i) = s
                .instances
                .iter_mut()
                .find(|i| i.account_id.as_str() == a && i.region == r)
            {
                i.status = "CURRENT".into();
            }
        })?;
        self.set().set.as_mut().unwrap().tags = request.stack.tags.clone();
        Ok(id)
    }

    async fn instances(
        &self,
        kind: InstancesOp,
        _: &str,
        _: bool,
        t: &InstanceTargets,
        _: OperationPrefs,
        id: &str,
    ) -> Result<String, CloudError> {
        let stacks = &self.0.stacks;
        match kind {
            InstancesOp::Create => self.operate("CreateStackInstances", t, id, |s, a, r| {
                s.instances.push(instance_of(a, r, "CURRENT"));
                let n: usize = a.parse().unwrap();
                let mut state = State::default().with_stack(n, r, "CREATE_COMPLETE", BTreeMap::new());
                let stack = state
                    .stacks
                    .get_mut()
                    .unwrap()
                    .remove(&(a.to_owned(), r.to_owned()))
                    .unwrap();
                stacks.lock().unwrap().insert((a.to_owned(), r.to_owned()), stack);
            }),
            InstancesOp::Update => self.operate("UpdateStackInstances", t, id, |s, a, r| {
                if let Some(i) = s
                    .instances
                    .iter_mut()
                    .find(|i| i.account_id.as_str() == a && i.region == r)
                {
                    i.status = "CURRENT".into();
                }
            }),
            InstancesOp::Delete { .. } => self.operate("DeleteStackInstances", t, id, |s, a, r| {
                s.instances.retain(|i| !(i.account_id.as_str() == a && i.region == r));
                stacks.lock().unwrap().remove(&(a.to_owned(), r.to_owned()));
            }),
        }
    }

    async fn delete_stack_set(&self, _: &str, _: bool) -> Result<(), CloudError> {
        let mut s = self.set();
        s.calls.push("DeleteStackSet");
        s.set = None;
        Ok(())
    }

    async fn describe_operation(&self, _: &str, _: bool, id: &str) -> Result<OperationInfo, CloudError> {
        let mut s = self.set();
        s.calls.push("DescribeStackSetOperation");
        let op = s.ops.get_mut(id).expect("a known operation");
        if op.0 > 0 {
            op.0 -= 1;
            return Ok(OperationInfo {
                status: "RUNNING".into(),
                reason: None,
            });
        }
        let failed = op.1.iter().any(|r| r.status == "FAILED");
        Ok(OperationInfo {
            status: if failed { "FAILED" } else { "SUCCEEDED" }.into(),
            reason: failed.then(|| "One or more stack instances failed".into()),
        })
    }

    /// Two results a page.
    async fn operation_results(
        &self,
        _: &str,
        _: bool,
        id: &str,
        next: Option<String>,
    ) -> Result<(Vec<OperationResult>, Option<String>), CloudError> {
        let mut s = self.set();
        s.results_calls += 1;
        let all = &s.ops[id].1;
        let start: usize = next.map_or(0, |t| t.parse().unwrap());
        let page = all.iter().skip(start).take(2).cloned().collect();
        let more = (start + 2 < all.len()).then(|| (start + 2).to_string());
        Ok((page, more))
    }

    async fn running_operations(&self, _: &str, _: bool) -> Result<Vec<String>, CloudError> {
        let mut s = self.set();
        s.calls.push("ListStackSetOperations");
        Ok(s.ops
            .iter()
            .filter(|(_, op)| op.0 > 0)
            .map(|(id, _)| id.clone())
            .collect())
    }
}

fn set_spec(service: bool) -> model::StackSetSpec {
    model::StackSetSpec {
        name: "rolecall-target-role".into(),
        permission_model: if service {
            model::PermissionModel::ServiceManaged
        } else {
            model::PermissionModel::SelfManaged
        },
        delegated_admin: false,
        administration_role_arn: None,
        execution_role_name: None,
        auto_deployment: true,
        retain_stacks_on_account_removal: false,
        region_parallel: true,
        soft_failure_tolerance: true,
        max_concurrent_percentage: None,
        failure_tolerance_percentage: None,
    }
}

fn stackset_apply(
    fake: &Fake,
    spec: &model::StackSetSpec,
    targets: &[Target],
    prune: bool,
    ous: Vec<String>,
    filter: Option<(&'static str, Vec<String>)>,
) -> Vec<model::Outcome> {
    let desired = desired();
    let options = options();
    let run = StackSetRun {
        spec: spec.clone(),
        desired: &desired,
        options: &options,
        prefs: OperationPrefs {
            max_concurrent: 16,
            failure_tolerance: 5,
            region_parallel: true,
            soft_failure_tolerance: true,
            max_concurrent_percentage: None,
            failure_tolerance_percentage: None,
        },
        ous,
        account_filter: filter,
        left: false,
    };
    self::run(crate::stacksets::apply(
        fake,
        &settings(4),
        std::slice::from_ref(&run),
        targets,
        prune,
        &NoEventsSink,
    ))
    .unwrap()
}

fn summary(outcomes: &[model::Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| {
            format!(
                "{} {} {} {}",
                o.account_id,
                o.region,
                o.status,
                o.role_arn.as_deref().or(o.error.as_deref()).unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn a_stack_set_rollout_then_no_operation_when_unchanged() {
    let fake = Fake::default();
    let spec = set_spec(false);
    let out = stackset_apply(&fake, &spec, &targets(3), false, vec![], None);
    assert_eq!(out.len(), 6);
    assert!(
        out.iter().all(|o| o.status == model::Status::Created),
        "{:#?}",
        summary(&out)
    );
    // Every ARN is read from the instance's stack in its account.
    assert_eq!(
        out[0].role_arn.as_deref(),
        Some("arn:aws:iam::000000000001:role/RolecallTarget")
    );
    let calls = std::mem::take(&mut fake.set().calls);
    assert_eq!(
        calls,
        [
            "ListStackSetOperations",
            "DescribeStackSet",
            "CreateStackSet",
            "CreateStackInstances",
            "DescribeStackSetOperation",
            "DescribeStackSetOperation"
        ],
        "one operation for accounts that share their regions"
    );
    let out = stackset_apply(&fake, &spec, &targets(3), false, vec![], None);
    assert!(
        out.iter()
            .all(|o| o.status == model::Status::Unchanged && o.role_arn.is_some()),
        "{:#?}",
        summary(&out)
    );
    assert_eq!(
        fake.set().calls,
        ["ListStackSetOperations", "DescribeStackSet", "ListStackInstances"],
        "an unchanged inventory starts no stack-set operation"
    );
}

#[test]
fn a_running_operation_is_waited_for_and_failures_name_account_region_and_reason() {
    let fake = Fake::default();
    let spec = set_spec(false);
    stackset_apply(&fake, &spec, &targets(3), false, vec![], None);
    {
        let mut s = fake.set();
        s.set
            .as_mut()
            .unwrap()
            .tags
            .insert(model::TAG_FINGERPRINT.into(), "old".into());
        s.busy = 1;
        s.failing.insert(
            (id(2), "eu-west-1".into()),
            "Resource handler returned message: \"Access denied\"".into(),
        );
        s.calls.clear();
    }
    let out = stackset_apply(&fake, &spec, &targets(3), false, vec![], None);
    let got = summary(&out);
    assert_eq!(
        got[2],
        "000000000002 eu-west-1 failed stack instance in account 000000000002 region eu-west-1: FAILED: Resource handler returned message: \"Access denied\""
    );
    assert_eq!(
        out.iter().filter(|o| o.status == model::Status::Updated).count(),
        5,
        "{got:#?}"
    );
    let s = fake.set();
    assert_eq!(
        s.calls.iter().filter(|c| **c == "UpdateStackSet").count(),
        2,
        "retried after the running operation: {:?}",
        s.calls
    );
    assert!(
        s.results_calls >= 3,
        "six results in pages of two: {} calls",
        s.results_calls
    );
}

#[test]
fn outdated_instances_are_updated_and_orphans_pruned_only_when_asked() {
    let fake = Fake::default();
    let spec = set_spec(false);
    stackset_apply(&fake, &spec, &targets(3), false, vec![], None);
    {
        let mut s = fake.set();
        s.instances[0].status = "OUTDATED".into();
        s.calls.clear();
    }
    // Account 3 leaves the inventory: orphaned, left alone.
    let out = stackset_apply(&fake, &spec, &targets(2), false, vec![], None);
    let statuses: Vec<String> = out
        .iter()
        .map(|o| format!("{} {} {}", o.account_id, o.region, o.status))
        .collect();
    assert!(
        statuses.contains(&"000000000001 eu-west-1 updated".to_owned()),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| s.ends_with("orphaned")).count(),
        2,
        "{statuses:?}"
    );
    assert!(!fake.set().calls.contains(&"DeleteStackInstances"));
    let out = stackset_apply(&fake, &spec, &targets(2), true, vec![], None);
    assert_eq!(
        out.iter().filter(|o| o.status == model::Status::Deleted).count(),
        2,
        "{:#?}",
        summary(&out)
    );
    assert_eq!(fake.set().instances.len(), 4);
}

#[test]
fn service_managed_targets_ous_and_unreadable_outputs_get_no_arn() {
    let fake = Fake(Arc::new(State {
        denied: vec![id(2)],
        ..State::default()
    }));
    fake.set().ous.insert("ou-a".into(), vec![id(1), id(2), id(3)]);
    let spec = set_spec(true);
    let out = stackset_apply(
        &fake,
        &spec,
        &targets(2),
        false,
        vec!["ou-a".into()],
        Some(("DIFFERENCE", vec![id(3)])),
    );
    let t = &fake.set().targets[0];
    assert_eq!(
        (t.ous.as_slice(), t.accounts.is_empty()),
        (&["ou-a".to_owned()][..], true),
        "{t:?}"
    );
    assert_eq!(t.account_filter, Some(("DIFFERENCE", vec![id(3)])));
    let got = summary(&out);
    assert_eq!(
        got[2],
        "000000000002 eu-west-1 created outputs not read (cannot assume arn:aws:iam::000000000002:role/OrganizationAccountAccessRole: AccessDenied: User is not authorized to perform: sts:AssumeRole; the bootstrap role is missing or does not trust the caller (invited accounts have no OrganizationAccountAccessRole): create it once with the template from `rolecall bootstrap-template`, or set deploy.bootstrap_role); no role ARN recorded",
        "{got:#?}"
    );
    assert_eq!(out[2].role_arn, None, "never an invented ARN");
    assert!(out[0].role_arn.is_some());
}

// ---------------------------------------------------------------------------
// drift: verdicts per target, and CloudFormation's drift detection, which
// moto does not implement (HTTP 500).

use crate::drift::{CfnDrift, DriftOptions};

fn trust_of(accounts: &[&str]) -> serde_json::Value {
    let statements: Vec<serde_json::Value> = accounts
        .iter()
        .map(|a| serde_json::json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{a}:root")}, "Action": "sts:AssumeRole"}))
        .collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

fn wanted_role() -> planner::drift::ExpectedRole {
    planner::drift::ExpectedRole {
        name: "RolecallTarget".into(),
        trust: trust_of(&["111111111111"]),
        inline: BTreeMap::from([(
            "rolecall-policy".to_owned(),
            serde_json::json!({"Version": "2012-10-17", "Statement": []}),
        )]),
        managed: Default::default(),
        max_session_duration: 3600,
        permissions_boundary: None,
        partition: planner::partition::AWS,
    }
}

fn live(trust: serde_json::Value) -> model::LiveRole {
    let want = wanted_role();
    model::LiveRole {
        trust,
        inline: want.inline,
        managed: want.managed,
        max_session_duration: 3600,
        permissions_boundary: None,
    }
}

fn drift_options(cfn_drift: bool) -> DriftOptions {
    DriftOptions {
        cfn_drift,
        detections_at_once: 2,
        detection_timeout: Duration::from_millis(300),
        poll_interval: Duration::from_millis(5),
    }
}

fn run_drift(state: State, n: usize, options: &DriftOptions) -> (Arc<State>, crate::drift::DriftCheck) {
    let fake = Fake(Arc::new(state));
    let want = |_: &Desired, _: &str| Some(wanted_role());
    let check = run(crate::drift::drift(
        &fake,
        &settings(4),
        &[desired()],
        &east(n),
        &want,
        options,
        &NoEventsSink,
    ));
    (fake.0, check)
}

fn verdicts(check: &crate::drift::DriftCheck) -> Vec<String> {
    check
        .findings
        .iter()
        .map(|f| {
            let details: Vec<String> = f
                .details
                .iter()
                .map(|d| format!("{}: {} -> {}", d.path, d.expected, d.actual))
                .collect();
            format!(
                "{} {} {}{}",
                f.account_id,
                f.kind,
                f.reason,
                if details.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", details.join("; "))
                }
            )
        })
        .collect()
}

#[test]
fn drift_gives_one_verdict_per_target_and_never_writes() {
    let state = State {
        denied: vec![id(6)],
        ..State::default()
    }
    .with_stack(1, "us-east-1", "UPDATE_COMPLETE", ours())
    .with_stack(2, "us-east-1", "UPDATE_COMPLETE", old())
    .with_stack(4, "us-east-1", "UPDATE_ROLLBACK_FAILED", ours())
    .with_stack(5, "us-east-1", "CREATE_COMPLETE", ours())
    .with_stack(7, "us-east-1", "CREATE_COMPLETE", ours());
    {
        let mut roles = state.roles.lock().unwrap();
        roles.insert((id(1), "RolecallTarget".into()), live(trust_of(&["111111111111"])));
        roles.insert(
            (id(5), "RolecallTarget".into()),
            live(trust_of(&["111111111111", "999999999999"])),
        );
    }
    let (state, check) = run_drift(state, 7, &drift_options(false));
    let got = verdicts(&check);
    expect_test::expect![[r#"
        [
            "000000000001 IN_SYNC UPDATE_COMPLETE matches the inventory",
            "000000000002 STALE the stack's rolecall:fingerprint differs from the inventory's: the inventory changed and nobody applied, or someone changed the stack",
            "000000000003 MISSING no stack rolecall-target-role",
            "000000000004 UNHEALTHY UPDATE_ROLLBACK_FAILED",
            "000000000005 DRIFTED role RolecallTarget differs from the inventory (1 difference) [AssumeRolePolicyDocument.Statement: absent -> {\"Action\":[\"sts:AssumeRole\"],\"Effect\":\"Allow\",\"Principal\":{\"AWS\":[\"arn:aws:iam::999999999999:root\"]}}]",
            "000000000006 ERROR cannot assume arn:aws:iam::000000000006:role/OrganizationAccountAccessRole: AccessDenied: User is not authorized to perform: sts:AssumeRole; the bootstrap role is missing or does not trust the caller (invited accounts have no OrganizationAccountAccessRole): create it once with the template from `rolecall bootstrap-template`, or set deploy.bootstrap_role",
            "000000000007 DRIFTED role RolecallTarget differs from the inventory (1 difference) [role: RolecallTarget -> missing (deleted or renamed outside CloudFormation)]",
        ]
    "#]].assert_debug_eq(&got);
    let calls = state.calls.lock().unwrap();
    assert!(
        calls.iter().all(|c| ["DescribeStacks", "GetRole"].contains(&c.2)),
        "drift only reads: {calls:?}"
    );
}

/// `apply --revert-drift` on a role whose trust was widened and that got
/// an inline policy: where the REVERT_DRIFT change set puts it back (AWS),
/// no IAM call is made; where it changes nothing (moto), IAM puts back
/// exactly the two differences, and the role then matches.
#[test]
fn revert_drift_uses_cloudformation_first_then_iam_on_the_role_only() {
    let widened = || {
        let mut role = live(trust_of(&["111111111111", "999999999999"]));
        role.inline.insert("backdoor".into(), serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
        role
    };
    let revert = |revert_to: Option<model::LiveRole>| {
        let state = State {
            revert_to,
            ..State::default()
        }
        .with_stack(1, "us-east-1", "UPDATE_COMPLETE", ours());
        state
            .roles
            .lock()
            .unwrap()
            .insert((id(1), "RolecallTarget".into()), widened());
        let fake = Fake(Arc::new(state));
        let want = |_: &Desired, _: &str| Some(wanted_role());
        let outcomes = run(crate::revert_drift(
            &fake,
            &settings(4),
            &options(),
            &[desired()],
            &east(1),
            &want,
            &NoEventsSink,
        ));
        (fake.0, outcomes)
    };
    let expected_live = live(trust_of(&["111111111111"]));

    // CloudFormation's drift-aware change set does it.
    let (state, outcomes) = revert(Some(expected_live.clone()));
    assert_eq!(status(&outcomes[0]), "updated ");
    assert_eq!(outcomes[0].action, Some(Action::RevertDrift));
    let calls = state.calls(1, "us-east-1");
    assert!(calls.contains(&"ExecuteChangeSet"), "{calls:?}");
    assert_eq!(
        state.reverting.lock().unwrap().len(),
        1,
        "the change set is REVERT_DRIFT"
    );
    let iam = state.calls(1, "global");
    assert_eq!(iam, ["GetRole"], "only read again: {iam:?}");

    // An endpoint that ignores the mode: IAM, then the role matches.
    let (state, outcomes) = revert(None);
    assert_eq!(status(&outcomes[0]), "updated ");
    let changes: Vec<&str> = outcomes[0].changes.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(
        changes[changes.len() - 2..],
        ["DeleteRolePolicy backdoor", "UpdateAssumeRolePolicy"]
    );
    assert_eq!(state.calls(1, "global"), ["GetRole", "IAM", "IAM", "GetRole"]);
    let role = state.roles.lock().unwrap()[&(id(1), "RolecallTarget".to_owned())].clone();
    assert_eq!(planner::drift::compare_role(&wanted_role(), Some(&role)), Vec::new());

    // A stack that became stale meanwhile is left for a plain apply.
    let state = State::default().with_stack(1, "us-east-1", "UPDATE_COMPLETE", old());
    state
        .roles
        .lock()
        .unwrap()
        .insert((id(1), "RolecallTarget".into()), widened());
    let fake = Fake(Arc::new(state));
    let want = |_: &Desired, _: &str| Some(wanted_role());
    let outcomes = run(crate::revert_drift(
        &fake,
        &settings(4),
        &options(),
        &[desired()],
        &east(1),
        &want,
        &NoEventsSink,
    ));
    assert_eq!(outcomes[0].status, model::Status::ChangedSincePlan, "{outcomes:?}");
    assert!(fake.0.calls(1, "global").is_empty());
}

#[test]
fn cfn_drift_is_rate_limited_bounded_in_time_and_unavailable_is_said_once() {
    let drifted = CfnDrift::Drifted(vec![model::DriftDetail {
        path: "CloudFormation:Role/MaxSessionDuration".into(),
        expected: "3600".into(),
        actual: "7200".into(),
    }]);
    let state = in_sync(6);
    {
        let mut d = state.detections.lock().unwrap();
        d.insert((id(1), "us-east-1".into()), Detection::Answer(Ok(drifted)));
        d.insert((id(2), "us-east-1".into()), Detection::Hangs);
        d.insert(
            (id(3), "us-east-1".into()),
            Detection::Answer(Err(service("Throttling", "Rate exceeded"))),
        );
    }
    let (state, check) = run_drift(state, 6, &drift_options(true));
    let got = verdicts(&check);
    assert_eq!(
        got[0],
        "000000000001 DRIFTED role RolecallTarget differs from the inventory (1 difference) [CloudFormation:Role/MaxSessionDuration: 3600 -> 7200]"
    );
    assert_eq!(
        got[1],
        "000000000002 ERROR CloudFormation drift detection did not finish within 300ms"
    );
    assert_eq!(
        got[2],
        "000000000003 ERROR CloudFormation drift detection failed: Throttling: Rate exceeded"
    );
    assert!(got[3..].iter().all(|g| g.contains("IN_SYNC")), "{got:#?}");
    assert!(
        state.max_detecting.load(Ordering::SeqCst) <= 2,
        "at most 2 detections at once"
    );
    assert!(check.notes.is_empty());

    // An endpoint without drift detection: said once, not an error per target.
    let state = in_sync(4);
    for n in 1..=4 {
        state.detections.lock().unwrap().insert(
            (id(n), "us-east-1".into()),
            Detection::Answer(Err(CloudError::transport(
                "unhandled error (HTTP 500: <html>not implemented</html>)",
            ))),
        );
    }
    let (_, check) = run_drift(state, 4, &drift_options(true));
    assert!(
        check.findings.iter().all(|f| f.kind == model::DriftKind::InSync),
        "{:#?}",
        verdicts(&check)
    );
    assert_eq!(
        check.notes,
        ["CloudFormation drift detection unavailable here; the live-role comparison was used"]
    );
}

/// `n` accounts whose stack and live role are as the inventory wants.
fn in_sync(n: usize) -> State {
    let mut state = State::default();
    for n in 1..=n {
        state = state.with_stack(n, "us-east-1", "CREATE_COMPLETE", ours());
        state
            .roles
            .lock()
            .unwrap()
            .insert((id(n), "RolecallTarget".into()), live(trust_of(&["111111111111"])));
    }
    state
}

/// `--cfn-drift`: a detection that CloudFormation is still running costs a
/// timer, not the account's slot. With one slot, three detections (the
/// limit) run at once across accounts; holding the slot, one would.
#[test]
fn drift_detections_hold_no_slot_while_they_wait() {
    let state = in_sync(6);
    let fake = Fake(Arc::new(state));
    let want = |_: &Desired, _: &str| Some(wanted_role());
    let options = DriftOptions {
        detections_at_once: 3,
        detection_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(20),
        ..drift_options(true)
    };
    let check = run(crate::drift::drift(
        &fake,
        &settings(1),
        &[desired()],
        &east(6),
        &want,
        &options,
        &NoEventsSink,
    ));
    assert!(
        check.findings.iter().all(|f| f.kind == model::DriftKind::InSync),
        "{:#?}",
        verdicts(&check)
    );
    assert_eq!(
        fake.0.max_detecting.load(Ordering::SeqCst),
        3,
        "detections of several accounts at once with one slot"
    );
}

/// The unit of work inside an account is its stacks (role × region): two
/// roles of the catalog cost one AssumeRole per account, each stack gets
/// its own role's template and outcome.
#[test]
fn the_stacks_of_several_roles_share_one_assume_role_per_account() {
    let readonly = Desired {
        role: "readonly".into(),
        role_name: "RolecallReadOnly".into(),
        stack_name: "rolecall-readonly".into(),
        fingerprint: "e".repeat(64),
        ..desired()
    };
    let catalog = [desired(), readonly];
    let targets: Vec<Target> = targets(3)
        .into_iter()
        .map(|mut t| {
            t.roles = vec![
                model::TargetRole {
                    role: "default".into(),
                    regions: vec!["us-east-1".into()],
                },
                model::TargetRole {
                    role: "readonly".into(),
                    regions: vec!["eu-west-1".into()],
                },
            ];
            t
        })
        .collect();
    let fake = Fake(Arc::new(State::default()));
    let plan = run(plan(&fake, &settings(4), &catalog, &targets, &NoEventsSink));
    let rows: Vec<(String, String, String)> = plan
        .entries
        .iter()
        .map(|e| (e.role.clone(), e.region.clone(), e.action.to_string()))
        .collect();
    assert_eq!(rows.len(), 6);
    assert!(rows.contains(&("readonly".into(), "eu-west-1".into(), "create".into())));
    assert!(
        !rows
            .iter()
            .any(|(role, region, _)| role == "readonly" && region == "us-east-1")
    );
    assert_eq!(
        fake.0.assume_calls.lock().unwrap().len(),
        3,
        "one AssumeRole per account"
    );

    let fake = Fake(Arc::new(State::default()));
    let outcomes = run(apply(
        &fake,
        &settings(4),
        &options(),
        &catalog,
        &targets,
        None,
        &NoEventsSink,
    ));
    assert_eq!(
        fake.0.assume_calls.lock().unwrap().len(),
        3,
        "one AssumeRole per account"
    );
    let created: Vec<(String, String, String)> = outcomes
        .iter()
        .filter(|o| o.account_id.as_str() == id(1))
        .map(|o| (o.role.clone(), o.stack_name.clone(), status(o)))
        .collect();
    assert_eq!(
        created,
        [
            ("default".into(), "rolecall-target-role".into(), "created ".into()),
            ("readonly".into(), "rolecall-readonly".into(), "created ".into()),
        ]
    );
}
