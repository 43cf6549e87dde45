//! The ARN registry as an S3 object on moto (a versioned bucket): apply
//! writes it conditionally (`If-None-Match: *`, then `If-Match`), with
//! Content-Type JSON; the real AWS CLI reads it; plan reads the previous
//! registry from it; two narrowed applies at once both end in it. The
//! 412/409 retries, a bucket that denies writes and the local copy are on
//! the fake (crates/executor/src/objects.rs).

use tests::proxy::Proxy;
use tests::{MANAGEMENT_ACCOUNT, Moto, ou, seed_org};

use crate::registry;

/// moto behind our proxy, an organization of three accounts under Apps,
/// a test folder, and the AWS CLI pointed at moto.
struct World {
    moto: Moto,
    proxy: Proxy,
    org: tests::SeededOrg,
    dir: std::path::PathBuf,
}

impl World {
    fn start(name: &str) -> World {
        let moto = Moto::start();
        let proxy = Proxy::start(moto.port);
        let org = tests::runtime().block_on(async {
            let tree = vec![ou("Apps", &[("app-1", &[]), ("app-2", &[]), ("app-3", &[])], vec![])];
            seed_org(&moto.sdk_config().await, &[], &tree).await
        });
        let dir = tests::write_inventory(name, "").parent().unwrap().to_path_buf();
        std::fs::write(dir.join("config"), "[default]\nregion = us-east-1\n").unwrap();
        tests::write_default_credentials(&dir.join("credentials"));
        std::fs::create_dir_all(dir.join("home")).unwrap();
        World { moto, proxy, org, dir }
    }

