//! Accounts that leave the inventory are reported as orphaned (never
//! deleted silently), kept in the registry with their ARN, dropped from the
//! profiles; `destroy --orphans` and `destroy` remove rolecall's stacks.

use tests::proxy::Proxy;
use tests::{MANAGEMENT_ACCOUNT, Moto, ou, seed_org};

fn entries(path: &std::path::Path) -> Vec<serde_json::Value> {
    let json = crate::registry(path);
    assert_eq!(json["schema_version"], 4);
    json["entries"].as_array().unwrap().clone()
}

#[test]
fn orphans_are_reported_kept_and_removed_only_by_destroy() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let org = tests::runtime().block_on(async {
        let tree = vec![ou("Apps", &[("app-1", &[]), ("app-2", &[]), ("app-3", &[])], vec![])];
        seed_org(&moto.sdk_config().await, &[], &tree).await
    });
    let gone = org.account("app-2").id.clone();
    let dir = tests::write_inventory("orphans", "").parent().unwrap().to_path_buf();
    let inv = dir.join("inventory.yaml");
    let write = |exclude: &str| {
        std::fs::write(
            &inv,
            format!(
                "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  policy: {{Version: \"2012-10-17\", Statement: []}}\norganization:\n  ous: [{}]\n  exclude: [{exclude}]\n",
                org.ou("Root")
            ),
        )
        .unwrap()
    };
    write("");
    let (registry, config) = (dir.join("registry.json"), dir.join("config"));
    let (inv_s, reg_s, cfg_s) = (
        inv.to_str().unwrap(),
        registry.to_str().unwrap(),
        config.to_str().unwrap(),
    );
    let apply = || {
        tests::rolecall(
            &proxy.url(),
            &[
                "apply",
                "-i",
                inv_s,
                "--yes",
                "--poll-interval",
                "0.05",
                "--registry",
                reg_s,
                "--profiles-into",
                cfg_s,
            ],
        )
    };
    apply().expect_code(0);
    let arn = entries(&registry)
        .iter()
        .find(|e| e["account_id"] == gone.as_str())
        .unwrap()["role_arn"]
        .clone();
    assert!(std::fs::read_to_string(&config).unwrap().contains("[profile app-2]"));

    // app-2 leaves the inventory: plan reports it as orphaned (exit 2).
    write(&format!("\"{gone}\""));
    let plan = tests::rolecall(
        &proxy.url(),
        &["plan", "-i", inv_s, "--registry", reg_s, "--detailed-exitcode"],
    );
    plan.expect_code(2);
    assert!(
        plan.stdout.contains(&gone) && plan.stdout.contains("orphaned"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("1 orphaned"), "{}", plan.stdout);

    // apply keeps it in the registry as orphaned with its ARN, drops its
    // profile, and deletes nothing.
    proxy.take_calls();
    let run = apply();
    run.expect_code(0);
    assert!(run.stdout.contains("1 orphaned"), "{}", run.stdout);
    assert!(!proxy.take_calls().contains_key("cloudformation:DeleteStack"));
    let e = entries(&registry)
        .into_iter()
        .find(|e| e["account_id"] == gone.as_str())
        .unwrap();
    assert_eq!((e["status"].as_str(), &e["role_arn"]), (Some("orphaned"), &arn));
    assert!(!std::fs::read_to_string(&config).unwrap().contains("[profile app-2]"));

    // destroy --orphans: needs confirmation, then removes just that stack.
    let refused = tests::rolecall(
        &proxy.url(),
        &["destroy", "-i", inv_s, "--orphans", "--registry", reg_s],
    );
    refused.expect_code(1);
    let run = tests::rolecall(
        &proxy.url(),
        &[
            "destroy",
            "-i",
            inv_s,
            "--orphans",
            "--yes",
            "--poll-interval",
            "0.05",
            "--registry",
            reg_s,
            "--profiles-into",
            cfg_s,
        ],
    );
    run.expect_code(0);
    assert!(run.stdout.contains("Destroy: 1 deleted"), "{}", run.stdout);
    let calls = proxy.take_calls();
    assert_eq!(calls.get("cloudformation:DeleteStack"), Some(&1), "{calls:?}");
    assert!(entries(&registry).iter().all(|e| e["account_id"] != gone.as_str()));
    let plan = tests::rolecall(
        &proxy.url(),
        &["plan", "-i", inv_s, "--registry", reg_s, "--detailed-exitcode"],
    );
    plan.expect_code(0);

    // destroy: everything rolecall made; the registry and the block empty.
    let run = tests::rolecall(
        &proxy.url(),
        &[
            "destroy",
            "-i",
            inv_s,
            "--yes",
            "--poll-interval",
            "0.05",
            "--registry",
            reg_s,
            "--profiles-into",
            cfg_s,
        ],
    );
    run.expect_code(0);
    assert!(run.stdout.contains("Destroy: 2 deleted"), "{}", run.stdout);
    assert!(entries(&registry).is_empty());
    assert!(!std::fs::read_to_string(&config).unwrap().contains("[profile "));
    let plan = tests::rolecall(&proxy.url(), &["plan", "-i", inv_s, "--registry", reg_s]);
    assert!(plan.stdout.contains("2 to create"), "{}", plan.stdout);
}

/// `apply --prune` on the bootstrap-role path: the orphan's stack goes, in
/// the same run that applies the rest.
#[test]
fn apply_prune_removes_orphans_on_the_bootstrap_path() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let org = tests::runtime().block_on(async {
        let tree = vec![ou("Apps", &[("app-1", &[]), ("app-2", &[])], vec![])];
        seed_org(&moto.sdk_config().await, &[], &tree).await
    });
    let gone = org.account("app-2").id.clone();
    let dir = tests::write_inventory("prune", "").parent().unwrap().to_path_buf();
    let inv = dir.join("inventory.yaml");
    let write = |exclude: &str| {
        std::fs::write(
            &inv,
            format!(
                "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  policy: {{Version: \"2012-10-17\", Statement: []}}\norganization:\n  ous: [{}]\n  exclude: [{exclude}]\n",
                org.ou("Root")
            ),
        )
        .unwrap()
    };
    write("");
    let registry = dir.join("registry.json");
    let (inv_s, reg_s) = (inv.to_str().unwrap(), registry.to_str().unwrap());
    let apply = |extra: &[&str]| {
        let mut args = vec![
            "apply",
            "-i",
            inv_s,
            "--yes",
            "--poll-interval",
            "0.05",
            "--registry",
            reg_s,
        ];
        args.extend_from_slice(extra);
        tests::rolecall(&proxy.url(), &args)
    };
    apply(&[]).expect_code(0);
    write(&format!("\"{gone}\""));
    proxy.take_calls();
    let run = apply(&["--prune"]);
    run.expect_code(0);
    assert_eq!(proxy.take_calls().get("cloudformation:DeleteStack"), Some(&1));
    let left = entries(&registry);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert!(left.iter().all(|e| e["account_id"] != gone.as_str()));
    tests::rolecall(
        &proxy.url(),
        &["plan", "-i", inv_s, "--registry", reg_s, "--detailed-exitcode"],
    )
    .expect_code(0);
}
