//! Inventory files (schema version 1): parsing, defaults and validation.
//!
//! Three passes, so that one run reports every problem it can:
//! 1. a marked YAML tree finds every unknown key and every account id written
//!    as a bare number (YAML would have changed it), with positions;
//! 2. serde (`deny_unknown_fields`) turns the text into typed raw structs;
//! 3. semantic checks on those structs, located through the tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use model::{
    AccountEntry, AccountId, CustomTemplate, Deploy, DeployVia, Inventory, OrgDiscovery, PermissionModel, ProfilesSpec,
    RoleSpec, StackSetSpec, Target, TargetSource,
};
use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Severity, Sink};
use crate::names;
use crate::partition::Partition;
use crate::yaml::{self, Kind, Node};

/// Reads a file the inventory refers to (a custom template). Injected so that
/// the planner itself does no IO.
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> std::io::Result<String>;

/// Parses and validates an inventory. On success returns it with warnings;
/// otherwise every problem found (errors first).
/// The inventory from the file's bytes: UTF-8, with or without a byte
/// order mark. Other encodings are refused with the line where the text
/// stops being UTF-8.
pub fn parse_bytes(
    bytes: &[u8],
    origin: &Path,
    read_file: ReadFile<'_>,
) -> Result<(Inventory, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut sink = Sink::new(origin);
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        sink.error(
            (1, 1),
            "",
            "the file is UTF-16 text (it starts with a UTF-16 byte order mark)",
            "save it as UTF-8",
        );
        return Err(sink.finish());
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, origin, read_file),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let column = good.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            sink.error(
                (line, column),
                "",
                format!(
                    "not UTF-8 text: byte 0x{:02X} here (Latin-1 or another encoding?)",
                    bytes[e.valid_up_to()]
                ),
                "save the file as UTF-8",
            );
            Err(sink.finish())
        }
    }
}

pub fn parse(
    text: &str,
    origin: &Path,
    read_file: ReadFile<'_>,
) -> Result<(Inventory, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut sink = Sink::new(origin);
    if let Some((at, c)) = control_character(text) {
        sink.error(
            at,
            "",
            format!(
                "control character U+{:04X} in the file; an inventory is YAML text",
                c as u32
            ),
            "remove it (is this a binary file, or saved in another encoding than UTF-8?)",
        );
        return Err(sink.finish());
    }
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            sink.error(
                (0, 0),
                "",
                "the inventory is empty",
                "start from inventory/example.yaml",
            );
            return Err(sink.finish());
        }
        Err(e) => {
            sink.error(
                (e.line, e.column),
                &key_path_at(text, e.line),
                format!("not valid YAML: {}", e.message),
                "fix the YAML syntax at that position",
            );
            return Err(sink.finish());
        }
    };
    if !matches!(root.kind, Kind::Map(_)) {
        sink.error(
            root.at(),
            "",
            "expected a mapping of keys at the top level",
            "start from inventory/example.yaml",
        );
        return Err(sink.finish());
    }
    check_keys(&root, "", &mut sink);
    check_shape(&root, &INVENTORY, "", &mut sink);
    if sink.has_errors() {
        return Err(sink.finish());
    }
    let raw: RawInventory = match serde_yaml::from_str(text) {
        Ok(raw) => raw,
        Err(e) if e.to_string().contains("repetition limit exceeded") => {
            let (at, path) = first_alias(&root, "").unwrap_or(((0, 0), String::new()));
            sink.error(
                at,
                &path,
                "YAML aliases here expand to too many values (an alias bomb?)",
                "write the values out, or use fewer nested aliases",
            );
            return Err(sink.finish());
        }
        Err(e) => {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            sink.error(
                (line, column),
                "",
                serde_message(&e.to_string()),
                "see inventory/README.md for every key and its type",
            );
            return Err(sink.finish());
        }
    };
    let base = origin.parent().unwrap_or(Path::new("."));
    let inventory = Validator {
        root: &root,
        sink: &mut sink,
        base,
        read_file,
    }
    .validate(raw, origin);
    match inventory {
        Some(inv) if !sink.has_errors() => Ok((inv, sink.finish())),
        _ => Err(sink.finish()),
    }
}

/// A template path stays inside the inventory's folder: relative, and
/// never above it. What an inventory refers to is reviewed with it.
fn inside_folder(path: &Path) -> Result<(), &'static str> {
    use std::path::Component;
    let mut depth: usize = 0;
    for part in path.components() {
        match part {
            Component::Prefix(_) | Component::RootDir => return Err("is absolute"),
            Component::ParentDir if depth == 0 => return Err("leaves the inventory's folder"),
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
        }
    }
    if depth == 0 {
        return Err("names no file");
    }
    Ok(())
}

/// The key a line of text that is not valid YAML stands under, guessed from
/// indentation (the tree could not be built): `role.policy` for a broken
/// policy. Empty at the top level or when nothing looks like a key.
fn key_path_at(text: &str, line: usize) -> String {
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for l in text.lines().take(line) {
        let indent = l.len() - l.trim_start_matches([' ', '-']).len();
        let rest = l.trim_start_matches([' ', '-']);
        let Some((key, _)) = rest.split_once(':') else { continue };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
    }
    stack.iter().map(|(_, k)| *k).collect::<Vec<_>>().join(".")
}

