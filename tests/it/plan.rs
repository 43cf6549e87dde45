//! Discovery and planning against moto.

use std::collections::BTreeMap;

use aws_sdk_cloudformation as cfn;
use serde_json::Value;
use tests::{MANAGEMENT_ACCOUNT, write_inventory};

use crate::{first_column, ids, org_fixture, sorted};

const POLICY: &str =
    "  policy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}]}\n";

fn inventory(organization: &str) -> String {
    format!(
        "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  name: \"Rolecall-{{region}}\"\n{POLICY}deploy:\n  regions: [us-east-1, eu-west-1]\n{organization}"
    )
}

/// The `account_id`s of `accounts --json`.
fn account_ids(json: &Value) -> Vec<String> {
    let targets = json.as_array().expect("accounts --json is a list");
    targets
        .iter()
        .map(|t| t["account_id"].as_str().expect("account_id").to_owned())
        .collect()
}

#[test]
fn discovery_recursive_tags_and_exclude() {
    let (moto, org) = org_fixture();

    // Root, recursive: every member account; the management account is the
    // source account and is skipped with a note.
    let root = org.ou("Root");
    let path = write_inventory("root", &inventory(&format!("organization:\n  ous: [{root}]\n")));
    let run = moto.rolecall(&["accounts", "-i", path.to_str().unwrap()]);
    run.expect_code(0);
    assert_eq!(first_column(&run.stdout), ids(&org.accounts.iter().collect::<Vec<_>>()));
    assert!(
        run.stdout.contains("21 accounts, 42 account/region pairs"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(&format!("note: {MANAGEMENT_ACCOUNT}")),
        "{}",
        run.stderr
    );

    // Prod: not recursive = its three direct accounts; recursive = also
    // Regulated and Regulated/Vault (four levels below the root).
    let prod = org.ou("Root/Workloads/Prod");
    for (recursive, expected) in [
        (false, org.under("Root/Workloads/Prod", false)),
        (true, org.under("Root/Workloads/Prod", true)),
    ] {
        let path = write_inventory(
            "prod",
            &inventory(&format!("organization:\n  ous: [{prod}]\n  recursive: {recursive}\n")),
        );
        let run = moto.rolecall(&["accounts", "-i", path.to_str().unwrap(), "--json"]);
        run.expect_code(0);
        let json: Value = serde_json::from_str(&run.stdout).unwrap();
        let found = account_ids(&json);
        assert_eq!(sorted(found), ids(&expected), "recursive: {recursive}");
    }
    assert_eq!(org.under("Root/Workloads/Prod", true).len(), 6);
    assert!(
        org.under("Root/Workloads/Prod", true)
            .iter()
            .any(|a| a.path == "Root/Workloads/Prod/Regulated/Vault")
    );

    // Tag filter on the whole organization, with one account excluded and
    // one listed by hand with its own regions.
    let web_dev = org.account("web-dev");
    let audit = org.account("audit");
    let text = inventory(&format!(
        "accounts:\n  - {{id: \"{}\", name: web-dev-listed, regions: [eu-west-1]}}\norganization:\n  ous: [{root}]\n  tags: {{env: prod}}\n  exclude: [\"{}\"]\n",
        web_dev.id, audit.id
    ));
    let path = write_inventory("tags", &text);
    let run = moto.rolecall(&["accounts", "-i", path.to_str().unwrap(), "--json"]);
    run.expect_code(0);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let mut expected: Vec<String> = org
        .accounts
        .iter()
        .filter(|a| a.tags.get("env").map(String::as_str) == Some("prod") && a.id != audit.id)
        .map(|a| a.id.clone())
        .collect();
    expected.push(web_dev.id.clone());
    let found = account_ids(&json);
    assert_eq!(sorted(found), sorted(expected));
    let listed = json
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["account_id"] == web_dev.id.as_str())
        .unwrap();
    assert_eq!(
        (
            listed["account_name"].as_str(),
            listed["regions"].clone(),
            listed["source"].as_str()
        ),
        (
            Some("web-dev-listed"),
            serde_json::json!(["eu-west-1"]),
            Some("inventory")
        )
    );
}

