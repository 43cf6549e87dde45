//! The plan as a table with a summary line, or as JSON.

use std::io::{self, Write};

use model::{Action, Plan, Target};
use serde::Serialize;

use crate::table::{Table, by_role, not_listed, several_roles};

/// Counts by action, as shown in the summary and in JSON.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub recover: usize,
    pub wait: usize,
    pub no_op: usize,
    pub blocked: usize,
    pub delete: usize,
    pub orphaned: usize,
    pub revert_drift: usize,
    pub errors: usize,
    pub accounts: usize,
    pub stacks: usize,
}

pub fn summary(plan: &Plan) -> Summary {
    let mut accounts: Vec<&model::AccountId> = plan
        .entries
        .iter()
        .map(|e| &e.account_id)
        .chain(plan.errors.iter().map(|e| &e.account_id))
        .collect();
    accounts.sort();
    accounts.dedup();
    Summary {
        create: plan.count(Action::Create),
        update: plan.count(Action::Update),
        recover: plan.count(Action::Recover),
        wait: plan.count(Action::Wait),
        no_op: plan.count(Action::NoOp),
        blocked: plan.count(Action::Blocked),
        delete: plan.count(Action::Delete),
        orphaned: plan.count(Action::Orphaned),
        revert_drift: plan.count(Action::RevertDrift),
        errors: plan.errors.len(),
        accounts: accounts.len(),
        stacks: plan.entries.len(),
    }
}

/// The rows that need attention (every action but `no-op`, and errors;
/// every row with `all`), the summary line, one line per role when the plan
/// spans several, and how many unchanged rows were left out.
pub fn write_plan(w: &mut dyn Write, plan: &Plan, all: bool) -> io::Result<()> {
    for set in &plan.stack_sets {
        writeln!(w, "Stack set {}: {} ({})", set.name, set.action, set.reason)?;
    }
    if !plan.stack_sets.is_empty() {
        writeln!(w)?;
    }
    let mut table = Table::new(&["ACCOUNT", "NAME", "ROLE", "REGION", "ACTION", "REASON"]);
    let mut errors = plan.errors.iter().peekable();
    let shown = plan.entries.iter().filter(|e| all || e.action != Action::NoOp);
    for entry in shown {
        while let Some(e) = errors.next_if(|e| e.account_id <= entry.account_id) {
            table.row(error_row(e));
        }
        table.row(vec![
            entry.account_id.to_string(),
            entry.account_name.clone(),
            entry.role.clone(),
            entry.region.clone(),
            entry.action.to_string(),
            entry.reason.clone(),
        ]);
    }
    for e in errors {
        table.row(error_row(e));
    }
    let roles = several_roles(plan.entries.iter().map(|e| e.role.as_str()));
    if !roles {
        table.hide(2);
    }
    if !table.is_empty() {
        table.write(w)?;
        writeln!(w)?;
    }
    let s = summary(plan);
    // Destroy plans and orphans only when there are any: the usual line
    // stays as scripts know it.
    let mut extra = String::new();
    if s.delete > 0 {
        extra.push_str(&format!(", {} to delete", s.delete));
    }
    if s.revert_drift > 0 {
        extra.push_str(&format!(", {} drifted to revert", s.revert_drift));
    }
    if s.orphaned > 0 {
        extra.push_str(&format!(
            ", {} orphaned (left the inventory; `rolecall destroy --orphans` removes them)",
            s.orphaned
        ));
    }
    writeln!(
        w,
        "Plan: {} to create, {} to update, {} to recover, {} to wait for, {} unchanged, {} blocked{extra}, {} error{} ({} stack{} in {} account{})",
        s.create,
        s.update,
        s.recover,
        s.wait,
        s.no_op,
        s.blocked,
        s.errors,
        plural(s.errors),
        s.stacks,
        plural(s.stacks),
        s.accounts,
        plural(s.accounts),
    )?;
    if roles {
        let per_role = by_role(plan.entries.iter().map(|e| (e.role.as_str(), e.action)));
        for (role, counts) in per_role {
            let parts: Vec<String> = counts
                .iter()
                .map(|(a, n)| format!("{n} {}", action_words(*a)))
                .collect();
            writeln!(w, "  {role}: {}", parts.join(", "))?;
        }
    }
    if !all {
        not_listed(w, s.no_op, "unchanged")?;
    }
    Ok(())
}

/// How the summary names an action's count.
fn action_words(action: Action) -> &'static str {
    match action {
        Action::Create => "to create",
        Action::Update => "to update",
        Action::Recover => "to recover",
        Action::Wait => "to wait for",
        Action::NoOp => "unchanged",
        Action::Blocked => "blocked",
        Action::Delete => "to delete",
        Action::Orphaned => "orphaned",
        Action::RevertDrift => "to revert",
    }
}

fn error_row(e: &model::AccountError) -> Vec<String> {
    vec![
        e.account_id.to_string(),
        e.account_name.clone(),
        "-".to_owned(),
        e.region.clone().unwrap_or_else(|| "-".to_owned()),
        "error".to_owned(),
        e.message.clone(),
    ]
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[derive(Serialize)]
struct PlanJson<'a> {
    schema_version: u32,
    summary: Summary,
    entries: &'a [model::PlanEntry],
    errors: &'a [model::AccountError],
    /// `deploy.via: stacksets`: each role's stack set.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stack_sets: &'a [model::StackSetDecision],
}

pub fn write_plan_json(w: &mut dyn Write, plan: &Plan) -> io::Result<()> {
    let doc = PlanJson {
        schema_version: 1,
        summary: summary(plan),
        entries: &plan.entries,
        errors: &plan.errors,
        stack_sets: &plan.stack_sets,
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

pub fn write_targets(w: &mut dyn Write, targets: &[Target]) -> io::Result<()> {
    let mut table = Table::new(&["ACCOUNT", "NAME", "REGIONS", "ROLES", "SOURCE", "PARENT"]);
    for t in targets {
        table.row(vec![
            t.account_id.to_string(),
            t.account_name.clone(),
            t.regions.join(","),
            t.roles.iter().map(|r| r.role.as_str()).collect::<Vec<_>>().join(","),
            match t.source {
                model::TargetSource::Inventory => "inventory".to_owned(),
                model::TargetSource::Organization => "organization".to_owned(),
            },
            t.parent.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    table.write(w)?;
    let regions: usize = targets.iter().map(|t| t.regions.len()).sum();
    writeln!(
        w,
        "\n{} account{}, {} account/region pair{}",
        targets.len(),
        plural(targets.len()),
        regions,
        plural(regions)
    )
}

pub fn write_targets_json(w: &mut dyn Write, targets: &[Target]) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, targets)?;
    writeln!(w)
}

/// Stack parameters as the AWS CLI's `--parameters file://…` takes them:
/// `[{"ParameterKey": …, "ParameterValue": …}]`, sorted by key.
pub fn write_parameters_json(
    w: &mut dyn Write,
    parameters: &std::collections::BTreeMap<String, String>,
) -> io::Result<()> {
    let list: Vec<serde_json::Value> = parameters
        .iter()
        .map(|(k, v)| serde_json::json!({"ParameterKey": k, "ParameterValue": v}))
        .collect();
    serde_json::to_writer_pretty(&mut *w, &list)?;
    writeln!(w)
}
