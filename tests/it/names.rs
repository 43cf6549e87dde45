//! Real organizations: Control Tower account names (`Log Archive`),
//! collisions of safe names, and a GovCloud partition, against moto.

use tests::proxy::{Proxy, is_read};
use tests::{MANAGEMENT_ACCOUNT, Moto, ou, seed_org, write_inventory};

const POLICY: &str =
    "  policy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}]}\n";

#[test]
fn control_tower_names_are_discovered_and_get_safe_profiles() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let rt = tests::runtime();
    let org = rt.block_on(async {
        let tree = vec![
            ou("Security", &[("Log Archive", &[]), ("Audit", &[])], vec![]),
            ou("Workloads", &[("Payments (EU) #2", &[]), ("Zürich.ops", &[])], vec![]),
        ];
        seed_org(&moto.sdk_config().await, &[], &tree).await
    });
    let inv = write_inventory(
        "ct-names",
        &format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n{POLICY}organization:\n  ous: [{}]\n",
            org.ou("Root")
        ),
    );
    let inv = inv.to_str().unwrap();
    for command in ["accounts", "plan"] {
        let run = tests::rolecall(&proxy.url(), &[command, "-i", inv]);
        run.expect_code(0);
        assert!(
            run.stdout.contains("Log Archive"),
            "the real name in tables:\n{}",
            run.stdout
        );
    }
    let dir = std::path::Path::new(inv).parent().unwrap().to_path_buf();
    let (registry, profiles) = (dir.join("registry.json"), dir.join("profiles.ini"));
    let run = tests::rolecall(
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
            "--profiles",
            profiles.to_str().unwrap(),
        ],
    );
    run.expect_code(0);
    let text = std::fs::read_to_string(&profiles).unwrap();
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("[profile ")).collect();
    assert_eq!(
        headers,
        [
            "[profile Audit]",
            "[profile Log-Archive]",
            "[profile Payments-(EU)-2]",
            "[profile Zürich.ops]"
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&registry).unwrap()).unwrap();
    let names: Vec<&str> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["account_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Log Archive") && names.contains(&"Payments (EU) #2"),
        "{names:?}"
    );

    // The real AWS CLI takes the safe name and lands in the account.
    let creds = dir.join("credentials");
    tests::write_default_credentials(&creds);
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = tests::aws_cli(
        &moto.url(),
        &profiles,
        &creds,
        &home,
        &[
            "sts",
            "get-caller-identity",
            "--profile",
            "Log-Archive",
            "--output",
            "text",
            "--query",
            "Account",
        ],
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        org.account("Log Archive").id,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn colliding_safe_names_stop_only_commands_that_write_profiles() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let org = tests::runtime().block_on(async {
        let tree = vec![ou("Security", &[("Log Archive", &[]), ("Log-Archive", &[])], vec![])];
        seed_org(&moto.sdk_config().await, &[], &tree).await
    });
    let inv = write_inventory(
        "ct-clash",
        &format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n{POLICY}organization:\n  ous: [{}]\n",
            org.ou("Root")
        ),
    );
    let inv = inv.to_str().unwrap();
    tests::rolecall(&proxy.url(), &["accounts", "-i", inv]).expect_code(0);
    tests::rolecall(&proxy.url(), &["plan", "-i", inv]).expect_code(0);
    proxy.take_calls();
    let dir = std::path::Path::new(inv).parent().unwrap().to_path_buf();
    let config = dir.join("config");
    std::fs::write(&config, "[default]\nregion = eu-west-1\n").unwrap();
    let run = tests::rolecall(
        &proxy.url(),
        &["apply", "-i", inv, "--yes", "--profiles-into", config.to_str().unwrap()],
    );
    run.expect_code(1);
    let (a, b) = (&org.account("Log Archive").id, &org.account("Log-Archive").id);
    assert!(
        run.stderr
            .contains("profile name \"Log-Archive\" is generated for both account")
            && run.stderr.contains(a.as_str())
            && run.stderr.contains(b.as_str())
            && run.stderr.contains("put {account_id} in profiles.name"),
        "{}",
        run.stderr
    );
    let calls = proxy.take_calls();
    assert!(
        calls.keys().all(|op| is_read(op)) && !calls.contains_key("sts:AssumeRole"),
        "refused before touching any account: {calls:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "[default]\nregion = eu-west-1\n"
    );
}

#[test]
fn govcloud_partition_end_to_end() {
    let moto = Moto::start();
    const GOV: &str = "us-gov-west-1";
    let org = tests::runtime().block_on(async {
        let tree = vec![ou("Workloads", &[("gov-app", &[]), ("gov-data", &[])], vec![])];
        seed_org(&moto.sdk_config_in(GOV).await, &[], &tree).await
    });
    let inv = write_inventory(
        "govcloud",
        &format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  name: \"Gov-{{region}}\"\n{POLICY}  managed_policy_arns: [ReadOnlyAccess]\ndeploy:\n  regions: [{GOV}, us-gov-east-1]\n  concurrency: 4\norganization:\n  ous: [{}]\n",
            org.ou("Root")
        ),
    );
    let inv = inv.to_str().unwrap();
    // The harness sets AWS_REGION=us-east-1: a commercial caller is refused
    // before any call, with the fix.
    let run = moto.rolecall(&["plan", "-i", inv]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("partition aws") && run.stderr.contains("aws-us-gov") && run.stderr.contains("--region"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_file(std::path::Path::new(inv).with_file_name("registry.json"));
    // With a GovCloud caller: discovery (Organizations in us-gov-west-1),
    // AssumeRole on arn:aws-us-gov:…, stacks, and partition ARNs back.
    let registry = std::path::Path::new(inv).with_file_name("registry.json");
    let run = moto.rolecall(&[
        "--region",
        GOV,
        "apply",
        "-i",
        inv,
        "--yes",
        "--poll-interval",
        "0.05",
        "--registry",
        registry.to_str().unwrap(),
    ]);
    run.expect_code(0);
    assert!(run.stdout.contains("4 created"), "{}", run.stdout);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&registry).unwrap()).unwrap();
    for e in json["entries"].as_array().unwrap() {
        let arn = e["role_arn"].as_str().unwrap();
        assert!(arn.starts_with("arn:aws-us-gov:iam::"), "{arn}");
        assert!(
            e["stack_id"]
                .as_str()
                .unwrap()
                .starts_with("arn:aws-us-gov:cloudformation:")
        );
    }
    let run = moto.rolecall(&["--region", GOV, "plan", "-i", inv, "--detailed-exitcode"]);
    run.expect_code(0);
}
