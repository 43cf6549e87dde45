//! `rolecall drift` against moto: a clean rollout is all IN_SYNC (no false
//! positive on any field); then each finding is produced for real, out of
//! band, and detected with its details; drift never writes (proxy counts).
//! moto has no CloudFormation drift detection (HTTP 500): `--cfn-drift`
//! says so once; the detection path itself is tested on the fake cloud.

use aws_sdk_cloudformation as cfn;
use aws_sdk_iam as iam;
use aws_sdk_organizations as org;
use serde_json::Value;
use tests::proxy::{Proxy, is_read};
use tests::{MANAGEMENT_ACCOUNT, Moto, ou, seed_org};

fn inventory(org: &tests::SeededOrg, action: &str) -> String {
    format!(
        "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  name: \"Rolecall-{{region}}\"\n  external_id: drift-ext\n  max_session_duration: 7200\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: [\"{action}\"], Resource: \"*\"}}]}}\ndeploy:\n  regions: [us-east-1]\norganization:\n  ous: [{}]\n  tags: {{team: platform}}\n",
        org.ou("Root/Apps")
    )
}

fn report(run: &tests::Run) -> Value {
    let json: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    crate::valid(json, "drift.v2.schema.json")
}

/// (account name, kind, details joined) for every finding that is not in sync.
fn findings(json: &Value, org: &tests::SeededOrg) -> Vec<(String, String, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] != "IN_SYNC")
        .map(|f| {
            let id = f["account_id"].as_str().unwrap();
            let name = org
                .accounts
                .iter()
                .find(|a| a.id == id)
                .map_or_else(|| f["account_name"].as_str().unwrap().to_owned(), |a| a.name.clone());
            let details: Vec<String> = f["details"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    format!(
                        "{}: {} -> {}",
                        d["path"].as_str().unwrap(),
                        d["expected"].as_str().unwrap(),
                        d["actual"].as_str().unwrap()
                    )
                })
                .collect();
            (name, f["kind"].as_str().unwrap().to_owned(), details.join(" | "))
        })
        .collect()
}

