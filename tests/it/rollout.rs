//! A rollout whose time does not grow with its accounts (issue 19): the
//! in-memory cloud answers with AWS's latencies on tokio's paused clock
//! (AssumeRole through rolecall's STS rate limit of 100/s, CreateStack 250
//! ms, DescribeStacks 80 ms, a stack CREATE_IN_PROGRESS for 45 s), so
//! 10,000 accounts run in seconds of real time and report the wall time
//! they would take. The physical limit is one stack's time plus what the
//! STS rate allows to start: 45 s + 10,000 / 100 per second = 145 s.

use std::time::Duration;

use executor::sim::{Latency, SimCloud};
use model::NoEvents;

/// (virtual wall time, DescribeStacks per account) of creating `n` stacks
/// with the inventory's defaults; every stack created.
fn rollout(n: usize, stack: Duration) -> (Duration, f64) {
    let (took, describes, outcomes) = run_rollout(n, stack, None);
    assert!(
        outcomes
            .iter()
            .all(|o| o.status == model::Status::Created && o.role_arn.is_some()),
        "{:?}",
        outcomes.iter().find(|o| o.status != model::Status::Created)
    );
    (took, describes)
}

/// The rollout, interrupted (as by Ctrl-C) `interrupt_after` into it if
/// given: its virtual wall time, DescribeStacks per account and outcomes.
fn run_rollout(n: usize, stack: Duration, interrupt_after: Option<Duration>) -> (Duration, f64, Vec<model::Outcome>) {
    let text =
        "version: 1\nsource_account: \"111111111111\"\nrole:\n  policy: none\naccounts:\n  - id: \"222222222222\"\n";
    let read = |_: &std::path::Path| Err(std::io::Error::other("no files"));
    let (inv, _) = planner::inventory::parse(text, std::path::Path::new("rollout.yaml"), &read).unwrap();
    let desired = planner::desired(&inv.roles[0]);
    let targets = executor::sim::targets(n);
    let settings = executor::Settings {
        bootstrap_role: "OrganizationAccountAccessRole".to_owned(),
        bootstrap_external_id: None,
        concurrency: inv.deploy.concurrency,
        max_in_flight: inv.deploy.max_in_flight,
        session_name: "rolecall-apply-1-1".to_owned(),
        partition: planner::partition::AWS,
        interrupt: Default::default(),
        host: "sim".to_owned(),
        process_alive: |_| true,
    };
    let options = executor::ApplyOptions {
        failure_tolerance: n,
        poll_interval: Duration::from_secs(5),
        max_wait: Duration::from_secs(1800),
        registered: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let cloud = SimCloud::aws(Latency::aws(stack));
    let interrupt = settings.interrupt.clone();
    let (outcomes, took) = runtime.block_on(async {
        if let Some(after) = interrupt_after {
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
            None,
            &NoEvents,
        )
        .await;
        (outcomes, start.elapsed())
    });
    assert_eq!(outcomes.len(), n);
    (took, cloud.describe_calls() as f64 / n as f64, outcomes)
}

/// Ctrl-C with thousands of stacks in flight: the run ends at once (not
/// when the last stack would be done); the stacks done are created, those
/// in progress say CloudFormation goes on with them, the accounts not
/// begun are not attempted; every account has exactly one outcome.
#[test]
fn an_interrupt_with_thousands_of_stacks_in_flight_ends_the_run_at_once() {
    let (took, _, outcomes) = run_rollout(10_000, Duration::from_secs(45), Some(Duration::from_secs(50)));
    assert!(
        took < Duration::from_secs(52),
        "the run went on for {took:?} after the interrupt at 50 s"
    );
    let count = |f: &dyn Fn(&model::Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let created = count(&|o| o.status == model::Status::Created && o.role_arn.is_some());
    let waiting = count(&|o| {
        o.status == model::Status::Failed
            && o.error
                .as_deref()
                .is_some_and(|e| e.contains("interrupted while waiting") && e.contains("goes on"))
    });
    let not_attempted = count(&|o| o.status == model::Status::NotAttempted);
    assert_eq!(
        created + waiting + not_attempted,
        10_000,
        "every account has one of the three"
    );
    assert!(
        created > 0 && waiting > 1000 && not_attempted > 1000,
        "{created} created, {waiting} in progress, {not_attempted} not attempted"
    );
}

#[test]
fn ten_thousand_accounts_with_45_s_stacks_finish_near_the_physical_limit() {
    let stack = Duration::from_secs(45);
    let n = 10_000;
    let limit = stack + Duration::from_secs_f64(n as f64 / executor::limit::STS_PER_SECOND as f64);
    let (took, describes) = rollout(n, stack);
    println!(
        "{n} accounts, {stack:?} stacks: {took:?} (physical limit {limit:?}), {describes:.2} DescribeStacks per account"
    );
    assert!(
        took.as_secs_f64() <= 1.2 * limit.as_secs_f64(),
        "{took:?} is more than 1.2 × the physical limit {limit:?}"
    );
    // Polling every 5 s from the create, a 45 s stack is read 10 times; the
    // stacks created after the run's first finished are read once or twice
    // (their first read waits as long as the fastest took).
    assert!(describes <= 7.0, "{describes:.2} DescribeStacks per account");
}

/// The same on moto, through our proxy's slow-stack mode (a created stack
/// reads CREATE_IN_PROGRESS without outputs for 3 s): with concurrency 2,
/// far more than 2 stacks are in progress at once (0.3 held a slot per
/// waiting account: never more than 2), every stack ends created with its
/// ARN read from the outputs once it was done, and the next plan is a
/// no-op.
#[test]
fn on_moto_waiting_stacks_hold_no_slot() {
    let moto = tests::Moto::start();
    let proxy = tests::proxy::Proxy::start(moto.port);
    let rt = tests::runtime();
    let seeded =
        rt.block_on(async { tests::seed_org(&moto.sdk_config().await, &[], &tests::member_org(24, "prod")).await });
    let dir = tests::write_inventory("slow", "").parent().unwrap().to_path_buf();
    let inv = dir.join("slow.yaml");
    std::fs::write(
        &inv,
        format!(
            "version: 1\nsource_account: \"{}\"\nrole:\n  policy: none\n  managed_policy_arns: [ReadOnlyAccess]\ndeploy:\n  regions: [us-east-1]\n  concurrency: 2\norganization:\n  ous: [{}]\n",
            tests::MANAGEMENT_ACCOUNT,
            seeded.ou("Root/Members")
        ),
    )
    .unwrap();
    let inv_s = inv.to_str().unwrap();
    proxy.slow_stacks(Duration::from_secs(3));
    proxy.take_calls();
    let applied = tests::rolecall_in(
        &dir,
        &proxy.url(),
        &["apply", "-i", inv_s, "--yes", "--poll-interval", "0.5"],
    );
    applied.expect_code(0);
    assert!(applied.stdout.contains("Apply: 24 created"), "{}", applied.stdout);
    let in_progress = proxy.max_stacks_in_progress();
    assert!(
        in_progress > 2,
        "at most {in_progress} stacks in progress at once with concurrency 2"
    );
    let describes = proxy.calls_of("DescribeStacks") as f64 / 24.0;
    assert!(describes <= 9.0, "{describes:.1} DescribeStacks per account");
    let registry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("rolecall-registry-slow.json")).unwrap()).unwrap();
    let entries = registry["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 24);
    assert!(entries.iter().all(|e| {
        e["role_arn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":role/RolecallTarget"))
    }));
    tests::rolecall_in(&dir, &proxy.url(), &["plan", "-i", inv_s, "--detailed-exitcode"]).expect_code(0);
}
