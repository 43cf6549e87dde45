//! Table-driven tests: one `check` per feature, snapshots via expect-test
//! (`UPDATE_EXPECT=1 cargo test -p planner` rewrites them).

use std::collections::BTreeMap;
use std::path::Path;

use expect_test::{Expect, expect};
use model::{Action, DiscoveredAccount, Observed, StackInfo, TAG_FINGERPRINT, TAG_MANAGED_BY};

use crate::{decide, desired, inventory, targets};

const HEAD: &str = "version: 1\nsource_account: \"111111111111\"\n";

/// Files the inventory may refer to, for the injected reader.
fn read_file(path: &Path) -> std::io::Result<String> {
    match path.to_str() {
        Some("inv/templates/role.yaml") => Ok("Resources: {}\n".to_owned()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        )),
    }
}

#[track_caller]
fn check_inventory(text: &str, expect: Expect) {
    let actual = match inventory::parse(text, Path::new("inv/test.yaml"), &read_file) {
        Ok((inv, warnings)) => {
            let accounts: Vec<String> = inv.accounts.iter().map(|a| a.id.to_string()).collect();
            format!(
                "ok: accounts [{}]\n{}",
                accounts.join(", "),
                inventory::render(&warnings)
            )
        }
        Err(diagnostics) => inventory::render(&diagnostics),
    };
    expect.assert_eq(&actual);
}

#[test]
fn minimal_inventory_fills_defaults() {
    let (inv, warnings) = inventory::parse(
        &format!("{HEAD}accounts:\n  - id: \"222222222222\"\n    name: dev\n"),
        Path::new("inv/test.yaml"),
        &read_file,
    )
    .unwrap();
    assert_eq!(inv.roles[0].spec.name, "RolecallTarget");
    assert_eq!(inv.roles[0].spec.stack_name, "rolecall-target-role");
    assert_eq!(inv.roles[0].spec.trusted_accounts[0].as_str(), "111111111111");
    assert_eq!(inv.roles[0].spec.output_key, "RoleArn");
    assert_eq!(inv.deploy.bootstrap_role, "OrganizationAccountAccessRole");
    assert_eq!(inv.deploy.regions, ["us-east-1"]);
    assert_eq!(inv.deploy.concurrency, 64);
    assert_eq!(inv.profiles.name, "{account_name}");
    assert_eq!(inv.profiles.source_profile, "default");
    assert_eq!(warnings.len(), 1, "the full-access warning");
}

#[test]
fn full_access_is_warned_about() {
    check_inventory(
        &format!("{HEAD}accounts:\n  - id: \"222222222222\"\n"),
        expect![[r#"
            ok: accounts [222222222222]
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
        "#]],
    );
}

#[test]
fn example_and_demo_inventories_are_valid() {
    for file in ["example.yaml", "catalog.yaml", "demo.yaml", "demo-stacksets.yaml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../inventory").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p);
        if let Err(d) = inventory::parse(&text, &path, &read) {
            panic!("{}", inventory::render(&d));
        }
    }
}

