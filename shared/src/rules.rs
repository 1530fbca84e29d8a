//! Detection rules over CloudTrail records. Rules are data: an id, what a person reads, the
//! calls they look at, one named test, a severity and a response. Evaluation is pure and reads
//! the record in place.

use serde::Serialize;
use serde_json::Value;

use crate::events::cloudtrail::Record;
use crate::ids::{AccountId, IamName};
use crate::policy::{
    FALLBACK_POLICY_NAME, INSTANCE_REVOKE_POLICY_PREFIX, QUARANTINE_POLICY_NAME,
    QUARANTINE_POLICY_PATH, REVOKE_SESSIONS_POLICY_NAME,
};
use crate::principal::{IamPath, Principal};
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
    /// AWS applied its exposed-key quarantine to a user, in any of its published forms.
    AwsQuarantine,
    CanaryKey,
    /// CloudTrail event selectors that stop recording management events.
    DropsManagementEvents,
    /// GuardDuty detector disabled.
    DetectorDisabled,
    /// GuardDuty told to archive findings (a filter whose action is ARCHIVE) or to trust
    /// addresses or entities (no findings about them).
    SuppressesFindings,
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
    /// Bucket replication whose destination names no owner account.
    ReplicatesUnverified,
    /// A Bedrock call by a principal outside BEDROCK_ALLOWED_PRINCIPALS.
    BedrockByOutsider,
    /// Compute or email created in a region outside ALLOWED_REGIONS or by a principal outside
    /// COMPUTE_ALLOWED_PRINCIPALS (each check applies only when configured).
    ComputeOutsideAllowed,
    /// As above, for RunInstances of GPU / accelerator families.
    GpuOutsideAllowed,
    RootCaller,
    /// Ingress from anywhere to SSH or RDP, by anyone but cordon's own roles (`cordon_roles`).
    AdminPortsOpen,
    /// cordon's own defences changed by a principal that is not cordon's (`cordon_principals`).
    CordonTampered,
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
const LAMBDA: &str = "lambda.amazonaws.com";
const EVENTS: &str = "events.amazonaws.com";
const SNS: &str = "sns.amazonaws.com";
const DYNAMODB: &str = "dynamodb.amazonaws.com";
const EC2: &str = "ec2.amazonaws.com";
const CLOUDWATCH: &str = "monitoring.amazonaws.com";
const SQS: &str = "sqs.amazonaws.com";

/// Tag keys cordon writes (`cordon:incident`, `cordon:quarantined-at`, `cordon:protected`, ...:
/// shared/src/actions) begin with this.
const CORDON_TAG_PREFIX: &str = "cordon:";
/// Security groups isolate-instance creates are named `cordon-<purpose>` (actions/instance.rs).
const CORDON_GROUP_PREFIX: &str = "cordon-";

