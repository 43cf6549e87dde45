//! Chaos at scale, shared by the CI-sized e2e test and `just chaos`: N
//! accounts × 2 regions through the fault-injecting proxy (throttling,
//! 5xx, dropped connections before and after the call reached moto,
//! latency), then checks that `apply` converged with every stack exactly
//! once and none failed, that the registry is complete and valid, and that
//! `plan` and `drift` under the same faults find everything in place.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation as cfn;

use crate::proxy::{Fault, Faults, Proxy, Rule};
use crate::{MANAGEMENT_ACCOUNT, Moto, member_org, seed_org, write_inventory};

pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const STACK: &str = "rolecall-target-role";

/// The mix: 10% throttling, 2% 5xx, 1% dropped connections (half of
/// them after the call reached moto), 2–12 ms of latency per call.
pub fn faults(seed: u64) -> Faults {
    Faults {
        seed,
        rules: vec![
            Rule::share(Fault::Throttle, 0.10),
            Rule::share(Fault::InternalError, 0.01),
            Rule::share(Fault::Unavailable, 0.01),
            Rule::share(Fault::DropBefore, 0.005),
            Rule::share(Fault::DropAfter, 0.005),
        ],
        latency: Duration::from_millis(2),
        jitter: Duration::from_millis(10),
    }
}

/// One command's run under faults.
pub struct Step {
    pub name: &'static str,
    pub code: i32,
    pub wall: Duration,
    pub calls: usize,
    pub injected: BTreeMap<Fault, usize>,
    pub stderr: String,
}

pub struct Report {
    pub accounts: usize,
    pub seed: u64,
    pub steps: Vec<Step>,
    /// Stacks of rolecall's name beyond one per account/region.
    pub duplicates: usize,
    /// Account/regions whose stack is missing or not CREATE/UPDATE_COMPLETE.
    pub bad_stacks: Vec<String>,
    /// Registry entries, and those without a role ARN.
    pub registry_entries: usize,
    pub registry_without_arn: usize,
    /// JSON Schema violations of the registry.
    pub registry_errors: Vec<String>,
}

impl Report {
    pub fn print(&self) {
        println!(
            "chaos: {} accounts × {} regions, seed {}",
            self.accounts,
            REGIONS.len(),
            self.seed
        );
        println!(
            "{:<8} {:>5} {:>9} {:>8}  faults injected (each one a retry)",
            "step", "exit", "wall (s)", "calls"
        );
        for s in &self.steps {
            let faults: Vec<String> = s.injected.iter().map(|(f, n)| format!("{f:?}={n}")).collect();
            let total: usize = s.injected.values().sum();
            println!(
                "{:<8} {:>5} {:>9.1} {:>8}  {total} ({})",
                s.name,
                s.code,
                s.wall.as_secs_f64(),
                s.calls,
                faults.join(", ")
            );
        }
        println!(
            "stacks: duplicates {}, missing or failed {}; registry: {} entries, {} without ARN, {} schema errors",
            self.duplicates,
            self.bad_stacks.len(),
            self.registry_entries,
            self.registry_without_arn,
            self.registry_errors.len()
        );
    }
}

/// Seeds `accounts` members, runs apply, plan and drift under the faults
/// of `seed`, and checks what is in moto afterwards.
pub fn run(accounts: usize, concurrency: usize, seed: u64) -> Result<Report, String> {
    let moto = Moto::try_start()?;
    let proxy = Proxy::start(moto.port);
    let rt = crate::runtime();
    let org = rt.block_on(async { seed_org(&moto.sdk_config().await, &[], &member_org(accounts, "chaos")).await });
    let dir = std::env::temp_dir().join(format!("rolecall-chaos-{}-{accounts}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let inventory = write_inventory(
        &format!("chaos-{accounts}"),
        &format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  name: \"Rolecall-{{region}}\"\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}}]}}\ndeploy:\n  regions: [{}]\n  concurrency: {concurrency}\norganization:\n  ous: [{}]\n",
            REGIONS.join(", "),
            org.ou("Root")
        ),
    );
    let inventory = inventory.to_str().ok_or("utf-8 path")?.to_owned();
    let registry = dir.join("registry.json");
    let registry = registry.to_str().ok_or("utf-8 path")?.to_owned();
    // moto imports each service on its first call; not part of the run.
    crate::rolecall(&moto.url(), &["validate", "-i", &inventory]);

    let mut steps = Vec::new();
    let mut step = |name: &'static str, args: &[&str]| {
        proxy.take_calls();
        proxy.take_injected();
        let t = Instant::now();
        let run = crate::rolecall(&proxy.url(), args);
        let wall = t.elapsed();
        steps.push(Step {
            name,
            code: run.code,
            wall,
            calls: proxy.take_calls().values().sum(),
            injected: proxy.take_injected(),
            stderr: run.stderr,
        });
    };
    proxy.faults(faults(seed));
    step(
        "apply",
        &[
            "apply",
            "-i",
            &inventory,
            "--yes",
            "--poll-interval",
            "0.2",
            "--registry",
            &registry,
        ],
    );
    step(
        "plan",
        &["plan", "-i", &inventory, "--detailed-exitcode", "--registry", &registry],
    );
    proxy.faults(Faults::default());
    let ids: Vec<String> = org.accounts.iter().map(|a| a.id.clone()).collect();
    rt.block_on(crate::fix_moto_inline_policies(&moto, &ids, "Rolecall-us-east-1"));
    rt.block_on(crate::fix_moto_inline_policies(&moto, &ids, "Rolecall-eu-west-1"));
    proxy.faults(faults(seed.wrapping_add(1)));
    step(
        "drift",
        &[
            "drift",
            "-i",
            &inventory,
            "--detailed-exitcode",
            "--registry",
            &registry,
        ],
    );
    proxy.faults(Faults::default());

    // What is in moto now, read directly.
    let (duplicates, bad_stacks) = rt.block_on(async {
        let mut duplicates = 0;
        let mut bad = Vec::new();
        for id in &ids {
            let config = moto.account_config(id).await;
            for region in REGIONS {
                let client = cfn::Client::from_conf(
                    cfn::config::Builder::from(&config)
                        .region(cfn::config::Region::new(region))
                        .build(),
                );
                let listed = client.list_stacks().send().await.expect("list stacks");
                let ours: Vec<&str> = listed
                    .stack_summaries()
                    .iter()
                    .filter(|s| s.stack_name() == Some(STACK))
                    .filter_map(|s| s.stack_status().map(|x| x.as_str()))
                    .filter(|s| *s != "DELETE_COMPLETE")
                    .collect();
                duplicates += ours.len().saturating_sub(1);
                if ours.len() != 1 || !matches!(ours[0], "CREATE_COMPLETE" | "UPDATE_COMPLETE") {
                    bad.push(format!("{id} {region}: {ours:?}"));
                }
            }
        }
        (duplicates, bad)
    });
    let text = std::fs::read_to_string(&registry).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let entries = json["entries"].as_array().cloned().unwrap_or_default();
    Ok(Report {
        accounts,
        seed,
        steps,
        duplicates,
        bad_stacks,
        registry_entries: entries.len(),
        registry_without_arn: entries.iter().filter(|e| !e["role_arn"].is_string()).count(),
        registry_errors: crate::schema_errors(&json, "registry.v4.schema.json"),
    })
}
