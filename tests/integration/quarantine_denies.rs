//! What the quarantine stops, proven on a contained user: one GuardDuty finding goes through the
//! Lambda handler (`cordon::lambda::handle`, what `lambda_runtime` calls for each event), then
//! every policy document in force on the user is read back from moto, and each action of the
//! issue's checklist must be matched by an unconditional Deny in one of them. moto does not
//! evaluate policies: this asserts the documents IAM would evaluate, with IAM's action matching.

use cordon::ledger::Status;
use cordon::policy::{self, FALLBACK_POLICY_NAME, QUARANTINE_POLICY_NAME};
use cordon::Function;
use integration_tests::{seed_user, unique};
use serde_json::Value;

use crate::{deployment, lambda_invoke, responder, user_finding};

/// The issue's checklist, verbatim: the pivots, the undoing (detaching the quarantine,
/// reactivating the key) and the silencing it names. `sts:AssumeRole*` and
/// `codebuild:StartBuild*` are written out as the actions they stand for.
const ISSUE_CHECKLIST: &[&str] = &[
    // "a quarantined user assumes a role it can reach and, from there, detaches its own
    // quarantine and reactivates its key"
    "sts:AssumeRole",
    "sts:AssumeRoleWithSAML",
    "sts:AssumeRoleWithWebIdentity",
    "iam:DetachUserPolicy",
    "iam:UpdateAccessKey",
    // "Other pivots left open"
    "ssm:SendCommand",
    "ssm:StartSession",
    "codebuild:StartBuild",
    "codebuild:StartBuildBatch",
    "ec2-instance-connect:SendSSHPublicKey",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "iam:CreateServiceSpecificCredential",
    "iam:UploadSSHPublicKey",
    "bedrock:CallWithBearerToken",
    // "The quarantine does not stop silencing cordon"
    "events:PutRule",
    "events:DisableRule",
    "events:PutTargets",
    "lambda:RemovePermission",
    "lambda:PutFunctionEventInvokeConfig",
    "sns:Unsubscribe",
    "sns:SetSubscriptionAttributes",
    "sns:DeleteTopic",
    "dynamodb:DeleteTable",
    "guardduty:CreateFilter",
    "guardduty:UpdateFilter",
    "guardduty:ArchiveFindings",
    "guardduty:DisassociateFromAdministratorAccount",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "config:StopConfigurationRecorder",
];

/// Beyond the issue: the V3 actions README names, and what the hardening adds, written as the
/// concrete actions its wildcards cover.
const ALSO_FOUND: &[&str] = &[
    "iam:CreateAccessKey",
    "iam:PutUserPolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:PassRole",
    "iam:CreateLoginProfile",
    "lambda:CreateFunction",
    "ec2:RunInstances",
    "codebuild:CreateProject",
    "sts:GetSessionToken",
    "sts:AssumeRoot",
    "sts:GetWebIdentityToken",
    "iam:ResetServiceSpecificCredential",
    "iam:UpdateServiceSpecificCredential",
    "iam:UpdateSSHPublicKey",
    "iam:UploadSigningCertificate",
    "iam:UpdateSigningCertificate",
    "iam:UpdateSAMLProvider",
    "iam:DeleteUserPolicy",
    "ssm:ResumeSession",
    "ssm:CreateAssociation",
    "ssm:GetParametersByPath",
    "secretsmanager:GetSecretValue",
    "secretsmanager:BatchGetSecretValue",
    "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
    "ec2-instance-connect:OpenTunnel",
    "ec2:CreateLaunchTemplateVersion",
    "ecs:ExecuteCommand",
    "codebuild:StartSandbox",
    "codebuild:StartCommandExecution",
    "codebuild:RetryBuild",
    "lambda:InvokeFunction",
    "states:StartSyncExecution",
    "cloudformation:UpdateStackSet",
    "lambda:UpdateFunctionEventInvokeConfig",
    "lambda:DeleteFunctionEventInvokeConfig",
    "sns:SetTopicAttributes",
    "sqs:PurgeQueue",
    "dynamodb:UpdateTable",
    "guardduty:DisassociateFromMasterAccount",
    "guardduty:CreateIPSet",
    "guardduty:CreateTrustedEntitySet",
    "cloudtrail:StopEventDataStoreIngestion",
    "config:DeleteConfigurationRecorder",
    "logs:DeleteLogGroup",
];

/// Left allowed on purpose (or not deniable): proof the matching below is not vacuous.
const NOT_DENIED: &[&str] = &[
    "sts:GetCallerIdentity",
    "s3:PutObject",
    "iam:ListAccessKeys",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
];