/// Where the first alias (`*name`) of the file stands, and its key path.
fn first_alias(node: &Node, path: &str) -> Option<((usize, usize), String)> {
    match &node.kind {
        Kind::Alias => Some((node.at(), path.to_owned())),
        Kind::Map(entries) => entries.iter().find_map(|(k, v)| {
            let child = join(path, k.as_str().unwrap_or("?"));
            first_alias(v, &child)
        }),
        Kind::Seq(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| first_alias(v, &format!("{path}[{i}]"))),
        Kind::Scalar { .. } => None,
    }
}

/// The first character an inventory must not hold: a control character
/// other than tab, newline and carriage return (binary data, NUL bytes).
fn control_character(text: &str) -> Option<((usize, usize), char)> {
    for (i, line) in text.split('\n').enumerate() {
        if let Some((col, c)) = line
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\r'))
        {
            return Some(((i + 1, col + 1), c));
        }
    }
    None
}

/// serde_yaml appends " at line L column C" to its messages; the position is
/// already in front of ours.
fn serde_message(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Pass 1: the shape of the file.

enum Shape {
    Map(&'static [(&'static str, Shape)]),
    SeqOf(&'static Shape),
    AccountId,
    /// Anything: policy documents, tag maps, scalars.
    Any,
}

const ACCOUNT_IDS: Shape = Shape::SeqOf(&Shape::AccountId);

const INVENTORY: Shape = Shape::Map(&[
    ("version", Shape::Any),
    ("source_account", Shape::AccountId),
    ("allow_source_account", Shape::Any),
    (
        "role",
        Shape::Map(&[
            ("name", Shape::Any),
            ("stack_name", Shape::Any),
            ("trusted_accounts", ACCOUNT_IDS),
            ("policy", Shape::Any),
            ("managed_policy_arns", Shape::Any),
            ("external_id", Shape::Any),
            ("max_session_duration", Shape::Any),
            ("template", Shape::Any),
            ("parameters", Shape::Any),
            ("output_key", Shape::Any),
            ("tags", Shape::Any),
        ]),
    ),
    (
        "deploy",
        Shape::Map(&[
            ("via", Shape::Any),
            ("bootstrap_role", Shape::Any),
            ("bootstrap_external_id", Shape::Any),
            ("regions", Shape::Any),
            ("concurrency", Shape::Any),
            ("failure_tolerance", Shape::Any),
            (
                "stackset",
                Shape::Map(&[
                    ("name", Shape::Any),
                    ("permission_model", Shape::Any),
                    ("call_as", Shape::Any),
                    ("administration_role_arn", Shape::Any),
                    ("execution_role_name", Shape::Any),
                    ("auto_deployment", Shape::Any),
                    ("retain_stacks_on_account_removal", Shape::Any),
                    ("region_concurrency", Shape::Any),
                    ("concurrency_mode", Shape::Any),
                ]),
            ),
        ]),
    ),
    (
        "profiles",
        Shape::Map(&[
            ("source_profile", Shape::Any),
            ("name", Shape::Any),
            ("region", Shape::Any),
            ("role_session_name", Shape::Any),
            ("duration_seconds", Shape::Any),
        ]),
    ),
    (
        "accounts",
        Shape::SeqOf(&Shape::Map(&[
            ("id", Shape::AccountId),
            ("name", Shape::Any),
            ("regions", Shape::Any),
            ("tags", Shape::Any),
        ])),
    ),
    (
        "organization",
        Shape::Map(&[
            ("ous", Shape::Any),
            ("recursive", Shape::Any),
            ("tags", Shape::Any),
            ("exclude", ACCOUNT_IDS),
        ]),
    ),
]);

fn check_shape(node: &Node, shape: &Shape, path: &str, sink: &mut Sink) {
    match (shape, &node.kind) {
        (Shape::Map(keys), Kind::Map(entries)) => {
            for (k, v) in entries {
                let Some(name) = k.as_str() else { continue };
                let child = join(path, name);
                match keys.iter().find(|(key, _)| *key == name) {
                    Some((_, shape)) => check_shape(v, shape, &child, sink),
                    None => {
                        let known: Vec<&str> = keys.iter().map(|(key, _)| *key).collect();
                        let help = match closest(name, &known) {
                            Some(best) => format!("did you mean `{best}`? valid keys here: {}", known.join(", ")),
                            None => format!("valid keys here: {}", known.join(", ")),
                        };
                        let within = if path.is_empty() {
                            "at the top level".to_owned()
                        } else {
                            format!("in `{path}`")
                        };
                        sink.error(k.at(), &child, format!("unknown key `{name}` {within}"), help);
                    }
                }
            }
        }
        (Shape::SeqOf(item), Kind::Seq(items)) => {
            for (i, v) in items.iter().enumerate() {
                check_shape(v, item, &format!("{path}[{i}]"), sink);
            }
        }
        (Shape::AccountId, _) if node.is_unquoted_number() => {
            let value = node.as_str().unwrap_or_default();
            sink.error(
                node.at(),
                path,
                format!("account id {value} is written as a number; YAML reads unquoted digits as a number and can change them (a leading 0 is lost)"),
                format!("quote it: \"{value}\" (rolecall never guesses the intended id)"),
            );
        }
        _ => {}
    }
}

