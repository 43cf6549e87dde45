//! Drift: what a deployed role stack should look like, compared with what is
//! there. Pure: the executor reads (the stack, the live IAM role) and this
//! module judges. Policy documents are compared by meaning, never as text:
//! statement and key order, a single value or a one-element list, an
//! account id or its root ARN as principal, and the URL-encoded JSON that
//! IAM returns all compare equal when they mean the same.

use std::collections::{BTreeMap, BTreeSet};

use model::{
    AccountError, Action, Decision, Desired, DriftDetail, DriftFinding, DriftKind, Inventory, LiveRole, Observed, Plan,
    PlanEntry, RoleRepair, RoleSpec, StackInfo, TAG_FINGERPRINT, TAG_MANAGED_BY,
};
use serde_json::{Value, json};

use crate::partition::Partition;

/// What the live role must be, for the built-in template. `None` for an
/// own template: rolecall cannot know its role, and only checks it exists.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedRole {
    pub name: String,
    pub trust: Value,
    /// Inline policies by name.
    pub inline: BTreeMap<String, Value>,
    pub managed: BTreeSet<String>,
    pub max_session_duration: u32,
    /// The boundary's ARN, when the role has one.
    pub permissions_boundary: Option<String>,
    /// The partition the role is in: an account-id principal in a policy
    /// means that partition's root ARN.
    pub partition: Partition,
}

/// The role (of the catalog) the inventory puts in `region`, in
/// `partition`.
pub fn expected_role(role: &RoleSpec, region: &str, partition: Partition) -> Option<ExpectedRole> {
    if role.template.is_some() {
        return None;
    }
    let condition = crate::template::trust_condition(role);
    let principals = role
        .trusted_accounts
        .iter()
        .map(|account| partition.root_arn(account.as_str()))
        .chain(role.trusted_principals.iter().cloned());
    let statements: Vec<Value> = principals
        .map(|principal| {
            let mut s = json!({
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": "sts:AssumeRole",
            });
            if let Some(condition) = &condition {
                s["Condition"] = condition.clone();
            }
            s
        })
        .collect();
    let managed = role
        .managed_policy_arns
        .iter()
        .map(|p| partition.managed_policy_arn(p))
        .collect();
    Some(ExpectedRole {
        name: crate::names::role_name_in(&role.name, region),
        trust: json!({"Version": "2012-10-17", "Statement": statements}),
        inline: role
            .policy
            .iter()
            .map(|p| ("rolecall-policy".to_owned(), p.clone()))
            .collect(),
        managed,
        max_session_duration: role.max_session_duration,
        permissions_boundary: role
            .permissions_boundary
            .as_deref()
            .map(|p| partition.managed_policy_arn(p)),
        partition,
    })
}

/// The stack's own state: the stack when it is healthy and current (then
/// the live role decides), else the finding and why.
pub fn stack_state<'a>(desired: &Desired, observed: &'a Observed) -> Result<&'a StackInfo, (DriftKind, String)> {
    let stack = match observed {
        Observed::Absent => return Err((DriftKind::Missing, format!("no stack {}", desired.stack_name))),
        Observed::Present(s) => s,
    };
    if !crate::decide::ours(stack) {
        return Err((
            DriftKind::Missing,
            format!(
                "stack {} exists but was not created by rolecall (no {TAG_MANAGED_BY} tag)",
                desired.stack_name
            ),
        ));
    }
    if !crate::status::healthy(&stack.status) {
        return Err((DriftKind::Unhealthy, status_with_reason(stack)));
    }
    if stack.tags.get(TAG_FINGERPRINT) != Some(&desired.fingerprint) {
        return Err((
            DriftKind::Stale,
            "the stack's rolecall:fingerprint differs from the inventory's: the inventory changed and nobody applied, or someone changed the stack".to_owned(),
        ));
    }
    Ok(stack)
}

