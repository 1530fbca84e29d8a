//! The policy documents cordon writes. The quarantine policy is AWS's AWSCompromisedKeyQuarantineV3
//! verbatim (`policies/AWSCompromisedKeyQuarantineV3.json`, copied from the published v3 with its
//! provenance) plus one statement of our own; when AWS publishes a new version, replacing that one
//! file is the whole change.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// AWSCompromisedKeyQuarantineV3 v3 (2026-03-16), as published: 99 denied actions in 2 statements.
pub const AWS_QUARANTINE_V3: &str = include_str!("../policies/AWSCompromisedKeyQuarantineV3.json");

/// Name of the customer managed policy holding our mirror. The `V3` follows AWS's name; later
/// changes to our mirror become new versions of this same policy.
pub const QUARANTINE_POLICY_NAME: &str = "CordonCompromisedKeyQuarantineV3";
pub const QUARANTINE_POLICY_PATH: &str = "/cordon/";

/// Inline policy name for the session cutoff; the same name the IAM console's "Revoke active
/// sessions" button uses, so either one refreshes the other rather than stacking.
pub const REVOKE_SESSIONS_POLICY_NAME: &str = "AWSRevokeOlderSessions";

/// Inline fallback when the user already holds the maximum number of managed policies.
pub const FALLBACK_POLICY_NAME: &str = "CordonQuarantineDenyAll";

/// The inline policy on an instance's role that denies that one instance's credentials: this,
/// then the instance id.
pub const INSTANCE_REVOKE_POLICY_PREFIX: &str = "CordonRevokeInstanceCredentials-";

/// Statement id of our addition to V3.
pub const HARDENING_SID: &str = "CordonPreventQuarantineRemoval";

/// What the hardening statement denies, in three groups, each action with the one-line reason it
/// is there. None of these is in V3, and no pattern here matches a V3 action (a unit test checks
/// both). The statement is `Resource: "*"`: the document is the same for every account and
/// principal, so it cannot name cordon's own table, topic or function.
pub const HARDENING: &[(&str, &[(&str, &str)])] = &[
    ("undo the quarantine", UNDO_THE_QUARANTINE),
    ("pivot", PIVOT),
    ("silence cordon", SILENCE_CORDON),
];

/// V3 denies `iam:DetachUserPolicy` and `iam:UpdateAccessKey`, but not these.
#[rustfmt::skip]
pub const UNDO_THE_QUARANTINE: &[(&str, &str)] = &[
    ("iam:DeleteUserPolicy", "deletes AWSRevokeOlderSessions or CordonQuarantineDenyAll"),
    ("iam:DeleteRolePolicy", "deletes a role's inline session revoke"),
    ("iam:DetachRolePolicy", "detaches the quarantine from a role"),
    ("iam:DeleteUserPermissionsBoundary", "lifts a boundary a responder set on the user"),
    ("iam:DeleteRolePermissionsBoundary", "lifts a boundary a responder set on a role"),
    ("iam:DeletePolicy", "deletes the quarantine policy once nothing holds it"),
    ("iam:DeletePolicyVersion", "deletes the quarantine policy's versions"),
    ("iam:UntagUser", "removes the cordon:incident tag a person releases by"),
    ("iam:UntagRole", "removes the cordon:incident tag from a role"),
    ("iam:TagUser", "rewrites the cordon:incident tag"),
    ("iam:TagRole", "rewrites a role's cordon:incident tag"),
    ("iam:UpdateServiceSpecificCredential", "reactivates a credential cordon set Inactive"),
    ("iam:UpdateSSHPublicKey", "reactivates an SSH public key cordon set Inactive"),
    ("iam:UpdateSigningCertificate", "reactivates a signing certificate cordon set Inactive"),
    ("ec2:ModifyNetworkInterfaceAttribute", "puts an isolated interface back in its groups"),
    ("ec2:ModifyInstanceAttribute", "restores an isolated instance's groups, or new user data"),
    ("ec2:AuthorizeSecurityGroupIngress", "opens the isolation group (or any) to the attacker"),
    ("ec2:AuthorizeSecurityGroupEgress", "lets an isolated instance reach out again"),
];

