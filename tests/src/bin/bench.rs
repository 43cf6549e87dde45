//! `just bench`: rolecall side by side with what users would do instead,
//! against one moto server behind our counting proxy, release build.
//!
//! Each round starts every contender from an empty organization (moto is
//! reset and seeded again, so no run pays for another's leftovers), and
//! the rounds alternate the contenders; the table shows medians:
//! 1. the seed recipe scripted with the AWS CLI (`bench/recipe.sh`) on the
//!    first `--recipe-accounts` accounts, and rolecall on the same ones;
//! 2. boto3 with a thread pool (`bench/boto3_rollout.py`) at each pool size
//!    of `--pools`, on all accounts (the best pool size is reported);
//! 3. `rolecall apply` through the bootstrap role and through StackSets,
//!    their unchanged re-runs, `plan` and `drift`, on all accounts.
//!
//! For each: wall time, the client's own CPU time (user+sys, from wait4,
//! children included: the AWS CLI processes of the recipe count) per
//! account, its peak RSS, moto's CPU time during the run (no client can be
//! faster than moto serving its calls), and API calls per account by
//! action. The table also goes into BENCHMARKS.md between its markers.

// wait4 and sysconf through libc: std has no resource usage of a child.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tests::proxy::Proxy;
use tests::{MANAGEMENT_ACCOUNT, Moto, SeededOrg, member_org, seed_org};

struct Options {
    accounts: usize,
    recipe_accounts: usize,
    /// A second, mid-size rolecall apply (after the recipe-size one).
    mid_accounts: usize,
    runs: usize,
    pools: Vec<usize>,
    concurrency: usize,
    /// Only the slow-stack run: stacks take this many seconds (0: off).
    slow_stacks: u64,
    /// With slow stacks: added to every call, milliseconds.
    latency_ms: u64,
    /// Only the memory of this many accounts in flight (0: off).
    sessions: usize,
    /// Only rolecall's applies from empty (mid size and all accounts):
    /// the client-CPU rows, in minutes instead of the whole table's hour.
    apply_only: bool,
    /// With --apply-only: another rolecall binary (an earlier build),
    /// measured in the same rounds, alternating with this one.
    baseline: Option<PathBuf>,
}

impl Options {
    /// The mid-size run's accounts: those after the recipe's, at most all.
    fn mid(&self) -> usize {
        self.mid_accounts
            .min(self.accounts.saturating_sub(self.recipe_accounts))
    }
}

fn options() -> Options {
    let mut o = Options {
        accounts: 1000,
        recipe_accounts: 100,
        mid_accounts: 200,
        runs: 3,
        pools: vec![16, 32, 64],
        concurrency: 64,
        slow_stacks: 0,
        latency_ms: 50,
        sessions: 0,
        apply_only: false,
        baseline: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--apply-only" {
            o.apply_only = true;
            i += 1;
            continue;
        }
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let number = || -> usize {
            value.parse().unwrap_or_else(|_| {
                eprintln!("bench: {} needs a number", args[i]);
                std::process::exit(64)
            })
        };
        match args[i].as_str() {
            "--accounts" => o.accounts = number(),
            "--recipe-accounts" => o.recipe_accounts = number(),
            "--mid-accounts" => o.mid_accounts = number(),
            "--runs" => o.runs = number(),
            "--concurrency" => o.concurrency = number(),
            "--slow-stacks" => o.slow_stacks = number() as u64,
            "--latency-ms" => o.latency_ms = number() as u64,
            "--sessions" => o.sessions = number(),
            "--baseline" => o.baseline = Some(PathBuf::from(&value)),
            "--pools" => o.pools = value.split(',').filter_map(|p| p.parse().ok()).collect(),
            other => {
                eprintln!(
                    "bench: unknown argument {other}\nusage: rolecall-bench [--accounts N] [--recipe-accounts M] [--mid-accounts K] [--runs R] [--pools 16,32,64] [--concurrency C] [--slow-stacks SECONDS [--latency-ms MS]] [--sessions N] [--apply-only [--baseline ROLECALL]]"
                );
                std::process::exit(64)
            }
        }
        i += 2;
    }
    o
}

