//! An in-memory cloud for scale runs of the pipelines in one process
//! (`cargo run --release -p executor --features sim --example scale`, and
//! the rollout test). By default it answers at once: what rolecall itself
//! costs per account, with no emulator and no network in the way. With
//! `SimCloud::aws` it answers with AWS's latencies on tokio's clock
//! (AssumeRole through the run's STS rate limit, each call taking its time,
//! a created stack CREATE_IN_PROGRESS for as long as a stack takes), so that
//! a 10,000-account rollout runs on a paused clock in seconds of real time
//! and says what its wall time would be. Only the services plan and apply
//! use are simulated (stacks, change sets); of those, what a create-only
//! rollout does not call answers an error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::{AccountId, Observed, StackInfo};
use tokio::time::Instant;

use crate::cloud::{
    ChangeSetInfo, ChangeSetSummary, ChangeSets, Cloud, CloudError, OrgAccount, Organization, StackRequest, Stacks,
};
use crate::limit::{self, RateLimit};

/// A stack, and when its operation finishes.
#[derive(Clone, Debug)]
struct SimStack {
    info: StackInfo,
    ready_at: Instant,
}

type StackMap = Arc<Mutex<HashMap<(String, String), SimStack>>>;

/// How long AWS takes: each call, and a stack's create.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    pub assume_role: Duration,
    pub create_stack: Duration,
    pub describe_stacks: Duration,
    /// From CreateStack until the stack is CREATE_COMPLETE.
    pub stack: Duration,
}

impl Latency {
    /// What AWS answers in, as measured from a client in the same region
    /// (BENCHMARKS.md's table): AssumeRole 60 ms, CreateStack 250 ms,
    /// DescribeStacks 80 ms; a role stack takes `stack` (30–60 s).
    pub fn aws(stack: Duration) -> Latency {
        Latency {
            assume_role: Duration::from_millis(60),
            create_stack: Duration::from_millis(250),
            describe_stacks: Duration::from_millis(80),
            stack,
        }
    }
}

/// `n` accounts (`member-0` …, ids from 100000000000) with the role
/// `default` in us-east-1: the scale runs' targets.
pub fn targets(n: usize) -> Vec<model::Target> {
    (0..n)
        .map(|i| {
            model::Target {
                account_id: AccountId::parse(&format!("{:012}", 100_000_000_000u64 + i as u64)).expect("a 12-digit id"),
                account_name: format!("member-{i}"),
                regions: vec!["us-east-1".to_owned()],
                source: model::TargetSource::Inventory,
                parent: None,
                roles: Vec::new(),
            }
            .with_role("default")
        })
        .collect()
}

/// Every account's stacks, by (account, region).
#[derive(Clone, Debug, Default)]
pub struct SimCloud {
    stacks: StackMap,
    latency: Latency,
    /// The run's STS rate limit (with AWS latencies only).
    sts: Option<Arc<RateLimit>>,
    describes: Arc<AtomicUsize>,
    /// Every created stack rolls back (a bad template).
    failing: bool,
}

/// Why a stack of a `failing` cloud rolled back.
pub const FAILURE: &str = "Resource handler returned message: \"MalformedPolicyDocument\" (simulated)";

impl SimCloud {
    /// AWS's latencies on tokio's clock, AssumeRole at rolecall's STS rate.
    pub fn aws(latency: Latency) -> SimCloud {
        SimCloud {
            latency,
            sts: Some(Arc::new(RateLimit::per_second(
                limit::STS_PER_SECOND,
                limit::STS_PER_SECOND,
            ))),
            ..SimCloud::default()
        }
    }

    /// Every stack created rolls back once its time is up
    /// (ROLLBACK_COMPLETE, with `FAILURE` among its events): a template
    /// that fails in every account.
    pub fn failing(self) -> SimCloud {
        SimCloud { failing: true, ..self }
    }

    /// A stack of someone else's, complete, in `account`'s `region`: made
    /// out of band, e.g. between a plan and its apply.
    pub fn existing(&self, account: &AccountId, region: &str, stack_name: &str) {
        let info = StackInfo {
            stack_id: planner::partition::AWS.stack_arn(region, account.as_str(), stack_name, "other"),
            status: "CREATE_COMPLETE".to_owned(),
            ..StackInfo::default()
        };
        let ready_at = Instant::now();
        self.stacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((account.to_string(), region.to_owned()), SimStack { info, ready_at });
    }

