//! `just demo`: starts a local moto server, seeds a small organization,
//! and runs rolecall's whole flow on inventory/demo.yaml (with `--stacksets`:
//! inventory/demo-stacksets.yaml, through a stack set), printing each
//! command and its output: validate, accounts, plan, apply, apply again
//! (nothing to do), the ARN registry and the profiles file, and one profile
//! proven with the AWS CLI. Files go to target/demo/. moto is stopped on
//! every exit path (it is a child killed on drop, and Ctrl-C reaches it too).

use std::process::{ExitCode, Stdio};

use tests::{Moto, base_command, binary, demo_org, seed_org, workspace_root};

fn main() -> ExitCode {
    let print_ids = std::env::args().any(|a| a == "--print-ids");
    // `just demo-stacksets`: the same flow through a self-managed stack set.
    let stacksets = std::env::args().any(|a| a == "--stacksets");
    // `just demo-drift`: then tamper out of band and run `rolecall drift`.
    let drift = std::env::args().any(|a| a == "--drift");
    let inventory = if stacksets {
        "inventory/demo-stacksets.yaml"
    } else {
        "inventory/demo.yaml"
    };
    eprintln!("demo: starting moto (a local AWS emulator) ...");
    let moto = match Moto::try_start() {
        Ok(moto) => moto,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = tests::runtime();
    let org = rt.block_on(async {
        let config = moto.sdk_config().await;
        seed_org(&config, &[], &demo_org()).await
    });
    if print_ids {
        for (path, id) in &org.ous {
            println!("{id}  {path}");
        }
        for a in &org.accounts {
            println!("{}  {}  {}", a.id, a.name, a.path);
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "Seeded organization on {} (management account {}):",
        moto.url(),
        tests::MANAGEMENT_ACCOUNT
    );
    for (path, id) in &org.ous {
        let accounts: Vec<String> = org
            .under(path, false)
            .iter()
            .map(|a| format!("{} {}", a.name, a.id))
            .collect();
        println!("  {path:<28} {id:<18} {}", accounts.join(", "));
    }

    // The inventory names OU ids; they are repeatable because moto is
    // seeded, but a different moto version could change them.
    let text = std::fs::read_to_string(workspace_root().join(inventory)).expect("read the demo inventory");
    let missing: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| (w.starts_with("ou-") || w.starts_with("r-")) && w.len() > 5)
        .filter(|w| !org.ous.values().any(|id| id == w))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "demo: {inventory} names {missing:?}, which this moto did not create (another moto version?).\n  \
             run `cargo run -p tests --bin rolecall-demo -- --print-ids` and update the ids in {inventory}"
        );
        return ExitCode::FAILURE;
    }

    let out = workspace_root().join(if stacksets {
        "target/demo-stacksets"
    } else {
        "target/demo"
    });
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("create target/demo");
    let registry = out.join("rolecall-registry.json");
    let profiles = out.join("profiles.ini");
    let (registry_arg, profiles_arg) = (display(&registry), display(&profiles));
    let apply: Vec<&str> = vec![
        "apply",
        "-i",
        inventory,
        "--yes",
        "--poll-interval",
        "0.2",
        "--registry",
        &registry_arg,
        "--profiles",
        &profiles_arg,
    ];
    let steps: Vec<(&str, Vec<&str>, &[i32])> = vec![
        (
            "check the inventory (no AWS calls)",
            vec!["validate", "-i", inventory],
            &[0],
        ),
        (
            "resolve the targets: listed accounts plus Organizations discovery",
            vec!["accounts", "-i", inventory],
            &[0],
        ),
        (
            "plan: observe every account/region and decide (writes nothing)",
            vec!["plan", "-i", inventory, "--detailed-exitcode"],
            &[0, 2],
        ),
        (
            if stacksets {
                "apply: create the stack set and its instances, read every role ARN through the bootstrap role, write the registry and the profiles"
            } else {
                "apply: create the role stack everywhere, write the ARN registry and the profiles"
            },
            apply.clone(),
            &[0],
        ),
        (
            if stacksets {
                "apply again: nothing changed, so no stack-set operation at all, every instance `unchanged`"
            } else {
                "apply again: nothing changed, so only reads and every stack `unchanged`"
            },
            apply,
            &[0],
        ),
    ];
    for (what, args, ok) in &steps {
        println!("\n# {what}\n$ rolecall {}", args.join(" "));
        let status = base_command(binary(), &moto.url())
            .args(args)
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .expect("run rolecall");
        let code = status.code().unwrap_or(-1);
        if !ok.contains(&code) {
            eprintln!("demo: `rolecall {}` exited {code}", args.join(" "));
            return ExitCode::FAILURE;
        }
        println!("(exit code {code})");
    }

    println!("\n# the ARN registry other tools read: {}", display(&registry));
    print!("{}", std::fs::read_to_string(&registry).expect("read the registry"));
    println!("\n# the AWS CLI profiles file: {}", display(&profiles));
    print!(
        "{}",
        std::fs::read_to_string(&profiles).expect("read the profiles file")
    );

    // The generated profile works with the real AWS CLI: it assumes the
    // new role and lands in the target account.
    let web = org
        .accounts
        .iter()
        .find(|a| a.name == "web-prod")
        .expect("web-prod is seeded");
    let credentials = out.join("credentials");
    tests::write_default_credentials(&credentials);
    println!(
        "\n# prove one profile with the AWS CLI\n$ AWS_CONFIG_FILE={} aws sts get-caller-identity --profile demo-web-prod",
        display(&profiles)
    );
    // Its credential cache lives under HOME; keep it out of the user's.
    let args = [
        "sts",
        "get-caller-identity",
        "--profile",
        "demo-web-prod",
        "--output",
        "json",
    ];
    let result = tests::aws_cli(&moto.url(), &profiles, &credentials, &out, &args);
    let identity = match result {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            eprintln!("demo: the AWS CLI failed: {}", String::from_utf8_lossy(&o.stderr));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!(
                "demo: cannot run the AWS CLI ({e}); install it with `just setup` (or: python3 -m pip install awscli)"
            );
            return ExitCode::FAILURE;
        }
    };
    print!("{identity}");
    if !identity.contains(&format!("\"Account\": \"{}\"", web.id)) {
        eprintln!("demo: expected the profile to land in account {} (web-prod)", web.id);
        return ExitCode::FAILURE;
    }
    println!(
        "(the profile assumed the rolecall role in web-prod, account {})",
        web.id
    );
    if drift && !drift_demo(&moto, &rt, &org, inventory, &registry_arg) {
        return ExitCode::FAILURE;
    }
    drop(moto);
    println!("\ndemo: done; moto stopped. Files are in {}", display(&out));
    ExitCode::SUCCESS
}

