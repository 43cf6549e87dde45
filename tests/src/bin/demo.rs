//! `just demo`: starts a local moto server, seeds a small organization,
//! and runs rolecall's whole flow on inventory/demo.yaml, printing each
//! command and its output. moto is stopped on every exit path.

use std::process::{ExitCode, Stdio};

use tests::{Moto, base_command, binary, demo_org, seed_org, workspace_root};

const INVENTORY: &str = "inventory/demo.yaml";

fn main() -> ExitCode {
    let print_ids = std::env::args().any(|a| a == "--print-ids");
    eprintln!("demo: starting moto (a local AWS emulator) ...");
    let moto = Moto::start();
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
    let text = std::fs::read_to_string(workspace_root().join(INVENTORY)).expect("read inventory/demo.yaml");
    let missing: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| (w.starts_with("ou-") || w.starts_with("r-")) && w.len() > 5)
        .filter(|w| !org.ous.values().any(|id| id == w))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "demo: {INVENTORY} names {missing:?}, which this moto did not create (another moto version?).\n  \
             run `cargo run -p tests --bin rolecall-demo -- --print-ids` and update the ids in {INVENTORY}"
        );
        return ExitCode::FAILURE;
    }

    let steps: &[(&str, &[&str], &[i32])] = &[
        (
            "check the inventory (no AWS calls)",
            &["validate", "-i", INVENTORY],
            &[0],
        ),
        (
            "resolve the targets: listed accounts plus Organizations discovery",
            &["accounts", "-i", INVENTORY],
            &[0],
        ),
        (
            "plan: observe every account/region and decide (writes nothing)",
            &["plan", "-i", INVENTORY, "--detailed-exitcode"],
            &[0, 2],
        ),
    ];
    for (what, args, ok) in steps {
        println!("\n# {what}\n$ rolecall {}", args.join(" "));
        let status = base_command(binary(), &moto.url())
            .args(*args)
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
    drop(moto);
    println!("\ndemo: done; moto stopped");
    ExitCode::SUCCESS
}
