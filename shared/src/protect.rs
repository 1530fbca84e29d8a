//! Principals cordon must never quarantine: break-glass roles, the allow-list, and its own role.
//! Checked before any write.

use std::fmt;

use crate::ids::AccountId;
use crate::principal::Principal;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an IAM user or role ARN (arn:aws:iam::<account|*>:<user|role>/[path/]<name>[*])"
)]
pub struct PatternError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Role,
}

/// One entry: an IAM ARN whose account may be `*` and whose name may end in `*`. The path is
/// ignored because a finding names the principal without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    account: Option<String>,
    kind: Kind,
    name: String,
    source: String,
}

impl Pattern {
    pub fn parse(arn: &str) -> Result<Self, PatternError> {
        let err = || PatternError(arn.chars().take(200).collect());
        let rest = arn
            .strip_prefix("arn:")
            .and_then(|r| r.split_once(":iam::"))
            .map(|(_partition, r)| r)
            .ok_or_else(err)?;
        let (account, resource) = rest.split_once(':').ok_or_else(err)?;
        let (kind, path_and_name) = resource.split_once('/').ok_or_else(err)?;
        let kind = match kind {
            "user" => Kind::User,
            "role" => Kind::Role,
            _ => return Err(err()),
        };
        let name = path_and_name.rsplit('/').next().unwrap_or_default();
        if name.is_empty() || !(account == "*" || AccountId::parse(account).is_ok()) {
            return Err(err());
        }
        Ok(Self {
            account: (account != "*").then(|| account.to_owned()),
            kind,
            name: name.to_owned(),
            source: arn.to_owned(),
        })
    }

    /// The principal behind an `sts:GetCallerIdentity` ARN: the role of an assumed-role session
    /// (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`), or the IAM user or role itself.
    /// This is how the function learns its own identity and the deployer's.
    pub fn from_caller_arn(arn: &str) -> Option<Self> {
        let Some((prefix, rest)) = arn.split_once(":assumed-role/") else {
            return Self::parse(arn).ok();
        };
        let account = prefix.rsplit(':').next()?;
        let role = rest.split('/').next()?;
        Self::parse(&format!("arn:aws:iam::{account}:role/{role}")).ok()
    }

    fn matches(&self, account: Option<&AccountId>, kind: Kind, name: &str) -> bool {
        let account_ok = match (&self.account, account) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b.as_str(),
            // The finding did not say which account: treat it as a match, the safe side.
            (Some(_), None) => true,
        };
        let name_ok = match self.name.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => self.name == name,
        };
        account_ok && self.kind == kind && name_ok
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalPatterns(Vec<Pattern>);

impl PrincipalPatterns {
    /// Comma-separated ARNs, as `PROTECTED_PRINCIPALS` holds them.
    pub fn parse(list: &str) -> Result<Self, PatternError> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Pattern::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn add(&mut self, pattern: Pattern) {
        self.0.push(pattern);
    }

    /// The entry that protects this principal, if any.
    pub fn matching(&self, account: Option<&AccountId>, principal: &Principal) -> Option<&Pattern> {
        let (kind, name) = match principal {
            Principal::User(n) => (Kind::User, n.as_str()),
            Principal::Role(n) => (Kind::Role, n.as_str()),
            Principal::Root | Principal::Unsupported(_) => return None,
        };
        self.0.iter().find(|p| p.matches(account, kind, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IamName;

    fn acct(s: &str) -> AccountId {
        AccountId::parse(s).unwrap()
    }

    #[test]
    fn matches_by_account_kind_and_name_ignoring_path() {
        let p = PrincipalPatterns::parse(
            "arn:aws:iam::111122223333:role/admin/BreakGlass*, arn:aws:iam::*:user/ci-deployer",
        )
        .unwrap();
        let role = |n: &str| Principal::Role(IamName::parse(n).unwrap());
        let user = |n: &str| Principal::User(IamName::parse(n).unwrap());
        let a = acct("111122223333");
        let b = acct("444455556666");
        assert!(p.matching(Some(&a), &role("BreakGlassAdmin")).is_some());
        assert!(p.matching(Some(&b), &role("BreakGlassAdmin")).is_none());
        assert!(p.matching(Some(&a), &user("BreakGlassAdmin")).is_none());
        assert!(p.matching(Some(&b), &user("ci-deployer")).is_some());
        assert!(p.matching(Some(&b), &user("ci-deployer2")).is_none());
    }

    #[test]
    fn rejects_what_is_not_an_iam_arn() {
        for bad in [
            "BreakGlass",
            "arn:aws:iam::1:role/x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::111122223333:group/x",
        ] {
            assert!(PrincipalPatterns::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn principal_from_caller_arn() {
        let p = Pattern::from_caller_arn(
            "arn:aws:sts::111122223333:assumed-role/cordon-fn-role/cordon",
        )
        .unwrap();
        assert!(p.matches(Some(&acct("111122223333")), Kind::Role, "cordon-fn-role"));
        // A user or role ARN (a deployer with long-term keys) is itself.
        let user = Pattern::from_caller_arn("arn:aws:iam::111122223333:user/ci").unwrap();
        assert!(user.matches(Some(&acct("111122223333")), Kind::User, "ci"));
        assert!(Pattern::from_caller_arn("arn:aws:sts::111122223333:federated-user/x").is_none());
    }
}