    /// Stacks the simulated accounts have.
    pub fn stack_count(&self) -> usize {
        self.stacks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// DescribeStacks calls answered so far.
    pub fn describe_calls(&self) -> usize {
        self.describes.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct SimSession {
    account: String,
    stacks: StackMap,
    latency: Latency,
    describes: Arc<AtomicUsize>,
    failing: bool,
}

fn not_simulated() -> CloudError {
    CloudError::transport("not simulated".to_owned())
}

/// A call's time on tokio's clock (none when zero: the default sim answers
/// at once and never yields).
async fn takes(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

impl Cloud for SimCloud {
    type Session = SimSession;

    async fn assume_role(
        &self,
        account: &AccountId,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<SimSession, CloudError> {
        if let Some(sts) = &self.sts {
            sts.acquire().await;
        }
        takes(self.latency.assume_role).await;
        Ok(SimSession {
            account: account.to_string(),
            stacks: self.stacks.clone(),
            latency: self.latency,
            describes: self.describes.clone(),
            failing: self.failing,
        })
    }
}

impl Organization for SimCloud {
    async fn describe_account(&self, _: &AccountId) -> Result<Option<OrgAccount>, CloudError> {
        Ok(None)
    }

    async fn list_child_ous(&self, _: &str) -> Result<Vec<String>, CloudError> {
        Ok(Vec::new())
    }

    async fn list_accounts_for_parent(&self, _: &str) -> Result<Vec<OrgAccount>, CloudError> {
        Ok(Vec::new())
    }

    async fn list_account_tags(&self, _: &AccountId) -> Result<Vec<(String, String)>, CloudError> {
        Ok(Vec::new())
    }

    async fn list_organization_accounts(&self) -> Result<Vec<OrgAccount>, CloudError> {
        Ok(Vec::new())
    }
}

impl Stacks for SimSession {
    async fn describe_stack(&self, region: &str, _: &str) -> Result<Observed, CloudError> {
        takes(self.latency.describe_stacks).await;
        self.describes.fetch_add(1, Ordering::Relaxed);
        let mut stacks = self.stacks.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match stacks.get_mut(&(self.account.clone(), region.to_owned())) {
            Some(s) => {
                // Its time is up (at once without latencies): done.
                if s.info.status == "CREATE_IN_PROGRESS" && Instant::now() >= s.ready_at {
                    if self.failing {
                        s.info.status = "ROLLBACK_COMPLETE".to_owned();
                    } else {
                        s.info.status = "CREATE_COMPLETE".to_owned();
                        s.info.outputs = [(
                            "RoleArn".to_owned(),
                            planner::partition::AWS.role_arn(&self.account, "RolecallTarget"),
                        )]
                        .into();
                    }
                }
                Observed::Present(s.info.clone())
            }
            None => Observed::Absent,
        })
    }

    async fn create_stack(&self, region: &str, request: &StackRequest, _: &str) -> Result<String, CloudError> {
        takes(self.latency.create_stack).await;
        let mut stacks = self.stacks.lock().unwrap_or_else(|e| e.into_inner());
        let key = (self.account.clone(), region.to_owned());
        if stacks.contains_key(&key) {
            return Err(CloudError::service("AlreadyExistsException", "Stack already exists"));
        }
        let stack_id = planner::partition::AWS.stack_arn(region, &self.account, &request.stack_name, "sim");
        let info = StackInfo {
            stack_id: stack_id.clone(),
            status: "CREATE_IN_PROGRESS".to_owned(),
            tags: request.tags.clone(),
            parameters: request.parameters.clone(),
            ..StackInfo::default()
        };
        stacks.insert(
            key,
            SimStack {
                info,
                ready_at: Instant::now() + self.latency.stack,
            },
        );
        Ok(stack_id)
    }

    async fn update_stack(&self, _: &str, _: &StackRequest, _: &str) -> Result<(), CloudError> {
        Err(not_simulated())
    }

    async fn get_template(&self, _: &str, _: &str) -> Result<String, CloudError> {
        Err(not_simulated())
    }

    async fn delete_stack(&self, _: &str, _: &str, _: &str) -> Result<(), CloudError> {
        Err(not_simulated())
    }

    async fn failure_reasons(&self, _: &str, _: &str) -> Result<Vec<String>, CloudError> {
        Ok(if self.failing {
            vec![FAILURE.to_owned()]
        } else {
            Vec::new()
        })
    }
}

impl ChangeSets for SimSession {
    async fn create_change_set(&self, _: &str, _: &StackRequest, _: &str, _: &str) -> Result<(), CloudError> {
        Err(not_simulated())
    }

    async fn list_change_sets(&self, _: &str, _: &str) -> Result<Vec<ChangeSetSummary>, CloudError> {
        Ok(Vec::new())
    }

    async fn describe_change_set(&self, _: &str, _: &str, _: &str) -> Result<ChangeSetInfo, CloudError> {
        Err(not_simulated())
    }

    async fn execute_change_set(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), CloudError> {
        Err(not_simulated())
    }

    async fn delete_change_set(&self, _: &str, _: &str, _: &str) -> Result<(), CloudError> {
        Err(not_simulated())
    }
}
