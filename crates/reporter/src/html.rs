//! One self-contained HTML report of a plan, an apply or a drift check: a
//! summary (counts per result, per role), a matrix of accounts × role and
//! region coloured by result with filters (result, OU, role) and a search
//! box, and the details of every row that needs attention. Nothing is
//! loaded from the network (it is attached to tickets and CI artifacts and
//! opened offline). Every string from AWS or the inventory is text, never
//! markup: the static parts are escaped here, and the script sets only
//! `textContent` and `title` from data embedded as JSON whose `<`, `>` and
//! `&` are escaped (an account may be named `</script><img onerror=…>`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use model::{DriftFinding, DriftKind, Outcome, Plan, Status};
use serde::Serialize;

/// How a result is coloured, from fine to needs a human.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    Ok,
    Change,
    Warn,
    Bad,
}

/// One stack (or an account-level finding, with no role or region).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub account_id: String,
    pub account_name: String,
    /// The account's OU (its parent), `-` where unknown.
    pub ou: String,
    pub role: String,
    pub region: String,
    pub result: String,
    pub tone: Tone,
    pub reason: String,
    /// Differences, path by path: (path, expected, actual).
    pub details: Vec<(String, String, String)>,
}

/// What the report is of, and its rows.
#[derive(Clone, Debug)]
pub struct Report {
    /// `plan`, `apply` or `drift`.
    pub command: String,
    pub inventory: String,
    pub generated_at: String,
    pub rows: Vec<Row>,
}

/// Each account's OU, for the OU filter (accounts not found: `-`).
pub type Ous = BTreeMap<String, String>;

fn ou_of(ous: &Ous, account: &str) -> String {
    ous.get(account).cloned().unwrap_or_else(|| "-".to_owned())
}

/// The rows of a plan: one per stack, one per account error.
pub fn plan_rows(plan: &Plan, ous: &Ous) -> Vec<Row> {
    use model::Action::*;
    let mut rows: Vec<Row> = plan
        .entries
        .iter()
        .map(|e| Row {
            account_id: e.account_id.to_string(),
            account_name: e.account_name.clone(),
            ou: ou_of(ous, e.account_id.as_str()),
            role: e.role.clone(),
            region: e.region.clone(),
            result: e.action.to_string(),
            tone: match e.action {
                NoOp => Tone::Ok,
                Create | Update | Recover | Wait | Delete | RevertDrift => Tone::Change,
                Orphaned => Tone::Warn,
                Blocked => Tone::Bad,
            },
            reason: e.reason.clone(),
            details: Vec::new(),
        })
        .collect();
    rows.extend(plan.errors.iter().map(|e| Row {
        account_id: e.account_id.to_string(),
        account_name: e.account_name.clone(),
        ou: ou_of(ous, e.account_id.as_str()),
        role: "-".to_owned(),
        region: e.region.clone().unwrap_or_else(|| "-".to_owned()),
        result: "error".to_owned(),
        tone: Tone::Bad,
        reason: e.message.clone(),
        details: Vec::new(),
    }));
    rows
}

/// The rows of an apply (or destroy): one per stack, with the role ARN or
/// the error as the reason.
pub fn outcome_rows(outcomes: &[Outcome], ous: &Ous) -> Vec<Row> {
    outcomes
        .iter()
        .map(|o| Row {
            account_id: o.account_id.to_string(),
            account_name: o.account_name.clone(),
            ou: ou_of(ous, o.account_id.as_str()),
            role: o.role.clone(),
            region: o.region.clone(),
            result: o.status.to_string(),
            tone: match o.status {
                Status::Unchanged => Tone::Ok,
                Status::Created | Status::Updated | Status::Deleted => Tone::Change,
                Status::Orphaned | Status::NotAttempted | Status::ChangedSincePlan => Tone::Warn,
                Status::Failed | Status::Blocked => Tone::Bad,
            },
            reason: {
                let what = o.error.clone().or_else(|| o.role_arn.clone()).unwrap_or_default();
                let changes: Vec<String> = o
                    .changes
                    .iter()
                    .map(|c| format!("{} {}", c.action, c.logical_id))
                    .collect();
                if changes.is_empty() {
                    what
                } else {
                    format!("{what} ({})", changes.join(", "))
                }
            },
            details: Vec::new(),
        })
        .collect()
}

