//! Identifiers parsed at the edge. Every value that reaches an AWS call is one of these, so a
//! user name an attacker chose cannot smuggle anything into an ARN, a policy or a log line.

use std::fmt;

use serde::Serialize;

/// A value that failed validation, with the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {value:?}")]
pub struct InvalidId {
    pub what: &'static str,
    /// Truncated so a hostile multi-megabyte value does not end up in a log line.
    pub value: String,
}

impl InvalidId {
    fn new(what: &'static str, value: &str) -> Self {
        Self {
            what,
            value: value.chars().take(80).collect(),
        }
    }
}

fn check(
    what: &'static str,
    value: &str,
    len: std::ops::RangeInclusive<usize>,
    ok: impl Fn(char) -> bool,
) -> Result<String, InvalidId> {
    if len.contains(&value.len()) && value.chars().all(ok) {
        Ok(value.to_owned())
    } else {
        Err(InvalidId::new(what, value))
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// `AKIA…` (long-term, can be deactivated) or `ASIA…` (STS temporary, cannot).
    AccessKeyId
);
string_id!(
    /// An IAM user or role name (`[\w+=,.@-]{1,64}`).
    IamName
);
string_id!(
    /// `i-` followed by 8 or 17 hex digits.
    InstanceId
);
string_id!(
    /// A 12-digit AWS account id.
    AccountId
);
string_id!(
    /// A GuardDuty finding id or CloudTrail event id: the incident key in the ledger.
    IncidentId
);

impl AccessKeyId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        check("access key id", s, 16..=128, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit()
        })
        .map(Self)
    }

    /// Long-term user keys start `AKIA`; STS credentials start `ASIA` and live outside IAM.
    pub fn is_long_term(&self) -> bool {
        self.0.starts_with("AKIA")
    }

    /// `AKIA…WXYZ`: enough for a person to recognise the key, as the AWS console shows it.
    pub fn redacted(&self) -> String {
        let tail = &self.0[self.0.len().saturating_sub(4)..];
        format!("{}…{}", &self.0[..4.min(self.0.len())], tail)
    }
}

impl IamName {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        check("IAM name", s, 1..=64, |c| {
            c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
        })
        .map(Self)
    }
}

impl InstanceId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let hex = s.strip_prefix("i-").unwrap_or("");
        if (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId::new("instance id", s))
        }
    }
}

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        check("account id", s, 12..=12, |c| c.is_ascii_digit()).map(Self)
    }
}

impl IncidentId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        check("finding or event id", s, 1..=128, |c| {
            c.is_ascii_alphanumeric() || "-_:.".contains(c)
        })
        .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_keys() {
        let k = AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap();
        assert!(k.is_long_term());
        assert_eq!(k.redacted(), "AKIA…MPLE");
        assert!(!AccessKeyId::parse("ASIAIOSFODNN7EXAMPLE")
            .unwrap()
            .is_long_term());
        assert!(AccessKeyId::parse("GeneratedFindingAccessKeyId").is_err());
        assert!(AccessKeyId::parse("AKIA\"}],\"x").is_err());
    }

    #[test]
    fn names_reject_injection() {
        assert!(IamName::parse("alice.smith@corp").is_ok());
        assert!(IamName::parse("a/b").is_err());
        assert!(IamName::parse("a\"b").is_err());
        assert!(IamName::parse("").is_err());
        assert!(IamName::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn instance_ids() {
        assert!(InstanceId::parse("i-05746eb48123455e0").is_ok());
        assert!(InstanceId::parse("i-99999999").is_ok());
        assert!(InstanceId::parse("i-zz").is_err());
        assert!(InstanceId::parse("05746eb48123455e0").is_err());
    }

    #[test]
    fn invalid_values_are_truncated() {
        let e = AccountId::parse(&"9".repeat(10_000)).unwrap_err();
        assert_eq!(e.value.len(), 80);
    }
}
