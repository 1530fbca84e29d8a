//! Configuration, read once at cold start. A value we cannot read stops the function at init,
//! loudly, rather than running with a guess.

use std::collections::HashMap;

use crate::aws::TrustStore;
use crate::ids::{AccessKeyId, AccountId, InstanceId};
use crate::protect::{Pattern, PatternError, PrincipalPatterns, ProtectionTag};
use crate::rules::{self, RuleSettings};

#[derive(Debug, Clone)]
pub struct Config {
    pub alert_topic_arn: String,
    pub ledger_table: String,
    /// PROTECTED_PRINCIPALS, both of cordon's function roles (CORDON_ROLES) and its deployer.
    pub protected: PrincipalPatterns,
    /// PROTECTED_INSTANCES: what isolate-instance never touches.
    pub protected_instances: Vec<InstanceId>,
    /// PROTECTION_TAG_KEY: the administrator's reserved tag that protects an instance. `None`
    /// (the default): no tag protects an instance.
    pub protection_tag: Option<ProtectionTag>,
    pub dry_run: bool,
    pub deactivate_all_keys: bool,
    pub quarantine_roles: bool,
    pub respond_to_sample_findings: bool,
    /// GuardDuty findings below this severity are recorded as ignored.
    pub min_severity: f64,
    /// At most this many instances of one attack sequence are isolated; the rest are listed.
    pub max_instances_per_incident: usize,
    pub stop_instance: bool,
    /// An instance incident also cuts every session of the instance's role, fleet-wide.
    pub revoke_whole_instance_role: bool,
    /// How long a claim on an incident holds before a retry may take it over.
    pub lease_seconds: u64,
    /// At most this many new containments per account per window; the rest are deferred.
    pub rate_limit: u32,
    pub rate_window_seconds: u64,
    /// A rule and principal's notify-only incidents are published once per this window; the
    /// rest are counted in the ledger.
    pub notice_window_seconds: u64,
    pub rules: RuleSettings,
    pub trust_store: TrustStore,
    pub trace: TraceSettings,
}

/// trace-credentials: how far back and how deep it follows a credential.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// LookupEvents keeps 90 days: more is not there to read.
    pub days: u64,
    /// How many hops of minted credentials are followed from the first key.
    pub depth: u32,
    /// Stop the instances the chain launched (opt-in: they are listed either way).
    pub stop_instances: bool,
}

impl Config {
    /// The ledger's table name: `LEDGER_TABLE` is its name, or its ARN when the ledger is
    /// another region's (see `ledger_region`).
    pub fn ledger_table_name(&self) -> &str {
        arn_region(&self.ledger_table)
            .and_then(|_| self.ledger_table.rsplit_once(":table/"))
            .map_or(self.ledger_table.as_str(), |(_, name)| name)
    }

    /// The region of a ledger given by ARN.
    pub fn ledger_region(&self) -> Option<&str> {
        arn_region(&self.ledger_table)
    }

    pub fn alert_topic_region(&self) -> Option<&str> {
        arn_region(&self.alert_topic_arn)
    }
}

