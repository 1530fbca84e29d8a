//! quarantine-credentials on CloudTrail calls: the detection rules contain the caller.

use cordon::ledger::Status;
use cordon::Function;
use integration_tests::{event, key_statuses, seed_role, seed_user, unique, Deployment, ACCOUNT};
use serde_json::{json, Value};

use crate::{deployment, invoke, lambda_invoke, responder};

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

/// A canary key's call contains its user, even a failed one (a canary should have no
/// permissions): that call still proves the key is in someone's hands.
#[tokio::test]
async fn canary_key_contains_its_user() {
    for failed in [false, true] {
        let d = deployment().await;
        let user = unique("canary");
        let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
        let r = responder(
            &d,
            Function::QuarantineCredentials,
            &[("CANARY_ACCESS_KEYS", &keys[0])],
        )
        .await;
        let mut e = signed_by("cloudtrail-canary-key.json", &user, &keys[0]);
        assert_eq!(
            e["detail"]["readOnly"], true,
            "GetCallerIdentity is read-only"
        );
        if failed {
            e["detail"]["errorCode"] = "AccessDenied".into();
        }

        let report = lambda_invoke(&r, e).await;

        assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
        assert_eq!(
            key_statuses(&d.clients.iam, &user).await.unwrap()[0].1,
            "Inactive"
        );
    }
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

/// A deployment with a caller (one key) and another user (`victim_keys` keys).
struct Maker {
    d: Deployment,
    caller: String,
    caller_key: String,
    victim: String,
    victim_keys: Vec<String>,
}

async fn maker_and_victim(victim_keys: usize) -> Maker {
    let d = deployment().await;
    let caller = unique("mallory");
    let caller_key = seed_user(&d.clients.iam, &caller, 1)
        .await
        .unwrap()
        .remove(0);
    let victim = unique("victim");
    let victim_keys = seed_user(&d.clients.iam, &victim, victim_keys)
        .await
        .unwrap();
    Maker {
        d,
        caller,
        caller_key,
        victim,
        victim_keys,
    }
}

impl Maker {
    /// `file` signed by the caller, making `made` for the victim (a key, or a login profile).
    fn event(&self, file: &str, made: Option<&str>) -> Value {
        let (caller, victim) = (&self.caller, &self.victim);
        let mut e = signed_by(file, caller, &self.caller_key);
        e["detail"]["userIdentity"]["arn"] = format!("arn:aws:iam::{ACCOUNT}:user/{caller}").into();
        e["detail"]["requestParameters"]["userName"] = victim.as_str().into();
        e["detail"]["responseElements"] = match made {
            Some(key) => {
                json!({"accessKey": {"accessKeyId": key, "status": "Active", "userName": victim}})
            }
            None => json!({"loginProfile": {"userName": victim, "passwordResetRequired": false}}),
        };
        e
    }

    async fn status(&self, user: &str, key: &str) -> String {
        let statuses = key_statuses(&self.d.clients.iam, user).await.unwrap();
        statuses.into_iter().find(|(id, _)| id == key).unwrap().1
    }
}

fn record_for<'a>(report: &'a cordon::Report, target: &str) -> &'a cordon::actions::ActionRecord {
    report
        .actions
        .iter()
        .find(|a| a.target == target)
        .unwrap_or_else(|| panic!("no action on {target}: {report:#?}"))
}

/// A backdoor key made for another user, directly or through a CloudFormation stack, is set
/// Inactive in the same invocation that contains its maker; the user's own other key and its
/// policies are the victim's and stay as they were.
#[tokio::test]
async fn a_backdoor_key_is_stopped_with_its_maker() {
    for file in [
        "cloudtrail-create-access-key-other-user.json",
        "cloudtrail-cfn-forward-access-backdoor-key.json",
    ] {
        let m = maker_and_victim(2).await;
        let (made, own) = (&m.victim_keys[1], &m.victim_keys[0]);
        let r = responder(&m.d, Function::QuarantineCredentials, &[]).await;

        let report = lambda_invoke(&r, m.event(file, Some(made))).await;

        assert_eq!(
            report.status,
            Some(Status::Contained),
            "{file}: {report:#?}"
        );
        assert_eq!(m.status(&m.caller, &m.caller_key).await, "Inactive");
        assert!(quarantined(&m.d, &m.caller).await, "{file}");
        assert_eq!(
            m.status(&m.victim, made).await,
            "Inactive",
            "{file}: the key it made"
        );
        assert_eq!(
            m.status(&m.victim, own).await,
            "Active",
            "{file}: the victim's own key"
        );
        let before = record_for(&report, made).before.clone().unwrap();
        assert_eq!(before, json!({"user": m.victim, "status": "Active"}));
        let (attached, inline) = integration_tests::user_policies(&m.d.clients.iam, &m.victim)
            .await
            .unwrap();
        assert!(
            attached.is_empty() && inline.is_empty(),
            "{file}: the victim is not quarantined"
        );
        let messages = m.d.notifications(crate::moto()).await.unwrap();
        let body = messages[0]["Message"].as_str().unwrap();
        assert!(
            body.contains(&format!("of user {}", m.victim)),
            "{file}: {body}"
        );
    }
}

