//! rolecall's own cost per account at 1k, 10k and 50k accounts, in one
//! process against the in-memory cloud: plan from empty, apply from empty
//! (create), and the registry of the outcomes, on a current-thread runtime
//! (wall time there is CPU time: nothing waits). Peak RSS from /proc.
//!
//!     cargo run --release -p executor --features sim --example scale [-- 1000,10000,50000]

use std::time::Instant;

use executor::sim::SimCloud;
use model::NoEvents;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "1000,10000,50000".to_owned())
        .split(',')
        .filter_map(|n| n.parse().ok())
        .collect();
    let text = "version: 1\nsource_account: \"111111111111\"\nrole:\n  policy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}]}\naccounts:\n  - id: \"222222222222\"\n";
    let read = |_: &std::path::Path| Err(std::io::Error::other("no files"));
    let (inv, _) = planner::inventory::parse(text, std::path::Path::new("scale.yaml"), &read).expect("valid inventory");
    let desired = planner::desired(&inv.roles[0]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("| accounts | plan µs/account | apply µs/account | registry µs/account | peak RSS (MB) |");
    println!("|---:|---:|---:|---:|---:|");
    for n in sizes {
        let targets = executor::sim::targets(n);
        let cloud = SimCloud::default();
        let settings = executor::Settings {
            bootstrap_role: "OrganizationAccountAccessRole".to_owned(),
            bootstrap_external_id: None,
            concurrency: 64,
            max_in_flight: executor::fanout::ACCOUNTS_IN_FLIGHT,
            session_name: "rolecall-scale-1-1".to_owned(),
            partition: planner::partition::AWS,
            interrupt: Default::default(),
            host: "scale-host".to_owned(),
            process_alive: |_| true,
        };
        let options = executor::ApplyOptions {
            failure_tolerance: n,
            poll_interval: std::time::Duration::from_millis(1),
            max_wait: std::time::Duration::from_secs(60),
            registered: None,
        };
        let t = Instant::now();
        let plan = runtime.block_on(executor::plan(
            &cloud,
            &settings,
            std::slice::from_ref(&desired),
            &targets,
            &NoEvents,
        ));
        let plan_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        assert_eq!(plan.entries.len(), n);
        let t = Instant::now();
        let outcomes = runtime.block_on(executor::apply(
            &cloud,
            &settings,
            &options,
            std::slice::from_ref(&desired),
            &targets,
            None,
            &NoEvents,
        ));
        let apply_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        assert!(outcomes.iter().all(|o| o.role_arn.is_some()));
        let t = Instant::now();
        let header = planner::registry::Header {
            generated_at: "2026-01-01T00:00:00Z",
            inventory: &inv.name,
            source_account: &inv.source_account,
            written_by: "rolecall scale example",
        };
        let registry = planner::registry::next(None, &header, &outcomes, planner::registry::Scope::Inventory);
        let json = reporter::registry::to_json(&registry);
        let registry_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        assert!(json.len() > n * 100);
        println!(
            "| {n} | {plan_us:.1} | {apply_us:.1} | {registry_us:.1} | {:.0} |",
            peak_rss_mb()
        );
    }
}