/// The rows of a drift check: one per finding.
pub fn drift_rows(findings: &[DriftFinding], ous: &Ous) -> Vec<Row> {
    findings
        .iter()
        .map(|f| Row {
            account_id: f.account_id.to_string(),
            account_name: f.account_name.clone(),
            ou: ou_of(ous, f.account_id.as_str()),
            role: f.role.clone().unwrap_or_else(|| "-".to_owned()),
            region: f.region.clone().unwrap_or_else(|| "-".to_owned()),
            result: f.kind.to_string(),
            tone: match f.kind {
                DriftKind::InSync => Tone::Ok,
                DriftKind::Stale | DriftKind::Missing | DriftKind::Orphaned | DriftKind::Uncovered => Tone::Warn,
                DriftKind::Drifted | DriftKind::Unhealthy | DriftKind::Error => Tone::Bad,
            },
            reason: f.reason.clone(),
            details: f
                .details
                .iter()
                .map(|d| (d.path.clone(), d.expected.clone(), d.actual.clone()))
                .collect(),
        })
        .collect()
}

/// One cell of the matrix: [column, result, reason].
type Cell<'a> = (usize, usize, &'a str);

/// One account of the matrix: [id, name, ou, cells].
type AccountRow<'a> = (&'a str, &'a str, &'a str, Vec<Cell<'a>>);

/// What the page's script reads: columns (role / region), results with
/// their tones, and one compact row per account, those that need
/// attention first.
#[derive(Serialize)]
struct Data<'a> {
    columns: Vec<(&'a str, &'a str)>,
    results: Vec<(&'a str, Tone)>,
    accounts: Vec<AccountRow<'a>>,
}

fn data(rows: &[Row]) -> Data<'_> {
    let columns: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.role.as_str(), r.region.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let results: Vec<(&str, Tone)> = rows
        .iter()
        .map(|r| (r.tone, r.result.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|(tone, result)| (result, tone))
        .collect();
    let column_of: BTreeMap<(&str, &str), usize> = columns.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let result_of: BTreeMap<&str, usize> = results.iter().enumerate().map(|(i, r)| (r.0, i)).collect();
    let mut accounts: BTreeMap<&str, AccountRow<'_>> = BTreeMap::new();
    for r in rows {
        let account = accounts.entry(r.account_id.as_str()).or_insert((
            r.account_id.as_str(),
            r.account_name.as_str(),
            r.ou.as_str(),
            Vec::new(),
        ));
        account.3.push((
            column_of[&(r.role.as_str(), r.region.as_str())],
            result_of[r.result.as_str()],
            r.reason.as_str(),
        ));
    }
    // What needs a human first, then by account id.
    let worst = |a: &AccountRow<'_>| a.3.iter().map(|c| results[c.1].1).max();
    let mut accounts: Vec<AccountRow<'_>> = accounts.into_values().collect();
    accounts.sort_by(|a, b| worst(b).cmp(&worst(a)).then(a.0.cmp(b.0)));
    Data {
        columns,
        results,
        accounts,
    }
}