/// A console password set for another user (created, or reset) is removed with its maker: the
/// attacker knows it. The record keeps that it existed.
#[tokio::test]
async fn a_password_set_for_another_user_is_removed_with_its_maker() {
    for name in ["CreateLoginProfile", "UpdateLoginProfile"] {
        let m = maker_and_victim(1).await;
        let iam = &m.d.clients.iam;
        iam.create_login_profile()
            .user_name(&m.victim)
            .password("Attacker-Knows-This-1!")
            .send()
            .await
            .unwrap();
        let mut e = m.event("cloudtrail-create-access-key-other-user.json", None);
        e["detail"]["eventName"] = name.into();

        let report = lambda_invoke(
            &responder(&m.d, Function::QuarantineCredentials, &[]).await,
            e,
        )
        .await;

        assert_eq!(
            report.status,
            Some(Status::Contained),
            "{name}: {report:#?}"
        );
        assert_eq!(m.status(&m.caller, &m.caller_key).await, "Inactive");
        let gone = iam.get_login_profile().user_name(&m.victim).send().await;
        assert!(
            gone.is_err(),
            "{name}: the password the caller set is removed"
        );
        let removed = record_for(&report, &format!("user/{}", m.victim));
        assert!(
            removed.before.as_ref().unwrap()["login_profile"].is_object(),
            "{removed:#?}"
        );
        assert_eq!(m.status(&m.victim, &m.victim_keys[0]).await, "Active");
    }
}

/// A protected caller, or a call that failed, changes nothing: not the caller, not what it
/// made. Both are notified.
#[tokio::test]
async fn a_protected_or_failed_maker_leaves_the_key_it_made() {
    for (failed, protected) in [(false, true), (true, false)] {
        let m = maker_and_victim(1).await;
        let arn = format!("arn:aws:iam::{ACCOUNT}:user/{}", m.caller);
        let extra: &[(&str, &str)] = if protected {
            &[("PROTECTED_PRINCIPALS", &arn)]
        } else {
            &[]
        };
        let made = &m.victim_keys[0];
        let mut e = m.event("cloudtrail-create-access-key-other-user.json", Some(made));
        if failed {
            e["detail"]["errorCode"] = "AccessDenied".into();
        }

        let report = lambda_invoke(
            &responder(&m.d, Function::QuarantineCredentials, extra).await,
            e,
        )
        .await;

        let want = if protected {
            Status::Protected
        } else {
            Status::NotifyOnly
        };
        assert_eq!(report.status, Some(want), "{report:#?}");
        assert!(report.notified, "{report:#?}");
        assert_eq!(m.status(&m.caller, &m.caller_key).await, "Active");
        assert_eq!(m.status(&m.victim, made).await, "Active");
    }
}

/// A record that does not name the key it made (trimmed, or an older format) still contains
/// the caller, and says a person must find the key.
#[tokio::test]
async fn a_record_without_the_new_key_still_contains_its_maker() {
    let m = maker_and_victim(1).await;
    let mut e = m.event("cloudtrail-create-access-key-other-user.json", None);
    e["detail"]["eventName"] = "CreateAccessKey".into();
    e["detail"]["responseElements"] = Value::Null;

    let report = lambda_invoke(
        &responder(&m.d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(m.status(&m.caller, &m.caller_key).await, "Inactive");
    let unnamed = record_for(&report, &format!("user/{}", m.victim));
    assert!(format!("{unnamed:?}").contains("check"), "{unnamed:#?}");
    assert_eq!(m.status(&m.victim, &m.victim_keys[0]).await, "Active");
}

/// AWS's quarantine is finished only when AWS made the call, itself or as the quarantined user.
/// Anyone else attaching AWS's policy to a user (an attacker aiming cordon at a colleague) is
/// notified about, and the user keeps its keys.
#[tokio::test]
async fn aws_quarantine_by_someone_else_only_notifies() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("alice");
    seed_user(iam, &user, 1).await.unwrap();
    let other = unique("mallory");
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    for (caller, contained) in [(&other, false), (&user, true)] {
        let mut e = event("cloudtrail-aws-quarantined-key.json").unwrap();
        e["detail"]["eventID"] = unique("event").into();
        e["detail"]["requestParameters"]["userName"] = user.clone().into();
        e["detail"]["userIdentity"] = json!({"type": "IAMUser", "userName": caller,
            "arn": format!("arn:aws:iam::{ACCOUNT}:user/{caller}"), "accountId": ACCOUNT});

        let report = lambda_invoke(&r, e).await;

        let (want, key) = if contained {
            (Status::Contained, "Inactive")
        } else {
            (Status::NotifyOnly, "Active")
        };
        assert_eq!(report.status, Some(want), "by {caller}: {report:#?}");
        assert_eq!(
            key_statuses(iam, &user).await.unwrap()[0].1,
            key,
            "by {caller}"
        );
    }
}

/// A new role that trusts everyone (the condition says nothing about who calls) contains its
/// creator: a door from outside the account.
#[tokio::test]
async fn a_role_trusting_everyone_contains_its_creator() {
    contains_the_caller("cloudtrail-create-role-trusts-everyone.json").await;
}