/// Lambda calls that change a function, by their API names. CloudTrail names Lambda events with
/// the API version appended (`UpdateFunctionCode20150331v2`, `DeleteFunction20150331`), so the
/// rule watches each as a prefix and `lambda_operation` strips the version before comparing.
const LAMBDA_CHANGES: &[&str] = &[
    "UpdateFunctionConfiguration",
    "UpdateFunctionCode",
    "DeleteFunction",
    "PutFunctionConcurrency",
    "DeleteFunctionConcurrency",
    "RemovePermission",
    "AddPermission",
    "PutFunctionEventInvokeConfig",
    "UpdateFunctionEventInvokeConfig",
    "DeleteFunctionEventInvokeConfig",
];

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
        id: "findings-suppressed",
        description: "GuardDuty findings were archived, or addresses or entities trusted so that none are raised about them: archived findings never reach EventBridge",
        calls: &[
            ("guardduty.amazonaws.com", "CreateFilter"),
            ("guardduty.amazonaws.com", "UpdateFilter"),
            ("guardduty.amazonaws.com", "ArchiveFindings"),
            ("guardduty.amazonaws.com", "CreateIPSet"),
            ("guardduty.amazonaws.com", "UpdateIPSet"),
            ("guardduty.amazonaws.com", "CreateTrustedEntitySet"),
            ("guardduty.amazonaws.com", "UpdateTrustedEntitySet"),
        ],
        test: Test::SuppressesFindings,
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
        description: "A role now trusts everyone, or an account outside ALLOWED_ACCOUNTS",
        calls: &[(IAM, "UpdateAssumeRolePolicy"), (IAM, "CreateRole")],
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
    // Cross-account replication does not need `Destination.Account`, and the record does not say
    // who owns the destination bucket: a person has to look.
    Rule {
        id: "replication-unverified",
        description: "An S3 bucket now replicates to a bucket whose owner the call does not name",
        calls: &[("s3.amazonaws.com", "PutBucketReplication")],
        test: Test::ReplicatesUnverified,
        severity: 6.0,
        response: Response::Notify,
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
        // Launched directly, as a fleet or as Spot capacity; through a launch template the type
        // is in the answer (`instancesSet`, `fleetInstanceSet`), not the request.
        calls: &[
            (EC2, "RunInstances"),
            (EC2, "CreateFleet"),
            (EC2, "RequestSpotInstances"),
            (EC2, "RequestSpotFleet"),
        ],
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
    // Someone other than cordon's own roles and its deployer changed what keeps cordon's
    // containments in place or cordon itself running. What each call must touch to count:
    // - the quarantine policy (`policy/cordon/CordonCompromisedKeyQuarantineV3`): a new or default
    //   version, its deletion (or a version's), or its detachment from a user, role or group;
    // - the inline `AWSRevokeOlderSessions` (session cutoff) or `CordonQuarantineDenyAll`
    //   (fallback quarantine) deleted from a user or role. The record cannot tell whether cordon
    //   put that policy there (the console's "Revoke active sessions" writes the same name), so
    //   any deletion counts;
    // - an instance's `CordonRevokeInstanceCredentials-<instance>` deleted from its role or
    //   rewritten (`PutRolePolicy` under that name);
    // - `UpdateAccessKey` to `Active`. The record cannot tell whether cordon deactivated that key,
    //   so any reactivation counts: a person releasing a key by hand does so as a protected
    //   principal (notified, not contained) or as the deployer;
    // - functions named `<CORDON_PREFIX>-...`, EventBridge rules named `<CORDON_PREFIX>-...`, the
    //   alert topic (ALERT_TOPIC_ARN) and its subscriptions, the ledger table (LEDGER_TABLE);
    // - security groups named `cordon-...`, or named by an id cordon registered in the ledger
    //   when it made the group (the responder looks the record's `groupId` up first:
    //   `RuleSettings::cordon_groups`);
    // - a `cordon:*` tag set on or removed from a user, role or EC2 resource.
    Rule {
        id: "cordon-tampered",
        description: "cordon's own quarantine, functions, rules, alert topic, ledger, security groups or cordon:* tags were changed by a principal that is not cordon's",
        calls: &[
            (IAM, "CreatePolicyVersion"),
            (IAM, "SetDefaultPolicyVersion"),
            (IAM, "DeletePolicy"),
            (IAM, "DeletePolicyVersion"),
            (IAM, "DetachUserPolicy"),
            (IAM, "DetachRolePolicy"),
            (IAM, "DetachGroupPolicy"),
            (IAM, "DeleteUserPolicy"),
            (IAM, "DeleteRolePolicy"),
            (IAM, "PutUserPolicy"),
            (IAM, "PutRolePolicy"),
            (IAM, "UpdateAccessKey"),
            (IAM, "TagUser"),
            (IAM, "UntagUser"),
            (IAM, "TagRole"),
            (IAM, "UntagRole"),
            (LAMBDA, "UpdateFunctionConfiguration*"),
            (LAMBDA, "UpdateFunctionCode*"),
            (LAMBDA, "DeleteFunction*"),
            (LAMBDA, "PutFunctionConcurrency*"),
            (LAMBDA, "RemovePermission*"),
            (LAMBDA, "AddPermission*"),
            (LAMBDA, "PutFunctionEventInvokeConfig*"),
            (LAMBDA, "UpdateFunctionEventInvokeConfig*"),
            (EVENTS, "DisableRule"),
            (EVENTS, "DeleteRule"),
            (EVENTS, "PutRule"),
            (EVENTS, "RemoveTargets"),
            (EVENTS, "PutTargets"),
            (SNS, "DeleteTopic"),
            (SNS, "Unsubscribe"),
            (SNS, "SetTopicAttributes"),
            (SNS, "SetSubscriptionAttributes"),
            (SNS, "PutDataProtectionPolicy"),
            (SNS, "AddPermission"),
            (SNS, "RemovePermission"),
            (CLOUDWATCH, "DisableAlarmActions"),
            (CLOUDWATCH, "DeleteAlarms"),
            (CLOUDWATCH, "PutMetricAlarm"),
            (CLOUDWATCH, "SetAlarmState"),
            (SQS, "PurgeQueue"),
            (SQS, "DeleteQueue"),
            (SQS, "SetQueueAttributes"),
            (DYNAMODB, "DeleteTable"),
            (DYNAMODB, "UpdateTable"),
            (EC2, "AuthorizeSecurityGroupIngress"),
            (EC2, "AuthorizeSecurityGroupEgress"),
            (EC2, "RevokeSecurityGroupIngress"),
            (EC2, "RevokeSecurityGroupEgress"),
            (EC2, "DeleteSecurityGroup"),
            (EC2, "ModifySecurityGroupRules"),
            (EC2, "CreateTags"),
            (EC2, "DeleteTags"),
        ],
        test: Test::CordonTampered,
        severity: 9.0,
        response: Response::Contain,
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
    /// Automation whose routine IAM work (`persistence-other-user`, `persistence-admin-user`)
    /// is not an incident.
    pub iam_admins: PrincipalPatterns,
    /// `None`: the principal check of the compute rules is off.
    pub compute_allowed: Option<PrincipalPatterns>,
    /// cordon's own function roles: their calls never trip `admin-ports-open` (isolate-instance
    /// opens its untrack group to all traffic). Only the roles: a group's `cordon-` name or
    /// `cordon:purpose` tag is anyone's to set.
    pub cordon_roles: PrincipalPatterns,
    /// cordon's own function roles and its deployer: their calls never trip `cordon-tampered`
    /// (cordon converges its policy with CreatePolicyVersion and tags what it contains).
    pub cordon_principals: PrincipalPatterns,
    /// The stack name that cordon's functions and EventBridge rules are named after
    /// (`<prefix>-quarantine-credentials`). `None`: those checks of `cordon-tampered` are off.
    pub cordon_prefix: Option<String>,
    /// The alert topic and the ledger table, as the functions are configured with them.
    pub alert_topic_arn: Option<String>,
    pub ledger_table: Option<String>,
    /// Security groups cordon made and registered in the ledger, as far as the record at hand
    /// names one: the responder looks its group id up (see [`security_group_written`]) before
    /// the rules run, since the record says nothing else that would tell cordon's group.
    pub cordon_groups: Vec<String>,
}

/// The security group an EC2 call writes (a rule added or revoked, the group deleted), by id,
/// from the event as EventBridge delivers it.
pub fn security_group_written(event: &Value) -> Option<&str> {
    let detail = &event["detail"];
    let writes = matches!(
        detail["eventName"].as_str()?,
        "AuthorizeSecurityGroupIngress"
            | "AuthorizeSecurityGroupEgress"
            | "RevokeSecurityGroupIngress"
            | "RevokeSecurityGroupEgress"
            | "DeleteSecurityGroup"
            | "ModifySecurityGroupRules"
    );
    (detail["eventSource"].as_str()? == EC2 && writes)
        .then(|| group_id_of(&detail["requestParameters"]))
        .flatten()
}

/// `groupId`, or ModifySecurityGroupRules' `ModifySecurityGroupRulesRequest.GroupId`.
fn group_id_of(request: &Value) -> Option<&str> {
    request["groupId"]
        .as_str()
        .or_else(|| request["ModifySecurityGroupRulesRequest"]["GroupId"].as_str())
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

/// Whether rule `id` fires on `record`, disabled or not: for code that reuses one rule's test
/// (the trace asks which calls of a chain opened a role or shared data outside).
pub fn fires(id: &str, record: &Record, settings: &RuleSettings) -> bool {
    RULES.iter().find(|r| r.id == id).is_some_and(|r| {
        (r.calls.is_empty() || r.calls.iter().any(|c| call_matches(c, record)))
            && test(r.test, record, settings)
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
    let issuer = id
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref());
    match id.kind.as_deref().unwrap_or("") {
        "IAMUser" => named(id.user_name.as_deref(), Principal::User),
        // IAM Identity Center's roles: IAM reserves their path, and only Identity Center may
        // write them, so a person must act there.
        "AssumedRole"
            if issuer
                .and_then(|i| i.arn.as_deref())
                .is_some_and(|a| a.contains(IDENTITY_CENTER_ROLE_PATH)) =>
        {
            Principal::unsupported(IDENTITY_CENTER)
        }
        "AssumedRole" => named(issuer.and_then(|i| i.user_name.as_deref()), Principal::Role),
        // GetFederationToken: the session carries its parent user's policies, so a deny on
        // the user, and its session cutoff, reach it.
        "FederatedUser" if issuer.and_then(|i| i.kind.as_deref()) == Some("IAMUser") => {
            named(issuer.and_then(|i| i.user_name.as_deref()), Principal::User)
        }
        "Root" => Principal::Root,
        other => Principal::unsupported(other),
    }
}

/// `arn:aws:iam::<account>:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_<set>_<id>`.
const IDENTITY_CENTER_ROLE_PATH: &str = ":role/aws-reserved/sso.amazonaws.com/";
/// The principal kind an Identity Center session is reported as.
pub const IDENTITY_CENTER: &str = "IdentityCenter";

fn test(t: Test, r: &Record, s: &RuleSettings) -> bool {
    match t {
        Test::Always => true,
        Test::AwsQuarantine => match r.event_name.as_str() {
            "AttachUserPolicy" => r
                .request_str("policyArn")
                .is_some_and(is_aws_quarantine_arn),
            "PutUserPolicy" => r
                .request_str("policyName")
                .is_some_and(is_aws_quarantine_inline),
            _ => false,
        },
        Test::CanaryKey => r
            .user_identity
            .access_key_id
            .as_deref()
            .is_some_and(|k| s.canary_keys.iter().any(|c| c == k)),
        Test::DropsManagementEvents => {
            let basic = r
                .request("eventSelectors")
                .and_then(Value::as_array)
                .is_some_and(|sel| {
                    sel.iter().any(|e| {
                        e.get("includeManagementEvents") == Some(&Value::Bool(false))
                            || e.get("readWriteType").and_then(Value::as_str) == Some("ReadOnly")
                    })
                });
            // Advanced selectors log management writes only if one selects them.
            let advanced = r
                .request("advancedEventSelectors")
                .and_then(Value::as_array)
                .is_some_and(|sel| !sel.iter().any(logs_management_writes));
            basic || advanced
        }
        Test::DetectorDisabled => r.request("enable") == Some(&Value::Bool(false)),
        // A filter that only tags or marks findings leaves them delivered.
        Test::SuppressesFindings => match r.event_name.as_str() {
            "CreateFilter" | "UpdateFilter" => r
                .request_str("action")
                .is_some_and(|a| a.eq_ignore_ascii_case("ARCHIVE")),
            _ => true,
        },
        Test::OtherUsersCredentials => {
            let other = match (r.request_str("userName"), caller(r)) {
                (None, _) => false,
                (Some(target), Principal::User(me)) => target != me.as_str(),
                (Some(_), _) => true,
            };
            other && !listed(&s.iam_admins, r)
        }
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
            long_term && admin && !listed(&s.iam_admins, r)
        }
        Test::TrustsOutsideAccount => r
            .request_str("policyDocument")
            .or_else(|| r.request_str("assumeRolePolicyDocument"))
            .is_some_and(|doc| accounts_in(doc).any(|a| !trusted(a, r, s)) || grants_public(doc)),
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
        Test::ReplicatesOutside => replication_destinations(r)
            .iter()
            .filter_map(|d| d.get("Account").and_then(Value::as_str))
            .any(|a| !trusted(a, r, s)),
        Test::ReplicatesUnverified => replication_destinations(r)
            .iter()
            .any(|d| d.get("Account").is_none()),
        Test::BedrockByOutsider => !listed(&s.bedrock_allowed, r),
        Test::ComputeOutsideAllowed => compute_outside(r, s),
        Test::GpuOutsideAllowed => {
            let bodies = [&r.request_parameters, &r.response_elements];
            let gpu = bodies.iter().filter_map(|b| b.as_ref()).any(|body| {
                let text = body.to_string();
                let gpu = find_values(&text, "\"instanceType\":\"")
                    .chain(find_values(&text, "\"InstanceType\":\""))
                    .any(is_gpu_type);
                gpu
            });
            gpu && compute_outside(r, s)
        }
        Test::RootCaller => r.user_identity.kind.as_deref() == Some("Root"),
        Test::AdminPortsOpen => opens_admin_ports(r) && !listed(&s.cordon_roles, r),
        Test::CordonTampered => !by_cordon(r, s) && touches_cordon(r, s),
    }
}

/// AWS's managed quarantine policies: `AWSCompromisedKeyQuarantine` (created 2020-08-11),
/// `AWSCompromisedKeyQuarantineV2` (2021-04-21) and `AWSCompromisedKeyQuarantineV3`
/// (2024-08-21), per the AWS managed policy reference
/// (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSCompromisedKeyQuarantine.html,
/// .../AWSCompromisedKeyQuarantineV2.html, .../AWSCompromisedKeyQuarantineV3.html), in any
/// partition. A later `V<n>` is recognised too: only AWS can publish under `iam::aws:policy/`, so
/// the name there cannot be a look-alike, and AWS has so far published a new version every few
/// years. A customer managed policy of the same name (`iam::<account>:policy/...`) is not AWS's.
fn is_aws_quarantine_arn(arn: &str) -> bool {
    arn.strip_prefix("arn:")
        .and_then(|rest| rest.split_once(':'))
        .filter(|(partition, _)| partition.starts_with("aws"))
        .and_then(|(_, rest)| rest.strip_prefix("iam::aws:policy/"))
        .is_some_and(is_aws_quarantine_name)
}

fn is_aws_quarantine_name(name: &str) -> bool {
    name.strip_prefix("AWSCompromisedKeyQuarantine")
        .is_some_and(|version| match version.strip_prefix('V') {
            None => version.is_empty(),
            Some(n) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        })
}

/// AWS's quarantine written as an inline user policy (PutUserPolicy):
/// - `AWSExposedCredentialPolicy_DO_NOT_REMOVE`, the older form, used before the managed policies
///   (panther-labs/panther-analysis rules/aws_cloudtrail_rules/aws_key_compromised.py, since
///   PR #59, 2020; aws-samples/aws-customer-playbook-framework PR #13, 2024: "not used in
///   compromise by AWS anymore", replaced by AWSCompromisedKeyQuarantineV2);
/// - the managed policies' own names, `AWSCompromisedKeyQuarantine[V2|V3]`, as an inline policy:
///   panther-analysis's AWS.IAM.AccessKeyCompromised recognises these since PR #1571
///   (2025-04-11, its test record a PutUserPolicy named `AWSCompromisedKeyQuarantineV3` with an
///   `aws-internal` user agent).
///
/// AWS makes these calls as the quarantined user itself (`userIdentity` is that IAM user, the
/// user agent `aws-internal/...`), so the caller proves nothing either way and is not checked:
/// whoever writes an inline policy under one of these names marks its user as quarantined.
/// IAM does not distinguish names by case, so neither does this.
fn is_aws_quarantine_inline(name: &str) -> bool {
    name.eq_ignore_ascii_case("AWSExposedCredentialPolicy_DO_NOT_REMOVE")
        || [
            "AWSCompromisedKeyQuarantine",
            "AWSCompromisedKeyQuarantineV2",
            "AWSCompromisedKeyQuarantineV3",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

/// The caller is on `list`, at the path its ARN in the record gives.
fn listed(list: &PrincipalPatterns, r: &Record) -> bool {
    let account = r.account().and_then(|a| AccountId::parse(a).ok());
    let who = caller(r);
    let path = IamPath::of_caller(&r.user_identity, &who);
    list.matching(account.as_ref(), &who, path.as_ref())
        .is_some()
}

/// cordon's deny of one instance's credentials on its role (IAM names ignore case).
fn is_instance_revoke(name: &str) -> bool {
    name.get(..INSTANCE_REVOKE_POLICY_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(INSTANCE_REVOKE_POLICY_PREFIX))
}

/// The call was made by one of cordon's own roles or by its deployer.
fn by_cordon(r: &Record, s: &RuleSettings) -> bool {
    listed(&s.cordon_principals, r)
}

/// Lambda's API name for a CloudTrail event name: `UpdateFunctionCode20150331v2` ->
/// `UpdateFunctionCode`.
fn lambda_operation(event_name: &str) -> &str {
    let digits = |c: char| c.is_ascii_digit();
    let name = event_name.trim_end_matches(digits);
    name.strip_suffix('v')
        .map_or(name, |n| n.trim_end_matches(digits))
}

/// A function's name from a `functionName` that holds a name, a partial or a full ARN, with or
/// without a qualifier (`cordon-fn:live`, `<account>:function:cordon-fn`,
/// `arn:aws:lambda:<region>:<account>:function:cordon-fn:3`).
fn lambda_function_name(value: &str) -> &str {
    let name = value.rsplit_once(":function:").map_or(value, |(_, n)| n);
    name.split(':').next().unwrap_or(name)
}

/// A name from a field that holds a name or an ARN (EventBridge rules, DynamoDB tables): the part
/// after the last `/`.
fn last_segment(value: &str) -> &str {
    value.rsplit('/').next().unwrap_or(value)
}

/// The call changed cordon's quarantine policy: a new or default version, a version or the
/// policy deleted, or its detachment from a user, role or group.
pub fn touches_quarantine_policy(r: &Record) -> bool {
    r.event_source == IAM
        && matches!(
            r.event_name.as_str(),
            "CreatePolicyVersion"
                | "SetDefaultPolicyVersion"
                | "DeletePolicy"
                | "DeletePolicyVersion"
                | "DetachUserPolicy"
                | "DetachRolePolicy"
                | "DetachGroupPolicy"
        )
        && r.request_str("policyArn").is_some_and(|arn| {
            arn.starts_with("arn:")
                && arn.ends_with(&format!(
                    ":policy{QUARANTINE_POLICY_PATH}{QUARANTINE_POLICY_NAME}"
                ))
        })
}

fn touches_cordon(r: &Record, s: &RuleSettings) -> bool {
    let prefixed = |name: &str| {
        s.cordon_prefix.as_deref().is_some_and(|p| {
            name.strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('-'))
        })
    };
    let tag_keys = |v: Option<&Value>| -> bool {
        v.and_then(Value::as_array).is_some_and(|items| {
            items.iter().any(|t| {
                t.as_str()
                    .or_else(|| t.get("key").and_then(Value::as_str))
                    .or_else(|| t.get("Key").and_then(Value::as_str))
                    .is_some_and(|k| k.starts_with(CORDON_TAG_PREFIX))
            })
        })
    };
    match (r.event_source.as_str(), r.event_name.as_str()) {
        (IAM, "DeleteUserPolicy" | "DeleteRolePolicy") => {
            r.request_str("policyName").is_some_and(|n| {
                n.eq_ignore_ascii_case(REVOKE_SESSIONS_POLICY_NAME)
                    || n.eq_ignore_ascii_case(FALLBACK_POLICY_NAME)
                    || is_instance_revoke(n)
            })
        }
        // Rewriting one of cordon's inline policies into something weaker. The console's
        // "Revoke active sessions" writes the cutoff's name with a cutoff of now; a document
        // that cuts nothing issued in the last minutes (a 1970 cutoff) undoes one.
        (IAM, "PutUserPolicy" | "PutRolePolicy") => {
            let document = r
                .request_str("policyDocument")
                .and_then(|d| serde_json::from_str::<Value>(d).ok());
            match r.request_str("policyName") {
                Some(n) if n.eq_ignore_ascii_case(REVOKE_SESSIONS_POLICY_NAME) => {
                    !cuts_sessions_until_now(r, document.as_ref())
                }
                Some(n) if n.eq_ignore_ascii_case(FALLBACK_POLICY_NAME) => {
                    document != Some(crate::policy::deny_all_document())
                }
                // An instance's deny rewritten under its own name undoes it as surely as
                // deleting it.
                Some(n) => r.event_name == "PutRolePolicy" && is_instance_revoke(n),
                None => false,
            }
        }
        (IAM, "UpdateAccessKey") => r
            .request_str("status")
            .is_some_and(|st| st.eq_ignore_ascii_case("Active")),
        (IAM, "TagUser" | "TagRole") => tag_keys(r.request("tags")),
        (IAM, "UntagUser" | "UntagRole") => tag_keys(r.request("tagKeys")),
        (IAM, _) if touches_quarantine_policy(r) => true,
        (LAMBDA, name) => {
            LAMBDA_CHANGES.contains(&lambda_operation(name))
                && r.request_str("functionName")
                    .map(lambda_function_name)
                    .is_some_and(prefixed)
        }
        (EVENTS, _) => r
            .request_str("name")
            .or_else(|| r.request_str("rule"))
            .map(last_segment)
            .is_some_and(prefixed),
        (CLOUDWATCH, _) => r
            .request_str("alarmName")
            .map(|n| vec![n])
            .or_else(|| {
                r.request("alarmNames")
                    .and_then(Value::as_array)
                    .map(|names| names.iter().filter_map(Value::as_str).collect())
            })
            .is_some_and(|names| names.into_iter().any(prefixed)),
        (SQS, _) => r
            .request_str("queueUrl")
            .map(last_segment)
            .is_some_and(prefixed),
        (SNS, _) => {
            let Some(topic) = s.alert_topic_arn.as_deref().filter(|t| !t.is_empty()) else {
                return false;
            };
            r.request_str("topicArn") == Some(topic)
                || r.request_str("resourceArn") == Some(topic)
                || r.request_str("subscriptionArn").is_some_and(|sub| {
                    sub.strip_prefix(topic)
                        .is_some_and(|rest| rest.starts_with(':'))
                })
        }
        (DYNAMODB, _) => {
            let Some(table) = s.ledger_table.as_deref().filter(|t| !t.is_empty()) else {
                return false;
            };
            r.request_str("tableName")
                .map(last_segment)
                .is_some_and(|t| t == last_segment(table))
        }
        (EC2, "CreateTags" | "DeleteTags") => tag_keys(r.request("tagSet.items")),
        // By name, or by the id cordon registered (looked up for this record).
        (EC2, _) => {
            r.request_str("groupName")
                .is_some_and(|g| g.starts_with(CORDON_GROUP_PREFIX))
                || r.request_parameters
                    .as_ref()
                    .and_then(group_id_of)
                    .is_some_and(|g| s.cordon_groups.iter().any(|c| c == g))
        }
        _ => false,
    }
}

/// A session-cutoff document (`AWSRevokeOlderSessions`) whose cutoff is within minutes of the
/// call: what cordon and the console write. Anything else put under that name lifts a cutoff.
fn cuts_sessions_until_now(r: &Record, document: Option<&Value>) -> bool {
    const SLACK: time::Duration = time::Duration::minutes(5);
    let cutoff = document.and_then(crate::policy::revoke_sessions_cutoff);
    let at = r.event_time.as_deref().and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    });
    match (cutoff, at) {
        (Some(cutoff), Some(at)) => cutoff >= at - SLACK,
        _ => false,
    }
}

fn compute_outside(r: &Record, s: &RuleSettings) -> bool {
    let region_outside = !s.allowed_regions.is_empty()
        && r.aws_region
            .as_deref()
            .is_some_and(|reg| !s.allowed_regions.iter().any(|a| a == reg));
    let principal_outside = s
        .compute_allowed
        .as_ref()
        .is_some_and(|allowed| !listed(allowed, r));
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

/// An `Allow` to `*` (or `"AWS": "*"`) that no condition narrows to known callers.
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
            && !narrows_callers(st.get("Condition"))
    });
    public
}

