//! What cordon must never touch: protected principals (break-glass roles, the allow-list, its own
//! roles and deployer) and protected instances. Checked before any write.
//!
//! Protection comes only from what an administrator controls: configuration, or a tag key the
//! administrator names and reserves. An ordinary tag protects nothing, because the principal
//! cordon is about to contain can often set it.

use std::collections::BTreeMap;
use std::fmt;

use crate::ids::{AccountId, IamName, InstanceId};
use crate::principal::{IamPath, Principal};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error(
        "{0:?} is not an IAM user or role ARN (arn:aws:iam::<account|*>:<user|role>/[path/]<name>[*], a * only at the end of the name)"
    )]
    NotAnArn(String),
    #[error("{0:?} would match every user or role: name them, or give a path other than /")]
    MatchesEveryone(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Role,
}

/// IAM names are unique in an account whatever their case, so both are kept lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    Exact(String),
    Prefix(String),
}

/// One entry: an IAM ARN whose account may be `*` and whose name may end in `*`. The path is
/// compared exactly: `user/admins/*` is the users whose path is `/admins/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    account: Option<AccountId>,
    kind: Kind,
    /// `None`: any path. Only a role learnt from an assumed-role ARN, which does not carry the
    /// role's path, is named this way, and always by its exact name.
    path: Option<IamPath>,
    name: Name,
    source: String,
}

impl Pattern {
    pub fn parse(arn: &str) -> Result<Self, PatternError> {
        let shown = || arn.chars().take(200).collect::<String>();
        let not_an_arn = || PatternError::NotAnArn(shown());
        let everyone = || PatternError::MatchesEveryone(shown());
        if arn.trim_matches('*').is_empty() {
            return Err(everyone());
        }
        let (_partition, rest) = arn
            .strip_prefix("arn:")
            .and_then(|r| r.split_once(":iam::"))
            .ok_or_else(not_an_arn)?;
        let (account, resource) = rest.split_once(':').ok_or_else(not_an_arn)?;
        let account = match account {
            "*" => None,
            a => Some(AccountId::parse(a).map_err(|_| not_an_arn())?),
        };
        let (kind, path_and_name) = resource.split_once('/').unwrap_or((resource, ""));
        let kind = match kind {
            "user" => Kind::User,
            "role" => Kind::Role,
            // `arn:aws:iam::*:*`, `...:user*`: a wildcard before the name.
            k if k.contains('*') => return Err(everyone()),
            _ => return Err(not_an_arn()),
        };
        let (path, name) = match path_and_name.rsplit_once('/') {
            Some((path, name)) => (format!("/{path}/"), name),
            None => ("/".to_owned(), path_and_name),
        };
        let path = IamPath::parse(&path).ok_or_else(not_an_arn)?;
        let valid = |n: &str| IamName::parse(n).map_err(|_| not_an_arn());
        let name = match name.strip_suffix('*') {
            Some("") if path.is_root() => return Err(everyone()),
            Some("") => Name::Prefix(String::new()),
            Some(prefix) => Name::Prefix(valid(prefix)?.as_str().to_ascii_lowercase()),
            None => Name::Exact(valid(name)?.as_str().to_ascii_lowercase()),
        };
        Ok(Self {
            account,
            kind,
            path: Some(path),
            name,
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
        let account = AccountId::parse(prefix.rsplit(':').next()?).ok()?;
        let role = IamName::parse(rest.split('/').next()?).ok()?;
        Some(Self {
            source: format!("arn:aws:iam::{account}:role/{role}"),
            account: Some(account),
            kind: Kind::Role,
            path: None,
            name: Name::Exact(role.as_str().to_ascii_lowercase()),
        })
    }

    fn matches(
        &self,
        account: Option<&AccountId>,
        kind: Kind,
        name: &IamName,
        path: Option<&IamPath>,
    ) -> bool {
        let account_ok = match (&self.account, account) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            // The finding did not say which account: treat it as a match, the safe side.
            (Some(_), None) => true,
        };
        let name = name.as_str();
        let name_ok = match &self.name {
            Name::Exact(n) => name.eq_ignore_ascii_case(n),
            Name::Prefix(p) => name
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p)),
        };
        let path_ok = match (&self.path, path) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // The event does not say where the principal sits (a GuardDuty finding names it
            // alone). An exact name is one principal wherever it sits; a wildcard would match
            // on the name alone, which is not what the pattern says.
            (Some(_), None) => matches!(self.name, Name::Exact(_)),
        };
        account_ok && self.kind == kind && name_ok && path_ok
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

    pub fn extend(&mut self, other: &Self) {
        self.0.extend(other.0.iter().cloned());
    }

    /// The entry that protects this principal, if any. `path` is where the principal sits as
    /// the event's ARN says, `None` when the event does not say.
    pub fn matching(
        &self,
        account: Option<&AccountId>,
        principal: &Principal,
        path: Option<&IamPath>,
    ) -> Option<&Pattern> {
        let (kind, name) = match principal {
            Principal::User(n) => (Kind::User, n),
            Principal::Role(n) => (Kind::Role, n),
            Principal::Root | Principal::Unsupported(_) => return None,
        };
        self.0.iter().find(|p| p.matches(account, kind, name, path))
    }
}

