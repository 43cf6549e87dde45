//! The built-in role template and the fingerprint of what should be deployed.
//!
//! Rendered as JSON with sorted keys: the same inventory always gives the
//! same bytes, so the fingerprint only changes when the role would.

use std::collections::BTreeMap;

use model::{CatalogRole, Desired, Inventory, RoleSpec};

use crate::partition::{PolicyRef, template};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What the stack of each role of the catalog should be, in the catalog's
/// order.
pub fn catalog(inv: &Inventory) -> Vec<Desired> {
    inv.roles.iter().map(desired).collect()
}

/// What every stack of one role should be.
pub fn desired(catalog_role: &CatalogRole) -> Desired {
    let role = &catalog_role.spec;
    let (template_body, parameters) = match &role.template {
        Some(custom) => (custom.body.clone(), custom.parameters.clone()),
        None => (render_builtin(role), BTreeMap::new()),
    };
    Desired {
        auto_expand: declares_transform(&template_body),
        role: catalog_role.key.clone(),
        role_name: role.name.clone(),
        stack_name: role.stack_name.clone(),
        fingerprint: fingerprint(&template_body, &parameters),
        template_body,
        parameters,
        tags: role.tags.clone(),
        output_key: role.output_key.clone(),
    }
}

/// CloudFormation's limit for a template passed in the request body.
pub const MAX_BODY_BYTES: usize = 51_200;

/// Whether a template (JSON or YAML) has a top-level `Transform`.
pub fn declares_transform(body: &str) -> bool {
    serde_yaml::from_str::<serde_yaml::Value>(body)
        .ok()
        .and_then(|v| v.as_mapping().map(|m| m.contains_key("Transform")))
        .unwrap_or(false)
}

/// Why a template of the user's cannot be deployed as it is, if it cannot.
pub fn check_body(body: &str) -> Result<(), String> {
    if body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "is {} bytes; CloudFormation takes at most {MAX_BODY_BYTES} bytes in a request (larger templates must come from S3, which rolecall does not upload)",
            body.len()
        ));
    }
    let value: serde_yaml::Value = serde_yaml::from_str(body).map_err(|e| format!("is neither JSON nor YAML: {e}"))?;
    match value.as_mapping() {
        Some(m) if m.contains_key("Resources") => Ok(()),
        Some(_) => Err("has no `Resources` section, so it is not a CloudFormation template".to_owned()),
        None => Err("is not a CloudFormation template (expected a mapping with `Resources`)".to_owned()),
    }
}

/// sha256 over the template body and the sorted parameters, hex.
pub fn fingerprint(template_body: &str, parameters: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(template_body.as_bytes());
    for (k, v) in parameters {
        // Separators that cannot occur in either part keep `a=b` from
        // hashing like `a`, `=b`.
        h.update([0u8]);
        h.update(k.as_bytes());
        h.update([1u8]);
        h.update(v.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The full-access policy used when the inventory gives none.
pub fn full_access_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    })
}

