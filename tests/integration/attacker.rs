//! What an adversarial review found an attacker with a stolen IAM user key (broad rights, but
//! not cordon's own roles) could do: aim cordon at a bystander, undo a containment it reported,
//! or silence cordon before it is contained. Every event goes through `cordon::lambda::handle`
//! on moto, after the template's delivery check, as everywhere else.

use cordon::ledger::Status;
use cordon::policy::REVOKE_SESSIONS_POLICY_NAME;
use cordon::Function;
use integration_tests::{
    event, key_statuses, repo_root, seed_role, seed_user, unique, user_policies, ACCOUNT,
};
use serde_json::{json, Value};

use crate::{deployment, lambda_invoke, reached, responder, user_finding};

/// A CloudTrail record of `source`:`name` with `params`, signed by IAM user `user`'s `key`.
fn call(source: &str, name: &str, params: Value, user: &str, key: &str) -> Value {
    let mut e = event("cloudtrail-cordon-policy-version.json").unwrap();
    let service = source.trim_end_matches(".amazonaws.com");
    e["source"] = format!("aws.{service}").into();
    let d = &mut e["detail"];
    d["eventID"] = unique("event").into();
    d["eventSource"] = source.into();
    d["eventName"] = name.into();
    d["requestParameters"] = params;
    d["responseElements"] = Value::Null;
    d["userIdentity"]["userName"] = user.into();
    d["userIdentity"]["arn"] = format!("arn:aws:iam::{ACCOUNT}:user/{user}").into();
    d["userIdentity"]["accessKeyId"] = key.into();
    e
}

/// A bystander. GuardDuty names the caller of a call that came from another account
/// (`remoteAccountDetails`: "appears if the call was made from outside your account"): the
/// principal in `accessKeyDetails` is that account's. An attacker creates a user named like a
/// user here (`alice`) in their own account and calls this account's bucket from Tor or a Kali
/// user agent. cordon quarantined this account's `alice`: the attacker chose whom.
#[tokio::test]
async fn another_accounts_caller_does_not_contain_a_same_named_principal_here() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let bystander = unique("alice");
    seed_user(iam, &bystander, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    // The IAM-user finding and AWS's S3 Protection sample, each for a call from 999988887777
    // by its own user of the bystander's name, with that account's key.
    let (_, mut iam_finding) = user_finding(&bystander, "AKIAOTHERACCOUNT0001");
    let s3 =
        repo_root().join("tests/corpus/guardduty/awssamples-autoresponse__guardduty_s3_event.json");
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(s3).unwrap()).unwrap();
    let mut detail = sample.get("detail").cloned().unwrap_or(sample);
    detail["service"]["additionalInfo"] = json!({});
    detail["id"] = unique("finding").replace('-', "").into();
    detail["accountId"] = ACCOUNT.into();
    detail["resource"]["accessKeyDetails"]["userName"] = bystander.clone().into();
    detail["resource"]["accessKeyDetails"]["accessKeyId"] = "AKIAOTHERACCOUNT0002".into();
    let mut s3_finding = json!({"version": "0", "id": unique("event"), "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": ACCOUNT, "region": "us-east-1",
        "time": "2026-11-22T20:00:00Z", "resources": [], "detail": detail});
    for e in [&mut iam_finding, &mut s3_finding] {
        e["detail"]["service"]["action"]["awsApiCallAction"]["remoteAccountDetails"] =
            json!({"accountId": "999988887777", "affiliated": false});
    }

    for e in [iam_finding, s3_finding] {
        let report = lambda_invoke(&r, e).await;

        assert_ne!(report.status, Some(Status::Contained), "{report:#?}");
        assert_eq!(
            user_policies(iam, &bystander).await.unwrap(),
            (vec![], vec![]),
            "the bystander holds no quarantine and no session cutoff: {report:#?}"
        );
        assert_eq!(key_statuses(iam, &bystander).await.unwrap()[0].1, "Active");
        assert!(report.notified, "a person is told: {report:#?}");
    }
}

