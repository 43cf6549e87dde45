//! `apply` against moto: 31 accounts × 2 regions from empty, through a
//! counting proxy; then re-apply, update, add/remove accounts, the profiles
//! file in a config the user owns, and the AWS CLI using a generated profile.
//!
//! moto cannot show in-progress states, rollbacks or throttling; those are
//! tested against a fake cloud in the executor crate.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_cloudformation as cfn;
use aws_sdk_iam as iam;
use serde_json::Value;
use tests::proxy::{Proxy, is_read};
use tests::{MANAGEMENT_ACCOUNT, Moto, SeededOrg, ou, seed_org, test_org};

use crate::registry;

const TRUSTED_EXTRA: &str = "099999999999";
const HAND_WRITTEN: &str = "# my own settings\n[default]\nregion = eu-central-1\noutput = json\n\n[profile personal]\nregion = us-west-2\nsource_profile = default\n";

fn big_org() -> Vec<tests::OuSpec> {
    let mut org = test_org();
    let platform: Vec<(String, &[(&'static str, &'static str)])> = (1..=10)
        .map(|i| (format!("platform-{i:02}"), &[("env", "prod")][..]))
        .collect();
    let refs: Vec<(&str, &[(&'static str, &'static str)])> = platform.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    org.push(ou("Platform", &refs, vec![]));
    org
}

fn inventory(org: &SeededOrg, policy_action: &str, exclude: &[&str]) -> String {
    let exclude: Vec<String> = exclude.iter().map(|id| format!("\"{id}\"")).collect();
    format!(
        "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  name: \"Rolecall-{{region}}\"\n  trusted_accounts: [\"{MANAGEMENT_ACCOUNT}\", \"{TRUSTED_EXTRA}\"]\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"{policy_action}\", Resource: \"*\"}}]}}\ndeploy:\n  regions: [us-east-1, eu-west-1]\n  concurrency: 16\nprofiles:\n  name: \"{{account_name}}\"\norganization:\n  ous: [{}]\n  exclude: [{}]\n",
        org.ou("Root"),
        exclude.join(", ")
    )
}