#[test]
fn drift_finds_exactly_what_changed_and_never_writes() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let rt = tests::runtime();
    const TEAM: &[(&str, &str)] = &[("team", "platform")];
    let tree = vec![ou(
        "Apps",
        &[
            ("app-1", TEAM),
            ("app-2", TEAM),
            ("app-3", TEAM),
            ("app-4", TEAM),
            ("app-5", TEAM),
            ("app-6", TEAM),
            ("app-7", TEAM),
        ],
        vec![],
    )];
    let seeded = rt.block_on(async { seed_org(&moto.sdk_config().await, &[], &tree).await });
    let dir = tests::write_inventory("drift", "").parent().unwrap().to_path_buf();
    let inv = dir.join("inventory.yaml");
    std::fs::write(&inv, inventory(&seeded, "s3:Get*")).unwrap();
    let reg = dir.join("registry.json");
    let (inv_s, reg_s) = (inv.to_str().unwrap(), reg.to_str().unwrap());
    tests::rolecall(
        &proxy.url(),
        &[
            "apply",
            "-i",
            inv_s,
            "--yes",
            "--poll-interval",
            "0.05",
            "--registry",
            reg_s,
        ],
    )
    .expect_code(0);
    let ids: Vec<String> = seeded.accounts.iter().map(|a| a.id.clone()).collect();
    rt.block_on(tests::fix_moto_inline_policies(&moto, &ids, "Rolecall-us-east-1"));
    let drift = |extra: &[&str]| {
        let mut args = vec!["drift", "-i", inv_s, "--registry", reg_s, "--detailed-exitcode"];
        args.extend_from_slice(extra);
        tests::rolecall(&proxy.url(), &args)
    };

    // A clean rollout: all in sync, exit 0, no false positive.
    proxy.take_calls();
    let run = drift(&["--json"]);
    run.expect_code(0);
    let json = report(&run);
    assert_eq!(findings(&json, &seeded), Vec::<(String, String, String)>::new());
    assert_eq!(json["counts"]["IN_SYNC"], 7);
    let calls = proxy.take_calls();
    assert!(calls.keys().all(|op| is_read(op)), "drift wrote: {calls:?}");

    // Out of band, in five accounts, then a new account in the OU (without
    // the tag the inventory asks for) and a closed account.
    let id = |name: &str| seeded.account(name).id.clone();
    let role = "Rolecall-us-east-1";
    rt.block_on(async {
        let iam_in = |account: String| {
            let moto = &moto;
            async move { iam::Client::new(&moto.account_config(&account).await) }
        };
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{MANAGEMENT_ACCOUNT}:root"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"drift-ext"}}}}}},{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::666666666666:root"}},"Action":"sts:AssumeRole"}}]}}"#
        );
        iam_in(id("app-1")).await.update_assume_role_policy().role_name(role).policy_document(trust).send().await.unwrap();
        iam_in(id("app-2"))
            .await
            .put_role_policy()
            .role_name(role)
            .policy_name("backdoor")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .send()
            .await
            .unwrap();
        let c = iam_in(id("app-3")).await;
        let policy = c
            .create_policy()
            .policy_name("Extra")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}"#)
            .send()
            .await
            .unwrap();
        let arn = policy.policy().unwrap().arn().unwrap().to_owned();
        c.attach_role_policy().role_name(role).policy_arn(&arn).send().await.unwrap();
        let c = iam_in(id("app-4")).await;
        c.delete_role_policy().role_name(role).policy_name("rolecall-policy").send().await.unwrap();
        c.delete_role().role_name(role).send().await.unwrap();
        let cf = cfn::Client::new(&moto.account_config(&id("app-5")).await);
        cf.delete_stack().stack_name("rolecall-target-role").send().await.unwrap();
        let o = org::Client::new(&moto.sdk_config().await);
        let created = o.create_account().account_name("app-new").email("app-new@example.com").send().await.unwrap();
        let new_id = created.create_account_status().unwrap().account_id().unwrap().to_owned();
        o.move_account()
            .account_id(&new_id)
            .source_parent_id(seeded.ou("Root"))
            .destination_parent_id(seeded.ou("Root/Apps"))
            .send()
            .await
            .unwrap();
        o.close_account().account_id(id("app-6")).send().await.unwrap();
    });

    proxy.take_calls();
    let run = drift(&["--json", "--cfn-drift"]);
    run.expect_code(2);
    let json = report(&run);
    let got = findings(&json, &seeded);
    let kinds: Vec<(&str, &str)> = got.iter().map(|(n, k, _)| (n.as_str(), k.as_str())).collect();
    let mut kinds_sorted = kinds.clone();
    kinds_sorted.sort();
    assert_eq!(
        kinds_sorted,
        [
            ("app-1", "DRIFTED"),
            ("app-2", "DRIFTED"),
            ("app-3", "DRIFTED"),
            ("app-4", "DRIFTED"),
            ("app-5", "MISSING"),
            ("app-6", "ORPHANED"),
            ("app-new", "UNCOVERED"),
        ],
        "{got:#?}"
    );
    let detail = |name: &str| got.iter().find(|(n, _, _)| n == name).unwrap().2.clone();
    assert!(
        detail("app-1").contains("AssumeRolePolicyDocument.Statement: absent ->")
            && detail("app-1").contains("666666666666"),
        "{}",
        detail("app-1")
    );
    assert!(
        detail("app-2").starts_with("Policies.backdoor: absent ->"),
        "{}",
        detail("app-2")
    );
    assert!(
        detail("app-3").starts_with("ManagedPolicyArns: not attached -> arn:aws:iam::"),
        "{}",
        detail("app-3")
    );
    assert!(
        detail("app-4").contains("missing (deleted or renamed"),
        "{}",
        detail("app-4")
    );
    assert_eq!(
        json["notes"][0],
        "CloudFormation drift detection unavailable here; the live-role comparison was used"
    );
    assert_eq!(json["counts"]["IN_SYNC"], 1, "app-7 only");
    let calls = proxy.take_calls();
    assert!(
        calls
            .keys()
            .all(|op| is_read(op) || op == "cloudformation:DetectStackDrift"),
        "drift wrote: {calls:?}"
    );

    // --org: coverage against the whole organization (ListAccounts).
    let run = drift(&["--json", "--org"]);
    run.expect_code(2);
    let json = report(&run);
    assert_eq!(
        (
            json["counts"]["UNCOVERED"].as_u64(),
            json["counts"]["ORPHANED"].as_u64()
        ),
        (Some(1), Some(1)),
        "{json:#}"
    );

    // Markdown: a summary line, then a section per finding kind.
    let run = drift(&["--markdown"]);
    run.expect_code(2);
    assert!(
        run.stdout.starts_with("**rolecall drift: 7 findings in 8 targets**"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\n## DRIFTED (4)\n") && run.stdout.contains("\n## UNCOVERED (1)\n"),
        "{}",
        run.stdout
    );

    // The inventory changes and nobody applies: every stack is STALE.
    std::fs::write(&inv, inventory(&seeded, "s3:*")).unwrap();
    let run = drift(&["--json"]);
    run.expect_code(2);
    assert_eq!(
        report(&run)["counts"]["STALE"],
        5,
        "app-1..4 and app-7 still have their stacks (app-4 lost only its role)"
    );
}
