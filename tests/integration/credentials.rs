//! quarantine-credentials on GuardDuty AccessKey findings.

use cordon::actions::iam::INCIDENT_TAG;
use cordon::ledger::{Delivery, Status};
use cordon::policy::{self, QUARANTINE_POLICY_NAME, REVOKE_SESSIONS_POLICY_NAME};
use cordon::{Function, ResponseError};
use integration_tests::{
    event, key_statuses, seed_role, seed_user, unique, user_policies, ACCOUNT,
};
use serde_json::Value;

use crate::{deployment, invoke, invoke_undelivered, moto, responder, role_finding, user_finding};

pub(crate) fn policy_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/cordon/{QUARANTINE_POLICY_NAME}")
}

/// The quarantine policy's default version, as IAM holds it.
pub(crate) async fn default_document(iam: &aws_sdk_iam::Client) -> Value {
    let managed = iam
        .get_policy()
        .policy_arn(policy_arn())
        .send()
        .await
        .unwrap();
    let version = managed
        .policy()
        .unwrap()
        .default_version_id()
        .unwrap()
        .to_owned();
    let doc = iam
        .get_policy_version()
        .policy_arn(policy_arn())
        .version_id(version)
        .send()
        .await
        .unwrap();
    decode(doc.policy_version().unwrap().document().unwrap())
}

pub(crate) fn decode(doc: &str) -> Value {
    serde_json::from_str(&policy::decode(doc)).expect("policy JSON")
}

fn outcomes(report: &cordon::Report) -> Vec<(String, String)> {
    report
        .actions
        .iter()
        .map(|a| (a.action.name().to_owned(), a.outcome.word().to_owned()))
        .collect()
}

#[tokio::test]
async fn iam_user_exact_key_deactivated_quarantined_sessions_revoked_tagged() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("alice");
    let keys = seed_user(iam, &user, 2).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let (finding, e) = user_finding(&user, &keys[0]);

    let report = invoke(&r, e).await.expect("contained");

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(report.delivery, Some(Delivery::New));
    // Both containment changes were read back and seen.
    for a in &report.actions {
        if a.action.name() == "deactivate_access_key"
            || a.action.name() == "attach_quarantine_policy"
        {
            assert_eq!(a.verified, Some(true), "{a:#?}");
        }
    }
    let statuses = key_statuses(iam, &user).await.unwrap();
    assert!(
        statuses.contains(&(keys[0].clone(), "Inactive".to_owned())),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&(keys[1].clone(), "Active".to_owned())),
        "other key untouched: {statuses:?}"
    );

    // The quarantine is our managed policy, whose document is V3 plus the hardening statement.
    let attached = iam
        .list_attached_user_policies()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    assert!(attached
        .attached_policies()
        .iter()
        .any(|p| p.policy_arn() == Some(&policy_arn())));
    let doc = default_document(iam).await;
    let reference: Value = serde_json::from_str(include_str!(
        "../../shared/policies/AWSCompromisedKeyQuarantineV3.json"
    ))
    .unwrap();
    let statements = doc["Statement"].as_array().unwrap();
    assert_eq!(
        &statements[..2],
        reference["Statement"].as_array().unwrap().as_slice()
    );
    assert_eq!(statements[2]["Sid"], policy::HARDENING_SID);
    assert_eq!(doc, policy::quarantine_document());

    // Sessions issued before the incident are denied.
    let revoke = iam
        .get_user_policy()
        .user_name(&user)
        .policy_name(REVOKE_SESSIONS_POLICY_NAME)
        .send()
        .await
        .unwrap();
    let revoke = decode(revoke.policy_document());
    assert_eq!(revoke["Statement"][0]["Effect"], "Deny");
    assert_eq!(revoke["Statement"][0]["Action"], "*");
    assert!(revoke["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"].is_string());

    let tags = iam.list_user_tags().user_name(&user).send().await.unwrap();
    assert!(tags
        .tags()
        .iter()
        .any(|t| t.key() == INCIDENT_TAG && t.value() == finding));
}

