//! quarantine-credentials on CloudTrail calls: the detection rules contain the caller.

use cordon::ledger::Status;
use cordon::Function;
use integration_tests::{event, key_statuses, seed_role, seed_user, unique, Deployment};
use serde_json::Value;

use crate::{deployment, invoke, responder};

/// A sample CloudTrail event, made a new incident and signed by `user`'s `key`.
fn signed_by(file: &str, user: &str, key: &str) -> Value {
    let mut e = event(file).unwrap();
    e["detail"]["eventID"] = unique("event").into();
    e["detail"]["userIdentity"]["userName"] = user.into();
    e["detail"]["userIdentity"]["accessKeyId"] = key.into();
    e
}

async fn quarantined(d: &Deployment, user: &str) -> bool {
    let (attached, _) = integration_tests::user_policies(&d.clients.iam, user)
        .await
        .unwrap();
    attached
        .iter()
        .any(|p| p == cordon::policy::QUARANTINE_POLICY_NAME)
}

async fn contains_the_caller(file: &str) {
    let d = deployment().await;
    let user = unique("mallory");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let report = invoke(&r, signed_by(file, &user, &keys[0]))
        .await
        .expect("contained");

    assert_eq!(
        report.status,
        Some(Status::Contained),
        "{file}: {report:#?}"
    );
    assert_eq!(
        key_statuses(&d.clients.iam, &user).await.unwrap()[0].1,
        "Inactive",
        "{file}"
    );
    assert!(quarantined(&d, &user).await, "{file}");
}

#[tokio::test]
async fn logging_tampered_contains_the_caller() {
    contains_the_caller("cloudtrail-stop-logging.json").await;
}

#[tokio::test]
async fn persistence_contains_the_caller() {
    contains_the_caller("cloudtrail-create-access-key-other-user.json").await;
}

#[tokio::test]
async fn sharing_outside_contains_the_caller() {
    contains_the_caller("cloudtrail-share-snapshot.json").await;
}

#[tokio::test]
async fn aws_quarantine_is_finished_on_the_target_user() {
    let d = deployment().await;
    let user = unique("alice");
    let keys = seed_user(&d.clients.iam, &user, 2).await.unwrap();
    let mut e = event("cloudtrail-aws-quarantined-key.json").unwrap();
    e["detail"]["requestParameters"]["userName"] = user.clone().into();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let report = invoke(&r, e).await.expect("contained");

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    let statuses = key_statuses(&d.clients.iam, &user).await.unwrap();
    assert_eq!(statuses.len(), keys.len());
    assert!(
        statuses.iter().all(|(_, s)| s == "Inactive"),
        "every key: {statuses:?}"
    );
    assert!(quarantined(&d, &user).await);
}

#[tokio::test]
async fn failed_calls_notify_but_do_not_contain() {
    let d = deployment().await;
    let user = unique("mallory");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let mut e = signed_by("cloudtrail-stop-logging.json", &user, &keys[0]);
    e["detail"]["errorCode"] = "AccessDenied".into();
    let report = invoke(
        &responder(&d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await
    .expect("notified");
    assert_eq!(report.status, Some(Status::NotifyOnly));
    assert!(report.notified);
    assert_eq!(
        key_statuses(&d.clients.iam, &user).await.unwrap()[0].1,
        "Active"
    );
}

#[tokio::test]
async fn root_sign_in_and_open_ssh_only_notify() {
    let d = deployment().await;
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    for file in [
        "cloudtrail-root-console-login.json",
        "cloudtrail-open-ssh.json",
    ] {
        let report = invoke(&r, event(file).unwrap()).await.expect("notified");
        assert_eq!(report.status, Some(Status::NotifyOnly), "{file}");
        assert!(report.actions.is_empty());
    }
}

#[tokio::test]
async fn bedrock_by_an_assumed_role_revokes_its_sessions() {
    let d = deployment().await;
    let role = unique("ci-runner");
    seed_role(&d.clients.iam, &role).await.unwrap();
    let mut e = event("cloudtrail-bedrock-invoke.json").unwrap();
    e["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] =
        role.clone().into();
    let report = invoke(
        &responder(&d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await
    .expect("contained");
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert!(integration_tests::sessions_revoked(&d.clients.iam, &role).await);
}

#[tokio::test]
async fn canary_key_contains_its_user() {
    let d = deployment().await;
    let user = unique("canary");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("CANARY_ACCESS_KEYS", &keys[0])],
    )
    .await;
    let report = invoke(&r, signed_by("cloudtrail-canary-key.json", &user, &keys[0]))
        .await
        .expect("contained");
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(
        key_statuses(&d.clients.iam, &user).await.unwrap()[0].1,
        "Inactive"
    );
}