/// What one command cost.
#[derive(Clone, Debug, Default)]
struct Sample {
    wall: f64,
    /// user+sys of the process and its waited-for children, seconds.
    cpu: f64,
    /// The kernel's part of `cpu` (connections, reads, writes).
    sys: f64,
    /// Peak resident set, MB.
    rss: f64,
    /// Context switches (voluntary: the client slept; involuntary: it was
    /// preempted).
    switches: (f64, f64),
    /// moto's user+sys during the run, seconds.
    moto: f64,
    calls: BTreeMap<String, usize>,
}

/// Runs `cmd` to its end, measured with wait4; panics with its output when
/// it exits with another code than `ok`.
fn measure(cmd: Command, moto: &Moto, proxy: &Proxy, ok: &[i32], what: &str) -> Sample {
    let log = std::env::temp_dir().join(format!("rolecall-bench-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).expect("log file");
    let result = log.with_extension("usage");
    let mut cmd = launched(&cmd, &result);
    cmd.stdout(file.try_clone().expect("log file")).stderr(file);
    proxy.take_calls();
    let moto_before = cpu_of(moto.pid());
    let started = Instant::now();
    let status = cmd.status().expect("spawn the launcher");
    let wall = started.elapsed().as_secs_f64();
    assert!(status.success(), "bench: the launcher of {what} failed");
    let usage = std::fs::read_to_string(&result).expect("the launcher's report");
    let numbers: Vec<f64> = usage.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let [code, cpu, sys, rss, voluntary, involuntary] = numbers[..] else {
        panic!("bench: the launcher reported {usage:?}")
    };
    let code = code as i32;
    let sample = Sample {
        wall,
        cpu,
        sys,
        rss,
        switches: (voluntary, involuntary),
        moto: cpu_of(moto.pid()) - moto_before,
        calls: proxy.take_calls(),
    };
    if !ok.contains(&code) {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = output.lines().rev().take(30).collect();
        panic!(
            "bench: {what} exited {code}:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    sample
}

/// `cmd` run through this binary's `--launch`, which reports the command's
/// resource usage into `result`. Not measured directly: a child started
/// from this process starts its peak RSS at this process's own (Linux keeps
/// a process's largest resident set across exec, and the spawn shares our
/// memory until then), so the harness's few dozen MB, growing over the
/// rounds, showed up as the contenders'. The launcher is small and fresh.
fn launched(cmd: &Command, result: &Path) -> Command {
    let mut launcher = Command::new(launcher_path());
    launcher
        .arg("--launch")
        .arg(result)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(std::process::Stdio::null());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => launcher.env(key, value),
            None => launcher.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        launcher.current_dir(dir);
    }
    launcher
}

/// This binary's path, read before `tests::binary()` builds the workspace's
/// binaries (which may relink this one, after which the running process's
/// /proc/self/exe names a deleted file).
fn launcher_path() -> &'static Path {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| std::env::current_exe().expect("the bench binary"))
}

/// `--launch RESULT PROGRAM ARGS…`: runs the program (stdio inherited),
/// writes "code cpu sys rss" to RESULT and exits 0.
fn launch() -> ! {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
    let [result, program, rest @ ..] = &args[..] else {
        eprintln!("bench: --launch RESULT PROGRAM [ARGS…]");
        std::process::exit(64)
    };
    // Reaped by wait4 below (with its resource usage), not Child::wait.
    #[allow(clippy::zombie_processes)]
    // ROLECALL_BENCH_PERF=record:DIR (or stat:DIR): each command under
    // `perf record` (or `perf stat`), a file per command in DIR; the CPU
    // reported then includes perf's.
    let perf = std::env::var("ROLECALL_BENCH_PERF").ok();
    let child = match perf.as_deref().and_then(|p| p.split_once(':')) {
        Some((mode, dir)) => {
            let out = Path::new(dir).join(format!("{}.{mode}", std::process::id()));
            let how: &[&str] = if mode == "stat" {
                &[
                    "stat",
                    "-e",
                    "task-clock,context-switches,cpu-migrations,page-faults",
                    "-o",
                ]
            } else {
                &["record", "-q", "-F", "2000", "-g", "-o"]
            };
            Command::new("perf")
                .args(how)
                .arg(out)
                .arg("--")
                .arg(program)
                .args(rest)
                .spawn()
                .expect("spawn perf")
        }
        None => Command::new(program).args(rest).spawn().expect("spawn"),
    };
    let (code, cpu, sys, rss, voluntary, involuntary) = wait4(child.id());
    std::fs::write(result, format!("{code} {cpu} {sys} {rss} {voluntary} {involuntary}\n")).expect("write the usage");
    std::process::exit(0)
}

/// (exit code, user+sys seconds, sys seconds, peak RSS MB) of a child,
/// children included.
/// (exit code, user+sys s, sys s, peak RSS MB, voluntary and involuntary
/// context switches).
fn wait4(pid: u32) -> (i32, f64, f64, f64, i64, i64) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child; status and usage are valid for writes.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as libc::pid_t, "wait4 failed");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (
        code,
        secs(usage.ru_utime) + secs(usage.ru_stime),
        secs(usage.ru_stime),
        usage.ru_maxrss as f64 / 1024.0,
        usage.ru_nvcsw,
        usage.ru_nivcsw,
    )
}

