//! Orchestration against a fake cloud: what moto cannot show (denied
//! AssumeRole, disabled regions) and what it cannot measure (calls per
//! account, the concurrency bound).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::{AccountId, Action, Desired, Event, EventSink, Observed, OrgDiscovery, StackInfo, Target, TargetSource};

use crate::cloud::{AccountSession, Cloud, CloudError, OrgAccount};
use crate::{Settings, discover, plan};

#[derive(Default)]
struct State {
    /// Accounts whose bootstrap role cannot be assumed.
    denied: Vec<String>,
    /// (account, region) → a failure of DescribeStacks.
    region_errors: BTreeMap<(String, String), CloudError>,
    /// (account, region) → the stack there.
    stacks: BTreeMap<(String, String), StackInfo>,
    /// parent → (child OUs, accounts).
    tree: BTreeMap<String, (Vec<String>, Vec<OrgAccount>)>,
    tags: BTreeMap<String, Vec<(String, String)>>,
    assume_calls: Mutex<Vec<String>>,
    describe_calls: AtomicUsize,
    tag_calls: AtomicUsize,
    /// Accounts between AssumeRole and their last DescribeStacks.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[derive(Clone, Default)]
struct Fake(Arc<State>);

struct FakeSession {
    state: Arc<State>,
    account: String,
    regions_left: AtomicUsize,
}

fn service(code: &str, message: &str) -> CloudError {
    CloudError::Service {
        code: code.into(),
        message: message.into(),
    }
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
        assert_eq!(
            role_arn,
            format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole")
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
        let regions = 2;
        Ok(FakeSession {
            state: s.clone(),
            account: account.to_string(),
            regions_left: AtomicUsize::new(regions),
        })
    }

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
}

impl AccountSession for FakeSession {
    async fn describe_stack(&self, region: &str, _: &str) -> Result<Observed, CloudError> {
        let s = &self.state;
        s.describe_calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        if self.regions_left.fetch_sub(1, Ordering::SeqCst) == 1 {
            s.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        let key = (self.account.clone(), region.to_owned());
        if let Some(e) = s.region_errors.get(&key) {
            return Err(e.clone());
        }
        Ok(s.stacks.get(&key).cloned().map_or(Observed::Absent, Observed::Present))
    }
}

fn id(n: usize) -> String {
    format!("{n:012}")
}

fn targets(n: usize) -> Vec<Target> {
    (1..=n)
        .map(|i| Target {
            account_id: AccountId::parse(&id(i)).unwrap(),
            account_name: format!("acct-{i}"),
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            source: TargetSource::Inventory,
            parent: None,
        })
        .collect()
}

fn desired() -> Desired {
    Desired {
        stack_name: "rolecall-target-role".into(),
        template_body: "{}".into(),
        parameters: BTreeMap::new(),
        tags: BTreeMap::new(),
        fingerprint: "f".repeat(64),
        output_key: "RoleArn".into(),
    }
}

fn settings(concurrency: usize) -> Settings {
    Settings {
        bootstrap_role: "OrganizationAccountAccessRole".into(),
        bootstrap_external_id: None,
        concurrency,
        session_name: "rolecall-plan-test".into(),
    }
}

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
    let plan = run(plan(&fake, &settings(4), &desired(), &targets(40), &events));
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
    state.stacks.insert(
        (id(1), "us-east-1".into()),
        StackInfo {
            stack_id: "s".into(),
            status: "UPDATE_ROLLBACK_FAILED".into(),
            tags: [(model::TAG_MANAGED_BY.to_owned(), "rolecall".to_owned())].into(),
            ..StackInfo::default()
        },
    );
    let fake = Fake(Arc::new(state));
    let events = Recorder::default();
    let plan = run(plan(&fake, &settings(16), &desired(), &targets(4), &events));
    assert_eq!(plan.errors.len(), 2, "{:#?}", plan.errors);
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
    // Everything else was planned: 4 accounts × 2 regions − 2 (denied) − 1 (region).
    assert_eq!(plan.entries.len(), 5);
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
        2
    );
}

fn org_account(n: usize, status: &str) -> OrgAccount {
    OrgAccount {
        id: id(n),
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
        ids(run(discover(&fake, &org(&["r-root"], true, &[]))).unwrap()),
        ["1@r-root", "2@ou-a", "4@ou-a1", "5@ou-b"]
    );
    assert_eq!(
        ids(run(discover(&fake, &org(&["r-root"], false, &[]))).unwrap()),
        ["1@r-root"]
    );
    // Overlapping OUs list each account once.
    assert_eq!(
        ids(run(discover(&fake, &org(&["ou-a", "ou-a1"], true, &[]))).unwrap()),
        ["2@ou-a", "4@ou-a1"]
    );
    assert_eq!(
        fake.0.tag_calls.load(Ordering::SeqCst),
        0,
        "tags are read only for a tag filter"
    );
    let tagged = run(discover(&fake, &org(&["r-root"], true, &[("env", "prod")]))).unwrap();
    assert_eq!(fake.0.tag_calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        tagged.iter().find(|a| a.id.as_str() == id(5)).unwrap().tags["team"],
        "x"
    );
    let err = run(discover(&fake, &org(&["ou-missing"], true, &[]))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot list accounts under ou-missing: ParentNotFoundException: ou-missing not found"
    );
}
