//! Interruptions and crashes against moto, through the counting proxy:
//! Ctrl-C / SIGTERM once (stop starting work, write what is known, exit
//! 130), twice (exit at once), and kill -9 or an abort at each point of a
//! run (observing, creating, updating, writing the registry, writing the
//! profiles). After each, the next run converges, and the registry and the
//! user's config are the old file or the new one, never anything between.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::proxy::Proxy;
use tests::{MANAGEMENT_ACCOUNT, SeededOrg};

use crate::{org_fixture, registry};

const STACKS: usize = 42; // 21 accounts × 2 regions
const HAND_WRITTEN: &str = "[default]\nregion = eu-central-1\n\n[profile mine]\nsource_profile = default\n";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rolecall-crash-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Setup {
    inv: PathBuf,
    reg: PathBuf,
    config: PathBuf,
}

impl Setup {
    fn new(org: &SeededOrg, name: &str) -> Setup {
        let dir = scratch(name);
        let setup = Setup {
            inv: dir.join("inventory.yaml"),
            reg: dir.join("registry.json"),
            config: dir.join("config"),
        };
        setup.policy(org, "s3:*");
        std::fs::write(&setup.config, HAND_WRITTEN).unwrap();
        setup
    }

    fn policy(&self, org: &SeededOrg, action: &str) {
        let text = format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n  name: \"Rolecall-{{region}}\"\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"{action}\", Resource: \"*\"}}]}}\ndeploy:\n  regions: [us-east-1, eu-west-1]\nprofiles:\n  name: \"{{account_name}}-{{region}}\"\norganization:\n  ous: [{}]\n",
            org.ou("Root")
        );
        std::fs::write(&self.inv, text).unwrap();
    }

    fn args(&self, concurrency: &str) -> Vec<String> {
        [
            "apply",
            "-i",
            self.inv.to_str().unwrap(),
            "--yes",
            "--concurrency",
            concurrency,
            "--poll-interval",
            "0.05",
            "--registry",
            self.reg.to_str().unwrap(),
            "--profiles-into",
            self.config.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn spawn(&self, proxy: &Proxy, concurrency: &str, env: &[(&str, &str)]) -> Child {
        let mut cmd = tests::base_command(tests::binary(), &proxy.url());
        cmd.args(self.args(concurrency))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    }

    fn run(&self, proxy: &Proxy) -> tests::Run {
        let args = self.args("8");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tests::rolecall(&proxy.url(), &args)
    }

    /// Runs again and checks that everything converged: every stack in the
    /// registry, with an ARN, and a profile for each.
    fn converges(&self, proxy: &Proxy) -> BTreeMap<String, usize> {
        proxy.delay(Duration::ZERO);
        let run = self.run(proxy);
        run.expect_code(0);
        let reg = registry(&self.reg);
        let entries = reg["entries"].as_array().unwrap();
        assert_eq!(entries.len(), STACKS);
        assert!(entries.iter().all(|e| e["role_arn"].is_string()), "{reg:#}");
        let config = std::fs::read_to_string(&self.config).unwrap();
        assert!(config.starts_with(HAND_WRITTEN), "the user's part stays:\n{config}");
        assert_eq!(config.matches("role_arn = ").count(), STACKS, "{config}");
        no_temp_files(self.reg.parent().unwrap());
        statuses(&reg)
    }
}

fn statuses(registry: &Value) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in registry["entries"].as_array().unwrap() {
        *counts.entry(e["status"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    counts
}

fn no_temp_files(dir: &Path) {
    let temps: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
}

/// Waits until the proxy saw `count` calls of `operation` from `child`.
#[track_caller]
fn wait_for(child: &mut Child, proxy: &Proxy, operation: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while proxy.calls_of(operation) < count {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("rolecall ended ({status}) before {count} × {operation}:\n{stderr}");
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!(
                "never saw {count} × {operation}; calls: {:?}\n{stderr}",
                proxy.take_calls()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn one_interrupt_stops_new_work_writes_what_is_known_and_exits_130() {
    let (moto, org) = org_fixture();
    let proxy = Proxy::start(moto.port);
    let setup = Setup::new(&org, "sigint");
    proxy.delay(Duration::from_millis(40));
    let mut child = setup.spawn(&proxy, "2", &[]);
    // The plan's reads are all done before the first create; two reads
    // after a create are two stacks done (moto creates at once), and the
    // calls in flight finish after the interrupt. Without waiting for
    // them, the stacks may all still be waiting for their first read
    // (which an interrupt ends) when the signal comes.
    wait_for(&mut child, &proxy, "CreateStack", 1);
    let planned = proxy.calls_of("DescribeStacks");
    wait_for(&mut child, &proxy, "CreateStack", 4);
    wait_for(&mut child, &proxy, "DescribeStacks", planned + 2);
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: no new account"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let creates = proxy.calls_of("CreateStack");
    assert!(creates < STACKS, "stopped early ({creates} creates)");

    // The registry has every target: what was done, and why the rest was not.
    let reg = registry(&setup.reg);
    let counts = statuses(&reg);
    assert_eq!(counts.values().sum::<usize>(), STACKS, "{counts:?}");
    assert!(counts.get("created").copied().unwrap_or(0) >= 2, "{counts:?}");
    assert!(counts.get("not-attempted").copied().unwrap_or(0) >= 10, "{counts:?}");
    for e in reg["entries"].as_array().unwrap() {
        if e["status"] == "failed" || e["status"] == "not-attempted" {
            assert!(e["error"].as_str().unwrap().contains("interrupted"), "{e:#}");
        }
    }
    // The profiles of what was created are written.
    let config = std::fs::read_to_string(&setup.config).unwrap();
    assert!(config.starts_with(HAND_WRITTEN));
    assert_eq!(
        config.matches("role_arn = ").count(),
        counts.get("created").copied().unwrap_or(0)
    );
    // The summary was printed.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // No call after the process ended; the next run converges.
    let counts = setup.converges(&proxy);
    assert_eq!(counts.values().sum::<usize>(), STACKS);
}

#[test]
fn a_second_interrupt_exits_at_once() {
    let (moto, org) = org_fixture();
    let proxy = Proxy::start(moto.port);
    let setup = Setup::new(&org, "twice");
    let mut child = setup.spawn(&proxy, "4", &[]);
    wait_for(&mut child, &proxy, "AssumeRole", 1);
    // From now on every call takes 3 s: the first interrupt would wait for
    // the calls in flight.
    proxy.delay(Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    let second = Instant::now();
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(second.elapsed() < Duration::from_millis(1500), "{:?}", second.elapsed());
    assert!(stderr.contains("interrupted again: exiting now"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&setup.config).unwrap(), HAND_WRITTEN);
    setup.converges(&proxy);
}

#[test]
fn kill_9_at_every_point_then_the_next_run_converges() {
    let (moto, org) = org_fixture();
    let proxy = Proxy::start(moto.port);
    let setup = Setup::new(&org, "kill9");
    let kill_when = |operation: &str, count: usize, delay: u64| {
        proxy.delay(Duration::from_millis(delay));
        proxy.take_calls();
        let mut child = setup.spawn(&proxy, "2", &[]);
        wait_for(&mut child, &proxy, operation, count);
        child.kill().unwrap();
        child.wait().unwrap();
    };

    // Mid-create (a first rollout: nothing registered, so CreateStack
    // comes without a read first).
    kill_when("CreateStack", 5, 40);
    assert!(!setup.reg.exists());
    assert_eq!(std::fs::read_to_string(&setup.config).unwrap(), HAND_WRITTEN);
    let counts = setup.converges(&proxy);
    assert_eq!(counts.values().sum::<usize>(), STACKS);

    // While observing: registered stacks are read first; a slow cloud, and
    // the kill comes at the first read, before any write.
    setup.policy(&org, "s3:Get*");
    let registry_before = std::fs::read(&setup.reg).unwrap();
    kill_when("DescribeStacks", 1, 300);
    assert_eq!(
        proxy.calls_of("CreateChangeSet") + proxy.calls_of("ExecuteChangeSet"),
        0
    );
    assert_eq!(std::fs::read(&setup.reg).unwrap(), registry_before);

    // Mid-update: killed after a few change sets ran.
    kill_when("ExecuteChangeSet", 3, 40);
    let counts = setup.converges(&proxy);
    assert_eq!(
        counts.get("updated").copied().unwrap_or(0) + counts.get("unchanged").copied().unwrap_or(0),
        STACKS,
        "{counts:?}"
    );
    assert!(
        counts.get("updated").copied().unwrap_or(0) >= STACKS - 3 - 2,
        "{counts:?}"
    );

    // While writing the registry, then the profiles: the process dies
    // between its temp file and the rename. The old file stays whole.
    setup.policy(&org, "s3:List*");
    for file in ["registry.json", "config"] {
        if file == "config" {
            // The profiles are unchanged by now; without the block, the
            // run must write it.
            std::fs::write(&setup.config, HAND_WRITTEN).unwrap();
        }
        let (old_reg, old_config) = (
            std::fs::read(&setup.reg).unwrap(),
            std::fs::read(&setup.config).unwrap(),
        );
        proxy.delay(Duration::ZERO);
        let child = setup.spawn(&proxy, "8", &[("ROLECALL_FAILPOINT", &format!("write:{file}"))]);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            None,
            "killed by a signal (abort)\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if file == "registry.json" {
            assert_eq!(std::fs::read(&setup.reg).unwrap(), old_reg, "the old registry, whole");
        } else {
            assert_ne!(
                std::fs::read(&setup.reg).unwrap(),
                old_reg,
                "the registry was written first"
            );
        }
        assert_eq!(
            std::fs::read(&setup.config).unwrap(),
            old_config,
            "the old config, whole"
        );
        let temps = std::fs::read_dir(setup.reg.parent().unwrap())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(temps, 1, "the crash left its temp file");
        // The next run is not blocked by it, and removes it.
        setup.converges(&proxy);
    }
}

#[test]
fn two_runs_at_once_do_not_break_each_other() {
    let (moto, org) = org_fixture();
    let proxy = Proxy::start(moto.port);
    let setup = Setup::new(&org, "concurrent");
    setup.converges(&proxy);
    // Both runs update every stack, at once, each with its own registry.
    setup.policy(&org, "s3:Get*");
    proxy.delay(Duration::from_millis(20));
    let mut other = Setup::new(&org, "concurrent-2");
    other.inv = setup.inv.clone();
    let (a, b) = (setup.spawn(&proxy, "4", &[]), other.spawn(&proxy, "4", &[]));
    for (run, out) in [
        ("first", a.wait_with_output().unwrap()),
        ("second", b.wait_with_output().unwrap()),
    ] {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{run} run:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(proxy.calls_of("DeleteStack"), 0);
    // Whichever run did the update, the other saw it done or did it too;
    // nothing is left to do and no change set is left behind.
    let counts = setup.converges(&proxy);
    assert_eq!(counts.get("unchanged").copied(), Some(STACKS), "{counts:?}");
    let leftovers = tests::runtime().block_on(async {
        let mut n = 0;
        for a in &org.accounts {
            let config = moto.account_config(&a.id).await;
            for region in ["us-east-1", "eu-west-1"] {
                let cfn = aws_sdk_cloudformation::Client::from_conf(
                    aws_sdk_cloudformation::config::Builder::from(&config)
                        .region(aws_sdk_cloudformation::config::Region::new(region))
                        .build(),
                );
                let sets = cfn
                    .list_change_sets()
                    .stack_name("rolecall-target-role")
                    .send()
                    .await
                    .unwrap();
                n += sets
                    .summaries()
                    .iter()
                    .filter(|s| s.execution_status().map(|e| e.as_str()) == Some("AVAILABLE"))
                    .count();
            }
        }
        n
    });
    assert_eq!(leftovers, 0, "change sets left to execute");
}

/// Runs PROGRAM ARGS… on a pseudo-terminal (stdin, stdout and stderr), as
/// a person at a terminal would; once the confirmation prompt shows, sends
/// SIGINT (Ctrl-C); kills it 30 s later if it is still there. Prints the
/// exit code, the seconds from the signal to the exit, and then everything
/// the program wrote.
const CTRL_C_AT_THE_PROMPT: &str = r#"
import os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""

def read(until, seconds, on_timeout):
    """Reads the terminal until `until` is seen or it closes; after
    `seconds`, on_timeout() once."""
    global seen
    deadline = time.time() + seconds
    while until not in seen:
        if deadline and time.time() > deadline:
            on_timeout()
            deadline = None
        if not select.select([fd], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        seen += chunk

read(b"Only 'yes' is accepted", 120, lambda: os.kill(pid, signal.SIGKILL))
signalled = time.time()
os.kill(pid, signal.SIGINT)
read(b"never printed", 30, lambda: os.kill(pid, signal.SIGKILL))
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), round(time.time() - signalled, 3))
print(seen.decode("utf-8", "replace"))
"#;

/// Ctrl-C at "Apply these changes?": the prompt is read on a blocking
/// thread, so the one runtime thread handles the signal at once; nothing
/// is changed and the run exits 130 (it used to wait for an Enter).
#[test]
fn ctrl_c_at_the_prompt_cancels_at_once_and_changes_nothing() {
    let (moto, org) = org_fixture();
    let proxy = Proxy::start(moto.port);
    let setup = Setup::new(&org, "prompt");
    let rolecall = tests::binary().to_str().unwrap().to_owned();
    let mut args: Vec<String> = setup.args("4");
    args.retain(|a| a != "--yes");
    let out = tests::base_command(Path::new(&tests::python()), &proxy.url())
        .arg("-c")
        .arg(CTRL_C_AT_THE_PROMPT)
        .arg(&rolecall)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (first, output) = stdout.split_once('\n').unwrap();
    let [code, seconds] = first.split_whitespace().collect::<Vec<_>>()[..] else {
        panic!("{stdout}")
    };
    assert!(output.contains("Apply these changes?"), "{output}");
    assert_eq!(code, "130", "{output}");
    let seconds: f64 = seconds.parse().unwrap();
    assert!(
        seconds < 5.0,
        "the run took {seconds} s to end after Ctrl-C at the prompt"
    );
    assert!(output.contains("apply cancelled; nothing was changed"), "{output}");
    let calls = proxy.take_calls();
    assert!(
        calls.keys().all(|op| tests::proxy::is_read(op)),
        "only reads before the prompt: {calls:?}"
    );
    assert_eq!(std::fs::read_to_string(&setup.config).unwrap(), HAND_WRITTEN);
    assert!(!setup.reg.exists(), "no registry written for a cancelled apply");
}