/// Tampers with four things out of band, then shows that `rolecall drift`
/// finds exactly those, and nothing else.
fn drift_demo(
    moto: &Moto,
    rt: &tokio::runtime::Runtime,
    org: &tests::SeededOrg,
    inventory: &str,
    registry: &str,
) -> bool {
    let id = |name: &str| org.account(name).id.clone();
    let role = "PlatformAdmin-us-east-1";
    println!("\n# drift: first, everything is in sync");
    let ids: Vec<String> = org.accounts.iter().map(|a| a.id.clone()).collect();
    // moto answers GetRolePolicy for CloudFormation-made inline policies
    // with a Python repr, not JSON as AWS does: normalise them once.
    rt.block_on(tests::fix_moto_inline_policies(moto, &ids, role));
    rt.block_on(tests::fix_moto_inline_policies(moto, &ids, "PlatformAdmin-eu-west-1"));
    let args = ["drift", "-i", inventory, "--registry", registry, "--detailed-exitcode"];
    if !demo_step(moto, &args, &[0]) {
        return false;
    }
    println!(
        "\n# now, out of band: web-prod's role trusts another account, api-prod's role gets an inline policy,\n# data-prod's stack is deleted (us-east-1), and a new account appears in the NonProd OU"
    );
    let new_account = rt.block_on(async {
        let iam_in = |account: String| async move { aws_sdk_iam::Client::new(&moto.account_config(&account).await) };
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"sts:AssumeRole"}},{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::666666666666:root"}},"Action":"sts:AssumeRole"}}]}}"#,
            tests::MANAGEMENT_ACCOUNT
        );
        iam_in(id("web-prod")).await.update_assume_role_policy().role_name(role).policy_document(trust).send().await.expect("tamper trust");
        iam_in(id("api-prod"))
            .await
            .put_role_policy()
            .role_name(role)
            .policy_name("added-by-hand")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#)
            .send()
            .await
            .expect("put policy");
        aws_sdk_cloudformation::Client::new(&moto.account_config(&id("data-prod")).await)
            .delete_stack()
            .stack_name("rolecall-platform-admin")
            .send()
            .await
            .expect("delete stack");
        let o = aws_sdk_organizations::Client::new(&moto.sdk_config().await);
        let created = o.create_account().account_name("new-team").email("new-team@example.com").send().await.expect("create account");
        let new_id = created.create_account_status().and_then(|s| s.account_id()).expect("account id").to_owned();
        o.move_account()
            .account_id(&new_id)
            .source_parent_id(org.ou("Root"))
            .destination_parent_id(org.ou("Root/Workloads/NonProd"))
            .send()
            .await
            .expect("move account");
        new_id
    });
    println!("\n# drift finds exactly those (exit code 2: findings)");
    if !demo_step(moto, &args, &[2]) {
        return false;
    }
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let run = tests::rolecall(&moto.url(), &json_args);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("drift --json");
    let mut found: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] != "IN_SYNC")
        .map(|f| {
            format!(
                "{} {} {}",
                f["account_name"].as_str().unwrap_or(""),
                f["region"].as_str().unwrap_or("-"),
                f["kind"].as_str().unwrap_or("")
            )
        })
        .collect();
    found.sort();
    let mut want = vec![
        "web-prod us-east-1 DRIFTED".to_owned(),
        "api-prod us-east-1 DRIFTED".to_owned(),
        "data-prod us-east-1 MISSING".to_owned(),
        "new-team us-east-1 MISSING".to_owned(),
        "new-team eu-west-1 MISSING".to_owned(),
    ];
    want.sort();
    if found != want {
        eprintln!("demo: drift found {found:?}, expected exactly {want:?} (new account {new_account})");
        return false;
    }
    println!("\n# the same as Markdown, for a CI job summary or a ticket");
    let mut md = args.to_vec();
    md.push("--markdown");
    demo_step(moto, &md, &[2])
}

fn demo_step(moto: &Moto, args: &[&str], ok: &[i32]) -> bool {
    println!("$ rolecall {}", args.join(" "));
    let status = base_command(binary(), &moto.url())
        .args(args)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .expect("run rolecall");
    let code = status.code().unwrap_or(-1);
    println!("(exit code {code})");
    if !ok.contains(&code) {
        eprintln!("demo: `rolecall {}` exited {code}", args.join(" "));
        return false;
    }
    true
}

fn display(path: &std::path::Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}
