//! The ARN registry's bytes: pretty JSON, sorted by account then region
//! (as `planner::registry::next` leaves it), stable formatting. The
//! document is `model::registry`; its JSON Schema is
//! schemas/registry.v4.schema.json.

use std::collections::BTreeMap;

use model::registry::{Entry, Registry};

/// Pretty JSON with a trailing newline: the bytes that go to the file.
pub fn to_json(registry: &Registry) -> String {
    let mut text = serde_json::to_string_pretty(registry).expect("the registry always serialises");
    text.push('\n');
    text
}

/// The entries alone, as JSON (`registry export --format json`, `registry
/// list --json`).
pub fn entries_json(entries: &[&Entry]) -> String {
    let mut text = serde_json::to_string_pretty(entries).expect("entries always serialise");
    text.push('\n');
    text
}

/// CSV with a header (RFC 4180 quoting where a field needs it).
pub fn to_csv(entries: &[&Entry]) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = String::from("account_id,account_name,role,region,role_arn,status\n");
    for e in entries {
        let row = [
            e.account_id.as_str(),
            &e.account_name,
            &e.role,
            &e.region,
            e.role_arn.as_deref().unwrap_or_default(),
            &e.status.to_string(),
        ];
        out.push_str(&row.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// The key of an entry in the tfvars map: `ROLE/ACCOUNT_ID/REGION`.
pub fn map_key(e: &Entry) -> String {
    format!("{}/{}/{}", e.role, e.account_id, e.region)
}

/// A Terraform variable file: `rolecall_role_arns = { "ROLE/ACCOUNT/REGION"
/// = "ARN" … }`, for `variable "rolecall_role_arns" { type = map(string) }`.
/// Entries without an ARN are left out (there is nothing to assume).
pub fn to_tfvars(entries: &[&Entry]) -> String {
    let mut out = String::from("rolecall_role_arns = {\n");
    for e in entries {
        if let Some(arn) = &e.role_arn {
            out.push_str(&format!("  \"{}\" = \"{arn}\"\n", map_key(e)));
        }
    }
    out.push_str("}\n");
    out
}

/// The shell variable of an entry: `ROLECALL_<ROLE>_<ACCOUNT>_<REGION>`,
/// upper case, every other character `_`.
pub fn env_name(e: &Entry) -> String {
    format!("ROLECALL_{}_{}_{}", e.role, e.account_id, e.region)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Lines a shell can source (`export NAME='ARN'`); entries without an ARN
/// are left out. Two entries whose names would collide (role keys `a-b`
/// and `a_b`) are an error naming both.
pub fn to_env(entries: &[&Entry]) -> Result<String, String> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut out = String::new();
    for e in entries {
        let Some(arn) = &e.role_arn else { continue };
        let name = env_name(e);
        if let Some(other) = seen.insert(name.clone(), map_key(e)) {
            return Err(format!("{} and {other} both become {name}", map_key(e)));
        }
        // An ARN never holds a single quote.
        out.push_str(&format!("export {name}='{arn}'\n"));
    }
    Ok(out)
}

/// `registry list`: one row per entry.
pub fn write_list(w: &mut dyn std::io::Write, entries: &[&Entry]) -> std::io::Result<()> {
    let mut table = crate::table::Table::new(&["ACCOUNT", "NAME", "ROLE", "REGION", "STATUS", "ROLE ARN"]);
    for e in entries {
        table.row(vec![
            e.account_id.to_string(),
            e.account_name.clone(),
            e.role.clone(),
            e.region.clone(),
            e.status.to_string(),
            e.role_arn.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    table.write(w)
}
