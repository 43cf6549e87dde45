//! AWS partitions and the ARNs rolecall builds: the one place that knows
//! `aws`, `aws-us-gov`, `aws-cn` … and which region serves a partition's
//! global services. Every ARN rolecall builds goes through here.

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

    /// An AWS managed policy by name: `arn:<partition>:iam::aws:policy/<name>`.
    pub fn aws_managed_policy_arn(self, name: &str) -> String {
        format!("arn:{}:iam::aws:policy/{name}", self.name)
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