/// Undo. `cordon-tampered` fires on a second foothold reactivating a key cordon
/// deactivated, and contains that foothold, but only the quarantine policy's *document* is ever
/// restored: the reactivated key stays Active. A long-term key is not cut by
/// `AWSRevokeOlderSessions` (no `aws:TokenIssueTime`), so the attacker reads everything V3 does
/// not deny (s3:GetObject, dynamodb:Scan, ...) while the incident says `contained`. A CloudTrail
/// incident is never re-delivered, and GuardDuty's repeat comes hours later, if at all.
#[tokio::test]
async fn a_key_reactivated_by_a_second_foothold_is_deactivated_again() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let victim = unique("vera");
    let victim_keys = seed_user(iam, &victim, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let report = lambda_invoke(&r, user_finding(&victim, &victim_keys[0]).1).await;
    assert_eq!(report.status, Some(Status::Contained));
    assert_eq!(key_statuses(iam, &victim).await.unwrap()[0].1, "Inactive");

    // The second foothold, an ordinary user with iam:UpdateAccessKey.
    let foothold = unique("bob");
    let foothold_keys = seed_user(iam, &foothold, 1).await.unwrap();
    iam.update_access_key()
        .user_name(&victim)
        .access_key_id(&victim_keys[0])
        .status(aws_sdk_iam::types::StatusType::Active)
        .send()
        .await
        .unwrap();
    let e = call(
        "iam.amazonaws.com",
        "UpdateAccessKey",
        json!({"userName": victim, "accessKeyId": victim_keys[0], "status": "Active"}),
        &foothold,
        &foothold_keys[0],
    );

    let report = lambda_invoke(&r, e).await;

    assert_eq!(
        report.finding_type.as_deref(),
        Some("CloudTrail:cordon-tampered")
    );
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(key_statuses(iam, &foothold).await.unwrap()[0].1, "Inactive");
    assert_eq!(
        key_statuses(iam, &victim).await.unwrap()[0].1,
        "Inactive",
        "the key cordon reported contained is Active again after cordon handled the tampering: {report:#?}"
    );
}

/// Silence, before containment. The quarantine denies these to a principal cordon already
/// contained (HARDENING, "silence cordon"), but no rule notices a principal cordon has not
/// contained yet making them, which is when an attacker makes them:
/// - `guardduty:CreateFilter` with `action: ARCHIVE` on every finding: suppressed findings never
///   reach EventBridge, so no GuardDuty finding reaches cordon again;
/// - `guardduty:CreateIPSet` trusting the attacker's addresses: no findings for them;
/// - `sns:PutDataProtectionPolicy` on the alert topic whose inbound `Deny` matches what
///   cordon's messages carry (a custom data identifier such as the regex `cordon`): every
///   notification refused, and the alarms that would say so go to the same topic;
/// - `iam:PutRolePolicy` rewriting a contained role's `AWSRevokeOlderSessions` to a 1970 cutoff:
///   the stolen sessions work again (only DeleteRolePolicy is watched).
#[tokio::test]
async fn silencing_calls_by_a_principal_not_yet_contained_are_contained() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let attacker = unique("mallory");
    let keys = seed_user(iam, &attacker, 1).await.unwrap();
    let role = unique("web");
    seed_role(iam, &role).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let revoke_1970 = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "Action": "*", "Resource": "*",
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": "1970-01-01T00:00:00Z"}}}]})
    .to_string();
    let calls = [
        (
            "guardduty.amazonaws.com",
            "CreateFilter",
            json!({"detectorId": "48bf285e13736c6c722945805b3e224a", "name": "noise",
                   "action": "ARCHIVE", "rank": 1,
                   "findingCriteria": {"criterion": {"severity": {"gte": 0}}}}),
        ),
        (
            "guardduty.amazonaws.com",
            "CreateIPSet",
            json!({"detectorId": "48bf285e13736c6c722945805b3e224a", "name": "office",
                   "format": "TXT", "location": "https://s3.amazonaws.com/x/ips.txt",
                   "activate": true}),
        ),
        (
            "sns.amazonaws.com",
            "PutDataProtectionPolicy",
            json!({"resourceArn": d.topic_arn, "dataProtectionPolicy": "{\"Name\":\"x\",\"Version\":\"2021-06-01\",\"Configuration\":{\"CustomDataIdentifier\":[{\"Name\":\"cordon\",\"Regex\":\"cordon\"}]},\"Statement\":[{\"DataDirection\":\"Inbound\",\"Principal\":[\"*\"],\"DataIdentifier\":[\"cordon\"],\"Operation\":{\"Deny\":{}}}]}"}),
        ),
        (
            "iam.amazonaws.com",
            "PutRolePolicy",
            json!({"roleName": role, "policyName": REVOKE_SESSIONS_POLICY_NAME,
                   "policyDocument": revoke_1970}),
        ),
    ];
    let mut missed = Vec::new();
    for (source, name, params) in calls {
        let e = call(source, name, params, &attacker, &keys[0]);
        if !reached(&r, &e).contains_key("quarantine-credentials") {
            missed.push(format!("{name}: never delivered"));
            continue;
        }
        let report = lambda_invoke(&r, e).await;
        if report.status != Some(Status::Contained) {
            missed.push(format!("{name}: {:?} ({:?})", report.status, report.reason));
        }
    }
    assert!(missed.is_empty(), "not contained: {missed:#?}");
}
