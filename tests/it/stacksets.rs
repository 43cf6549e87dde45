//! `deploy.via: stacksets` against moto, self-managed: 20 accounts × 2
//! regions from an empty organization, outputs gathered through the
//! bootstrap role, re-apply without any stack-set operation, an update,
//! orphans, --prune and destroy.
//!
//! moto's StackSets are synchronous, name instance stacks `StackSet:<name>`,
//! make up the StackIds of ListStackInstances, and do not propagate
//! UpdateStackSet to existing instances: the update is asserted on the
//! stack set itself. Service-managed outputs, OUTDATED instances, running
//! operations, partial failures and result pages are on the fake cloud
//! (crates/executor/src/tests.rs).

use std::collections::BTreeMap;

use aws_sdk_cloudformation as cfn;
use tests::proxy::{Proxy, is_read};
use tests::{MANAGEMENT_ACCOUNT, Moto, ou, seed_org};

use crate::registry;

fn statuses(json: &serde_json::Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in json["entries"].as_array().unwrap() {
        *out.entry(e["status"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    out
}

fn stack_set_writes(calls: &BTreeMap<String, usize>) -> Vec<String> {
    calls
        .keys()
        .filter(|op| op.starts_with("cloudformation:") && !is_read(op))
        .cloned()
        .collect()
}

#[test]
fn self_managed_rollout_rerun_update_orphans_prune_and_destroy() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let rt = tests::runtime();
    let names: Vec<String> = (1..=20).map(|i| format!("member-{i:02}")).collect();
    let accounts: Vec<(&str, &[(&'static str, &'static str)])> = names.iter().map(|n| (n.as_str(), &[][..])).collect();
    let org = rt.block_on(async { seed_org(&moto.sdk_config().await, &[], &[ou("Members", &accounts, vec![])]).await });
    let dir = tests::write_inventory("stacksets", "").parent().unwrap().to_path_buf();
    let inv = dir.join("inventory.yaml");
    let write = |action: &str, exclude: &[&str]| {
        let exclude: Vec<String> = exclude.iter().map(|id| format!("\"{id}\"")).collect();
        std::fs::write(
            &inv,
            format!(
                "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  name: \"Rolecall-{{region}}\"\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"{action}\", Resource: \"*\"}}]}}\ndeploy:\n  via: stacksets\n  regions: [us-east-1, eu-west-1]\n  concurrency: 8\norganization:\n  ous: [{}]\n  exclude: [{}]\n",
                org.ou("Root"),
                exclude.join(", ")
            ),
        )
        .unwrap();
    };
    write("s3:*", &[]);
    let (reg, profiles) = (dir.join("registry.json"), dir.join("profiles.ini"));
    let (inv_s, reg_s, prof_s) = (inv.to_str().unwrap(), reg.to_str().unwrap(), profiles.to_str().unwrap());
    let apply = |extra: &[&str]| {
        let mut args = vec![
            "apply",
            "-i",
            inv_s,
            "--yes",
            "--poll-interval",
            "0.05",
            "--registry",
            reg_s,
            "--profiles",
            prof_s,
        ];
        args.extend_from_slice(extra);
        tests::rolecall(&proxy.url(), &args)
    };

    // 1. From empty: one stack set, one instance operation, every ARN read
    // from the instance stacks through the bootstrap role.
    let plan = tests::rolecall(&proxy.url(), &["plan", "-i", inv_s, "--detailed-exitcode"]);
    plan.expect_code(2);
    assert!(
        plan.stdout.contains("Stack set rolecall-target-role: create"),
        "{}",
        plan.stdout
    );
    proxy.take_calls();
    let run = apply(&[]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("Apply: 40 created"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let calls = proxy.take_calls();
    assert_eq!(
        (
            calls.get("cloudformation:CreateStackSet"),
            calls.get("cloudformation:CreateStackInstances")
        ),
        (Some(&1), Some(&1)),
        "{calls:?}"
    );
    assert_eq!(
        calls.get("sts:AssumeRole"),
        Some(&20),
        "outputs: one AssumeRole per account: {calls:?}"
    );
    let json = registry(&reg);
    assert_eq!(statuses(&json), BTreeMap::from([("created".to_owned(), 40)]));
    for e in json["entries"].as_array().unwrap() {
        let (account, region) = (e["account_id"].as_str().unwrap(), e["region"].as_str().unwrap());
        assert_eq!(
            e["role_arn"].as_str(),
            Some(format!("arn:aws:iam::{account}:role/Rolecall-{region}").as_str())
        );
    }
    let creds = dir.join("credentials");
    tests::write_default_credentials(&creds);
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let member = org.account("member-07");
    let out = tests::aws_cli(
        &moto.url(),
        &profiles,
        &creds,
        &home,
        &[
            "sts",
            "get-caller-identity",
            "--profile",
            "member-07",
            "--output",
            "text",
            "--query",
            "Account",
        ],
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        member.id,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 2. Unchanged: no stack-set operation at all.
    let run = apply(&[]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("0 created, 0 updated, 40 unchanged"),
        "{}",
        run.stdout
    );
    let calls = proxy.take_calls();
    assert!(
        stack_set_writes(&calls).is_empty(),
        "an unchanged inventory made writes: {calls:?}"
    );
    tests::rolecall(&proxy.url(), &["plan", "-i", inv_s, "--detailed-exitcode"]).expect_code(0);

    // 3. A changed policy: one UpdateStackSet, and the set carries the new
    // fingerprint (moto does not push it to the instance stacks).
    write("s3:Get*", &[]);
    let run = apply(&[]);
    run.expect_code(0);
    assert!(run.stdout.contains("40 updated"), "{}", run.stdout);
    let calls = proxy.take_calls();
    assert_eq!(calls.get("cloudformation:UpdateStackSet"), Some(&1), "{calls:?}");
    let fingerprint = registry(&reg)["entries"][0]["fingerprint"].as_str().unwrap().to_owned();
    let tags = rt.block_on(async {
        let set = cfn::Client::new(&moto.sdk_config().await)
            .describe_stack_set()
            .stack_set_name("rolecall-target-role")
            .send()
            .await
            .unwrap();
        set.stack_set()
            .unwrap()
            .tags()
            .iter()
            .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
            .collect::<BTreeMap<_, _>>()
    });
    assert_eq!(tags.get("rolecall:fingerprint"), Some(&fingerprint));

    // 4. Two accounts leave: orphaned (kept, with their ARN) until --prune.
    let (gone_a, gone_b) = (org.account("member-03").id.clone(), org.account("member-04").id.clone());
    write("s3:Get*", &[&gone_a, &gone_b]);
    let plan = tests::rolecall(&proxy.url(), &["plan", "-i", inv_s, "--detailed-exitcode"]);
    plan.expect_code(2);
    assert!(plan.stdout.contains("4 orphaned"), "{}", plan.stdout);
    let run = apply(&[]);
    run.expect_code(0);
    assert!(!proxy.take_calls().contains_key("cloudformation:DeleteStackInstances"));
    assert_eq!(statuses(&registry(&reg)).get("orphaned"), Some(&4));
    assert!(
        !std::fs::read_to_string(&profiles)
            .unwrap()
            .contains("[profile member-03]")
    );
    let run = apply(&["--prune"]);
    run.expect_code(0);
    assert_eq!(proxy.take_calls().get("cloudformation:DeleteStackInstances"), Some(&1));
    let json = registry(&reg);
    assert_eq!(json["entries"].as_array().unwrap().len(), 36);
    assert!(
        json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["account_id"] != gone_a.as_str())
    );

    // 5. destroy: instances, then the stack set.
    let run = tests::rolecall(
        &proxy.url(),
        &[
            "destroy",
            "-i",
            inv_s,
            "--yes",
            "--poll-interval",
            "0.05",
            "--registry",
            reg_s,
            "--profiles",
            prof_s,
        ],
    );
    run.expect_code(0);
    assert!(run.stdout.contains("Destroy: 36 deleted"), "{}", run.stdout);
    let calls = proxy.take_calls();
    assert_eq!(calls.get("cloudformation:DeleteStackSet"), Some(&1), "{calls:?}");
    assert!(registry(&reg)["entries"].as_array().unwrap().is_empty());
    let plan = tests::rolecall(&proxy.url(), &["plan", "-i", inv_s]);
    assert!(
        plan.stdout.contains("Stack set rolecall-target-role: create"),
        "{}",
        plan.stdout
    );
}

/// Service-managed on moto: the stack set targets the OU and moto deploys
/// into its accounts, but its service-managed instance stacks are invisible
/// to DescribeStacks, so every instance is recorded without an ARN, with
/// the reason — never an invented one. (Outputs, auto-deployment and
/// partial results of service-managed sets are on the fake cloud.)
#[test]
fn service_managed_targets_the_ou_and_records_instances_it_cannot_read() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let org = tests::runtime().block_on(async {
        let tree = vec![ou("Apps", &[("app-1", &[]), ("app-2", &[]), ("app-3", &[])], vec![])];
        seed_org(&moto.sdk_config().await, &[], &tree).await
    });
    let apps = org.ou("Root/Apps");
    let excluded = org.account("app-3").id.clone();
    let inv = tests::write_inventory(
        "service-managed",
        &format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  policy: {{Version: \"2012-10-17\", Statement: []}}\ndeploy:\n  via: stacksets\n  stackset: {{permission_model: service-managed, auto_deployment: true}}\norganization:\n  ous: [{apps}]\n  exclude: [\"{excluded}\"]\n"
        ),
    );
    let reg = inv.with_file_name("registry.json");
    let run = tests::rolecall(
        &proxy.url(),
        &[
            "apply",
            "-i",
            inv.to_str().unwrap(),
            "--yes",
            "--poll-interval",
            "0.05",
            "--registry",
            reg.to_str().unwrap(),
        ],
    );
    run.expect_code(0);
    let calls = proxy.take_calls();
    assert_eq!(calls.get("cloudformation:CreateStackInstances"), Some(&1), "{calls:?}");
    let json = registry(&reg);
    let entries = json["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        2,
        "app-1 and app-2; app-3 is excluded (DIFFERENCE): {entries:#?}"
    );
    for e in entries {
        assert_eq!(e["status"], "created");
        assert!(e["role_arn"].is_null());
        assert!(e["error"].as_str().unwrap().contains("no role ARN recorded"), "{e}");
    }
}

/// A catalog on StackSets: one stack set per role (named after its
/// stack_name), each in its role's accounts and regions, every ARN read
/// with one AssumeRole per account; --roles picks whole stack sets; a role
/// that leaves the catalog orphans its stack set, and `destroy --orphans`
/// deletes exactly its instances and the set.
#[test]
fn a_catalog_gets_one_stack_set_per_role_and_a_role_that_leaves_is_orphaned() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let rt = tests::runtime();
    let org = rt.block_on(async {
        let tree = vec![ou(
            "Apps",
            &[("app-1", &[]), ("app-2", &[]), ("app-3", &[]), ("app-4", &[])],
            vec![],
        )];
        seed_org(&moto.sdk_config().await, &[], &tree).await
    });
    let (audited_a, audited_b) = (org.account("app-1").id.clone(), org.account("app-2").id.clone());
    let audit = format!(
        "  audit:\n    name: \"Audit-{{region}}\"\n    policy: none\n    managed_policy_arns: [ReadOnlyAccess]\n    regions: [us-east-1, eu-west-1]\n    targets: {{accounts: [\"{audited_a}\", \"{audited_b}\"]}}\n"
    );
    let dir = tests::write_inventory("stacksets-catalog", "")
        .parent()
        .unwrap()
        .to_path_buf();
    let inv = dir.join("inventory.yaml");
    let write = |audit: &str| {
        std::fs::write(
            &inv,
            format!(
                "version: 1\nname: catalog\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nroles:\n  admin:\n    name: Admin\n    policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}}]}}\n{audit}profiles: {{name: \"{{account_name}}-{{role}}\"}}\ndeploy:\n  via: stacksets\n  regions: [us-east-1]\norganization:\n  ous: [{}]\n",
                org.ou("Root/Apps")
            ),
        )
        .unwrap();
    };
    write(&audit);
    let reg = dir.join("registry.json");
    let (inv_s, reg_s) = (inv.to_str().unwrap(), reg.to_str().unwrap());
    let run_with = |command: &str, extra: &[&str]| {
        let mut args = vec![command, "-i", inv_s, "--registry", reg_s];
        if command != "plan" {
            args.extend_from_slice(&["--yes", "--poll-interval", "0.05"]);
        }
        args.extend_from_slice(extra);
        tests::rolecall(&proxy.url(), &args)
    };

    let plan = run_with("plan", &["--detailed-exitcode"]);
    plan.expect_code(2);
    for line in ["Stack set rolecall-admin: create", "Stack set rolecall-audit: create"] {
        assert!(plan.stdout.contains(line), "{line}:\n{}", plan.stdout);
    }
    assert!(
        plan.stdout.contains("ROLE"),
        "several roles: a ROLE column\n{}",
        plan.stdout
    );
    proxy.take_calls();
    let run = run_with("apply", &[]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("Apply: 8 created"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let calls = proxy.take_calls();
    assert_eq!(
        (
            calls.get("cloudformation:CreateStackSet"),
            calls.get("cloudformation:CreateStackInstances"),
            calls.get("sts:AssumeRole"),
        ),
        (Some(&2), Some(&2), Some(&4)),
        "two stack sets, one instance operation each, one AssumeRole per account for both roles' outputs: {calls:?}"
    );
    let json = registry(&reg);
    let mut seen: Vec<String> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (account, role, region) = (
                e["account_id"].as_str().unwrap(),
                e["role"].as_str().unwrap(),
                e["region"].as_str().unwrap(),
            );
            let name = if role == "admin" {
                "Admin".to_owned()
            } else {
                format!("Audit-{region}")
            };
            assert_eq!(
                e["role_arn"].as_str(),
                Some(format!("arn:aws:iam::{account}:role/{name}").as_str()),
                "{e}"
            );
            assert_eq!(e["stack_name"], format!("rolecall-{role}"));
            format!("{role} {account} {region}")
        })
        .collect();
    seen.sort();
    let mut want: Vec<String> = ["app-1", "app-2", "app-3", "app-4"]
        .iter()
        .map(|a| format!("admin {} us-east-1", org.account(a).id))
        .chain(
            [&audited_a, &audited_b]
                .iter()
                .flat_map(|a| ["eu-west-1", "us-east-1"].map(|r| format!("audit {a} {r}"))),
        )
        .collect();
    want.sort();
    assert_eq!(seen, want);

    // Unchanged: no stack-set write; --roles narrows to one set.
    run_with("apply", &[]).expect_code(0);
    assert!(stack_set_writes(&proxy.take_calls()).is_empty());
    run_with("plan", &["--detailed-exitcode"]).expect_code(0);
    let plan = run_with("plan", &["--roles", "audit"]);
    plan.expect_code(0);
    assert!(
        plan.stdout.contains("rolecall-audit") && !plan.stdout.contains("rolecall-admin"),
        "{}",
        plan.stdout
    );

    // audit leaves the catalog: its set and 4 instances are orphaned, kept
    // in the registry, and destroy --orphans removes exactly them.
    write("");
    let plan = run_with("plan", &["--detailed-exitcode"]);
    plan.expect_code(2);
    assert!(
        plan.stdout.contains("Stack set rolecall-audit: orphaned"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("4 orphaned"), "{}", plan.stdout);
    run_with("apply", &[]).expect_code(0);
    assert!(stack_set_writes(&proxy.take_calls()).is_empty());
    assert_eq!(statuses(&registry(&reg)).get("orphaned"), Some(&4));
    let run = run_with("destroy", &["--orphans"]);
    run.expect_code(0);
    assert!(run.stdout.contains("4 deleted"), "{}", run.stdout);
    let calls = proxy.take_calls();
    assert_eq!(
        (
            calls.get("cloudformation:DeleteStackInstances"),
            calls.get("cloudformation:DeleteStackSet")
        ),
        (Some(&1), Some(&1)),
        "{calls:?}"
    );
    let sets = rt.block_on(async {
        let cfn = cfn::Client::new(&moto.sdk_config().await);
        let mut out = Vec::new();
        for name in ["rolecall-admin", "rolecall-audit"] {
            let found = cfn.describe_stack_set().stack_set_name(name).send().await;
            out.push((
                name,
                found.ok().and_then(|s| s.stack_set().and_then(|s| s.status().cloned())),
            ));
        }
        out
    });
    assert_eq!(sets[0].1.as_ref().map(|s| s.as_str()), Some("ACTIVE"), "{sets:?}");
    assert!(
        sets[1].1.is_none() || sets[1].1.as_ref().map(|s| s.as_str()) == Some("DELETED"),
        "{sets:?}"
    );
    let json = registry(&reg);
    assert!(
        json["entries"].as_array().unwrap().iter().all(|e| e["role"] == "admin"),
        "{json}"
    );
    assert_eq!(json["entries"].as_array().unwrap().len(), 4);
    run_with("plan", &["--detailed-exitcode"]).expect_code(0);
}
