//! What installing rolecall gives a user: a real version, shell
//! completions a shell accepts, a man page.

const NO_AWS: &str = "http://127.0.0.1:9";

#[test]
fn version_names_the_release_and_the_commit() {
    let run = tests::rolecall(NO_AWS, &["--version"]);
    run.expect_code(0);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(tests::workspace_root())
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    assert_eq!(
        run.stdout,
        format!("rolecall {} ({})\n", env!("CARGO_PKG_VERSION"), head.trim())
    );
    assert!(!run.stdout.contains("0.0.0"));
}

#[test]
fn completions_are_scripts_their_shells_accept() {
    let run = tests::rolecall(NO_AWS, &["completions", "bash"]);
    run.expect_code(0);
    for word in ["plan", "apply", "verify", "registry", "--detailed-exitcode"] {
        assert!(run.stdout.contains(word), "bash completion lacks {word}");
    }
    let file = tests::write_inventory("completions", "").with_file_name("rolecall.bash");
    std::fs::write(&file, &run.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let run = tests::rolecall(NO_AWS, &["completions", shell]);
        run.expect_code(0);
        assert!(run.stdout.contains("rolecall"), "{shell}");
    }
}

#[test]
fn the_man_page_is_roff_and_lists_the_commands() {
    let run = tests::rolecall(NO_AWS, &["man"]);
    run.expect_code(0);
    assert!(run.stdout.contains(".TH rolecall 1"), "no title line");
    for command in ["plan", "apply", "drift", "verify", "registry"] {
        assert!(run.stdout.contains(command), "the man page lacks {command}");
    }
}