/// The built-in template: one IAM role, one trust statement per trusted
/// account, the inline policy, and the role's ARN as an output.
pub fn render_builtin(role: &RoleSpec) -> String {
    let accounts = role.trusted_accounts.iter().map(|account| {
        (
            format!("TrustAccount{account}"),
            json!({"Fn::Sub": template::root_arn(account.as_str())}),
        )
    });
    let principals = role
        .trusted_principals
        .iter()
        .enumerate()
        .map(|(i, arn)| (format!("TrustPrincipal{}", i + 1), json!(arn)));
    let statements: Vec<Value> = accounts
        .chain(principals)
        .map(|(sid, principal)| {
            let mut statement = json!({
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": "sts:AssumeRole",
            });
            if let Some(condition) = trust_condition(role) {
                statement["Condition"] = condition;
            }
            statement
        })
        .collect();
    // `{region}` in the name becomes the stack's own region, so one template
    // serves every region.
    let role_name = if role.name.contains("{region}") {
        json!({"Fn::Sub": role.name.replace("{region}", "${AWS::Region}")})
    } else {
        json!(role.name)
    };
    let mut properties = json!({
        "RoleName": role_name,
        "Description": "Cross-account role managed by rolecall",
        "MaxSessionDuration": role.max_session_duration,
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": statements},
    });
    if let Some(policy) = &role.policy {
        properties["Policies"] = json!([{"PolicyName": "rolecall-policy", "PolicyDocument": policy}]);
    }
    if let Some(boundary) = &role.permissions_boundary {
        properties["PermissionsBoundary"] = match PolicyRef::of(boundary) {
            PolicyRef::Arn(arn) => json!(arn),
            PolicyRef::AwsManaged(name) => json!({"Fn::Sub": template::aws_managed_policy_arn(name)}),
        };
    }
    if let Some(path) = &role.path {
        properties["Path"] = json!(path);
    }
    if !role.managed_policy_arns.is_empty() {
        // A policy given by name works in every partition: the ARN is
        // completed by CloudFormation where the stack runs.
        let arns: Vec<Value> = role
            .managed_policy_arns
            .iter()
            .map(|p| match PolicyRef::of(p) {
                PolicyRef::Arn(arn) => json!(arn),
                PolicyRef::AwsManaged(name) => json!({"Fn::Sub": template::aws_managed_policy_arn(name)}),
            })
            .collect();
        properties["ManagedPolicyArns"] = json!(arns);
    }
    let template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("rolecall: cross-account IAM role {} (managed by rolecall; changes made here are overwritten)", role.name),
        "Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": properties}},
        "Outputs": {role.output_key.clone(): {
            "Description": "ARN of the cross-account role",
            "Value": {"Fn::GetAtt": ["Role", "Arn"]},
        }},
    });
    let mut body = serde_json::to_string_pretty(&template).expect("a JSON value always serialises");
    body.push('\n');
    body
}

/// Stack name `rolecall bootstrap-template` suggests.
pub const BOOTSTRAP_STACK_NAME: &str = "rolecall-bootstrap";

