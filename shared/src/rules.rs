//! Detection rules over CloudTrail records. Rules are data: an id, what a person reads, the
//! calls they look at, one named test, a severity and a response. Evaluation is pure and reads
//! the record in place.

use serde::Serialize;
use serde_json::Value;

use crate::events::cloudtrail::Record;
use crate::ids::IamName;
use crate::principal::Principal;
use crate::protect::PrincipalPatterns;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Contain,
    Notify,
}

/// What a rule checks beyond the call's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// The call alone is the signal.
    Always,
    /// AWS attached its quarantine policy (or its older inline form) to a user.
    AwsQuarantine,
    CanaryKey,
    /// CloudTrail event selectors that stop recording management events.
    DropsManagementEvents,
    /// GuardDuty detector disabled.
    DetectorDisabled,
    /// Credentials or a login created for a user other than the caller.
    OtherUsersCredentials,
    /// Administrator rights granted to a user by a long-term key.
    AdminGrantByLongTermKey,
    /// A role's trust policy opened to an account outside ALLOWED_ACCOUNTS.
    TrustsOutsideAccount,
    /// A snapshot, image or DB snapshot shared publicly or outside ALLOWED_ACCOUNTS.
    SharedOutside,
    /// A bucket policy or ACL that grants everyone.
    PublicBucket,
    /// Bucket replication to another account.
    ReplicatesOutside,
    /// A Bedrock call by a principal outside BEDROCK_ALLOWED_PRINCIPALS.
    BedrockByOutsider,
    /// Compute or email created in a region outside ALLOWED_REGIONS or by a principal outside
    /// COMPUTE_ALLOWED_PRINCIPALS (each check applies only when configured).
    ComputeOutsideAllowed,
    /// As above, for RunInstances of GPU / accelerator families.
    GpuOutsideAllowed,
    RootCaller,
    /// Ingress from anywhere to SSH or RDP.
    AdminPortsOpen,
}

pub struct Rule {
    pub id: &'static str,
    pub description: &'static str,
    /// `(event source, event name)`; a name ending in `*` is a prefix. Empty: every call.
    pub calls: &'static [(&'static str, &'static str)],
    pub test: Test,
    pub severity: f64,
    pub response: Response,
}

const IAM: &str = "iam.amazonaws.com";
const BEDROCK: &str = "bedrock.amazonaws.com";