    /// The real AWS CLI against moto; its stdout, or the test fails.
    fn aws(&self, args: &[&str]) -> String {
        let (config, creds, home) = (
            self.dir.join("config"),
            self.dir.join("credentials"),
            self.dir.join("home"),
        );
        let out = tests::aws_cli(&self.moto.url(), &config, &creds, &home, args).unwrap();
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn apply_writes_the_registry_to_s3_conditionally_and_concurrent_runs_both_land() {
    let world = World::start("registry-s3");
    let (proxy, org, dir) = (&world.proxy, &world.org, world.dir.clone());
    let aws = |args: &[&str]| world.aws(args);
    aws(&["s3api", "create-bucket", "--bucket", "platform-registry"]);
    aws(&[
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        "platform-registry",
        "--versioning-configuration",
        "Status=Enabled",
    ]);
    // SSE-KMS by default, as a platform team's registry bucket would be.
    let key: serde_json::Value = serde_json::from_str(&aws(&["kms", "create-key"])).unwrap();
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    aws(&[
        "s3api",
        "put-bucket-encryption",
        "--bucket",
        "platform-registry",
        "--server-side-encryption-configuration",
        &format!(
            "{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"{key_id}\"}}}}]}}"
        ),
    ]);
    let object = "s3://platform-registry/rolecall/apps.json";
    let inv = dir.join("apps.yaml");
    let write = |action: &str| {
        std::fs::write(
            &inv,
            format!(
                "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"{action}\", Resource: \"*\"}}]}}\nregistry:\n  location: \"{object}\"\n  ssm_prefix: /rolecall/apps\norganization:\n  ous: [{}]\n",
                org.ou("Root/Apps")
            ),
        )
        .unwrap();
    };
    write("s3:*");
    let inv_s = inv.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["apply", "-i", inv_s, "--yes", "--poll-interval", "0.05"];
        args.extend_from_slice(extra);
        tests::rolecall_in(&dir, &proxy.url(), &args)
    };
    let read = || {
        let local = dir.join("read.json");
        std::fs::write(&local, aws(&["s3", "cp", object, "-"])).unwrap();
        registry(&local)
    };

    // 1. The first apply creates the object only if none is there.
    let first = run(&[]);
    first.expect_code(0);
    assert!(
        first
            .stderr
            .contains(&format!("wrote the ARN registry {object} (3 entries)")),
        "{}",
        first.stderr
    );
    let calls = proxy.take_calls();
    assert_eq!(
        (calls.get("s3:PutObject(If-None-Match)"), calls.get("s3:PutObject")),
        (Some(&1), None),
        "{calls:?}"
    );
    let json = read();
    assert_eq!(json["inventory"], "apps");
    assert_eq!(json["entries"].as_array().unwrap().len(), 3);
    for e in json["entries"].as_array().unwrap() {
        let account = e["account_id"].as_str().unwrap();
        assert_eq!(e["role_arn"], format!("arn:aws:iam::{account}:role/RolecallTarget"));
    }
    let head: serde_json::Value = serde_json::from_str(&aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "platform-registry",
        "--key",
        "rolecall/apps.json",
    ]))
    .unwrap();
    assert_eq!(head["ContentType"], "application/json", "{head}");
    assert!(head["VersionId"].as_str().is_some_and(|v| !v.is_empty()), "{head}");
    assert_eq!(head["ServerSideEncryption"], "aws:kms", "{head}");
    assert!(
        !dir.join("rolecall-registry-apps.json").exists(),
        "no local registry file"
    );
    // Both stores: the object and the parameters.
    let params: serde_json::Value = serde_json::from_str(&aws(&[
        "ssm",
        "get-parameters-by-path",
        "--path",
        "/rolecall/apps",
        "--recursive",
    ]))
    .unwrap();
    assert_eq!(params["Parameters"].as_array().unwrap().len(), 3, "{params:#}");

    // 2. The previous registry is read from S3; the next write is If-Match.
    tests::rolecall_in(&dir, &proxy.url(), &["plan", "-i", inv_s, "--detailed-exitcode"]).expect_code(0);
    run(&[]).expect_code(0);
    let calls = proxy.take_calls();
    assert_eq!(calls.get("s3:PutObject(If-Match)"), Some(&1), "{calls:?}");

    // 3. A changed policy, rolled out by two narrowed applies at once: each
    // writes its own accounts into the newest version, neither is lost.
    write("s3:Get*");
    let (a, b) = (org.account("app-1").id.clone(), org.account("app-2").id.clone());
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| run(&["--accounts", &a]));
        let two = s.spawn(|| run(&["--accounts", &b]));
        (one.join().unwrap(), two.join().unwrap())
    });
    one.expect_code(0);
    two.expect_code(0);
    let json = read();
    let status = |id: &str| {
        json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["account_id"] == id)
            .map(|e| e["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        (status(&a), status(&b), status(&org.account("app-3").id)),
        (Some("updated".into()), Some("updated".into()), Some("unchanged".into())),
        "{json:#}"
    );
    let versions: serde_json::Value = serde_json::from_str(&aws(&[
        "s3api",
        "list-object-versions",
        "--bucket",
        "platform-registry",
        "--prefix",
        "rolecall/apps.json",
    ]))
    .unwrap();
    assert_eq!(versions["Versions"].as_array().unwrap().len(), 4, "{versions:#}");

    // 4. Scripts read it from S3 with `registry get` (by id and by name),
    // with no other AWS call; every export format holds every ARN.
    proxy.take_calls();
    let app3 = org.account("app-3").id.clone();
    let want = format!("arn:aws:iam::{app3}:role/RolecallTarget\n");
    for account in [app3.as_str(), "app-3"] {
        let got = tests::rolecall_in(
            &dir,
            &proxy.url(),
            &["registry", "get", "--registry", object, "--account", account],
        );
        got.expect_code(0);
        assert_eq!(got.stdout, want, "{}", got.stderr);
    }
    let got = tests::rolecall_in(
        &dir,
        &proxy.url(),
        &["registry", "get", "-i", inv_s, "--account", "app-1"],
    );
    got.expect_code(0);
    assert_eq!(got.stdout, format!("arn:aws:iam::{a}:role/RolecallTarget\n"));
    for format in ["csv", "json", "tfvars", "env"] {
        let run = tests::rolecall_in(
            &dir,
            &proxy.url(),
            &["registry", "export", "--registry", object, "--format", format],
        );
        run.expect_code(0);
        for e in json["entries"].as_array().unwrap() {
            let arn = e["role_arn"].as_str().unwrap();
            assert!(run.stdout.contains(arn), "{format} lacks {arn}:\n{}", run.stdout);
        }
    }
    let calls = proxy.take_calls();
    assert_eq!(
        calls.keys().collect::<Vec<_>>(),
        ["s3:GetObject"],
        "queries read the object and nothing else: {calls:?}"
    );

    // profiles from the S3 registry.
    let out = dir.join("profiles.ini");
    let profiles = tests::rolecall_in(
        &dir,
        &proxy.url(),
        &[
            "profiles",
            "--registry",
            object,
            "--out",
            out.to_str().unwrap(),
            "-i",
            inv_s,
        ],
    );
    profiles.expect_code(0);
    let text = std::fs::read_to_string(&out).unwrap();
    for name in ["app-1", "app-2", "app-3"] {
        assert!(text.contains(&format!("[profile {name}]")), "{text}");
    }

    // 5. A registry location that cannot be read stops the run before any
    // account is touched.
    proxy.take_calls();
    let missing = tests::rolecall_in(
        &dir,
        &proxy.url(),
        &["plan", "-i", inv_s, "--registry", "s3://no-such-bucket/registry.json"],
    );
    missing.expect_code(1);
    assert!(
        missing
            .stderr
            .contains("cannot read the registry s3://no-such-bucket/registry.json"),
        "{}",
        missing.stderr
    );
    assert!(!proxy.take_calls().keys().any(|k| k.starts_with("cloudformation:")));

    // 6. A registry that cannot be written: the run still reports every
    // outcome, keeps the document locally, says where, and exits 1.
    let unwritable = run(&["--registry", "/proc/rolecall-test/registry.json"]);
    unwritable.expect_code(1);
    assert!(
        unwritable.stdout.contains("Apply: ") && unwritable.stdout.contains("(3 stacks)"),
        "{}",
        unwritable.stdout
    );
    assert!(
        unwritable.stderr.contains("error: the ARN registry was not written")
            && unwritable
                .stderr
                .contains("this run's registry is kept in rolecall-registry-apps.unwritten.json"),
        "{}",
        unwritable.stderr
    );
    assert!(
        unwritable.stdout.contains(
            "Registry: not written to /proc/rolecall-test/registry.json; kept in rolecall-registry-apps.unwritten.json"
        ),
        "the summary says so: {}",
        unwritable.stdout
    );
    let kept = registry(&dir.join("rolecall-registry-apps.unwritten.json"));
    assert_eq!(kept["entries"].as_array().unwrap().len(), 3);
}

