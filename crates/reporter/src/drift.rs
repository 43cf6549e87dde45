//! The drift report: a table with counts, a JSON document (its schema is
//! schemas/drift.v2.schema.json), or Markdown for a CI job summary or a
//! ticket.

use std::collections::BTreeMap;
use std::io::{self, Write};

use model::{DriftFinding, DriftKind};
use serde::Serialize;

use crate::table::{Table, by_role, not_listed, several_roles};

pub const SCHEMA_VERSION: u32 = 2;

/// Findings by kind, every kind present (zero included).
pub fn counts(findings: &[DriftFinding]) -> BTreeMap<DriftKind, usize> {
    let mut counts: BTreeMap<DriftKind, usize> = DriftKind::ALL.iter().map(|k| (*k, 0)).collect();
    for f in findings {
        *counts.entry(f.kind).or_default() += 1;
    }
    counts
}

fn summary_line(findings: &[DriftFinding]) -> String {
    let counts = counts(findings);
    let parts: Vec<String> = counts
        .iter()
        .map(|(k, n)| match k {
            DriftKind::Error => format!("{n} error{}", if *n == 1 { "" } else { "s" }),
            k => format!("{n} {}", k.as_str().to_lowercase().replace('_', " ")),
        })
        .collect();
    format!("Drift: {} ({} checked)", parts.join(", "), findings.len())
}

/// Every finding that is not IN_SYNC (every row with `all`) with its
/// differences, the notes, the counts, one line per role when the check
/// spans several, and how many in-sync targets were left out.
pub fn write_table(w: &mut dyn Write, findings: &[DriftFinding], notes: &[String], all: bool) -> io::Result<()> {
    let mut table = Table::new(&["ACCOUNT", "NAME", "ROLE", "REGION", "RESULT", "REASON"]);
    for f in findings.iter().filter(|f| all || f.kind != DriftKind::InSync) {
        table.row(vec![
            f.account_id.to_string(),
            f.account_name.clone(),
            f.role.clone().unwrap_or_else(|| "-".to_owned()),
            f.region.clone().unwrap_or_else(|| "-".to_owned()),
            f.kind.to_string(),
            f.reason.clone(),
        ]);
        for d in &f.details {
            table.row(vec![
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("  {}: expected {}, actual {}", d.path, d.expected, d.actual),
            ]);
        }
    }
    let roles = several_roles(findings.iter().filter_map(|f| f.role.as_deref()));
    if !roles {
        table.hide(2);
    }
    if !table.is_empty() {
        table.write(w)?;
        writeln!(w)?;
    }
    for note in notes {
        writeln!(w, "note: {note}")?;
    }
    writeln!(w, "{}", summary_line(findings))?;
    if roles {
        for (role, counts) in by_role(findings.iter().filter_map(|f| Some((f.role.as_deref()?, f.kind)))) {
            let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            writeln!(w, "  {role}: {}", parts.join(", "))?;
        }
    }
    if !all {
        not_listed(w, counts(findings)[&DriftKind::InSync], "in sync")?;
    }
    if let Some(how) = repair(findings) {
        writeln!(w, "{how}")?;
    }
    Ok(())
}

/// How to put back what was found: DRIFTED roles with `apply
/// --revert-drift`, stale, missing or unhealthy stacks with a plain apply.
fn repair(findings: &[DriftFinding]) -> Option<String> {
    let counts = counts(findings);
    let drifted = counts[&DriftKind::Drifted];
    let applied = counts[&DriftKind::Stale] + counts[&DriftKind::Missing];
    let mut how = Vec::new();
    if drifted > 0 {
        how.push(
            "`rolecall apply -i FILE --revert-drift` puts the DRIFTED roles back as the inventory has them".to_owned(),
        );
    }
    if applied > 0 {
        how.push("`rolecall apply -i FILE` brings STALE and MISSING stacks to the inventory".to_owned());
    }
    (!how.is_empty()).then(|| format!("To repair: {}", how.join("; ")))
}

#[derive(Serialize)]
struct Report<'a> {
    schema_version: u32,
    generated_at: &'a str,
    complete: bool,
    counts: BTreeMap<DriftKind, usize>,
    notes: &'a [String],
    findings: &'a [DriftFinding],
}

pub fn write_json(
    w: &mut dyn Write,
    generated_at: &str,
    findings: &[DriftFinding],
    notes: &[String],
) -> io::Result<()> {
    let report = Report {
        schema_version: SCHEMA_VERSION,
        generated_at,
        complete: !findings.iter().any(|f| f.kind == DriftKind::Error),
        counts: counts(findings),
        notes,
        findings,
    };
    serde_json::to_writer_pretty(&mut *w, &report)?;
    writeln!(w)
}

/// A summary line, then one section per finding kind (in-sync targets are
/// only counted).
pub fn write_markdown(w: &mut dyn Write, findings: &[DriftFinding], notes: &[String]) -> io::Result<()> {
    let counts = counts(findings);
    let found: usize = counts
        .iter()
        .filter(|(k, _)| **k != DriftKind::InSync)
        .map(|(_, n)| n)
        .sum();
    if found == 0 {
        writeln!(w, "**rolecall drift: all {} targets in sync.**", findings.len())?;
    } else {
        let parts: Vec<String> = counts
            .iter()
            .filter(|(k, n)| **k != DriftKind::InSync && **n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        writeln!(
            w,
            "**rolecall drift: {found} finding{} in {} targets** ({}; {} in sync).",
            if found == 1 { "" } else { "s" },
            findings.len(),
            parts.join(", "),
            counts[&DriftKind::InSync]
        )?;
    }
    for note in notes {
        writeln!(w, "\n> {note}")?;
    }
    if let Some(how) = repair(findings) {
        writeln!(w, "\n{how}.")?;
    }
    for kind in DriftKind::ALL.iter().filter(|k| **k != DriftKind::InSync) {
        let of_kind: Vec<&DriftFinding> = findings.iter().filter(|f| f.kind == *kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        writeln!(w, "\n## {kind} ({})\n", of_kind.len())?;
        for f in of_kind {
            let region = f.region.as_deref().map(|r| format!(" {r}")).unwrap_or_default();
            writeln!(
                w,
                "- `{}` ({}){region}: {}",
                f.account_id,
                f.account_name,
                md(&f.reason)
            )?;
            for d in &f.details {
                writeln!(
                    w,
                    "  - `{}`: expected `{}`, actual `{}`",
                    d.path,
                    d.expected.replace('`', "'"),
                    d.actual.replace('`', "'")
                )?;
            }
        }
    }
    Ok(())
}

/// Markdown-safe text for one line.
fn md(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|")
}
