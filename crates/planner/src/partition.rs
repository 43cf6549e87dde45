//! AWS partitions and the ARNs rolecall builds or reads: the one place that
//! knows `aws`, `aws-us-gov`, `aws-cn` … and which region serves a
//! partition's global services. Every ARN rolecall builds goes through
//! here, in a known partition (`Partition`) or spelled for a template
//! (`template`: `${AWS::Partition}` is filled in by CloudFormation); the
//! workspace's tidy test fails on an ARN formatted anywhere else.

/// An AWS partition: a separate copy of AWS with its own ARNs, credentials
/// and endpoints. Credentials of one never work in another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The ARN partition: `aws`, `aws-us-gov`, `aws-cn` …
    pub name: &'static str,
    /// Where the partition's AWS Organizations endpoint lives.
    pub organizations_region: &'static str,
}

/// Region prefixes of the partitions other than `aws`, longest first so
/// that `us-isob-` is not read as `us-iso-`.
const PARTITIONS: [(&str, Partition); 7] = [
    (
        "us-isob-",
        Partition {
            name: "aws-iso-b",
            organizations_region: "us-isob-east-1",
        },
    ),
    (
        "us-isof-",
        Partition {
            name: "aws-iso-f",
            organizations_region: "us-isof-south-1",
        },
    ),
    (
        "eu-isoe-",
        Partition {
            name: "aws-iso-e",
            organizations_region: "eu-isoe-west-1",
        },
    ),
    (
        "us-iso-",
        Partition {
            name: "aws-iso",
            organizations_region: "us-iso-east-1",
        },
    ),
    (
        "us-gov-",
        Partition {
            name: "aws-us-gov",
            organizations_region: "us-gov-west-1",
        },
    ),
    (
        "eusc-",
        Partition {
            name: "aws-eusc",
            organizations_region: "eusc-de-east-1",
        },
    ),
    (
        "cn-",
        Partition {
            name: "aws-cn",
            organizations_region: "cn-northwest-1",
        },
    ),
];

/// The commercial partition.
pub const AWS: Partition = Partition {
    name: "aws",
    organizations_region: "us-east-1",
};

impl Partition {
    /// The partition a region belongs to (`aws` for anything unknown: new
    /// commercial regions appear every year).
    pub fn of_region(region: &str) -> Partition {
        PARTITIONS
            .iter()
            .find(|(prefix, _)| region.starts_with(prefix))
            .map_or(AWS, |(_, p)| *p)
    }

    /// The partition named in an ARN (`arn:aws-cn:…`), if it is one we know.
    pub fn of_arn(arn: &str) -> Option<Partition> {
        let name = arn.strip_prefix("arn:")?.split(':').next()?;
        std::iter::once(AWS)
            .chain(PARTITIONS.iter().map(|(_, p)| *p))
            .find(|p| p.name == name)
    }

    /// `arn:<partition>:iam::<account>:role/<name>`.
    pub fn role_arn(self, account: &str, role_name: &str) -> String {
        format!("arn:{}:iam::{account}:role/{role_name}", self.name)
    }

    /// The account as a principal: `arn:<partition>:iam::<account>:root`.
    pub fn root_arn(self, account: &str) -> String {
        format!("arn:{}:iam::{account}:root", self.name)
    }

    /// A principal as IAM stores it: an account id becomes the account's
    /// root ARN in this partition; anything else stays as it is.
    pub fn principal_arn(self, principal: &str) -> String {
        if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
            self.root_arn(principal)
        } else {
            principal.to_owned()
        }
    }

    /// A managed policy as the inventory names it: an ARN as it is, a bare
    /// name as the AWS managed policy of that name in this partition.
    pub fn managed_policy_arn(self, name_or_arn: &str) -> String {
        match PolicyRef::of(name_or_arn) {
            PolicyRef::Arn(arn) => arn.to_owned(),
            PolicyRef::AwsManaged(name) => self.aws_managed_policy_arn(name),
        }
    }

    /// A CloudFormation stack's id.
    pub fn stack_arn(self, region: &str, account: &str, stack_name: &str, id: &str) -> String {
        format!(
            "arn:{}:cloudformation:{region}:{account}:stack/{stack_name}/{id}",
            self.name
        )
    }

    /// An AWS managed policy by name: `arn:<partition>:iam::aws:policy/<name>`.
    pub fn aws_managed_policy_arn(self, name: &str) -> String {
        format!("arn:{}:iam::aws:policy/{name}", self.name)
    }
}

