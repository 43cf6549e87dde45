//! Pass 1: the shape of the YAML tree (every unknown key with a suggestion,
//! every account id written as a bare number), before serde reads it.

use crate::diagnostic::Sink;
use crate::yaml::{Kind, Node};

pub(super) enum Shape {
    Map(&'static [(&'static str, Shape)]),
    /// A mapping with keys of the user's (role keys), each value of a shape.
    MapOf(&'static Shape),
    /// A mapping whose keys are those of several groups.
    Maps(&'static [&'static [(&'static str, Shape)]]),
    SeqOf(&'static Shape),
    AccountId,
    /// Anything: policy documents, tag maps, scalars.
    Any,
}

pub(super) const ACCOUNT_IDS: Shape = Shape::SeqOf(&Shape::AccountId);

/// The keys of `role:`.
const ROLE: &[(&str, Shape)] = &[
    ("name", Shape::Any),
    ("stack_name", Shape::Any),
    ("trusted_accounts", ACCOUNT_IDS),
    ("trusted_principals", Shape::Any),
    ("trust_conditions", Shape::Any),
    ("permissions_boundary", Shape::Any),
    ("path", Shape::Any),
    ("policy", Shape::Any),
    ("managed_policy_arns", Shape::Any),
    ("external_id", Shape::Any),
    ("max_session_duration", Shape::Any),
    ("template", Shape::Any),
    ("parameters", Shape::Any),
    ("output_key", Shape::Any),
    ("tags", Shape::Any),
];

/// What a role of `roles:` has besides the keys of `role:`: where it goes.
const CATALOG_ROLE: &[(&str, Shape)] = &[
    ("regions", Shape::Any),
    (
        "targets",
        Shape::Map(&[
            ("ous", Shape::Any),
            ("tags", Shape::Any),
            ("accounts", ACCOUNT_IDS),
            ("exclude", ACCOUNT_IDS),
        ]),
    ),
    (
        "profiles",
        Shape::Map(&[("name", Shape::Any), ("source_profile", Shape::Any)]),
    ),
];

pub(super) const INVENTORY: Shape = Shape::Map(&[
    ("version", Shape::Any),
    ("name", Shape::Any),
    ("source_account", Shape::AccountId),
    ("allow_source_account", Shape::Any),
    ("role", Shape::Map(ROLE)),
    ("roles", Shape::MapOf(&Shape::Maps(&[ROLE, CATALOG_ROLE]))),
    (
        "deploy",
        Shape::Map(&[
            ("via", Shape::Any),
            ("bootstrap_role", Shape::Any),
            ("bootstrap_external_id", Shape::Any),
            ("regions", Shape::Any),
            ("concurrency", Shape::Any),
            ("max_in_flight", Shape::Any),
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
                    ("max_concurrent_percentage", Shape::Any),
                    ("failure_tolerance_percentage", Shape::Any),
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
            ("mfa_serial", Shape::Any),
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
    (
        "registry",
        Shape::Map(&[("location", Shape::Any), ("ssm_prefix", Shape::Any)]),
    ),
]);

/// The keys of a mapping: each one of `groups`', its value of its shape.
fn check_map(entries: &[(Node, Node)], groups: &[&[(&'static str, Shape)]], path: &str, sink: &mut Sink) {
    for (k, v) in entries {
        let Some(name) = k.as_str() else { continue };
        let child = join(path, name);
        match groups.iter().flat_map(|g| g.iter()).find(|(key, _)| *key == name) {
            Some((_, shape)) => check_shape(v, shape, &child, sink),
            None => {
                let known: Vec<&str> = groups.iter().flat_map(|g| g.iter()).map(|(key, _)| *key).collect();
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

pub(super) fn check_shape(node: &Node, shape: &Shape, path: &str, sink: &mut Sink) {
    match (shape, &node.kind) {
        (Shape::Map(keys), Kind::Map(entries)) => check_map(entries, &[keys], path, sink),
        (Shape::Maps(groups), Kind::Map(entries)) => check_map(entries, groups, path, sink),
        (Shape::MapOf(value), Kind::Map(entries)) => {
            for (k, v) in entries {
                let Some(name) = k.as_str() else { continue };
                check_shape(v, value, &join(path, name), sink);
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
pub(super) fn check_keys(node: &Node, path: &str, sink: &mut Sink) {
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

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The closest valid key, if it is close enough to be a likely typo.
pub(super) fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

// ---------------------------------------------------------------------------
// Pass 2: typed raw structs.