/// The tag cordon once honoured. Anyone who may tag the instance (often its own role, even at
/// launch) can set it, so it protects nothing unless an administrator makes it the
/// `PROTECTION_TAG_KEY`; an instance carrying it is contained and the record says so.
pub const UNRESERVED_PROTECTION_TAG: &str = "cordon:protected";

/// The tag key (`PROTECTION_TAG_KEY`) whose value `true` protects an instance: opt-in, for a key
/// the administrator reserves with a tag policy or SCP so that only they can set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectionTag(String);

impl ProtectionTag {
    /// An EC2 tag key: 1 to 128 letters, digits, spaces and `+ - = . _ : / @`, not `aws:...`.
    pub fn parse(key: &str) -> Option<Self> {
        let ok = (1..=128).contains(&key.chars().count())
            && key
                .chars()
                .all(|c| c.is_alphanumeric() || " +-=._:/@".contains(c))
            && !key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"));
        ok.then(|| Self(key.to_owned()))
    }
}

impl fmt::Display for ProtectionTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an instance's tags say about protecting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagVerdict {
    /// It carries the administrator's protection tag: why it is not touched.
    Protected(String),
    /// It carries a protection tag that is not honoured: the note for the record.
    NotHonoured(String),
    Unprotected,
}

pub fn tag_verdict(
    reserved: Option<&ProtectionTag>,
    tags: &BTreeMap<String, String>,
) -> TagVerdict {
    let is_true = |key: &str| tags.get(key).is_some_and(|v| v == "true");
    match reserved {
        Some(tag) if is_true(&tag.0) => {
            TagVerdict::Protected(format!("tagged {tag}=true (PROTECTION_TAG_KEY)"))
        }
        _ if is_true(UNRESERVED_PROTECTION_TAG) => TagVerdict::NotHonoured(format!(
            "tag {UNRESERVED_PROTECTION_TAG}=true not honoured: anyone who can tag the instance can set it; \
             instances are protected by PROTECTED_INSTANCES or the reserved PROTECTION_TAG_KEY"
        )),
        _ => TagVerdict::Unprotected,
    }
}

