//! No secret ever leaves rolecall: every command at the highest verbosity
//! (`ROLECALL_LOG=trace`, `-vv`, and the SDK's own LOG_SENSITIVE_BODIES
//! switch on) against moto, then stdout, stderr, the registry and the
//! profiles are searched for every secret key and session token moto
//! issued (seen by the proxy) and for the caller's own secret key.

use tests::proxy::Proxy;
use tests::{MANAGEMENT_ACCOUNT, Moto, member_org, seed_org};

#[test]
fn no_command_prints_logs_or_writes_a_secret() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port);
    let org =
        tests::runtime().block_on(async { seed_org(&moto.sdk_config().await, &[], &member_org(3, "secrets")).await });
    let dir = std::env::temp_dir().join(format!("rolecall-secrets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let inv = dir.join("inventory.yaml");
    std::fs::write(
        &inv,
        format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}}]}}\norganization:\n  ous: [{}]\n",
            org.ou("Root")
        ),
    )
    .unwrap();
    let (inv, reg, standalone, config) = (
        inv.to_str().unwrap().to_owned(),
        dir.join("registry.json").to_str().unwrap().to_owned(),
        dir.join("profiles.ini").to_str().unwrap().to_owned(),
        dir.join("config").to_str().unwrap().to_owned(),
    );
    let commands: Vec<Vec<&str>> = vec![
        vec!["validate", "-i", &inv],
        vec!["accounts", "-i", &inv, "--json"],
        vec!["plan", "-i", &inv, "--json", "--registry", &reg],
        vec![
            "apply",
            "-i",
            &inv,
            "--yes",
            "--poll-interval",
            "0.05",
            "--registry",
            &reg,
            "--profiles",
            &standalone,
            "--profiles-into",
            &config,
        ],
        vec!["apply", "-i", &inv, "--yes", "--json", "--registry", &reg],
        vec!["plan", "-i", &inv, "--registry", &reg],
        vec!["drift", "-i", &inv, "--json", "--registry", &reg],
        vec!["drift", "-i", &inv, "--markdown", "--cfn-drift", "--registry", &reg],
        vec!["profiles", "--registry", &reg, "--out", &standalone],
        vec!["template", "-i", &inv],
        vec!["bootstrap-template", "-i", &inv],
        vec![
            "destroy",
            "-i",
            &inv,
            "--yes",
            "--registry",
            &reg,
            "--profiles-into",
            &config,
        ],
    ];
    let mut everything = String::new();
    for args in &commands {
        let mut cmd = tests::base_command(tests::binary(), &proxy.url());
        let out = cmd
            .arg("-vv")
            .args(args)
            .env("ROLECALL_LOG", "trace")
            .env("LOG_SENSITIVE_BODIES", "true")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        if args[0] == "apply" {
            assert!(
                stderr.contains("DEBUG"),
                "{args:?} logged at the highest level: {stderr}"
            );
            // The SDK's trace events (canonical requests, bodies) stay capped.
            for capped in [
                "calculated signing parameters",
                "signing request",
                "read HTTP response body",
            ] {
                assert!(!stderr.contains(capped), "{args:?}: SDK trace output `{capped}`");
            }
        }
        everything.push_str(&String::from_utf8_lossy(&out.stdout));
        everything.push_str(&stderr);
        for file in [&reg, &standalone, &config] {
            everything.push_str(&std::fs::read_to_string(file).unwrap_or_default());
        }
    }
    // Without -v or ROLECALL_LOG, warnings only: the caps never raise a level.
    let quiet = tests::rolecall(&proxy.url(), &["plan", "-i", &inv, "--registry", &reg]);
    quiet.expect_code(0);
    assert!(
        !quiet.stderr.contains("DEBUG") && !quiet.stderr.contains(" INFO "),
        "{}",
        quiet.stderr
    );
    let mut secrets = proxy.secrets();
    assert!(
        secrets.len() >= 6,
        "moto issued secrets through the proxy: {}",
        secrets.len()
    );
    secrets.push(tests::SECRET_KEY.to_owned());
    assert!(
        everything.len() > 100_000,
        "the commands said a lot: {} bytes",
        everything.len()
    );
    for secret in &secrets {
        assert!(secret.len() >= 16, "a real secret: {secret:?}");
        // Any 16-character piece of it, so that a truncated print is caught too.
        let piece = &secret[..16];
        assert!(!everything.contains(piece), "a secret leaked: {piece}…");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