/// Text for HTML: the five characters that could start markup or end an
/// attribute, escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that can sit inside `<script>`: no `<`, `>` or `&` that could end
/// the element or start a comment.
fn script_json(value: &impl Serialize) -> io::Result<String> {
    let json = serde_json::to_string(value)?;
    Ok(json
        .replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029"))
}

const STYLE: &str = include_str!("html/report.css");
const SCRIPT: &str = include_str!("html/report.js");

pub fn write_html(w: &mut dyn Write, report: &Report) -> io::Result<()> {
    let rows = &report.rows;
    let accounts: BTreeSet<&str> = rows.iter().map(|r| r.account_id.as_str()).collect();
    let title = format!("rolecall {} — {}", report.command, report.inventory);
    writeln!(
        w,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
    )?;
    writeln!(
        w,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(w, "<meta name=\"generator\" content=\"rolecall\">")?;
    writeln!(
        w,
        "<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>",
        esc(&title)
    )?;
    writeln!(
        w,
        "<header><h1>{}</h1><p class=\"meta\">{} stack{} in {} account{} · generated {}</p></header>",
        esc(&title),
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        accounts.len(),
        if accounts.len() == 1 { "" } else { "s" },
        esc(&report.generated_at)
    )?;
    write_summary(w, rows)?;
    writeln!(
        w,
        "<section id=\"matrix\"><h2>Accounts × role and region</h2>\n<div class=\"filters\">\
         <label>Result <select id=\"f-result\"><option value=\"\">all</option></select></label> \
         <label>OU <select id=\"f-ou\"><option value=\"\">all</option></select></label> \
         <label>Role <select id=\"f-role\"><option value=\"\">all</option></select></label> \
         <label>Search <input id=\"f-search\" type=\"search\" placeholder=\"account id, name or reason\"></label> \
         <span id=\"shown\"></span></div>\n\
         <noscript><p>The matrix and its filters need JavaScript; the summary and the details below do not.</p></noscript>\n\
         <div class=\"scroll\"><table id=\"grid\"><thead></thead><tbody></tbody></table></div>\n\
         <p id=\"more\"></p></section>"
    )?;
    write_details(w, rows)?;
    writeln!(
        w,
        "<script type=\"application/json\" id=\"data\">{}</script>",
        script_json(&data(rows))?
    )?;
    writeln!(w, "<script>\n{SCRIPT}</script>\n</body>\n</html>")
}

/// Counts per result (rows) and per role (columns).
fn write_summary(w: &mut dyn Write, rows: &[Row]) -> io::Result<()> {
    let roles: BTreeSet<&str> = rows.iter().map(|r| r.role.as_str()).filter(|r| *r != "-").collect();
    /// All of one result, and per role.
    type Counts<'a> = (usize, BTreeMap<&'a str, usize>);
    let mut counts: BTreeMap<(Tone, &str), Counts<'_>> = BTreeMap::new();
    for r in rows {
        let c = counts.entry((r.tone, r.result.as_str())).or_default();
        c.0 += 1;
        *c.1.entry(r.role.as_str()).or_default() += 1;
    }
    writeln!(
        w,
        "<section id=\"summary\"><h2>Summary</h2>\n<table class=\"counts\"><thead><tr><th>result</th><th>all</th>"
    )?;
    let several = roles.len() > 1;
    if several {
        for role in &roles {
            write!(w, "<th>{}</th>", esc(role))?;
        }
    }
    writeln!(w, "</tr></thead><tbody>")?;
    for ((tone, result), (all, by_role)) in counts.iter().rev() {
        let tone = serde_json::to_value(tone)?.as_str().unwrap_or_default().to_owned();
        write!(
            w,
            "<tr data-result=\"{r}\"><td><span class=\"tag {tone}\">{r}</span></td><td class=\"n\" id=\"count-{r}\">{all}</td>",
            r = esc(result)
        )?;
        if several {
            for role in &roles {
                write!(w, "<td class=\"n\">{}</td>", by_role.get(role).copied().unwrap_or(0))?;
            }
        }
        writeln!(w, "</tr>")?;
    }
    writeln!(w, "</tbody></table></section>")
}

/// Every row that is not fine, with its reason and differences.
fn write_details(w: &mut dyn Write, rows: &[Row]) -> io::Result<()> {
    let attention: Vec<&Row> = rows.iter().filter(|r| r.tone != Tone::Ok).collect();
    writeln!(w, "<section id=\"details\"><h2>Details ({})</h2>", attention.len())?;
    if attention.is_empty() {
        writeln!(w, "<p class=\"none\">Nothing needs attention.</p>")?;
    }
    for r in attention {
        let tone = serde_json::to_value(r.tone)?.as_str().unwrap_or_default().to_owned();
        writeln!(
            w,
            "<article class=\"finding\" data-account=\"{id}\" data-result=\"{result}\"><h3><span class=\"tag {tone}\">{result}</span> <span class=\"acct\">{id}</span> {name} <span class=\"where\">{role} · {region}</span></h3><p class=\"reason\">{reason}</p>",
            id = esc(&r.account_id),
            result = esc(&r.result),
            name = esc(&r.account_name),
            role = esc(&r.role),
            region = esc(&r.region),
            reason = esc(&r.reason),
        )?;
        if !r.details.is_empty() {
            writeln!(
                w,
                "<table class=\"diff\"><thead><tr><th>path</th><th>expected</th><th>actual</th></tr></thead><tbody>"
            )?;
            for (path, expected, actual) in &r.details {
                writeln!(
                    w,
                    "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                    esc(path),
                    esc(expected),
                    esc(actual)
                )?;
            }
            writeln!(w, "</tbody></table>")?;
        }
        writeln!(w, "</article>")?;
    }
    writeln!(w, "</section>")
}