/// The region an ARN names (`arn:partition:service:region:account:resource`), if it is one.
fn arn_region(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    (parts.next() == Some("arn")).then_some(())?;
    parts.nth(2).filter(|r| !r.is_empty())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name} must be true or false, not {value:?}")]
    NotABool { name: &'static str, value: String },
    #[error("{name} must be a whole number, not {value:?}")]
    NotANumber { name: &'static str, value: String },
    #[error("{name}: {source}")]
    Principals {
        name: &'static str,
        source: PatternError,
    },
    #[error("{name}: {value:?} is not {expected}")]
    BadValue {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let required = |name: &'static str| {
            get(name)
                .map(str::to_owned)
                .ok_or(ConfigError::Missing(name))
        };
        let flag = |name: &'static str| match get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ConfigError::NotABool {
                name,
                value: v.to_owned(),
            }),
        };
        let number = |name: &'static str, default: u64| match get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ConfigError::NotANumber {
                name,
                value: v.to_owned(),
            }),
        };
        let lease_seconds = number("LEASE_SECONDS", 300)?;
        let min_severity = match get("MIN_SEVERITY") {
            None => 4.0,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|s| (0.0..=10.0).contains(s))
                .ok_or_else(|| ConfigError::BadValue {
                    name: "MIN_SEVERITY",
                    value: v.to_owned(),
                    expected: "a GuardDuty severity from 0 to 10",
                })?,
        };
        let rate_limit = u32::try_from(number("RATE_LIMIT", 10)?).unwrap_or(u32::MAX);
        let rate_window_seconds = number("RATE_WINDOW_SECONDS", 600)?.max(1);
        let notice_window_seconds = number("NOTICE_WINDOW_SECONDS", 900)?.max(1);
        let list = |name: &str| -> Vec<String> {
            get(name)
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let checked = |name: &'static str, expected: &'static str, ok: &dyn Fn(&str) -> bool| {
            let items = list(name);
            match items.iter().find(|i| !ok(i)) {
                Some(bad) => Err(ConfigError::BadValue {
                    name,
                    value: bad.clone(),
                    expected,
                }),
                None => Ok(items),
            }
        };
        let principals = |name: &'static str| {
            PrincipalPatterns::parse(get(name).unwrap_or(""))
                .map_err(|source| ConfigError::Principals { name, source })
        };
        let deployer = get("DEPLOYER_ARN")
            .map(|arn| {
                Pattern::from_caller_arn(arn).ok_or_else(|| ConfigError::BadValue {
                    name: "DEPLOYER_ARN",
                    value: arn.to_owned(),
                    expected: "an IAM user, role or assumed-role ARN",
                })
            })
            .transpose()?;
        // cordon's own roles and its deployer: what they do to cordon is not tampering.
        let cordon_roles = principals("CORDON_ROLES")?;
        let mut cordon_principals = cordon_roles.clone();
        if let Some(d) = &deployer {
            cordon_principals.add(d.clone());
        }
        let protected_instances = list("PROTECTED_INSTANCES")
            .iter()
            .map(|i| {
                InstanceId::parse(i).map_err(|_| ConfigError::BadValue {
                    name: "PROTECTED_INSTANCES",
                    value: i.clone(),
                    expected: "an instance id (i-...)",
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let protection_tag = get("PROTECTION_TAG_KEY")
            .map(|k| {
                ProtectionTag::parse(k).ok_or_else(|| ConfigError::BadValue {
                    name: "PROTECTION_TAG_KEY",
                    value: k.to_owned(),
                    expected: "an EC2 tag key (not aws:...)",
                })
            })
            .transpose()?;
        let cordon_prefix = get("CORDON_PREFIX")
            .map(|p| {
                if p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    Ok(p.to_owned())
                } else {
                    Err(ConfigError::BadValue {
                        name: "CORDON_PREFIX",
                        value: p.to_owned(),
                        expected: "a stack name (letters, digits and hyphens)",
                    })
                }
            })
            .transpose()?;
        let rules = RuleSettings {
            disabled: checked("DISABLED_RULES", "a rule id", &rules::is_rule)?,
            allowed_accounts: checked("ALLOWED_ACCOUNTS", "a 12-digit account id", &|a| {
                AccountId::parse(a).is_ok()
            })?,
            allowed_regions: list("ALLOWED_REGIONS"),
            canary_keys: checked("CANARY_ACCESS_KEYS", "an access key id", &|k| {
                AccessKeyId::parse(k).is_ok()
            })?,
            bedrock_allowed: principals("BEDROCK_ALLOWED_PRINCIPALS")?,
            iam_admins: principals("IAM_ADMIN_PRINCIPALS")?,
            compute_allowed: match get("COMPUTE_ALLOWED_PRINCIPALS") {
                None => None,
                Some(_) => Some(principals("COMPUTE_ALLOWED_PRINCIPALS")?),
            },
            cordon_roles: cordon_roles.clone(),
            cordon_principals,
            cordon_prefix,
            alert_topic_arn: get("ALERT_TOPIC_ARN").map(str::to_owned),
            ledger_table: get("LEDGER_TABLE").map(str::to_owned),
            cordon_groups: Vec::new(),
        };
        let trust_store = match get("TRUST_STORE") {
            None => TrustStore::Amazon,
            Some(v) => TrustStore::parse(v).ok_or_else(|| ConfigError::BadValue {
                name: "TRUST_STORE",
                value: v.to_owned(),
                expected: "amazon or system",
            })?,
        };
        // Both functions protect both roles: each learns its own at start-up, and neither may be
        // turned on the other.
        let mut protected = principals("PROTECTED_PRINCIPALS")?;
        protected.extend(&cordon_roles);
        if let Some(d) = deployer {
            protected.add(d);
        }
        let trace = TraceSettings {
            days: number("TRACE_DAYS", 90)?.clamp(1, 90),
            depth: u32::try_from(number("TRACE_DEPTH", 3)?.min(10)).unwrap_or(10),
            stop_instances: flag("TRACE_STOP_INSTANCES")?,
        };
        Ok(Self {
            rules,
            trust_store,
            trace,
            protected,
            protected_instances,
            protection_tag,
            alert_topic_arn: required("ALERT_TOPIC_ARN")?,
            ledger_table: required("LEDGER_TABLE")?,
            dry_run: flag("DRY_RUN")?,
            deactivate_all_keys: flag("DEACTIVATE_ALL_KEYS")?,
            quarantine_roles: flag("QUARANTINE_ROLES")?,
            respond_to_sample_findings: flag("RESPOND_TO_SAMPLE_FINDINGS")?,
            min_severity,
            max_instances_per_incident: usize::try_from(number("MAX_INSTANCES_PER_INCIDENT", 10)?)
                .unwrap_or(usize::MAX),
            stop_instance: flag("STOP_INSTANCE")?,
            revoke_whole_instance_role: flag("REVOKE_WHOLE_INSTANCE_ROLE")?,
            lease_seconds,
            rate_limit,
            rate_window_seconds,
            notice_window_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IamName;
    use crate::principal::Principal;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn safe_defaults() {
        let c =
            Config::from_vars(&vars(&[("ALERT_TOPIC_ARN", "t"), ("LEDGER_TABLE", "l")])).unwrap();
        assert!(!c.dry_run && !c.deactivate_all_keys && !c.quarantine_roles);
        assert!(!c.respond_to_sample_findings && !c.stop_instance);
        assert!(!c.revoke_whole_instance_role);
        assert_eq!(c.lease_seconds, 300);
        assert_eq!(c.trust_store, TrustStore::Amazon);
    }

    #[test]
    fn stores_may_be_another_regions() {
        let c = Config::from_vars(&vars(&[
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:cordon-AlertTopic-X",
            ),
            (
                "LEDGER_TABLE",
                "arn:aws:dynamodb:us-east-1:123456789012:table/cordon-LedgerTable-Y",
            ),
        ]))
        .unwrap();
        assert_eq!(c.ledger_table_name(), "cordon-LedgerTable-Y");
        assert_eq!(c.ledger_region(), Some("us-east-1"));
        assert_eq!(c.alert_topic_region(), Some("us-east-1"));
        let local =
            Config::from_vars(&vars(&[("ALERT_TOPIC_ARN", "t"), ("LEDGER_TABLE", "l")])).unwrap();
        assert_eq!(
            (local.ledger_table_name(), local.ledger_region()),
            ("l", None)
        );
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(matches!(
            Config::from_vars(&vars(&[("LEDGER_TABLE", "l")])),
            Err(ConfigError::Missing("ALERT_TOPIC_ARN"))
        ));
        let bad = vars(&[
            ("ALERT_TOPIC_ARN", "t"),
            ("LEDGER_TABLE", "l"),
            ("DRY_RUN", "yes"),
        ]);
        assert!(matches!(
            Config::from_vars(&bad),
            Err(ConfigError::NotABool {
                name: "DRY_RUN",
                ..
            })
        ));
        for (name, value) in [("TRUST_STORE", "any"), ("DEPLOYER_ARN", "alice")] {
            let bad = vars(&[
                ("ALERT_TOPIC_ARN", "t"),
                ("LEDGER_TABLE", "l"),
                (name, value),
            ]);
            assert!(
                matches!(Config::from_vars(&bad), Err(ConfigError::BadValue { name: n, .. }) if n == name)
            );
        }
    }

    /// Rule cordon-tampered learns cordon's roles, deployer, prefix, topic and table.
    #[test]
    fn cordon_is_known_to_its_tamper_rule() {
        let c = Config::from_vars(&vars(&[
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:111122223333:cordon-AlertTopic-X",
            ),
            ("LEDGER_TABLE", "cordon-LedgerTable-Y"),
            ("CORDON_PREFIX", "cordon"),
            (
                "CORDON_ROLES",
                "arn:aws:iam::111122223333:role/cordon-QuarantineCredentialsFunctionRole-Z",
            ),
            ("DEPLOYER_ARN", "arn:aws:iam::111122223333:user/ci"),
        ]))
        .unwrap();
        let account = AccountId::parse("111122223333").unwrap();
        let role =
            Principal::Role(IamName::parse("cordon-QuarantineCredentialsFunctionRole-Z").unwrap());
        let ci = Principal::User(IamName::parse("ci").unwrap());
        let r = &c.rules;
        assert!(r
            .cordon_principals
            .matching(Some(&account), &role, None)
            .is_some());
        assert!(r
            .cordon_principals
            .matching(Some(&account), &ci, None)
            .is_some());
        assert!(c.protected.matching(Some(&account), &ci, None).is_some());
        assert_eq!(r.cordon_prefix.as_deref(), Some("cordon"));
        assert_eq!(r.ledger_table.as_deref(), Some("cordon-LedgerTable-Y"));
        assert_eq!(
            r.alert_topic_arn.as_deref(),
            Some(c.alert_topic_arn.as_str())
        );
        for (name, value) in [("CORDON_PREFIX", "cordon/x"), ("CORDON_ROLES", "cordon-*")] {
            let bad = vars(&[
                ("ALERT_TOPIC_ARN", "t"),
                ("LEDGER_TABLE", "l"),
                (name, value),
            ]);
            assert!(Config::from_vars(&bad).is_err(), "{name}={value}");
        }
    }

    /// Each function learns its own role at start-up; CORDON_ROLES protects both roles in both
    /// functions, so neither can be turned on the other.
    #[test]
    fn both_function_roles_are_protected() {
        let c = Config::from_vars(&vars(&[
            ("ALERT_TOPIC_ARN", "t"),
            ("LEDGER_TABLE", "l"),
            (
                "CORDON_ROLES",
                "arn:aws:iam::111122223333:role/cordon-QuarantineCredentialsFunctionRole-Z,arn:aws:iam::111122223333:role/cordon-IsolateInstanceFunctionRole-Y",
            ),
        ]))
        .unwrap();
        let account = AccountId::parse("111122223333").unwrap();
        for role in [
            "cordon-QuarantineCredentialsFunctionRole-Z",
            "cordon-IsolateInstanceFunctionRole-Y",
        ] {
            let role = Principal::Role(IamName::parse(role).unwrap());
            assert!(c.protected.matching(Some(&account), &role, None).is_some());
            assert!(c
                .rules
                .cordon_roles
                .matching(Some(&account), &role, None)
                .is_some());
        }
    }

    #[test]
    fn protection_is_configuration() {
        let c =
            Config::from_vars(&vars(&[("ALERT_TOPIC_ARN", "t"), ("LEDGER_TABLE", "l")])).unwrap();
        assert!(c.protected_instances.is_empty());
        assert_eq!(c.protection_tag, None, "no tag protects by default");
        let c = Config::from_vars(&vars(&[
            ("ALERT_TOPIC_ARN", "t"),
            ("LEDGER_TABLE", "l"),
            ("PROTECTED_INSTANCES", "i-0123456789abcdef0, i-99999999"),
            ("PROTECTION_TAG_KEY", "acme:ir-exempt"),
        ]))
        .unwrap();
        assert_eq!(c.protected_instances.len(), 2);
        assert_eq!(
            c.protection_tag,
            Some(ProtectionTag::parse("acme:ir-exempt").unwrap())
        );
        for (name, value) in [
            ("PROTECTED_INSTANCES", "web-1"),
            ("PROTECTION_TAG_KEY", "aws:autoscaling:groupName"),
        ] {
            let bad = vars(&[
                ("ALERT_TOPIC_ARN", "t"),
                ("LEDGER_TABLE", "l"),
                (name, value),
            ]);
            assert!(
                matches!(Config::from_vars(&bad), Err(ConfigError::BadValue { name: n, .. }) if n == name),
                "{name}={value}"
            );
        }
    }

    /// A pattern that would protect every principal stops the function at start-up.
    #[test]
    fn a_protection_for_everyone_is_a_start_up_error() {
        for value in ["*", "arn:aws:iam::*:user/*", "arn:aws:iam::*:*"] {
            let bad = vars(&[
                ("ALERT_TOPIC_ARN", "t"),
                ("LEDGER_TABLE", "l"),
                ("PROTECTED_PRINCIPALS", value),
            ]);
            assert!(
                matches!(
                    Config::from_vars(&bad),
                    Err(ConfigError::Principals {
                        name: "PROTECTED_PRINCIPALS",
                        source: PatternError::MatchesEveryone(_)
                    })
                ),
                "{value}"
            );
        }
    }

    /// The principal that deployed the stack (an SSO session here) is protected like the
    /// function's own role.
    #[test]
    fn the_deployer_is_protected() {
        let c = Config::from_vars(&vars(&[
            ("ALERT_TOPIC_ARN", "t"),
            ("LEDGER_TABLE", "l"),
            (
                "DEPLOYER_ARN",
                "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123/jane@example.com",
            ),
        ]))
        .unwrap();
        let role = Principal::Role(IamName::parse("AWSReservedSSO_Admin_0123").unwrap());
        let account = AccountId::parse("111122223333").unwrap();
        assert!(c.protected.matching(Some(&account), &role, None).is_some());
    }
}