/// A template for the bootstrap role in an account that lacks one (invited
/// accounts have no OrganizationAccountAccessRole). It trusts the source
/// account and may only manage rolecall's stack and role: least privilege,
/// not administrator access.
pub fn bootstrap(inv: &Inventory) -> String {
    let deploy = &inv.deploy;
    let mut statement = json!({
        "Sid": "TrustRolecallSource",
        "Effect": "Allow",
        "Principal": {"AWS": {"Fn::Sub": template::root_arn(inv.source_account.as_str())}},
        "Action": "sts:AssumeRole",
    });
    if let Some(external_id) = &deploy.bootstrap_external_id {
        statement["Condition"] = json!({"StringEquals": {"sts:ExternalId": external_id}});
    }
    // Every role of the catalog: its stacks, and its role by path and name
    // (the ARN holds the path: arn:…:role/<path>/<name>). One resource
    // is written as a string, several as a list.
    let one_or_many = |mut arns: Vec<String>| {
        arns.dedup();
        let subs: Vec<Value> = arns.into_iter().map(|a| json!({"Fn::Sub": a})).collect();
        match <[Value; 1]>::try_from(subs) {
            Ok([one]) => one,
            Err(many) => json!(many),
        }
    };
    let stacks = one_or_many(
        inv.roles
            .iter()
            .map(|r| template::own_stacks_arn(&r.spec.stack_name))
            .collect(),
    );
    let roles = one_or_many(
        inv.roles
            .iter()
            .map(|r| {
                let path = r.spec.path.as_deref().unwrap_or("/").trim_start_matches('/');
                template::own_roles_arn(&format!("{path}{}", r.spec.name.replace("{region}", "*")))
            })
            .collect(),
    );
    // CreateRole with a permissions boundary needs the boundary actions too.
    let boundary: &[&str] = if inv.roles.iter().any(|r| r.spec.permissions_boundary.is_some()) {
        &["iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"]
    } else {
        &[]
    };
    let mut iam_actions = vec![
        "iam:AttachRolePolicy",
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
        "iam:GetRole",
        "iam:GetRolePolicy",
        "iam:ListAttachedRolePolicies",
        "iam:ListRolePolicies",
        "iam:ListRoleTags",
        "iam:PutRolePolicy",
        "iam:TagRole",
        "iam:UntagRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:UpdateRole",
        "iam:UpdateRoleDescription",
    ];
    iam_actions.extend_from_slice(boundary);
    // StackSets: rolecall only reads each instance's outputs (DescribeStacks
    // on the instance stacks; ListStacks finds one, and takes no resource).
    let instances = deploy.stackset.as_ref().map(|spec| {
        let stacks = one_or_many(
            inv.roles
                .iter()
                .map(|r| template::instance_stacks_arn(&crate::stacksets::set_name(spec, &r.spec.stack_name)))
                .collect(),
        );
        [
            json!({"Sid": "RolecallStackSetInstances", "Effect": "Allow", "Action": "cloudformation:DescribeStacks", "Resource": stacks}),
            json!({"Sid": "RolecallFindInstances", "Effect": "Allow", "Action": "cloudformation:ListStacks", "Resource": "*"}),
        ]
    });
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RolecallStack",
                "Effect": "Allow",
                "Action": [
                    "cloudformation:CreateChangeSet", "cloudformation:CreateStack", "cloudformation:DeleteChangeSet",
                    "cloudformation:DeleteStack", "cloudformation:DescribeChangeSet", "cloudformation:DescribeStackEvents",
                    "cloudformation:DescribeStacks", "cloudformation:ExecuteChangeSet", "cloudformation:GetTemplate",
                    "cloudformation:ListChangeSets", "cloudformation:UpdateStack",
                ],
                "Resource": stacks,
            },
            {
                "Sid": "RolecallRole",
                "Effect": "Allow",
                "Action": iam_actions,
                "Resource": roles,
            },
        ],
    });
    let mut policy = policy;
    if let (Some(statements), Some(instances)) = (policy["Statement"].as_array_mut(), instances) {
        statements.extend(instances);
    }
    let template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("rolecall bootstrap role {}: lets the source account {} manage the rolecall stack in this account", deploy.bootstrap_role, inv.source_account),
        "Resources": {"BootstrapRole": {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": deploy.bootstrap_role,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [statement]},
            "Policies": [{"PolicyName": "rolecall-bootstrap", "PolicyDocument": policy}],
        }}},
        "Outputs": {"BootstrapRoleArn": {"Value": {"Fn::GetAtt": ["BootstrapRole", "Arn"]}}},
    });
    let mut body = serde_json::to_string_pretty(&template).expect("a JSON value always serialises");
    body.push('\n');
    body
}

/// The trust conditions require MFA (`aws:MultiFactorAuthPresent` or
/// `aws:MultiFactorAuthAge`): the role's profiles need an `mfa_serial`.
pub fn requires_mfa(conditions: Option<&Value>) -> bool {
    conditions
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|ops| ops.values())
        .filter_map(Value::as_object)
        .flat_map(|keys| keys.keys())
        .any(|k| {
            k.eq_ignore_ascii_case("aws:MultiFactorAuthPresent") || k.eq_ignore_ascii_case("aws:MultiFactorAuthAge")
        })
}

/// The condition of every trust statement: `role.trust_conditions`, with
/// the external id (`sts:ExternalId` under `StringEquals`) when there is
/// one; `None` when there is neither.
pub fn trust_condition(role: &RoleSpec) -> Option<Value> {
    let mut condition = role.trust_conditions.clone().unwrap_or_else(|| json!({}));
    if let Some(external_id) = &role.external_id {
        let map = condition.as_object_mut()?;
        let equals = map.entry("StringEquals").or_insert_with(|| json!({}));
        equals
            .as_object_mut()?
            .insert("sts:ExternalId".to_owned(), json!(external_id));
    }
    condition
        .as_object()
        .is_some_and(|m| !m.is_empty())
        .then_some(condition)
}