/// Every mapping, known keys or not: keys are plain strings, each given
/// once (YAML forbids duplicates, and which one would win is a guess).
fn check_keys(node: &Node, path: &str, sink: &mut Sink) {
    match &node.kind {
        Kind::Map(entries) => {
            let mut seen: Vec<(&str, usize)> = Vec::new();
            for (k, v) in entries {
                let Some(name) = k.as_str() else {
                    sink.error(
                        k.at(),
                        path,
                        "a key here is not a plain string (a list, a mapping or an alias)",
                        "write every key as plain text, e.g. `name: value`",
                    );
                    continue;
                };
                let child = join(path, name);
                match seen.iter().find(|(n, _)| *n == name) {
                    Some((_, line)) => sink.error(
                        k.at(),
                        &child,
                        format!("duplicate key `{name}` (first given on line {line})"),
                        "give each key once; merge the two",
                    ),
                    None => seen.push((name, k.line)),
                }
                check_keys(v, &child, sink);
            }
        }
        Kind::Seq(items) => {
            for (i, v) in items.iter().enumerate() {
                check_keys(v, &format!("{path}[{i}]"), sink);
            }
        }
        Kind::Scalar { .. } | Kind::Alias => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The closest valid key, if it is close enough to be a likely typo.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

// ---------------------------------------------------------------------------
// Pass 2: typed raw structs.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    version: Option<u32>,
    source_account: Option<String>,
    #[serde(default)]
    allow_source_account: bool,
    role: Option<RawRole>,
    deploy: Option<RawDeploy>,
    profiles: Option<RawProfiles>,
    accounts: Option<Vec<RawAccount>>,
    organization: Option<RawOrganization>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRole {
    name: Option<String>,
    stack_name: Option<String>,
    trusted_accounts: Option<Vec<String>>,
    policy: Option<serde_json::Value>,
    managed_policy_arns: Option<Vec<String>>,
    external_id: Option<String>,
    max_session_duration: Option<u32>,
    template: Option<PathBuf>,
    parameters: Option<BTreeMap<String, String>>,
    output_key: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDeploy {
    via: Option<String>,
    bootstrap_role: Option<String>,
    bootstrap_external_id: Option<String>,
    regions: Option<Vec<String>>,
    concurrency: Option<usize>,
    failure_tolerance: Option<usize>,
    stackset: Option<RawStackSet>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStackSet {
    name: Option<String>,
    permission_model: Option<String>,
    call_as: Option<String>,
    administration_role_arn: Option<String>,
    execution_role_name: Option<String>,
    auto_deployment: Option<bool>,
    retain_stacks_on_account_removal: Option<bool>,
    region_concurrency: Option<String>,
    concurrency_mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProfiles {
    source_profile: Option<String>,
    name: Option<String>,
    region: Option<String>,
    role_session_name: Option<String>,
    duration_seconds: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    id: String,
    name: Option<String>,
    regions: Option<Vec<String>>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganization {
    ous: Option<Vec<String>>,
    #[serde(default = "yes")]
    recursive: bool,
    tags: Option<BTreeMap<String, String>>,
    exclude: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

pub const DEFAULT_ROLE_NAME: &str = "RolecallTarget";
pub const DEFAULT_STACK_NAME: &str = "rolecall-target-role";
pub const DEFAULT_BOOTSTRAP_ROLE: &str = "OrganizationAccountAccessRole";
pub const DEFAULT_OUTPUT_KEY: &str = "RoleArn";
pub const DEFAULT_PROFILE_NAME: &str = "{account_name}";
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Above this, more concurrency only queues behind the API rate limits.
pub const MAX_CONCURRENCY: usize = 512;

// ---------------------------------------------------------------------------
// Pass 3: meaning.

struct Validator<'a> {
    root: &'a Node,
    sink: &'a mut Sink,
    base: &'a Path,
    read_file: ReadFile<'a>,
}

impl Validator<'_> {
    /// Position of `path` (`accounts[2].id`); the nearest existing ancestor
    /// when the key is absent.
    fn at(&self, path: &str) -> (usize, usize) {
        let mut node = self.root;
        // Where to point when the path stops existing: the last key found,
        // or the start of the file.
        let mut fallback = (1, 1);
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (key, indices) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            match node.entry(key) {
                Some((k, v)) => {
                    fallback = k.at();
                    node = if indices.is_empty() && is_null(v) { k } else { v };
                }
                None => return fallback,
            }
            for index in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
                match index.parse().ok().and_then(|i| node.index(i)) {
                    Some(child) => node = child,
                    None => return fallback,
                }
            }
        }
        node.at()
    }

    fn error(&mut self, path: &str, message: impl Into<String>, help: impl Into<String>) {
        let at = self.at(path);
        self.sink.error(at, path, message, help);
    }

    fn warning(&mut self, path: &str, message: impl Into<String>, help: impl Into<String>) {
        let at = self.at(path);
        self.sink.warning(at, path, message, help);
    }

    fn account_id(&mut self, path: &str, value: &str) -> Option<AccountId> {
        let id = AccountId::parse(value);
        if id.is_none() {
            if value == "*" {
                self.error(
                    path,
                    "`*` is not allowed: a trust principal of \"*\" would let any AWS account assume the role",
                    "list the 12-digit ids of the accounts that may assume the role",
                );
            } else {
                self.error(
                    path,
                    format!("\"{value}\" is not an AWS account id (expected exactly 12 digits)"),
                    "write the full 12-digit account id, in quotes",
                );
            }
        }
        id
    }

    fn regions(&mut self, path: &str, regions: &[String]) {
        let mut seen = BTreeSet::new();
        for (i, region) in regions.iter().enumerate() {
            let item = format!("{path}[{i}]");
            if !names::is_region(region) {
                self.error(
                    &item,
                    format!("\"{region}\" is not an AWS region name"),
                    "write a region such as us-east-1 or eu-west-1",
                );
            } else if !seen.insert(region) {
                self.error(
                    &item,
                    format!("region {region} is listed twice"),
                    "remove the duplicate",
                );
            }
        }
        if regions.is_empty() {
            self.error(path, "no regions listed", "list at least one region, e.g. [us-east-1]");
        }
    }

    fn tags(&mut self, path: &str, tags: &BTreeMap<String, String>) {
        for (key, value) in tags {
            let lower = key.to_ascii_lowercase();
            if lower.starts_with("aws:") || lower.starts_with("rolecall:") {
                self.error(
                    &format!("{path}.{key}"),
                    format!("tag key `{key}` uses a reserved prefix (aws: and rolecall: are not yours to set)"),
                    "rename the tag",
                );
            } else if key.is_empty() || key.len() > 128 || value.len() > 256 {
                self.error(
                    &format!("{path}.{key}"),
                    "tag keys must be 1-128 characters and values at most 256",
                    "shorten the tag",
                );
            }
        }
    }

    fn validate(mut self, raw: RawInventory, origin: &Path) -> Option<Inventory> {
        match raw.version {
            Some(1) => {}
            Some(v) => self.error(
                "version",
                format!("schema version {v} is not supported (this rolecall reads version 1)"),
                "set `version: 1`",
            ),
            None => self.error(
                "version",
                "`version` is missing",
                "add `version: 1` at the top of the file",
            ),
        }
        let source_account = match &raw.source_account {
            Some(s) => self.account_id("source_account", s),
            None => {
                self.error(
                    "source_account",
                    "`source_account` is missing",
                    "set it to the 12-digit id of the account whose principals will assume the role, in quotes",
                );
                None
            }
        };

        let role = self.role(raw.role.unwrap_or_default(), source_account.as_ref());
        let deploy = self.deploy(raw.deploy.unwrap_or_default());
        let profiles = self.profiles(raw.profiles.unwrap_or_default());
        let listed = raw.accounts.as_ref().is_some_and(|a| !a.is_empty());
        let accounts = self.accounts(raw.accounts.unwrap_or_default());
        let organization = raw.organization.map(|org| self.organization(org));

        if let Some(source) = &source_account
            && let Some(i) = accounts.iter().position(|a| &a.id == source)
            && !raw.allow_source_account
        {
            self.error(&format!("accounts[{i}].id"), format!("{source} is the source_account; deploying the role into the account that assumes it is usually a mistake"), "remove it from accounts, or set `allow_source_account: true` at the top level if you mean it");
        }
        let mut deploy = deploy;
        if let (Some(set), Some(role)) = (deploy.stackset.as_mut(), role.as_ref())
            && set.name.is_empty()
        {
            set.name = role.stack_name.clone();
        }
        self.stackset_targets(&deploy, &accounts, organization.as_ref());
        self.one_partition(role.as_ref(), &deploy, &accounts);
        if let Some(role) = &role {
            self.one_role_per_account(role, &deploy, &accounts);
            if let Some(seconds) = profiles.as_ref().and_then(|p| p.duration_seconds)
                && seconds > role.max_session_duration
            {
                self.error(
                    "profiles.duration_seconds",
                    format!(
                        "{seconds} exceeds role.max_session_duration ({})",
                        role.max_session_duration
                    ),
                    "lower it, or raise role.max_session_duration",
                );
            }
        }
        if !listed && organization.is_none() {
            self.error(
                "accounts",
                "no targets: neither `accounts` nor `organization` is given",
                "list accounts under `accounts:` or discover them with `organization: {ous: [...]}`",
            );
        }
        if let Some(org) = &organization {
            for (i, id) in org.exclude.iter().enumerate() {
                if accounts.iter().any(|a| &a.id == id) {
                    self.warning(
                        &format!("organization.exclude[{i}]"),
                        format!("{id} is listed under accounts and excluded here; it will be excluded"),
                        "remove it from one of the two lists",
                    );
                }
            }
        }
        // Profile names derive from names and ids checked above; with errors
        // there they would only repeat them. Discovered accounts are checked
        // where profiles are written (apply, profiles).
        if let (Some(spec), false) = (&profiles, self.sink.has_errors()) {
            let targets: Vec<Target> = accounts
                .iter()
                .map(|a| Target {
                    account_id: a.id.clone(),
                    account_name: a.name.clone().unwrap_or_else(|| a.id.to_string()),
                    regions: a.regions(&deploy.regions).to_vec(),
                    source: TargetSource::Inventory,
                    parent: None,
                })
                .collect();
            let role_name = role.as_ref().map_or(DEFAULT_ROLE_NAME, |r| r.name.as_str());
            let order = BTreeMap::new();
            let settings = crate::profiles::ProfileSettings {
                spec,
                role_name,
                external_id: None,
                region_order: &order,
            };
            for problem in crate::profiles::problems(&crate::profiles::for_targets(&settings, &targets)) {
                // Point at the account's name when it has one (renaming it is
                // one fix), else at the template.
                let i = accounts.iter().position(|a| a.id == problem.account_id);
                let path = match i {
                    Some(i) if accounts[i].name.is_some() && spec.name.contains("{account_name}") => {
                        format!("accounts[{i}].name")
                    }
                    _ => "profiles.name".to_owned(),
                };
                self.error(
                    &path,
                    problem.message,
                    "profile names come from profiles.name with each variable made safe (see inventory/README.md)",
                );
            }
        }

        Some(Inventory {
            origin: origin.to_path_buf(),
            source_account: source_account?,
            allow_source_account: raw.allow_source_account,
            role: role?,
            deploy,
            profiles: profiles?,
            accounts,
            organization,
        })
    }

    fn role(&mut self, raw: RawRole, source: Option<&AccountId>) -> Option<RoleSpec> {
        let name = raw.name.unwrap_or_else(|| DEFAULT_ROLE_NAME.to_owned());
        if let Err(why) = names::check_role_name_template(&name) {
            self.error(
                "role.name",
                format!("\"{name}\" is not a valid IAM role name: {why}"),
                "use 1-64 letters, digits and +=,.@_- (and {region} if the role goes to several regions)",
            );
        }
        let stack_name = raw.stack_name.unwrap_or_else(|| DEFAULT_STACK_NAME.to_owned());
        if let Err(why) = names::check_stack_name(&stack_name) {
            self.error(
                "role.stack_name",
                format!("\"{stack_name}\" is not a valid CloudFormation stack name: {why}"),
                "start with a letter; use up to 128 letters, digits and hyphens",
            );
        }

        let trusted_accounts = match raw.trusted_accounts {
            Some(list) => {
                if list.is_empty() {
                    self.error(
                        "role.trusted_accounts",
                        "the list is empty: nobody could assume the role",
                        "list at least one account id, or remove the key to trust source_account",
                    );
                }
                let mut ids = Vec::new();
                for (i, s) in list.iter().enumerate() {
                    let path = format!("role.trusted_accounts[{i}]");
                    if let Some(id) = self.account_id(&path, s) {
                        if ids.contains(&id) {
                            self.error(&path, format!("{id} is listed twice"), "remove the duplicate");
                        } else {
                            ids.push(id);
                        }
                    }
                }
                ids
            }
            None => source.into_iter().cloned().collect(),
        };

        if let Some(policy) = &raw.policy
            && (!policy.is_object() || policy.get("Statement").is_none())
        {
            self.error(
                "role.policy",
                "expected an IAM policy document (a mapping with `Version` and `Statement`)",
                "write the policy as YAML, e.g. {Version: \"2012-10-17\", Statement: [...]}, or remove it",
            );
        }
        let managed_policy_arns = raw.managed_policy_arns.unwrap_or_default();
        for (i, arn) in managed_policy_arns.iter().enumerate() {
            if let Err(why) = names::check_managed_policy(arn) {
                self.error(
                    &format!("role.managed_policy_arns[{i}]"),
                    format!("\"{arn}\" {why}"),
                    "write an AWS managed policy by name (ReadOnlyAccess, job-function/ViewOnlyAccess), which works in every partition, or a full ARN such as arn:aws:iam::<account>:policy/<name>",
                );
            }
        }
        if let Some(external_id) = &raw.external_id
            && let Err(why) = names::check_external_id(external_id)
        {
            self.error("role.external_id", why, "use 2-1224 letters, digits and +=,.@:/-");
        }
        let max_session_duration = raw.max_session_duration.unwrap_or(3600);
        if !(3600..=43200).contains(&max_session_duration) {
            self.error(
                "role.max_session_duration",
                format!("{max_session_duration} is out of range (IAM allows 3600 to 43200 seconds)"),
                "pick a value from 3600 (1 hour) to 43200 (12 hours)",
            );
        }
        let output_key = raw.output_key.unwrap_or_else(|| DEFAULT_OUTPUT_KEY.to_owned());
        if output_key.is_empty() || !output_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            self.error(
                "role.output_key",
                format!("\"{output_key}\" is not a CloudFormation output name"),
                "use letters and digits only",
            );
        }
        let tags = raw.tags.unwrap_or_default();
        self.tags("role.tags", &tags);
        if tags.len() > 48 {
            self.error(
                "role.tags",
                format!(
                    "{} tags; CloudFormation allows 50 per stack and rolecall uses 2",
                    tags.len()
                ),
                "use at most 48 tags",
            );
        }

        let template = match raw.template {
            None => {
                if raw.parameters.is_some() {
                    self.error(
                        "role.parameters",
                        "`parameters` only applies to your own `template`",
                        "remove it, or set `role.template`",
                    );
                }
                if raw.policy.is_none() {
                    self.warning(
                        "role.policy",
                        "no policy given: the role gets full access (Action \"*\" on Resource \"*\")",
                        "set role.policy to the least privilege the role needs",
                    );
                }
                None
            }
            Some(path) => {
                for (key, set) in [
                    ("policy", raw.policy.is_some()),
                    ("managed_policy_arns", !managed_policy_arns.is_empty()),
                    ("external_id", raw.external_id.is_some()),
                    ("max_session_duration", raw.max_session_duration.is_some()),
                ] {
                    if set {
                        self.error(
                            &format!("role.{key}"),
                            format!("`{key}` has no effect with your own `template`"),
                            "express it in the template (or pass it through `parameters`), or drop `template`",
                        );
                    }
                }
                let full = self.base.join(&path);
                let read = match inside_folder(&path) {
                    Ok(()) => (self.read_file)(&full),
                    Err(why) => Err(std::io::Error::other(format!(
                        "{why}: keep the template in the inventory's folder or below it, and give its path relative to the inventory"
                    ))),
                };
                match read {
                    Ok(body) if crate::template::check_body(&body).is_err() => {
                        let why = crate::template::check_body(&body).unwrap_err();
                        self.error(
                            "role.template",
                            format!("template {} {why}", full.display()),
                            "point role.template at a CloudFormation template (JSON or YAML) of at most 51,200 bytes",
                        );
                        None
                    }
                    Ok(body) => Some(CustomTemplate {
                        path,
                        body,
                        parameters: raw.parameters.unwrap_or_default(),
                    }),
                    Err(e) => {
                        self.error(
                            "role.template",
                            format!("cannot read template {}: {e}", full.display()),
                            "the path is relative to the inventory file; check it exists",
                        );
                        None
                    }
                }
            }
        };

        Some(RoleSpec {
            name,
            stack_name,
            trusted_accounts,
            policy: raw.policy,
            managed_policy_arns,
            external_id: raw.external_id,
            max_session_duration,
            template,
            output_key,
            tags,
        })
    }

    /// IAM role names are global to an account: the built-in template with a
    /// fixed name collides in the second region of an account
    /// (EntityAlreadyExists) and leaves a failed stack behind.
    fn one_role_per_account(&mut self, role: &RoleSpec, deploy: &Deploy, accounts: &[AccountEntry]) {
        if role.template.is_some() || role.name.contains("{region}") || names::check_role_name(&role.name).is_err() {
            return;
        }
        let multi = std::iter::once(("deploy.regions".to_owned(), deploy.regions.len()))
            .chain(
                accounts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| a.regions.as_ref().map(|r| (format!("accounts[{i}].regions"), r.len()))),
            )
            .find(|(_, n)| *n > 1);
        if let Some((path, n)) = multi {
            self.error(
                &path,
                format!("role \"{}\" (role.name) would be created in {n} regions of one account, but IAM role names are global to an account: the second stack fails with EntityAlreadyExists", role.name),
                format!("put {{region}} in the name (e.g. name: \"{}-{{region}}\") to get one role per region, or deploy to one region", role.name),
            );
        }
    }

    /// Service-managed stack sets target OUs: the accounts come from
    /// Organizations, narrowed by the listed accounts (INTERSECTION) or by
    /// `organization.exclude` (DIFFERENCE), never both; tag filters and
    /// per-account regions cannot be expressed.
    fn stackset_targets(&mut self, deploy: &Deploy, accounts: &[AccountEntry], org: Option<&OrgDiscovery>) {
        let Some(set) = &deploy.stackset else { return };
        if set.permission_model != PermissionModel::ServiceManaged {
            return;
        }
        let Some(org) = org else {
            self.error(
                "deploy.stackset.permission_model",
                "a service-managed stack set deploys to OUs, but `organization.ous` is not given",
                "add `organization: {ous: [...]}`, or use permission_model: self-managed to target listed accounts",
            );
            return;
        };
        if !accounts.is_empty() && !org.exclude.is_empty() {
            self.error(
                "organization.exclude",
                "a service-managed stack set can narrow its OUs to the listed accounts or exclude accounts, not both (AccountFilterType is INTERSECTION or DIFFERENCE)",
                "keep either `accounts` or `organization.exclude`",
            );
        }
        if !org.tags.is_empty() {
            self.error(
                "organization.tags",
                "a service-managed stack set targets whole OUs; a tag filter cannot be expressed",
                "remove the tag filter, or use permission_model: self-managed",
            );
        }
        if let Some(i) = accounts.iter().position(|a| a.regions.is_some()) {
            self.error(
                &format!("accounts[{i}].regions"),
                "a service-managed stack set deploys to the same regions in every account",
                "remove the per-account regions, or use permission_model: self-managed",
            );
        }
    }

    /// Credentials of one partition (aws, aws-us-gov, aws-cn …) never work in
    /// another: one run stays in one partition, and so do the ARNs it names.
    fn one_partition(&mut self, role: Option<&RoleSpec>, deploy: &Deploy, accounts: &[AccountEntry]) {
        let Some(first) = deploy.regions.first() else { return };
        let partition = Partition::of_region(first);
        let regions = deploy
            .regions
            .iter()
            .enumerate()
            .map(|(j, r)| (format!("deploy.regions[{j}]"), r));
        let listed = accounts.iter().enumerate().flat_map(|(i, a)| {
            a.regions
                .iter()
                .flatten()
                .enumerate()
                .map(move |(j, r)| (format!("accounts[{i}].regions[{j}]"), r))
        });
        for (path, region) in regions.chain(listed).collect::<Vec<_>>() {
            let other = Partition::of_region(region);
            if names::is_region(region) && other != partition {
                self.error(
                    &path,
                    format!("region {region} is in partition {}, but deploy.regions starts with {first} in partition {}; one run cannot cross partitions (their credentials are separate)", other.name, partition.name),
                    "use one inventory per partition",
                );
            }
        }
        for (i, arn) in role
            .map(|r| r.managed_policy_arns.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if let Some(other) = Partition::of_arn(arn)
                && other != partition
            {
                self.error(
                    &format!("role.managed_policy_arns[{i}]"),
                    format!(
                        "\"{arn}\" is in partition {}, but the stacks go to partition {} ({first})",
                        other.name, partition.name
                    ),
                    "write the policy by name for AWS managed policies, or use an ARN of the deployment's partition",
                );
            }
        }
    }

    fn deploy(&mut self, raw: RawDeploy) -> Deploy {
        let via = match raw.via.as_deref() {
            None | Some("bootstrap-role") => DeployVia::BootstrapRole,
            Some("stacksets") => DeployVia::Stacksets,
            Some(other) => {
                self.error(
                    "deploy.via",
                    format!("\"{other}\" is not a deployment method"),
                    "use `bootstrap-role` or `stacksets`",
                );
                DeployVia::BootstrapRole
            }
        };
        let bootstrap_role = raw.bootstrap_role.unwrap_or_else(|| DEFAULT_BOOTSTRAP_ROLE.to_owned());
        if let Err(why) = names::check_role_name(&bootstrap_role) {
            self.error(
                "deploy.bootstrap_role",
                format!("\"{bootstrap_role}\" is not a valid IAM role name: {why}"),
                "give the role's name (not its ARN), e.g. OrganizationAccountAccessRole",
            );
        }
        if let Some(external_id) = &raw.bootstrap_external_id
            && let Err(why) = names::check_external_id(external_id)
        {
            self.error(
                "deploy.bootstrap_external_id",
                why,
                "use 2-1224 letters, digits and +=,.@:/-",
            );
        }
        let regions = raw.regions.unwrap_or_else(|| vec!["us-east-1".to_owned()]);
        self.regions("deploy.regions", &regions);
        let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            self.error(
                "deploy.concurrency",
                format!("{concurrency} is out of range"),
                format!("use 1 to {MAX_CONCURRENCY}"),
            );
        }
        let stackset = match (via, raw.stackset) {
            (DeployVia::Stacksets, raw) => Some(self.stackset(raw.unwrap_or_default())),
            (DeployVia::BootstrapRole, Some(_)) => {
                self.error(
                    "deploy.stackset",
                    "`stackset` only applies with `via: stacksets`",
                    "set `deploy.via: stacksets`, or remove `deploy.stackset`",
                );
                None
            }
            (DeployVia::BootstrapRole, None) => None,
        };
        Deploy {
            via,
            stackset,
            bootstrap_role,
            bootstrap_external_id: raw.bootstrap_external_id,
            regions,
            concurrency,
            failure_tolerance: raw.failure_tolerance.unwrap_or(0),
        }
    }

    fn choice(&mut self, path: &str, value: Option<&str>, choices: [&str; 2]) -> bool {
        match value {
            None => false,
            Some(v) if v == choices[0] => false,
            Some(v) if v == choices[1] => true,
            Some(v) => {
                self.error(
                    path,
                    format!("\"{v}\" is not one of {} and {}", choices[0], choices[1]),
                    format!("use `{}` or `{}`", choices[0], choices[1]),
                );
                false
            }
        }
    }

    /// `deploy.stackset`. The defaults are for many accounts: AWS's own
    /// (one account at a time, no failure tolerated, regions one by one)
    /// would take hours at 1,000 accounts.
    fn stackset(&mut self, raw: RawStackSet) -> StackSetSpec {
        let service = self.choice(
            "deploy.stackset.permission_model",
            raw.permission_model.as_deref(),
            ["self-managed", "service-managed"],
        );
        let delegated_admin = self.choice(
            "deploy.stackset.call_as",
            raw.call_as.as_deref(),
            ["self", "delegated-admin"],
        );
        let sequential = self.choice(
            "deploy.stackset.region_concurrency",
            raw.region_concurrency.as_deref(),
            ["parallel", "sequential"],
        );
        let strict = self.choice(
            "deploy.stackset.concurrency_mode",
            raw.concurrency_mode.as_deref(),
            ["soft", "strict"],
        );
        if let Some(name) = &raw.name
            && let Err(why) = names::check_stack_name(name)
        {
            self.error(
                "deploy.stackset.name",
                format!("\"{name}\" is not a valid stack set name: {why}"),
                "start with a letter; use up to 128 letters, digits and hyphens",
            );
        }
        if let Some(arn) = &raw.administration_role_arn
            && !crate::partition::is_role_arn(arn)
        {
            self.error(
                "deploy.stackset.administration_role_arn",
                format!("\"{arn}\" is not an IAM role ARN"),
                "write arn:aws:iam::<source account>:role/AWSCloudFormationStackSetAdministrationRole, or remove it for AWS's default",
            );
        }
        if let Some(name) = &raw.execution_role_name
            && let Err(why) = names::check_role_name(name)
        {
            self.error(
                "deploy.stackset.execution_role_name",
                format!("\"{name}\" is not a valid IAM role name: {why}"),
                "give the role's name, e.g. AWSCloudFormationStackSetExecutionRole",
            );
        }
        let only = |set: bool, key: &str, model: &str| set.then(|| (key.to_owned(), model.to_owned()));
        let misplaced = if service {
            [
                only(
                    raw.administration_role_arn.is_some(),
                    "administration_role_arn",
                    "self-managed",
                ),
                only(raw.execution_role_name.is_some(), "execution_role_name", "self-managed"),
            ]
        } else {
            [
                only(raw.auto_deployment.is_some(), "auto_deployment", "service-managed"),
                only(
                    raw.retain_stacks_on_account_removal.is_some(),
                    "retain_stacks_on_account_removal",
                    "service-managed",
                ),
            ]
        };
        for (key, model) in misplaced.into_iter().flatten() {
            self.error(
                &format!("deploy.stackset.{key}"),
                format!("`{key}` only applies to {model} stack sets"),
                format!("remove it, or set permission_model: {model}"),
            );
        }
        if delegated_admin && !service {
            self.error(
                "deploy.stackset.call_as",
                "`delegated-admin` only applies to service-managed stack sets",
                "set permission_model: service-managed, or call_as: self",
            );
        }
        StackSetSpec {
            name: raw.name.unwrap_or_default(),
            permission_model: if service {
                PermissionModel::ServiceManaged
            } else {
                PermissionModel::SelfManaged
            },
            delegated_admin,
            administration_role_arn: raw.administration_role_arn,
            execution_role_name: raw.execution_role_name,
            auto_deployment: raw.auto_deployment.unwrap_or(true),
            retain_stacks_on_account_removal: raw.retain_stacks_on_account_removal.unwrap_or(false),
            region_parallel: !sequential,
            soft_failure_tolerance: !strict,
        }
    }

    fn profiles(&mut self, raw: RawProfiles) -> Option<ProfilesSpec> {
        let source_profile = raw.source_profile.unwrap_or_else(|| "default".to_owned());
        if let Err(why) = crate::profiles::check_name(&source_profile) {
            self.error(
                "profiles.source_profile",
                format!("\"{source_profile}\" cannot be an AWS CLI profile name: {why}"),
                "use the name of a profile in your AWS config",
            );
        }
        let name = raw.name.unwrap_or_else(|| DEFAULT_PROFILE_NAME.to_owned());
        let mut ok = true;
        if let Err(why) = crate::profiles::check_template(&name) {
            self.error(
                "profiles.name",
                why,
                "write the name from {account_name} {account_id} {role_name} {region} and text without whitespace or []\\;'\"#",
            );
            ok = false;
        }
        if let Some(region) = &raw.region
            && !names::is_region(region)
        {
            self.error(
                "profiles.region",
                format!("\"{region}\" is not an AWS region name"),
                "write a region such as us-east-1, or remove it to use each account's first region",
            );
        }
        if let Some(session) = &raw.role_session_name
            && (session.len() < 2
                || session.len() > 64
                || !session
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c)))
        {
            self.error(
                "profiles.role_session_name",
                format!("\"{session}\" is not a valid role session name"),
                "use 2-64 letters, digits and +=,.@-_",
            );
        }
        if let Some(seconds) = raw.duration_seconds
            && !(900..=43200).contains(&seconds)
        {
            self.error(
                "profiles.duration_seconds",
                format!("{seconds} is out of range"),
                "use 900 to 43200 seconds, at most role.max_session_duration",
            );
        }
        ok.then_some(ProfilesSpec {
            source_profile,
            name,
            region: raw.region,
            role_session_name: raw.role_session_name,
            duration_seconds: raw.duration_seconds,
        })
    }

    fn accounts(&mut self, raw: Vec<RawAccount>) -> Vec<AccountEntry> {
        let mut out: Vec<AccountEntry> = Vec::new();
        let mut names_seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, account) in raw.into_iter().enumerate() {
            let path = format!("accounts[{i}]");
            let id = self.account_id(&format!("{path}.id"), &account.id);
            if let Some(name) = &account.name {
                if name.trim().is_empty() {
                    self.error(
                        &format!("{path}.name"),
                        "the name is empty",
                        "give the account a short name, or remove the key",
                    );
                } else if let Some(first) = names_seen.insert(name.clone(), i) {
                    self.error(
                        &format!("{path}.name"),
                        format!("name \"{name}\" is already used by accounts[{first}]"),
                        "give every account a distinct name",
                    );
                }
            }
            if let Some(regions) = &account.regions {
                self.regions(&format!("{path}.regions"), regions);
            }
            let tags = account.tags.unwrap_or_default();
            let Some(id) = id else { continue };
            if let Some(first) = out.iter().position(|a| a.id == id) {
                self.error(
                    &format!("{path}.id"),
                    format!("account {id} is already listed as accounts[{first}]"),
                    "list every account once; merge the two entries",
                );
                continue;
            }
            out.push(AccountEntry {
                id,
                name: account.name,
                regions: account.regions,
                tags,
            });
        }
        out
    }

    fn organization(&mut self, raw: RawOrganization) -> OrgDiscovery {
        let ous = raw.ous.unwrap_or_default();
        if ous.is_empty() {
            self.error(
                "organization.ous",
                "no OUs to discover accounts from",
                "list OU ids (ou-xxxx-xxxxxxxx) or the root id (r-xxxx)",
            );
        }
        for (i, ou) in ous.iter().enumerate() {
            if !names::is_ou_or_root(ou) {
                self.error(&format!("organization.ous[{i}]"), format!("\"{ou}\" is not an OU id or root id"), "use ids like ou-ab12-cd34ef56 or r-ab12 (aws organizations list-roots / list-organizational-units-for-parent)");
            }
        }
        let mut exclude = Vec::new();
        for (i, s) in raw.exclude.unwrap_or_default().iter().enumerate() {
            if let Some(id) = self.account_id(&format!("organization.exclude[{i}]"), s) {
                exclude.push(id);
            }
        }
        OrgDiscovery {
            ous,
            recursive: raw.recursive,
            tags: raw.tags.unwrap_or_default(),
            exclude,
        }
    }
}

fn is_null(node: &Node) -> bool {
    matches!(&node.kind, Kind::Scalar { value, plain: true } if value.is_empty() || value == "~" || value == "null")
}

/// Diagnostics as text, one after another.
pub fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    if errors > 0 {
        out.push_str(&format!(
            "{errors} error{} in {}\n",
            if errors == 1 { "" } else { "s" },
            diagnostics[0].file.display()
        ));
    }
    out
}