fn statuses(registry: &Value) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in registry["entries"].as_array().unwrap() {
        *counts.entry(e["status"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    counts
}

fn writes(calls: &BTreeMap<String, usize>) -> Vec<String> {
    calls.keys().filter(|op| !is_read(op)).cloned().collect()
}

#[test]
fn rollout_rerun_update_and_profiles() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let rt = tests::runtime();
    let org = rt.block_on(async { seed_org(&moto.sdk_config().await, &[], &big_org()).await });
    assert_eq!(org.accounts.len(), 31);
    let dir = tempdir("apply");
    let inv = dir.join("inventory.yaml");
    std::fs::write(&inv, inventory(&org, "s3:*", &[])).unwrap();
    let (reg, standalone, config) = (dir.join("registry.json"), dir.join("profiles.ini"), dir.join("config"));
    std::fs::write(&config, HAND_WRITTEN).unwrap();
    let apply = |extra: &[&str]| {
        let mut args = vec![
            "apply",
            "-i",
            inv.to_str().unwrap(),
            "--yes",
            "--poll-interval",
            "0.05",
            "--registry",
            reg.to_str().unwrap(),
            "--profiles-into",
            config.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        tests::rolecall(&proxy.url(), &args)
    };

    // Without --yes and without a terminal: refused before any AWS call.
    let refused = tests::rolecall(&proxy.url(), &["apply", "-i", inv.to_str().unwrap()]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("needs confirmation") && refused.stderr.contains("--yes"),
        "{}",
        refused.stderr
    );
    assert!(proxy.take_calls().is_empty());

    // 1. From empty: everything created.
    let run = apply(&["--profiles", standalone.to_str().unwrap()]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("Apply: 62 created, 0 updated, 0 unchanged, 0 failed, 0 blocked, 0 not attempted (62 stacks)"),
        "{}",
        run.stdout
    );
    let calls = proxy.take_calls();
    assert_eq!(
        calls.get("sts:AssumeRole"),
        Some(&31),
        "one AssumeRole per account: {calls:?}"
    );
    assert_eq!(calls.get("cloudformation:CreateStack"), Some(&62), "{calls:?}");
    let first = registry(&reg);
    assert_eq!(statuses(&first), BTreeMap::from([("created".to_owned(), 62)]));

    // Every registry entry is what DescribeStacks reports, and every role is
    // in IAM of its own account with one trust statement per trusted account.
    rt.block_on(async {
        for e in first["entries"].as_array().unwrap() {
            let (account, region) = (e["account_id"].as_str().unwrap(), e["region"].as_str().unwrap());
            let config = moto.account_config(account).await;
            let cf = cfn::Client::from_conf(
                cfn::config::Builder::from(&config)
                    .region(cfn::config::Region::new(region.to_owned()))
                    .build(),
            );
            let stack = cf
                .describe_stacks()
                .stack_name("rolecall-target-role")
                .send()
                .await
                .unwrap()
                .stacks()[0]
                .clone();
            assert_eq!(e["stack_id"].as_str(), stack.stack_id());
            let output = stack
                .outputs()
                .iter()
                .find(|o| o.output_key() == Some("RoleArn"))
                .and_then(|o| o.output_value())
                .unwrap();
            assert_eq!(e["role_arn"].as_str(), Some(output));
            assert_eq!(output, format!("arn:aws:iam::{account}:role/Rolecall-{region}"));
            let role = iam::Client::new(&config)
                .get_role()
                .role_name(format!("Rolecall-{region}"))
                .send()
                .await
                .unwrap();
            let document = role.role().unwrap().assume_role_policy_document().unwrap();
            let trust: Value = serde_json::from_str(&percent_decode(document)).unwrap();
            let principals: Vec<&str> = trust["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["Principal"]["AWS"].as_str().unwrap())
                .collect();
            assert_eq!(
                principals,
                [
                    format!("arn:aws:iam::{MANAGEMENT_ACCOUNT}:root"),
                    format!("arn:aws:iam::{TRUSTED_EXTRA}:root")
                ]
            );
        }
    });

    // The profiles: the standalone file and the managed block hold the same
    // stanzas; the hand-written part of the config is untouched.
    let config_text = std::fs::read_to_string(&config).unwrap();
    assert!(config_text.starts_with(HAND_WRITTEN), "{config_text}");
    let web = org.account("web-prod");
    assert!(config_text.contains(&format!("[profile web-prod]\nrole_arn = arn:aws:iam::{}:role/Rolecall-us-east-1\nsource_profile = default\nregion = us-east-1\n", web.id)), "{config_text}");
    assert_eq!(
        config_text.matches("[profile ").count(),
        32,
        "31 generated + 1 hand-written"
    );
    let standalone_text = std::fs::read_to_string(&standalone).unwrap();
    assert_eq!(standalone_text.matches("[profile ").count(), 31);

    // The AWS CLI resolves a generated profile into its account.
    let creds = dir.join("credentials");
    tests::write_default_credentials(&creds);
    let identity = aws_cli(
        &moto,
        &config,
        &creds,
        &[
            "sts",
            "get-caller-identity",
            "--profile",
            "web-prod",
            "--output",
            "json",
        ],
    );
    assert_eq!(identity["Account"].as_str(), Some(web.id.as_str()), "{identity}");
    assert!(
        identity["Arn"].as_str().unwrap().contains("Rolecall-us-east-1"),
        "{identity}"
    );

    // 2. Re-apply, nothing changed: only reads, all unchanged, same bytes.
    let run = apply(&[]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("Apply: 0 created, 0 updated, 62 unchanged"),
        "{}",
        run.stdout
    );
    let calls = proxy.take_calls();
    assert!(writes(&calls).is_empty(), "a no-op apply made write calls: {calls:?}");
    assert_eq!(
        (calls.get("sts:AssumeRole"), calls.get("cloudformation:DescribeStacks")),
        (Some(&31), Some(&62)),
        "{calls:?}"
    );
    assert_eq!(
        statuses(&registry(&reg)),
        BTreeMap::from([("unchanged".to_owned(), 62)])
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        config_text,
        "an unchanged run leaves the config byte for byte"
    );

    // 3. Change the policy: every stack updated through a change set.
    std::fs::write(&inv, inventory(&org, "s3:Get*", &[])).unwrap();
    let run = apply(&[]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("Apply: 0 created, 62 updated, 0 unchanged"),
        "{}",
        run.stdout
    );
    let calls = proxy.take_calls();
    assert_eq!(
        (
            calls.get("cloudformation:CreateChangeSet"),
            calls.get("cloudformation:ExecuteChangeSet")
        ),
        (Some(&62), Some(&62)),
        "{calls:?}"
    );
    assert_eq!(statuses(&registry(&reg)), BTreeMap::from([("updated".to_owned(), 62)]));
    // The new policy is in the stack's template. (moto's ExecuteChangeSet
    // applies the template but not the change set's stack tags, so the
    // fingerprint tag, and a plan after this, still show the old one there;
    // AWS applies both. The executor's fake-cloud tests cover convergence.)
    rt.block_on(async {
        let config = moto.account_config(&org.account("audit").id).await;
        let cf = cfn::Client::from_conf(
            cfn::config::Builder::from(&config)
                .region(cfn::config::Region::new("eu-west-1"))
                .build(),
        );
        let template = cf
            .get_template()
            .stack_name("rolecall-target-role")
            .send()
            .await
            .unwrap();
        assert!(template.template_body().unwrap().contains("s3:Get*"));
    });
    proxy.take_calls();

    // 4. Remove two accounts: their profiles leave the block; add them back.
    let (a, b) = (org.account("sandbox-1"), org.account("api-dev"));
    std::fs::write(&inv, inventory(&org, "s3:Get*", &[&a.id, &b.id])).unwrap();
    apply(&[]).expect_code(0);
    let pruned = std::fs::read_to_string(&config).unwrap();
    assert!(
        !pruned.contains("[profile sandbox-1]") && !pruned.contains("[profile api-dev]"),
        "{pruned}"
    );
    assert_eq!(pruned.matches("[profile ").count(), 30);
    assert!(pruned.starts_with(HAND_WRITTEN));
    std::fs::write(&inv, inventory(&org, "s3:Get*", &[])).unwrap();
    let diff = apply(&["--diff"]);
    diff.expect_code(0);
    assert!(
        diff.stdout.contains("+[profile api-dev]") && diff.stdout.contains("+[profile sandbox-1]"),
        "{}",
        diff.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        pruned,
        "--diff writes nothing"
    );
    apply(&[]).expect_code(0);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        config_text,
        "back to the same bytes"
    );

    // 5. A hand-written profile with a generated name: refuse, write nothing.
    let clash = format!("{config_text}\n[profile web-prod]\nregion = us-east-1\n");
    std::fs::write(&config, &clash).unwrap();
    let run = apply(&[]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("hand-written profiles named web-prod"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), clash);
    std::fs::write(&config, &config_text).unwrap();
    assert!(
        statuses(&registry(&reg)).values().sum::<usize>() == 62,
        "the registry is written even when the profiles are refused"
    );
    proxy.take_calls();

    // 6. Offline regeneration from the registry gives the same stanzas.
    let regenerated = dir.join("regenerated.ini");
    let run = tests::rolecall(
        &proxy.url(),
        &[
            "profiles",
            "--registry",
            reg.to_str().unwrap(),
            "--out",
            regenerated.to_str().unwrap(),
            "-i",
            inv.to_str().unwrap(),
        ],
    );
    run.expect_code(0);
    let stanzas = |t: &str| t.split_once("\n\n").map(|(_, rest)| rest.to_owned()).unwrap();
    assert_eq!(
        stanzas(&std::fs::read_to_string(&regenerated).unwrap()),
        stanzas(&standalone_text)
    );
    assert!(proxy.take_calls().is_empty(), "profiles works offline");
}

/// The AWS CLI's JSON answer; a missing CLI fails with how to install it.
fn aws_cli(moto: &Moto, config: &Path, credentials: &Path, args: &[&str]) -> Value {
    let home = config.parent().expect("config has a folder");
    let out = tests::aws_cli(&moto.url(), config, credentials, home, args).unwrap_or_else(|e| {
        panic!("cannot run the AWS CLI ({e}); install it with: pip install awscli  (or `just setup`)")
    });
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// IAM returns policy documents URL-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rolecall-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_run_killed_half_way_converges_when_run_again() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let org = tests::runtime().block_on(async { seed_org(&moto.sdk_config().await, &[], &test_org()).await });
    let dir = tempdir("killed");
    let inv = dir.join("inventory.yaml");
    std::fs::write(&inv, inventory(&org, "s3:*", &[])).unwrap();
    let reg = dir.join("registry.json");
    let args = [
        "apply",
        "-i",
        inv.to_str().unwrap(),
        "--yes",
        "--concurrency",
        "2",
        "--poll-interval",
        "0.05",
        "--registry",
        reg.to_str().unwrap(),
    ];

    // A slow cloud, and a kill -9 in the middle: no cleanup of any kind.
    proxy.delay(std::time::Duration::from_millis(40));
    let mut child = tests::base_command(tests::binary(), &proxy.url())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while proxy.calls_of("CreateStack") < 5 {
        assert!(std::time::Instant::now() < deadline, "the first run never got going");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let created_before = proxy.calls_of("CreateStack");
    assert!(
        created_before < 42,
        "killed half-way, not at the end ({created_before} creates)"
    );
    assert!(!reg.exists(), "the killed run wrote no registry");

    // Run again: the stacks already made are unchanged, the rest created.
    proxy.delay(std::time::Duration::ZERO);
    proxy.take_calls();
    let run = tests::rolecall(&proxy.url(), &args);
    run.expect_code(0);
    let counts = statuses(&registry(&reg));
    assert_eq!(counts.values().sum::<usize>(), 42);
    assert_eq!(
        counts.get("unchanged").copied().unwrap_or(0),
        created_before,
        "{counts:?}"
    );
    assert_eq!(
        counts.get("created").copied().unwrap_or(0),
        42 - created_before,
        "{counts:?}"
    );
    // And a third run has nothing left to do.
    let run = tests::rolecall(&proxy.url(), &args);
    run.expect_code(0);
    assert_eq!(
        statuses(&registry(&reg)),
        BTreeMap::from([("unchanged".to_owned(), 42)])
    );
}

#[test]
fn bootstrap_template_launches_and_accounts_subset_keeps_the_registry() {
    let moto = Moto::start();
    let org = tests::runtime().block_on(async { seed_org(&moto.sdk_config().await, &[], &test_org()).await });
    let dir = tempdir("bootstrap");
    let inv = dir.join("inventory.yaml");
    std::fs::write(&inv, inventory(&org, "s3:*", &[])).unwrap();

    // The template goes to stdout, the launch command to stderr.
    let run = tests::rolecall(&moto.url(), &["bootstrap-template", "-i", inv.to_str().unwrap()]);
    run.expect_code(0);
    let template: Value = serde_json::from_str(&run.stdout).expect("the template is JSON on stdout");
    let role = &template["Resources"]["BootstrapRole"]["Properties"];
    assert_eq!(role["RoleName"], "OrganizationAccountAccessRole");
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]["Fn::Sub"],
        format!("arn:${{AWS::Partition}}:iam::{MANAGEMENT_ACCOUNT}:root")
    );
    let policy = role["Policies"][0]["PolicyDocument"].to_string();
    assert!(
        policy.contains("stack/rolecall-target-role/*") && policy.contains("role/Rolecall-*"),
        "least privilege: {policy}"
    );
    assert!(
        !policy.contains("\"Action\":\"*\""),
        "no administrator access: {policy}"
    );
    assert!(run.stderr.contains("aws cloudformation create-stack --stack-name rolecall-bootstrap --template-body file://rolecall-bootstrap.json --capabilities CAPABILITY_NAMED_IAM"), "{}", run.stderr);
    // CloudFormation (as far as moto checks) accepts it, launched in an
    // account without the role (moto's created accounts already have it,
    // like real ones; an invited account does not).
    let invited = "055555555555";
    tests::runtime().block_on(async {
        let config = moto.account_config(invited).await;
        let cf = cfn::Client::new(&config);
        cf.create_stack()
            .stack_name("rolecall-bootstrap")
            .template_body(&run.stdout)
            .capabilities(cfn::types::Capability::CapabilityNamedIam)
            .send()
            .await
            .unwrap();
        let stack = cf
            .describe_stacks()
            .stack_name("rolecall-bootstrap")
            .send()
            .await
            .unwrap()
            .stacks()[0]
            .clone();
        assert_eq!(stack.stack_status().map(|s| s.as_str()), Some("CREATE_COMPLETE"));
        assert_eq!(
            stack.outputs()[0].output_value(),
            Some(format!("arn:aws:iam::{invited}:role/OrganizationAccountAccessRole").as_str())
        );
    });

    // --accounts: only those accounts are visited; the registry keeps the rest.
    let reg = dir.join("registry.json");
    let apply = |extra: &[&str]| {
        let mut args = vec![
            "apply",
            "-i",
            inv.to_str().unwrap(),
            "--yes",
            "--poll-interval",
            "0.05",
            "--registry",
            reg.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        tests::rolecall(&moto.url(), &args)
    };
    apply(&[]).expect_code(0);
    let web = org.account("web-prod");
    let run = apply(&["--accounts", &web.id, "--json"]);
    run.expect_code(0);
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["counts"]["unchanged"], 2, "{summary}");
    assert_eq!(summary["outcomes"].as_array().unwrap().len(), 2);
    let entries = registry(&reg)["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 42, "the other accounts' entries are kept");
    assert_eq!(entries.iter().filter(|e| e["status"] == "unchanged").count(), 2);
    assert_eq!(entries.iter().filter(|e| e["status"] == "created").count(), 40);
    let run = apply(&["--accounts", "123123123123"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("--accounts names [\"123123123123\"], which are not targets"),
        "{}",
        run.stderr
    );
}
