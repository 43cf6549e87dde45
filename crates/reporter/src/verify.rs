//! The `verify` report: a table with counts, or a JSON document (its
//! schema is schemas/verify.v1.schema.json).

use std::collections::BTreeMap;
use std::io::{self, Write};

use model::{Verdict, VerifyResult};
use serde::Serialize;

use crate::table::{Table, several_roles};

pub const SCHEMA_VERSION: u32 = 1;

const ALL: [VerifyResult; 5] = [
    VerifyResult::Assumable,
    VerifyResult::Denied,
    VerifyResult::WrongAccount,
    VerifyResult::Missing,
    VerifyResult::Error,
];

/// Verdicts by result, every result present (zero included).
pub fn counts(verdicts: &[Verdict]) -> BTreeMap<VerifyResult, usize> {
    let mut counts: BTreeMap<VerifyResult, usize> = ALL.iter().map(|r| (*r, 0)).collect();
    for v in verdicts {
        *counts.entry(v.result).or_default() += 1;
    }
    counts
}

fn summary_line(verdicts: &[Verdict]) -> String {
    let parts: Vec<String> = counts(verdicts)
        .iter()
        .map(|(r, n)| match r {
            VerifyResult::Error => format!("{n} error{}", if *n == 1 { "" } else { "s" }),
            r => format!("{n} {}", r.as_str().to_lowercase().replace('_', " ")),
        })
        .collect();
    format!("Verify: {} ({} checked)", parts.join(", "), verdicts.len())
}

/// Every row that is not ASSUMABLE (all with `all`), then the counts.
pub fn write_table(w: &mut dyn Write, verdicts: &[Verdict], all: bool) -> io::Result<()> {
    let mut table = Table::new(&["ACCOUNT", "NAME", "ROLE", "RESULT", "ROLE ARN", "REASON"]);
    let shown: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| all || v.result != VerifyResult::Assumable)
        .collect();
    for v in &shown {
        table.row(vec![
            v.account_id.to_string(),
            v.account_name.clone(),
            v.role.clone(),
            v.result.to_string(),
            v.role_arn.clone().unwrap_or_else(|| "-".to_owned()),
            v.reason.clone(),
        ]);
    }
    if !several_roles(verdicts.iter().map(|v| v.role.as_str())) {
        table.hide(2);
    }
    if !shown.is_empty() {
        table.write(w)?;
        writeln!(w)?;
    }
    writeln!(w, "{}", summary_line(verdicts))
}

#[derive(Serialize)]
struct Report<'a> {
    schema_version: u32,
    generated_at: &'a str,
    complete: bool,
    counts: BTreeMap<VerifyResult, usize>,
    verdicts: &'a [Verdict],
}

pub fn write_json(w: &mut dyn Write, generated_at: &str, verdicts: &[Verdict]) -> io::Result<()> {
    let report = Report {
        schema_version: SCHEMA_VERSION,
        generated_at,
        complete: !verdicts.iter().any(|v| v.result == VerifyResult::Error),
        counts: counts(verdicts),
        verdicts,
    };
    serde_json::to_writer_pretty(&mut *w, &report)?;
    writeln!(w)
}
