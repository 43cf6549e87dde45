//! `rolecall registry get | list | export` on a registry file: one ARN
//! alone on stdout, or exit 1 with nothing on stdout and the matches or
//! the fix on stderr. No AWS endpoint is reachable: none is called. (From
//! S3: tests/it/registry_store.rs.)

const NO_AWS: &str = "http://127.0.0.1:9";

fn registry_file() -> std::path::PathBuf {
    let entry = |account: &str, name: &str, role: &str, region: &str, arn: Option<&str>, status: &str| {
        serde_json::json!({
            "account_id": account, "account_name": name, "role": role, "role_name": "R",
            "stack_name": format!("rolecall-{role}"), "region": region,
            "stack_id": format!("arn:aws:cloudformation:{region}:{account}:stack/rolecall-{role}/1"),
            "role_arn": arn, "outputs": {}, "fingerprint": null, "status": status,
            "error": if status == "failed" { serde_json::json!("AccessDenied") } else { serde_json::Value::Null },
        })
    };
    let doc = serde_json::json!({
        "schema_version": 4, "generated_at": "2026-12-01T00:00:00Z", "inventory": "platform",
        "source_account": "111111111111", "written_by": "rolecall 0.4.0 (0123456789ab)",
        "entries": [
            entry("222222222222", "dev", "admin", "us-east-1", Some("arn:aws:iam::222222222222:role/Admin"), "created"),
            entry("222222222222", "dev", "deploy", "eu-west-1", Some("arn:aws:iam::222222222222:role/Deploy-eu-west-1"), "unchanged"),
            entry("222222222222", "dev", "deploy", "us-east-1", Some("arn:aws:iam::222222222222:role/Deploy-us-east-1"), "unchanged"),
            entry("333333333333", "prod", "admin", "us-east-1", Some("arn:aws:iam::333333333333:role/Admin"), "failed"),
            entry("444444444444", "new", "admin", "us-east-1", None, "failed"),
        ],
    });
    let path = tests::write_inventory("query", "").with_file_name("registry.json");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    crate::registry(&path);
    path
}

#[test]
fn registry_get_prints_one_arn_or_says_why_not() {
    let file = registry_file();
    let reg = file.to_str().unwrap();
    let get = |extra: &[&str]| {
        let mut args = vec!["registry", "get", "--registry", reg];
        args.extend_from_slice(extra);
        tests::rolecall(NO_AWS, &args)
    };

    // By id and by name, exactly one: the ARN alone.
    let run = get(&["--account", "222222222222", "--role", "admin"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "arn:aws:iam::222222222222:role/Admin\n");
    let run = get(&["--account", "dev", "--role", "deploy", "--region", "eu-west-1"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "arn:aws:iam::222222222222:role/Deploy-eu-west-1\n");

    // Ambiguous: nothing on stdout, the matches on stderr.
    let run = get(&["--account", "dev", "--role", "deploy"]);
    run.expect_code(1);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("2 entries match; add --role or --region"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("--account 222222222222 --role deploy --region us-east-1"),
        "{}",
        run.stderr
    );

    // Unknown account, or a role it does not have.
    let run = get(&["--account", "staging"]);
    run.expect_code(1);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("no account staging in the registry"),
        "{}",
        run.stderr
    );
    let run = get(&["--account", "prod", "--role", "deploy"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("account prod has no entry for that role and region"),
        "{}",
        run.stderr
    );

    // Failed: the last known ARN, its status on stderr; no ARN at all: exit 1.
    let run = get(&["--account", "prod"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "arn:aws:iam::333333333333:role/Admin\n");
    assert!(
        run.stderr
            .contains("is failed: this is its last known role ARN (AccessDenied)"),
        "{}",
        run.stderr
    );
    let run = get(&["--account", "444444444444"]);
    run.expect_code(1);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("has no role ARN recorded"), "{}", run.stderr);

    // Neither --registry nor -i: the fix.
    let run = tests::rolecall(NO_AWS, &["registry", "get", "--account", "dev"]);
    run.expect_code(1);
    assert!(run.stderr.contains("pass --registry"), "{}", run.stderr);
}

#[test]
fn registry_list_and_export_hold_every_arn() {
    let file = registry_file();
    let reg = file.to_str().unwrap();
    let arns = [
        "arn:aws:iam::222222222222:role/Admin",
        "arn:aws:iam::222222222222:role/Deploy-eu-west-1",
        "arn:aws:iam::222222222222:role/Deploy-us-east-1",
        "arn:aws:iam::333333333333:role/Admin",
    ];
    let list = tests::rolecall(NO_AWS, &["registry", "list", "--registry", reg]);
    list.expect_code(0);
    assert!(list.stdout.starts_with("ACCOUNT"), "{}", list.stdout);
    let json = tests::rolecall(
        NO_AWS,
        &["registry", "list", "--registry", reg, "--json", "--role", "deploy"],
    );
    json.expect_code(0);
    let entries: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 2);
    for format in ["csv", "json", "tfvars", "env"] {
        let run = tests::rolecall(NO_AWS, &["registry", "export", "--registry", reg, "--format", format]);
        run.expect_code(0);
        for arn in arns {
            assert!(run.stdout.contains(arn), "{format} lacks {arn}:\n{}", run.stdout);
        }
    }
    // env lines are sourced by a real shell.
    let env = tests::rolecall(NO_AWS, &["registry", "export", "--registry", reg, "--format", "env"]);
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("{}\necho \"$ROLECALL_DEPLOY_222222222222_EU_WEST_1\"", env.stdout),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "arn:aws:iam::222222222222:role/Deploy-eu-west-1\n"
    );
}
