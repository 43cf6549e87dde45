//! Several inventories of one organization side by side, and the upgrade
//! from a deployment rolecall 0.2 made, against moto: each inventory keeps
//! its own block in one `~/.aws/config` and its own registry at a default
//! path named after it; a registry of another inventory is refused before
//! any call; a read-only role with only a managed policy has no inline
//! policy; the old unnamed block and the old default registry are adopted,
//! and the old deployment plans all no-op.

use std::path::{Path, PathBuf};

use aws_sdk_iam as iam;
use serde_json::Value;
use tests::proxy::{Proxy, is_read};
use tests::{MANAGEMENT_ACCOUNT, rolecall_in};

const HAND_WRITTEN: &str = "# mine\n[default]\nregion = eu-central-1\n\n[profile personal]\nregion = us-west-2\n";

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rolecall-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn writes(calls: &std::collections::BTreeMap<String, usize>) -> Vec<String> {
    calls.keys().filter(|op| !is_read(op)).cloned().collect()
}

fn inline_policies(config: &aws_config::SdkConfig, role: &str) -> Vec<String> {
    tests::runtime().block_on(async {
        iam::Client::new(config)
            .list_role_policies()
            .role_name(role)
            .send()
            .await
            .unwrap()
            .policy_names()
            .to_vec()
    })
}