/// user+sys seconds of a running process, from /proc.
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) / ticks
}

/// The organization and the files every contender reads, made again after
/// each reset (ids are repeatable, files are cheap).
struct World {
    org: SeededOrg,
    dir: PathBuf,
}

impl World {
    fn fresh(moto: &mut Moto, accounts: usize, dir: &Path) -> World {
        moto.reset();
        let rt = tests::runtime();
        let org = rt.block_on(async { seed_org(&moto.sdk_config().await, &[], &member_org(accounts, "bench")).await });
        World {
            org,
            dir: dir.to_path_buf(),
        }
    }

    fn ids(&self, n: usize) -> Vec<String> {
        self.org.accounts.iter().take(n).map(|a| a.id.clone()).collect()
    }

    /// An inventory listing the first `n` accounts (no discovery: every
    /// contender gets the same list of accounts).
    fn inventory(&self, name: &str, n: usize, concurrency: usize, stacksets: bool) -> PathBuf {
        self.inventory_of(name, &self.ids(n), concurrency, stacksets)
    }

    fn inventory_of(&self, name: &str, ids: &[String], concurrency: usize, stacksets: bool) -> PathBuf {
        let accounts: String = ids.iter().map(|id| format!("  - id: \"{id}\"\n")).collect();
        let (role, via) = if stacksets {
            (
                "  name: RolecallSet\n  stack_name: rolecall-set\n",
                "  via: stacksets\n",
            )
        } else {
            ("", "")
        };
        let text = format!(
            "version: 1\nsource_account: \"{MANAGEMENT_ACCOUNT}\"\nrole:\n{role}  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"s3:*\", Resource: \"*\"}}]}}\ndeploy:\n{via}  regions: [us-east-1]\n  concurrency: {concurrency}\naccounts:\n{accounts}"
        );
        let path = self.dir.join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write inventory");
        path
    }

    fn accounts_file(&self, n: usize) -> PathBuf {
        let path = self.dir.join(format!("accounts-{n}.txt"));
        std::fs::write(&path, self.ids(n).join("\n") + "\n").expect("write accounts");
        path
    }
}

fn rolecall(proxy: &Proxy, args: &[&str]) -> Command {
    let mut cmd = client(tests::binary(), proxy);
    cmd.args(args);
    cmd
}

