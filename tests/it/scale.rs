//! The loop closes at scale (issue 18), on moto with 125 accounts: output
//! that shows only what changes (an unchanged plan is a summary; `--all`
//! lists every account; 3 missing stacks are exactly 3 rows), `plan
//! --accounts` with its exit codes, NAME from Organizations for a listed
//! account, an out-of-band tag change that converges in one apply, drift
//! found (a widened trust policy, an added inline policy) and rendered as
//! an HTML report read back through a real browser's DOM, the drift put
//! back by `apply --revert-drift`, and `-v` / `-vv`.

use aws_sdk_cloudformation as cfn;
use aws_sdk_iam as iam;
use tests::{MANAGEMENT_ACCOUNT, Moto, ou, seed_org};

use crate::first_column;

/// An account name Organizations allows and a page must show as text.
const MARKUP_NAME: &str = "<img src=x onerror=document.title='pwned'>";
const MEMBERS: usize = 123;

#[test]
fn plan_apply_drift_and_revert_at_125_accounts() {
    let moto = Moto::start();
    let rt = tests::runtime();
    let mut tree = tests::member_org(MEMBERS, "prod");
    tree[0].accounts.push((MARKUP_NAME.to_owned(), vec![("env", "prod")]));
    tree.push(ou("Outside", &[("outside-listed", &[])], vec![]));
    let seeded = rt.block_on(async { seed_org(&moto.sdk_config().await, &[], &tree).await });
    let outside = seeded.account("outside-listed").id.clone();
    let members: Vec<String> = seeded
        .under("Root/Members", false)
        .iter()
        .map(|a| a.id.clone())
        .collect();
    assert_eq!(members.len(), MEMBERS + 1);
    let all: Vec<String> = members.iter().cloned().chain([outside.clone()]).collect();

    let dir = tests::write_inventory("scale", "").parent().unwrap().to_path_buf();
    let inv = dir.join("scale.yaml");
    std::fs::write(
        &inv,
        format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  name: Rolecall\n  tags: {{team: platform}}\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: [\"s3:Get*\"], Resource: \"*\"}}]}}\ndeploy:\n  regions: [us-east-1]\n  concurrency: 32\naccounts:\n  - {{id: \"{outside}\"}}\norganization:\n  ous: [{}]\n",
            seeded.ou("Root/Members")
        ),
    )
    .unwrap();
    let inv_s = inv.to_str().unwrap();
    let url = moto.url();
    let rolecall = |args: &[&str]| tests::rolecall_in(&dir, &url, args);

    let applied = rolecall(&["apply", "-i", inv_s, "--yes", "--poll-interval", "0.05"]);
    applied.expect_code(0);
    assert!(
        applied.stdout.contains("Apply: 125 created, 0 updated, 0 unchanged"),
        "{}",
        applied.stdout
    );

    // An unchanged plan is a summary; --all lists every account.
    let plan = rolecall(&["plan", "-i", inv_s, "--detailed-exitcode"]);
    plan.expect_code(0);
    assert!(plan.stdout.lines().count() <= 15, "{}", plan.stdout);
    assert!(
        plan.stdout.contains("125 unchanged not listed (--all lists every row)"),
        "{}",
        plan.stdout
    );
    assert!(first_column(&plan.stdout).is_empty(), "{}", plan.stdout);
    let every = rolecall(&["plan", "-i", inv_s, "--all"]);
    every.expect_code(0);
    assert_eq!(crate::sorted(first_column(&every.stdout)), crate::sorted(all.clone()));
    // A listed account without a name shows its Organizations name.
    let outside_row = every.stdout.lines().find(|l| l.starts_with(&outside)).unwrap();
    assert_eq!(
        outside_row.split_whitespace().nth(1),
        Some("outside-listed"),
        "{outside_row}"
    );

    // Three stacks deleted out of band: exactly those three rows.
    let gone = [&members[5], &members[60], &members[110]];
    rt.block_on(async {
        for account in gone {
            cfn_client(&moto, account)
                .await
                .delete_stack()
                .stack_name("rolecall-target-role")
                .send()
                .await
                .unwrap();
        }
    });
    let plan = rolecall(&["plan", "-i", inv_s, "--detailed-exitcode"]);
    plan.expect_code(2);
    assert_eq!(
        crate::sorted(first_column(&plan.stdout)),
        crate::sorted(gone.iter().map(|a| a.to_string()).collect())
    );
    assert_eq!(plan.stdout.lines().filter(|l| l.contains(" create ")).count(), 3);
    assert!(plan.stdout.lines().count() <= 15, "{}", plan.stdout);
    assert!(plan.stdout.contains("122 unchanged not listed"), "{}", plan.stdout);
    rolecall(&["plan", "-i", inv_s, "--accounts", gone[0], "--detailed-exitcode"]).expect_code(2);
    rolecall(&["plan", "-i", inv_s, "--accounts", &members[0], "--detailed-exitcode"]).expect_code(0);
    rolecall(&["plan", "-i", inv_s, "--accounts", "999999999999"]).expect_code(1);
    let applied = rolecall(&["apply", "-i", inv_s, "--yes", "--poll-interval", "0.05"]);
    applied.expect_code(0);
    assert_eq!(
        crate::sorted(first_column(&applied.stdout)).len(),
        3,
        "{}",
        applied.stdout
    );
    assert!(
        applied.stdout.contains("3 created, 0 updated, 122 unchanged"),
        "{}",
        applied.stdout
    );

    // An out-of-band tag change converges in one apply.
    let retagged = &members[7];
    rt.block_on(async {
        let client = cfn_client(&moto, retagged).await;
        let stack = client
            .describe_stacks()
            .stack_name("rolecall-target-role")
            .send()
            .await
            .unwrap();
        let tags: Vec<cfn::types::Tag> = stack.stacks()[0]
            .tags()
            .iter()
            .map(|t| {
                let value = if t.key() == Some("team") {
                    "someone-else"
                } else {
                    t.value().unwrap()
                };
                cfn::types::Tag::builder().key(t.key().unwrap()).value(value).build()
            })
            .collect();
        client
            .update_stack()
            .stack_name("rolecall-target-role")
            .use_previous_template(true)
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
    });
    let plan = rolecall(&["plan", "-i", inv_s, "--detailed-exitcode"]);
    plan.expect_code(2);
    assert_eq!(
        first_column(&plan.stdout),
        std::slice::from_ref(retagged),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("tags differ from the inventory"),
        "{}",
        plan.stdout
    );
    rolecall(&["apply", "-i", inv_s, "--yes", "--poll-interval", "0.05"]).expect_code(0);
    rolecall(&["plan", "-i", inv_s, "--detailed-exitcode"]).expect_code(0);

    // Drift: a widened trust policy and an added inline policy.
    rt.block_on(tests::fix_moto_inline_policies(&moto, &all, "Rolecall"));
    let widened = members[3].clone();
    let marked = seeded.account(MARKUP_NAME).id.clone();
    rt.block_on(async {
        let client = iam_client(&moto, &widened).await;
        let role = client.get_role().role_name("Rolecall").send().await.unwrap();
        let mut trust =
            planner::drift::parse_document(role.role().unwrap().assume_role_policy_document().unwrap()).unwrap();
        trust["Statement"].as_array_mut().unwrap().push(serde_json::json!(
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}
        ));
        client
            .update_assume_role_policy()
            .role_name("Rolecall")
            .policy_document(trust.to_string())
            .send()
            .await
            .unwrap();
        iam_client(&moto, &marked)
            .await
            .put_role_policy()
            .role_name("Rolecall")
            .policy_name("backdoor")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .send()
            .await
            .unwrap();
    });
    let report = dir.join("drift.html");
    let drift = rolecall(&[
        "drift",
        "-i",
        inv_s,
        "--detailed-exitcode",
        "--html",
        report.to_str().unwrap(),
    ]);
    drift.expect_code(2);
    assert_eq!(
        crate::sorted(first_column(&drift.stdout)),
        crate::sorted(vec![widened.clone(), marked.clone()]),
        "{}",
        drift.stdout
    );
    assert!(drift.stdout.contains("123 in sync not listed"), "{}", drift.stdout);
    assert!(drift.stdout.contains("--revert-drift"), "{}", drift.stdout);

    // The report, rendered by Chromium with its script run.
    let dom = tests::rendered_dom(&report, "");
    assert!(dom.contains("id=\"count-DRIFTED\">2<"), "{dom}");
    assert!(dom.contains("id=\"count-IN_SYNC\">123<"), "{dom}");
    assert_eq!(dom.matches("<tr data-account=").count(), 125);
    assert!(dom.contains("125 of 125 accounts"));
    assert!(!dom.contains("<img"), "an account name became markup");
    assert!(dom.contains("&lt;img src=x onerror="), "the name is shown as text");
    assert!(
        dom.contains("<title>rolecall drift — scale</title>"),
        "a script ran from a name"
    );
    assert!(
        dom.contains("Policies.backdoor"),
        "the findings' details are in the page"
    );
    let filtered = tests::rendered_dom(&report, "#result=DRIFTED");
    let rows: Vec<&str> = filtered
        .split("<tr data-account=\"")
        .skip(1)
        .map(|r| &r[..12])
        .collect();
    assert_eq!(
        crate::sorted(rows.iter().map(|r| r.to_string()).collect()),
        crate::sorted(vec![widened.clone(), marked.clone()])
    );
    assert!(filtered.contains("2 of 125 accounts"), "{filtered}");
    let searched = tests::rendered_dom(&report, &format!("#q={}", &widened));
    assert_eq!(searched.matches("<tr data-account=").count(), 1);
    let png = dir.join("drift.png");
    tests::screenshot(&report, &png);
    let (colours, ink) = tests::png_colours(&png);
    assert!(
        colours > 20 && ink > 0.01,
        "a blank screenshot: {colours} colours, {ink:.3} ink"
    );

    // Put back, then in sync.
    let reverted = rolecall(&[
        "apply",
        "-i",
        inv_s,
        "--revert-drift",
        "--yes",
        "--poll-interval",
        "0.05",
    ]);
    reverted.expect_code(0);
    assert!(reverted.stdout.contains("0 created, 2 updated"), "{}", reverted.stdout);
    assert!(
        reverted.stdout.contains("DeleteRolePolicy backdoor"),
        "{}",
        reverted.stdout
    );
    assert!(
        reverted.stdout.contains("UpdateAssumeRolePolicy"),
        "{}",
        reverted.stdout
    );
    let drift = rolecall(&["drift", "-i", inv_s, "--detailed-exitcode"]);
    drift.expect_code(0);
    assert!(drift.stdout.lines().count() <= 3, "{}", drift.stdout);

    // -v: one line per stack with the decision; -vv: the AWS calls.
    let verbose = rolecall(&["plan", "-i", inv_s, "-v"]);
    verbose.expect_code(0);
    let decided = verbose
        .stderr
        .lines()
        .filter(|l| l.contains("INFO") && l.contains("no-op: "))
        .count();
    assert_eq!(decided, 125, "{}", verbose.stderr);
    let quiet = rolecall(&["plan", "-i", inv_s]);
    assert!(!quiet.stderr.contains("INFO"), "{}", quiet.stderr);
    let calls = rolecall(&["plan", "-i", inv_s, "--accounts", &members[0], "-vv"]);
    calls.expect_code(0);
    let line = calls
        .stderr
        .lines()
        .find(|l| l.contains("CloudFormation.DescribeStacks ok"))
        .unwrap_or_else(|| panic!("{}", calls.stderr));
    for field in [
        format!("account={}", members[0]),
        "region=us-east-1".to_owned(),
        "status=200".to_owned(),
        "attempts=1".to_owned(),
        "ms=".to_owned(),
    ] {
        assert!(line.contains(&field), "{field} in {line}");
    }
    assert!(
        calls.stderr.contains("STS.AssumeRole ok account=caller"),
        "{}",
        calls.stderr
    );
    assert!(!calls.stderr.contains(tests::SECRET_KEY));
}

async fn cfn_client(moto: &Moto, account: &str) -> cfn::Client {
    cfn::Client::new(&moto.account_config(account).await)
}

async fn iam_client(moto: &Moto, account: &str) -> iam::Client {
    iam::Client::new(&moto.account_config(account).await)
}