/// Ways out of the quarantine: sessions, code or consoles that run as another principal, and new
/// credentials for the same user that outlive its deactivated key. V3 already denies
/// `iam:CreateAccessKey`, `iam:CreateLoginProfile`, `iam:PassRole`, `sts:GetSessionToken`,
/// `sts:GetFederationToken`, `lambda:CreateFunction`/`UpdateFunctionCode`/`AddPermission`,
/// `ec2:RunInstances`/`StartInstances` and `codebuild:CreateProject`.
///
/// Two calls no identity policy can stop. `sts:GetSessionToken` is in V3, but IAM does not
/// evaluate policies for it ("You cannot use policies to control authentication operations");
/// its sessions carry the user's own policies, the quarantine included, and cannot call STS
/// except `AssumeRole` (denied here) and `GetCallerIdentity`. `AssumeRoleWithSAML` and
/// `AssumeRoleWithWebIdentity` are unsigned: the caller presents an IdP's token, not this user's
/// key, so `sts:AssumeRole*` names them for completeness only; what this user could do is rewrite
/// the IdP a role trusts, hence `iam:UpdateSAMLProvider`.
#[rustfmt::skip]
pub const PIVOT: &[(&str, &str)] = &[
    ("sts:AssumeRole*", "role sessions carry the role's policies, not the quarantine"),
    ("sts:AssumeRoot", "root sessions in member accounts (centralised root access)"),
    ("sts:GetWebIdentityToken", "JWTs for outside services that trust this account"),
    ("iam:CreateServiceSpecificCredential", "a Bedrock API key, or CodeCommit/Keyspaces login"),
    ("iam:ResetServiceSpecificCredential", "a new password for a service-specific credential"),
    ("iam:UploadSSHPublicKey", "a new CodeCommit SSH key"),
    ("iam:UploadSigningCertificate", "a new X.509 signing certificate"),
    ("iam:UpdateSAMLProvider", "new IdP metadata: SAML sign-in to roles trusting it"),
    ("bedrock:CallWithBearerToken", "Bedrock calls authenticated by an API key, not a signature"),
    ("ssm:SendCommand", "commands on managed instances, as root with their role"),
    ("ssm:StartSession", "a shell or port forward on an instance"),
    ("ssm:ResumeSession", "reconnects to a session opened before"),
    ("ssm:CreateAssociation*", "SendCommand on a schedule (State Manager)"),
    ("ssm:UpdateAssociation", "rewrites an association's document or targets"),
    ("ssm:GetParameter*", "reads stored credentials from SecureString parameters"),
    ("secretsmanager:*GetSecretValue", "reads stored credentials, one or a batch"),
    ("ec2-instance-connect:*", "all 3 actions: an SSH key or a tunnel into an instance"),
    ("ec2:CreateLaunchTemplateVersion", "user data run as the template's role, no PassRole"),
    ("ec2:ModifyLaunchTemplate", "makes such a version the one Auto Scaling launches"),
    ("ecs:ExecuteCommand", "a shell in a running container, with its task role"),
    ("eks:CreateAccessEntry", "access to a cluster, and through its pods their roles"),
    ("eks:AssociateAccessPolicy", "cluster admin for an access entry"),
    ("codebuild:Start*", "builds, sandboxes, commands: as the project's role"),
    ("codebuild:RetryBuild*", "reruns a build (or batch) as the project's role"),
    ("codebuild:UpdateProject", "rewrites a project's buildspec for its next build"),
    ("lambda:Invoke*", "runs an existing function as its role on the attacker's input"),
    ("states:Start*Execution", "runs a state machine as its role on the attacker's input"),
    ("sagemaker:CreatePresignedNotebookInstanceUrl", "Jupyter on a notebook instance, as its role"),
    ("sagemaker:CreatePresignedDomainUrl", "SageMaker Studio, as the user profile's role"),
    ("glue:UpdateDevEndpoint", "an SSH key on a dev endpoint, which runs as its role"),
    ("cloudformation:UpdateStack*", "runs as the stack's service role, no PassRole"),
    ("cloudformation:ExecuteChangeSet", "a stack update through a change set, as its role"),
    ("sso:CreateAccountAssignment", "a permission set in any account for an Identity Center user"),
    ("ecs:RunTask", "a task from an existing definition, as its task role"),
    ("ecs:StartTask", "the same on chosen container instances"),
    ("batch:SubmitJob", "a job from an existing definition, as its job role"),
    ("glue:StartJobRun", "an existing job, as its role, with the attacker's arguments"),
    ("emr:AddJobFlowSteps", "a step on a running cluster, as its instance role"),
    ("codepipeline:StartPipelineExecution", "an existing pipeline's stages, as its role"),
    ("cognito-identity:GetOpenIdTokenForDeveloperIdentity", "a token for an identity pool's roles"),
    ("iam:AddClientIDToOpenIDConnectProvider", "the attacker's app accepted by roles trusting the IdP"),
];