pub static RULES: &[Rule] = &[
    Rule {
        id: "aws-quarantined-key",
        description: "AWS attached its compromised-key quarantine to a user: finish the job (our quarantine, every active key deactivated)",
        calls: &[(IAM, "AttachUserPolicy"), (IAM, "PutUserPolicy")],
        test: Test::AwsQuarantine,
        severity: 9.0,
        response: Response::Contain,
    },
    Rule {
        id: "canary-key-used",
        description: "A canary access key (never used legitimately) signed a request",
        calls: &[],
        test: Test::CanaryKey,
        severity: 9.0,
        response: Response::Contain,
    },
    Rule {
        id: "logging-tampered",
        description: "Audit logging or threat detection was switched off or narrowed",
        calls: &[
            ("cloudtrail.amazonaws.com", "StopLogging"),
            ("cloudtrail.amazonaws.com", "DeleteTrail"),
            ("guardduty.amazonaws.com", "DeleteDetector"),
            ("guardduty.amazonaws.com", "DisassociateFromMasterAccount"),
            ("guardduty.amazonaws.com", "DisassociateFromAdministratorAccount"),
            ("ec2.amazonaws.com", "DeleteFlowLogs"),
            ("config.amazonaws.com", "StopConfigurationRecorder"),
            ("config.amazonaws.com", "DeleteConfigurationRecorder"),
        ],
        test: Test::Always,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "logging-narrowed",
        description: "CloudTrail event selectors changed to drop management events",
        calls: &[("cloudtrail.amazonaws.com", "PutEventSelectors")],
        test: Test::DropsManagementEvents,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "detector-disabled",
        description: "A GuardDuty detector was disabled",
        calls: &[("guardduty.amazonaws.com", "UpdateDetector")],
        test: Test::DetectorDisabled,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "persistence-other-user",
        description: "Access keys or a console password created for a different user than the caller",
        calls: &[
            (IAM, "CreateAccessKey"),
            (IAM, "CreateLoginProfile"),
            (IAM, "UpdateLoginProfile"),
        ],
        test: Test::OtherUsersCredentials,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "persistence-admin-user",
        description: "Administrator rights granted to a user by a long-term access key",
        calls: &[(IAM, "AttachUserPolicy"), (IAM, "PutUserPolicy")],
        test: Test::AdminGrantByLongTermKey,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "persistence-trust-outside",
        description: "A role's trust policy now trusts an account outside ALLOWED_ACCOUNTS",
        calls: &[(IAM, "UpdateAssumeRolePolicy")],
        test: Test::TrustsOutsideAccount,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "exfiltration-sharing",
        description: "Data shared publicly or with an account outside ALLOWED_ACCOUNTS",
        calls: &[
            ("ec2.amazonaws.com", "ModifySnapshotAttribute"),
            ("ec2.amazonaws.com", "ModifyImageAttribute"),
            ("rds.amazonaws.com", "ModifyDBSnapshotAttribute"),
            ("rds.amazonaws.com", "ModifyDBClusterSnapshotAttribute"),
        ],
        test: Test::SharedOutside,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "exfiltration-public-bucket",
        description: "An S3 bucket policy or ACL now grants access to everyone",
        calls: &[
            ("s3.amazonaws.com", "PutBucketPolicy"),
            ("s3.amazonaws.com", "PutBucketAcl"),
        ],
        test: Test::PublicBucket,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "exfiltration-replication",
        description: "An S3 bucket now replicates to another account",
        calls: &[("s3.amazonaws.com", "PutBucketReplication")],
        test: Test::ReplicatesOutside,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "llmjacking",
        description: "Bedrock model access or invocation by a principal outside BEDROCK_ALLOWED_PRINCIPALS (LLMjacking)",
        calls: &[
            (BEDROCK, "PutUseCaseForModelAccess"),
            (BEDROCK, "CreateFoundationModelAgreement"),
            (BEDROCK, "PutFoundationModelEntitlement"),
            (BEDROCK, "InvokeModel*"),
            (BEDROCK, "Converse*"),
        ],
        test: Test::BedrockByOutsider,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "llm-logging-deleted",
        description: "Bedrock model invocation logging was deleted",
        calls: &[(BEDROCK, "DeleteModelInvocationLoggingConfiguration")],
        test: Test::Always,
        severity: 8.0,
        response: Response::Contain,
    },
    Rule {
        id: "resource-hijacking",
        description: "Compute or email capacity created outside ALLOWED_REGIONS or by a principal outside COMPUTE_ALLOWED_PRINCIPALS (cryptomining, spam)",
        calls: &[
            ("ecs.amazonaws.com", "CreateCluster"),
            ("ecs.amazonaws.com", "RegisterTaskDefinition"),
            ("ecs.amazonaws.com", "CreateService"),
            ("codebuild.amazonaws.com", "CreateProject"),
            ("amplify.amazonaws.com", "CreateApp"),
            ("amplify.amazonaws.com", "CreateBackendEnvironment"),
            ("sagemaker.amazonaws.com", "CreateProcessingJob"),
            ("sagemaker.amazonaws.com", "CreateEndpointConfig"),
            ("sagemaker.amazonaws.com", "CreateNotebookInstance"),
            ("ses.amazonaws.com", "UpdateAccountSendingEnabled"),
            ("ses.amazonaws.com", "CreateEmailIdentity"),
            ("ses.amazonaws.com", "VerifyEmailIdentity"),
        ],
        test: Test::ComputeOutsideAllowed,
        severity: 7.0,
        response: Response::Contain,
    },
    Rule {
        id: "gpu-hijacking",
        description: "GPU or accelerator instances launched outside ALLOWED_REGIONS or by a principal outside COMPUTE_ALLOWED_PRINCIPALS",
        calls: &[("ec2.amazonaws.com", "RunInstances")],
        test: Test::GpuOutsideAllowed,
        severity: 7.0,
        response: Response::Contain,
    },
    Rule {
        id: "root-used",
        description: "The root user made an API call or signed in: root cannot be contained by IAM",
        calls: &[],
        test: Test::RootCaller,
        severity: 9.0,
        response: Response::Notify,
    },
    Rule {
        id: "admin-ports-open",
        description: "A security group now allows SSH or RDP from anywhere",
        calls: &[("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress")],
        test: Test::AdminPortsOpen,
        severity: 6.0,
        response: Response::Notify,
    },
];

