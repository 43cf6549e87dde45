//! `rolecall template` and `bootstrap-template` print templates that the
//! real cfn-lint (installed with moto[server]) accepts with zero findings,
//! for inventories that exercise every branch of the built-in template.

use std::path::PathBuf;

/// An endpoint nothing listens on: these commands make no AWS call.
const NO_AWS: &str = "http://127.0.0.1:9";

/// Runs cfn-lint once over all the files (it takes seconds to start).
fn lint(templates: &[PathBuf]) -> (i32, String) {
    let python = tests::python();
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import sys; from cfnlint.runner import main; sys.argv = ['cfn-lint', '--'] + sys.argv[1:]; sys.exit(main())",
        ])
        .args(templates)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} for cfn-lint ({e}); run `just setup`"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("No module named"),
        "cfn-lint is not installed for {python}: run `just setup` (it comes with moto[server])\n{text}"
    );
    (out.status.code().unwrap_or(-1), text)
}

const HEAD: &str = "version: 1\nsource_account: \"111111111111\"\naccounts: [{id: \"222222222222\", name: dev}]\n";

#[test]
fn built_in_and_bootstrap_templates_pass_cfn_lint() {
    let cases = [
        ("defaults", ""),
        (
            "external-id-and-trust",
            "role:\n  name: Ops\n  external_id: my-ext-id\n  trusted_accounts: [\"111111111111\", \"099999999999\", \"012345678901\"]\n  policy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: [\"s3:Get*\"], Resource: \"*\"}]}\n",
        ),
        (
            "managed-policies",
            "role:\n  name: Reader\n  max_session_duration: 43200\n  managed_policy_arns: [ReadOnlyAccess, \"arn:aws:iam::aws:policy/job-function/ViewOnlyAccess\"]\n  policy: {Version: \"2012-10-17\", Statement: [{Effect: Deny, Action: \"iam:*\", Resource: \"*\"}]}\n  tags: {owner: platform, cost-center: \"42\"}\n",
        ),
        (
            "principals-conditions-boundary-path",
            "role:\n  name: Deploy\n  path: /platform/ci/\n  trusted_principals: [\"arn:aws:iam::111111111111:role/ci-deployer\", \"arn:aws:iam::111111111111:user/alice\"]\n  trust_conditions: {StringEquals: {aws:PrincipalOrgID: o-abc123def4}, Bool: {aws:MultiFactorAuthPresent: \"true\"}}\n  external_id: ci-ext\n  permissions_boundary: PowerUserAccess\n  managed_policy_arns: [ReadOnlyAccess]\nprofiles:\n  mfa_serial: \"arn:aws:iam::111111111111:mfa/alice\"\n",
        ),
        (
            "region-names",
            "role:\n  name: \"Admin-{region}\"\n  output_key: AdminArn\ndeploy:\n  regions: [us-east-1, eu-west-1, ap-southeast-2]\n  bootstrap_external_id: boot-strap\n",
        ),
    ];
    let mut files = Vec::new();
    for (name, role) in cases {
        let inv = tests::write_inventory(&format!("lint-{name}"), &format!("{HEAD}{role}"));
        for command in ["template", "bootstrap-template"] {
            let run = tests::rolecall(NO_AWS, &[command, "-i", inv.to_str().unwrap()]);
            run.expect_code(0);
            let file = inv.with_file_name(format!("{command}.json"));
            std::fs::write(&file, &run.stdout).unwrap();
            files.push(file);
        }
        let run = tests::rolecall(NO_AWS, &["template", "-i", inv.to_str().unwrap(), "--parameters"]);
        run.expect_code(0);
        assert_eq!(run.stdout, "[]\n", "the built-in template takes no parameters");
    }
    // A catalog on StackSets: each role's template, and a bootstrap role
    // that may read every role's instance stacks.
    let inv = tests::write_inventory(
        "lint-stacksets-catalog",
        &format!(
            "{HEAD}roles:\n  admin: {{name: Admin}}\n  audit: {{name: Audit, policy: none, managed_policy_arns: [ReadOnlyAccess]}}\nprofiles: {{name: \"{{account_name}}-{{role}}\"}}\ndeploy: {{via: stacksets}}\n"
        ),
    );
    let boot = tests::rolecall(NO_AWS, &["bootstrap-template", "-i", inv.to_str().unwrap()]);
    boot.expect_code(0);
    for part in [
        "StackSet-rolecall-admin-*/*",
        "StackSet-rolecall-audit-*/*",
        "cloudformation:ListStacks",
    ] {
        assert!(boot.stdout.contains(part), "{part}: {}", boot.stdout);
    }
    let file = inv.with_file_name("bootstrap-template.json");
    std::fs::write(&file, &boot.stdout).unwrap();
    files.push(file);
    for role in ["admin", "audit"] {
        let run = tests::rolecall(NO_AWS, &["template", "-i", inv.to_str().unwrap(), "--role", role]);
        run.expect_code(0);
        let file = inv.with_file_name(format!("template-{role}.json"));
        std::fs::write(&file, &run.stdout).unwrap();
        files.push(file);
    }
    let (code, findings) = lint(&files);
    assert_eq!(
        (code, findings.as_str()),
        (0, ""),
        "cfn-lint found problems in {files:#?}"
    );

    // The linter really looks: a template with a mistake has findings.
    let bad = files[0].with_file_name("bad.json");
    let text = std::fs::read_to_string(&files[0])
        .unwrap()
        .replace("AWS::IAM::Role", "AWS::IAM::Rol");
    std::fs::write(&bad, text).unwrap();
    let (code, findings) = lint(&[bad]);
    assert!(
        code != 0 && findings.contains("AWS::IAM::Rol"),
        "cfn-lint did not flag a bad type: {findings}"
    );
}

#[test]
fn template_prints_what_apply_deploys_and_own_parameters() {
    let dir = tests::write_inventory("own-template", "")
        .parent()
        .unwrap()
        .to_path_buf();
    let body = "AWSTemplateFormatVersion: '2010-09-09'\nParameters:\n  Name: {Type: String}\nResources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Ref Name\n      AssumeRolePolicyDocument: {Version: '2012-10-17', Statement: [{Effect: Allow, Principal: {AWS: !Sub 'arn:${AWS::Partition}:iam::111111111111:root'}, Action: 'sts:AssumeRole'}]}\nOutputs:\n  RoleArn: {Value: !GetAtt Role.Arn}\n";
    std::fs::write(dir.join("role.yaml"), body).unwrap();
    let inv = dir.join("own.yaml");
    std::fs::write(
        &inv,
        format!("{HEAD}role:\n  template: role.yaml\n  parameters: {{Name: Team, Other: \"x y\"}}\n"),
    )
    .unwrap();
    let run = tests::rolecall(NO_AWS, &["template", "-i", inv.to_str().unwrap()]);
    run.expect_code(0);
    assert_eq!(run.stdout, body, "the user's template, byte for byte");
    let run = tests::rolecall(NO_AWS, &["template", "-i", inv.to_str().unwrap(), "--parameters"]);
    run.expect_code(0);
    let params: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        params,
        serde_json::json!([
            {"ParameterKey": "Name", "ParameterValue": "Team"},
            {"ParameterKey": "Other", "ParameterValue": "x y"}
        ])
    );
}