/// Ways to stop cordon from responding, or to erase what it and the account recorded. V3 already
/// denies `lambda:UpdateFunctionCode`, `logs:PutLogEvents`, `s3:DeleteObject`/`PutBucketPolicy`/
/// `PutLifecycleConfiguration` (the trail's bucket) and `organizations:LeaveOrganization`.
#[rustfmt::skip]
pub const SILENCE_CORDON: &[(&str, &str)] = &[
    ("events:DisableRule", "cordon's rules stop matching"),
    ("events:PutRule", "State=DISABLED: DisableRule by another name"),
    ("events:DeleteRule", "the rule is gone"),
    ("events:RemoveTargets", "the rule invokes nothing"),
    ("events:PutTargets", "the rule invokes something else"),
    ("lambda:DeleteFunction", "the function is gone"),
    ("lambda:UpdateFunctionConfiguration", "DRY_RUN=true on cordon; an attacker's layer anywhere"),
    ("lambda:PutFunctionConcurrency", "reserved concurrency 0: every invocation throttled"),
    ("lambda:RemovePermission", "EventBridge may no longer invoke cordon"),
    ("lambda:PutFunctionEventInvokeConfig", "no retries, no destination: events dropped"),
    ("lambda:UpdateFunctionEventInvokeConfig", "turns retries and the failure destination off"),
    ("lambda:DeleteFunctionEventInvokeConfig", "failed events miss the dead-letter queue"),
    ("iam:PutRolePermissionsBoundary", "a boundary on cordon's role that allows nothing"),
    ("sns:Unsubscribe", "nobody receives the notifications"),
    ("sns:SetSubscriptionAttributes", "a filter policy that matches no notification"),
    ("sns:DeleteTopic", "the topic is gone"),
    ("sns:SetTopicAttributes", "a topic policy or KMS key cordon cannot publish with"),
    ("sns:RemovePermission", "removes a statement of the topic policy"),
    ("sns:PutDataProtectionPolicy", "denies the messages that name an access key"),
    ("sqs:SetQueueAttributes", "a dead-letter queue that keeps nothing, or refuses Lambda"),
    ("sqs:PurgeQueue", "empties the dead-letter queue"),
    ("sqs:DeleteQueue", "deletes the dead-letter queue"),
    ("sqs:DeleteMessage", "deletes failed events from the dead-letter queue"),
    ("cloudwatch:DisableAlarmActions", "cordon's alarms fire to nobody"),
    ("cloudwatch:DeleteAlarms", "cordon's alarms are gone"),
    ("cloudwatch:PutMetricAlarm", "an alarm rewritten never to fire"),
    ("dynamodb:DeleteTable", "deletes the ledger"),
    ("dynamodb:UpdateTable", "throttles the ledger (provisioned, one write unit)"),
    ("dynamodb:PutResourcePolicy", "a table policy that denies cordon"),
    ("guardduty:DeleteDetector", "no more findings"),
    ("guardduty:UpdateDetector", "the detector or its features disabled"),
    ("guardduty:CreateFilter", "auto-archive: archived findings never reach EventBridge"),
    ("guardduty:UpdateFilter", "makes an existing filter auto-archive"),
    ("guardduty:ArchiveFindings", "archives the findings a person would look at"),
    ("guardduty:CreateIPSet", "a trusted IP list: no findings for the attacker's addresses"),
    ("guardduty:UpdateIPSet", "adds the attacker's addresses to the trusted IP list"),
    ("guardduty:CreateTrustedEntitySet", "a trusted entity list: no findings for its entries"),
    ("guardduty:UpdateTrustedEntitySet", "adds the attacker's to the trusted entity list"),
    ("guardduty:Disassociate*", "from the administrator, or of members"),
    ("guardduty:DeleteMembers", "the administrator no longer sees a member"),
    ("guardduty:StopMonitoringMembers", "the administrator stops monitoring a member"),
    ("guardduty:UpdateMemberDetectors", "a member's detector features disabled"),
    ("cloudtrail:StopLogging", "the trail records nothing"),
    ("cloudtrail:DeleteTrail", "the trail is gone"),
    ("cloudtrail:UpdateTrail", "another bucket, one region, no global service events"),
    ("cloudtrail:PutEventSelectors", "management events excluded"),
    ("cloudtrail:StopEventDataStoreIngestion", "the event data store records nothing"),
    ("cloudtrail:DeleteEventDataStore", "the event data store is gone"),
    ("config:StopConfigurationRecorder", "Config records nothing"),
    ("config:DeleteConfigurationRecorder", "the recorder is gone"),
    ("config:PutConfigurationRecorder", "a recorder that skips IAM"),
    ("config:DeleteDeliveryChannel", "Config delivers nothing"),
    ("logs:DeleteLogGroup", "cordon's logs are gone"),
    ("logs:DeleteLogStream", "some of cordon's logs are gone"),
    ("logs:PutRetentionPolicy", "cordon's logs kept for a day"),
    ("cloudformation:DeleteStack", "cordon's stack, via its service role if any"),
    ("ec2:DeleteSnapshot", "deletes the snapshots cordon took as evidence"),
];