#[test]
fn unknown_keys_are_all_reported_with_a_suggestion() {
    check_inventory(
        &format!(
            "{HEAD}rol:\n  name: X\naccounts:\n  - id: \"222222222222\"\n    regoins: [us-east-1]\ndeploy:\n  concurency: 4\n  colour: red\n"
        ),
        expect![[r#"
            error: inv/test.yaml:3:1: rol: unknown key `rol` at the top level
              help: did you mean `role`? valid keys here: version, name, source_account, allow_source_account, role, roles, deploy, profiles, accounts, organization, registry
            error: inv/test.yaml:7:5: accounts[0].regoins: unknown key `regoins` in `accounts[0]`
              help: did you mean `regions`? valid keys here: id, name, regions, tags
            error: inv/test.yaml:9:3: deploy.concurency: unknown key `concurency` in `deploy`
              help: did you mean `concurrency`? valid keys here: via, bootstrap_role, bootstrap_external_id, regions, concurrency, max_in_flight, failure_tolerance, stackset
            error: inv/test.yaml:10:3: deploy.colour: unknown key `colour` in `deploy`
              help: valid keys here: via, bootstrap_role, bootstrap_external_id, regions, concurrency, max_in_flight, failure_tolerance, stackset
            4 errors in inv/test.yaml
        "#]],
    );
}

#[test]
fn account_ids_must_be_twelve_quoted_digits() {
    check_inventory(
        &format!(
            "{HEAD}accounts:\n  - id: \"22222222222\"\n  - id: 012345678901\n  - id: \"abcdefghijkl\"\nrole:\n  trusted_accounts: [111111111111]\n"
        ),
        expect![[r#"
            error: inv/test.yaml:5:9: accounts[1].id: account id 012345678901 is written as a number; YAML reads unquoted digits as a number and can change them (a leading 0 is lost)
              help: quote it: "012345678901" (rolecall never guesses the intended id)
            error: inv/test.yaml:8:22: role.trusted_accounts[0]: account id 111111111111 is written as a number; YAML reads unquoted digits as a number and can change them (a leading 0 is lost)
              help: quote it: "111111111111" (rolecall never guesses the intended id)
            2 errors in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!("{HEAD}accounts:\n  - id: \"22222222222\"\n  - id: \"abcdefghijkl\"\n"),
        expect![[r#"
            error: inv/test.yaml:4:9: accounts[0].id: "22222222222" is not an AWS account id (expected exactly 12 digits)
              help: write the full 12-digit account id, in quotes
            error: inv/test.yaml:5:9: accounts[1].id: "abcdefghijkl" is not an AWS account id (expected exactly 12 digits)
              help: write the full 12-digit account id, in quotes
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            2 errors in inv/test.yaml
        "#]],
    );
}

#[test]
fn duplicate_accounts_and_names() {
    check_inventory(
        &format!(
            "{HEAD}accounts:\n  - {{id: \"222222222222\", name: dev}}\n  - {{id: \"333333333333\", name: dev}}\n  - {{id: \"222222222222\", name: other}}\n"
        ),
        expect![[r#"
            error: inv/test.yaml:5:32: accounts[1].name: name "dev" is already used by accounts[0]
              help: give every account a distinct name
            error: inv/test.yaml:6:10: accounts[2].id: account 222222222222 is already listed as accounts[0]
              help: list every account once; merge the two entries
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            2 errors in inv/test.yaml
        "#]],
    );
}

#[test]
fn regions_role_and_stack_names() {
    check_inventory(
        &format!(
            "{HEAD}role:\n  name: \"my role\"\n  stack_name: 9lives\ndeploy:\n  regions: [us-east-1, US-WEST-2, us-east-1]\naccounts:\n  - id: \"222222222222\"\n    regions: [mars-1]\n"
        ),
        expect![[r#"
            error: inv/test.yaml:4:9: role.name: "my role" is not a valid IAM role name: character ' ' is not allowed
              help: use 1-64 letters, digits and +=,.@_- (and {region} if the role goes to several regions)
            error: inv/test.yaml:5:15: role.stack_name: "9lives" is not a valid CloudFormation stack name: it must start with a letter
              help: start with a letter; use up to 128 letters, digits and hyphens
            error: inv/test.yaml:7:24: deploy.regions[1]: "US-WEST-2" is not an AWS region name
              help: write a region such as us-east-1 or eu-west-1
            error: inv/test.yaml:7:35: deploy.regions[2]: region us-east-1 is listed twice
              help: remove the duplicate
            error: inv/test.yaml:10:15: accounts[0].regions[0]: "mars-1" is not an AWS region name
              help: write a region such as us-east-1 or eu-west-1
            warning: inv/test.yaml:3:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            5 errors in inv/test.yaml
        "#]],
    );
}

#[test]
fn a_fixed_role_name_in_several_regions_collides() {
    check_inventory(
        &format!("{HEAD}accounts:\n  - id: \"222222222222\"\n    regions: [us-east-1, eu-west-1]\n"),
        expect![[r#"
            error: inv/test.yaml:5:14: accounts[0].regions: role "RolecallTarget" (role.name) would be created in 2 regions of one account, but IAM role names are global to an account: the second stack fails with EntityAlreadyExists
              help: put {region} in the name (e.g. name: "RolecallTarget-{region}") to get one role per region, or deploy to one region
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            1 error in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!(
            "{HEAD}role:\n  name: \"Admin-{{region}}\"\n  policy: {{Statement: []}}\ndeploy:\n  regions: [us-east-1, eu-west-1]\naccounts:\n  - id: \"222222222222\"\n"
        ),
        expect![[r#"
            ok: accounts [222222222222]
        "#]],
    );
    check_inventory(
        &format!("{HEAD}role:\n  name: \"Admin-{{account}}\"\naccounts:\n  - id: \"222222222222\"\n"),
        expect![[r#"
        error: inv/test.yaml:4:9: role.name: "Admin-{account}" is not a valid IAM role name: the only variable a role name may use is {region}
          help: use 1-64 letters, digits and +=,.@_- (and {region} if the role goes to several regions)
        warning: inv/test.yaml:3:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
          help: set role.policy to the least privilege the role needs
        1 error in inv/test.yaml
    "#]],
    );
    let inv = inventory_with("role:\n  name: \"Admin-{region}\"\n");
    assert!(
        desired(&inv.roles[0])
            .template_body
            .contains("\"Fn::Sub\": \"Admin-${AWS::Region}\"")
    );
}

#[test]
fn profile_name_templates() {
    check_inventory(
        &format!("{HEAD}profiles:\n  name: \"{{account}}-x\"\naccounts:\n  - id: \"222222222222\"\n"),
        expect![[r##"
            error: inv/test.yaml:4:9: profiles.name: unknown variable `{account}` in "{account}-x" (use {account_name} {account_id} {role_name} {role} {region})
              help: write the name from {account_name} {account_id} {role_name} {region} and text without whitespace or []\;'"#
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            1 error in inv/test.yaml
        "##]],
    );
    // The literal text is wrong whatever the accounts are called: the error
    // is on the profiles.name line.
    check_inventory(
        &format!(
            "{HEAD}profiles:\n  name: \"x [{{account_name}}]\"\naccounts:\n  - {{id: \"222222222222\", name: a}}\n"
        ),
        expect![[r##"
            error: inv/test.yaml:4:9: profiles.name: the text of "x [{account_name}]" contains ' ', which the AWS CLI does not accept in a profile name (whitespace and []\;'"# are not allowed)
              help: write the name from {account_name} {account_id} {role_name} {region} and text without whitespace or []\;'"#
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            1 error in inv/test.yaml
        "##]],
    );
    check_inventory(
        &format!(
            "{HEAD}profiles:\n  name: \"{{role_name}}\"\naccounts:\n  - {{id: \"222222222222\", name: a}}\n  - {{id: \"333333333333\", name: b}}\n"
        ),
        expect![[r#"
            error: inv/test.yaml:4:9: profiles.name: profile name "RolecallTarget" is generated for both account 222222222222 (a) and account 333333333333 (b); put {account_id} in profiles.name (e.g. "{account_name}-{account_id}"), or give the accounts distinct names
              help: profile names come from profiles.name with each variable made safe (see inventory/README.md)
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            1 error in inv/test.yaml
        "#]],
    );
}

#[test]
fn real_account_names_get_safe_profile_names() {
    // Control Tower's names, and names with parentheses, dots, non-ASCII.
    let accounts = "accounts:\n  - {id: \"222222222222\", name: Log Archive}\n  - {id: \"333333333333\", name: Audit}\n  - {id: \"444444444444\", name: \"web [prod] (EU)\"}\n  - {id: \"555555555555\", name: Zürich.ops}\n";
    check_inventory(
        &format!("{HEAD}{accounts}"),
        expect![[r#"
        ok: accounts [222222222222, 333333333333, 444444444444, 555555555555]
        warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
          help: set role.policy to the least privilege the role needs
    "#]],
    );
    // Two names that are the same once safe: both accounts and the fix.
    let clash =
        "accounts:\n  - {id: \"222222222222\", name: Log Archive}\n  - {id: \"333333333333\", name: Log-Archive}\n";
    check_inventory(
        &format!("{HEAD}{clash}"),
        expect![[r#"
        error: inv/test.yaml:5:32: accounts[1].name: profile name "Log-Archive" is generated for both account 222222222222 (Log Archive) and account 333333333333 (Log-Archive); put {account_id} in profiles.name (e.g. "{account_name}-{account_id}"), or give the accounts distinct names
          help: profile names come from profiles.name with each variable made safe (see inventory/README.md)
        warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
          help: set role.policy to the least privilege the role needs
        1 error in inv/test.yaml
    "#]],
    );
    check_inventory(
        &format!("{HEAD}profiles:\n  name: \"{{account_name}}-{{account_id}}\"\n{clash}"),
        expect![[r#"
            ok: accounts [222222222222, 333333333333]
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
        "#]],
    );
}

#[test]
fn source_account_as_target_needs_opt_in() {
    let accounts = "accounts:\n  - id: \"111111111111\"\n";
    check_inventory(
        &format!("{HEAD}{accounts}"),
        expect![[r#"
            error: inv/test.yaml:4:9: accounts[0].id: 111111111111 is the source_account; deploying the role into the account that assumes it is usually a mistake
              help: remove it from accounts, or set `allow_source_account: true` at the top level if you mean it
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            1 error in inv/test.yaml
        "#]],
    );
    let policy = "role:\n  policy: {Version: \"2012-10-17\", Statement: []}\n";
    check_inventory(
        &format!("{HEAD}allow_source_account: true\n{policy}{accounts}"),
        expect![[r#"
            ok: accounts [111111111111]
        "#]],
    );
}

#[test]
fn wildcard_trust_is_refused() {
    check_inventory(
        &format!("{HEAD}role:\n  trusted_accounts: [\"*\"]\naccounts:\n  - id: \"222222222222\"\n"),
        expect![[r#"
            error: inv/test.yaml:4:22: role.trusted_accounts[0]: `*` is not allowed: a trust principal of "*" would let any AWS account assume the role
              help: list the 12-digit ids of the accounts that may assume the role
            warning: inv/test.yaml:3:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            1 error in inv/test.yaml
        "#]],
    );
}

#[test]
fn custom_templates() {
    check_inventory(
        &format!("{HEAD}role:\n  template: templates/missing.yaml\naccounts:\n  - id: \"222222222222\"\n"),
        expect![[r#"
            error: inv/test.yaml:4:13: role.template: cannot read template inv/templates/missing.yaml: No such file or directory (os error 2)
              help: the path is relative to the inventory file; check it exists
            1 error in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!(
            "{HEAD}role:\n  template: templates/role.yaml\n  parameters: {{Env: prod}}\n  policy: {{Statement: []}}\naccounts:\n  - id: \"222222222222\"\n"
        ),
        expect![[r#"
            error: inv/test.yaml:6:11: role.policy: `policy` has no effect with your own `template`
              help: express it in the template (or pass it through `parameters`), or drop `template`
            1 error in inv/test.yaml
        "#]],
    );
    let (inv, _) = inventory::parse(
        &format!("{HEAD}role:\n  template: templates/role.yaml\n  parameters: {{Env: prod}}\naccounts:\n  - id: \"222222222222\"\n"),
        Path::new("inv/test.yaml"),
        &read_file,
    )
    .unwrap();
    let d = desired(&inv.roles[0]);
    assert_eq!(d.template_body, "Resources: {}\n");
    assert_eq!(d.parameters["Env"], "prod");
}

#[test]
fn many_problems_at_once_and_missing_keys() {
    check_inventory(
        "accounts:\n  - id: \"1\"\n    name: a\n  - id: \"1\"\n    name: a\ndeploy:\n  via: carrier-pigeon\n  concurrency: 0\n",
        expect![[r#"
            error: inv/test.yaml:1:1: version: `version` is missing
              help: add `version: 1` at the top of the file
            error: inv/test.yaml:1:1: source_account: `source_account` is missing
              help: set it to the 12-digit id of the account whose principals will assume the role, in quotes
            error: inv/test.yaml:2:9: accounts[0].id: "1" is not an AWS account id (expected exactly 12 digits)
              help: write the full 12-digit account id, in quotes
            error: inv/test.yaml:4:9: accounts[1].id: "1" is not an AWS account id (expected exactly 12 digits)
              help: write the full 12-digit account id, in quotes
            error: inv/test.yaml:5:11: accounts[1].name: name "a" is already used by accounts[0]
              help: give every account a distinct name
            error: inv/test.yaml:7:8: deploy.via: "carrier-pigeon" is not a deployment method
              help: use `bootstrap-role` or `stacksets`
            error: inv/test.yaml:8:16: deploy.concurrency: 0 is out of range
              help: use 1 to 512
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            7 errors in inv/test.yaml
        "#]],
    );
}

#[test]
fn syntax_type_and_empty_files() {
    check_inventory(
        "version: 1\naccounts: [\n",
        expect![[r#"
            error: inv/test.yaml:3:1: accounts: not valid YAML: while parsing a node, did not find expected node content
              help: fix the YAML syntax at that position
            1 error in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!("{HEAD}deploy:\n  concurrency: lots\naccounts:\n  - id: \"222222222222\"\n"),
        expect![[r#"
            error: inv/test.yaml:4:16: deploy.concurrency: invalid type: string "lots", expected usize
              help: see inventory/README.md for every key and its type
            1 error in inv/test.yaml
        "#]],
    );
    check_inventory(
        "",
        expect![[r#"
            error: inv/test.yaml: the inventory is empty
              help: start from inventory/example.yaml
            1 error in inv/test.yaml
        "#]],
    );
    check_inventory(
        HEAD,
        expect![[r#"
            error: inv/test.yaml:1:1: accounts: no targets: neither `accounts` nor `organization` is given
              help: list accounts under `accounts:` or discover them with `organization: {ous: [...]}`
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            1 error in inv/test.yaml
        "#]],
    );
}

#[test]
fn organization_discovery_settings() {
    check_inventory(
        &format!("{HEAD}organization:\n  ous: [ou-abcd-12345678, sales]\n  exclude: [\"33333333333\"]\n"),
        expect![[r#"
            error: inv/test.yaml:4:27: organization.ous[1]: "sales" is not an OU id or root id
              help: use ids like ou-ab12-cd34ef56 or r-ab12 (aws organizations list-roots / list-organizational-units-for-parent)
            error: inv/test.yaml:5:13: organization.exclude[0]: "33333333333" is not an AWS account id (expected exactly 12 digits)
              help: write the full 12-digit account id, in quotes
            warning: inv/test.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            2 errors in inv/test.yaml
        "#]],
    );
}

// ---------------------------------------------------------------------------
// Template and fingerprint.

fn inventory_with(extra: &str) -> model::Inventory {
    let text = format!("{HEAD}{extra}accounts:\n  - id: \"222222222222\"\n");
    match inventory::parse(&text, Path::new("inv/test.yaml"), &read_file) {
        Ok((inv, _)) => inv,
        Err(d) => panic!("{}", inventory::render(&d)),
    }
}

#[test]
fn builtin_template_is_deterministic_and_complete() {
    let inv = inventory_with(
        "role:\n  trusted_accounts: [\"111111111111\", \"044444444444\"]\n  external_id: ext-123\n  managed_policy_arns: [arn:aws:iam::aws:policy/ReadOnlyAccess]\n",
    );
    assert!(inv.roles[0].spec.name == "RolecallTarget");
    let a = desired(&inv.roles[0]);
    let b = desired(&inventory_with(
        "role:\n  trusted_accounts: [\"111111111111\", \"044444444444\"]\n  external_id: ext-123\n  managed_policy_arns: [arn:aws:iam::aws:policy/ReadOnlyAccess]\n",
    ).roles[0]);
    assert_eq!(a, b);
    expect![[r#"
        {
          "AWSTemplateFormatVersion": "2010-09-09",
          "Description": "rolecall: cross-account IAM role RolecallTarget (managed by rolecall; changes made here are overwritten)",
          "Outputs": {
            "RoleArn": {
              "Description": "ARN of the cross-account role",
              "Value": {
                "Fn::GetAtt": [
                  "Role",
                  "Arn"
                ]
              }
            }
          },
          "Resources": {
            "Role": {
              "Properties": {
                "AssumeRolePolicyDocument": {
                  "Statement": [
                    {
                      "Action": "sts:AssumeRole",
                      "Condition": {
                        "StringEquals": {
                          "sts:ExternalId": "ext-123"
                        }
                      },
                      "Effect": "Allow",
                      "Principal": {
                        "AWS": {
                          "Fn::Sub": "arn:${AWS::Partition}:iam::111111111111:root"
                        }
                      },
                      "Sid": "TrustAccount111111111111"
                    },
                    {
                      "Action": "sts:AssumeRole",
                      "Condition": {
                        "StringEquals": {
                          "sts:ExternalId": "ext-123"
                        }
                      },
                      "Effect": "Allow",
                      "Principal": {
                        "AWS": {
                          "Fn::Sub": "arn:${AWS::Partition}:iam::044444444444:root"
                        }
                      },
                      "Sid": "TrustAccount044444444444"
                    }
                  ],
                  "Version": "2012-10-17"
                },
                "Description": "Cross-account role managed by rolecall",
                "ManagedPolicyArns": [
                  "arn:aws:iam::aws:policy/ReadOnlyAccess"
                ],
                "MaxSessionDuration": 3600,
                "RoleName": "RolecallTarget"
              },
              "Type": "AWS::IAM::Role"
            }
          }
        }
    "#]]
    .assert_eq(&a.template_body);
}

#[test]
fn fingerprint_follows_template_and_parameters_not_tags() {
    let base = desired(&inventory_with("").roles[0]);
    assert_eq!(base.fingerprint.len(), 64);
    let policy = desired(&inventory_with(
        "role:\n  policy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}]}\n",
    ).roles[0]);
    assert_ne!(base.fingerprint, policy.fingerprint);
    let tagged = desired(&inventory_with("role:\n  tags: {team: web}\n").roles[0]);
    assert_eq!(base.fingerprint, tagged.fingerprint);
    let p1 = BTreeMap::from([("a".to_owned(), "b=c".to_owned())]);
    let p2 = BTreeMap::from([("a=b".to_owned(), "c".to_owned())]);
    assert_ne!(
        crate::template::fingerprint("t", &p1),
        crate::template::fingerprint("t", &p2)
    );
}

// ---------------------------------------------------------------------------
// Decisions.

fn stack(status: &str, tags: &[(&str, &str)]) -> Observed {
    Observed::Present(StackInfo {
        stack_id: "arn:aws:cloudformation:us-east-1:222222222222:stack/rolecall-target-role/1".to_owned(),
        status: status.to_owned(),
        status_reason: None,
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        parameters: BTreeMap::new(),
        outputs: BTreeMap::new(),
        deployed_template: None,
    })
}

#[track_caller]
fn check_decide(observed: Observed, expect: Expect) {
    let mut inv = inventory_with("role:\n  tags: {team: web}\n");
    inv.roles[0].spec.tags.insert("team".to_owned(), "web".to_owned());
    let d = decide(&desired(&inv.roles[0]), &observed);
    expect.assert_eq(&format!("{} {:?}: {}", d.action, d.differences, d.reason));
}

#[test]
fn decisions() {
    let inv = inventory_with("role:\n  tags: {team: web}\n");
    let fp = desired(&inv.roles[0]).fingerprint;
    let ours = [
        (TAG_MANAGED_BY, "rolecall"),
        (TAG_FINGERPRINT, fp.as_str()),
        ("team", "web"),
    ];
    check_decide(Observed::Absent, expect!["create []: no stack rolecall-target-role"]);
    check_decide(
        stack("CREATE_COMPLETE", &ours),
        expect!["no-op []: CREATE_COMPLETE matches the inventory"],
    );
    // A rolled-back update: the tags are no proof, the deployed template is.
    check_decide(
        stack("UPDATE_ROLLBACK_COMPLETE", &ours),
        expect![
            "update [Template]: UPDATE_ROLLBACK_COMPLETE: the last update rolled back and the deployed template could not be read; update again"
        ],
    );
    let deployed = |body: String| {
        let Observed::Present(mut s) = stack("UPDATE_ROLLBACK_COMPLETE", &ours) else {
            unreachable!()
        };
        s.deployed_template = Some(body);
        Observed::Present(s)
    };
    let body = desired(&inv.roles[0]).template_body;
    check_decide(
        deployed(body.clone()),
        expect!["no-op []: UPDATE_ROLLBACK_COMPLETE matches the inventory"],
    );
    // The same template as CloudFormation may hand it back: reformatted.
    let reformatted = serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&body).unwrap()).unwrap();
    assert_ne!(reformatted, body);
    check_decide(
        deployed(reformatted),
        expect!["no-op []: UPDATE_ROLLBACK_COMPLETE matches the inventory"],
    );
    check_decide(
        deployed("{\"Resources\": {}}".to_owned()),
        expect![
            "update [Template]: UPDATE_ROLLBACK_COMPLETE: the last update rolled back and the deployed template is not the inventory's; update again"
        ],
    );
    check_decide(
        stack(
            "UPDATE_COMPLETE",
            &[(TAG_MANAGED_BY, "rolecall"), (TAG_FINGERPRINT, "old"), ("team", "web")],
        ),
        expect!["update [Template]: template differs from the inventory"],
    );
    check_decide(
        stack(
            "CREATE_COMPLETE",
            &[(TAG_MANAGED_BY, "rolecall"), (TAG_FINGERPRINT, "old")],
        ),
        expect!["update [Template, Tags]: template, tags differ from the inventory"],
    );
    check_decide(
        stack(
            "CREATE_COMPLETE",
            &[
                (TAG_MANAGED_BY, "rolecall"),
                (TAG_FINGERPRINT, fp.as_str()),
                ("team", "app"),
            ],
        ),
        expect!["update [Tags]: tags differ from the inventory"],
    );
    for status in ["ROLLBACK_COMPLETE", "CREATE_FAILED", "DELETE_FAILED"] {
        let d = decide(&desired(&inv.roles[0]), &stack(status, &ours));
        assert_eq!(d.action, Action::Recover, "{status}");
    }
    check_decide(
        stack("ROLLBACK_COMPLETE", &ours),
        expect!["recover []: ROLLBACK_COMPLETE is what a failed create leaves; delete it and create again"],
    );
    for status in [
        "CREATE_IN_PROGRESS",
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "DELETE_IN_PROGRESS",
        "ROLLBACK_IN_PROGRESS",
    ] {
        assert_eq!(
            decide(&desired(&inv.roles[0]), &stack(status, &ours)).action,
            Action::Wait,
            "{status}"
        );
    }
    check_decide(
        stack("UPDATE_ROLLBACK_FAILED", &ours),
        expect![
            "blocked []: UPDATE_ROLLBACK_FAILED: rolecall never touches such a stack; continue the rollback (aws cloudformation continue-update-rollback) or fix the resource by hand, then run again"
        ],
    );
    check_decide(
        stack("REVIEW_IN_PROGRESS", &ours),
        expect![
            "blocked []: REVIEW_IN_PROGRESS: the stack has a change set that was never executed; execute or delete it in the CloudFormation console, then run again"
        ],
    );
    check_decide(
        stack("SOMETHING_NEW", &ours),
        expect![
            "blocked []: SOMETHING_NEW: rolecall never touches such a stack; inspect the stack in the CloudFormation console and fix it by hand, then run again"
        ],
    );
    check_decide(
        stack("ROLLBACK_COMPLETE", &[("team", "web")]),
        expect![
            "blocked []: stack rolecall-target-role (ROLLBACK_COMPLETE) was not created by rolecall (no rolecall:managed-by tag); rolecall does not adopt stacks: delete or rename it, or choose another role.stack_name"
        ],
    );
}

#[test]
fn parameter_changes_are_named() {
    let text = format!(
        "{HEAD}role:\n  template: templates/role.yaml\n  parameters: {{Env: prod}}\naccounts:\n  - id: \"222222222222\"\n"
    );
    let (inv, _) = inventory::parse(&text, Path::new("inv/test.yaml"), &read_file).unwrap();
    let want = desired(&inv.roles[0]);
    let Observed::Present(mut info) = stack(
        "CREATE_COMPLETE",
        &[(TAG_MANAGED_BY, "rolecall"), (TAG_FINGERPRINT, "old")],
    ) else {
        unreachable!()
    };
    info.parameters.insert("Env".to_owned(), "dev".to_owned());
    let d = decide(&want, &Observed::Present(info));
    assert_eq!(
        (d.action, d.reason.as_str()),
        (Action::Update, "parameters differ from the inventory")
    );
}

#[test]
fn own_templates_settle_with_defaulted_and_no_echo_parameters() {
    let text = format!(
        "{HEAD}role:\n  template: templates/role.yaml\n  parameters: {{Env: prod, Secret: s3cr3t}}\naccounts:\n  - id: \"222222222222\"\n"
    );
    let (inv, _) = inventory::parse(&text, Path::new("inv/test.yaml"), &read_file).unwrap();
    let want = desired(&inv.roles[0]);
    let Observed::Present(mut info) = stack(
        "UPDATE_COMPLETE",
        &[
            (TAG_MANAGED_BY, "rolecall"),
            (TAG_FINGERPRINT, want.fingerprint.as_str()),
        ],
    ) else {
        unreachable!()
    };
    // DescribeStacks lists the parameter left at its default, and masks
    // the NoEcho one.
    for (k, v) in [("Env", "prod"), ("Secret", "****"), ("Defaulted", "its-default")] {
        info.parameters.insert(k.to_owned(), v.to_owned());
    }
    let d = decide(&want, &Observed::Present(info.clone()));
    assert_eq!(d.action, Action::NoOp, "{}", d.reason);
    // A parameter the inventory sets that is missing or different is an update.
    info.parameters.remove("Env");
    assert_eq!(decide(&want, &Observed::Present(info)).action, Action::Update);
}

#[test]
fn own_templates_are_checked_and_transforms_expand() {
    assert!(!crate::template::declares_transform("Resources: {}\n"));
    assert!(crate::template::declares_transform(
        "Transform: AWS::Serverless-2016-10-31\nResources: {}\n"
    ));
    assert!(crate::template::declares_transform(
        "{\"Transform\": [\"AWS::LanguageExtensions\"], \"Resources\": {}}"
    ));
    for (body, why) in [
        ("Resources: {}\n", None),
        ("not: [valid", Some("is neither JSON nor YAML")),
        ("- a list\n", Some("is not a CloudFormation template")),
        ("Outputs: {}\n", Some("has no `Resources` section")),
    ] {
        let got = crate::template::check_body(body).err();
        assert_eq!(got.is_some(), why.is_some(), "{body}: {got:?}");
        if let (Some(got), Some(why)) = (got, why) {
            assert!(got.starts_with(why), "{body}: {got}");
        }
    }
    let big = format!("Resources: {{}}\nDescription: \"{}\"\n", "x".repeat(51_200));
    assert!(
        crate::template::check_body(&big)
            .unwrap_err()
            .starts_with(&format!("is {} bytes; CloudFormation takes at most 51200", big.len()))
    );
}

// ---------------------------------------------------------------------------
// Targets.

fn discovered(id: &str, name: &str, tags: &[(&str, &str)]) -> DiscoveredAccount {
    DiscoveredAccount {
        id: model::AccountId::parse(id).unwrap(),
        name: name.to_owned(),
        parent: "ou-abcd-12345678".to_owned(),
        ous: vec!["r-ab12".to_owned(), "ou-abcd-12345678".to_owned()],
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

#[track_caller]
fn check_targets(extra: &str, found: &[DiscoveredAccount], expect: Expect) {
    let text = format!("{HEAD}{extra}");
    let (inv, _) = match inventory::parse(&text, Path::new("inv/test.yaml"), &read_file) {
        Ok(ok) => ok,
        Err(d) => panic!("{}", inventory::render(&d)),
    };
    let r = targets::resolve(&inv, found);
    let mut out = String::new();
    for t in &r.targets {
        out.push_str(&format!(
            "{} {} {:?} {:?}\n",
            t.account_id, t.account_name, t.regions, t.source
        ));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    expect.assert_eq(&out);
}

#[test]
fn targets_union_filter_exclude() {
    let found = [
        discovered("111111111111", "management", &[("env", "prod")]),
        discovered("222222222222", "web-prod", &[("env", "prod")]),
        discovered("333333333333", "web-dev", &[("env", "dev")]),
        discovered("444444444444", "data-prod", &[("env", "prod"), ("team", "data")]),
        discovered("555555555555", "legacy", &[("env", "prod")]),
    ];
    check_targets(
        "role:\n  name: \"R-{region}\"\ndeploy:\n  regions: [us-east-1, eu-west-1]\naccounts:\n  - {id: \"666666666666\", name: extra, regions: [eu-west-1]}\n  - {id: \"222222222222\", name: web}\norganization:\n  ous: [ou-abcd-12345678]\n  tags: {env: prod}\n  exclude: [\"555555555555\"]\n",
        &found,
        expect![[r#"
            222222222222 web ["us-east-1", "eu-west-1"] Inventory
            444444444444 data-prod ["us-east-1", "eu-west-1"] Organization
            666666666666 extra ["eu-west-1"] Inventory
            note: 111111111111 (management) is the source account; skipped (set allow_source_account: true to include it)
        "#]],
    );
    check_targets(
        "organization:\n  ous: [r-abcd]\n",
        &found[1..3],
        expect![[r#"
            222222222222 web-prod ["us-east-1"] Organization
            333333333333 web-dev ["us-east-1"] Organization
        "#]],
    );
}

/// A listed account without a name is asked of Organizations (unless
/// discovery found it); the name it gets replaces the id, and only there.
#[test]
fn unnamed_listed_accounts_take_organizations_names() {
    let text = format!(
        "{HEAD}role:\n  name: R\naccounts:\n  - {{id: \"222222222222\"}}\n  - {{id: \"333333333333\", name: mine}}\n  - {{id: \"444444444444\"}}\norganization:\n  ous: [ou-abcd-12345678]\n"
    );
    let (inv, _) = inventory::parse(&text, Path::new("inv/test.yaml"), &read_file).unwrap();
    let found = [discovered("444444444444", "found-by-discovery", &[])];
    let unnamed = targets::unnamed(&inv, &found);
    assert_eq!(unnamed.iter().map(|a| a.as_str()).collect::<Vec<_>>(), ["222222222222"]);
    let mut resolved = targets::resolve(&inv, &found).targets;
    let names: BTreeMap<model::AccountId, String> = [(unnamed[0].clone(), "dev".to_owned())].into();
    targets::name_listed(&mut resolved, &names);
    let names: Vec<(&str, &str)> = resolved
        .iter()
        .map(|t| (t.account_id.as_str(), t.account_name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("222222222222", "dev"),
            ("333333333333", "mine"),
            ("444444444444", "found-by-discovery")
        ]
    );
}

/// Narrowing targets to some of their stacks keeps exactly those roles and
/// regions and drops targets left with none.
#[test]
fn targets_narrow_to_the_stacks_kept() {
    let text = format!(
        "{HEAD}roles:\n  admin: {{name: A}}\n  deploy: {{name: \"D-{{region}}\", regions: [us-east-1, eu-west-1]}}\nprofiles:\n  name: \"{{account_name}}-{{role}}\"\naccounts:\n  - id: \"222222222222\"\n  - id: \"333333333333\"\n"
    );
    let (inv, _) = inventory::parse(&text, Path::new("inv/test.yaml"), &read_file).unwrap();
    let all = targets::resolve(&inv, &[]).targets;
    let id = |s: &str| model::AccountId::parse(s).unwrap();
    let keep = [
        (id("222222222222"), "deploy".to_owned(), "eu-west-1".to_owned()),
        (id("222222222222"), "admin".to_owned(), "us-east-1".to_owned()),
    ]
    .into();
    let narrowed = targets::narrowed(&all, &keep);
    let shown: Vec<String> = narrowed
        .iter()
        .flat_map(|t| {
            t.roles
                .iter()
                .map(move |r| format!("{} {} {:?}", t.account_id, r.role, r.regions))
        })
        .collect();
    assert_eq!(
        shown,
        [
            "222222222222 admin [\"us-east-1\"]",
            "222222222222 deploy [\"eu-west-1\"]"
        ]
    );
    assert_eq!(narrowed[0].regions, ["us-east-1", "eu-west-1"]);
}

/// Every key documented in inventory/README.md (its tables) and used in
/// inventory/example.yaml, as a dotted path (`profiles.duration_seconds`,
/// `accounts.id`).
fn documented_keys() -> std::collections::BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../inventory");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut keys = std::collections::BTreeSet::new();
    let mut section = String::new();
    for line in readme.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            // "## `role`", "## `accounts[]`", "## Top level"
            section = heading.trim_matches('`').trim_end_matches("[]").to_owned();
            if section.contains(' ') {
                section.clear();
            }
        } else if let Some(cell) = line.strip_prefix("| `")
            && let Some(key) = cell.split('`').next()
        {
            keys.insert(if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            });
        }
    }
    fn walk(value: &serde_yaml::Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
        match value {
            serde_yaml::Value::Mapping(map) => {
                for (k, v) in map {
                    let k = k.as_str().unwrap();
                    let child = if path.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{path}.{k}")
                    };
                    // Free-form maps: tags, policy documents, parameters.
                    if !["tags", "policy", "parameters"].contains(&k) {
                        walk(v, &child, out);
                    }
                    out.insert(child);
                }
            }
            serde_yaml::Value::Sequence(items) => items.iter().for_each(|i| walk(i, path, out)),
            _ => {}
        }
    }
    let example: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("example.yaml")).unwrap()).unwrap();
    walk(&example, "", &mut keys);
    keys
}

/// A valid value for each documented key, merged into a base inventory.
/// A key without a sample here fails the test: document and test together.
fn sample(key: &str) -> Option<&'static str> {
    Some(match key {
        "version" | "source_account" | "role" | "deploy" | "profiles" | "accounts" | "accounts.id" => "",
        "allow_source_account" => "allow_source_account: true",
        "name" => "name: platform-admin",
        "roles" => "roles: {a: {name: A, policy: none, managed_policy_arns: [ReadOnlyAccess]}}",
        "roles.regions" => {
            "roles: {a: {name: A, policy: none, managed_policy_arns: [ReadOnlyAccess], regions: [us-east-1]}}"
        }
        "roles.targets" | "roles.targets.accounts" => {
            "roles: {a: {name: A, policy: none, managed_policy_arns: [ReadOnlyAccess], targets: {accounts: [\"222222222222\"]}}}"
        }
        "roles.targets.ous" => {
            "roles: {a: {name: A, policy: none, managed_policy_arns: [ReadOnlyAccess], targets: {ous: [ou-ab12-cd34ef56]}}}"
        }
        "roles.targets.tags" => {
            "roles: {a: {name: A, policy: none, managed_policy_arns: [ReadOnlyAccess], targets: {tags: {env: prod}}}}"
        }
        "roles.targets.exclude" => {
            "roles: {a: {name: A, policy: none, managed_policy_arns: [ReadOnlyAccess], targets: {exclude: [\"333333333333\"]}}}"
        }
        "roles.profiles" => {
            "roles: {a: {name: A, policy: none, managed_policy_arns: [ReadOnlyAccess], profiles: {name: \"{account_name}-a\"}}}"
        }
        "organization" | "organization.ous" => "organization: {ous: [r-ab12]}",
        "organization.recursive" => "organization: {ous: [r-ab12], recursive: false}",
        "organization.tags" => "organization: {ous: [r-ab12], tags: {env: prod}}",
        "organization.exclude" => "organization: {ous: [r-ab12], exclude: [\"333333333333\"]}",
        "registry" | "registry.location" => "registry: {location: \"s3://platform-registry/rolecall/admin.json\"}",
        "registry.ssm_prefix" => "registry: {ssm_prefix: /rolecall/platform}",
        "role.name" => "role: {name: Admin}",
        "role.stack_name" => "role: {stack_name: my-stack}",
        "role.trusted_accounts" => "role: {trusted_accounts: [\"444444444444\"]}",
        "role.trusted_principals" => "role: {trusted_principals: [\"arn:aws:iam::111111111111:role/ci\"]}",
        "role.trust_conditions" => "role: {trust_conditions: {StringEquals: {aws:PrincipalOrgID: o-abc123def4}}}",
        "role.permissions_boundary" => "role: {permissions_boundary: PowerUserAccess}",
        "role.path" => "role: {path: /platform/}",
        "role.policy" => "role: {policy: {Version: \"2012-10-17\", Statement: []}}",
        "role.managed_policy_arns" => "role: {managed_policy_arns: [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]}",
        "role.external_id" => "role: {external_id: abc-123}",
        "role.max_session_duration" => "role: {max_session_duration: 7200}",
        "role.template" => "role: {template: templates/role.yaml}",
        "role.parameters" => "role: {template: templates/role.yaml, parameters: {A: b}}",
        "role.output_key" => "role: {output_key: Arn}",
        "role.tags" => "role: {tags: {owner: me}}",
        "deploy.via" => "deploy: {via: bootstrap-role}",
        "deploy.bootstrap_role" => "deploy: {bootstrap_role: Bootstrap}",
        "deploy.bootstrap_external_id" => "deploy: {bootstrap_external_id: abc-123}",
        "deploy.regions" => "deploy: {regions: [eu-west-1]}",
        "deploy.concurrency" => "deploy: {concurrency: 4}",
        "deploy.max_in_flight" => "deploy: {max_in_flight: 4}",
        "deploy.failure_tolerance" => "deploy: {failure_tolerance: 2}",
        "deploy.stackset" => "deploy: {via: stacksets, stackset: {}}",
        "deploy.stackset.name" => "deploy: {via: stacksets, stackset: {name: my-set}}",
        "deploy.stackset.permission_model" | "deploy.stackset.auto_deployment" => {
            "deploy: {via: stacksets, stackset: {permission_model: service-managed, auto_deployment: false}}\norganization: {ous: [r-ab12]}"
        }
        "deploy.stackset.call_as" => {
            "deploy: {via: stacksets, stackset: {permission_model: service-managed, call_as: delegated-admin}}\norganization: {ous: [r-ab12]}"
        }
        "deploy.stackset.retain_stacks_on_account_removal" => {
            "deploy: {via: stacksets, stackset: {permission_model: service-managed, retain_stacks_on_account_removal: true}}\norganization: {ous: [r-ab12]}"
        }
        "deploy.stackset.administration_role_arn" => {
            "deploy: {via: stacksets, stackset: {administration_role_arn: \"arn:aws:iam::111111111111:role/Admin\"}}"
        }
        "deploy.stackset.execution_role_name" => "deploy: {via: stacksets, stackset: {execution_role_name: Exec}}",
        "deploy.stackset.region_concurrency" => "deploy: {via: stacksets, stackset: {region_concurrency: sequential}}",
        "deploy.stackset.concurrency_mode" => "deploy: {via: stacksets, stackset: {concurrency_mode: strict}}",
        "deploy.stackset.max_concurrent_percentage" => {
            "deploy: {via: stacksets, stackset: {max_concurrent_percentage: 100}}"
        }
        "deploy.stackset.failure_tolerance_percentage" => {
            "deploy: {via: stacksets, stackset: {failure_tolerance_percentage: 10}}"
        }
        "profiles.source_profile" => "profiles: {source_profile: ops}",
        "profiles.name" => "profiles: {name: \"x-{account_id}\"}",
        "profiles.region" => "profiles: {region: eu-west-1}",
        "profiles.role_session_name" => "profiles: {role_session_name: me-ops}",
        "profiles.duration_seconds" => "profiles: {duration_seconds: 3600}",
        "profiles.mfa_serial" => "profiles: {mfa_serial: \"arn:aws:iam::111111111111:mfa/alice\"}",
        "accounts.name" => "",
        "accounts.regions" => "accounts: [{id: \"222222222222\", regions: [eu-west-1]}]",
        "accounts.tags" => "accounts: [{id: \"222222222222\", tags: {team: web}}]",
        _ => return None,
    })
}

#[test]
fn every_documented_key_is_accepted() {
    let keys = documented_keys();
    assert!(keys.len() > 30, "the README tables were not found: {keys:?}");
    let mut failures = Vec::new();
    for key in &keys {
        let Some(extra) = sample(key) else {
            failures.push(format!("{key}: documented, but this test has no sample value for it"));
            continue;
        };
        let base = "version: 1\nsource_account: \"111111111111\"\n";
        let accounts = if extra.starts_with("accounts:") {
            ""
        } else {
            "accounts: [{id: \"222222222222\", name: dev}]\n"
        };
        let text = format!("{base}{accounts}{extra}\n");
        if let Err(d) = inventory::parse(&text, Path::new("inv/test.yaml"), &read_file) {
            failures.push(format!("{key}:\n{text}{}", inventory::render(&d)));
        }
    }
    assert!(failures.is_empty(), "documented keys refused:\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// StackSets.

fn instance(account: &str, region: &str, status: &str, detailed: &str) -> model::InstanceInfo {
    model::InstanceInfo {
        account_id: model::AccountId::parse(account).unwrap(),
        region: region.to_owned(),
        status: status.to_owned(),
        detailed_status: Some(detailed.to_owned()),
        reason: (status == "OUTDATED").then(|| "User Initiated".to_owned()),
        stack_id: None,
    }
}

#[track_caller]
fn check_stackset(set: Option<&[(&str, &str)]>, instances: &[model::InstanceInfo], expect: Expect) {
    let (inv, _) = inventory::parse(
        &format!("{HEAD}role:\n  name: \"R-{{region}}\"\n  policy: {{Version: \"2012-10-17\", Statement: []}}\ndeploy:\n  via: stacksets\n  regions: [us-east-1, eu-west-1]\naccounts:\n  - {{id: \"222222222222\", name: a}}\n  - {{id: \"333333333333\", name: b}}\n"),
        Path::new("inv/test.yaml"),
        &read_file,
    )
    .unwrap();
    let want = desired(&inv.roles[0]);
    let targets = targets::resolve(&inv, &[]).targets;
    let info = set.map(|tags| model::StackSetInfo {
        name: "s".into(),
        status: "ACTIVE".into(),
        tags: tags
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    if *v == "FP" {
                        want.fingerprint.clone()
                    } else {
                        v.to_string()
                    },
                )
            })
            .collect(),
    });
    let plan = crate::stacksets::decide(&want, "s", info.as_ref(), instances, &targets, false);
    let set = plan.stack_sets.first().unwrap();
    let mut out = format!("set {}: {}\n", set.action, set.reason);
    for e in &plan.entries {
        out.push_str(&format!("{} {} {}: {}\n", e.account_id, e.region, e.action, e.reason));
    }
    expect.assert_eq(&out);
}

#[test]
fn stack_set_decisions() {
    let ours = [(TAG_MANAGED_BY, "rolecall"), (TAG_FINGERPRINT, "FP")];
    let all_current = [
        instance("222222222222", "us-east-1", "CURRENT", "SUCCEEDED"),
        instance("222222222222", "eu-west-1", "CURRENT", "SUCCEEDED"),
        instance("333333333333", "us-east-1", "CURRENT", "SUCCEEDED"),
        instance("333333333333", "eu-west-1", "CURRENT", "SUCCEEDED"),
    ];
    // Nothing yet: create the set and every instance.
    check_stackset(
        None,
        &[],
        expect![[r#"
        set create: no stack set s
        222222222222 eu-west-1 create: no stack instance
        222222222222 us-east-1 create: no stack instance
        333333333333 eu-west-1 create: no stack instance
        333333333333 us-east-1 create: no stack instance
    "#]],
    );
    // Unchanged: no-op everywhere, so apply starts no operation.
    check_stackset(
        Some(&ours),
        &all_current,
        expect![[r#"
        set no-op: matches the inventory
        222222222222 eu-west-1 no-op: CURRENT
        222222222222 us-east-1 no-op: CURRENT
        333333333333 eu-west-1 no-op: CURRENT
        333333333333 us-east-1 no-op: CURRENT
    "#]],
    );
    // A changed inventory updates the set and its instances; a missing
    // instance is created, an outdated one updated, a running one waited
    // for, an inoperable one blocked, one outside the inventory orphaned.
    check_stackset(
        Some(&[(TAG_MANAGED_BY, "rolecall"), (TAG_FINGERPRINT, "old")]),
        &all_current[..3],
        expect![[r#"
            set update: template or parameters differ from the inventory
            222222222222 eu-west-1 update: the stack set changes: template or parameters differ from the inventory
            222222222222 us-east-1 update: the stack set changes: template or parameters differ from the inventory
            333333333333 eu-west-1 create: no stack instance
            333333333333 us-east-1 update: the stack set changes: template or parameters differ from the inventory
        "#]],
    );
    check_stackset(
        Some(&ours),
        &[
            instance("222222222222", "us-east-1", "OUTDATED", "FAILED"),
            instance("222222222222", "eu-west-1", "OUTDATED", "RUNNING"),
            instance("333333333333", "us-east-1", "INOPERABLE", "INOPERABLE"),
            instance("444444444444", "us-east-1", "CURRENT", "SUCCEEDED"),
        ],
        expect![[r#"
            set no-op: matches the inventory
            222222222222 eu-west-1 wait: an operation is running on the instance; wait for it, then decide again
            222222222222 us-east-1 update: OUTDATED: User Initiated
            333333333333 eu-west-1 create: no stack instance
            333333333333 us-east-1 blocked: INOPERABLE: fix the instance in the CloudFormation console (or delete it with retained stacks), then run again
            444444444444 us-east-1 orphaned: the instance's account or region left the inventory; `apply --prune` or `destroy --orphans` removes it
        "#]],
    );
    // Someone else's stack set of that name is never adopted.
    check_stackset(
        Some(&[("team", "x")]),
        &all_current,
        expect![[r#"
        set blocked: stack set s was not created by rolecall (no rolecall:managed-by tag); rolecall does not adopt it: delete or rename it, or set deploy.stackset.name
        222222222222 eu-west-1 blocked: the stack set is not rolecall's
        222222222222 us-east-1 blocked: the stack set is not rolecall's
        333333333333 eu-west-1 blocked: the stack set is not rolecall's
        333333333333 us-east-1 blocked: the stack set is not rolecall's
    "#]],
    );
}

#[test]
fn stackset_keys_are_checked() {
    let base = format!("{HEAD}role:\n  name: \"R-{{region}}\"\n  policy: {{Version: \"2012-10-17\", Statement: []}}\n");
    check_inventory(
        &format!(
            "{base}deploy:\n  via: stacksets\n  stackset: {{permission_model: service-managed, administration_role_arn: \"arn:aws:iam::111111111111:role/A\", region_concurrency: sideways}}\naccounts:\n  - id: \"222222222222\"\n"
        ),
        expect![[r#"
            error: inv/test.yaml:8:32: deploy.stackset.permission_model: a service-managed stack set deploys to OUs, but `organization.ous` is not given
              help: add `organization: {ous: [...]}`, or use permission_model: self-managed to target listed accounts
            error: inv/test.yaml:8:74: deploy.stackset.administration_role_arn: `administration_role_arn` only applies to self-managed stack sets
              help: remove it, or set permission_model: self-managed
            error: inv/test.yaml:8:130: deploy.stackset.region_concurrency: "sideways" is not one of parallel and sequential
              help: use `parallel` or `sequential`
            3 errors in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!(
            "{base}deploy:\n  via: stacksets\n  stackset: {{max_concurrent_percentage: 0, failure_tolerance_percentage: 101}}\naccounts:\n  - id: \"222222222222\"\n"
        ),
        expect![[r#"
            error: inv/test.yaml:8:41: deploy.stackset.max_concurrent_percentage: 0 is not a percentage from 1 to 100
              help: give 1-100, or remove it to use a count
            error: inv/test.yaml:8:74: deploy.stackset.failure_tolerance_percentage: 101 is not a percentage from 0 to 100
              help: give 0-100, or remove it to use a count
            2 errors in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!("{base}deploy:\n  stackset: {{name: x}}\naccounts:\n  - id: \"222222222222\"\n"),
        expect![[r#"
            error: inv/test.yaml:7:13: deploy.stackset: `stackset` only applies with `via: stacksets`
              help: set `deploy.via: stacksets`, or remove `deploy.stackset`
            1 error in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!(
            "{base}deploy:\n  via: stacksets\n  stackset: {{permission_model: service-managed, auto_deployment: false}}\naccounts:\n  - id: \"222222222222\"\norganization:\n  ous: [r-ab12]\n  exclude: [\"333333333333\"]\n  tags: {{env: prod}}\n"
        ),
        expect![[r#"
            error: inv/test.yaml:13:12: organization.exclude: a service-managed stack set can narrow its OUs to the listed accounts or exclude accounts, not both (AccountFilterType is INTERSECTION or DIFFERENCE)
              help: keep either `accounts` or `organization.exclude`
            error: inv/test.yaml:14:9: organization.tags: a service-managed stack set targets whole OUs; a tag filter cannot be expressed
              help: remove the tag filter, or use permission_model: self-managed
            2 errors in inv/test.yaml
        "#]],
    );
    let (inv, _) = inventory::parse(
        &format!("{base}deploy:\n  via: stacksets\naccounts:\n  - id: \"222222222222\"\n"),
        Path::new("inv/test.yaml"),
        &read_file,
    )
    .unwrap();
    let set = inv.deploy.stackset.unwrap();
    assert_eq!(set.name, "rolecall-target-role", "defaults to role.stack_name");
    assert!(set.region_parallel && set.soft_failure_tolerance && set.auto_deployment);
    assert_eq!(set.permission_model, model::PermissionModel::SelfManaged);
}

#[test]
fn drift_coverage() {
    let (inv, _) = inventory::parse(
        &format!("{HEAD}role:\n  policy: {{Version: \"2012-10-17\", Statement: []}}\naccounts:\n  - {{id: \"222222222222\", name: listed}}\n  - {{id: \"333333333333\", name: closed}}\n  - {{id: \"444444444444\", name: gone}}\norganization:\n  ous: [r-ab12]\n  tags: {{team: web}}\n  exclude: [\"555555555555\"]\n"),
        Path::new("inv/test.yaml"),
        &read_file,
    )
    .unwrap();
    let discovered = [
        discovered("222222222222", "listed", &[]),
        discovered("666666666666", "untagged", &[]),
        discovered("555555555555", "excluded", &[]),
    ];
    let targets = targets::resolve(&inv, &discovered).targets;
    let member = |id: &str, name: &str, status: &str| model::OrgAccount {
        id: model::AccountId::parse(id).unwrap(),
        name: name.into(),
        status: status.into(),
    };
    let members = [
        member("111111111111", "management", "ACTIVE"),
        member("222222222222", "listed", "ACTIVE"),
        member("333333333333", "closed", "SUSPENDED"),
        member("555555555555", "excluded", "ACTIVE"),
        member("666666666666", "untagged", "ACTIVE"),
        member("777777777777", "elsewhere", "ACTIVE"),
    ];
    let show = |whole_org| -> Vec<String> {
        crate::drift::coverage(&inv, &targets, &discovered, Some(&members), whole_org)
            .iter()
            .map(|f| format!("{} {} {}", f.account_name, f.kind, f.reason))
            .collect()
    };
    expect![[r#"
        [
            "untagged UNCOVERED ACTIVE in the inventory's OUs, but not a target of the inventory (nor excluded)",
            "closed ORPHANED the inventory targets it, but the organization says SUSPENDED",
            "gone ORPHANED the inventory targets it, but it is not in the organization (closed, or left)",
        ]
    "#]]
    .assert_debug_eq(&show(false));
    expect![[r#"
        [
            "untagged UNCOVERED ACTIVE in the organization, but not a target of the inventory (nor excluded)",
            "elsewhere UNCOVERED ACTIVE in the organization, but not a target of the inventory (nor excluded)",
            "closed ORPHANED the inventory targets it, but the organization says SUSPENDED",
            "gone ORPHANED the inventory targets it, but it is not in the organization (closed, or left)",
        ]
    "#]]
    .assert_debug_eq(&show(true));
}

#[test]
fn template_paths_stay_in_the_inventory_folder() {
    let read = |p: &Path| -> std::io::Result<String> { panic!("{} must not be read", p.display()) };
    for (path, why) in [
        ("../shared/role.yaml", "leaves the inventory's folder"),
        ("a/../../role.yaml", "leaves the inventory's folder"),
        ("/etc/passwd", "is absolute"),
        (".", "names no file"),
    ] {
        let text = format!(
            "version: 1\nsource_account: \"111111111111\"\nrole:\n  template: {path}\naccounts:\n  - id: \"222222222222\"\n"
        );
        let errors = crate::inventory::parse(&text, Path::new("inv/test.yaml"), &read).unwrap_err();
        let rendered = crate::inventory::render(&errors);
        assert!(
            rendered.contains("inv/test.yaml:4:13: role.template") && rendered.contains(why),
            "{rendered}"
        );
    }
}

/// IMPORT_ROLLBACK_COMPLETE: an import into rolecall's stack was rolled
/// back. The stack is settled and its role in place (healthy in plan and
/// drift alike), but, as after a rolled-back update, the deployed template
/// decides whether it is the inventory's.
#[test]
fn an_import_that_rolled_back_is_healthy_in_plan_and_drift() {
    let inv = inventory_with("role:\n  tags: {team: web}\n");
    let desired = desired(&inv.roles[0]);
    let ours = [
        (TAG_MANAGED_BY, "rolecall"),
        (TAG_FINGERPRINT, desired.fingerprint.as_str()),
        ("team", "web"),
    ];
    check_decide(
        stack("IMPORT_ROLLBACK_COMPLETE", &ours),
        expect![
            "update [Template]: IMPORT_ROLLBACK_COMPLETE: the last import rolled back and the deployed template could not be read; update again"
        ],
    );
    let Observed::Present(mut deployed) = stack("IMPORT_ROLLBACK_COMPLETE", &ours) else {
        unreachable!()
    };
    deployed.deployed_template = Some(desired.template_body.clone());
    check_decide(
        Observed::Present(deployed.clone()),
        expect!["no-op []: IMPORT_ROLLBACK_COMPLETE matches the inventory"],
    );
    let observed = Observed::Present(deployed);
    let state = crate::drift::stack_state(&desired, &observed).map(|s| s.status.clone());
    assert_eq!(state, Ok("IMPORT_ROLLBACK_COMPLETE".to_owned()));
    // Still unhealthy: an import that could not roll back.
    let failed = stack("IMPORT_ROLLBACK_FAILED", &ours);
    assert_eq!(
        crate::drift::stack_state(&desired, &failed).map_err(|(kind, _)| kind),
        Err(model::DriftKind::Unhealthy)
    );
}

/// IAM may hand back an account-id principal as it was written: in
/// GovCloud (or China) that id means the root ARN of *that* partition. A
/// drift check there must see no drift in such a trust policy.
#[test]
fn a_govcloud_trust_policy_with_a_bare_account_id_is_in_sync() {
    let inv = inventory_with("deploy:\n  regions: [us-gov-west-1]\n");
    let gov = crate::partition::Partition::of_region("us-gov-west-1");
    let expected = crate::drift::expected_role(&inv.roles[0].spec, "us-gov-west-1", gov).unwrap();
    assert_eq!(
        expected.trust["Statement"][0]["Principal"]["AWS"],
        "arn:aws-us-gov:iam::111111111111:root"
    );
    let mut trust = expected.trust.clone();
    trust["Statement"][0]["Principal"]["AWS"] = serde_json::json!("111111111111");
    let live = model::LiveRole {
        trust,
        inline: expected.inline.clone(),
        managed: expected.managed.clone(),
        max_session_duration: expected.max_session_duration,
        permissions_boundary: None,
    };
    assert_eq!(crate::drift::compare_role(&expected, Some(&live)), Vec::new());
    // The commercial root ARN of the same account is another principal.
    let mut elsewhere = live.clone();
    elsewhere.trust["Statement"][0]["Principal"]["AWS"] = serde_json::json!("arn:aws:iam::111111111111:root");
    assert_eq!(crate::drift::compare_role(&expected, Some(&elsewhere)).len(), 2);
}

/// `apply --revert-drift`'s IAM repair: exactly what differs, what goes
/// before what comes (never wider on the way), and after it the role
/// compares equal. Which findings it reverts, and which need a plain apply.
#[test]
fn a_drifted_role_is_repaired_with_only_the_calls_that_differ() {
    use model::{DriftKind, RoleRepair};
    let inv = inventory_with("role:\n  name: R\n  managed_policy_arns: [ReadOnlyAccess]\n");
    let aws = crate::partition::AWS;
    let expected = crate::drift::expected_role(&inv.roles[0].spec, "us-east-1", aws).unwrap();
    let as_is = model::LiveRole {
        trust: expected.trust.clone(),
        inline: expected.inline.clone(),
        managed: expected.managed.clone(),
        max_session_duration: expected.max_session_duration,
        permissions_boundary: None,
    };
    assert_eq!(crate::drift::repairs(&expected, &as_is), Vec::new());
    let mut widened = as_is.clone();
    widened.trust["Statement"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}));
    widened.inline.insert("backdoor".into(), serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
    widened.managed = ["arn:aws:iam::aws:policy/AdministratorAccess".to_owned()].into();
    widened.max_session_duration = 43_200;
    let repairs = crate::drift::repairs(&expected, &widened);
    let shown: Vec<String> = repairs.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "DeleteRolePolicy backdoor",
            "DetachRolePolicy arn:aws:iam::aws:policy/AdministratorAccess",
            "UpdateAssumeRolePolicy",
            "AttachRolePolicy arn:aws:iam::aws:policy/ReadOnlyAccess",
            "UpdateRole MaxSessionDuration=3600",
        ]
    );
    // Applied, the role is the inventory's.
    let mut fixed = widened.clone();
    for r in &repairs {
        match r {
            RoleRepair::Trust(doc) => fixed.trust = serde_json::from_str(doc).unwrap(),
            RoleRepair::PutInline(name, doc) => {
                fixed.inline.insert(name.clone(), serde_json::from_str(doc).unwrap());
            }
            RoleRepair::DeleteInline(name) => {
                fixed.inline.remove(name);
            }
            RoleRepair::Attach(arn) => {
                fixed.managed.insert(arn.clone());
            }
            RoleRepair::Detach(arn) => {
                fixed.managed.remove(arn);
            }
            RoleRepair::Boundary(b) => fixed.permissions_boundary.clone_from(b),
            RoleRepair::MaxSessionDuration(s) => fixed.max_session_duration = *s,
        }
    }
    assert_eq!(crate::drift::compare_role(&expected, Some(&fixed)), Vec::new());

    let finding = |kind, region: Option<&str>| model::DriftFinding {
        account_id: model::AccountId::parse("222222222222").unwrap(),
        account_name: "dev".into(),
        role: Some("default".into()),
        region: region.map(str::to_owned),
        kind,
        reason: "role R differs from the inventory (2 differences)".into(),
        details: vec![
            model::DriftDetail {
                path: "AssumeRolePolicyDocument.Statement".into(),
                expected: "absent".into(),
                actual: "x".into(),
            },
            model::DriftDetail {
                path: "Policies.backdoor".into(),
                expected: "absent".into(),
                actual: "y".into(),
            },
        ],
    };
    let action = |kind, region| crate::drift::revert(&finding(kind, region)).map(|d| d.action);
    assert_eq!(action(DriftKind::Drifted, Some("us-east-1")), Some(Action::RevertDrift));
    assert_eq!(
        crate::drift::revert(&finding(DriftKind::Drifted, Some("us-east-1")))
            .unwrap()
            .reason,
        "role R differs from the inventory (2 differences): AssumeRolePolicyDocument.Statement, Policies.backdoor"
    );
    assert_eq!(action(DriftKind::InSync, Some("us-east-1")), Some(Action::NoOp));
    for kind in [DriftKind::Stale, DriftKind::Missing, DriftKind::Unhealthy] {
        assert_eq!(action(kind, Some("us-east-1")), Some(Action::Blocked));
    }
    for kind in [DriftKind::Uncovered, DriftKind::Orphaned, DriftKind::Error] {
        assert_eq!(action(kind, Some("us-east-1")), None);
    }
    assert_eq!(action(DriftKind::Drifted, None), None);

    // The plan: a row per stack finding, errors as account errors, sorted;
    // account-level findings are not rows.
    let mut error = finding(DriftKind::Error, None);
    error.reason = "cannot assume".into();
    let mut in_sync = finding(DriftKind::InSync, Some("eu-west-1"));
    in_sync.account_id = model::AccountId::parse("111111111111").unwrap();
    let plan = crate::drift::revert_plan(&[
        finding(DriftKind::Drifted, Some("us-east-1")),
        in_sync,
        finding(DriftKind::Uncovered, None),
        error,
    ]);
    let rows: Vec<String> = plan
        .entries
        .iter()
        .map(|e| format!("{} {} {} {}", e.account_id, e.role, e.region, e.action))
        .collect();
    assert_eq!(
        rows,
        [
            "111111111111 default eu-west-1 no-op",
            "222222222222 default us-east-1 revert-drift"
        ]
    );
    assert_eq!(
        plan.errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["cannot assume"]
    );
}

#[test]
fn arns_of_the_inventory_are_read_in_one_place() {
    use crate::partition::{AWS, PolicyRef, role_name_of_arn};
    assert_eq!(PolicyRef::of("ReadOnlyAccess"), PolicyRef::AwsManaged("ReadOnlyAccess"));
    assert_eq!(
        AWS.managed_policy_arn("arn:aws:iam::111111111111:policy/p"),
        "arn:aws:iam::111111111111:policy/p"
    );
    assert_eq!(
        role_name_of_arn("arn:aws:iam::111111111111:role/a/b/Name"),
        Some("Name")
    );
    assert_eq!(role_name_of_arn("arn:aws:iam::111111111111:role/Name"), Some("Name"));
    assert_eq!(role_name_of_arn("arn:aws:iam::111111111111:user/Name"), None);
    use crate::partition::account_of_arn;
    assert_eq!(
        account_of_arn("arn:aws-us-gov:iam::012345678901:role/a/N"),
        Some("012345678901")
    );
    assert_eq!(account_of_arn("arn:aws:s3:::bucket"), None);
    assert_eq!(account_of_arn("not an arn"), None);
}

/// Which inline policy a role gets: the one given; none with `policy: none`
/// or with managed policies alone (a read-only role must not also get full
/// access); full access, warned about, only when the inventory gives
/// neither.
#[test]
fn inline_policy_given_none_or_full_access() {
    let inline = |extra: &str| {
        let inv = inventory_with(extra);
        let body: serde_json::Value = serde_json::from_str(&desired(&inv.roles[0]).template_body).unwrap();
        let expected = crate::drift::expected_role(&inv.roles[0].spec, "us-east-1", crate::partition::AWS).unwrap();
        let policies = body["Resources"]["Role"]["Properties"].get("Policies").cloned();
        assert_eq!(
            policies.is_some(),
            !expected.inline.is_empty(),
            "template and drift agree: {extra}"
        );
        policies.map(|p| p[0]["PolicyDocument"]["Statement"][0]["Action"].clone())
    };
    assert_eq!(inline(""), Some(serde_json::json!("*")));
    assert_eq!(inline("role:\n  managed_policy_arns: [ReadOnlyAccess]\n"), None);
    assert_eq!(inline("role:\n  policy: none\n"), None);
    assert_eq!(
        inline("role:\n  policy: none\n  managed_policy_arns: [ReadOnlyAccess]\n"),
        None
    );
    assert_eq!(
        inline(
            "role:\n  policy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:Get*\", Resource: \"*\"}]}\n  managed_policy_arns: [ReadOnlyAccess]\n"
        ),
        Some(serde_json::json!("s3:Get*"))
    );
    // Only "neither" is warned about.
    check_inventory(
        &format!("{HEAD}role:\n  managed_policy_arns: [ReadOnlyAccess]\naccounts:\n  - id: \"222222222222\"\n"),
        expect![[r#"
            ok: accounts [222222222222]
        "#]],
    );
    check_inventory(
        &format!("{HEAD}role:\n  policy: nothing\naccounts:\n  - id: \"222222222222\"\n"),
        expect![[r#"
            error: inv/test.yaml:4:11: role.policy: expected an IAM policy document (a mapping with `Version` and `Statement`), or `none`
              help: write the policy as YAML, e.g. {Version: "2012-10-17", Statement: [...]}; `none` for no inline policy
            1 error in inv/test.yaml
        "#]],
    );
}

/// Upgrades are safe: the default role (no policy, no managed policies)
/// renders the same bytes as rolecall 0.2 did, so an existing deployment
/// plans no-op. The fingerprint below is the one the previous release
/// computed for this inventory.
#[test]
fn the_default_roles_template_is_unchanged() {
    let inv = inventory_with("");
    expect!["cf7656b59d03d2dd3a3ec65780bacce03a8ee77c667ef16863ef4a92ef123411"]
        .assert_eq(&desired(&inv.roles[0]).fingerprint);
}

#[test]
fn an_inventory_is_named_by_name_or_its_file() {
    let named = |text: &str, file: &str| match inventory::parse(text, Path::new(file), &read_file) {
        Ok((inv, _)) => Ok(inv.name),
        Err(d) => Err(inventory::render(&d)),
    };
    let body = "source_account: \"111111111111\"\naccounts:\n  - id: \"222222222222\"\n";
    assert_eq!(
        named(&format!("version: 1\n{body}"), "inv/prod.yaml"),
        Ok("prod".to_owned())
    );
    assert_eq!(
        named(&format!("version: 1\nname: platform_admin-2\n{body}"), "inv/prod.yaml"),
        Ok("platform_admin-2".to_owned())
    );
    expect![[r#"
        error: inv/prod.yaml:2:7: name: "two words" is not a valid inventory name: ' ' is not allowed
          help: use 1-64 letters, digits, `-` and `_`
        warning: inv/prod.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
          help: set role.policy to the least privilege the role needs
        1 error in inv/prod.yaml
    "#]]
    .assert_eq(&named(&format!("version: 1\nname: two words\n{body}"), "inv/prod.yaml").unwrap_err());
    expect![[r#"
        error: inv/my inventory.yaml:1:1: name: "my inventory" (the file's name) is not a valid inventory name: ' ' is not allowed
          help: the inventory is named after its file unless it says `name:`; add `name:` with 1-64 letters, digits, `-` and `_`
        warning: inv/my inventory.yaml:1:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
          help: set role.policy to the least privilege the role needs
        1 error in inv/my inventory.yaml
    "#]]
    .assert_eq(&named(&format!("version: 1\n{body}"), "inv/my inventory.yaml").unwrap_err());
}

/// The trust of a role: whole accounts, and IAM role or user ARNs besides
/// (or, without trusted_accounts, instead of) them; every statement with
/// the trust conditions and the external id; a permissions boundary by
/// name or ARN; a path. Template and drift's expected role agree.
#[test]
fn principals_conditions_boundary_and_path() {
    let inv = inventory_with(
        "role:\n  path: /platform/\n  trusted_principals: [\"arn:aws:iam::111111111111:role/ci-deployer\"]\n  trust_conditions: {StringEquals: {aws:PrincipalOrgID: o-abc123def4}}\n  external_id: ext-1\n  permissions_boundary: PowerUserAccess\n  policy: none\n",
    );
    let body: serde_json::Value = serde_json::from_str(&desired(&inv.roles[0]).template_body).unwrap();
    let props = &body["Resources"]["Role"]["Properties"];
    expect![[r#"
        {
          "Statement": [
            {
              "Action": "sts:AssumeRole",
              "Condition": {
                "StringEquals": {
                  "aws:PrincipalOrgID": "o-abc123def4",
                  "sts:ExternalId": "ext-1"
                }
              },
              "Effect": "Allow",
              "Principal": {
                "AWS": "arn:aws:iam::111111111111:role/ci-deployer"
              },
              "Sid": "TrustPrincipal1"
            }
          ],
          "Version": "2012-10-17"
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&props["AssumeRolePolicyDocument"]).unwrap());
    assert_eq!(
        props["PermissionsBoundary"],
        serde_json::json!({"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/PowerUserAccess"})
    );
    assert_eq!(props["Path"], "/platform/");
    // Drift expects the same trust (without Sids) and the boundary's ARN.
    let expected = crate::drift::expected_role(&inv.roles[0].spec, "us-east-1", crate::partition::AWS).unwrap();
    let mut live_trust = props["AssumeRolePolicyDocument"].clone();
    live_trust["Statement"][0].as_object_mut().unwrap().remove("Sid");
    let live = model::LiveRole {
        trust: live_trust,
        inline: Default::default(),
        managed: Default::default(),
        max_session_duration: 3600,
        permissions_boundary: Some("arn:aws:iam::aws:policy/PowerUserAccess".into()),
    };
    assert_eq!(crate::drift::compare_role(&expected, Some(&live)), Vec::new());
    let unbounded = model::LiveRole {
        permissions_boundary: None,
        ..live.clone()
    };
    assert_eq!(
        crate::drift::compare_role(&expected, Some(&unbounded))
            .iter()
            .map(|d| d.path.as_str())
            .collect::<Vec<_>>(),
        ["PermissionsBoundary"]
    );
    // Accounts and principals together: both trusted.
    let both = inventory_with(
        "role:\n  trusted_accounts: [\"111111111111\"]\n  trusted_principals: [\"arn:aws:iam::111111111111:user/alice\"]\n",
    );
    assert_eq!(both.roles[0].spec.trusted_accounts.len(), 1);
    assert_eq!(both.roles[0].spec.trusted_principals.len(), 1);
    // The bootstrap role may manage the role under its path, and its boundary.
    let boot = crate::template::bootstrap(&inv);
    assert!(boot.contains("role/platform/RolecallTarget"), "{boot}");
    assert!(boot.contains("iam:PutRolePermissionsBoundary"), "{boot}");
    assert!(!crate::template::bootstrap(&both).contains("PermissionsBoundary"));
}

#[test]
fn trust_keys_are_checked() {
    check_inventory(
        &format!(
            "{HEAD}role:\n  trusted_principals: [\"arn:aws:iam::111111111111:group/admins\", \"arn:aws-cn:iam::111111111111:role/x\"]\n  trust_conditions: {{StringEquals: {{sts:ExternalId: x}}}}\n  path: platform\n  permissions_boundary: \"arn:aws:s3:::bucket\"\naccounts:\n  - id: \"222222222222\"\n"
        ),
        expect![[r#"
            error: inv/test.yaml:4:24: role.trusted_principals[0]: "arn:aws:iam::111111111111:group/admins" is not the ARN of an IAM role or user
              help: write arn:aws:iam::<account>:role/<name> (or :user/<name>); to trust a whole account, list it in trusted_accounts
            error: inv/test.yaml:4:66: role.trusted_principals[1]: "arn:aws-cn:iam::111111111111:role/x" is in partition aws-cn, but the stacks go to partition aws (us-east-1)
              help: trust principals of the deployment's partition (one inventory per partition)
            error: inv/test.yaml:5:21: role.trust_conditions: sts:ExternalId is set through role.external_id
              help: move it to role.external_id
            error: inv/test.yaml:6:9: role.path: "platform" is not an IAM path: it must start and end with /
              help: start and end with /, e.g. /platform/; letters, digits and !-~ inside, at most 512 characters
            error: inv/test.yaml:7:25: role.permissions_boundary: "arn:aws:s3:::bucket" is not an IAM policy ARN (arn:<partition>:iam::<account or aws>:policy/<name>)
              help: name a managed policy: an AWS managed one by name, or a full ARN such as arn:aws:iam::<account>:policy/<name>
            warning: inv/test.yaml:3:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            5 errors in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!("{HEAD}role:\n  trust_conditions: [aws:PrincipalOrgID]\naccounts:\n  - id: \"222222222222\"\n"),
        expect![[r#"
            error: inv/test.yaml:4:21: role.trust_conditions: expected an IAM condition block: operators, each with condition keys and values
              help: e.g. {StringEquals: {aws:PrincipalOrgID: o-abc123}, Bool: {aws:MultiFactorAuthPresent: "true"}}
            warning: inv/test.yaml:3:1: role.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            1 error in inv/test.yaml
        "#]],
    );
    // MFA in the trust needs an MFA device for the profiles.
    check_inventory(
        &format!(
            "{HEAD}role:\n  policy: none\n  trust_conditions: {{Bool: {{aws:MultiFactorAuthPresent: \"true\"}}}}\naccounts:\n  - id: \"222222222222\"\n"
        ),
        expect![[r#"
            error: inv/test.yaml:1:1: profiles.mfa_serial: role.trust_conditions require MFA, but the profiles name no MFA device: the AWS CLI could not assume the role
              help: set profiles.mfa_serial to the MFA device's ARN (arn:aws:iam::<source account>:mfa/<name>)
            1 error in inv/test.yaml
        "#]],
    );
    let inv = inventory_with(
        "role:\n  policy: none\n  trust_conditions: {Bool: {aws:MultiFactorAuthPresent: \"true\"}}\nprofiles:\n  mfa_serial: \"arn:aws:iam::111111111111:mfa/alice\"\n",
    );
    let order = BTreeMap::new();
    let targets = crate::targets::resolve(&inv, &[]).targets;
    let profiles = crate::profiles::for_targets(&crate::profiles::ProfileSettings::of(&inv.roles[0], &order), &targets);
    assert_eq!(
        profiles[0].mfa_serial.as_deref(),
        Some("arn:aws:iam::111111111111:mfa/alice")
    );
}

// ---------------------------------------------------------------------------
// The catalog of roles.

const CATALOG: &str = "roles:
  admin:
    name: PlatformAdmin
    stack_name: rolecall-admin
    policy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"*\", Resource: \"*\"}]}
  readonly:
    name: PlatformReadOnly
    stack_name: rolecall-readonly
    managed_policy_arns: [ReadOnlyAccess]
    profiles: {name: \"{account_name}-ro\"}
  deploy:
    name: \"Deploy-{region}\"
    stack_name: rolecall-deploy
    trusted_principals: [\"arn:aws:iam::111111111111:role/ci-deployer\"]
    policy: none
    managed_policy_arns: [PowerUserAccess]
    regions: [us-east-1, eu-west-1]
    targets: {ous: [ou-abcd-12345678], exclude: [\"333333333333\"]}
profiles:
  name: \"{account_name}-{role}\"
";

#[test]
fn a_catalog_of_roles_each_with_its_targets_regions_and_profiles() {
    let inv = inventory_with(CATALOG);
    let keys: Vec<&str> = inv.roles.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["admin", "deploy", "readonly"]);
    let ro = inv.role("readonly").unwrap();
    assert_eq!(ro.profiles.name, "{account_name}-ro");
    assert_eq!(ro.spec.policy, None, "managed policies alone: no inline policy");
    let deploy = inv.role("deploy").unwrap();
    assert_eq!(
        deploy.spec.trusted_accounts,
        Vec::<model::AccountId>::new(),
        "principals instead of accounts"
    );
    assert_eq!(inv.role("admin").unwrap().profiles.name, "{account_name}-{role}");
    let catalog = crate::catalog(&inv);
    assert_eq!(
        catalog
            .iter()
            .map(|d| (d.role.as_str(), d.stack_name.as_str()))
            .collect::<Vec<_>>(),
        [
            ("admin", "rolecall-admin"),
            ("deploy", "rolecall-deploy"),
            ("readonly", "rolecall-readonly")
        ]
    );
    // Targets: the listed account 222… (not under the OU) gets admin and
    // readonly; two discovered accounts of the OU (one deep) get deploy in
    // both regions too; 333… is excluded from deploy.
    let mut deep = discovered("444444444444", "deep", &[]);
    deep.ous = vec!["r-ab12".into(), "ou-abcd-12345678".into(), "ou-abcd-deeper00".into()];
    deep.parent = "ou-abcd-deeper00".into();
    let found = [deep, discovered("333333333333", "excluded", &[])];
    let mut inv = inv;
    inv.organization = Some(model::OrgDiscovery {
        ous: vec!["r-ab12".into()],
        recursive: true,
        tags: Default::default(),
        exclude: Vec::new(),
    });
    let targets = crate::targets::resolve(&inv, &found).targets;
    let summary: Vec<String> = targets
        .iter()
        .map(|t| {
            let roles: Vec<String> = t
                .roles
                .iter()
                .map(|r| format!("{}:{}", r.role, r.regions.join("+")))
                .collect();
            format!("{} {}", t.account_id.as_str().trim_start_matches('0'), roles.join(" "))
        })
        .collect();
    assert_eq!(
        summary,
        [
            "222222222222 admin:us-east-1 readonly:us-east-1",
            "333333333333 admin:us-east-1 readonly:us-east-1",
            "444444444444 admin:us-east-1 deploy:us-east-1+eu-west-1 readonly:us-east-1",
        ]
    );
    // Profiles: one per role and account, named after the role.
    let order = BTreeMap::new();
    let names: Vec<String> = inv
        .roles
        .iter()
        .flat_map(|r| {
            let settings = crate::profiles::ProfileSettings::of(r, &order);
            let role_targets: Vec<model::Target> = targets
                .iter()
                .filter_map(|t| {
                    let regions = t.roles.iter().find(|x| x.role == r.key)?.regions.clone();
                    Some(model::Target { regions, ..t.clone() })
                })
                .collect();
            crate::profiles::for_targets(&settings, &role_targets)
        })
        .map(|p| p.name)
        .filter(|n| n.starts_with("deep"))
        .collect();
    assert_eq!(names, ["deep-admin", "deep-deploy", "deep-ro"]);
    // The bootstrap role may manage every role's stack and role.
    let boot = crate::template::bootstrap(&inv);
    for part in [
        "rolecall-admin/*",
        "rolecall-readonly/*",
        "role/PlatformReadOnly",
        "role/Deploy-*",
    ] {
        assert!(boot.contains(part), "{part}: {boot}");
    }
}

#[test]
fn catalog_mistakes_are_named_with_the_fix() {
    // A role of the catalog takes the keys of role: and its own three.
    check_inventory(
        &format!(
            "{HEAD}roles:\n  a: {{name: A, policy: none, managed_policy_arns: [ReadOnlyAccess], regoins: [us-east-1]}}\naccounts:\n  - id: \"222222222222\"\n"
        ),
        expect![[r#"
            error: inv/test.yaml:4:69: roles.a.regoins: unknown key `regoins` in `roles.a`
              help: did you mean `regions`? valid keys here: name, stack_name, trusted_accounts, trusted_principals, trust_conditions, permissions_boundary, path, policy, managed_policy_arns, external_id, max_session_duration, template, parameters, output_key, tags, regions, targets, profiles
            1 error in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!("{HEAD}role: {{name: A}}\nroles:\n  a: {{name: B}}\naccounts:\n  - id: \"222222222222\"\n"),
        expect![[r#"
            error: inv/test.yaml:5:4: roles: `role` and `roles` are both given
              help: a single role is `role:`; a catalog is `roles:`, one key per role (move the role under roles: with a key, e.g. admin)
            1 error in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!(
            "{HEAD}roles:\n  admin: {{name: Same, stack_name: S, policy: none, managed_policy_arns: [ReadOnlyAccess]}}\n  \"read only\": {{name: Same, stack_name: S, policy: none, managed_policy_arns: [ReadOnlyAccess]}}\naccounts:\n  - id: \"222222222222\"\n"
        ),
        expect![[r#"
            error: inv/test.yaml:1:1: profiles.name: with several roles, each profile name must say its role, but profiles.name has no {role}
              help: add {role}, e.g. name: "{account_name}-{role}" (or give each role its own profiles.name)
            error: inv/test.yaml:5:16: roles.read only: "read only" is not a role key: ' ' is not allowed
              help: use 1-64 letters, digits, `-` and `_` (admin, read-only, deploy)
            error: inv/test.yaml:5:23: roles.read only.name: roles.read only and roles.admin have the same role name "Same"; IAM role names are global to an account, so the second stack would fail
              help: give each role its own name
            error: inv/test.yaml:5:41: roles.read only.stack_name: roles.read only and roles.admin have the same stack name "S"
              help: give each role its own stack_name
            4 errors in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!(
            "{HEAD}role:\n  regions: [us-east-1]\n  targets: {{ous: [ou-abcd-12345678]}}\naccounts:\n  - id: \"222222222222\"\n"
        ),
        expect![[r#"
            error: inv/test.yaml:4:3: role.regions: unknown key `regions` in `role`
              help: valid keys here: name, stack_name, trusted_accounts, trusted_principals, trust_conditions, permissions_boundary, path, policy, managed_policy_arns, external_id, max_session_duration, template, parameters, output_key, tags
            error: inv/test.yaml:5:3: role.targets: unknown key `targets` in `role`
              help: valid keys here: name, stack_name, trusted_accounts, trusted_principals, trust_conditions, permissions_boundary, path, policy, managed_policy_arns, external_id, max_session_duration, template, parameters, output_key, tags
            2 errors in inv/test.yaml
        "#]],
    );
    check_inventory(
        &format!(
            "{HEAD}roles:\n  a:\n    name: A\n    policy: none\n    managed_policy_arns: [ReadOnlyAccess]\n    targets: {{ous: [not-an-ou], accounts: [\"12\"]}}\n    regions: [mars-1]\naccounts:\n  - id: \"222222222222\"\n"
        ),
        expect![[r#"
            error: inv/test.yaml:8:21: roles.a.targets.ous[0]: "not-an-ou" is not an OU id or root id
              help: use ids like ou-ab12-cd34ef56 or r-ab12
            error: inv/test.yaml:8:44: roles.a.targets.accounts[0]: "12" is not an AWS account id (expected exactly 12 digits)
              help: write the full 12-digit account id, in quotes
            error: inv/test.yaml:9:15: roles.a.regions[0]: "mars-1" is not an AWS region name
              help: write a region such as us-east-1 or eu-west-1
            3 errors in inv/test.yaml
        "#]],
    );
}

/// A catalog of roles on StackSets: one stack set per role, named after
/// its stack_name; a service-managed set deploys to the role's OUs, or to
/// the inventory's narrowed to the role's accounts, less every exclusion.
#[test]
fn a_catalog_gets_one_stack_set_per_role() {
    let catalog = "roles:\n  admin: {name: Admin}\n  audit:\n    name: Audit\n    policy: none\n    managed_policy_arns: [ReadOnlyAccess]\n    targets: {accounts: [\"222222222222\", \"444444444444\"], exclude: [\"444444444444\"]}\n  deploy:\n    name: Deploy\n    stack_name: rolecall-deploy\n    targets: {ous: [ou-ab12-cd34ef56]}\nprofiles: {name: \"{account_name}-{role}\"}\n";
    let (inv, _) = inventory::parse(
        &format!(
            "{HEAD}{catalog}deploy: {{via: stacksets, stackset: {{permission_model: service-managed}}}}\norganization: {{ous: [r-ab12], exclude: [\"333333333333\"]}}\n"
        ),
        Path::new("inv/test.yaml"),
        &read_file,
    )
    .unwrap();
    let spec = inv.deploy.stackset.as_ref().unwrap();
    let mut out = String::new();
    for role in &inv.roles {
        let d = crate::stacksets::deployment(&inv, role);
        out.push_str(&format!(
            "{}: set {}, ous {:?}, filter {:?}\n",
            role.key,
            crate::stacksets::set_name(spec, &role.spec.stack_name),
            d.ous,
            d.account_filter
        ));
    }
    expect![[r#"
        admin: set rolecall-admin, ous ["r-ab12"], filter Some(("DIFFERENCE", ["333333333333"]))
        audit: set rolecall-audit, ous ["r-ab12"], filter Some(("INTERSECTION", ["222222222222"]))
        deploy: set rolecall-deploy, ous ["ou-ab12-cd34ef56"], filter Some(("DIFFERENCE", ["333333333333"]))
    "#]]
    .assert_eq(&out);

    // What a service-managed set cannot say, and one name for many sets.
    check_inventory(
        &format!(
            "{HEAD}roles:\n  a: {{name: A, targets: {{tags: {{env: prod}}}}}}\n  b: {{name: B, targets: {{ous: [ou-ab12-cd34ef56], accounts: [\"222222222222\"]}}}}\nprofiles: {{name: \"{{account_name}}-{{role}}\"}}\ndeploy: {{via: stacksets, stackset: {{name: one-set, permission_model: service-managed}}}}\norganization: {{ous: [r-ab12]}}\n"
        ),
        expect![[r#"
            error: inv/test.yaml:4:32: roles.a.targets.tags: a service-managed stack set targets whole OUs; a tag filter cannot be expressed
              help: target the role by `ous` or `accounts`, or use permission_model: self-managed
            error: inv/test.yaml:5:25: roles.b.targets: a service-managed stack set deploys to OUs, narrowed to accounts within them; `ous` and `accounts` together (either one) cannot be expressed
              help: keep either `ous` or `accounts`, or use permission_model: self-managed
            error: inv/test.yaml:7:43: deploy.stackset.name: `name` names one stack set, and the catalog has 2 roles: each role gets its own stack set, named after its stack_name
              help: remove deploy.stackset.name, and set roles.KEY.stack_name where a role's stack set needs another name
            warning: inv/test.yaml:4:3: roles.a.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            warning: inv/test.yaml:5:3: roles.b.policy: no policy given: the role gets full access (Action "*" on Resource "*")
              help: set role.policy to the least privilege the role needs
            3 errors in inv/test.yaml
        "#]],
    );
}

/// A role that left the catalog: its stack set and every instance are
/// orphans; a stack set rolecall did not make is not its business.
#[test]
fn a_role_that_left_the_catalog_orphans_its_stack_set() {
    let (inv, _) = inventory::parse(
        &format!("{HEAD}role: {{name: R}}\ndeploy: {{via: stacksets}}\naccounts:\n  - id: \"222222222222\"\n"),
        Path::new("inv/test.yaml"),
        &read_file,
    )
    .unwrap();
    let want = desired(&inv.roles[0]);
    let set = |managed: bool| model::StackSetInfo {
        name: "old".into(),
        status: "ACTIVE".into(),
        tags: if managed {
            [(model::TAG_MANAGED_BY.to_owned(), model::MANAGED_BY_VALUE.to_owned())].into()
        } else {
            Default::default()
        },
    };
    let instances = [instance("222222222222", "us-east-1", "CURRENT", "SUCCEEDED")];
    let plan = crate::stacksets::decide(&want, "old", Some(&set(true)), &instances, &[], true);
    let mut out = String::new();
    for s in &plan.stack_sets {
        out.push_str(&format!("set {}: {}\n", s.action, s.reason));
    }
    for e in &plan.entries {
        out.push_str(&format!(
            "{} {} {} {}: {}\n",
            e.account_id, e.role, e.region, e.action, e.reason
        ));
    }
    expect![[r#"
        set orphaned: role default left the catalog; `destroy --orphans` deletes its instances and stack set old
        222222222222 default us-east-1 orphaned: role default left the catalog; `destroy --orphans` deletes its instances and stack set old
    "#]]
    .assert_eq(&out);
    assert_eq!(
        crate::stacksets::decide(&want, "old", Some(&set(false)), &instances, &[], true),
        model::Plan::default()
    );
    assert_eq!(
        crate::stacksets::decide(&want, "old", None, &[], &[], true),
        model::Plan::default()
    );
}
