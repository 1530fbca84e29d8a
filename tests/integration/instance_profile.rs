//! isolate-instance and the instance's role: only the credentials delivered to this instance are
//! denied (the fleet sharing the role keeps working) unless configured otherwise, and the
//! profile's roles are remembered, so no retry forgets them.

use cordon::actions::Action;
use cordon::ledger::Status;
use cordon::Function;
use integration_tests::faults::{FaultProxy, Scripted};
use integration_tests::seed::seed_workload as seed;
use integration_tests::{attr, ledger_items, sessions_revoked, ACCOUNT};

use crate::instance::{finding, instance_credentials_denied};
use crate::{deployment, lambda_invoke, lambda_try, moto, responder, through_as};

fn denial(instance: &str) -> serde_json::Value {
    cordon::actions::instance::instance_revoke_document(&format!(
        "arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{instance}"
    ))
}

/// REVOKE_WHOLE_INSTANCE_ROLE=true adds the role-wide cutoff to the instance's own denial.
#[tokio::test]
async fn every_session_of_the_role_is_cut_only_when_configured() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let r = responder(
        &d,
        Function::IsolateInstance,
        &[("REVOKE_WHOLE_INSTANCE_ROLE", "true")],
    )
    .await;

    let report = lambda_invoke(&r, finding(&w.instance).1).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(
        instance_credentials_denied(&d, &w.role, &w.instance).await,
        Some(denial(&w.instance))
    );
    assert!(sessions_revoked(&d.clients.iam, &w.role).await);
}

/// The profile's roles cannot be read (scripted AccessDenied on GetInstanceProfile): that is a
/// failed revoke, not "no roles", and the invocation fails. The profile is disassociated all the
/// same; the retry, which EC2 no longer tells which profile the instance had, still revokes. An
/// attacker who then takes the role out of the profile and deletes the denial finds it back at
/// the next delivery.
#[tokio::test]
async fn the_role_is_remembered_through_a_failed_lookup_and_a_disassociated_profile() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let script = vec![Scripted {
        action: "GetInstanceProfile",
        code: "AccessDenied",
        status: "403 Forbidden",
        times: usize::MAX,
    }];
    let proxy = FaultProxy::scripted(&moto().endpoint, 0, 1, script)
        .await
        .unwrap();
    let (id, e) = finding(&w.instance);

    let failed = lambda_try(
        &through_as(Function::IsolateInstance, &proxy, &d, &[]).await,
        e.clone(),
    )
    .await;

    assert!(failed.is_err(), "an unread role fails the invocation");
    let items = ledger_items(&d.clients.dynamodb, &d.table, &id)
        .await
        .unwrap();
    let lookup = items
        .iter()
        .find(|i| attr(i, "action") == "revoke_sessions")
        .expect("a revoke record");
    assert_eq!(attr(lookup, "outcome"), "failed", "{lookup:?}");
    assert_eq!(
        attr(lookup, "target"),
        format!("instance-profile/{}", w.role)
    );
    assert_eq!(
        instance_credentials_denied(&d, &w.role, &w.instance).await,
        None
    );

    let r = responder(&d, Function::IsolateInstance, &[]).await;
    let retry = lambda_invoke(&r, e.clone()).await;
    assert_eq!(retry.status, Some(Status::Contained), "{retry:#?}");
    let revoked = retry
        .actions
        .iter()
        .find(|a| a.action == Action::RevokeSessions)
        .expect("the retry revokes");
    assert_eq!(
        revoked.target,
        format!("role/{} for {}", w.role, w.instance)
    );
    assert_eq!(revoked.outcome.word(), "succeeded", "{revoked:#?}");
    assert_eq!(
        instance_credentials_denied(&d, &w.role, &w.instance).await,
        Some(denial(&w.instance))
    );

    let iam = &d.clients.iam;
    iam.remove_role_from_instance_profile()
        .instance_profile_name(&w.role)
        .role_name(&w.role)
        .send()
        .await
        .unwrap();
    iam.delete_role_policy()
        .role_name(&w.role)
        .policy_name(format!(
            "{}{}",
            cordon::policy::INSTANCE_REVOKE_POLICY_PREFIX,
            w.instance
        ))
        .send()
        .await
        .unwrap();
    let again = lambda_invoke(&r, e).await;
    assert_eq!(again.status, Some(Status::Contained), "{again:#?}");
    assert_eq!(
        instance_credentials_denied(&d, &w.role, &w.instance).await,
        Some(denial(&w.instance)),
        "re-applied from memory"
    );
}

/// A stolen key deletes the instance's deny from its role, or rewrites it under its name:
/// that is `cordon-tampered`, and the key's user is contained.
#[tokio::test]
async fn undoing_the_instance_deny_contains_whoever_did_it() {
    for (call, extra) in [
        ("DeleteRolePolicy", serde_json::json!({})),
        (
            "PutRolePolicy",
            serde_json::json!({"policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"}),
        ),
    ] {
        let d = deployment().await;
        let user = integration_tests::unique("mallory");
        let keys = integration_tests::seed_user(&d.clients.iam, &user, 1)
            .await
            .unwrap();
        let mut e = integration_tests::event("cloudtrail-stop-logging.json").unwrap();
        let detail = &mut e["detail"];
        detail["eventID"] = integration_tests::unique("event").into();
        detail["eventSource"] = "iam.amazonaws.com".into();
        detail["eventName"] = call.into();
        detail["userIdentity"]["userName"] = user.clone().into();
        detail["userIdentity"]["arn"] = format!("arn:aws:iam::{ACCOUNT}:user/{user}").into();
        detail["userIdentity"]["accessKeyId"] = keys[0].clone().into();
        let mut params = serde_json::json!({
            "roleName": "web",
            "policyName": format!("{}i-0123456789abcdef0", cordon::policy::INSTANCE_REVOKE_POLICY_PREFIX),
        });
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        detail["requestParameters"] = params;
        let r = responder(&d, Function::QuarantineCredentials, &[]).await;

        let report = lambda_invoke(&r, e).await;

        assert_eq!(
            report.status,
            Some(Status::Contained),
            "{call}: {report:#?}"
        );
        assert_eq!(
            report.finding_type.as_deref(),
            Some("CloudTrail:cordon-tampered")
        );
        assert_eq!(
            integration_tests::key_statuses(&d.clients.iam, &user)
                .await
                .unwrap()[0]
                .1,
            "Inactive",
            "{call}"
        );
    }
}
