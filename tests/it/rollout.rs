//! A rollout whose time does not grow with its accounts (issue 19): the
//! in-memory cloud answers with AWS's latencies on tokio's paused clock
//! (AssumeRole through rolecall's STS rate limit of 100/s, CreateStack 250
//! ms, DescribeStacks 80 ms, a stack CREATE_IN_PROGRESS for 45 s), so
//! 10,000 accounts run in seconds of real time and report the wall time
//! they would take. The physical limit is one stack's time plus what the
//! STS rate allows to start: 45 s + 10,000 / 100 per second = 145 s.

use std::time::Duration;

use tests::rollout::{Run, physical_limit};

/// (virtual wall time, DescribeStacks per account) of creating `n` stacks
/// with the inventory's defaults; every stack created.
fn rollout(n: usize, stack: Duration) -> (Duration, f64) {
    let (took, describes, outcomes) = run_rollout(n, stack, Run::default());
    assert!(
        outcomes
            .iter()
            .all(|o| o.status == model::Status::Created && o.role_arn.is_some()),
        "{:?}",
        outcomes.iter().find(|o| o.status != model::Status::Created)
    );
    (took, describes)
}

/// The rollout as `run` says: its virtual wall time, DescribeStacks per
/// account and outcomes.
fn run_rollout(n: usize, stack: Duration, run: Run) -> (Duration, f64, Vec<model::Outcome>) {
    let r = tests::rollout::rollout(n, stack, run);
    (r.took, r.describes_per_account, r.outcomes)
}

