//! Malformed inventories through the real binary: each gives its clear
//! error (file, line, column, key), exit code 1, no panic, and no AWS call
//! (the endpoint is a closed port).

use tests::{rolecall, write_inventory};

const HEAD: &str = "version: 1\nsource_account: \"111111111111\"\n";
/// Nothing listens here: a command that tried AWS would fail differently.
const CLOSED: &str = "http://127.0.0.1:9";

#[track_caller]
fn check(name: &str, text: &str, expected: &[&str]) {
    let path = write_inventory(name, text);
    let file = path.to_str().unwrap();
    for command in ["validate", "plan", "accounts"] {
        let run = rolecall(CLOSED, &[command, "-i", file]);
        run.expect_code(1);
        assert!(
            run.stdout.is_empty(),
            "{name}/{command}: stdout must stay empty: {}",
            run.stdout
        );
        for want in expected {
            let want = want.replace("FILE", file);
            assert!(
                run.stderr.contains(&want),
                "{name}/{command}: expected {want:?} in:\n{}",
                run.stderr
            );
        }
    }
}

#[test]
fn every_listed_mistake_is_reported_clearly() {
    check(
        "unknown-key",
        &format!("{HEAD}acounts: []\n"),
        &[
            "FILE:3:1: acounts: unknown key `acounts` at the top level",
            "did you mean `accounts`?",
        ],
    );
    check(
        "short-id",
        &format!("{HEAD}accounts:\n  - id: \"12345\"\n"),
        &["FILE:4:9: accounts[0].id: \"12345\" is not an AWS account id (expected exactly 12 digits)"],
    );
    check(
        "unquoted-id",
        &format!("{HEAD}accounts:\n  - id: 012345678901\n"),
        &[
            "FILE:4:9: accounts[0].id: account id 012345678901 is written as a number",
            "quote it: \"012345678901\"",
        ],
    );
    check(
        "duplicate-id",
        &format!("{HEAD}accounts:\n  - id: \"222222222222\"\n  - id: \"222222222222\"\n"),
        &["FILE:5:9: accounts[1].id: account 222222222222 is already listed as accounts[0]"],
    );
    check(
        "duplicate-name",
        &format!("{HEAD}accounts:\n  - {{id: \"222222222222\", name: a}}\n  - {{id: \"333333333333\", name: a}}\n"),
        &["accounts[1].name: name \"a\" is already used by accounts[0]"],
    );
    check(
        "bad-region",
        &format!("{HEAD}deploy:\n  regions: [us-east-1, useast2]\naccounts:\n  - id: \"222222222222\"\n"),
        &["FILE:4:24: deploy.regions[1]: \"useast2\" is not an AWS region name"],
    );
    check(
        "bad-role-name",
        &format!("{HEAD}role:\n  name: \"a/b\"\naccounts:\n  - id: \"222222222222\"\n"),
        &["FILE:4:9: role.name: \"a/b\" is not a valid IAM role name"],
    );
    check(
        "bad-stack-name",
        &format!("{HEAD}role:\n  stack_name: my_stack\naccounts:\n  - id: \"222222222222\"\n"),
        &["FILE:4:15: role.stack_name: \"my_stack\" is not a valid CloudFormation stack name"],
    );
    check(
        "profile-variable",
        &format!("{HEAD}profiles:\n  name: \"{{acct}}\"\naccounts:\n  - id: \"222222222222\"\n"),
        &["profiles.name: unknown variable `{acct}`"],
    );
    check(
        "profile-duplicate",
        &format!(
            "{HEAD}profiles:\n  name: \"x-{{role_name}}\"\naccounts:\n  - id: \"222222222222\"\n  - id: \"333333333333\"\n"
        ),
        &[
            "profiles.name: profile name \"x-RolecallTarget\" is generated for both account 222222222222 (222222222222) and account 333333333333 (333333333333); put {account_id} in profiles.name",
        ],
    );
    check(
        "profile-invalid",
        // An account name is made safe (`a;b` → `a-b`); the template's own
        // text cannot be, and the error is on its line.
        &format!(
            "{HEAD}profiles:\n  name: \"x [{{account_name}}]\"\naccounts:\n  - {{id: \"222222222222\", name: \"a;b\"}}\n"
        ),
        &["FILE:4:9: profiles.name: the text of \"x [{account_name}]\" contains ' '"],
    );
    check(
        "source-as-target",
        &format!("{HEAD}accounts:\n  - id: \"111111111111\"\n"),
        &[
            "accounts[0].id: 111111111111 is the source_account",
            "allow_source_account: true",
        ],
    );
    check(
        "wildcard-trust",
        &format!("{HEAD}role:\n  trusted_accounts: [\"*\"]\naccounts:\n  - id: \"222222222222\"\n"),
        &["role.trusted_accounts[0]: `*` is not allowed"],
    );
    check(
        "missing-template",
        &format!("{HEAD}role:\n  template: nowhere.yaml\naccounts:\n  - id: \"222222222222\"\n"),
        &["role.template: cannot read template", "nowhere.yaml"],
    );
    check(
        "not-yaml",
        "version: 1\naccounts: [\n",
        &["FILE:3:1: accounts: not valid YAML"],
    );
    check(
        "wrong-type",
        &format!("{HEAD}deploy:\n  concurrency: many\naccounts:\n  - id: \"222222222222\"\n"),
        &["deploy.concurrency: invalid type: string \"many\""],
    );
}

#[test]
fn several_problems_are_reported_in_one_run() {
    check(
        "several",
        &format!("{HEAD}accounts:\n  - id: \"1\"\n  - id: \"2\"\ndeploy:\n  regions: [moon-1]\n"),
        &[
            "accounts[0].id",
            "accounts[1].id",
            "deploy.regions[0]",
            "3 errors in FILE",
        ],
    );
}

#[test]
fn a_missing_file_and_a_bad_command_line() {
    let run = rolecall(CLOSED, &["validate", "-i", "/nonexistent/inventory.yaml"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("cannot read inventory /nonexistent/inventory.yaml"),
        "{}",
        run.stderr
    );
    let run = rolecall(CLOSED, &["plan"]);
    run.expect_code(64);
    assert!(run.stderr.contains("--inventory <FILE>"), "{}", run.stderr);
}