/// How the inventory names a managed policy: decided once for the template
/// and for drift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyRef<'a> {
    /// A full ARN (a customer managed policy, or an AWS one spelled out).
    Arn(&'a str),
    /// The name of an AWS managed policy (`ReadOnlyAccess`): the ARN
    /// depends on the partition.
    AwsManaged(&'a str),
}

impl<'a> PolicyRef<'a> {
    pub fn of(name_or_arn: &'a str) -> PolicyRef<'a> {
        if is_arn(name_or_arn) {
            PolicyRef::Arn(name_or_arn)
        } else {
            PolicyRef::AwsManaged(name_or_arn)
        }
    }
}

/// The text is an ARN (of any partition and service).
pub fn is_arn(s: &str) -> bool {
    s.starts_with("arn:")
}

/// An IAM role's ARN, in any partition: `arn:<p>:iam::<account>:role/…`.
pub fn is_role_arn(s: &str) -> bool {
    is_arn(s) && s.contains(":iam::") && s.contains(":role/")
}

/// An IAM role's or user's ARN: `arn:<p>:iam::<12 digits>:role/…` or
/// `…:user/…`.
pub fn is_principal_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:") else {
        return false;
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    matches!(parts.as_slice(), [_, "iam", "", account, resource]
        if account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && (resource.strip_prefix("role/").or(resource.strip_prefix("user/"))).is_some_and(|n| !n.is_empty()))
}

/// The role's name in its ARN: what follows the last `/` of the role's
/// path (`arn:aws:iam::1:role/a/b/Name` → `Name`).
pub fn role_name_of_arn(arn: &str) -> Option<&str> {
    let (_, path) = arn.split_once(":role/")?;
    path.rsplit('/').next().filter(|n| !n.is_empty())
}

/// The account in an ARN (`arn:aws:iam::123456789012:role/R` →
/// `123456789012`); `None` when the field is empty or missing.
pub fn account_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// ARNs spelled for a CloudFormation template: the partition is left to
/// `${AWS::Partition}` (and the account to `${AWS::AccountId}` where it is
/// the stack's own), so one template serves every partition.
pub mod template {
    /// `arn:${AWS::Partition}:iam::<account>:root`.
    pub fn root_arn(account: &str) -> String {
        format!("arn:${{AWS::Partition}}:iam::{account}:root")
    }

    /// The AWS managed policy of that name.
    pub fn aws_managed_policy_arn(name: &str) -> String {
        format!("arn:${{AWS::Partition}}:iam::aws:policy/{name}")
    }

    /// Every region's stacks of that name in the stack's own account.
    pub fn own_stacks_arn(stack_name: &str) -> String {
        format!("arn:${{AWS::Partition}}:cloudformation:*:${{AWS::AccountId}}:stack/{stack_name}/*")
    }

    /// The instance stacks of stack set `set` in the stack's own account
    /// (StackSets names them `StackSet-<set>-<uuid>`).
    pub fn instance_stacks_arn(set: &str) -> String {
        format!("arn:${{AWS::Partition}}:cloudformation:*:${{AWS::AccountId}}:stack/StackSet-{set}-*/*")
    }

    /// Roles of the stack's own account whose name matches `pattern`.
    pub fn own_roles_arn(pattern: &str) -> String {
        format!("arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{pattern}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_by_region_and_arn() {
        let cases = [
            ("us-east-1", "aws", "us-east-1"),
            ("eu-central-2", "aws", "us-east-1"),
            ("ap-southeast-7", "aws", "us-east-1"),
            ("us-gov-west-1", "aws-us-gov", "us-gov-west-1"),
            ("us-gov-east-1", "aws-us-gov", "us-gov-west-1"),
            ("cn-north-1", "aws-cn", "cn-northwest-1"),
            ("cn-northwest-1", "aws-cn", "cn-northwest-1"),
            ("us-iso-east-1", "aws-iso", "us-iso-east-1"),
            ("us-isob-east-1", "aws-iso-b", "us-isob-east-1"),
            ("eu-isoe-west-1", "aws-iso-e", "eu-isoe-west-1"),
            ("us-isof-south-1", "aws-iso-f", "us-isof-south-1"),
            ("eusc-de-east-1", "aws-eusc", "eusc-de-east-1"),
        ];
        for (region, name, org_region) in cases {
            let p = Partition::of_region(region);
            assert_eq!((p.name, p.organizations_region), (name, org_region), "{region}");
            let arn = p.role_arn("012345678901", "Boot");
            assert_eq!(arn, format!("arn:{name}:iam::012345678901:role/Boot"));
            assert_eq!(Partition::of_arn(&arn), Some(p), "{arn}");
            assert_eq!(
                p.aws_managed_policy_arn("ReadOnlyAccess"),
                format!("arn:{name}:iam::aws:policy/ReadOnlyAccess")
            );
        }
        assert_eq!(Partition::of_arn("arn:aws-moon:iam::aws:policy/X"), None);
        assert_eq!(Partition::of_arn("ReadOnlyAccess"), None);
    }
}