fn status_with_reason(stack: &StackInfo) -> String {
    match &stack.status_reason {
        Some(r) if !r.is_empty() => format!("{} ({r})", stack.status),
        _ => stack.status.clone(),
    }
}

/// Every difference between the expected and the live role, path by path.
/// `live: None` means the role is gone (deleted or renamed).
pub fn compare_role(expected: &ExpectedRole, live: Option<&LiveRole>) -> Vec<DriftDetail> {
    let Some(live) = live else {
        return vec![detail(
            "role",
            &expected.name,
            "missing (deleted or renamed outside CloudFormation)",
        )];
    };
    let mut out = Vec::new();
    let partition = expected.partition;
    out.extend(compare_policy(
        "AssumeRolePolicyDocument",
        &expected.trust,
        &live.trust,
        partition,
    ));
    let names: BTreeSet<&String> = expected.inline.keys().chain(live.inline.keys()).collect();
    for name in names {
        let path = format!("Policies.{name}");
        match (expected.inline.get(name), live.inline.get(name)) {
            (Some(want), Some(have)) => out.extend(compare_policy(&path, want, have, partition)),
            (Some(want), None) => out.push(detail(&path, &canonical(want, partition).to_string(), "missing")),
            (None, Some(have)) => out.push(detail(&path, "absent", &canonical(have, partition).to_string())),
            (None, None) => {}
        }
    }
    for arn in expected.managed.difference(&live.managed) {
        out.push(detail("ManagedPolicyArns", arn, "not attached"));
    }
    for arn in live.managed.difference(&expected.managed) {
        out.push(detail("ManagedPolicyArns", "not attached", arn));
    }
    if live.permissions_boundary != expected.permissions_boundary {
        let show = |b: &Option<String>| b.clone().unwrap_or_else(|| "none".to_owned());
        out.push(detail(
            "PermissionsBoundary",
            &show(&expected.permissions_boundary),
            &show(&live.permissions_boundary),
        ));
    }
    if live.max_session_duration != expected.max_session_duration {
        out.push(detail(
            "MaxSessionDuration",
            &expected.max_session_duration.to_string(),
            &live.max_session_duration.to_string(),
        ));
    }
    out
}

/// The IAM calls that make `live` the `expected` role: only what differs,
/// in an order that never widens access on the way (policies that go are
/// removed before the trust policy and new policies are put).
pub fn repairs(expected: &ExpectedRole, live: &LiveRole) -> Vec<RoleRepair> {
    let partition = expected.partition;
    let same = |a: &Value, b: &Value| compare_policy("", a, b, partition).is_empty();
    let mut out = Vec::new();
    for name in live.inline.keys().filter(|n| !expected.inline.contains_key(*n)) {
        out.push(RoleRepair::DeleteInline(name.clone()));
    }
    for arn in live.managed.difference(&expected.managed) {
        out.push(RoleRepair::Detach(arn.clone()));
    }
    if !same(&expected.trust, &live.trust) {
        out.push(RoleRepair::Trust(expected.trust.to_string()));
    }
    for (name, want) in &expected.inline {
        if live.inline.get(name).is_none_or(|have| !same(want, have)) {
            out.push(RoleRepair::PutInline(name.clone(), want.to_string()));
        }
    }
    for arn in expected.managed.difference(&live.managed) {
        out.push(RoleRepair::Attach(arn.clone()));
    }
    if live.permissions_boundary != expected.permissions_boundary {
        out.push(RoleRepair::Boundary(expected.permissions_boundary.clone()));
    }
    if live.max_session_duration != expected.max_session_duration {
        out.push(RoleRepair::MaxSessionDuration(expected.max_session_duration));
    }
    out
}