/// Instances listed in `PROTECTED_INSTANCES`. EC2 writes ids in lowercase; a list typed in
/// capitals still means them.
pub fn instance_listed(listed: &[InstanceId], instance: &InstanceId) -> bool {
    listed
        .iter()
        .any(|i| i.as_str().eq_ignore_ascii_case(instance.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(s: &str) -> AccountId {
        AccountId::parse(s).unwrap()
    }

    fn role(n: &str) -> Principal {
        Principal::Role(IamName::parse(n).unwrap())
    }

    fn user(n: &str) -> Principal {
        Principal::User(IamName::parse(n).unwrap())
    }

    fn path(p: &str) -> IamPath {
        IamPath::parse(p).unwrap()
    }

    #[test]
    fn matches_by_account_kind_path_and_name() {
        let p = PrincipalPatterns::parse(
            "arn:aws:iam::111122223333:role/admin/BreakGlass*, arn:aws:iam::*:user/ci-deployer",
        )
        .unwrap();
        let a = acct("111122223333");
        let b = acct("444455556666");
        let admin = path("/admin/");
        let root = path("/");
        let m = |acct: &AccountId, who: &Principal, at: &IamPath| {
            p.matching(Some(acct), who, Some(at)).is_some()
        };
        assert!(m(&a, &role("BreakGlassAdmin"), &admin));
        assert!(!m(&a, &role("BreakGlassAdmin"), &root), "another path");
        assert!(!m(&b, &role("BreakGlassAdmin"), &admin), "another account");
        assert!(!m(&a, &user("BreakGlassAdmin"), &admin), "another kind");
        assert!(m(&b, &user("ci-deployer"), &root));
        assert!(!m(&b, &user("ci-deployer2"), &root));
        assert!(!m(&b, &user("ci-deployer"), &admin));
    }

    /// `user/admins/*` protected every user when only the last segment was kept.
    #[test]
    fn a_path_pattern_protects_that_path_only() {
        let p = PrincipalPatterns::parse("arn:aws:iam::*:user/admins/*").unwrap();
        let a = acct("111122223333");
        let at = |s: &str| Some(path(s));
        assert!(p
            .matching(Some(&a), &user("jane"), at("/admins/").as_ref())
            .is_some());
        for elsewhere in ["/", "/ops/", "/admins/ops/", "/Admins/", "/x/admins/"] {
            assert!(
                p.matching(Some(&a), &user("jane"), at(elsewhere).as_ref())
                    .is_none(),
                "{elsewhere}"
            );
        }
        assert!(p
            .matching(Some(&a), &role("jane"), at("/admins/").as_ref())
            .is_none());
        // A GuardDuty finding does not say the path: a wildcard cannot vouch for the user.
        assert!(p.matching(Some(&a), &user("jane"), None).is_none());
    }

    #[test]
    fn names_compare_without_case() {
        let p =
            PrincipalPatterns::parse("arn:aws:iam::*:user/BreakGlass, arn:aws:iam::*:role/Ops-*")
                .unwrap();
        let a = acct("111122223333");
        let root = path("/");
        assert!(p
            .matching(Some(&a), &user("breakglass"), Some(&root))
            .is_some());
        assert!(p.matching(Some(&a), &user("BREAKGLASS"), None).is_some());
        assert!(p
            .matching(Some(&a), &role("ops-deploy"), Some(&root))
            .is_some());
        assert!(p.matching(Some(&a), &role("op"), Some(&root)).is_none());
    }

    /// An exact name is one principal in the account whatever its path, so a finding without
    /// the path still finds it.
    #[test]
    fn an_exact_name_matches_where_the_path_is_unknown() {
        let p = PrincipalPatterns::parse("arn:aws:iam::*:user/admins/jane").unwrap();
        let a = acct("111122223333");
        assert!(p.matching(Some(&a), &user("jane"), None).is_some());
        assert!(p
            .matching(Some(&a), &user("jane"), Some(&path("/")))
            .is_none());
    }

    #[test]
    fn a_pattern_for_everyone_is_refused() {
        for all in [
            "*",
            "**",
            "arn:aws:iam::*:*",
            "arn:aws:iam::*:user*",
            "arn:aws:iam::*:*/x",
            "arn:aws:iam::*:user/*",
            "arn:aws:iam::*:role/*",
            "arn:aws:iam::111122223333:user/*",
        ] {
            assert!(
                matches!(
                    PrincipalPatterns::parse(all),
                    Err(PatternError::MatchesEveryone(_))
                ),
                "{all}: {:?}",
                PrincipalPatterns::parse(all)
            );
        }
        assert!(PrincipalPatterns::parse("arn:aws:iam::*:user/admins/*").is_ok());
        assert!(PrincipalPatterns::parse("arn:aws:iam::*:user/a*").is_ok());
    }

    #[test]
    fn rejects_what_is_not_an_iam_arn() {
        for bad in [
            "BreakGlass",
            "arn:aws:iam::1:role/x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::111122223333:group/x",
            "arn:aws:iam::111122223333:user",
            "arn:aws:iam::111122223333:user/",
            "arn:aws:iam::111122223333:user/*/x",
            "arn:aws:iam::111122223333:user/a*b",
            "arn:aws:iam::111122223333:user/a//b",
        ] {
            assert!(
                matches!(
                    PrincipalPatterns::parse(bad),
                    Err(PatternError::NotAnArn(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn principal_from_caller_arn() {
        let p = Pattern::from_caller_arn(
            "arn:aws:sts::111122223333:assumed-role/cordon-fn-role/cordon",
        )
        .unwrap();
        let a = acct("111122223333");
        let name = IamName::parse("cordon-fn-role").unwrap();
        // The session ARN does not carry the role's path: the role is known by name wherever
        // it sits.
        assert!(p.matches(Some(&a), Kind::Role, &name, Some(&path("/service-role/"))));
        assert!(p.matches(Some(&a), Kind::Role, &name, None));
        // A user or role ARN (a deployer with long-term keys) is itself.
        let user = Pattern::from_caller_arn("arn:aws:iam::111122223333:user/ci").unwrap();
        let ci = IamName::parse("ci").unwrap();
        assert!(user.matches(Some(&a), Kind::User, &ci, Some(&path("/"))));
        assert!(Pattern::from_caller_arn("arn:aws:sts::111122223333:federated-user/x").is_none());
    }

    #[test]
    fn only_the_reserved_tag_protects_an_instance() {
        let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let attacker = tags(&[(UNRESERVED_PROTECTION_TAG, "true")]);
        assert!(matches!(
            tag_verdict(None, &attacker),
            TagVerdict::NotHonoured(_)
        ));
        let reserved = ProtectionTag::parse("acme:ir-exempt").unwrap();
        assert!(matches!(
            tag_verdict(Some(&reserved), &attacker),
            TagVerdict::NotHonoured(_)
        ));
        assert!(matches!(
            tag_verdict(Some(&reserved), &tags(&[("acme:ir-exempt", "true")])),
            TagVerdict::Protected(_)
        ));
        assert_eq!(
            tag_verdict(Some(&reserved), &tags(&[("acme:ir-exempt", "yes")])),
            TagVerdict::Unprotected
        );
        // An administrator may reserve cordon's old key itself.
        let old = ProtectionTag::parse(UNRESERVED_PROTECTION_TAG).unwrap();
        assert!(matches!(
            tag_verdict(Some(&old), &attacker),
            TagVerdict::Protected(_)
        ));
        for bad in [
            "",
            "aws:cloudformation:stack-name",
            "a\"b",
            &"k".repeat(129),
        ] {
            assert!(ProtectionTag::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn listed_instances() {
        let listed = [InstanceId::parse("i-0123456789ABCDEF0").unwrap()];
        assert!(instance_listed(
            &listed,
            &InstanceId::parse("i-0123456789abcdef0").unwrap()
        ));
        assert!(!instance_listed(
            &listed,
            &InstanceId::parse("i-0123456789abcdef1").unwrap()
        ));
    }
}