/// IAM's action matching: case-insensitive, `*` any run of characters, `?` exactly one.
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

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    }
}

fn statements(doc: &Value) -> Vec<Value> {
    match &doc["Statement"] {
        Value::Array(list) => list.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        _ => vec![],
    }
}

/// A Deny that applies to every request for its actions: no condition, every resource.
fn unconditional_deny(st: &Value) -> bool {
    st["Effect"] == "Deny"
        && st.get("Condition").is_none()
        && st.get("NotAction").is_none()
        && st.get("NotResource").is_none()
        && strings(&st["Resource"]).iter().any(|r| r == "*")
}

fn decode(doc: &str) -> Value {
    serde_json::from_str(&policy::decode(doc)).expect("policy JSON")
}

/// Every document in force on `user`, by name: the default version of each attached managed
/// policy, each inline policy, and those of the user's groups.
async fn documents_in_force(iam: &aws_sdk_iam::Client, user: &str) -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    let mut managed: Vec<String> = iam
        .list_attached_user_policies()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect();
    let groups = iam
        .list_groups_for_user()
        .user_name(user)
        .send()
        .await
        .unwrap();
    for group in groups.groups() {
        let name = group.group_name();
        let attached = iam
            .list_attached_group_policies()
            .group_name(name)
            .send()
            .await
            .unwrap();
        managed.extend(
            attached
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_owned)),
        );
        let inline = iam
            .list_group_policies()
            .group_name(name)
            .send()
            .await
            .unwrap();
        for policy_name in inline.policy_names() {
            let got = iam
                .get_group_policy()
                .group_name(name)
                .policy_name(policy_name)
                .send()
                .await
                .unwrap();
            docs.push((policy_name.clone(), decode(got.policy_document())));
        }
    }
    for arn in managed {
        let got = iam.get_policy().policy_arn(&arn).send().await.unwrap();
        let version = got.policy().unwrap().default_version_id().unwrap();
        let version = iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            .unwrap();
        let document = version.policy_version().unwrap().document().unwrap();
        docs.push((arn, decode(document)));
    }
    let inline = iam
        .list_user_policies()
        .user_name(user)
        .send()
        .await
        .unwrap();
    for policy_name in inline.policy_names() {
        let got = iam
            .get_user_policy()
            .user_name(user)
            .policy_name(policy_name)
            .send()
            .await
            .unwrap();
        docs.push((policy_name.clone(), decode(got.policy_document())));
    }
    docs
}

#[tokio::test]
async fn documents_in_force_on_a_contained_user_deny_every_pivot_and_silencing_action() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("mallory");
    let keys = seed_user(iam, &user, 2).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let (_, event) = user_finding(&user, &keys[0]);

    let report = lambda_invoke(&r, event).await;
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");

    let docs = documents_in_force(iam, &user).await;
    let names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.iter().any(|n| n.ends_with(QUARANTINE_POLICY_NAME)),
        "the managed quarantine is attached: {names:?}"
    );
    assert!(
        !names.contains(&FALLBACK_POLICY_NAME),
        "the checklist must hold with the managed document, not the deny-all fallback"
    );
    // The session revoke is in force too, but conditional: it stops no long-term key, so it
    // must not count below.
    assert!(docs.iter().any(|(_, doc)| statements(doc)
        .iter()
        .any(|st| st["Effect"] == "Deny" && st.get("Condition").is_some())));

    let denied: Vec<(String, String)> = docs
        .iter()
        .flat_map(|(name, doc)| {
            statements(doc)
                .into_iter()
                .filter(unconditional_deny)
                .flat_map(|st| strings(&st["Action"]))
                .map(move |a| (a, name.clone()))
        })
        .collect();
    let denied_by = |action: &str| {
        denied
            .iter()
            .find(|(pattern, _)| matches(pattern, action))
            .map(|(pattern, name)| format!("{pattern} in {name}"))
    };

    let mut open: Vec<&str> = ISSUE_CHECKLIST
        .iter()
        .chain(ALSO_FOUND)
        .copied()
        .filter(|a| denied_by(a).is_none())
        .collect();
    // Every hardening entry, wildcards included, is in force as written.
    for (_, group) in policy::HARDENING {
        for &(action, _) in *group {
            if denied_by(action).is_none() {
                open.push(action);
            }
        }
    }
    assert!(
        open.is_empty(),
        "not denied on the contained user: {open:?}"
    );

    for action in NOT_DENIED {
        assert_eq!(denied_by(action), None, "{action}");
    }
}