/// What `apply --revert-drift` does with one stack's drift finding: revert
/// a DRIFTED role; nothing for one in sync; a stack that is missing, stale
/// or unhealthy needs a plain `apply` first (its template is not what
/// runs). Account-level findings (uncovered, orphaned, errors) are not
/// stacks to revert: `None`.
pub fn revert(finding: &DriftFinding) -> Option<Decision> {
    finding.region.as_ref()?;
    let decision = |action, reason| Decision {
        action,
        reason,
        differences: Vec::new(),
    };
    match finding.kind {
        DriftKind::InSync => Some(decision(Action::NoOp, finding.reason.clone())),
        DriftKind::Drifted => {
            let mut paths: Vec<&str> = finding.details.iter().map(|d| d.path.as_str()).collect();
            paths.dedup();
            Some(decision(
                Action::RevertDrift,
                format!("{}: {}", finding.reason, paths.join(", ")),
            ))
        }
        DriftKind::Missing | DriftKind::Stale | DriftKind::Unhealthy => Some(decision(
            Action::Blocked,
            format!(
                "{}: {}; run `rolecall apply` (without --revert-drift) to bring the stack to the inventory first",
                finding.kind, finding.reason
            ),
        )),
        DriftKind::Uncovered | DriftKind::Orphaned | DriftKind::Error => None,
    }
}

/// The plan of `apply --revert-drift` from the drift check's findings: a
/// row per stack (`revert`), the check's errors as account errors, sorted.
pub fn revert_plan(findings: &[DriftFinding]) -> Plan {
    let mut plan = Plan::default();
    for f in findings {
        match revert(f) {
            Some(decision) => plan.entries.push(PlanEntry {
                account_id: f.account_id.clone(),
                account_name: f.account_name.clone(),
                role: f.role.clone().unwrap_or_default(),
                region: f.region.clone().unwrap_or_default(),
                action: decision.action,
                reason: decision.reason,
                differences: decision.differences,
                stack_status: None,
                stack_id: None,
            }),
            None if f.kind == DriftKind::Error => plan.errors.push(AccountError {
                account_id: f.account_id.clone(),
                account_name: f.account_name.clone(),
                region: f.region.clone(),
                message: f.reason.clone(),
            }),
            None => {}
        }
    }
    plan.sort();
    plan
}

fn detail(path: &str, expected: &str, actual: &str) -> DriftDetail {
    DriftDetail {
        path: path.to_owned(),
        expected: expected.to_owned(),
        actual: actual.to_owned(),
    }
}

/// Differences between two policy documents by meaning: `Version`, then
/// each statement the one has and the other lacks. `partition`: where the
/// policies live (an account-id principal is its root ARN there).
pub fn compare_policy(path: &str, expected: &Value, actual: &Value, partition: Partition) -> Vec<DriftDetail> {
    let (want, have) = (canonical(expected, partition), canonical(actual, partition));
    let mut out = Vec::new();
    if want.get("Version") != have.get("Version") {
        out.push(detail(
            &format!("{path}.Version"),
            &show(want.get("Version")),
            &show(have.get("Version")),
        ));
    }
    let statements = |v: &Value| -> BTreeSet<String> {
        v.get("Statement")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Value::to_string).collect())
            .unwrap_or_default()
    };
    let (want_s, have_s) = (statements(&want), statements(&have));
    for s in want_s.difference(&have_s) {
        out.push(detail(&format!("{path}.Statement"), s, "missing"));
    }
    for s in have_s.difference(&want_s) {
        out.push(detail(&format!("{path}.Statement"), "absent", s));
    }
    out
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(
        || "absent".to_owned(),
        |v| v.as_str().map_or_else(|| v.to_string(), str::to_owned),
    )
}

/// A policy document reduced to its meaning: one statement list, `Sid`s
/// dropped, every value that IAM accepts as a string or a list of strings
/// a sorted, deduplicated list, account-id principals as root ARNs of
/// `partition`. serde_json's maps are ordered, so key order never matters.
pub fn canonical(doc: &Value, partition: Partition) -> Value {
    let mut doc = doc.clone();
    let statements = match doc.get_mut("Statement").map(Value::take) {
        Some(Value::Array(list)) => list,
        Some(Value::Null) | None => Vec::new(),
        Some(single) => vec![single],
    };
    let statements: Vec<Value> = statements
        .into_iter()
        .map(|s| canonical_statement(s, partition))
        .collect();
    let mut sorted: Vec<Value> = statements;
    sorted.sort_by_key(Value::to_string);
    sorted.dedup();
    if let Some(map) = doc.as_object_mut() {
        map.insert("Statement".to_owned(), Value::Array(sorted));
    }
    doc
}

