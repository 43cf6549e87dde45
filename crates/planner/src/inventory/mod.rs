//! Inventory files (schema version 1): parsing, defaults and validation.
//!
//! Three passes, so that one run reports every problem it can:
//! 1. a marked YAML tree finds every unknown key and every account id written
//!    as a bare number (YAML would have changed it), with positions;
//! 2. serde (`deny_unknown_fields`) turns the text into typed raw structs;
//! 3. semantic checks on those structs, located through the tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use model::{AccountId, Inventory, Target, TargetSource};

use crate::diagnostic::{Diagnostic, Severity, Sink};
use crate::names;
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
        role_at: "role".to_owned(),
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

mod accounts;
mod catalog;
mod deploy;
mod profiles;
mod raw;
mod role;
mod rules;
mod shape;

use raw::*;
use shape::{INVENTORY, check_keys, check_shape, join};

pub const DEFAULT_ROLE_NAME: &str = "RolecallTarget";
pub const DEFAULT_STACK_NAME: &str = "rolecall-target-role";
pub const DEFAULT_BOOTSTRAP_ROLE: &str = "OrganizationAccountAccessRole";
pub const DEFAULT_OUTPUT_KEY: &str = "RoleArn";
pub const DEFAULT_PROFILE_NAME: &str = "{account_name}";
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Accounts begun and not finished at most (waiting ones included): about
/// 200 MB of sessions and clients (BENCHMARKS.md).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
pub const MAX_MAX_IN_FLIGHT: usize = 100_000;
/// Above this, more concurrency only queues behind the API rate limits.
pub const MAX_CONCURRENCY: usize = 512;

// ---------------------------------------------------------------------------
// Pass 3: meaning.