#[tokio::test]
async fn repeat_delivery_changes_nothing_and_says_so() {
    let d = deployment().await;
    let user = unique("bob");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let (_, e) = user_finding(&user, &keys[0]);
    invoke(&r, e.clone()).await.expect("first");

    let mut again = e;
    again["detail"]["service"]["count"] = 2.into();
    let report = invoke(&r, again).await.expect("repeat");

    assert_eq!(report.delivery, Some(Delivery::Repeat));
    assert_eq!(report.status, Some(Status::Contained));
    assert!(
        report.actions.iter().all(|a| a.outcome.word() == "skipped"),
        "a repeat re-applies nothing: {:?}",
        outcomes(&report)
    );
    assert!(
        !report.notified,
        "no second notification for a plain repeat"
    );
    assert_eq!(d.notifications(moto()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn repeat_after_reactivation_deactivates_again_and_records_drift() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("carol");
    let keys = seed_user(iam, &user, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let (_, e) = user_finding(&user, &keys[0]);
    invoke(&r, e.clone()).await.expect("first");
    iam.update_access_key()
        .user_name(&user)
        .access_key_id(&keys[0])
        .status(aws_sdk_iam::types::StatusType::Active)
        .send()
        .await
        .unwrap();

    let report = invoke(&r, e).await.expect("repeat");

    assert_eq!(key_statuses(iam, &user).await.unwrap()[0].1, "Inactive");
    let deactivate = &report.actions[0];
    assert_eq!(deactivate.action.name(), "deactivate_access_key");
    assert_eq!(deactivate.outcome.word(), "succeeded");
    assert_eq!(deactivate.before.as_ref().unwrap()["status"], "Active");
    assert!(report.reason.as_deref().unwrap_or("").contains("drift"));
    assert!(report.notified, "drift is worth a message");
}

#[tokio::test]
async fn assumed_role_sessions_revoked_role_policy_only_when_opted_in() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let role = unique("web-app");
    seed_role(iam, &role).await.unwrap();
    let (_, e) = role_finding(&role);

    let report = invoke(
        &responder(&d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await
    .expect("contained");

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    let revoke = iam
        .get_role_policy()
        .role_name(&role)
        .policy_name(REVOKE_SESSIONS_POLICY_NAME)
        .send()
        .await
        .unwrap();
    assert!(
        decode(revoke.policy_document())["Statement"][0]["Condition"]["DateLessThan"]
            ["aws:TokenIssueTime"]
            .is_string()
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert!(
        attached.attached_policies().is_empty(),
        "QUARANTINE_ROLES is off by default"
    );

    let role2 = unique("batch");
    seed_role(iam, &role2).await.unwrap();
    let (_, e) = role_finding(&role2);
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("QUARANTINE_ROLES", "true")],
    )
    .await;
    invoke(&r, e).await.expect("contained");
    let attached = iam
        .list_attached_role_policies()
        .role_name(&role2)
        .send()
        .await
        .unwrap();
    assert!(attached
        .attached_policies()
        .iter()
        .any(|p| p.policy_arn() == Some(&policy_arn())));
}

#[tokio::test]
async fn root_is_recorded_and_notified_never_changed() {
    let d = deployment().await;
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let report = invoke(&r, event("guardduty-root.json").unwrap())
        .await
        .expect("recorded");
    assert_eq!(report.status, Some(Status::NotifyOnly));
    assert!(report.actions.is_empty());
    let messages = d.notifications(moto()).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert!(messages[0]["Subject"].as_str().unwrap().contains("ACT NOW"));
    assert_eq!(
        messages[0]["MessageAttributes"]["severity"]["Value"],
        "high"
    );
}

#[tokio::test]
async fn protected_principal_is_never_touched() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("breakglass");
    let keys = seed_user(iam, &user, 1).await.unwrap();
    let protected = format!("arn:aws:iam::{ACCOUNT}:user/{user}");
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("PROTECTED_PRINCIPALS", &protected)],
    )
    .await;
    let (_, e) = user_finding(&user, &keys[0]);

    let report = invoke(&r, e).await.expect("recorded");

    assert_eq!(report.status, Some(Status::Protected));
    assert_eq!(key_statuses(iam, &user).await.unwrap()[0].1, "Active");
    let (attached, inline) = user_policies(iam, &user).await.unwrap();
    assert!(attached.is_empty() && inline.is_empty());
}

#[tokio::test]
async fn dry_run_plans_without_changing_anything() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("dave");
    let keys = seed_user(iam, &user, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[("DRY_RUN", "true")]).await;
    let (_, e) = user_finding(&user, &keys[0]);

    let report = invoke(&r, e).await.expect("planned");

    assert_eq!(report.status, Some(Status::Planned));
    assert!(
        report.actions.iter().all(|a| a.outcome.word() == "planned"),
        "{:?}",
        outcomes(&report)
    );
    assert_eq!(key_statuses(iam, &user).await.unwrap()[0].1, "Active");
    let (attached, inline) = user_policies(iam, &user).await.unwrap();
    assert!(attached.is_empty() && inline.is_empty());
    assert!(iam
        .list_user_tags()
        .user_name(&user)
        .send()
        .await
        .unwrap()
        .tags()
        .is_empty());
}