fn canonical_statement(statement: Value, partition: Partition) -> Value {
    let Value::Object(mut map) = statement else {
        return statement;
    };
    map.remove("Sid");
    for key in ["Action", "NotAction", "Resource", "NotResource"] {
        if let Some(v) = map.get_mut(key) {
            *v = string_set(v.take(), |s| s);
        }
    }
    for key in ["Principal", "NotPrincipal"] {
        if let Some(Value::Object(principals)) = map.get_mut(key) {
            for (kind, v) in principals.iter_mut() {
                let root = kind == "AWS";
                *v = string_set(v.take(), |s| if root { partition.principal_arn(&s) } else { s });
            }
        }
    }
    if let Some(Value::Object(conditions)) = map.get_mut("Condition") {
        for operators in conditions.values_mut() {
            if let Value::Object(keys) = operators {
                for v in keys.values_mut() {
                    *v = string_set(v.take(), |s| s);
                }
            }
        }
    }
    Value::Object(map)
}

/// `"x"` and `["x"]` are one value to IAM; order inside a list is not
/// meaningful. Non-string values stay as they are.
fn string_set(v: Value, f: impl Fn(String) -> String) -> Value {
    let items = match v {
        Value::String(s) => vec![s],
        Value::Array(list) if list.iter().all(Value::is_string) => {
            list.into_iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
        }
        other => return other,
    };
    let set: BTreeSet<String> = items.into_iter().map(f).collect();
    Value::Array(set.into_iter().map(Value::String).collect())
}

