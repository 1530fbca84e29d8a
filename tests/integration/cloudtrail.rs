//! quarantine-credentials on CloudTrail calls: the detection rules contain the caller.

use cordon::ledger::Status;
use cordon::Function;
use integration_tests::{event, key_statuses, seed_role, seed_user, unique, Deployment, ACCOUNT};
use serde_json::{json, Value};

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
    contains_the_caller_with(file, &[]).await;
}

async fn contains_the_caller_with(file: &str, extra: &[(&str, &str)]) {
    let d = deployment().await;
    let user = unique("mallory");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, extra).await;

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

/// `event`, a new incident, made by a session of `role` (an assumed role in the emulator's
/// account), carried by `invoked_by` if given.
pub(crate) fn by_role(mut e: Value, role: &str, invoked_by: Option<&str>) -> Value {
    e["detail"]["eventID"] = unique("event").into();
    let mut identity = json!({
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEROLE00001:session",
        "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session"),
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLESESSION01",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEROLE00001",
                "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "accountId": ACCOUNT,
                "userName": role},
            "attributes": {"creationDate": "2026-11-22T19:59:41Z", "mfaAuthenticated": "false"}
        }
    });
    if let Some(service) = invoked_by {
        identity["invokedBy"] = service.into();
    }
    e["detail"]["userIdentity"] = identity;
    e
}

/// CloudFormation's forward-access session: an IAM user creates a backdoor key for another user
/// through a stack. `invokedBy` names the service that carried the call; the call is the user's,
/// and the user is contained.
#[tokio::test]
async fn a_call_carried_by_cloudformation_contains_its_user() {
    let file = "cloudtrail-cfn-forward-access-backdoor-key.json";
    let e = event(file).unwrap();
    assert_eq!(
        e["detail"]["userIdentity"]["invokedBy"],
        "cloudformation.amazonaws.com"
    );
    assert_eq!(e["detail"]["userIdentity"]["type"], "IAMUser");
    contains_the_caller(file).await;
}

/// The same through a role's forward-access session (the shape of Cloud Custodian's recorded
/// CloudFormation calls): the role's sessions are revoked.
#[tokio::test]
async fn a_call_carried_by_cloudformation_contains_its_role() {
    let d = deployment().await;
    let role = unique("stack-deployer");
    seed_role(&d.clients.iam, &role).await.unwrap();
    let e = by_role(
        event("cloudtrail-cfn-forward-access-backdoor-key.json").unwrap(),
        &role,
        Some("cloudformation.amazonaws.com"),
    );
    let report = invoke(
        &responder(&d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await
    .expect("contained");
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert!(integration_tests::sessions_revoked(&d.clients.iam, &role).await);
}

/// A call made by an AWS service itself (`userIdentity.type` AWSService) is still never
/// contained: it is recorded as ignored and nothing is touched.
#[tokio::test]
async fn a_call_by_an_aws_service_itself_is_ignored() {
    let d = deployment().await;
    let mut e = event("cloudtrail-cfn-forward-access-backdoor-key.json").unwrap();
    e["detail"]["eventID"] = unique("event").into();
    e["detail"]["userIdentity"] =
        json!({"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"});
    let report = invoke(
        &responder(&d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await
    .expect("ignored");
    assert_eq!(report.status, Some(Status::Ignored), "{report:#?}");
    assert!(report.actions.is_empty());
    assert!(
        report
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("AWSService"),
        "{report:#?}"
    );
}

/// Rule cordon-tampered: a new version of cordon's quarantine policy by an IAM user contains it.
#[tokio::test]
async fn a_new_version_of_cordons_policy_contains_the_caller() {
    contains_the_caller("cloudtrail-cordon-policy-version.json").await;
}

/// Throttling cordon's function to zero (named after the stack, CORDON_PREFIX) contains the caller.
#[tokio::test]
async fn throttling_cordons_function_contains_the_caller() {
    contains_the_caller_with(
        "cloudtrail-cordon-function-throttled.json",
        &[("CORDON_PREFIX", "cordon")],
    )
    .await;
}

/// What cordon's own roles and its deployer do to cordon is not tampering: cordon converges its
/// policy with CreatePolicyVersion, and a stack update changes its functions. No incident at
/// all. Any other role making the same call is contained.
#[tokio::test]
async fn cordons_own_roles_and_its_deployer_are_not_tampering() {
    let d = deployment().await;
    let own = unique("cordon-QuarantineCredentialsFunctionRole");
    let other_fn = unique("cordon-IsolateInstanceFunctionRole");
    let deployer = unique("AWSReservedSSO_Admin");
    let roles = format!("arn:aws:iam::{ACCOUNT}:role/{own},arn:aws:iam::{ACCOUNT}:role/{other_fn}");
    let deployer_arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/{deployer}/jane@example.com");
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[
            ("CORDON_ROLES", &roles),
            ("DEPLOYER_ARN", &deployer_arn),
            ("CORDON_PREFIX", "cordon"),
        ],
    )
    .await;
    for file in [
        "cloudtrail-cordon-policy-version.json",
        "cloudtrail-cordon-function-throttled.json",
    ] {
        for (who, via) in [
            (&own, None),
            (&other_fn, None),
            (&deployer, Some("cloudformation.amazonaws.com")),
        ] {
            let report = invoke(&r, by_role(event(file).unwrap(), who, via))
                .await
                .expect("ignored");
            assert_eq!(report.status, Some(Status::Ignored), "{file} by {who}");
            assert!(report.incident_id.is_none(), "{file} by {who}: no incident");
            assert!(report.actions.is_empty());
        }
    }
    let intruder = unique("ci-runner");
    seed_role(&d.clients.iam, &intruder).await.unwrap();
    let report = invoke(
        &r,
        by_role(
            event("cloudtrail-cordon-policy-version.json").unwrap(),
            &intruder,
            None,
        ),
    )
    .await
    .expect("contained");
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(
        report.finding_type.as_deref(),
        Some("CloudTrail:cordon-tampered")
    );
    assert!(integration_tests::sessions_revoked(&d.clients.iam, &intruder).await);
}

/// A protected principal (a person releasing a quarantine by hand) trips the rule but is only
/// notified about, never contained.
#[tokio::test]
async fn tampering_by_a_protected_principal_only_notifies() {
    let d = deployment().await;
    let user = unique("operator");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let protected = format!("arn:aws:iam::{ACCOUNT}:user/{user}");
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("PROTECTED_PRINCIPALS", &protected)],
    )
    .await;
    let report = invoke(
        &r,
        signed_by("cloudtrail-cordon-policy-version.json", &user, &keys[0]),
    )
    .await
    .expect("protected");
    assert_eq!(report.status, Some(Status::Protected), "{report:#?}");
    assert!(report.notified);
    assert_eq!(
        key_statuses(&d.clients.iam, &user).await.unwrap()[0].1,
        "Active"
    );
}
