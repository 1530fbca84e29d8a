//! Findings beyond the two classic shapes reach cordon and are read right: an S3 Protection
//! finding that names the key contains the key; an instance that was only probed is notified
//! about, never isolated; an AWS Health report of an exposed key contains the key.

use cordon::ledger::Status;
use cordon::Function;
use integration_tests::seed::seed_workload;
use integration_tests::{
    event, key_statuses, repo_root, seed_user, unique, user_policies, ACCOUNT,
};
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

/// AWS Health's `AWS_RISK_CREDENTIALS_EXPOSED` (how AWS tells an account it found one of its
/// keys in a public repository) names the key only: cordon finds its owner and contains it.
/// An entity that is no key, and a key of no user here, are told to a person.
#[tokio::test]
async fn a_health_exposed_key_event_contains_the_key() {
    let d = deployment().await;
    let user = unique("exposed");
    let keys = seed_user(&d.clients.iam, &user, 2).await.unwrap();
    let mut e = event("health-credentials-exposed.json").unwrap();
    e["detail"]["eventArn"] = format!(
        "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/{}",
        unique("exposed")
    )
    .into();
    e["detail"]["affectedEntities"] = json!([
        {"entityValue": keys[0]},
        {"entityValue": "AKIAIOSFODNN7NOSUCH1"},
        {"entityValue": "arn:aws:iam::123456789012:user/somebody"}
    ]);
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let report = lambda_invoke(&r, e.clone()).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    let statuses = key_statuses(&d.clients.iam, &user).await.unwrap();
    let status_of = |k: &str| statuses.iter().find(|(id, _)| id == k).unwrap().1.clone();
    assert_eq!(status_of(&keys[0]), "Inactive", "the exposed key");
    assert_eq!(status_of(&keys[1]), "Active", "only the exposed key");
    let owner = report
        .actions
        .iter()
        .find(|a| a.action.name() == "find_key_owner" && a.target == keys[0])
        .expect("the lookup is recorded");
    assert_eq!(owner.before.as_ref().unwrap()["user"], user.as_str());
    let reason = report.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("AKIA…UCH1") && reason.contains("user/somebody"),
        "{report:#?}"
    );
    assert!(report.notified);

    // Health updates the same event (statusCode, description): a repeat, not a new incident.
    e["id"] = unique("event").into();
    e["detail"]["statusCode"] = "closed".into();
    let repeat = lambda_invoke(&r, e).await;
    let part = repeat
        .parts
        .iter()
        .find(|p| p.status == Some(Status::Contained))
        .expect("the contained part");
    assert_eq!(
        part.delivery,
        Some(cordon::ledger::Delivery::Repeat),
        "{repeat:#?}"
    );
}

/// A key of another account's user, named like a user of this one: IAM may name the other
/// account's user, but the key is not in this user's list, so nothing here is touched.
#[tokio::test]
async fn a_health_key_of_another_accounts_namesake_touches_no_one_here() {
    let d = deployment().await;
    let name = unique("namesake");
    let ours = seed_user(&d.clients.iam, &name, 1).await.unwrap();
    let theirs_iam = moto().iam_of_account("999988887777").await.unwrap();
    let theirs = seed_user(&theirs_iam, &name, 1).await.unwrap();
    let mut e = event("health-credentials-exposed.json").unwrap();
    e["detail"]["eventArn"] = format!(
        "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/{}",
        unique("namesake")
    )
    .into();
    e["detail"]["affectedEntities"] = json!([{"entityValue": theirs[0]}]);
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::NotifyOnly), "{report:#?}");
    assert!(
        report.parts.iter().all(|p| p.target.is_none()),
        "{report:#?}"
    );
    assert_eq!(
        key_statuses(&d.clients.iam, &name).await.unwrap()[0],
        (ours[0].clone(), "Active".to_owned())
    );
    assert_eq!(
        user_policies(&d.clients.iam, &name).await.unwrap(),
        (Vec::new(), Vec::new()),
        "no quarantine, no revoke"
    );
}
