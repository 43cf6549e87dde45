//! The final summary of `apply`: a table and counts, or JSON.

use std::io::{self, Write};

use model::{Outcome, Status};
use serde::Serialize;

use crate::table::{Table, by_role, not_listed, several_roles};

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub blocked: usize,
    pub not_attempted: usize,
    pub orphaned: usize,
    pub deleted: usize,
    pub changed_since_plan: usize,
}

pub fn counts(outcomes: &[Outcome]) -> Counts {
    let mut c = Counts::default();
    for o in outcomes {
        *match o.status {
            Status::Created => &mut c.created,
            Status::Updated => &mut c.updated,
            Status::Unchanged => &mut c.unchanged,
            Status::Failed => &mut c.failed,
            Status::Blocked => &mut c.blocked,
            Status::NotAttempted => &mut c.not_attempted,
            Status::Orphaned => &mut c.orphaned,
            Status::Deleted => &mut c.deleted,
            Status::ChangedSincePlan => &mut c.changed_since_plan,
        } += 1;
    }
    c
}

/// What was done and the role ARN or the error: every stack that changed
/// or needs attention (every stack with `all`), the counts, one line per
/// role when there are several, and how many unchanged stacks were left out.
pub fn write_summary(w: &mut dyn Write, outcomes: &[Outcome], all: bool) -> io::Result<()> {
    write_table(w, outcomes, all)?;
    let c = counts(outcomes);
    let mut extra = String::new();
    for (n, what) in [
        (
            c.changed_since_plan,
            "changed since the plan (nothing done; run apply again)",
        ),
        (
            c.orphaned,
            "orphaned (left the inventory; `rolecall destroy --orphans` removes them)",
        ),
    ] {
        if n > 0 {
            extra.push_str(&format!(", {n} {what}"));
        }
    }
    writeln!(
        w,
        "Apply: {} created, {} updated, {} unchanged, {} failed, {} blocked, {} not attempted{extra} ({} stacks)",
        c.created,
        c.updated,
        c.unchanged,
        c.failed,
        c.blocked,
        c.not_attempted,
        outcomes.len()
    )?;
    per_role(w, outcomes, |s| match s {
        Status::Unchanged => "unchanged",
        s => s.as_str(),
    })?;
    if !all {
        not_listed(w, c.unchanged, "unchanged")?;
    }
    Ok(())
}

/// One line of counts per role, when the outcomes span several.
fn per_role(w: &mut dyn Write, outcomes: &[Outcome], words: fn(Status) -> &'static str) -> io::Result<()> {
    if !several_roles(outcomes.iter().map(|o| o.role.as_str())) {
        return Ok(());
    }
    for (role, counts) in by_role(outcomes.iter().map(|o| (o.role.as_str(), o.status))) {
        let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {}", words(*s))).collect();
        writeln!(w, "  {role}: {}", parts.join(", "))?;
    }
    Ok(())
}

/// The summary of `destroy`: stacks already gone are only counted
/// (listed with `all`).
pub fn write_destroy_summary(w: &mut dyn Write, outcomes: &[Outcome], all: bool) -> io::Result<()> {
    write_table(w, outcomes, all)?;
    let c = counts(outcomes);
    writeln!(
        w,
        "Destroy: {} deleted, {} already gone, {} failed, {} blocked, {} not attempted, {} changed since the plan ({} stacks)",
        c.deleted,
        c.unchanged,
        c.failed,
        c.blocked,
        c.not_attempted,
        c.changed_since_plan,
        outcomes.len()
    )?;
    per_role(w, outcomes, |s| match s {
        Status::Unchanged => "already gone",
        s => s.as_str(),
    })?;
    if !all {
        not_listed(w, c.unchanged, "already gone")?;
    }
    Ok(())
}

/// The table of what changed or needs attention (all rows with `all`),
/// with a blank line after it; nothing when no row is shown.
fn write_table(w: &mut dyn Write, outcomes: &[Outcome], all: bool) -> io::Result<()> {
    let mut table = Table::new(&[
        "ACCOUNT",
        "NAME",
        "ROLE",
        "REGION",
        "ACTION",
        "RESULT",
        "ROLE ARN / ERROR",
    ]);
    for o in outcomes.iter().filter(|o| all || o.status != Status::Unchanged) {
        let mut result = o.status.to_string();
        if !o.changes.is_empty() {
            let changes: Vec<String> = o
                .changes
                .iter()
                .map(|c| format!("{} {}", c.action, c.logical_id))
                .collect();
            result = format!("{result} ({})", changes.join(", "));
        }
        table.row(vec![
            o.account_id.to_string(),
            o.account_name.clone(),
            o.role.clone(),
            o.region.clone(),
            o.action.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            result,
            o.error.clone().or_else(|| o.role_arn.clone()).unwrap_or_default(),
        ]);
    }
    if !several_roles(outcomes.iter().map(|o| o.role.as_str())) {
        table.hide(2);
    }
    if table.is_empty() {
        return Ok(());
    }
    table.write(w)?;
    writeln!(w)
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    schema_version: u32,
    counts: Counts,
    outcomes: &'a [Outcome],
}

pub fn write_summary_json(w: &mut dyn Write, outcomes: &[Outcome]) -> io::Result<()> {
    serde_json::to_writer_pretty(
        &mut *w,
        &SummaryJson {
            schema_version: 1,
            counts: counts(outcomes),
            outcomes,
        },
    )?;
    writeln!(w)
}
