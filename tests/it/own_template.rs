//! An own template with a parameter left at its default and a NoEcho
//! parameter settles: after apply, plan says nothing to do and a re-apply
//! only reads. (moto does not mask NoEcho values as AWS does — it compares
//! values with key names — so the `****` case is a planner table test.)

use tests::proxy::{Proxy, is_read};
use tests::{MANAGEMENT_ACCOUNT, Moto, ou, seed_org, write_inventory};

const TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  RoleName: {Type: String}
  Path: {Type: String, Default: /platform/}
  Secret: {Type: String, NoEcho: true}
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Ref RoleName
      Path: !Ref Path
      Tags: [{Key: secret-hash, Value: !Ref Secret}]
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement:
          - {Effect: Allow, Principal: {AWS: !Sub 'arn:${AWS::Partition}:iam::123456789012:root'}, Action: 'sts:AssumeRole'}
Outputs:
  RoleArn: {Value: !GetAtt Role.Arn}
"#;

#[test]
fn own_template_with_defaulted_and_no_echo_parameters_settles() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let org = tests::runtime().block_on(async {
        let tree = vec![ou("Apps", &[("app-1", &[]), ("app-2", &[]), ("app-3", &[])], vec![])];
        seed_org(&moto.sdk_config().await, &[], &tree).await
    });
    let inv = write_inventory(
        "own-template",
        &format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  template: role.yaml\n  parameters: {{RoleName: Custom, Secret: not-for-logs}}\norganization:\n  ous: [{}]\n",
            org.ou("Root")
        ),
    );
    std::fs::write(inv.with_file_name("role.yaml"), TEMPLATE).unwrap();
    let registry = inv.with_file_name("registry.json");
    let inv = inv.to_str().unwrap();
    let apply = || {
        tests::rolecall(
            &proxy.url(),
            &[
                "apply",
                "-i",
                inv,
                "--yes",
                "--poll-interval",
                "0.05",
                "--registry",
                registry.to_str().unwrap(),
            ],
        )
    };
    let run = apply();
    run.expect_code(0);
    assert!(run.stdout.contains("3 created"), "{}", run.stdout);
    proxy.take_calls();

    let plan = tests::rolecall(&proxy.url(), &["plan", "-i", inv, "--detailed-exitcode"]);
    plan.expect_code(0);
    let run = apply();
    run.expect_code(0);
    assert!(run.stdout.contains("0 updated, 3 unchanged"), "{}", run.stdout);
    let calls = proxy.take_calls();
    let writes: Vec<&String> = calls.keys().filter(|op| !is_read(op)).collect();
    assert!(writes.is_empty(), "a settled own template made writes: {calls:?}");
    assert!(!calls.contains_key("cloudformation:CreateChangeSet"), "{calls:?}");
}