struct Validator<'a> {
    root: &'a Node,
    sink: &'a mut Sink,
    base: &'a Path,
    read_file: ReadFile<'a>,
    /// Where the role being checked is: `role`, or `roles.<key>`.
    role_at: String,
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

    /// The path of a key of the role being checked: `role.name`,
    /// `roles.deploy.name`.
    fn role_key(&self, key: &str) -> String {
        format!("{}.{key}", self.role_at)
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

    /// The inventory's name: `name:`, else the file's stem; letters,
    /// digits, `-` and `_` (it goes into a file name and a marker line).
    fn name(&mut self, given: Option<&str>, origin: &Path) -> Option<String> {
        let (name, help) = match given {
            Some(name) => (name.to_owned(), "use 1-64 letters, digits, `-` and `_`"),
            None => (
                origin
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                "the inventory is named after its file unless it says `name:`; add `name:` with 1-64 letters, digits, `-` and `_`",
            ),
        };
        match crate::names::check_inventory_name(&name) {
            Ok(()) => Some(name),
            Err(why) => {
                let what = if given.is_some() { "" } else { " (the file's name)" };
                self.error(
                    "name",
                    format!("\"{name}\"{what} is not a valid inventory name: {why}"),
                    help,
                );
                None
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
        let name = self.name(raw.name.as_deref(), origin);
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

        let deploy = self.deploy(raw.deploy.unwrap_or_default());
        let profiles = self.profiles(raw.profiles.unwrap_or_default());
        let listed = raw.accounts.as_ref().is_some_and(|a| !a.is_empty());
        let accounts = self.accounts(raw.accounts.unwrap_or_default());
        let organization = raw.organization.map(|org| self.organization(org));
        let catalog = self.catalog(raw.role, raw.roles, source_account.as_ref(), profiles.as_ref());
        for (at, role) in &catalog {
            if let (Some(role), Some(spec)) = (role, &profiles)
                && crate::template::requires_mfa(role.spec.trust_conditions.as_ref())
                && spec.mfa_serial.is_none()
            {
                self.error(
                    "profiles.mfa_serial",
                    format!("{at}.trust_conditions require MFA, but the profiles name no MFA device: the AWS CLI could not assume the role"),
                    "set profiles.mfa_serial to the MFA device's ARN (arn:aws:iam::<source account>:mfa/<name>)",
                );
            }
        }

        if let Some(source) = &source_account
            && let Some(i) = accounts.iter().position(|a| &a.id == source)
            && !raw.allow_source_account
        {
            self.error(&format!("accounts[{i}].id"), format!("{source} is the source_account; deploying the role into the account that assumes it is usually a mistake"), "remove it from accounts, or set `allow_source_account: true` at the top level if you mean it");
        }
        let mut deploy = deploy;
        if let Some(set) = deploy.stackset.as_mut() {
            // One stack set per role, named after the role's stack_name;
            // `deploy.stackset.name` names the one set of a single role.
            if catalog.len() > 1 && !set.name.is_empty() {
                self.error(
                    "deploy.stackset.name",
                    format!("`name` names one stack set, and the catalog has {} roles: each role gets its own stack set, named after its stack_name", catalog.len()),
                    "remove deploy.stackset.name, and set roles.KEY.stack_name where a role's stack set needs another name",
                );
            }
            if let [(_, Some(role))] = catalog.as_slice()
                && set.name.is_empty()
            {
                set.name = role.spec.stack_name.clone();
            }
        }
        self.stackset_targets(&deploy, &accounts, organization.as_ref());
        for (at, role) in &catalog {
            if let Some(role) = role {
                self.stackset_role_targets(&deploy, at, role.targets.as_ref());
            }
        }
        for (at, role) in &catalog {
            self.role_at = at.clone();
            // A role's own regions replace deploy.regions for it.
            let role_deploy = match role.as_ref().and_then(|r| r.regions.clone()) {
                Some(regions) => model::Deploy {
                    regions,
                    ..deploy.clone()
                },
                None => deploy.clone(),
            };
            self.one_partition(role.as_ref().map(|r| &r.spec), &role_deploy, &accounts);
            if let Some(role) = role {
                self.one_role_per_account(&role.spec, &role_deploy, &accounts);
                if let Some(seconds) = profiles.as_ref().and_then(|p| p.duration_seconds)
                    && seconds > role.spec.max_session_duration
                {
                    self.error(
                        "profiles.duration_seconds",
                        format!(
                            "{seconds} exceeds {at}.max_session_duration ({})",
                            role.spec.max_session_duration
                        ),
                        format!("lower it, or raise {at}.max_session_duration"),
                    );
                }
            }
        }
        self.role_at = "role".to_owned();
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
        let checked = !self.sink.has_errors();
        for (_, role) in catalog.iter().filter(|_| checked) {
            let Some(role) = role else { continue };
            let spec = &role.profiles;
            let targets: Vec<Target> = accounts
                .iter()
                .map(|a| {
                    Target {
                        account_id: a.id.clone(),
                        account_name: a.name.clone().unwrap_or_else(|| a.id.to_string()),
                        regions: a.regions(role.regions.as_deref().unwrap_or(&deploy.regions)).to_vec(),
                        source: TargetSource::Inventory,
                        parent: None,
                        roles: Vec::new(),
                    }
                    .with_role(&role.key)
                })
                .collect();
            let order = BTreeMap::new();
            let settings = crate::profiles::ProfileSettings::of(role, &order);
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

        let raw_registry = raw.registry.unwrap_or_default();
        let location = raw_registry
            .location
            .and_then(|text| match crate::registry::location(&text) {
                Ok(location) => Some(location),
                Err(why) => {
                    self.error(
                        "registry.location",
                        why,
                        "give a path (registry.json) or an S3 object (s3://BUCKET/KEY)",
                    );
                    None
                }
            });
        if let Some(prefix) = &raw_registry.ssm_prefix
            && let Err(why) = crate::ssm::check_prefix(prefix)
        {
            self.error(
                "registry.ssm_prefix",
                why,
                "give a parameter path of your own, e.g. /rolecall/platform",
            );
        }
        let registry = model::RegistrySpec {
            location,
            ssm_prefix: raw_registry.ssm_prefix,
        };
        Some(Inventory {
            origin: origin.to_path_buf(),
            name: name?,
            source_account: source_account?,
            allow_source_account: raw.allow_source_account,
            roles: catalog.into_iter().map(|(_, r)| r).collect::<Option<Vec<_>>>()?,
            deploy,
            profiles: profiles?,
            accounts,
            organization,
            registry,
        })
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
