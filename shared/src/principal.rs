//! Who cordon contains: an IAM user, a role, the root user, or a kind it never guesses at.
//! Lower than signals, protection and rules, which all speak of principals.

use std::fmt;

use serde::Serialize;

use crate::events::cloudtrail::UserIdentity;
use crate::ids::IamName;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Principal {
    User(IamName),
    Role(IamName),
    Root,
    /// FederatedUser, AWSService, AWSAccount and whatever GuardDuty adds next: never guessed at.
    Unsupported(String),
}

impl Principal {
    /// The type names a principal kind, never a path or a sentence: letters and digits only.
    pub fn unsupported(kind: &str) -> Self {
        let kind: String = kind
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(64)
            .collect();
        Self::Unsupported(if kind.is_empty() {
            "unknown".to_owned()
        } else {
            kind
        })
    }

    /// What a person reads: `IAM user alice`, `role web-app`.
    pub fn describe(&self) -> String {
        match self {
            Self::User(n) => format!("IAM user {n}"),
            Self::Role(n) => format!("role {n}"),
            Self::Root => "root user".to_owned(),
            Self::Unsupported(kind) => format!("{kind} principal"),
        }
    }
}

/// Where a user or role sits in IAM: `/`, `/admins/`. Read only from an ARN AWS wrote (the
/// caller's in a CloudTrail record) or from configuration, never from a request field or a
/// session name, which the caller chooses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct IamPath(String);

impl IamPath {
    /// `/` or `/<segment>/.../`: printable ASCII (as IAM allows), no empty segment, no `*`.
    pub fn parse(s: &str) -> Option<Self> {
        let inner = s.strip_prefix('/').and_then(|r| r.strip_suffix('/'));
        let ok = s == "/"
            || (s.len() <= 512
                && inner.is_some_and(|i| {
                    i.split('/').all(|seg| {
                        !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_graphic() && b != b'*')
                    })
                }));
        ok.then(|| Self(s.to_owned()))
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The path in `arn:<partition>:iam::<account>:<user|role><path><name>`, when that ARN is
    /// `principal`'s (same kind, same name).
    pub fn in_arn(arn: &str, principal: &Principal) -> Option<Self> {
        let (kind, name) = match principal {
            Principal::User(n) => ("user", n),
            Principal::Role(n) => ("role", n),
            Principal::Root | Principal::Unsupported(_) => return None,
        };
        let (_partition, rest) = arn.strip_prefix("arn:")?.split_once(":iam::")?;
        let (_account, resource) = rest.split_once(':')?;
        let (path, last) = resource.strip_prefix(kind)?.rsplit_once('/')?;
        if last != name.as_str() {
            return None;
        }
        Self::parse(&format!("{path}/"))
    }

    /// The caller's path in a CloudTrail record: a user's from `userIdentity.arn`; a role's from
    /// its session issuer, because the session's own ARN (`assumed-role/<role>/<session>`) holds
    /// a session name the caller chose and not the role's path.
    pub fn of_caller(identity: &UserIdentity, principal: &Principal) -> Option<Self> {
        let arn = match principal {
            Principal::User(_) => identity.arn.as_deref(),
            Principal::Role(_) => identity
                .session_context
                .as_ref()?
                .session_issuer
                .as_ref()?
                .arn
                .as_deref(),
            Principal::Root | Principal::Unsupported(_) => None,
        }?;
        Self::in_arn(arn, principal)
    }
}

impl fmt::Display for IamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(n: &str) -> Principal {
        Principal::User(IamName::parse(n).unwrap())
    }

    #[test]
    fn path_from_the_arn_aws_wrote() {
        let alice = user("alice");
        let p = |arn: &str| IamPath::in_arn(arn, &alice).map(|p| p.to_string());
        assert_eq!(
            p("arn:aws:iam::111122223333:user/admins/alice").as_deref(),
            Some("/admins/")
        );
        assert_eq!(
            p("arn:aws:iam::111122223333:user/alice").as_deref(),
            Some("/")
        );
        assert_eq!(
            p("arn:aws-us-gov:iam::111122223333:user/a/b/alice").as_deref(),
            Some("/a/b/")
        );
        // Another principal's ARN, or another kind's, says nothing about alice.
        assert_eq!(p("arn:aws:iam::111122223333:user/admins/bob"), None);
        assert_eq!(p("arn:aws:iam::111122223333:role/admins/alice"), None);
        assert_eq!(p("arn:aws:iam::111122223333:user/admins//alice"), None);
        assert_eq!(p("arn:aws:iam::111122223333:user/*/alice"), None);
    }

    /// A role's path comes from its session issuer: the session name, which the caller picks,
    /// never lends it one.
    #[test]
    fn a_session_name_is_not_a_path() {
        let role = Principal::Role(IamName::parse("ops").unwrap());
        let identity: UserIdentity = serde_json::from_value(json!({
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/ops/admins",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "ops",
                "arn": "arn:aws:iam::111122223333:role/ops"}},
        }))
        .unwrap();
        assert_eq!(
            IamPath::of_caller(&identity, &role).map(|p| p.to_string()),
            Some("/".to_owned())
        );
        let no_issuer: UserIdentity = serde_json::from_value(json!({
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/ops/admins",
        }))
        .unwrap();
        assert_eq!(IamPath::of_caller(&no_issuer, &role), None);
    }
}