/// Any contender: the tests' isolated AWS environment, plus the region
/// variable botocore reads.
fn client(program: &Path, proxy: &Proxy) -> Command {
    let mut cmd = tests::base_command(program, &proxy.url());
    cmd.env("AWS_DEFAULT_REGION", tests::REGION);
    cmd
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--launch") {
        launch();
    }
    let o = options();
    if o.sessions > 0 {
        let (before, after) = tests::floor::sessions_in_flight(o.sessions);
        println!(
            "{} accounts in flight on the real SDK path (a session and a CloudFormation client each): {before:.0} MB before, {after:.0} MB with all held: {:.1} KB per account",
            o.sessions,
            (after - before) * 1024.0 / o.sessions as f64
        );
        return;
    }
    launcher_path();
    let mut moto = match Moto::try_start() {
        Ok(moto) => moto,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    };
    let proxy = Proxy::start(moto.port);
    let dir = std::env::temp_dir().join(format!("rolecall-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let root = tests::workspace_root();
    let python = tests::python();
    tests::binary();
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let (n, m) = (o.accounts, o.recipe_accounts);
    let mut samples: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    let mut record = |key: String, s: Sample| {
        eprintln!(
            "bench: {key:<44} {:>8.2}s wall {:>8.2}s cpu {:>7.1} MB {:>8.2}s moto {:>7.0} + {:.0} context switches",
            s.wall, s.cpu, s.rss, s.moto, s.switches.0, s.switches.1
        );
        samples.entry(key).or_default().push(s);
    };
    // The SDK's own cost per call, with no emulator: the floor under the
    // client CPU of the runs below.
    let floor = tests::floor::measure(500);
    eprintln!("bench: SDK floor {floor:?} (µs of client CPU)");
    let seeded = Instant::now();
    let mut world = World::fresh(&mut moto, n, &dir);
    eprintln!(
        "bench: {n} accounts seeded in {:.1}s; {} rounds",
        seeded.elapsed().as_secs_f64(),
        o.runs
    );
    // moto imports each service on first use: warm it up, unmeasured.
    let warm = world.inventory("warm", 1, 1, false);
    let _ = rolecall(&proxy, &["plan", "-i", &path(&warm)]).output();
    if o.slow_stacks > 0 {
        println!("{}", slow_stacks(&o, o.slow_stacks, &world, &moto, &proxy, &dir));
        return;
    }
    for round in 1..=o.runs {
        eprintln!("bench: round {round} of {}", o.runs);
        if o.apply_only {
            // This build, and the baseline's, alternating (which goes
            // first alternates by round).
            let mut binaries = vec![("", tests::binary())];
            if let Some(b) = &o.baseline {
                binaries.push((" baseline", b.as_path()));
                if round % 2 == 0 {
                    binaries.reverse();
                }
            }
            for (tag, binary) in binaries {
                world = World::fresh(&mut moto, n, &dir);
                let ids = world.ids(o.mid());
                let inv_k = path(&world.inventory_of("mid", &ids, o.concurrency, false));
                let reg = path(&dir.join("registry-k.json"));
                let mut apply = client(binary, &proxy);
                apply.args(apply_args(&inv_k, &reg));
                record(
                    format!("mid:{}{tag}", o.mid()),
                    measure(apply, &moto, &proxy, &[0], "apply"),
                );
                world = World::fresh(&mut moto, n, &dir);
                let inv = path(&world.inventory("bootstrap", n, o.concurrency, false));
                let reg = path(&dir.join("registry.json"));
                let mut apply = client(binary, &proxy);
                apply.args(apply_args(&inv, &reg));
                record(format!("apply{tag}"), measure(apply, &moto, &proxy, &[0], "apply"));
            }
            continue;
        }
        // 1. The recipe, and rolecall on the same accounts.
        let template = dir.join("template.json");
        let inv_m = world.inventory("recipe", m, o.concurrency, false);
        let out = rolecall(&proxy, &["template", "-i", &path(&inv_m)])
            .output()
            .expect("rolecall template");
        std::fs::write(&template, out.stdout).expect("write template");
        let config = dir.join("recipe.config");
        let _ = std::fs::remove_file(&config);
        let mut cmd = client(Path::new("bash"), &proxy);
        cmd.arg(root.join("bench/recipe.sh"))
            .args([path(&world.accounts_file(m)), path(&template), path(&config)])
            .env("PYTHON", &python);
        let s = measure(cmd, &moto, &proxy, &[0], "the AWS CLI recipe");
        assert_eq!(
            std::fs::read_to_string(&config)
                .unwrap_or_default()
                .matches("role_arn = arn:")
                .count(),
            m,
            "the recipe wrote a profile per account"
        );
        record(format!("recipe:{m}"), s);
        world = World::fresh(&mut moto, n, &dir);
        let inv_m = world.inventory("recipe", m, o.concurrency, false);
        let reg = path(&dir.join("registry-m.json"));
        record(
            format!("rolecall:{m}"),
            measure(
                rolecall(&proxy, &apply_args(&path(&inv_m), &reg)),
                &moto,
                &proxy,
                &[0],
                "apply",
            ),
        );
        // The next accounts of the same organization, none of them touched
        // yet: rolecall at a mid size, to see its cost per account grow
        // (or not) from the recipe's size to all accounts.
        let k = o.mid();
        if k > 0 {
            let ids = world.ids(m + k);
            let inv_k = path(&world.inventory_of("mid", &ids[m..], o.concurrency, false));
            let reg = path(&dir.join("registry-k.json"));
            record(
                format!("mid:{k}"),
                measure(
                    rolecall(&proxy, &apply_args(&inv_k, &reg)),
                    &moto,
                    &proxy,
                    &[0],
                    "apply",
                ),
            );
        }

        // 2. boto3 at each pool size.
        for pool in &o.pools {
            world = World::fresh(&mut moto, n, &dir);
            let out = dir.join("boto3.config");
            let mut cmd = client(Path::new(&python), &proxy);
            cmd.arg(root.join("bench/boto3_rollout.py")).args([
                path(&world.accounts_file(n)),
                path(&template),
                path(&out),
                pool.to_string(),
            ]);
            let s = measure(cmd, &moto, &proxy, &[0], "boto3");
            assert_eq!(
                std::fs::read_to_string(&out)
                    .unwrap_or_default()
                    .matches("role_arn = arn:")
                    .count(),
                n
            );
            record(format!("boto3:{pool}"), s);
        }

        // 3. rolecall through the bootstrap role, then read-only commands.
        world = World::fresh(&mut moto, n, &dir);
        let inv = path(&world.inventory("bootstrap", n, o.concurrency, false));
        let reg = path(&dir.join("registry.json"));
        let apply = apply_args(&inv, &reg);
        record(
            "apply".into(),
            measure(rolecall(&proxy, &apply), &moto, &proxy, &[0], "apply"),
        );
        record(
            "apply again".into(),
            measure(rolecall(&proxy, &apply), &moto, &proxy, &[0], "apply again"),
        );
        let plan = ["plan", "-i", &inv, "--registry", &reg, "--detailed-exitcode"];
        record(
            "plan".into(),
            measure(rolecall(&proxy, &plan), &moto, &proxy, &[0], "plan"),
        );
        let ids = world.ids(n);
        tests::runtime().block_on(tests::fix_moto_inline_policies(&moto, &ids, "RolecallTarget"));
        let drift = ["drift", "-i", &inv, "--registry", &reg, "--detailed-exitcode"];
        record(
            "drift".into(),
            measure(rolecall(&proxy, &drift), &moto, &proxy, &[0], "drift"),
        );

        // 4. rolecall through StackSets.
        world = World::fresh(&mut moto, n, &dir);
        let inv = path(&world.inventory("stacksets", n, o.concurrency, true));
        let reg = path(&dir.join("registry-sets.json"));
        let apply = apply_args(&inv, &reg);
        record(
            "stacksets apply".into(),
            measure(rolecall(&proxy, &apply), &moto, &proxy, &[0], "stacksets apply"),
        );
        record(
            "stacksets apply again".into(),
            measure(rolecall(&proxy, &apply), &moto, &proxy, &[0], "stacksets apply again"),
        );
        world = World::fresh(&mut moto, n, &dir);
    }
    let mut table = report(&o, &samples, &floor);
    if !o.apply_only {
        // The rollout with AWS's waits, on moto (the world is fresh).
        proxy.take_calls();
        table.push_str(&format!(
            "\n**The rollout with AWS's waits, on moto**: through the proxy every created stack reads CREATE_IN_PROGRESS without outputs for 30 s and every call takes {} ms more; `apply` with the defaults (`--poll-interval` 5 s). moto serves one call at a time: the floor is the stack's time plus moto's CPU, and max(stack, moto CPU) the harder bound.\n\n{}\n",
            o.latency_ms,
            slow_stacks(&o, 30, &world, &moto, &proxy, &dir)
        ));
        table.push_str(&sim_table());
        // In a fresh process: this one's heap has grown (and been freed)
        // over the runs above, and would take the sessions in.
        let memory = Command::new(launcher_path())
            .args(["--sessions", "10000"])
            .output()
            .expect("the memory measurement");
        assert!(memory.status.success(), "the memory measurement failed");
        table.push_str(&format!(
            "\n**Memory of accounts in flight** on the real SDK path (each assumed, with its credentials session and a CloudFormation client built by one DescribeStacks, all held at once; against a canned server; a fresh process): {}\n",
            String::from_utf8_lossy(&memory.stdout).trim()
        ));
    }
    println!("{table}");
    // A part of the table is printed, not written over the whole one.
    if !o.apply_only {
        write_benchmarks(&root.join("BENCHMARKS.md"), &table);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rollout with AWS's waits: through the proxy, every created stack
/// reads CREATE_IN_PROGRESS for `--slow-stacks` seconds and every call
/// takes `--latency-ms` more; `apply` with the defaults (`--poll-interval`
/// 5 s). Its floor is one stack's time plus moto's CPU (moto serves one
/// call at a time). Printed, not written into BENCHMARKS.md.
fn slow_stacks(o: &Options, seconds: u64, world: &World, moto: &Moto, proxy: &Proxy, dir: &Path) -> String {
    let n = o.accounts;
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let inv = path(&world.inventory("slow", n, o.concurrency, false));
    let reg = path(&dir.join("registry-slow.json"));
    proxy.slow_stacks(std::time::Duration::from_secs(seconds));
    proxy.delay(std::time::Duration::from_millis(o.latency_ms));
    let s = measure(
        rolecall(proxy, &["apply", "-i", &inv, "--yes", "--registry", &reg]),
        moto,
        proxy,
        &[0],
        "apply (slow stacks)",
    );
    // One stack's time plus moto's CPU (moto serves one call at a time);
    // the calls overlap the waits, so max(stack, moto CPU) is the harder
    // bound.
    let floor = seconds as f64 + s.moto;
    let bound = (seconds as f64).max(s.moto);
    let describes = s
        .calls
        .iter()
        .filter(|(k, _)| k.ends_with(":DescribeStacks"))
        .map(|(_, n)| n)
        .sum::<usize>();
    format!(
        "| accounts | stack | latency | concurrency | wall | floor: stack + moto CPU | wall / floor | max(stack, moto CPU) | wall / max | DescribeStacks per account | stacks in progress at once (most) | client CPU per account | peak RSS |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n| {n} | {} s | {} ms | {} | {:.1} s | {:.1} s | {:.2} | {:.1} s | {:.2} | {:.2} | {} | {:.2} ms | {:.0} MB |",
        seconds,
        o.latency_ms,
        o.concurrency,
        s.wall,
        floor,
        s.wall / floor,
        bound,
        s.wall / bound,
        describes as f64 / n as f64,
        proxy.max_stacks_in_progress(),
        s.cpu * 1000.0 / n as f64,
        s.rss
    )
}

/// The simulator's rollouts (AWS's latencies on a paused clock) next to
/// 0.3's fixed pool of 16 accounts.
fn sim_table() -> String {
    let mut out = String::from(
        "\n**From empty, in the simulator** (`executor::sim` with AWS's latencies on tokio's paused clock: AssumeRole 60 ms through the STS limit of 100/s, CreateStack 250 ms, DescribeStacks 80 ms, the stack CREATE_IN_PROGRESS for T; defaults: concurrency 64, `--poll-interval` 5 s; the physical limit is T + accounts / 100 s):\n\n| accounts | T | wall (virtual) | physical limit | wall / limit | DescribeStacks per account | real time | 0.3's fixed pool of 16 (accounts / 16 × (T + 3 s)) |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (n, t) in [(1_000, 30), (1_000, 45), (10_000, 45), (50_000, 30), (50_000, 45)] {
        let stack = Duration::from_secs(t);
        let r = tests::rollout::rollout(n, stack, tests::rollout::Run::default());
        let created = r.outcomes.iter().filter(|o| o.status == model::Status::Created).count();
        assert_eq!(created, n, "the simulator's rollout created every stack");
        let limit = tests::rollout::physical_limit(n, stack);
        let pool = n as f64 / 16.0 * (t as f64 + 3.0);
        let pool = if pool >= 3600.0 {
            format!("{:.1} h", pool / 3600.0)
        } else {
            format!("{:.0} min", pool / 60.0)
        };
        out.push_str(&format!(
            "| {n} | {t} s | **{:.1} s** | {:.0} s | {:.2} | {:.1} | {:.2} s | {pool} |\n",
            r.took.as_secs_f64(),
            limit.as_secs_f64(),
            r.took.as_secs_f64() / limit.as_secs_f64(),
            r.describes_per_account,
            r.real.as_secs_f64(),
        ));
    }
    out
}

/// `apply --yes` of `inventory`, recording into `registry`.
fn apply_args<'a>(inventory: &'a str, registry: &'a str) -> [&'a str; 8] {
    [
        "apply",
        "-i",
        inventory,
        "--yes",
        "--poll-interval",
        "0.2",
        "--registry",
        registry,
    ]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.is_empty() {
        0.0
    } else if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The median of each measure over the rounds; calls from the first round
/// (they are the same every round).
fn summarize(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| median(&mut samples.iter().map(f).collect::<Vec<_>>());
    Sample {
        wall: pick(|s| s.wall),
        cpu: pick(|s| s.cpu),
        sys: pick(|s| s.sys),
        rss: pick(|s| s.rss),
        switches: (pick(|s| s.switches.0), pick(|s| s.switches.1)),
        moto: pick(|s| s.moto),
        calls: samples.first().map(|s| s.calls.clone()).unwrap_or_default(),
    }
}

fn calls_per_account(calls: &BTreeMap<String, usize>, accounts: usize) -> String {
    let total: usize = calls.values().sum();
    let parts: Vec<String> = calls
        .iter()
        .map(|(op, n)| {
            let op = op.rsplit(':').next().unwrap_or(op);
            format!("{op} {:.2}", *n as f64 / accounts as f64)
        })
        .collect();
    format!("**{:.2}**: {}", total as f64 / accounts as f64, parts.join(", "))
}

fn report(o: &Options, samples: &BTreeMap<String, Vec<Sample>>, floor: &tests::floor::Floor) -> String {
    let (n, m) = (o.accounts, o.recipe_accounts);
    let get = |key: &str| samples.get(key).map(|s| summarize(s));
    let best_pool = o
        .pools
        .iter()
        .filter_map(|p| get(&format!("boto3:{p}")).map(|s| (*p, s)))
        .min_by(|a, b| a.1.wall.total_cmp(&b.1.wall));
    let mut rows: Vec<(String, usize, Sample)> = Vec::new();
    let mut push = |label: String, accounts: usize, key: &str| {
        if let Some(s) = get(key) {
            rows.push((label, accounts, s));
        }
    };
    push(
        format!("AWS CLI recipe (bash loop), {m} accounts"),
        m,
        &format!("recipe:{m}"),
    );
    push(
        format!("rolecall apply, bootstrap role, {m} accounts"),
        m,
        &format!("rolecall:{m}"),
    );
    let k = o.mid();
    push(
        format!("rolecall apply, bootstrap role, {k} accounts"),
        k,
        &format!("mid:{k}"),
    );
    push(
        format!("rolecall apply, baseline build, {k} accounts"),
        k,
        &format!("mid:{k} baseline"),
    );
    push(
        format!("rolecall apply, baseline build, {n} accounts"),
        n,
        "apply baseline",
    );
    for p in &o.pools {
        let best = if best_pool.as_ref().is_some_and(|(b, _)| b == p) {
            " (best)"
        } else {
            ""
        };
        push(
            format!("boto3 thread pool {p}{best}, {n} accounts"),
            n,
            &format!("boto3:{p}"),
        );
    }
    for (key, label) in [
        ("apply", "rolecall apply, bootstrap role"),
        ("apply again", "rolecall apply, unchanged re-run"),
        ("plan", "rolecall plan, all in place"),
        ("drift", "rolecall drift, all in sync"),
        ("stacksets apply", "rolecall apply via StackSets (self-managed)"),
        (
            "stacksets apply again",
            "rolecall apply via StackSets, unchanged re-run",
        ),
    ] {
        push(format!("{label}, {n} accounts"), n, key);
    }
    let mut out = String::new();
    out.push_str(&format!(
        "Medians of {} rounds; concurrency {} for rolecall; 1 region; moto behind the counting proxy.\n\n",
        o.runs, o.concurrency
    ));
    out.push_str("| run | wall (s) | moto CPU (s) | wall / moto CPU | client CPU per account (ms), user + sys | client peak RSS (MB) | API calls per account |\n|---|---:|---:|---:|---:|---:|---|\n");
    for (label, accounts, s) in &rows {
        out.push_str(&format!(
            "| {label} | {:.2} | {:.2} | {:.2} | {:.2} ({:.2} + {:.2}) | {:.0} | {} |\n",
            s.wall,
            s.moto,
            if s.moto > 0.0 { s.wall / s.moto } else { 0.0 },
            s.cpu * 1000.0 / *accounts as f64,
            (s.cpu - s.sys) * 1000.0 / *accounts as f64,
            s.sys * 1000.0 / *accounts as f64,
            s.rss,
            calls_per_account(&s.calls, *accounts)
        ));
    }
    let ratio = |a: Option<Sample>, b: Option<Sample>, f: fn(&Sample) -> f64| match (a, b) {
        (Some(a), Some(b)) if f(&b) > 0.0 => format!("{:.1}×", f(&a) / f(&b)),
        _ => "n/a".to_owned(),
    };
    let boto = best_pool.map(|(_, s)| s);
    out.push_str(&format!(
        "\nRatios: the AWS CLI recipe / rolecall at {m} accounts: wall {}, client CPU {}. Best boto3 / rolecall at {n} accounts: wall {}, client CPU {}.\n",
        ratio(get(&format!("recipe:{m}")), get(&format!("rolecall:{m}")), |s| s.wall),
        ratio(get(&format!("recipe:{m}")), get(&format!("rolecall:{m}")), |s| s.cpu),
        ratio(boto.clone(), get("apply"), |s| s.wall),
        ratio(boto, get("apply"), |s| s.cpu),
    ));
    out.push_str(&format!(
        "\nThe SDK's floor (rolecall's SDK path against a canned server in the same process, one kept-alive connection, one thread, no emulator; client CPU): AssumeRole and its session {:.0} µs; the first DescribeStacks of an account, which builds its region's CloudFormation client, {:.0} µs; a DescribeStacks {:.0} µs; `plan`'s work for one account (both) {:.0} µs.\n",
        floor.assume_role, floor.first_describe, floor.describe, floor.plan_account
    ));
    out
}

const BEGIN: &str = "<!-- bench:begin (written by `just bench`) -->";
const END: &str = "<!-- bench:end -->";

/// Puts the table between the markers of BENCHMARKS.md, with the machine
/// and versions; the rest of the file is left as it is.
fn write_benchmarks(path: &Path, table: &str) {
    let version = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(if o.stdout.is_empty() { &o.stderr } else { &o.stdout })
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let python = tests::python();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = humantime_like_date();
    let section = format!(
        "{BEGIN}\nMeasured {date} with `{}` on {cores} cores ({cpu}); {}, moto {}, AWS CLI {}, boto3 {}, {}.\n\n{table}{END}",
        std::iter::once("just bench".to_owned())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        version("rustc", &["--version"]),
        version(&python, &["-c", "import moto; print(moto.__version__)"]),
        version(&python, &["-m", "awscli", "--version"]),
        version(&python, &["-c", "import boto3; print(boto3.__version__)"]),
        version(&python, &["--version"]),
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &text[..b], &text[e + END.len()..]),
        _ => format!("{text}\n{section}\n"),
    };
    std::fs::write(path, new).expect("write BENCHMARKS.md");
    eprintln!("bench: wrote {}", path.display());
}

fn humantime_like_date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
