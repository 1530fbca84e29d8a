//! Findings beyond the two classic shapes reach cordon and are read right: an S3 Protection
//! finding that names the key contains the key; an instance that was only probed is notified
//! about, never isolated.

use cordon::ledger::Status;
use cordon::Function;
use integration_tests::seed::seed_workload;
use integration_tests::{event, key_statuses, repo_root, seed_user, unique, ACCOUNT};
use serde_json::{json, Value};

use crate::{deployment, lambda_invoke, moto, responder};

/// AWS's own S3 Protection sample (aws-samples, `tests/corpus`): a bucket reached with an IAM
/// user's key. The key is contained, as for an access-key finding.
#[tokio::test]
async fn an_s3_finding_with_a_key_contains_the_key() {
    let d = deployment().await;
    let user = unique("reader");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let path =
        repo_root().join("tests/corpus/guardduty/awssamples-autoresponse__guardduty_s3_event.json");
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut detail = sample.get("detail").cloned().unwrap_or(sample);
    assert_eq!(detail["resource"]["resourceType"], "S3Bucket");
    // AWS generated it as a sample finding; this one stands for the real thing.
    detail["service"]["additionalInfo"] = json!({});
    detail["id"] = unique("finding").replace('-', "").into();
    detail["accountId"] = ACCOUNT.into();
    detail["resource"]["accessKeyDetails"]["userName"] = user.clone().into();
    detail["resource"]["accessKeyDetails"]["accessKeyId"] = keys[0].clone().into();
    let e = json!({"version": "0", "id": unique("event"), "detail-type": "GuardDuty Finding",
                   "source": "aws.guardduty", "account": ACCOUNT, "region": "us-east-1",
                   "time": "2026-11-22T20:00:00Z", "resources": [], "detail": detail});
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(
        key_statuses(&d.clients.iam, &user).await.unwrap()[0].1,
        "Inactive"
    );
}

/// `Recon:EC2/PortProbeUnprotectedPort`: someone outside probed the instance (resourceRole
/// TARGET). It is the victim: notified, nothing isolated.
#[tokio::test]
async fn a_probed_instance_is_notified_not_isolated() {
    let d = deployment().await;
    let w = seed_workload(&d, &[]).await.unwrap();
    let mut e = event("guardduty-ec2.json").unwrap();
    e["detail"]["id"] = unique("finding").replace('-', "").into();
    e["detail"]["type"] = "Recon:EC2/PortProbeUnprotectedPort".into();
    e["detail"]["service"]["resourceRole"] = "TARGET".into();
    e["detail"]["resource"]["instanceDetails"]["instanceId"] = w.instance.clone().into();
    let r = responder(&d, Function::IsolateInstance, &[]).await;

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::NotifyOnly), "{report:#?}");
    assert!(report.actions.is_empty(), "{report:#?}");
    assert!(report.notified);
    let messages = d.notifications(moto()).await.unwrap();
    assert!(messages[0]["Message"]
        .as_str()
        .unwrap()
        .contains("target of this activity"));
    let snapshots = d
        .clients
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap();
    assert!(
        !snapshots
            .snapshots()
            .iter()
            .any(|s| w.volumes.iter().any(|v| s.volume_id() == Some(v))),
        "nothing snapshotted"
    );
}

/// A call by a `GetFederationToken` session contains the IAM user it came from: the deny and
/// the session cutoff on the user reach its federation sessions.
#[tokio::test]
async fn a_federated_users_call_contains_its_parent_user() {
    let d = deployment().await;
    let parent = unique("build");
    seed_user(&d.clients.iam, &parent, 1).await.unwrap();
    let mut e = event("cloudtrail-stop-logging.json").unwrap();
    e["detail"]["eventID"] = unique("event").into();
    e["detail"]["userIdentity"] = json!({"type": "FederatedUser",
        "principalId": format!("{ACCOUNT}:partner"),
        "arn": format!("arn:aws:sts::{ACCOUNT}:federated-user/partner"),
        "accountId": ACCOUNT, "accessKeyId": "ASIAEXAMPLEFEDERATE1",
        "sessionContext": {"sessionIssuer": {"type": "IAMUser", "principalId": "AIDAEXAMPLEBUILD0001",
            "arn": format!("arn:aws:iam::{ACCOUNT}:user/{parent}"), "accountId": ACCOUNT,
            "userName": parent}}});
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    let (attached, inline) = integration_tests::user_policies(&d.clients.iam, &parent)
        .await
        .unwrap();
    assert!(
        attached
            .iter()
            .any(|p| p == cordon::policy::QUARANTINE_POLICY_NAME),
        "{attached:?}"
    );
    assert!(
        inline.iter().any(|p| p == "AWSRevokeOlderSessions"),
        "{inline:?}"
    );
}

/// An IAM Identity Center session: only Identity Center can change its role, so cordon changes
/// nothing and tells a person what to do there.
#[tokio::test]
async fn an_identity_center_session_is_notified_with_the_steps() {
    let d = deployment().await;
    let mut e = event("cloudtrail-stop-logging.json").unwrap();
    e["detail"]["eventID"] = unique("event").into();
    let role = "AWSReservedSSO_AdministratorAccess_0123456789abcdef";
    e["detail"]["userIdentity"] = json!({"type": "AssumedRole",
        "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/alice@example.com"),
        "accountId": ACCOUNT, "accessKeyId": "ASIAEXAMPLESSOSESS01",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": role, "accountId": ACCOUNT,
            "arn": format!("arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{role}")}}});
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Unsupported), "{report:#?}");
    assert!(report.actions.is_empty());
    assert!(report.notified);
    let body = d.notifications(moto()).await.unwrap()[0]["Message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        body.contains("Identity Center") && body.contains("revoke"),
        "{body}"
    );
}
