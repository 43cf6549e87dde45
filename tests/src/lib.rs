//! The end-to-end harness: a moto server per test on a free port, an
//! organization seeded through the AWS SDK, and the real `rolecall` binary
//! run against it with an isolated AWS environment. Used by `it/` and by the
//! demo.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudformation as cfn;
use aws_sdk_organizations as org;
use aws_sdk_sts as sts;
use aws_smithy_http_client::tls;

pub mod chaos;
pub mod floor;
pub mod proxy;
pub mod rollout;

/// Any static key works with moto; this one maps to account 123456789012,
/// which becomes the organization's management account.
pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
pub const MANAGEMENT_ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// A moto server of our own, stopped (by PID) when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Moto {
    /// Starts `python3 -m moto.server` on a free loopback port and waits
    /// until it answers. Panics with install instructions when moto is
    /// missing: a test never silently skips.
    pub fn start() -> Moto {
        Moto::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Moto::start`], but a missing or broken moto is one line of
    /// error (with the command that fixes it), for the demo and the bench.
    pub fn try_start() -> Result<Moto, String> {
        let python = python();
        let probe = Command::new(&python).args(["-c", "import moto.server, flask"]).output();
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return Err(format!(
                    "moto is not installed for {python} ({}); install it with `just setup` (or: {python} -m pip install 'moto[server]==5.2.1')",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim()
                ));
            }
            Err(e) => {
                return Err(format!(
                    "cannot run {python} ({e}); install Python 3, then `just setup` (or set PYTHON to a Python 3 with moto)"
                ));
            }
        }
        let port = free_port();
        let log = std::env::temp_dir().join(format!("rolecall-moto-{port}.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env_remove("MOTO_ACCOUNT_ID")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start moto with {python}: {e}"))?;
        let mut moto = Moto { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!(
                    "moto exited at start ({status}); its log:\n{}",
                    std::fs::read_to_string(&moto.log).unwrap_or_default()
                ));
            }
            if http_post(port, "/moto-api/reset", "").is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "moto did not answer on port {port} within 60 s; log: {}",
                    moto.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        moto.reset();
        Ok(moto)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id (the bench reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Forgets all state and makes generated ids repeatable.
    pub fn reset(&mut self) {
        http_post(self.port, "/moto-api/reset", "").expect("moto reset");
        http_post(self.port, "/moto-api/seed?a=42", "").expect("moto seed");
    }

    /// The SDK config the tests themselves use (management account).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(
            &self.url(),
            cfn::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "static"),
        )
        .await
    }

    /// The management account's config in another region (another
    /// partition, e.g. us-gov-west-1).
    pub async fn sdk_config_in(&self, region: &str) -> SdkConfig {
        self.sdk_config()
            .await
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build()
    }

    /// Config acting inside `account` (moto honours AssumeRole's account).
    pub async fn account_config(&self, account: &str) -> SdkConfig {
        let base = self.sdk_config().await;
        let out = sts::Client::new(&base)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"))
            .role_session_name("rolecall-tests")
            .send()
            .await
            .expect("assume role in moto");
        let c = out.credentials().expect("credentials");
        let creds = cfn::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "assumed",
        );
        sdk_config(&self.url(), creds).await
    }

    /// Runs the real binary against this server.
    pub fn rolecall(&self, args: &[&str]) -> Run {
        rolecall(&self.url(), args)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Only our own child, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The Python that runs moto, the AWS CLI and cfn-lint: `$PYTHON`, else
/// `python3`. Tools run as `python -m …` so that pip's scripts folder need
/// not be on PATH.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A bare HTTP/1.1 POST to moto's control API; returns the status code.
fn http_post(port: u16, path: &str, body: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if status == 200 {
        Ok(status)
    } else {
        Err(std::io::Error::other(format!("{path}: HTTP {status}")))
    }
}

pub async fn sdk_config(url: &str, creds: cfn::config::Credentials) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(creds)
        .load()
        .await
}

// ---------------------------------------------------------------------------
// The binary.

/// Output of one `rolecall` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "rolecall exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "rolecall panicked:\n{}", self.stderr);
        self
    }
}

/// The `rolecall` binary of this workspace, built (once per test process)
/// so that the tests never run a stale one.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let root = workspace_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
        let mut args = vec!["build", "--quiet", "--workspace", "--bins"];
        if profile == "release" {
            args.push("--release");
        }
        let status = Command::new(cargo)
            .args(&args)
            .current_dir(&root)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        target.join(profile).join("rolecall")
    })
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Runs rolecall with only the AWS settings we give it: no user config,
/// no instance metadata, static keys of the management account.
pub fn rolecall(endpoint: &str, args: &[&str]) -> Run {
    rolecall_in(&workspace_root(), endpoint, args)
}

/// `rolecall` run in `dir` (where relative paths, and the default registry
/// paths, are).
pub fn rolecall_in(dir: &Path, endpoint: &str, args: &[&str]) -> Run {
    let out: Output = base_command(binary(), endpoint)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run rolecall");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A command with the isolated AWS environment the tests and the demo use.
pub fn base_command(program: &Path, endpoint: &str) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .current_dir(workspace_root())
        .stdin(Stdio::null());
    cmd
}

// ---------------------------------------------------------------------------
// The AWS CLI.

/// Writes a credentials file whose `[default]` profile is the management
/// account's static keys (the `source_profile` of generated profiles).
pub fn write_default_credentials(path: &Path) {
    let text = format!("[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n");
    std::fs::write(path, text).expect("write credentials file");
}

/// Runs the real AWS CLI against `endpoint` with only the given files.
/// `home` holds its credential cache: keys cached from another moto server
/// would land in the wrong account.
pub fn aws_cli(
    endpoint: &str,
    config: &Path,
    credentials: &Path,
    home: &Path,
    args: &[&str],
) -> std::io::Result<Output> {
    let mut cmd = Command::new(python());
    cmd.args(["-m", "awscli"]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
}

// ---------------------------------------------------------------------------
// Organizations.

/// An OU with accounts (name, tags) and child OUs.
#[derive(Clone, Debug)]
pub struct OuSpec {
    pub name: &'static str,
    pub accounts: Vec<(String, Vec<(&'static str, &'static str)>)>,
    pub children: Vec<OuSpec>,
}

pub fn ou(name: &'static str, accounts: &[(&str, &[(&'static str, &'static str)])], children: Vec<OuSpec>) -> OuSpec {
    OuSpec {
        name,
        accounts: accounts.iter().map(|(n, t)| (n.to_string(), t.to_vec())).collect(),
        children,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededAccount {
    pub id: String,
    pub name: String,
    /// `Root/Workloads/Prod`.
    pub path: String,
    pub tags: BTreeMap<String, String>,
}

/// What was created: OU ids by path (`Root` is the root) and the accounts.
#[derive(Clone, Debug, Default)]
pub struct SeededOrg {
    pub ous: BTreeMap<String, String>,
    pub accounts: Vec<SeededAccount>,
}

impl SeededOrg {
    pub fn ou(&self, path: &str) -> &str {
        self.ous
            .get(path)
            .unwrap_or_else(|| panic!("no OU {path} in {:?}", self.ous.keys()))
    }

    pub fn account(&self, name: &str) -> &SeededAccount {
        self.accounts
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no account {name}"))
    }

    /// Accounts whose path starts with `path` (recursive) or equals it.
    pub fn under(&self, path: &str, recursive: bool) -> Vec<&SeededAccount> {
        self.accounts
            .iter()
            .filter(|a| a.path == path || (recursive && a.path.starts_with(&format!("{path}/"))))
            .collect()
    }
}

/// Creates the organization, the OU tree (depth first, in order, so ids
/// are repeatable after a seeded reset) and the accounts.
pub async fn seed_org(
    config: &SdkConfig,
    root_accounts: &[(&str, &[(&'static str, &'static str)])],
    tree: &[OuSpec],
) -> SeededOrg {
    let client = org::Client::new(config);
    client
        .create_organization()
        .feature_set(org::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create organization");
    let roots = client.list_roots().send().await.expect("list roots");
    let root = roots.roots()[0].id().expect("root id").to_owned();
    let mut seeded = SeededOrg::default();
    seeded.ous.insert("Root".to_owned(), root.clone());
    let spec = OuSpec {
        name: "Root",
        accounts: root_accounts.iter().map(|(n, t)| (n.to_string(), t.to_vec())).collect(),
        children: tree.to_vec(),
    };
    seed_accounts(&client, &root, "Root", &spec, &mut seeded).await;
    let mut stack: Vec<(String, String, &OuSpec)> = tree
        .iter()
        .rev()
        .map(|o| (root.clone(), "Root".to_owned(), o))
        .collect();
    while let Some((parent, parent_path, spec)) = stack.pop() {
        let created = client
            .create_organizational_unit()
            .parent_id(&parent)
            .name(spec.name)
            .send()
            .await
            .expect("create OU");
        let id = created
            .organizational_unit()
            .and_then(|o| o.id())
            .expect("OU id")
            .to_owned();
        let path = format!("{parent_path}/{}", spec.name);
        seeded.ous.insert(path.clone(), id.clone());
        seed_accounts(&client, &id, &path, spec, &mut seeded).await;
        for child in spec.children.iter().rev() {
            stack.push((id.clone(), path.clone(), child));
        }
    }
    seeded
}

async fn seed_accounts(client: &org::Client, parent: &str, path: &str, spec: &OuSpec, seeded: &mut SeededOrg) {
    let root = seeded.ous["Root"].clone();
    for (name, tags) in &spec.accounts {
        let created = client
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| org::types::Tag::builder().key(*k).value(*v).build().expect("tag"))
                    .collect(),
            ))
            .send()
            .await
            .expect("create account");
        let id = created
            .create_account_status()
            .and_then(|s| s.account_id())
            .expect("account id")
            .to_owned();
        if parent != root {
            client
                .move_account()
                .account_id(&id)
                .source_parent_id(&root)
                .destination_parent_id(parent)
                .send()
                .await
                .expect("move account");
        }
        seeded.accounts.push(SeededAccount {
            id,
            name: name.clone(),
            path: path.to_owned(),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        });
    }
}

/// The organization of the end-to-end tests: 21 member accounts in OUs four
/// levels deep, tagged by env and team.
pub fn test_org() -> Vec<OuSpec> {
    const PROD_WEB: &[(&str, &str)] = &[("env", "prod"), ("team", "web")];
    const PROD_PAY: &[(&str, &str)] = &[("env", "prod"), ("team", "pay")];
    const DEV: &[(&str, &str)] = &[("env", "dev")];
    const SANDBOX: &[(&str, &str)] = &[("env", "sandbox")];
    vec![
        ou(
            "Security",
            &[
                ("audit", &[("env", "prod"), ("team", "sec")]),
                ("log-archive", &[("env", "prod"), ("team", "sec")]),
            ],
            vec![],
        ),
        ou(
            "Workloads",
            &[],
            vec![
                ou(
                    "Prod",
                    &[
                        ("web-prod", PROD_WEB),
                        ("api-prod", PROD_WEB),
                        ("data-prod", &[("env", "prod"), ("team", "data")]),
                    ],
                    vec![ou(
                        "Regulated",
                        &[("pay-prod", PROD_PAY), ("card-prod", PROD_PAY)],
                        vec![ou("Vault", &[("vault-prod", PROD_PAY)], vec![])],
                    )],
                ),
                ou(
                    "NonProd",
                    &[
                        ("web-dev", DEV),
                        ("api-dev", DEV),
                        ("data-dev", DEV),
                        ("web-stage", &[("env", "stage")]),
                        ("api-stage", &[("env", "stage")]),
                    ],
                    vec![],
                ),
            ],
        ),
        ou(
            "Sandbox",
            &[
                ("sandbox-1", SANDBOX),
                ("sandbox-2", SANDBOX),
                ("sandbox-3", SANDBOX),
                ("sandbox-4", SANDBOX),
                ("sandbox-5", SANDBOX),
                ("sandbox-6", SANDBOX),
                ("sandbox-7", SANDBOX),
                ("sandbox-8", SANDBOX),
            ],
            vec![],
        ),
    ]
}

/// The demo organization: 11 member accounts in nested OUs.
pub fn demo_org() -> Vec<OuSpec> {
    vec![
        ou(
            "Security",
            &[("log-archive", &[("env", "prod")]), ("audit", &[("env", "prod")])],
            vec![],
        ),
        ou(
            "Workloads",
            &[],
            vec![
                ou(
                    "Prod",
                    &[
                        ("web-prod", &[("env", "prod")]),
                        ("api-prod", &[("env", "prod")]),
                        ("data-prod", &[("env", "prod")]),
                    ],
                    vec![ou("Regulated", &[("payments-prod", &[("env", "prod")])], vec![])],
                ),
                ou(
                    "NonProd",
                    &[
                        ("web-dev", &[("env", "dev")]),
                        ("api-dev", &[("env", "dev")]),
                        ("data-dev", &[("env", "dev")]),
                    ],
                    vec![],
                ),
            ],
        ),
        ou(
            "Sandbox",
            &[
                ("sandbox-1", &[("env", "sandbox")]),
                ("sandbox-2", &[("env", "sandbox")]),
            ],
            vec![],
        ),
    ]
}

/// Writes an inventory into a fresh temp dir; returns its path.
pub fn write_inventory(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rolecall-it-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write inventory");
    path
}

/// One OU `Members` of `n` accounts `member-0001`… tagged `env: <tag>`.
pub fn member_org(n: usize, tag: &'static str) -> Vec<OuSpec> {
    vec![OuSpec {
        name: "Members",
        accounts: (1..=n)
            .map(|i| (format!("member-{i:04}"), vec![("env", tag)]))
            .collect(),
        children: vec![],
    }]
}

/// Where `json` breaks `schemas/<schema>`: every violation with its place.
pub fn schema_errors(json: &serde_json::Value, schema: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace_root().join("schemas").join(schema)).expect("read schema");
    let schema_json: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema_json).expect("the schema compiles");
    validator
        .iter_errors(json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// A tokio runtime for the tests' own SDK calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// moto stores the inline policies of roles that CloudFormation creates as
/// Python values and answers GetRolePolicy with their `repr`
/// (`{'Version': …}`) where AWS answers URL-encoded JSON. rolecall follows
/// AWS; tests and the demo that read live roles (`drift`) first rewrite
/// such documents once as the JSON they stand for, changing nothing else.
pub async fn fix_moto_inline_policies(moto: &Moto, accounts: &[String], role: &str) {
    for account in accounts {
        let client = aws_sdk_iam::Client::new(&moto.account_config(account).await);
        let Ok(names) = client.list_role_policies().role_name(role).send().await else {
            continue;
        };
        for name in names.policy_names() {
            let doc = client
                .get_role_policy()
                .role_name(role)
                .policy_name(name)
                .send()
                .await
                .expect("get role policy")
                .policy_document()
                .to_owned();
            if serde_json::from_str::<serde_json::Value>(&doc).is_ok() || doc.starts_with('%') {
                continue;
            }
            let json = doc
                .replace('\'', "\"")
                .replace("True", "true")
                .replace("False", "false")
                .replace("None", "null");
            serde_json::from_str::<serde_json::Value>(&json).expect("moto's policy repr converts to JSON");
            client
                .put_role_policy()
                .role_name(role)
                .policy_name(name)
                .policy_document(json)
                .send()
                .await
                .expect("put role policy");
        }
    }
}

// ---------------------------------------------------------------------------
// A real browser, for the HTML report.

/// Debian's Chromium; a test that needs it fails with how to install it.
pub fn chromium() -> PathBuf {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "Chromium is not installed: the HTML report is checked in a real browser. Install it with `apt-get install chromium` (or run `just setup`), then run the tests again"
    );
}

/// Chromium headless, as the probe of this machine runs it: no sandbox
/// (root), no GPU, nothing from the network, a fresh profile.
fn chromium_command(profile: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdin(Stdio::null());
    cmd
}

/// The page's DOM after its script ran, with `hash` as the URL's fragment.
pub fn rendered_dom(page: &Path, hash: &str) -> String {
    let profile = page.with_extension("chromium-profile");
    let out = chromium_command(&profile)
        .arg("--dump-dom")
        .arg(format!("file://{}{hash}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A 1280×900 screenshot of the page, written to `png`.
pub fn screenshot(page: &Path, png: &Path) {
    let profile = page.with_extension("chromium-profile");
    let out = chromium_command(&profile)
        .arg("--window-size=1280,900")
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success() && png.exists(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How many distinct colours a PNG has, and the share of its pixels that
/// are not the background (its top-left pixel): a blank page has one colour.
pub fn png_colours(path: &Path) -> (usize, f64) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("open png")));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let bytes = &buf[..info.buffer_size()];
    let step = info.color_type.samples();
    let pixels: Vec<&[u8]> = bytes.chunks(step).collect();
    let background = pixels[0];
    let colours: std::collections::BTreeSet<&[u8]> = pixels.iter().copied().collect();
    let other = pixels.iter().filter(|p| **p != background).count();
    (colours.len(), other as f64 / pixels.len() as f64)
}
