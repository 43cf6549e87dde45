//! `role:`: names, trust, policies, template, tags.

use model::{AccountId, CustomTemplate, RoleSpec};

use super::raw::*;
use super::*;
use crate::names;

impl Validator<'_> {
    pub(super) fn role(&mut self, raw: RawRole, source: Option<&AccountId>) -> Option<RoleSpec> {
        let name = raw.name.clone().unwrap_or_else(|| DEFAULT_ROLE_NAME.to_owned());
        if let Err(why) = names::check_role_name_template(&name) {
            self.error(
                &self.role_key("name"),
                format!("\"{name}\" is not a valid IAM role name: {why}"),
                "use 1-64 letters, digits and +=,.@_- (and {region} if the role goes to several regions)",
            );
        }
        let stack_name = raw.stack_name.clone().unwrap_or_else(|| DEFAULT_STACK_NAME.to_owned());
        if let Err(why) = names::check_stack_name(&stack_name) {
            self.error(
                &self.role_key("stack_name"),
                format!("\"{stack_name}\" is not a valid CloudFormation stack name: {why}"),
                "start with a letter; use up to 128 letters, digits and hyphens",
            );
        }

        let trusted_principals = self.trusted_principals(raw.trusted_principals.as_deref().unwrap_or_default());
        // Principals alone trust no whole account; neither trusts the source.
        let source = source.filter(|_| trusted_principals.is_empty());
        let trusted_accounts =
            self.trusted_accounts(raw.trusted_accounts.as_deref(), source, !trusted_principals.is_empty());
        let trust_conditions = self.trust_conditions(raw.trust_conditions.as_ref(), raw.external_id.is_some());
        if let Some(boundary) = &raw.permissions_boundary
            && let Err(why) = names::check_managed_policy(boundary)
        {
            self.error(
                &self.role_key("permissions_boundary"),
                format!("\"{boundary}\" {why}"),
                "name a managed policy: an AWS managed one by name, or a full ARN such as arn:aws:iam::<account>:policy/<name>",
            );
        }
        if let Some(path) = &raw.path
            && let Err(why) = names::check_role_path(path)
        {
            self.error(
                &self.role_key("path"),
                format!("\"{path}\" is not an IAM path: {why}"),
                "start and end with /, e.g. /platform/; letters, digits and !-~ inside, at most 512 characters",
            );
        }

        if let Some(policy) = &raw.policy
            && !is_none(policy)
            && (!policy.is_object() || policy.get("Statement").is_none())
        {
            self.error(
                &self.role_key("policy"),
                "expected an IAM policy document (a mapping with `Version` and `Statement`), or `none`",
                "write the policy as YAML, e.g. {Version: \"2012-10-17\", Statement: [...]}; `none` for no inline policy",
            );
        }
        let managed_policy_arns = raw.managed_policy_arns.clone().unwrap_or_default();
        for (i, arn) in managed_policy_arns.iter().enumerate() {
            if let Err(why) = names::check_managed_policy(arn) {
                self.error(
                    &format!("{}.managed_policy_arns[{i}]", self.role_at),
                    format!("\"{arn}\" {why}"),
                    "write an AWS managed policy by name (ReadOnlyAccess, job-function/ViewOnlyAccess), which works in every partition, or a full ARN such as arn:aws:iam::<account>:policy/<name>",
                );
            }
        }
        if let Some(external_id) = &raw.external_id
            && let Err(why) = names::check_external_id(external_id)
        {
            self.error(
                &self.role_key("external_id"),
                why,
                "use 2-1224 letters, digits and +=,.@:/-",
            );
        }
        let max_session_duration = raw.max_session_duration.unwrap_or(3600);
        if !(3600..=43200).contains(&max_session_duration) {
            self.error(
                &self.role_key("max_session_duration"),
                format!("{max_session_duration} is out of range (IAM allows 3600 to 43200 seconds)"),
                "pick a value from 3600 (1 hour) to 43200 (12 hours)",
            );
        }
        let output_key = raw.output_key.clone().unwrap_or_else(|| DEFAULT_OUTPUT_KEY.to_owned());
        if output_key.is_empty() || !output_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            self.error(
                &self.role_key("output_key"),
                format!("\"{output_key}\" is not a CloudFormation output name"),
                "use letters and digits only",
            );
        }
        let tags = raw.tags.clone().unwrap_or_default();
        self.tags(&self.role_key("tags"), &tags);
        if tags.len() > 48 {
            self.error(
                &self.role_key("tags"),
                format!(
                    "{} tags; CloudFormation allows 50 per stack and rolecall uses 2",
                    tags.len()
                ),
                "use at most 48 tags",
            );
        }

        let template = self.template(&raw, &managed_policy_arns);

        Some(RoleSpec {
            name,
            stack_name,
            trusted_accounts,
            trusted_principals,
            trust_conditions,
            permissions_boundary: raw.permissions_boundary.clone(),
            path: raw.path.clone(),
            policy: inline_policy(raw.policy, &managed_policy_arns, template.is_some()),
            managed_policy_arns,
            external_id: raw.external_id,
            max_session_duration,
            template,
            output_key,
            tags,
        })
    }

    /// Who may assume the role: the listed accounts, each once, else the
    /// source account.
    fn trusted_accounts(
        &mut self,
        list: Option<&[String]>,
        source: Option<&AccountId>,
        principals: bool,
    ) -> Vec<AccountId> {
        match list {
            Some(list) => {
                if list.is_empty() && !principals {
                    self.error(
                        &self.role_key("trusted_accounts"),
                        "the list is empty: nobody could assume the role",
                        "list at least one account id, or remove the key to trust source_account",
                    );
                }
                let mut ids = Vec::new();
                for (i, s) in list.iter().enumerate() {
                    let path = format!("{}.trusted_accounts[{i}]", self.role_at);
                    if let Some(id) = self.account_id(&path, s) {
                        if ids.contains(&id) {
                            self.error(&path, format!("{id} is listed twice"), "remove the duplicate");
                        } else {
                            ids.push(id);
                        }
                    }
                }
                ids
            }
            None => source.into_iter().cloned().collect(),
        }
    }

    /// IAM role or user ARNs, each once. Kept in order even when one is
    /// refused (the inventory is invalid then): later checks name them by
    /// their index.
    fn trusted_principals(&mut self, list: &[String]) -> Vec<String> {
        for (i, arn) in list.iter().enumerate() {
            let path = format!("{}.trusted_principals[{i}]", self.role_at);
            if !crate::partition::is_principal_arn(arn) {
                self.error(
                    &path,
                    format!("\"{arn}\" is not the ARN of an IAM role or user"),
                    "write arn:aws:iam::<account>:role/<name> (or :user/<name>); to trust a whole account, list it in trusted_accounts",
                );
            } else if list[..i].contains(arn) {
                self.error(&path, format!("{arn} is listed twice"), "remove the duplicate");
            }
        }
        list.to_vec()
    }

    /// An IAM condition block: operator → key → value(s). `sts:ExternalId`
    /// belongs to `external_id`, which adds it.
    fn trust_conditions(&mut self, given: Option<&serde_json::Value>, external_id: bool) -> Option<serde_json::Value> {
        let block = given?;
        let well_formed = block.as_object().is_some_and(|ops| {
            !ops.is_empty()
                && ops.iter().all(|(op, keys)| {
                    !op.is_empty()
                        && keys.as_object().is_some_and(|k| {
                            !k.is_empty()
                                && k.values()
                                    .all(|v| v.is_string() || v.is_array() || v.is_boolean() || v.is_number())
                        })
                })
        });
        if !well_formed {
            self.error(
                &self.role_key("trust_conditions"),
                "expected an IAM condition block: operators, each with condition keys and values",
                "e.g. {StringEquals: {aws:PrincipalOrgID: o-abc123}, Bool: {aws:MultiFactorAuthPresent: \"true\"}}",
            );
            return None;
        }
        let sets_external_id = block
            .as_object()
            .into_iter()
            .flat_map(|ops| ops.values())
            .filter_map(|keys| keys.as_object())
            .any(|keys| keys.keys().any(|k| k.eq_ignore_ascii_case("sts:ExternalId")));
        if sets_external_id {
            self.error(
                &self.role_key("trust_conditions"),
                "sts:ExternalId is set through role.external_id",
                if external_id {
                    "remove it from trust_conditions"
                } else {
                    "move it to role.external_id"
                },
            );
            return None;
        }
        Some(block.clone())
    }

    /// `role.template`: read (through the injected reader) from inside the
    /// inventory's folder and checked; the keys it makes pointless refused.
    fn template(&mut self, raw: &RawRole, managed_policy_arns: &[String]) -> Option<CustomTemplate> {
        match raw.template.clone() {
            None => {
                if raw.parameters.is_some() {
                    self.error(
                        &self.role_key("parameters"),
                        "`parameters` only applies to your own `template`",
                        "remove it, or set `role.template`",
                    );
                }
                if raw.policy.is_none() && managed_policy_arns.is_empty() {
                    self.warning(
                        &self.role_key("policy"),
                        "no policy given: the role gets full access (Action \"*\" on Resource \"*\")",
                        "set role.policy to the least privilege the role needs",
                    );
                }
                None
            }
            Some(path) => {
                for (key, set) in [
                    ("policy", raw.policy.is_some()),
                    ("managed_policy_arns", !managed_policy_arns.is_empty()),
                    ("external_id", raw.external_id.is_some()),
                    ("max_session_duration", raw.max_session_duration.is_some()),
                ] {
                    if set {
                        self.error(
                            &self.role_key(key),
                            format!("`{key}` has no effect with your own `template`"),
                            "express it in the template (or pass it through `parameters`), or drop `template`",
                        );
                    }
                }
                let full = self.base.join(&path);
                let read = match inside_folder(&path) {
                    Ok(()) => (self.read_file)(&full),
                    Err(why) => Err(std::io::Error::other(format!(
                        "{why}: keep the template in the inventory's folder or below it, and give its path relative to the inventory"
                    ))),
                };
                match read {
                    Ok(body) if crate::template::check_body(&body).is_err() => {
                        let why = crate::template::check_body(&body).unwrap_err();
                        self.error(
                            &self.role_key("template"),
                            format!("template {} {why}", full.display()),
                            "point role.template at a CloudFormation template (JSON or YAML) of at most 51,200 bytes",
                        );
                        None
                    }
                    Ok(body) => Some(CustomTemplate {
                        path,
                        body,
                        parameters: raw.parameters.clone().unwrap_or_default(),
                    }),
                    Err(e) => {
                        self.error(
                            &self.role_key("template"),
                            format!("cannot read template {}: {e}", full.display()),
                            "the path is relative to the inventory file; check it exists",
                        );
                        None
                    }
                }
            }
        }
    }
}

/// `policy: none`: the role gets no inline policy.
fn is_none(policy: &serde_json::Value) -> bool {
    policy.as_str() == Some("none")
}

/// The role's inline policy: the one given; none with `policy: none` or
/// with managed policies alone (a read-only role must not also get full
/// access); full access only when the inventory gives neither (warned
/// about). An own template has none of its own here.
fn inline_policy(
    given: Option<serde_json::Value>,
    managed_policy_arns: &[String],
    own_template: bool,
) -> Option<serde_json::Value> {
    match given {
        Some(p) if is_none(&p) => None,
        Some(p) => Some(p),
        None if own_template || !managed_policy_arns.is_empty() => None,
        None => Some(crate::template::full_access_policy()),
    }
}