#[test]
fn two_inventories_keep_their_blocks_and_registries_apart() {
    let (moto, org) = crate::org_fixture();
    let proxy = Proxy::start(moto.port);
    let dir = tempdir("inventories");
    let root = org.ou("Root");
    let head = format!("version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\n");
    let tail = format!("deploy:\n  regions: [us-east-1]\n  concurrency: 8\norganization:\n  ous: [{root}]\n");
    std::fs::write(
        dir.join("admin.yaml"),
        format!("{head}role:\n  name: RolecallAdmin\n  stack_name: rolecall-admin\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"*\", Resource: \"*\"}}]}}\nprofiles:\n  name: \"{{account_name}}-admin\"\n{tail}"),
    )
    .unwrap();
    let readonly = |profile: &str| {
        format!(
            "{head}name: readonly\nrole:\n  name: RolecallReadOnly\n  stack_name: rolecall-readonly\n  managed_policy_arns: [ReadOnlyAccess]\nprofiles:\n  name: \"{profile}\"\n{tail}"
        )
    };
    std::fs::write(dir.join("ro.yaml"), readonly("{account_name}-ro")).unwrap();
    let config = dir.join("config");
    std::fs::write(&config, HAND_WRITTEN).unwrap();
    let config_s = config.to_str().unwrap();
    let apply = |inventory: &str, extra: &[&str]| {
        let mut args = vec![
            "apply",
            "-i",
            inventory,
            "--yes",
            "--poll-interval",
            "0.05",
            "--profiles-into",
            config_s,
        ];
        args.extend_from_slice(extra);
        rolecall_in(&dir, &proxy.url(), &args)
    };

    apply("admin.yaml", &[]).expect_code(0);
    apply("ro.yaml", &[]).expect_code(0);

    // One config, two blocks, each with its inventory's profiles.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with(HAND_WRITTEN), "{text}");
    let block = |name: &str| {
        let begin = format!("# BEGIN rolecall managed profiles: {name} — do not edit\n");
        let end = format!("# END rolecall managed profiles: {name}\n");
        let start = text
            .find(&begin)
            .unwrap_or_else(|| panic!("no block of {name}:\n{text}"));
        let stop = text.find(&end).unwrap();
        text[start..stop].to_owned()
    };
    let (admin_block, ro_block) = (block("admin"), block("readonly"));
    assert_eq!(admin_block.matches("[profile ").count(), 21, "{admin_block}");
    assert_eq!(ro_block.matches("[profile ").count(), 21, "{ro_block}");
    assert!(admin_block.contains(":role/RolecallAdmin\n") && !admin_block.contains("-ro]"));
    assert!(ro_block.contains(":role/RolecallReadOnly\n") && !ro_block.contains("-admin]"));
    assert_eq!(text.matches("# BEGIN rolecall").count(), 2);

    // Two registries, each at its inventory's default path, each naming it.
    for (name, role) in [("admin", "RolecallAdmin"), ("readonly", "RolecallReadOnly")] {
        let r = crate::registry(&dir.join(format!("rolecall-registry-{name}.json")));
        assert_eq!(r["schema_version"], 4);
        assert_eq!(r["inventory"], name);
        let entries = r["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 21);
        assert!(
            entries.iter().all(|e| e["role"] == "default" && e["role_name"] == role),
            "{r:#}"
        );
    }
    assert!(!dir.join("rolecall-registry.json").exists());

    // The read-only role has only its managed policy: no inline policy
    // (moto does not attach managed policies; the template has none inline).
    let web = org.account("web-prod");
    let web_config = tests::runtime().block_on(moto.account_config(&web.id));
    assert_eq!(inline_policies(&web_config, "RolecallReadOnly"), Vec::<String>::new());
    assert_eq!(inline_policies(&web_config, "RolecallAdmin"), ["rolecall-policy"]);

    // Both plan no-op on their own.
    for inventory in ["admin.yaml", "ro.yaml"] {
        rolecall_in(&dir, &proxy.url(), &["plan", "-i", inventory, "--detailed-exitcode"]).expect_code(0);
    }
    proxy.take_calls();

    // The read-only inventory with the admin inventory's registry: refused
    // before any AWS call, nothing written.
    let before = (
        std::fs::read_to_string(&config).unwrap(),
        std::fs::read(dir.join("rolecall-registry-admin.json")).unwrap(),
    );
    let wrong = apply(
        "ro.yaml",
        &["--registry", "rolecall-registry-admin.json", "--accounts", &web.id],
    );
    wrong.expect_code(1);
    assert!(
        wrong
            .stderr
            .contains("is the registry of inventory admin, not of readonly")
            && wrong.stderr.contains("--registry"),
        "{}",
        wrong.stderr
    );
    assert!(proxy.take_calls().is_empty(), "no AWS call");
    assert_eq!(
        (
            std::fs::read_to_string(&config).unwrap(),
            std::fs::read(dir.join("rolecall-registry-admin.json")).unwrap()
        ),
        before
    );

    // A profile name both inventories would generate: refused before any
    // stack is touched, naming both inventories.
    std::fs::write(dir.join("ro.yaml"), readonly("{account_name}-admin")).unwrap();
    let clash = apply("ro.yaml", &[]);
    clash.expect_code(1);
    assert!(
        clash.stderr.contains("inventory readonly generates profiles named")
            && clash.stderr.contains("which inventory admin already has"),
        "{}",
        clash.stderr
    );
    let calls = proxy.take_calls();
    assert!(!calls.keys().any(|op| op.starts_with("cloudformation:")), "{calls:?}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before.0);
}

/// What rolecall 0.2 left: one `role:`, the unnamed block in the config,
/// a version 2 registry at `rolecall-registry.json`. The stacks are made
/// with this release: the default role's template is byte for byte the
/// previous release's (its fingerprint is pinned by the planner's
/// `the_default_roles_template_is_unchanged`), so they are what 0.2 made.
#[test]
fn an_earlier_releases_deployment_plans_no_op_and_is_adopted() {
    let (moto, org) = crate::org_fixture();
    let proxy = Proxy::start(moto.port);
    let dir = tempdir("upgrade");
    std::fs::write(
        dir.join("platform.yaml"),
        format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\ndeploy:\n  regions: [us-east-1]\n  concurrency: 8\norganization:\n  ous: [{}]\n",
            org.ou("Root")
        ),
    )
    .unwrap();
    let config = dir.join("config");
    std::fs::write(&config, HAND_WRITTEN).unwrap();
    let args = |verb: &'static str| -> Vec<String> {
        let mut a: Vec<String> = [verb, "-i", "platform.yaml"].map(str::to_owned).to_vec();
        if verb == "apply" {
            a.extend(["--yes", "--poll-interval", "0.05", "--profiles-into"].map(str::to_owned));
            a.push(config.to_str().unwrap().to_owned());
        }
        a
    };
    let run = |verb: &'static str, extra: &[&str]| {
        let mut a = args(verb);
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        rolecall_in(&dir, &proxy.url(), &a)
    };
    run("apply", &[]).expect_code(0);

    // Turn the state into what rolecall 0.2 wrote.
    let v3 = dir.join("rolecall-registry-platform.json");
    let mut registry = json(&v3);
    let entries: Vec<Value> = registry["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut e = e.clone();
            for k in ["role", "role_name", "stack_name"] {
                e.as_object_mut().unwrap().remove(k);
            }
            e
        })
        .collect();
    let v2 = serde_json::json!({
        "schema_version": 2,
        "generated_at": registry["generated_at"],
        "source_account": registry["source_account"],
        "stack_name": "rolecall-target-role",
        "role_name": "RolecallTarget",
        "entries": entries,
    });
    crate::valid(v2.clone(), "registry.v2.schema.json");
    let legacy = dir.join("rolecall-registry.json");
    std::fs::write(&legacy, serde_json::to_string_pretty(&v2).unwrap()).unwrap();
    std::fs::remove_file(&v3).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let old_config = text
        .replace(
            "# BEGIN rolecall managed profiles: platform — do not edit",
            "# BEGIN rolecall managed profiles — do not edit",
        )
        .replace(
            "# END rolecall managed profiles: platform",
            "# END rolecall managed profiles",
        );
    assert_ne!(old_config, text);
    std::fs::write(&config, &old_config).unwrap();
    proxy.take_calls();

    // The new release plans all no-op, reading the old registry.
    let plan = run("plan", &["--detailed-exitcode"]);
    plan.expect_code(0);
    assert!(
        plan.stderr
            .contains("read the previous registry from rolecall-registry.json"),
        "{}",
        plan.stderr
    );
    assert!(plan.stdout.contains("0 to create, 0 to update"), "{}", plan.stdout);
    assert!(writes(&proxy.take_calls()).is_empty());

    // The next apply changes no stack, adopts the old block (one block,
    // now named) and writes the registry at the new path, same ARNs.
    let apply = run("apply", &[]);
    apply.expect_code(0);
    assert!(
        apply.stdout.contains("0 created, 0 updated, 21 unchanged"),
        "{}",
        apply.stdout
    );
    let calls = proxy.take_calls();
    assert!(writes(&calls).is_empty(), "no stack written: {calls:?}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with(HAND_WRITTEN), "{text}");
    assert_eq!(text.matches("# BEGIN rolecall").count(), 1, "{text}");
    assert!(text.contains("# BEGIN rolecall managed profiles: platform — do not edit"));
    assert_eq!(text.matches("[profile ").count(), 21 + 1);
    registry = crate::registry(&v3);
    let arns = |r: &Value| -> Vec<String> {
        r["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["role_arn"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(arns(&registry), arns(&v2));
    assert_eq!(json(&legacy), v2, "the old file is left as it was");
}
