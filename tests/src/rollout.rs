//! A rollout in the in-memory cloud with AWS's latencies on tokio's paused
//! clock (issue 19): AssumeRole through rolecall's STS rate limit of 100/s,
//! CreateStack 250 ms, DescribeStacks 80 ms, a stack CREATE_IN_PROGRESS for
//! as long as a stack takes. 10,000 accounts run in a second or two of
//! real time and report the wall time they would take. Used by the rollout
//! tests and by `just bench`.

use std::time::{Duration, Instant};

use executor::sim::{Latency, SimCloud};
use model::NoEvents;

/// What may go wrong in a rollout, and the settings that bound it.
#[derive(Default)]
pub struct Run {
    /// Interrupted (as by Ctrl-C) this far into the run.
    pub interrupt_after: Option<Duration>,
    /// Every stack rolls back once its time is up (a bad template).
    pub failing: bool,
    /// `--failure-tolerance` (default: every account may fail).
    pub failure_tolerance: Option<usize>,
    /// `deploy.max_in_flight` (default: the inventory's).
    pub max_in_flight: Option<usize>,
    /// `--max-wait` (default 30 min).
    pub max_wait: Option<Duration>,
    /// Apply what a plan confirmed: the plan saw no stack in any account
    /// but the last `unobserved` ones (it could not read those), and the
    /// first `created_meanwhile` accounts got a stack of someone else's
    /// between the plan and the apply.
    pub confirmed_plan: Option<ConfirmedPlan>,
}

/// See `Run::confirmed_plan`.
#[derive(Clone, Copy, Default)]
pub struct ConfirmedPlan {
    pub created_meanwhile: usize,
    pub unobserved: usize,
}

/// What a rollout took.
pub struct Rollout {
    /// Its wall time on the paused clock: what it would take on AWS.
    pub took: Duration,
    pub describes_per_account: f64,
    pub outcomes: Vec<model::Outcome>,
    /// The real time it took to simulate.
    pub real: Duration,
    /// Stacks in the accounts at the end.
    pub stacks: usize,
}

/// One stack's time plus what rolecall's STS rate allows to start.
pub fn physical_limit(accounts: usize, stack: Duration) -> Duration {
    stack + Duration::from_secs_f64(accounts as f64 / executor::limit::STS_PER_SECOND as f64)
}

/// `n` accounts' stacks created with the inventory's defaults, each taking
/// `stack`, as `run` says.
pub fn rollout(n: usize, stack: Duration, run: Run) -> Rollout {
    let text =
        "version: 1\nsource_account: \"111111111111\"\nrole:\n  policy: none\naccounts:\n  - id: \"222222222222\"\n";
    let read = |_: &std::path::Path| Err(std::io::Error::other("no files"));
    let (inv, _) = planner::inventory::parse(text, std::path::Path::new("rollout.yaml"), &read)
        .expect("the rollout's inventory is valid");
    let desired = planner::desired(&inv.roles[0]);
    let targets = executor::sim::targets(n);
    let settings = executor::Settings {
        bootstrap_role: "OrganizationAccountAccessRole".to_owned(),
        bootstrap_external_id: None,
        concurrency: inv.deploy.concurrency,
        max_in_flight: run.max_in_flight.unwrap_or(inv.deploy.max_in_flight),
        session_name: "rolecall-apply-1-1".to_owned(),
        partition: planner::partition::AWS,
        interrupt: Default::default(),
        host: "sim".to_owned(),
        process_alive: |_| true,
    };
    let options = executor::ApplyOptions {
        failure_tolerance: run.failure_tolerance.unwrap_or(n),
        poll_interval: Duration::from_secs(5),
        max_wait: run.max_wait.unwrap_or(Duration::from_secs(1800)),
        registered: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let cloud = SimCloud::aws(Latency::aws(stack));
    let cloud = if run.failing { cloud.failing() } else { cloud };
    let planned = run.confirmed_plan.map(|plan| {
        for t in &targets[..plan.created_meanwhile] {
            cloud.existing(&t.account_id, "us-east-1", &desired.stack_name);
        }
        let observed = targets.len().saturating_sub(plan.unobserved);
        targets[..observed]
            .iter()
            .map(|t| {
                let key = (t.account_id.clone(), desired.role.clone(), "us-east-1".to_owned());
                (key, model::Observed::Absent)
            })
            .collect::<executor::ObservedMap>()
    });
    let interrupt = settings.interrupt.clone();
    let real = Instant::now();
    let (outcomes, took) = runtime.block_on(async {
        if let Some(after) = run.interrupt_after {
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                interrupt.trigger();
            });
        }
        let start = tokio::time::Instant::now();
        let outcomes = executor::apply(
            &cloud,
            &settings,
            &options,
            std::slice::from_ref(&desired),
            &targets,
            planned.as_ref(),
            &NoEvents,
        )
        .await;
        (outcomes, start.elapsed())
    });
    assert_eq!(outcomes.len(), n, "an outcome per account");
    Rollout {
        stacks: cloud.stack_count(),
        took,
        describes_per_account: cloud.describe_calls() as f64 / n as f64,
        outcomes,
        real: real.elapsed(),
    }
}