/// Ctrl-C with thousands of stacks in flight: the run ends at once (not
/// when the last stack would be done); the stacks done are created, those
/// in progress say CloudFormation goes on with them, the accounts not
/// begun are not attempted; every account has exactly one outcome.
#[test]
fn an_interrupt_with_thousands_of_stacks_in_flight_ends_the_run_at_once() {
    let run = Run {
        interrupt_after: Some(Duration::from_secs(50)),
        ..Run::default()
    };
    let (took, _, outcomes) = run_rollout(10_000, Duration::from_secs(45), run);
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

/// A template that fails in every account, with thousands in flight:
/// failures come back only after a stack's time, so with the default
/// `max_in_flight` the accounts started meanwhile (STS rate × stack time)
/// fail too, as the docs say; no account starts after the tolerance is
/// exceeded, and the run ends about one stack's time later, not after all
/// accounts. With `max_in_flight` at `concurrency` (0.3's blast radius),
/// at most that many accounts fail.
#[test]
fn a_bad_template_with_thousands_in_flight_stops_at_the_failure_tolerance() {
    let n = 10_000;
    let stack = Duration::from_secs(45);
    let sts = executor::limit::STS_PER_SECOND as f64;
    let count = |outcomes: &[model::Outcome], status| outcomes.iter().filter(|o| o.status == status).count();
    let (took, _, outcomes) = run_rollout(
        n,
        stack,
        Run {
            failing: true,
            failure_tolerance: Some(10),
            ..Run::default()
        },
    );
    let failed = count(&outcomes, model::Status::Failed);
    let skipped = count(&outcomes, model::Status::NotAttempted);
    assert_eq!(failed + skipped, n, "every account failed or was not attempted");
    assert!(
        outcomes.iter().filter(|o| o.status == model::Status::Failed).all(|o| o
            .error
            .as_deref()
            .is_some_and(|e| e.contains("ROLLBACK_COMPLETE") && e.contains(executor::sim::FAILURE))),
        "every failure says why"
    );
    assert!(
        outcomes
            .iter()
            .filter(|o| o.status == model::Status::NotAttempted)
            .all(|o| o
                .error
                .as_deref()
                .is_some_and(|e| e.contains("more than 10 account(s) failed"))),
        "the others say why they were not attempted"
    );
    // Started before the failures came back: a stack's time and a poll
    // interval at the STS rate, plus its burst and the accounts already
    // holding a slot; the blast radius the docs give.
    let radius = ((stack.as_secs_f64() + 5.0) * sts) as usize + executor::limit::STS_PER_SECOND as usize + 64;
    assert!(
        failed > 10 && failed <= radius,
        "{failed} accounts failed; at most {radius} can start before the first failure is seen"
    );
    assert!(skipped >= n - radius, "{skipped} not attempted");
    // The last ones started fail a stack's time after their start.
    let bound = Duration::from_secs_f64(failed as f64 / sts) + stack * 2;
    assert!(took <= bound, "the run took {took:?}, more than {bound:?}");
    println!("bad template, default max_in_flight: {failed} failed, {skipped} not attempted, {took:?}");

    // max_in_flight = concurrency: 0.3's blast radius.
    let concurrency = 64;
    let (_, _, outcomes) = run_rollout(
        n,
        stack,
        Run {
            failing: true,
            failure_tolerance: Some(10),
            max_in_flight: Some(concurrency),
            ..Run::default()
        },
    );
    let failed = count(&outcomes, model::Status::Failed);
    assert!(
        failed <= concurrency + 10,
        "{failed} accounts failed with max_in_flight {concurrency}"
    );
    assert_eq!(failed + count(&outcomes, model::Status::NotAttempted), n);
    println!("bad template, max_in_flight {concurrency}: {failed} failed");
}

/// `--max-wait` with thousands of stacks in flight: a stack that outlasts
/// it ends as a timeout that says CloudFormation goes on with it, at its
/// own deadline (not after the others), and the run ends when the last
/// account's deadline passes.
#[test]
fn max_wait_ends_each_stack_at_its_deadline_with_thousands_in_flight() {
    let n = 10_000;
    let max_wait = Duration::from_secs(30);
    let run = Run {
        max_wait: Some(max_wait),
        ..Run::default()
    };
    let (took, describes, outcomes) = run_rollout(n, Duration::from_secs(45), run);
    assert!(
        outcomes.iter().all(|o| o.status == model::Status::Failed
            && o.error.as_deref().is_some_and(|e| e.contains("timed out after 30s")
                && e.contains("goes on")
                && e.contains("--max-wait"))),
        "{:?}",
        outcomes.first()
    );
    // The last account starts at n / STS rate; its deadline is 30 s later.
    let starts = Duration::from_secs_f64(n as f64 / executor::limit::STS_PER_SECOND as f64);
    let bound = starts + max_wait + Duration::from_secs(5);
    assert!(took <= bound, "the run took {took:?}, more than {bound:?}");
    // Read every 5 s until the deadline: no busy polling.
    assert!(describes <= 8.0, "{describes:.2} DescribeStacks per account");
}

/// The confirmed-plan rules with thousands in flight: apply does what the
/// plan showed and nothing else. 100 accounts got a stack of someone
/// else's after the plan (changed since the plan: left alone), 100 were
/// not observed by it (not attempted), the rest are created, at the
/// physical limit.
#[test]
fn a_confirmed_plan_is_kept_with_thousands_in_flight() {
    let n = 10_000;
    let stack = Duration::from_secs(45);
    let plan = tests::rollout::ConfirmedPlan {
        created_meanwhile: 100,
        unobserved: 100,
    };
    let r = tests::rollout::rollout(
        n,
        stack,
        Run {
            confirmed_plan: Some(plan),
            ..Run::default()
        },
    );
    let count = |status| r.outcomes.iter().filter(|o| o.status == status).count();
    assert_eq!(count(model::Status::ChangedSincePlan), 100);
    assert_eq!(count(model::Status::NotAttempted), 100);
    assert_eq!(count(model::Status::Created), n - 200);
    assert!(
        r.outcomes
            .iter()
            .filter(|o| o.status == model::Status::ChangedSincePlan)
            .all(|o| o.error.as_deref().is_some_and(|e| e.contains("but one exists now"))),
        "{:?}",
        r.outcomes.iter().find(|o| o.status == model::Status::ChangedSincePlan)
    );
    // One stack per account that has one: none replaced, none twice.
    assert_eq!(r.stacks, n - 100);
    let limit = physical_limit(n, stack);
    assert!(
        r.took.as_secs_f64() <= 1.2 * limit.as_secs_f64(),
        "{:?} is more than 1.2 × {limit:?}",
        r.took
    );
}

#[test]
fn ten_thousand_accounts_with_45_s_stacks_finish_near_the_physical_limit() {
    let stack = Duration::from_secs(45);
    let n = 10_000;
    let limit = physical_limit(n, stack);
    let (took, describes) = rollout(n, stack);
    println!(
        "{n} accounts, {stack:?} stacks: {took:?} (physical limit {limit:?}), {describes:.2} DescribeStacks per account"
    );
    assert!(
        took.as_secs_f64() <= 1.2 * limit.as_secs_f64(),
        "{took:?} is more than 1.2 × the physical limit {limit:?}"
    );
    // Polling every 5 s from the create, a 45 s stack is read 10 times.
    // Here eight scouts are; the others wait for their news (reading at 30
    // s meanwhile), then read when the fastest was done: about twice.
    assert!(describes <= 3.0, "{describes:.2} DescribeStacks per account");
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