#[test]
fn plan_creates_everywhere_then_sees_noop_update_and_blocked() {
    let (moto, org) = org_fixture();
    let root = org.ou("Root");
    let text = inventory(&format!("organization:\n  ous: [{root}]\n"));
    let path = write_inventory("plan", &text);
    let file = path.to_str().unwrap();

    // Empty organization: create in every account and region.
    let run = moto.rolecall(&["plan", "-i", file]);
    run.expect_code(0);
    let rows: Vec<&str> = run.stdout.lines().filter(|l| l.contains(" create ")).collect();
    assert_eq!(rows.len(), 42, "{}", run.stdout);
    assert!(run.stdout.contains("Plan: 42 to create, 0 to update, 0 to recover, 0 to wait for, 0 unchanged, 0 blocked, 0 errors (42 stacks in 21 accounts)"), "{}", run.stdout);
    moto.rolecall(&["plan", "-i", file, "--detailed-exitcode"])
        .expect_code(2);

    // The test creates stacks itself: matching in web-prod (both regions),
    // outdated in api-prod (us-east-1), not rolecall's in data-prod (us-east-1).
    let read = |p: &std::path::Path| std::fs::read_to_string(p);
    let (inv, _) = planner::inventory::parse(&text, &path, &read).unwrap();
    let desired = planner::desired(&inv.roles[0]);
    let rt = tests::runtime();
    let create = |account: &str, region: &str, tags: BTreeMap<String, String>| {
        rt.block_on(async {
            let config = moto.account_config(account).await;
            let client = cfn::Client::from_conf(
                cfn::config::Builder::from(&config)
                    .region(cfn::config::Region::new(region.to_owned()))
                    .build(),
            );
            let tags = tags
                .into_iter()
                .map(|(k, v)| cfn::types::Tag::builder().key(k).value(v).build())
                .collect();
            client
                .create_stack()
                .stack_name(&desired.stack_name)
                .template_body(&desired.template_body)
                .set_tags(Some(tags))
                .capabilities(cfn::types::Capability::CapabilityNamedIam)
                .send()
                .await
                .expect("create stack in moto");
        })
    };
    let web = org.account("web-prod");
    let api = org.account("api-prod");
    let data = org.account("data-prod");
    create(&web.id, "us-east-1", desired.stack_tags());
    create(&web.id, "eu-west-1", desired.stack_tags());
    let mut outdated = desired.stack_tags();
    outdated.insert(model::TAG_FINGERPRINT.to_owned(), "0".repeat(64));
    create(&api.id, "us-east-1", outdated);
    create(
        &data.id,
        "us-east-1",
        BTreeMap::from([("owner".to_owned(), "someone-else".to_owned())]),
    );

    // --accounts narrows the plan, and its exit code follows only them.
    let narrowed = moto.rolecall(&[
        "plan",
        "-i",
        file,
        "--accounts",
        &web.id,
        "--detailed-exitcode",
        "--json",
    ]);
    narrowed.expect_code(0);
    let entries: Value = serde_json::from_str(&narrowed.stdout).unwrap();
    assert_eq!(entries["entries"].as_array().unwrap().len(), 2, "{entries:#}");
    assert!(
        entries["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["account_id"] == web.id.as_str())
    );
    moto.rolecall(&["plan", "-i", file, "--accounts", &api.id, "--detailed-exitcode"])
        .expect_code(2);
    let unknown = moto.rolecall(&["plan", "-i", file, "--accounts", "999999999999"]);
    unknown.expect_code(1);
    assert!(unknown.stderr.contains("999999999999"), "{}", unknown.stderr);

    let run = moto.rolecall(&["plan", "-i", file, "--json"]);
    run.expect_code(1); // a blocked stack needs a human
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let action = |account: &str, region: &str| -> (String, String) {
        let e = json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["account_id"] == account && e["region"] == region)
            .unwrap();
        (
            e["action"].as_str().unwrap().to_owned(),
            e["reason"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(action(&web.id, "us-east-1").0, "no-op");
    assert_eq!(action(&web.id, "eu-west-1").0, "no-op");
    assert_eq!(
        action(&api.id, "us-east-1"),
        ("update".to_owned(), "template differs from the inventory".to_owned())
    );
    assert_eq!(action(&api.id, "eu-west-1").0, "create");
    let (blocked, reason) = action(&data.id, "us-east-1");
    assert_eq!(blocked, "blocked");
    assert!(reason.contains("was not created by rolecall"), "{reason}");
    let summary = &json["summary"];
    assert_eq!(
        (
            summary["create"].as_u64(),
            summary["update"].as_u64(),
            summary["no_op"].as_u64(),
            summary["blocked"].as_u64()
        ),
        (Some(38), Some(1), Some(2), Some(1))
    );
    assert_eq!(json["errors"].as_array().unwrap().len(), 0);

    // plan wrote nothing: the same plan again.
    let again: Value = serde_json::from_str(&moto.rolecall(&["plan", "-i", file, "--json"]).stdout).unwrap();
    assert_eq!(again["summary"], json["summary"]);

    // A tag change alone is an update that says so.
    let retagged = text.replace("role:\n", "role:\n  tags: {cost-center: \"42\"}\n");
    let path = write_inventory("retag", &retagged);
    let run = moto.rolecall(&["plan", "-i", path.to_str().unwrap(), "--json"]);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let web_east = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["account_id"] == web.id.as_str() && e["region"] == "us-east-1")
        .unwrap();
    assert_eq!(
        (web_east["action"].as_str(), web_east["differences"].clone()),
        (Some("update"), serde_json::json!(["tags"]))
    );
}

#[test]
fn discovery_failure_is_a_clear_error() {
    let (moto, _org) = org_fixture();
    let path = write_inventory("badou", &inventory("organization:\n  ous: [ou-zzzz-99999999]\n"));
    let run = moto.rolecall(&["plan", "-i", path.to_str().unwrap()]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("account discovery through AWS Organizations failed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("ou-zzzz-99999999"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing on stdout on failure: {}", run.stdout);
}

#[test]
fn throttling_is_retried() {
    let (moto, org) = org_fixture();
    let proxy = tests::proxy::Proxy::start(moto.port);
    let root = org.ou("Root");
    let path = write_inventory("throttle", &inventory(&format!("organization:\n  ous: [{root}]\n")));
    // moto never throttles; the proxy answers these calls itself with the
    // error AWS sends. rolecall rides them out with its retry settings.
    proxy.throttle("AssumeRole", 30);
    proxy.throttle("DescribeStacks", 120);
    proxy.throttle("ListAccountsForParent", 3);
    let run = tests::rolecall(&proxy.url(), &["plan", "-i", path.to_str().unwrap(), "--json"]);
    run.expect_code(0);
    assert_eq!(proxy.throttled(), 153);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["summary"]["create"].as_u64(), Some(42), "{}", run.stdout);
    assert_eq!(json["errors"].as_array().unwrap().len(), 0);
}