#[tokio::test]
async fn sample_findings_are_ignored_and_recorded() {
    let d = deployment().await;
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let report = invoke(&r, event("guardduty-sample-finding.json").unwrap())
        .await
        .expect("ignored");
    assert_eq!(report.status, Some(Status::Ignored));
    assert!(report.reason.unwrap().contains("sample"));
    let items = integration_tests::ledger_items(
        &d.clients.dynamodb,
        &d.table,
        "f5e0c3d4b2a67f9b1c2d3e4f50617283",
    )
    .await
    .unwrap();
    assert!(items
        .iter()
        .any(|i| integration_tests::attr(i, "status") == "ignored"));
}

#[tokio::test]
async fn malformed_event_is_a_typed_error_and_the_next_event_still_works() {
    let d = deployment().await;
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    for bad in [
        event("malformed.json").unwrap(),
        serde_json::json!("not an object"),
        serde_json::json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {"id": "x", "type": "T", "resource": {"resourceType": "AccessKey", "accessKeyDetails": {"userType": "IAMUser", "userName": "a\"b", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"}}}}),
    ] {
        let err = invoke_undelivered(&r, bad).await.expect_err("bad input");
        assert!(matches!(err, ResponseError::BadEvent(_)), "{err}");
    }
    let user = unique("erin");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let (_, e) = user_finding(&user, &keys[0]);
    assert_eq!(
        invoke(&r, e).await.expect("next event").status,
        Some(Status::Contained)
    );
}

#[tokio::test]
async fn member_account_finding_is_not_acted_on_here() {
    let d = deployment().await;
    let user = unique("frank");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let (_, mut e) = user_finding(&user, &keys[0]);
    e["detail"]["accountId"] = "210987654321".into();
    let report = invoke(
        &responder(&d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await
    .expect("ignored");
    assert_eq!(report.status, Some(Status::Ignored));
    assert_eq!(
        key_statuses(&d.clients.iam, &user).await.unwrap()[0].1,
        "Active"
    );
}

#[tokio::test]
async fn outdated_quarantine_policy_gets_a_new_default_version() {
    // Its own emulator: this test rewrites the account-wide policy the other tests attach.
    let moto = integration_tests::Moto::start().unwrap();
    let d = integration_tests::Deployment::create(&moto).await.unwrap();
    let iam = &d.clients.iam;
    // Make sure the policy exists, then make its default version an older document.
    let user = unique("gina");
    let keys = seed_user(iam, &user, 1).await.unwrap();
    let (_, e) = user_finding(&user, &keys[0]);
    invoke(
        &responder(&d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await
    .expect("first");
    let old = include_str!("../../shared/policies/AWSCompromisedKeyQuarantineV3.json");
    for _ in 0..4 {
        let _ = iam
            .create_policy_version()
            .policy_arn(policy_arn())
            .policy_document(old)
            .set_as_default(true)
            .send()
            .await;
    }

    let user = unique("hank");
    let keys = seed_user(iam, &user, 1).await.unwrap();
    let (_, e) = user_finding(&user, &keys[0]);
    let report = invoke(
        &responder(&d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await
    .expect("second");
    // The new version was read back as the default before the record said "verified".
    let attach = report
        .actions
        .iter()
        .find(|a| a.action.name() == "attach_quarantine_policy")
        .unwrap();
    assert!(
        attach.note.as_deref().unwrap_or("").starts_with("updated"),
        "{attach:#?}"
    );
    assert_eq!(attach.verified, Some(true), "{attach:#?}");

    assert_eq!(default_document(iam).await, policy::quarantine_document());
    let versions = iam
        .list_policy_versions()
        .policy_arn(policy_arn())
        .send()
        .await
        .unwrap();
    assert!(versions.versions().len() <= 5);
}

/// The severity floor is the function's (`MIN_SEVERITY`), not the rule's pattern: a finding
/// below it is delivered, recorded as ignored, and changes nothing.
#[tokio::test]
async fn a_finding_below_the_severity_floor_is_ignored() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("low");
    let keys = seed_user(iam, &user, 1).await.unwrap();
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("MIN_SEVERITY", "7")],
    )
    .await;
    let (_, mut e) = user_finding(&user, &keys[0]);
    e["detail"]["severity"] = 5.into();

    let report = crate::lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Ignored), "{report:#?}");
    assert!(report
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("MIN_SEVERITY"));
    assert_eq!(key_statuses(iam, &user).await.unwrap()[0].1, "Active");
}