/// Deployment settings the rules read.
#[derive(Debug, Clone, Default)]
pub struct RuleSettings {
    pub disabled: Vec<String>,
    /// Accounts trusted besides the record's own.
    pub allowed_accounts: Vec<String>,
    /// Empty: the region check is off.
    pub allowed_regions: Vec<String>,
    pub canary_keys: Vec<String>,
    pub bedrock_allowed: PrincipalPatterns,
    /// `None`: the principal check of the compute rules is off.
    pub compute_allowed: Option<PrincipalPatterns>,
}

/// Whether `id` names a rule (for `DISABLED_RULES`).
pub fn is_rule(id: &str) -> bool {
    RULES.iter().any(|r| r.id == id)
}

/// The rule a record matched, strongest first: containment beats notification, then severity.
pub fn evaluate<'r>(record: &Record, settings: &RuleSettings) -> Option<&'r Rule> {
    RULES
        .iter()
        .filter(|r| !settings.disabled.iter().any(|d| d == r.id))
        .filter(|r| r.calls.is_empty() || r.calls.iter().any(|c| call_matches(c, record)))
        .filter(|r| test(r.test, record, settings))
        .max_by(|a, b| {
            (a.response == Response::Contain, a.severity)
                .partial_cmp(&(b.response == Response::Contain, b.severity))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
}

/// Every `(source, name)` the rules look at, for the EventBridge pattern in template.yaml.
pub fn watched_calls() -> Vec<(&'static str, &'static str)> {
    let mut calls: Vec<_> = RULES.iter().flat_map(|r| r.calls.iter().copied()).collect();
    calls.sort_unstable();
    calls.dedup();
    calls
}

fn call_matches(&(source, name): &(&str, &str), r: &Record) -> bool {
    source == r.event_source
        && match name.strip_suffix('*') {
            Some(prefix) => r.event_name.starts_with(prefix),
            None => name == r.event_name,
        }
}

/// The principal that made the call, as far as IAM can act on it.
pub fn caller(r: &Record) -> Principal {
    let id = &r.user_identity;
    let named = |n: Option<&str>, f: fn(IamName) -> Principal| {
        n.and_then(|n| IamName::parse(n).ok())
            .map_or_else(|| Principal::unsupported("unnamed"), f)
    };
    match id.kind.as_deref().unwrap_or("") {
        "IAMUser" => named(id.user_name.as_deref(), Principal::User),
        "AssumedRole" => named(
            id.session_context
                .as_ref()
                .and_then(|c| c.session_issuer.as_ref())
                .and_then(|i| i.user_name.as_deref()),
            Principal::Role,
        ),
        "Root" => Principal::Root,
        other => Principal::unsupported(other),
    }
}

fn test(t: Test, r: &Record, s: &RuleSettings) -> bool {
    match t {
        Test::Always => true,
        Test::AwsQuarantine => {
            r.request_str("policyArn").is_some_and(|a| {
                a.starts_with("arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine")
            }) || r.request_str("policyName") == Some("AWSExposedCredentialPolicy_DO_NOT_REMOVE")
        }
        Test::CanaryKey => r
            .user_identity
            .access_key_id
            .as_deref()
            .is_some_and(|k| s.canary_keys.iter().any(|c| c == k)),
        Test::DropsManagementEvents => r
            .request("eventSelectors")
            .and_then(Value::as_array)
            .is_some_and(|sel| {
                sel.iter().any(|e| {
                    e.get("includeManagementEvents") == Some(&Value::Bool(false))
                        || e.get("readWriteType").and_then(Value::as_str) == Some("ReadOnly")
                })
            }),
        Test::DetectorDisabled => r.request("enable") == Some(&Value::Bool(false)),
        Test::OtherUsersCredentials => match (r.request_str("userName"), caller(r)) {
            (None, _) => false,
            (Some(target), Principal::User(me)) => target != me.as_str(),
            (Some(_), _) => true,
        },
        Test::AdminGrantByLongTermKey => {
            let long_term = r
                .user_identity
                .access_key_id
                .as_deref()
                .is_some_and(|k| k.starts_with("AKIA"));
            let admin = r.request_str("policyArn")
                == Some("arn:aws:iam::aws:policy/AdministratorAccess")
                || r.request_str("policyDocument")
                    .is_some_and(grants_everything);
            long_term && admin
        }
        Test::TrustsOutsideAccount => r
            .request_str("policyDocument")
            .is_some_and(|doc| accounts_in(doc).any(|a| !trusted(a, r, s))),
        Test::SharedOutside => {
            let added = [
                "createVolumePermission.add.items",
                "launchPermission.add.items",
            ]
            .iter()
            .filter_map(|p| r.request(p).and_then(Value::as_array))
            .flatten()
            .any(|item| {
                item.get("group").and_then(Value::as_str) == Some("all")
                    || item
                        .get("userId")
                        .and_then(Value::as_str)
                        .is_some_and(|a| !trusted(a, r, s))
            });
            let rds = r
                .request("valuesToAdd")
                .and_then(Value::as_array)
                .is_some_and(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .any(|a| a == "all" || !trusted(a, r, s))
                });
            added || rds
        }
        Test::PublicBucket => {
            let policy_public = r.request("bucketPolicy").is_some_and(|p| {
                let text = p.as_str().map_or_else(|| p.to_string(), str::to_owned);
                grants_public(&text)
            });
            let acl_public = r.request_parameters.as_ref().is_some_and(|p| {
                let text = p.to_string();
                text.contains("acs.amazonaws.com/groups/global/AllUsers")
                    || text.contains("acs.amazonaws.com/groups/global/AuthenticatedUsers")
                    || text.contains("\"x-amz-acl\":[\"public-read")
                    || text.contains("\"x-amz-acl\":\"public-read")
            });
            policy_public || acl_public
        }
        Test::ReplicatesOutside => r.request_parameters.as_ref().is_some_and(|p| {
            let text = p.to_string();
            let outside = find_values(&text, "\"Account\":\"").any(|a| !trusted(a, r, s));
            outside
        }),
        Test::BedrockByOutsider => {
            let account = r
                .account()
                .and_then(|a| crate::ids::AccountId::parse(a).ok());
            s.bedrock_allowed
                .matching(account.as_ref(), &caller(r))
                .is_none()
        }
        Test::ComputeOutsideAllowed => compute_outside(r, s),
        Test::GpuOutsideAllowed => {
            let gpu = r
                .request("instanceType")
                .and_then(Value::as_str)
                .is_some_and(is_gpu_type);
            gpu && compute_outside(r, s)
        }
        Test::RootCaller => r.user_identity.kind.as_deref() == Some("Root"),
        Test::AdminPortsOpen => opens_admin_ports(r),
    }
}

fn compute_outside(r: &Record, s: &RuleSettings) -> bool {
    let region_outside = !s.allowed_regions.is_empty()
        && r.aws_region
            .as_deref()
            .is_some_and(|reg| !s.allowed_regions.iter().any(|a| a == reg));
    let principal_outside = s.compute_allowed.as_ref().is_some_and(|allowed| {
        let account = r
            .account()
            .and_then(|a| crate::ids::AccountId::parse(a).ok());
        allowed.matching(account.as_ref(), &caller(r)).is_none()
    });
    region_outside || principal_outside
}

/// p*, g*, inf*, trn*, dl*: the families miners rent.
fn is_gpu_type(t: &str) -> bool {
    let family = t.split('.').next().unwrap_or("");
    let letters: String = family
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    matches!(
        letters.as_str(),
        "p" | "g" | "gr" | "inf" | "trn" | "dl" | "vt"
    )
}

fn trusted(account: &str, r: &Record, s: &RuleSettings) -> bool {
    r.account() == Some(account) || s.allowed_accounts.iter().any(|a| a == account)
}

/// 12-digit account ids named in a policy document (principals as ARNs or bare ids).
fn accounts_in(doc: &str) -> impl Iterator<Item = &str> {
    let bytes = doc.as_bytes();
    (0..bytes.len().saturating_sub(11)).filter_map(move |i| {
        let window = &bytes[i..i + 12];
        let boundary = |j: Option<usize>| {
            j.and_then(|j| bytes.get(j))
                .is_none_or(|b| !b.is_ascii_digit())
        };
        (window.iter().all(u8::is_ascii_digit)
            && boundary(i.checked_sub(1))
            && boundary(Some(i + 12)))
        .then(|| &doc[i..i + 12])
    })
}

fn find_values<'a>(text: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> {
    text.match_indices(key).filter_map(move |(i, _)| {
        let rest = &text[i + key.len()..];
        rest.find('"').map(|end| &rest[..end])
    })
}

