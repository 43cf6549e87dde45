//! `profiles:`: the AWS CLI profiles apply writes.

use model::ProfilesSpec;

use super::raw::*;
use super::*;
use crate::names;

impl Validator<'_> {
    pub(super) fn profiles(&mut self, raw: RawProfiles) -> Option<ProfilesSpec> {
        let source_profile = raw.source_profile.unwrap_or_else(|| "default".to_owned());
        if let Err(why) = crate::profiles::check_name(&source_profile) {
            self.error(
                "profiles.source_profile",
                format!("\"{source_profile}\" cannot be an AWS CLI profile name: {why}"),
                "use the name of a profile in your AWS config",
            );
        }
        let name = raw.name.unwrap_or_else(|| DEFAULT_PROFILE_NAME.to_owned());
        let mut ok = true;
        if let Err(why) = crate::profiles::check_template(&name) {
            self.error(
                "profiles.name",
                why,
                "write the name from {account_name} {account_id} {role_name} {region} and text without whitespace or []\\;'\"#",
            );
            ok = false;
        }
        if let Some(region) = &raw.region
            && !names::is_region(region)
        {
            self.error(
                "profiles.region",
                format!("\"{region}\" is not an AWS region name"),
                "write a region such as us-east-1, or remove it to use each account's first region",
            );
        }
        if let Some(session) = &raw.role_session_name
            && (session.len() < 2
                || session.len() > 64
                || !session
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c)))
        {
            self.error(
                "profiles.role_session_name",
                format!("\"{session}\" is not a valid role session name"),
                "use 2-64 letters, digits and +=,.@-_",
            );
        }
        if let Some(seconds) = raw.duration_seconds
            && !(900..=43200).contains(&seconds)
        {
            self.error(
                "profiles.duration_seconds",
                format!("{seconds} is out of range"),
                "use 900 to 43200 seconds, at most role.max_session_duration",
            );
        }
        if let Some(serial) = &raw.mfa_serial
            && !(crate::partition::is_arn(serial) && serial.contains(":iam::") && serial.contains(":mfa/"))
        {
            self.error(
                "profiles.mfa_serial",
                format!("\"{serial}\" is not an MFA device ARN"),
                "write arn:aws:iam::<source account>:mfa/<device name>",
            );
            ok = false;
        }
        ok.then_some(ProfilesSpec {
            source_profile,
            name,
            region: raw.region,
            role_session_name: raw.role_session_name,
            duration_seconds: raw.duration_seconds,
            mfa_serial: raw.mfa_serial,
        })
    }
}