/// Condition keys that say who may call; any other condition (`aws:SecureTransport`,
/// `s3:x-amz-acl`, a date) leaves a `*` principal open to everyone.
const CALLER_KEYS: &[&str] = &[
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:userid",
    "aws:username",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourceowner",
    "aws:sourceip",
    "aws:sourcevpc",
    "aws:sourcevpce",
];

/// A positive test (not `…Not…`, not `…IfExists`, which passes when the key is absent) of a
/// caller key.
fn narrows_callers(condition: Option<&Value>) -> bool {
    condition
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(op, _)| !op.contains("Not") && !op.ends_with("IfExists") && *op != "Null")
        .filter_map(|(_, keys)| keys.as_object())
        .flat_map(|keys| keys.keys())
        .any(|key| CALLER_KEYS.contains(&key.to_ascii_lowercase().as_str()))
}

/// Every `Destination` in a PutBucketReplication request, whatever the nesting (CloudTrail
/// renders one rule as an object, several as an array).
fn replication_destinations(r: &Record) -> Vec<&Value> {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    if k == "Destination" && child.is_object() {
                        out.push(child);
                    } else {
                        walk(child, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|child| walk(child, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(p) = &r.request_parameters {
        walk(p, &mut out);
    }
    out
}

/// An advanced event selector that keeps management write events: it selects category
/// `Management` and does not restrict it to read-only calls.
fn logs_management_writes(selector: &Value) -> bool {
    let fields: Vec<&Value> = selector
        .get("fieldSelectors")
        .and_then(Value::as_array)
        .map(|f| f.iter().collect())
        .unwrap_or_default();
    let equals = |field: &str, value: &str| {
        fields.iter().any(|f| {
            f.get("field").and_then(Value::as_str) == Some(field)
                && strings(f.get("equals")).any(|v| v.eq_ignore_ascii_case(value))
        })
    };
    equals("eventCategory", "Management") && !equals("readOnly", "true")
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
        let attach = |arn: &str| {
            record(
                IAM,
                "AttachUserPolicy",
                json!({"userName": "alice", "policyArn": arn}),
            )
        };
        let inline = |name: &str| {
            record(
                IAM,
                "PutUserPolicy",
                json!({"userName": "alice", "policyName": name, "policyDocument": "{\"Statement\":[{\"Effect\":\"Deny\",\"Action\":[\"iam:CreateAccessKey\"],\"Resource\":[\"*\"]}]}"}),
            )
        };
        // Every published form: the three managed policies, in any partition...
        for arn in [
            "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine",
            "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2",
            "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3",
            "arn:aws-us-gov:iam::aws:policy/AWSCompromisedKeyQuarantineV2",
            "arn:aws-cn:iam::aws:policy/AWSCompromisedKeyQuarantineV3",
        ] {
            assert_eq!(
                hit(&attach(arn), &none()),
                Some("aws-quarantined-key"),
                "{arn}"
            );
        }
        // ...and the inline forms: the older AWSExposedCredentialPolicy_DO_NOT_REMOVE and the
        // managed names written inline.
        for name in [
            "AWSExposedCredentialPolicy_DO_NOT_REMOVE",
            "AWSCompromisedKeyQuarantine",
            "AWSCompromisedKeyQuarantineV2",
            "AWSCompromisedKeyQuarantineV3",
        ] {
            assert_eq!(
                hit(&inline(name), &none()),
                Some("aws-quarantined-key"),
                "{name}"
            );
        }
        // Look-alikes are not AWS's quarantine: a customer managed policy of the same name, a
        // name that only starts like one, cordon's own mirror.
        for arn in [
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            &format!("arn:aws:iam::{ACCT}:policy/AWSCompromisedKeyQuarantineV3"),
            "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3Extra",
            &format!("arn:aws:iam::{ACCT}:policy/cordon/CordonCompromisedKeyQuarantineV3"),
        ] {
            assert_eq!(hit(&attach(arn), &none()), None, "{arn}");
        }
        for name in [
            "AWSExposedCredentialPolicy",
            "AWSExposedCredentialPolicy_DO_NOT_REMOVE_copy",
            "AWSCompromisedKeyQuarantineV3-mine",
        ] {
            assert_eq!(hit(&inline(name), &none()), None, "{name}");
        }
        // cordon's own fallback, rewritten weaker than deny-all, is tampering instead.
        assert_eq!(
            hit(&inline("CordonQuarantineDenyAll"), &none()),
            Some("cordon-tampered")
        );
        // The name in the wrong call is not the quarantine either.
        let detach = record(
            IAM,
            "AttachUserPolicy",
            json!({"userName": "alice", "policyName": "AWSExposedCredentialPolicy_DO_NOT_REMOVE"}),
        );
        assert_eq!(hit(&detach, &none()), None);
        // The caller is not checked (AWS writes the quarantine as the quarantined user itself):
        // an exact name by an ordinary IAM user, here mallory, still marks alice as quarantined.
        assert_eq!(
            caller(&inline("AWSExposedCredentialPolicy_DO_NOT_REMOVE")),
            Principal::User(IamName::parse("mallory").unwrap())
        );
    }

    fn cordon_settings() -> RuleSettings {
        RuleSettings {
            cordon_principals: PrincipalPatterns::parse(&format!(
                "arn:aws:iam::{ACCT}:role/cordon-QuarantineCredentialsFunctionRole-AB12CD34EF56,arn:aws:iam::{ACCT}:role/ci-deployer"
            ))
            .unwrap(),
            cordon_prefix: Some("cordon".into()),
            alert_topic_arn: Some(format!("arn:aws:sns:us-east-1:{ACCT}:cordon-AlertTopic-XYZ")),
            ledger_table: Some("cordon-LedgerTable-1A2B3C".into()),
            ..none()
        }
    }

    /// A group cordon registered, named by id (as most security-group records name it): a
    /// rule added to it, one revoked, or the group deleted, by anyone but cordon.
    #[test]
    fn a_registered_group_is_cordons_by_id() {
        let s = RuleSettings {
            cordon_groups: vec!["sg-0123456789abcdef0".into()],
            ..cordon_settings()
        };
        let open = json!({"groupId": "sg-0123456789abcdef0", "ipPermissions": {"items": [{"ipProtocol": "-1", "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}});
        for (name, params) in [
            ("AuthorizeSecurityGroupEgress", open.clone()),
            ("AuthorizeSecurityGroupIngress", open),
            (
                "DeleteSecurityGroup",
                json!({"groupId": "sg-0123456789abcdef0"}),
            ),
            (
                "ModifySecurityGroupRules",
                json!({"ModifySecurityGroupRulesRequest": {"GroupId": "sg-0123456789abcdef0"}}),
            ),
        ] {
            let r = record(EC2, name, params.clone());
            assert_eq!(hit(&r, &s), Some("cordon-tampered"), "{name}");
            let event = json!({"detail": {"eventSource": EC2, "eventName": name, "requestParameters": params}});
            assert_eq!(
                security_group_written(&event),
                Some("sg-0123456789abcdef0"),
                "{name}"
            );
            let by_cordon = by_role(
                record(EC2, name, r.request_parameters.clone().unwrap()),
                "cordon-QuarantineCredentialsFunctionRole-AB12CD34EF56",
            );
            assert_ne!(hit(&by_cordon, &s), Some("cordon-tampered"), "{name}");
        }
        let other = record(
            EC2,
            "DeleteSecurityGroup",
            json!({"groupId": "sg-0fedcba9876543210"}),
        );
        assert_eq!(hit(&other, &s), None);
        let read = json!({"detail": {"eventSource": EC2, "eventName": "DescribeSecurityGroups", "requestParameters": {"groupId": "sg-0123456789abcdef0"}}});
        assert_eq!(security_group_written(&read), None);
    }

    fn by_role(mut r: Record, role: &str) -> Record {
        r.user_identity = serde_json::from_value(json!({
            "type": "AssumedRole", "accountId": ACCT,
            "arn": format!("arn:aws:sts::{ACCT}:assumed-role/{role}/session"),
            "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": role,
                "arn": format!("arn:aws:iam::{ACCT}:role/{role}")}},
        }))
        .unwrap();
        r
    }

    #[test]
    fn cordon_tampered() {
        let s = cordon_settings();
        let policy = format!("arn:aws:iam::{ACCT}:policy/cordon/CordonCompromisedKeyQuarantineV3");
        let topic = s.alert_topic_arn.clone().unwrap();
        let tampered = [
            (
                IAM,
                "CreatePolicyVersion",
                json!({"policyArn": policy, "policyDocument": "{}", "setAsDefault": true}),
            ),
            (
                IAM,
                "SetDefaultPolicyVersion",
                json!({"policyArn": policy, "versionId": "v1"}),
            ),
            (IAM, "DeletePolicy", json!({"policyArn": policy})),
            (
                IAM,
                "DeletePolicyVersion",
                json!({"policyArn": policy, "versionId": "v2"}),
            ),
            (
                IAM,
                "DetachUserPolicy",
                json!({"userName": "alice", "policyArn": policy}),
            ),
            (
                IAM,
                "DetachRolePolicy",
                json!({"roleName": "r", "policyArn": policy}),
            ),
            (
                IAM,
                "DetachGroupPolicy",
                json!({"groupName": "g", "policyArn": policy}),
            ),
            (
                IAM,
                "DeleteUserPolicy",
                json!({"userName": "alice", "policyName": "AWSRevokeOlderSessions"}),
            ),
            (
                IAM,
                "DeleteRolePolicy",
                json!({"roleName": "r", "policyName": "AWSRevokeOlderSessions"}),
            ),
            (
                IAM,
                "DeleteUserPolicy",
                json!({"userName": "alice", "policyName": "CordonQuarantineDenyAll"}),
            ),
            (
                IAM,
                "DeleteRolePolicy",
                json!({"roleName": "web", "policyName": "CordonRevokeInstanceCredentials-i-0123456789abcdef0"}),
            ),
            (
                IAM,
                "PutRolePolicy",
                json!({"roleName": "web", "policyName": "cordonrevokeinstancecredentials-i-0123456789abcdef0", "policyDocument": "{}"}),
            ),
            (
                IAM,
                "UpdateAccessKey",
                json!({"userName": "alice", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "status": "Active"}),
            ),
            (
                IAM,
                "TagUser",
                json!({"userName": "alice", "tags": [{"key": "cordon:incident", "value": "x"}]}),
            ),
            (
                IAM,
                "UntagUser",
                json!({"userName": "alice", "tagKeys": ["team", "cordon:quarantined-at"]}),
            ),
            (
                IAM,
                "TagRole",
                json!({"roleName": "r", "tags": [{"key": "cordon:incident", "value": "x"}]}),
            ),
            (
                IAM,
                "UntagRole",
                json!({"roleName": "r", "tagKeys": ["cordon:incident"]}),
            ),
            (
                LAMBDA,
                "UpdateFunctionConfiguration20150331v2",
                json!({"functionName": "cordon-quarantine-credentials", "environment": {}}),
            ),
            (
                LAMBDA,
                "UpdateFunctionCode20150331v2",
                json!({"functionName": "cordon-isolate-instance", "zipFile": "<redacted>"}),
            ),
            (
                LAMBDA,
                "DeleteFunction20150331",
                json!({"functionName": format!("arn:aws:lambda:us-east-1:{ACCT}:function:cordon-quarantine-credentials")}),
            ),
            (
                LAMBDA,
                "PutFunctionConcurrency20171031",
                json!({"functionName": "cordon-quarantine-credentials", "reservedConcurrentExecutions": 0}),
            ),
            (
                LAMBDA,
                "RemovePermission20150331v2",
                json!({"functionName": "cordon-quarantine-credentials", "statementId": "s"}),
            ),
            (
                LAMBDA,
                "AddPermission20150331v2",
                json!({"functionName": "cordon-quarantine-credentials:live", "action": "lambda:InvokeFunction", "principal": "*"}),
            ),
            (
                LAMBDA,
                "PutFunctionEventInvokeConfig",
                json!({"functionName": "cordon-quarantine-credentials", "maximumRetryAttempts": 0}),
            ),
            (
                EVENTS,
                "DisableRule",
                json!({"name": "cordon-cloudtrail-call"}),
            ),
            (
                EVENTS,
                "DeleteRule",
                json!({"name": "cordon-access-key-finding", "force": true}),
            ),
            (
                EVENTS,
                "PutRule",
                json!({"name": "cordon-cloudtrail-call", "eventPattern": "{}", "state": "ENABLED"}),
            ),
            (
                EVENTS,
                "RemoveTargets",
                json!({"rule": "cordon-cloudtrail-call", "ids": ["t"]}),
            ),
            (
                EVENTS,
                "PutTargets",
                json!({"rule": format!("arn:aws:events:us-east-1:{ACCT}:rule/cordon-root-activity"), "targets": []}),
            ),
            (SNS, "DeleteTopic", json!({"topicArn": topic})),
            (
                SNS,
                "SetTopicAttributes",
                json!({"topicArn": topic, "attributeName": "Policy", "attributeValue": "{}"}),
            ),
            (
                SNS,
                "Unsubscribe",
                json!({"subscriptionArn": format!("{topic}:0b7d4e4f-1111-4222-8333-444455556666")}),
            ),
            (
                SNS,
                "SetSubscriptionAttributes",
                json!({"subscriptionArn": format!("{topic}:0b7d4e4f-1111-4222-8333-444455556666"), "attributeName": "FilterPolicy"}),
            ),
            (
                SNS,
                "PutDataProtectionPolicy",
                json!({"resourceArn": topic, "dataProtectionPolicy": "{}"}),
            ),
            (
                CLOUDWATCH,
                "DisableAlarmActions",
                json!({"alarmNames": ["other", "cordon-dead-letter-queue-depth"]}),
            ),
            (
                CLOUDWATCH,
                "PutMetricAlarm",
                json!({"alarmName": "cordon-quarantine-credentials-errors", "threshold": 1e9}),
            ),
            (
                SQS,
                "PurgeQueue",
                json!({"queueUrl": format!("https://sqs.us-east-1.amazonaws.com/{ACCT}/cordon-DeadLetterQueue-X1")}),
            ),
            (
                DYNAMODB,
                "DeleteTable",
                json!({"tableName": "cordon-LedgerTable-1A2B3C"}),
            ),
            (
                DYNAMODB,
                "UpdateTable",
                json!({"tableName": format!("arn:aws:dynamodb:us-east-1:{ACCT}:table/cordon-LedgerTable-1A2B3C")}),
            ),
            (
                EC2,
                "RevokeSecurityGroupEgress",
                json!({"groupName": "cordon-isolation", "ipPermissions": {}}),
            ),
            (
                EC2,
                "AuthorizeSecurityGroupIngress",
                json!({"groupName": "cordon-isolation", "ipPermissions": {}}),
            ),
            (
                EC2,
                "DeleteSecurityGroup",
                json!({"groupName": "cordon-isolation"}),
            ),
            (
                EC2,
                "CreateTags",
                json!({"resourcesSet": {"items": [{"resourceId": "i-0123456789abcdef0"}]}, "tagSet": {"items": [{"key": "cordon:protected", "value": "true"}]}}),
            ),
            (
                EC2,
                "DeleteTags",
                json!({"resourcesSet": {"items": [{"resourceId": "i-0123456789abcdef0"}]}, "tagSet": {"items": [{"key": "cordon:incident"}]}}),
            ),
        ];
        for (source, name, params) in &tampered {
            let r = record(source, name, params.clone());
            assert_eq!(hit(&r, &s), Some("cordon-tampered"), "{name} {params}");
            // The same call by cordon's own role, or by the deployer, is no incident at all.
            for role in [
                "cordon-QuarantineCredentialsFunctionRole-AB12CD34EF56",
                "ci-deployer",
            ] {
                assert_eq!(hit(&by_role(r.clone(), role), &s), None, "{name} by {role}");
            }
            // By any other role it is.
            assert_eq!(
                hit(&by_role(r.clone(), "cordon-lookalike"), &s),
                Some("cordon-tampered"),
                "{name}"
            );
        }
        let untouched = [
            (
                IAM,
                "CreatePolicyVersion",
                json!({"policyArn": format!("arn:aws:iam::{ACCT}:policy/Other"), "policyDocument": "{}"}),
            ),
            (
                IAM,
                "DetachUserPolicy",
                json!({"userName": "alice", "policyArn": format!("arn:aws:iam::{ACCT}:policy/CordonCompromisedKeyQuarantineV3")}),
            ),
            (
                IAM,
                "DeleteUserPolicy",
                json!({"userName": "alice", "policyName": "team-access"}),
            ),
            (
                IAM,
                "UpdateAccessKey",
                json!({"userName": "alice", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "status": "Inactive"}),
            ),
            (
                IAM,
                "TagUser",
                json!({"userName": "alice", "tags": [{"key": "team", "value": "cordon:x"}]}),
            ),
            (
                LAMBDA,
                "UpdateFunctionCode20150331v2",
                json!({"functionName": "billing-report"}),
            ),
            (
                LAMBDA,
                "DeleteFunction20150331",
                json!({"functionName": "cordonx-quarantine-credentials"}),
            ),
            (
                LAMBDA,
                "DeleteFunctionUrlConfig20211031",
                json!({"functionName": "billing-report"}),
            ),
            (EVENTS, "DisableRule", json!({"name": "nightly-backup"})),
            (SNS, "DeleteTopic", json!({"topicArn": format!("{topic}2")})),
            (
                SNS,
                "Unsubscribe",
                json!({"subscriptionArn": format!("arn:aws:sns:us-east-1:{ACCT}:news:0b7d4e4f-1111-4222-8333-444455556666")}),
            ),
            (DYNAMODB, "DeleteTable", json!({"tableName": "orders"})),
            // The record names the group by an id cordon did not register.
            (
                EC2,
                "DeleteSecurityGroup",
                json!({"groupId": "sg-0123456789abcdef0"}),
            ),
            (
                EC2,
                "RevokeSecurityGroupIngress",
                json!({"groupName": "web"}),
            ),
            (
                EC2,
                "CreateTags",
                json!({"resourcesSet": {"items": [{"resourceId": "i-0123456789abcdef0"}]}, "tagSet": {"items": [{"key": "Name", "value": "cordon:x"}]}}),
            ),
        ];
        for (source, name, params) in &untouched {
            let r = record(source, name, params.clone());
            assert_eq!(hit(&r, &s), None, "{name} {params}");
        }
        // Unconfigured, the checks that need a name are off; the policy checks are not.
        let delete = record(
            LAMBDA,
            "DeleteFunction20150331",
            json!({"functionName": "cordon-quarantine-credentials"}),
        );
        assert_eq!(hit(&delete, &none()), None);
        let topic_gone = record(SNS, "DeleteTopic", json!({"topicArn": topic}));
        assert_eq!(hit(&topic_gone, &none()), None);
        let version = record(IAM, "CreatePolicyVersion", json!({"policyArn": policy}));
        assert_eq!(hit(&version, &none()), Some("cordon-tampered"));
    }

    #[test]
    fn lambda_event_names() {
        assert_eq!(
            lambda_operation("UpdateFunctionCode20150331v2"),
            "UpdateFunctionCode"
        );
        assert_eq!(lambda_operation("DeleteFunction20150331"), "DeleteFunction");
        assert_eq!(
            lambda_operation("PutFunctionConcurrency20171031"),
            "PutFunctionConcurrency"
        );
        assert_eq!(
            lambda_operation("PutFunctionEventInvokeConfig"),
            "PutFunctionEventInvokeConfig"
        );
        assert_eq!(lambda_function_name("cordon-fn:live"), "cordon-fn");
        assert_eq!(
            lambda_function_name("arn:aws:lambda:us-east-1:111122223333:function:cordon-fn:3"),
            "cordon-fn"
        );
        assert_eq!(
            lambda_function_name("111122223333:function:cordon-fn"),
            "cordon-fn"
        );
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
    fn a_session_cutoff_rewritten_into_the_past_is_tampering() {
        let put = |cutoff: &str, at: &str| {
            let document = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
                "Action": ["*"], "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}}}]});
            let mut r = record(
                IAM,
                "PutRolePolicy",
                json!({"roleName": "web", "policyName": REVOKE_SESSIONS_POLICY_NAME,
                       "policyDocument": document.to_string()}),
            );
            r.event_time = Some(at.to_owned());
            r
        };
        let at = "2026-11-22T20:00:00Z";
        // What the console's "Revoke active sessions" writes: a cutoff of now.
        assert_eq!(hit(&put("2026-11-22T19:59:58Z", at), &none()), None);
        assert_eq!(
            hit(&put("1970-01-01T00:00:00Z", at), &none()),
            Some("cordon-tampered")
        );
    }

    #[test]
    fn findings_archived_or_trusted_away() {
        let filter = |action: &str| {
            record(
                "guardduty.amazonaws.com",
                "CreateFilter",
                json!({"detectorId": "d", "name": "f", "action": action}),
            )
        };
        assert_eq!(
            hit(&filter("ARCHIVE"), &none()),
            Some("findings-suppressed")
        );
        assert_eq!(
            hit(&filter("NOOP"), &none()),
            None,
            "a filter that only marks"
        );
        let ips = record(
            "guardduty.amazonaws.com",
            "CreateIPSet",
            json!({"activate": true}),
        );
        assert_eq!(hit(&ips, &none()), Some("findings-suppressed"));
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
        let identity = |id: Value| -> Record {
            serde_json::from_value(
                json!({"eventID": "e", "eventSource": "s", "eventName": "n", "userIdentity": id}),
            )
            .unwrap()
        };
        // GetFederationToken's session: its parent user.
        let federated = identity(json!({"type": "FederatedUser",
            "principalId": "111122223333:partner", "sessionContext": {"sessionIssuer":
            {"type": "IAMUser", "userName": "build", "arn": "arn:aws:iam::111122223333:user/build"}}}));
        assert_eq!(
            caller(&federated),
            Principal::User(IamName::parse("build").unwrap())
        );
        // Identity Center's roles, by their reserved path only: a look-alike name is a role.
        let sso = |arn: &str| {
            identity(
                json!({"type": "AssumedRole", "sessionContext": {"sessionIssuer":
                {"type": "Role", "userName": "AWSReservedSSO_Admin_0123", "arn": arn}}}),
            )
        };
        assert_eq!(
            caller(&sso("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123")),
            Principal::unsupported(IDENTITY_CENTER)
        );
        assert_eq!(
            caller(&sso(
                "arn:aws:iam::111122223333:role/AWSReservedSSO_Admin_0123"
            )),
            Principal::Role(IamName::parse("AWSReservedSSO_Admin_0123").unwrap())
        );
    }

    /// Issue 14 item 12: each way around a rule that an attacker could take, and the routine IAM
    /// work of automation that is not an incident.
    #[test]
    fn attackers_cannot_step_around_the_rules() {
        // A public bucket policy stays public under a condition that does not say who calls.
        let bucket = |condition: Value| {
            record(
                "s3.amazonaws.com",
                "PutBucketPolicy",
                json!({"bucketName": "b", "bucketPolicy": {"Statement": [{"Effect": "Allow",
                    "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                    "Condition": condition}]}}),
            )
        };
        let public = Some("exfiltration-public-bucket");
        assert_eq!(
            hit(
                &bucket(json!({"Bool": {"aws:SecureTransport": "true"}})),
                &none()
            ),
            public
        );
        assert_eq!(
            hit(
                &bucket(json!({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}})),
                &none()
            ),
            public
        );
        assert_eq!(
            hit(
                &bucket(json!({"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}})),
                &none()
            ),
            public
        );
        assert_eq!(
            hit(
                &bucket(json!({"StringEquals": {"aws:SourceVpce": "vpce-1"}})),
                &none()
            ),
            None
        );
        assert_eq!(
            hit(
                &bucket(json!({"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})),
                &none()
            ),
            None
        );

        // A trust policy that trusts everyone, on an existing role or a new one.
        let trust = |principal: Value| {
            json!({"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]})
                .to_string()
        };
        for principal in [json!("*"), json!({"AWS": "*"}), json!({"AWS": ["*"]})] {
            let update = record(
                IAM,
                "UpdateAssumeRolePolicy",
                json!({"roleName": "r", "policyDocument": trust(principal.clone())}),
            );
            assert_eq!(
                hit(&update, &none()),
                Some("persistence-trust-outside"),
                "{principal}"
            );
            let create = record(
                IAM,
                "CreateRole",
                json!({"roleName": "r", "assumeRolePolicyDocument": trust(principal.clone())}),
            );
            assert_eq!(
                hit(&create, &none()),
                Some("persistence-trust-outside"),
                "{principal}"
            );
        }
        let outside = record(
            IAM,
            "CreateRole",
            json!({"roleName": "r", "assumeRolePolicyDocument": trust(json!({"AWS": "arn:aws:iam::999988887777:root"}))}),
        );
        assert_eq!(hit(&outside, &none()), Some("persistence-trust-outside"));
        let service = record(
            IAM,
            "CreateRole",
            json!({"roleName": "r", "assumeRolePolicyDocument": trust(json!({"Service": "lambda.amazonaws.com"}))}),
        );
        assert_eq!(hit(&service, &none()), None);

        // Replication: outside by Account; without Account the owner is unknown (notify).
        let replicate = |destination: Value| {
            record(
                "s3.amazonaws.com",
                "PutBucketReplication",
                json!({"bucketName": "b", "ReplicationConfiguration": {"Role": "arn:aws:iam::111122223333:role/r",
                    "Rule": {"ID": "x", "Status": "Enabled", "Destination": destination}}}),
            )
        };
        let named = replicate(json!({"Bucket": "arn:aws:s3:::theirs", "Account": "999988887777"}));
        assert_eq!(hit(&named, &none()), Some("exfiltration-replication"));
        let unnamed = replicate(json!({"Bucket": "arn:aws:s3:::theirs"}));
        assert_eq!(hit(&unnamed, &none()), Some("replication-unverified"));
        let ours = replicate(json!({"Bucket": "arn:aws:s3:::ours", "Account": ACCT}));
        assert_eq!(hit(&ours, &none()), None);

        // Advanced event selectors that keep no management writes.
        let selectors = |fields: Value| {
            record(
                "cloudtrail.amazonaws.com",
                "PutEventSelectors",
                json!({"trailName": "t", "advancedEventSelectors": [{"name": "s", "fieldSelectors": fields}]}),
            )
        };
        let data_only = selectors(json!([{"field": "eventCategory", "equals": ["Data"]},
            {"field": "resources.type", "equals": ["AWS::S3::Object"]}]));
        assert_eq!(hit(&data_only, &none()), Some("logging-narrowed"));
        let reads_only = selectors(json!([{"field": "eventCategory", "equals": ["Management"]},
            {"field": "readOnly", "equals": ["true"]}]));
        assert_eq!(hit(&reads_only, &none()), Some("logging-narrowed"));
        let management = selectors(json!([{"field": "eventCategory", "equals": ["Management"]}]));
        assert_eq!(hit(&management, &none()), None);

        // GPU capacity however it is asked for.
        let regions = RuleSettings {
            allowed_regions: vec!["eu-west-1".into()],
            ..none()
        };
        let fleet = record(
            EC2,
            "CreateFleet",
            json!({"CreateFleetRequest": {"LaunchTemplateConfigs": {"Overrides": [{"InstanceType": "p4d.24xlarge"}]}}}),
        );
        assert_eq!(hit(&fleet, &regions), Some("gpu-hijacking"));
        let spot = record(
            EC2,
            "RequestSpotInstances",
            json!({"launchSpecification": {"instanceType": "g5.12xlarge"}}),
        );
        assert_eq!(hit(&spot, &regions), Some("gpu-hijacking"));
        let mut template = record(
            EC2,
            "RunInstances",
            json!({"launchTemplate": {"launchTemplateId": "lt-1"}}),
        );
        template.response_elements =
            Some(json!({"instancesSet": {"items": [{"instanceType": "trn1.32xlarge"}]}}));
        assert_eq!(hit(&template, &regions), Some("gpu-hijacking"));

        // Routine IAM work by automation listed in IAM_ADMIN_PRINCIPALS.
        let key_for_other = record(IAM, "CreateAccessKey", json!({"userName": "deploy-bot"}));
        let admin_grant = record(
            IAM,
            "AttachUserPolicy",
            json!({"userName": "b", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        );
        let ci = RuleSettings {
            iam_admins: PrincipalPatterns::parse(&format!("arn:aws:iam::{ACCT}:user/mallory"))
                .unwrap(),
            ..none()
        };
        assert_eq!(hit(&key_for_other, &none()), Some("persistence-other-user"));
        assert_eq!(hit(&key_for_other, &ci), None);
        assert_eq!(hit(&admin_grant, &ci), None);
        // Not an exemption from the rules that are never routine.
        assert_eq!(hit(&outside, &ci), Some("persistence-trust-outside"));
    }
}