fn grants_everything(doc: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(doc) else {
        return false;
    };
    let everything = statements(&v).any(|st| {
        st.get("Effect").and_then(Value::as_str) == Some("Allow")
            && strings(st.get("Action")).any(|a| a == "*" || a == "*:*")
            && strings(st.get("Resource")).any(|a| a == "*")
    });
    everything
}

fn grants_public(doc: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(doc) else {
        return false;
    };
    let public = statements(&v).any(|st| {
        let principal = st.get("Principal");
        let everyone = principal.and_then(Value::as_str) == Some("*")
            || principal
                .and_then(|p| p.get("AWS"))
                .is_some_and(|a| strings(Some(a)).any(|x| x == "*"));
        st.get("Effect").and_then(Value::as_str) == Some("Allow")
            && everyone
            && st.get("Condition").is_none()
    });
    public
}

fn statements(v: &Value) -> impl Iterator<Item = &Value> {
    match v.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect::<Vec<_>>().into_iter(),
        Some(one) => vec![one].into_iter(),
        None => Vec::new().into_iter(),
    }
}

fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    let list: Vec<&str> = match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
}

fn opens_admin_ports(r: &Record) -> bool {
    let covers = |proto: Option<&str>, from: Option<i64>, to: Option<i64>| match proto {
        Some("-1" | "all") => true,
        Some("tcp" | "6") => {
            let (from, to) = (from.unwrap_or(0), to.unwrap_or(65535));
            [22, 3389].iter().any(|p| (from..=to).contains(p))
        }
        _ => false,
    };
    let world = |cidr: Option<&str>| cidr.is_some_and(|c| c.ends_with("/0"));
    // The older flat form: cidrIp, ipProtocol, fromPort, toPort at the top level.
    let flat = world(r.request_str("cidrIp"))
        && covers(
            r.request_str("ipProtocol"),
            r.request("fromPort").and_then(Value::as_i64),
            r.request("toPort").and_then(Value::as_i64),
        );
    let items = r
        .request("ipPermissions.items")
        .and_then(Value::as_array)
        .is_some_and(|items| {
            items.iter().any(|p| {
                let open = ["ipRanges", "ipv6Ranges"].iter().any(|k| {
                    p.get(*k)
                        .and_then(|r| r.get("items"))
                        .and_then(Value::as_array)
                        .is_some_and(|rs| {
                            rs.iter().any(|x| {
                                world(
                                    x.get("cidrIp")
                                        .or(x.get("cidrIpv6"))
                                        .and_then(Value::as_str),
                                )
                            })
                        })
                });
                open && covers(
                    p.get("ipProtocol").and_then(Value::as_str),
                    p.get("fromPort").and_then(Value::as_i64),
                    p.get("toPort").and_then(Value::as_i64),
                )
            })
        });
    flat || items
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCT: &str = "111122223333";

    fn record(source: &str, name: &str, params: Value) -> Record {
        serde_json::from_value(json!({
            "eventID": "3b5f0b1c-0000-4000-8000-000000000001",
            "eventSource": source,
            "eventName": name,
            "awsRegion": "us-east-1",
            "recipientAccountId": ACCT,
            "requestParameters": params,
            "userIdentity": {"type": "IAMUser", "userName": "mallory", "accountId": ACCT,
                             "arn": format!("arn:aws:iam::{ACCT}:user/mallory"),
                             "accessKeyId": "AKIAIOSFODNN7EXAMPLE"},
        }))
        .unwrap()
    }

    fn hit(r: &Record, s: &RuleSettings) -> Option<&'static str> {
        evaluate(r, s).map(|rule| rule.id)
    }

    fn none() -> RuleSettings {
        RuleSettings::default()
    }

    #[test]
    fn aws_quarantine() {
        let attach = record(
            IAM,
            "AttachUserPolicy",
            json!({"userName": "alice", "policyArn": "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3"}),
        );
        assert_eq!(hit(&attach, &none()), Some("aws-quarantined-key"));
        let inline = record(
            IAM,
            "PutUserPolicy",
            json!({"userName": "alice", "policyName": "AWSExposedCredentialPolicy_DO_NOT_REMOVE", "policyDocument": "{}"}),
        );
        assert_eq!(hit(&inline, &none()), Some("aws-quarantined-key"));
        let other = record(
            IAM,
            "AttachUserPolicy",
            json!({"userName": "alice", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        );
        assert_eq!(hit(&other, &none()), None);
    }

    #[test]
    fn canary_key() {
        let r = record("s3.amazonaws.com", "ListBuckets", json!({}));
        let s = RuleSettings {
            canary_keys: vec!["AKIAIOSFODNN7EXAMPLE".into()],
            ..none()
        };
        assert_eq!(hit(&r, &s), Some("canary-key-used"));
        assert_eq!(hit(&r, &none()), None);
    }

    #[test]
    fn logging_tampered() {
        assert_eq!(
            hit(
                &record(
                    "cloudtrail.amazonaws.com",
                    "StopLogging",
                    json!({"name": "t"})
                ),
                &none()
            ),
            Some("logging-tampered")
        );
        assert_eq!(
            hit(
                &record("ec2.amazonaws.com", "DeleteFlowLogs", json!({})),
                &none()
            ),
            Some("logging-tampered")
        );
        assert_eq!(
            hit(
                &record("cloudtrail.amazonaws.com", "StartLogging", json!({})),
                &none()
            ),
            None
        );
        let narrowed = record(
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            json!({"eventSelectors": [{"includeManagementEvents": false, "readWriteType": "All"}]}),
        );
        assert_eq!(hit(&narrowed, &none()), Some("logging-narrowed"));
        let widened = record(
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            json!({"eventSelectors": [{"includeManagementEvents": true, "readWriteType": "All"}]}),
        );
        assert_eq!(hit(&widened, &none()), None);
        let off = record(
            "guardduty.amazonaws.com",
            "UpdateDetector",
            json!({"detectorId": "d", "enable": false}),
        );
        assert_eq!(hit(&off, &none()), Some("detector-disabled"));
        let on = record(
            "guardduty.amazonaws.com",
            "UpdateDetector",
            json!({"detectorId": "d", "enable": true}),
        );
        assert_eq!(hit(&on, &none()), None);
    }

    #[test]
    fn persistence() {
        let other = record(IAM, "CreateAccessKey", json!({"userName": "backdoor"}));
        assert_eq!(hit(&other, &none()), Some("persistence-other-user"));
        let own = record(IAM, "CreateAccessKey", json!({"userName": "mallory"}));
        assert_eq!(hit(&own, &none()), None);
        let admin = record(
            IAM,
            "AttachUserPolicy",
            json!({"userName": "backdoor", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        );
        assert_eq!(hit(&admin, &none()), Some("persistence-admin-user"));
        let star = record(
            IAM,
            "PutUserPolicy",
            json!({"userName": "b", "policyName": "p", "policyDocument": "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}"}),
        );
        assert_eq!(hit(&star, &none()), Some("persistence-admin-user"));
        let trust = |acct: &str| {
            record(
                IAM,
                "UpdateAssumeRolePolicy",
                json!({"roleName": "r", "policyDocument": format!("{{\"Statement\":[{{\"Effect\":\"Allow\",\"Principal\":{{\"AWS\":\"arn:aws:iam::{acct}:root\"}},\"Action\":\"sts:AssumeRole\"}}]}}")}),
            )
        };
        assert_eq!(
            hit(&trust("999988887777"), &none()),
            Some("persistence-trust-outside")
        );
        assert_eq!(hit(&trust(ACCT), &none()), None);
        let allowed = RuleSettings {
            allowed_accounts: vec!["999988887777".into()],
            ..none()
        };
        assert_eq!(hit(&trust("999988887777"), &allowed), None);
    }

    #[test]
    fn exfiltration() {
        let share = |item: Value| {
            record(
                "ec2.amazonaws.com",
                "ModifySnapshotAttribute",
                json!({"snapshotId": "snap-1", "createVolumePermission": {"add": {"items": [item]}}}),
            )
        };
        assert_eq!(
            hit(&share(json!({"group": "all"})), &none()),
            Some("exfiltration-sharing")
        );
        assert_eq!(
            hit(&share(json!({"userId": "999988887777"})), &none()),
            Some("exfiltration-sharing")
        );
        assert_eq!(hit(&share(json!({"userId": ACCT})), &none()), None);
        let rds = record(
            "rds.amazonaws.com",
            "ModifyDBSnapshotAttribute",
            json!({"attributeName": "restore", "valuesToAdd": ["all"]}),
        );
        assert_eq!(hit(&rds, &none()), Some("exfiltration-sharing"));
        let public = record(
            "s3.amazonaws.com",
            "PutBucketPolicy",
            json!({"bucketName": "b", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}}),
        );
        assert_eq!(hit(&public, &none()), Some("exfiltration-public-bucket"));
        let private = record(
            "s3.amazonaws.com",
            "PutBucketPolicy",
            json!({"bucketName": "b", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")}, "Action": "s3:GetObject", "Resource": "*"}]}}),
        );
        assert_eq!(hit(&private, &none()), None);
        let repl = |acct: &str| {
            record(
                "s3.amazonaws.com",
                "PutBucketReplication",
                json!({"ReplicationConfiguration": {"Rule": {"Destination": {"Bucket": "arn:aws:s3:::x", "Account": acct}}}}),
            )
        };
        assert_eq!(
            hit(&repl("999988887777"), &none()),
            Some("exfiltration-replication")
        );
        assert_eq!(hit(&repl(ACCT), &none()), None);
    }

    #[test]
    fn llmjacking() {
        let invoke = record(
            BEDROCK,
            "InvokeModelWithResponseStream",
            json!({"modelId": "m"}),
        );
        assert_eq!(hit(&invoke, &none()), Some("llmjacking"));
        let allowed = RuleSettings {
            bedrock_allowed: PrincipalPatterns::parse(&format!("arn:aws:iam::{ACCT}:user/mallory"))
                .unwrap(),
            ..none()
        };
        assert_eq!(hit(&invoke, &allowed), None);
        let logging = record(
            BEDROCK,
            "DeleteModelInvocationLoggingConfiguration",
            json!({}),
        );
        assert_eq!(hit(&logging, &allowed), Some("llm-logging-deleted"));
        assert_eq!(
            hit(&record(BEDROCK, "ListFoundationModels", json!({})), &none()),
            None
        );
    }

    #[test]
    fn hijacking_only_where_configured() {
        let cluster = record(
            "ecs.amazonaws.com",
            "CreateCluster",
            json!({"clusterName": "c"}),
        );
        assert_eq!(
            hit(&cluster, &none()),
            None,
            "no allow-list configured: no opinion"
        );
        let regions = RuleSettings {
            allowed_regions: vec!["eu-west-1".into()],
            ..none()
        };
        assert_eq!(hit(&cluster, &regions), Some("resource-hijacking"));
        let here = RuleSettings {
            allowed_regions: vec!["us-east-1".into()],
            ..none()
        };
        assert_eq!(hit(&cluster, &here), None);
        let gpu = record(
            "ec2.amazonaws.com",
            "RunInstances",
            json!({"instanceType": "p4d.24xlarge"}),
        );
        let cpu = record(
            "ec2.amazonaws.com",
            "RunInstances",
            json!({"instanceType": "t3.micro"}),
        );
        assert_eq!(hit(&gpu, &regions), Some("gpu-hijacking"));
        assert_eq!(hit(&cpu, &regions), None);
        assert!(
            is_gpu_type("g5.xlarge")
                && is_gpu_type("inf2.xlarge")
                && !is_gpu_type("m5.large")
                && !is_gpu_type("c7gn.large")
        );
    }

    #[test]
    fn root_and_admin_ports_notify() {
        let mut root = record("s3.amazonaws.com", "ListBuckets", json!({}));
        root.user_identity.kind = Some("Root".into());
        let rule = evaluate(&root, &none()).unwrap();
        assert_eq!((rule.id, rule.response), ("root-used", Response::Notify));
        let ssh = record(
            "ec2.amazonaws.com",
            "AuthorizeSecurityGroupIngress",
            json!({"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}),
        );
        assert_eq!(hit(&ssh, &none()), Some("admin-ports-open"));
        let https = record(
            "ec2.amazonaws.com",
            "AuthorizeSecurityGroupIngress",
            json!({"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}),
        );
        assert_eq!(hit(&https, &none()), None);
        let flat = record(
            "ec2.amazonaws.com",
            "AuthorizeSecurityGroupIngress",
            json!({"cidrIp": "208.236.235.254/0", "fromPort": 22, "toPort": 22, "ipProtocol": "tcp"}),
        );
        assert_eq!(hit(&flat, &none()), Some("admin-ports-open"));
    }

    #[test]
    fn disabled_rules_do_not_fire() {
        let stop = record("cloudtrail.amazonaws.com", "StopLogging", json!({}));
        let s = RuleSettings {
            disabled: vec!["logging-tampered".into()],
            ..none()
        };
        assert_eq!(hit(&stop, &s), None);
    }

    #[test]
    fn caller_principal() {
        let r = record(IAM, "ListUsers", json!({}));
        assert_eq!(
            caller(&r),
            Principal::User(IamName::parse("mallory").unwrap())
        );
        let role: Record = serde_json::from_value(json!({"eventID": "e", "eventSource": "s", "eventName": "n",
            "userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "test-role"}}}})).unwrap();
        assert_eq!(
            caller(&role),
            Principal::Role(IamName::parse("test-role").unwrap())
        );
    }
}