const fn hardening_len() -> usize {
    let (mut n, mut g) = (0, 0);
    while g < HARDENING.len() {
        n += HARDENING[g].1.len();
        g += 1;
    }
    n
}

const fn hardening_actions<const N: usize>() -> [&'static str; N] {
    let mut out = [""; N];
    let (mut i, mut g) = (0, 0);
    while g < HARDENING.len() {
        let mut a = 0;
        while a < HARDENING[g].1.len() {
            out[i] = HARDENING[g].1[a].0;
            i += 1;
            a += 1;
        }
        g += 1;
    }
    out
}

/// Every action of [`HARDENING`], in order: the hardening statement's `Action`.
pub const HARDENING_ACTIONS: &[&str] = &hardening_actions::<{ hardening_len() }>();

/// AWS's V3 document followed by our hardening statement.
pub fn quarantine_document() -> Value {
    // The file is part of the binary and checked by a unit test, so it always parses.
    let mut doc: Value = serde_json::from_str(AWS_QUARANTINE_V3).unwrap_or(Value::Null);
    if let Some(statements) = doc.get_mut("Statement").and_then(Value::as_array_mut) {
        statements.push(json!({
            "Sid": HARDENING_SID,
            "Effect": "Deny",
            "Action": HARDENING_ACTIONS,
            "Resource": "*",
        }));
    }
    doc
}

/// Deny everything signed with credentials issued before `cutoff`: the AWSRevokeOlderSessions
/// pattern. Long-term keys carry no `aws:TokenIssueTime`, so this never stops an `AKIA` key.
/// The cutoff a session-revoke document enforces, if it is one: exactly one statement denying
/// every action on every resource to tokens issued before a time, as ours and the IAM console's
/// "Revoke active sessions" write it. Anything else (a narrower action, an extra condition key, a
/// second statement) is not a cutoff: a planted decoy with a far-future date must not pass for one.
pub fn revoke_sessions_cutoff(doc: &Value) -> Option<OffsetDateTime> {
    let statement = match doc.get("Statement")? {
        Value::Array(list) if list.len() == 1 => &list[0],
        Value::Array(_) => return None,
        single => single,
    };
    let everything = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s == "*",
        Some(Value::Array(list)) => list.len() == 1 && list[0] == "*",
        _ => false,
    };
    let known = ["Action", "Condition", "Effect", "Resource", "Sid"];
    if statement.get("Effect")? != "Deny"
        || !everything(statement.get("Action"))
        || !everything(statement.get("Resource"))
        || statement
            .as_object()?
            .keys()
            .any(|k| !known.contains(&k.as_str()))
    {
        return None;
    }
    let condition = statement.get("Condition")?.as_object()?;
    let before = condition.get("DateLessThan")?.as_object()?;
    if condition.len() != 1 || before.len() != 1 {
        return None;
    }
    OffsetDateTime::parse(before.get("aws:TokenIssueTime")?.as_str()?, &Rfc3339).ok()
}