/// The registry published as SSM parameters on moto: one per entry under
/// the prefix, read back by the AWS CLI; throttled PutParameters retried;
/// an unchanged run writes none; `destroy --accounts X` deletes exactly
/// X's; a hand-made parameter under the prefix (even at a name rolecall
/// wants) and one outside it survive everything.
#[test]
fn apply_publishes_every_arn_to_ssm_and_touches_only_its_own_parameters() {
    let world = World::start("registry-ssm");
    let (proxy, org, dir) = (&world.proxy, &world.org, world.dir.clone());
    let aws = |args: &[&str]| world.aws(args);
    let (a1, a2, a3) = (
        org.account("app-1").id.clone(),
        org.account("app-2").id.clone(),
        org.account("app-3").id.clone(),
    );
    let prefix = "/rolecall/platform";
    // Hand-made: one under the prefix, one at a name rolecall would want,
    // one outside the prefix.
    let squatted = format!("{prefix}/audit/{a3}/us-east-1/role-arn");
    for (name, value) in [
        (format!("{prefix}/notes"), "hand-made"),
        (squatted.clone(), "hand-made too"),
        ("/elsewhere/x".to_owned(), "not ours"),
    ] {
        aws(&[
            "ssm",
            "put-parameter",
            "--name",
            &name,
            "--value",
            value,
            "--type",
            "String",
        ]);
    }
    let inv = dir.join("platform.yaml");
    std::fs::write(
        &inv,
        format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nroles:\n  admin: {{name: Admin, policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}}]}}}}\n  audit: {{name: Audit, policy: none, managed_policy_arns: [ReadOnlyAccess]}}\nprofiles: {{name: \"{{account_name}}-{{role}}\"}}\nregistry:\n  ssm_prefix: {prefix}\norganization:\n  ous: [{}]\n",
            org.ou("Root/Apps")
        ),
    )
    .unwrap();
    let inv_s = inv.to_str().unwrap();
    let run = |command: &str, extra: &[&str]| {
        let mut args = vec![command, "-i", inv_s, "--yes", "--poll-interval", "0.05"];
        args.extend_from_slice(extra);
        tests::rolecall_in(&dir, &proxy.url(), &args)
    };
    let published = || -> std::collections::BTreeMap<String, String> {
        let out: serde_json::Value = serde_json::from_str(&aws(&[
            "ssm",
            "get-parameters-by-path",
            "--path",
            prefix,
            "--recursive",
        ]))
        .unwrap();
        out["Parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["Name"].as_str().unwrap().to_owned(),
                    p["Value"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };

    // 1. First publish, with three PutParameters throttled on the way.
    proxy.throttle("PutParameter", 3);
    let first = run("apply", &[]);
    first.expect_code(0);
    assert!(
        first
            .stderr
            .contains("published the registry to SSM /rolecall/platform: 5 created, 0 updated, 0 deleted, 0 unchanged"),
        "{}",
        first.stderr
    );
    assert!(
        first
            .stderr
            .contains(&format!("warning: SSM parameter {squatted} was not made by rolecall")),
        "{}",
        first.stderr
    );
    assert_eq!(proxy.throttled(), 3);
    let mut want: std::collections::BTreeMap<String, String> = [&a1, &a2, &a3]
        .iter()
        .flat_map(|a| {
            [("admin", "Admin"), ("audit", "Audit")].map(|(role, name)| {
                (
                    format!("{prefix}/{role}/{a}/us-east-1/role-arn"),
                    format!("arn:aws:iam::{a}:role/{name}"),
                )
            })
        })
        .collect();
    want.insert(squatted.clone(), "hand-made too".to_owned());
    want.insert(format!("{prefix}/notes"), "hand-made".to_owned());
    assert_eq!(published(), want);
    let tags: serde_json::Value = serde_json::from_str(&aws(&[
        "ssm",
        "list-tags-for-resource",
        "--resource-type",
        "Parameter",
        "--resource-id",
        &format!("{prefix}/admin/{a1}/us-east-1/role-arn"),
    ]))
    .unwrap();
    let tags: Vec<String> = tags["TagList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}={}", t["Key"].as_str().unwrap(), t["Value"].as_str().unwrap()))
        .collect();
    assert_eq!(tags, ["rolecall:managed-by=rolecall", "rolecall:inventory=platform"]);

    // verify: every registered role assumed as its profile would, one
    // AssumeRole (and one GetCallerIdentity with its credentials) each.
    proxy.take_calls();
    let verify = tests::rolecall_in(
        &dir,
        &proxy.url(),
        &["verify", "-i", inv_s, "--json", "--detailed-exitcode"],
    );
    verify.expect_code(0);
    let report = crate::valid(serde_json::from_str(&verify.stdout).unwrap(), "verify.v1.schema.json");
    assert_eq!(report["counts"]["ASSUMABLE"], 6, "{report:#}");
    let calls = proxy.take_calls();
    assert_eq!(
        (calls.get("sts:AssumeRole"), calls.get("sts:GetCallerIdentity")),
        (Some(&6), Some(&6)),
        "{calls:?}"
    );
    for secret in proxy.secrets() {
        assert!(
            !verify.stdout.contains(&secret) && !verify.stderr.contains(&secret),
            "a credential was printed"
        );
    }

    // 2. Unchanged: the prefix is read, nothing is written.
    proxy.take_calls();
    run("apply", &[]).expect_code(0);
    let calls = proxy.take_calls();
    assert_eq!(
        (calls.get("ssm:PutParameter"), calls.get("ssm:DeleteParameters")),
        (None, None),
        "{calls:?}"
    );
    assert!(calls.contains_key("ssm:GetParametersByPath"), "{calls:?}");

    // 3. destroy --accounts app-2: exactly its two parameters go.
    let destroy = run("destroy", &["--accounts", &a2]);
    destroy.expect_code(0);
    assert!(
        destroy.stderr.contains("0 created, 0 updated, 2 deleted, 3 unchanged"),
        "{}",
        destroy.stderr
    );
    want.retain(|name, _| !name.contains(&format!("/{a2}/")));
    assert_eq!(published(), want);
    assert_eq!(
        aws(&[
            "ssm",
            "get-parameter",
            "--name",
            "/elsewhere/x",
            "--query",
            "Parameter.Value",
            "--output",
            "text"
        ])
        .trim(),
        "not ours"
    );

    // app-2 is still a target, with no ARN in the registry now: MISSING.
    let verify = tests::rolecall_in(&dir, &proxy.url(), &["verify", "-i", inv_s, "--detailed-exitcode"]);
    verify.expect_code(2);
    assert!(
        verify
            .stdout
            .contains("Verify: 4 assumable, 0 denied, 0 wrong account, 2 missing, 0 errors (6 checked)"),
        "{}",
        verify.stdout
    );
    assert_eq!(verify.stdout.matches("MISSING").count(), 2, "{}", verify.stdout);
}