/// A policy document as IAM returns it: URL-encoded JSON (GetRole,
/// GetRolePolicy), or plain JSON.
pub fn parse_document(text: &str) -> Result<Value, String> {
    let decoded = percent_decode(text);
    serde_json::from_str(&decoded)
        .or_else(|_| serde_json::from_str(text))
        .map_err(|e| format!("not a JSON policy document: {e}"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Coverage: ACTIVE accounts the inventory leaves out (`UNCOVERED`), and
/// targets that are not ACTIVE any more (`ORPHANED`; they are not checked
/// further). `members`: every account of the organization with its status,
/// when known; `whole_org` (`--org`): look for uncovered accounts in all of
/// it, else only in `discovered`, what the inventory's OUs hold.
pub fn coverage(
    inv: &Inventory,
    targets: &[model::Target],
    discovered: &[model::DiscoveredAccount],
    members: Option<&[model::OrgAccount]>,
    whole_org: bool,
) -> Vec<model::DriftFinding> {
    let excluded = |id: &model::AccountId| {
        inv.organization.as_ref().is_some_and(|o| o.exclude.contains(id))
            || (id == &inv.source_account && !inv.allow_source_account)
    };
    let targeted = |id: &model::AccountId| targets.iter().any(|t| &t.account_id == id);
    let finding = |id: &model::AccountId, name: &str, kind, reason: String| model::DriftFinding {
        account_id: id.clone(),
        account_name: name.to_owned(),
        role: None,
        region: None,
        kind,
        reason,
        details: Vec::new(),
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let active: Vec<(&model::AccountId, &str, &str)> = match members.filter(|_| whole_org) {
        Some(members) => members
            .iter()
            .filter(|m| m.is_active())
            .map(|m| (&m.id, m.name.as_str(), "the organization"))
            .collect(),
        None => discovered
            .iter()
            .map(|d| (&d.id, d.name.as_str(), "the inventory's OUs"))
            .collect(),
    };
    for (id, name, within) in active {
        if !targeted(id) && !excluded(id) && seen.insert(id.clone()) {
            out.push(finding(
                id,
                name,
                model::DriftKind::Uncovered,
                format!("ACTIVE in {within}, but not a target of the inventory (nor excluded)"),
            ));
        }
    }
    for m in members.unwrap_or_default() {
        if !m.is_active() && targeted(&m.id) {
            out.push(finding(
                &m.id,
                &m.name,
                model::DriftKind::Orphaned,
                format!("the inventory targets it, but the organization says {}", m.status),
            ));
        }
    }
    if let Some(members) = members {
        for t in targets {
            if !members.iter().any(|m| m.id == t.account_id) {
                out.push(finding(
                    &t.account_id,
                    &t.account_name,
                    model::DriftKind::Orphaned,
                    "the inventory targets it, but it is not in the organization (closed, or left)".to_owned(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn same(a: &str, b: &str) {
        let (a, b) = (parse_document(a).unwrap(), parse_document(b).unwrap());
        assert_eq!(
            compare_policy("P", &a, &b, crate::partition::AWS),
            Vec::new(),
            "{a} vs {b}"
        );
    }

    #[track_caller]
    fn differs(a: &str, b: &str, expect: &[(&str, &str, &str)]) {
        let (a, b) = (parse_document(a).unwrap(), parse_document(b).unwrap());
        let got: Vec<(String, String, String)> = compare_policy("P", &a, &b, crate::partition::AWS)
            .into_iter()
            .map(|d| (d.path, d.expected, d.actual))
            .collect();
        let want: Vec<(String, String, String)> = expect
            .iter()
            .map(|(p, e, a)| (p.to_string(), e.to_string(), a.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn policies_compare_by_meaning() {
        let base =
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        // Key order, single value vs one-element list, a lone statement
        // object, a Sid, statement order.
        same(
            base,
            r#"{"Statement":{"Resource":["*"],"Action":["s3:GetObject"],"Effect":"Allow","Sid":"X"},"Version":"2012-10-17"}"#,
        );
        same(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["b","a"],"Resource":"*"},{"Effect":"Deny","Action":"c","Resource":"*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"c","Resource":"*"},{"Effect":"Allow","Action":["a","b"],"Resource":["*"]}]}"#,
        );
        // URL-encoded, as IAM returns it.
        same(
            base,
            "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D",
        );
        // Principals as account id or root ARN; conditions with one value or a list.
        same(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["111111111111"]},"Action":["sts:AssumeRole"],"Condition":{"StringEquals":{"sts:ExternalId":["x"]}}}]}"#,
        );
    }

    #[test]
    fn differences_are_reported_statement_by_statement() {
        let trust = |who: &str, ext: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{who}"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"{ext}"}}}}}}]}}"#
            )
        };
        differs(
            &trust("111111111111", "a"),
            &trust("999999999999", "a"),
            &[
                (
                    "P.Statement",
                    r#"{"Action":["sts:AssumeRole"],"Condition":{"StringEquals":{"sts:ExternalId":["a"]}},"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111111111111:root"]}}"#,
                    "missing",
                ),
                (
                    "P.Statement",
                    "absent",
                    r#"{"Action":["sts:AssumeRole"],"Condition":{"StringEquals":{"sts:ExternalId":["a"]}},"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::999999999999:root"]}}"#,
                ),
            ],
        );
        // A changed condition is a different statement.
        assert_eq!(
            compare_policy(
                "P",
                &parse_document(&trust("111111111111", "a")).unwrap(),
                &parse_document(&trust("111111111111", "b")).unwrap(),
                crate::partition::AWS
            )
            .len(),
            2
        );
        differs(
            r#"{"Version":"2012-10-17","Statement":[]}"#,
            r#"{"Version":"2008-10-17","Statement":[]}"#,
            &[("P.Version", "2012-10-17", "2008-10-17")],
        );
    }
}