pub fn revoke_sessions_document(cutoff: OffsetDateTime) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": rfc3339_seconds(cutoff)}},
        }],
    })
}

pub fn deny_all_document() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "CordonQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    })
}

/// `2026-11-22T20:41:07Z`: IAM's date format, to the second.
pub fn rfc3339_seconds(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// IAM returns documents URL-encoded and reformatted; compare meaning, not bytes.
pub fn same_document(returned: &str, ours: &Value) -> bool {
    let decoded = decode(returned);
    serde_json::from_str::<Value>(&decoded).is_ok_and(|v| normalize(v) == normalize(ours.clone()))
}

/// A single action or statement may come back as a bare value instead of a one-element list.
fn normalize(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = normalize(v);
                    let v = match (k.as_str(), v) {
                        ("Statement" | "Action" | "Resource", Value::String(s)) => {
                            Value::Array(vec![Value::String(s)])
                        }
                        ("Statement", Value::Object(o)) => Value::Array(vec![Value::Object(o)]),
                        (_, v) => v,
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

/// IAM's documents come back percent-encoded.
pub fn decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(statement: &Value) -> Vec<String> {
        match &statement["Action"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        }
    }

    /// The mirror is V3 verbatim plus exactly one statement: diffed against the reference.
    #[test]
    fn mirror_is_v3_plus_hardening() {
        let reference: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/policies/AWSCompromisedKeyQuarantineV3.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let ours = quarantine_document();
        let (ref_st, our_st) = (
            reference["Statement"].as_array().unwrap(),
            ours["Statement"].as_array().unwrap(),
        );
        assert_eq!(ref_st.len(), 2);
        assert_eq!(our_st.len(), 3);
        assert_eq!(
            &our_st[..2],
            &ref_st[..],
            "V3 statements must be carried verbatim"
        );
        assert_eq!(ours["Version"], "2012-10-17");
        let denied: Vec<String> = ref_st.iter().flat_map(actions).collect();
        assert_eq!(denied.len(), 99);
        assert_eq!(
            ref_st[1]["Condition"],
            json!({"Null": {"kms:ViaService": "true"}})
        );
        let hardening = &our_st[2];
        assert_eq!(hardening["Sid"], HARDENING_SID);
        assert_eq!(hardening["Effect"], "Deny");
        assert_eq!(hardening["Resource"], "*");
        assert!(
            hardening.get("Condition").is_none(),
            "the hardening is unconditional"
        );
        assert_eq!(actions(hardening), HARDENING_ACTIONS);
        // Nothing V3 denies is repeated, not even through a wildcard either way.
        for ours in actions(hardening) {
            for theirs in &denied {
                assert!(
                    !matches(&ours, theirs) && !matches(theirs, &ours),
                    "{ours} overlaps V3's {theirs}"
                );
            }
        }
    }

    /// IAM's action matching: case-insensitive, `*` any run of characters, `?` one.
    fn matches(pattern: &str, action: &str) -> bool {
        fn go(p: &[u8], a: &[u8]) -> bool {
            match (p.first(), a.first()) {
                (None, None) => true,
                (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
                (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
                (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
                _ => false,
            }
        }
        go(pattern.as_bytes(), action.as_bytes())
    }

    /// Every action is `service:Name`, listed once, matched by no other entry, with a one-line
    /// reason; the three groups are the ones the README describes.
    #[test]
    fn every_hardening_action_has_one_reason() {
        let groups: Vec<&str> = HARDENING.iter().map(|(g, _)| *g).collect();
        assert_eq!(groups, ["undo the quarantine", "pivot", "silence cordon"]);
        let all: Vec<(&str, &str)> = HARDENING
            .iter()
            .flat_map(|(_, list)| list.iter().copied())
            .collect();
        assert_eq!(all.len(), HARDENING_ACTIONS.len());
        assert_eq!(all.len(), 116, "update the count in README");
        for (i, (action, reason)) in all.iter().enumerate() {
            let (service, name) = action.split_once(':').expect(action);
            assert!(
                !service.is_empty()
                    && service
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{action}"
            );
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*'),
                "{action}"
            );
            assert!(
                !reason.trim().is_empty() && !reason.contains('\n'),
                "{action}"
            );
            for (j, (other, _)) in all.iter().enumerate() {
                assert!(
                    i == j || !matches(action, other),
                    "{action} also covers {other}"
                );
            }
        }
    }

    /// The matcher the overlap checks rely on follows IAM: case-insensitive, `*` any run. (The
    /// issue's checklist is asserted on the documents in force: tests/integration/quarantine_denies.rs.)
    #[test]
    fn matching_follows_iam() {
        assert!(matches("sts:AssumeRole*", "STS:assumerolewithsaml"));
        assert!(!matches("sts:AssumeRole*", "sts:AssumeRoot"));
        assert!(matches(
            "states:Start*Execution",
            "states:StartSyncExecution"
        ));
        assert!(!matches("lambda:Invoke*", "lambda:GetFunction"));
    }

    /// Managed policies are capped at 6,144 characters, which IAM counts without white space;
    /// inline user policies at 2,048, which V3 alone exceeds.
    #[test]
    fn sizes_fit_iam_limits() {
        fn iam_length(doc: &Value) -> usize {
            serde_json::to_string_pretty(doc)
                .unwrap()
                .chars()
                .filter(|c| !c.is_whitespace())
                .count()
        }
        let v3: Value = serde_json::from_str(AWS_QUARANTINE_V3).unwrap();
        assert_eq!(iam_length(&v3), 2718, "update README");
        let ours = quarantine_document();
        let length = iam_length(&ours);
        assert_eq!(length, 5951, "update README");
        assert!(length <= 6144, "{length}");
        // What cordon sends is exactly that long: no white space, none inside a string.
        assert_eq!(ours.to_string().len(), length);
        assert!(length > 2048);
        let revoke = revoke_sessions_document(OffsetDateTime::UNIX_EPOCH);
        assert!(iam_length(&revoke) <= 2048);
        assert!(iam_length(&deny_all_document()) <= 2048);
    }

    #[test]
    fn reads_back_the_cutoff_of_ours_and_the_consoles() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            revoke_sessions_cutoff(&revoke_sessions_document(t)),
            Some(t)
        );
        // The IAM console's "Revoke active sessions" document.
        let console = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
            "Action": ["*"], "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2023-11-14T22:13:20.000Z"}}}]});
        assert_eq!(revoke_sessions_cutoff(&console), Some(t));
        assert_eq!(
            revoke_sessions_cutoff(&serde_json::json!({"Statement": []})),
            None
        );
        // Decoys an attacker could plant under the same name, with a far-future date: none is a
        // cutoff, so cordon writes its own.
        let future = "2099-01-01T00:00:00Z";
        for decoy in [
            serde_json::json!({"Statement": [{"Effect": "Deny", "Action": "s3:Nope", "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": future}}}]}),
            serde_json::json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "arn:aws:s3:::x",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": future}}}]}),
            serde_json::json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": future},
                              "StringEquals": {"aws:RequestedRegion": "xx-none-1"}}}]}),
            serde_json::json!({"Statement": [{"Effect": "Deny", "NotAction": "iam:*", "Action": "*",
                "Resource": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": future}}}]}),
            serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": future}}}]}),
        ] {
            assert_eq!(revoke_sessions_cutoff(&decoy), None, "{decoy}");
        }
    }

    #[test]
    fn revoke_cutoff_is_iso_seconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let doc = revoke_sessions_document(t);
        assert_eq!(
            doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn compares_url_encoded_documents() {
        let ours = deny_all_document();
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Sid%22%3A%22CordonQuarantine%22%2C%22Effect%22%3A%22Deny%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%7D";
        assert!(same_document(encoded, &ours));
        assert!(!same_document(
            encoded,
            &revoke_sessions_document(OffsetDateTime::UNIX_EPOCH)
        ));
    }
}
