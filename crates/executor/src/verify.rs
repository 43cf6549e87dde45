//! `verify`: every registered role assumed the way its profile would, and
//! its credentials asked whose they are. Bounded by `concurrency` and by
//! the run's STS rate limit; no credential leaves the cloud seam.

use futures::StreamExt;
use model::{Event, EventSink, Verdict};
use planner::verify::{Answer, Check};

use crate::cloud::{ErrorKind, Identity};

/// One verdict per check, in the checks' order.
pub async fn verify<C: Identity>(
    cloud: &C,
    checks: &[Check],
    concurrency: usize,
    events: &dyn EventSink,
) -> Vec<Verdict> {
    events.event(Event::Started { accounts: checks.len() });
    let mut verdicts: Vec<(usize, Verdict)> = futures::stream::iter(checks.iter().enumerate())
        .map(|(i, check)| async move {
            if let Some(v) = planner::verify::needs_mfa(check) {
                return (i, v);
            }
            let answer = match cloud
                .assumed_account(
                    &check.role_arn,
                    &check.session_name,
                    check.external_id.as_deref(),
                    check.duration_seconds,
                )
                .await
            {
                Ok(account) => Answer::Account(account),
                Err(e) if matches!(e.kind, ErrorKind::AccessDenied | ErrorKind::NotFound) => {
                    Answer::Denied(e.to_string())
                }
                Err(e) => Answer::Failed(e.to_string()),
            };
            let verdict = planner::verify::verdict(check, &answer);
            events.event(Event::AccountFinished {
                account_id: check.account_id.clone(),
            });
            (i, verdict)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    verdicts.sort_by_key(|(i, _)| *i);
    verdicts.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudError;

    /// STS that denies one role and hands another the wrong account.
    struct Sts;

    impl Identity for Sts {
        async fn assumed_account(
            &self,
            role_arn: &str,
            session: &str,
            external_id: Option<&str>,
            _: Option<u32>,
        ) -> Result<String, CloudError> {
            assert_eq!(session, "ops");
            match role_arn {
                a if a.contains(":role/Denied") => Err(CloudError::service(
                    "AccessDenied",
                    "User: arn:aws:iam::111111111111:user/ci is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222222222222:role/Denied",
                )),
                a if a.contains(":role/Elsewhere") => Ok("999999999999".to_owned()),
                a if a.contains(":role/Busy") => Err(CloudError::service("Throttling", "Rate exceeded")),
                a if a.contains(":role/External") && external_id != Some("ext-1") => {
                    Err(CloudError::service("AccessDenied", "external id"))
                }
                a => Ok(a.split(':').nth(4).unwrap().to_owned()),
            }
        }
    }

    fn check(role: &str, external_id: Option<&str>, mfa: Option<&str>) -> Check {
        Check {
            account_id: model::AccountId::parse("222222222222").unwrap(),
            account_name: "dev".into(),
            role: role.to_lowercase(),
            role_arn: format!("arn:aws:iam::222222222222:role/{role}"),
            session_name: "ops".into(),
            external_id: external_id.map(str::to_owned),
            duration_seconds: Some(900),
            mfa_serial: mfa.map(str::to_owned),
        }
    }

    #[test]
    fn assumable_denied_wrong_account_and_incomplete() {
        let checks = [
            check("Admin", None, None),
            check("External", Some("ext-1"), None),
            check("Denied", None, None),
            check("Elsewhere", None, None),
            check("Busy", None, None),
            check("Mfa", None, Some("arn:aws:iam::111111111111:mfa/alice")),
        ];
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let verdicts = rt.block_on(verify(&Sts, &checks, 2, &model::NoEvents));
        let got: Vec<String> = verdicts
            .iter()
            .map(|v| format!("{} {}: {}", v.role, v.result, v.reason))
            .collect();
        assert_eq!(
            got,
            [
                "admin ASSUMABLE: assumed as session ops",
                "external ASSUMABLE: assumed as session ops",
                "denied DENIED: AccessDenied: User: arn:aws:iam::111111111111:user/ci is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222222222222:role/Denied",
                "elsewhere WRONG_ACCOUNT: the role's credentials are of account 999999999999, not 222222222222",
                "busy ERROR: Throttling: Rate exceeded",
                "mfa ERROR: its trust requires MFA (arn:aws:iam::111111111111:mfa/alice): not assumed; check it with `aws sts get-caller-identity --profile <its profile>`",
            ]
        );
    }
}
