//! `just bench [N]`: rolecall at scale against moto, release build. Seeds N
//! member accounts, then times `plan` (and, where built, `apply`) with a
//! counting proxy in front of moto, and prints wall time and AWS calls per
//! account by operation. moto handles ~60 accounts/s on 2 cores whatever the
//! client does, so the numbers show rolecall's overhead above that floor.

use std::collections::BTreeMap;
use std::time::Instant;

use tests::proxy::Proxy;
use tests::{Moto, member_org, seed_org, write_inventory};

fn main() {
    let accounts: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let moto = match Moto::try_start() {
        Ok(moto) => moto,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    };
    let proxy = Proxy::start(moto.port);
    let rt = tests::runtime();
    let started = Instant::now();
    let org = rt.block_on(async { seed_org(&moto.sdk_config().await, &[], &member_org(accounts, "bench")).await });
    eprintln!(
        "bench: seeded {} accounts in {:.1}s",
        org.accounts.len(),
        started.elapsed().as_secs_f64()
    );
    let inventory = write_inventory(
        "bench",
        &format!(
            "version: 1\nsource_account: \"{}\"\nrole:\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}}]}}\ndeploy:\n  concurrency: 32\norganization:\n  ous: [{}]\n",
            tests::MANAGEMENT_ACCOUNT,
            org.ou("Root")
        ),
    );
    let file = inventory.to_str().expect("utf-8 path");
    proxy.take_calls();

    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("rolecall bench: {accounts} accounts, 1 region, concurrency 32, moto on 2 cores ({profile} build)");
    println!(
        "{:<30} {:>9} {:>12}  calls per account",
        "step", "wall (s)", "accounts/s"
    );
    // moto imports each service lazily on its first call (seconds): warm it
    // up so that the numbers measure rolecall, not moto's start.
    let warm = write_inventory(
        "warm",
        &format!(
            "version: 1\nsource_account: \"{}\"\nrole: {{policy: {{Statement: []}}}}\naccounts:\n  - id: \"{}\"\n",
            tests::MANAGEMENT_ACCOUNT,
            org.accounts[0].id
        ),
    );
    tests::rolecall(&moto.url(), &["plan", "-i", warm.to_str().expect("utf-8 path")]);
    let t = Instant::now();
    let direct = tests::rolecall(&moto.url(), &["plan", "-i", file]);
    assert_eq!(direct.code, 0, "{}", direct.stderr);
    println!(
        "{:<30} {:>9.2} {:>12.1}  (no proxy)",
        "plan (empty org), direct",
        t.elapsed().as_secs_f64(),
        accounts as f64 / t.elapsed().as_secs_f64()
    );
    let registry = std::env::temp_dir().join(format!("rolecall-bench-{}.json", std::process::id()));
    let registry = registry.to_str().expect("utf-8 path");
    let apply = vec![
        "apply",
        "-i",
        file,
        "--yes",
        "--poll-interval",
        "0.2",
        "--registry",
        registry,
    ];
    // The same accounts through a self-managed stack set: another role and
    // stack name, so that the two paths do not collide in IAM.
    let sets = write_inventory(
        "bench-stacksets",
        &format!(
            "version: 1\nsource_account: \"{}\"\nrole:\n  name: RolecallSet\n  stack_name: rolecall-set\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}}]}}\ndeploy:\n  via: stacksets\n  concurrency: 32\norganization:\n  ous: [{}]\n",
            tests::MANAGEMENT_ACCOUNT,
            org.ou("Root")
        ),
    );
    let sets = sets.to_str().expect("utf-8 path");
    let mut apply_sets = apply.clone();
    apply_sets[2] = sets;
    for (step, args, ok) in [
        ("plan (empty org)", vec!["plan", "-i", file], [0, 0]),
        ("apply (from empty)", apply.clone(), [0, 0]),
        ("apply again (no-op)", apply.clone(), [0, 0]),
        ("plan (all in place)", vec!["plan", "-i", file], [0, 0]),
        ("stacksets apply (from empty)", apply_sets.clone(), [0, 0]),
        ("stacksets apply again (no-op)", apply_sets.clone(), [0, 0]),
        ("stacksets plan (in place)", vec!["plan", "-i", sets], [0, 0]),
    ] {
        let t = Instant::now();
        let run = tests::rolecall(&proxy.url(), &args);
        let wall = t.elapsed().as_secs_f64();
        assert!(ok.contains(&run.code), "{step} exited {}: {}", run.code, run.stderr);
        let calls = proxy.take_calls();
        println!(
            "{step:<30} {wall:>9.2} {:>12.1}  {}",
            accounts as f64 / wall,
            per_account(&calls, accounts)
        );
    }
    // drift reads each account's live role: moto answers GetRolePolicy of
    // CloudFormation-made policies with a Python repr, fixed up first.
    let ids: Vec<String> = org.accounts.iter().map(|a| a.id.clone()).collect();
    rt.block_on(tests::fix_moto_inline_policies(&moto, &ids, "RolecallTarget"));
    proxy.take_calls();
    for (step, extra) in [
        ("drift (all in sync)", None),
        ("drift --cfn-drift (moto: 500)", Some("--cfn-drift")),
    ] {
        let mut args = vec!["drift", "-i", file, "--registry", registry, "--detailed-exitcode"];
        args.extend(extra);
        let t = Instant::now();
        let run = tests::rolecall(&proxy.url(), &args);
        let wall = t.elapsed().as_secs_f64();
        assert_eq!(run.code, 0, "{step}: {}", run.stdout);
        let calls = proxy.take_calls();
        println!(
            "{step:<30} {wall:>9.2} {:>12.1}  {}",
            accounts as f64 / wall,
            per_account(&calls, accounts)
        );
    }
    let _ = std::fs::remove_file(registry);
}

fn per_account(calls: &BTreeMap<String, usize>, accounts: usize) -> String {
    let total: usize = calls.values().sum();
    let parts: Vec<String> = calls
        .iter()
        .map(|(op, n)| format!("{op}={:.2}", *n as f64 / accounts as f64))
        .collect();
    format!("{:.2} total ({})", total as f64 / accounts as f64, parts.join(", "))
}
