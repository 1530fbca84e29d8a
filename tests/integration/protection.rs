//! cordon cannot be turned against the account it protects (issue 14, items 3, 4, 5 and 13):
//! an attacker cannot exempt itself, a protection pattern means what it says, a contained
//! principal cannot spend the containment budget, and cordon does not alarm about itself.

use aws_sdk_dynamodb::types::AttributeValue;
use cordon::actions::Action;
use cordon::ledger::Status;
use cordon::Function;
use integration_tests::seed::seed_workload;
use integration_tests::{
    attr, event, key_statuses, ledger_items, repo_root, seed_role, seed_user, sessions_revoked,
    unique, Deployment, ACCOUNT,
};
use serde_json::{json, Value};

use crate::{deployment, lambda_invoke, moto, responder, role_finding, user_finding};

fn instance_finding(instance: &str) -> (String, Value) {
    let mut e = event("guardduty-ec2.json").unwrap();
    let id = unique("finding").replace('-', "");
    e["detail"]["id"] = id.clone().into();
    e["detail"]["resource"]["instanceDetails"]["instanceId"] = instance.into();
    (id, e)
}

async fn eni_groups(d: &Deployment, enis: &[String]) -> Vec<Vec<String>> {
    let out = d
        .clients
        .ec2
        .describe_network_interfaces()
        .set_network_interface_ids(Some(enis.to_vec()))
        .send()
        .await
        .unwrap();
    let mut groups: Vec<Vec<String>> = out
        .network_interfaces()
        .iter()
        .map(|n| {
            n.groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
                .collect()
        })
        .collect();
    groups.sort();
    groups
}

/// A CloudTrail call made by IAM user `user` (at `path`) with `key`, as a new incident.
fn call_by_user(file: &str, user: &str, path: &str, key: &str) -> Value {
    let mut e = event(file).unwrap();
    e["detail"]["eventID"] = unique("event").into();
    e["detail"]["userIdentity"] = json!({
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEPROTECT01",
        "arn": format!("arn:aws:iam::{ACCOUNT}:user{path}{user}"),
        "accountId": ACCOUNT,
        "accessKeyId": key,
        "userName": user,
    });
    e
}

/// Item 3: the instance's own role tags it `cordon:protected=true` (it may, even at launch);
/// it is isolated all the same, and the record says the tag was not honoured.
#[tokio::test]
async fn an_instance_cannot_tag_itself_protected() {
    let d = deployment().await;
    let w = seed_workload(&d, &[("cordon:protected", "true")])
        .await
        .unwrap();
    let before = eni_groups(&d, &w.enis).await;
    let r = responder(&d, Function::IsolateInstance, &[]).await;
    let (finding, e) = instance_finding(&w.instance);

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_ne!(eni_groups(&d, &w.enis).await, before, "isolated");
    let protect = report
        .actions
        .iter()
        .find(|a| a.action == Action::ProtectInstance)
        .expect("protect_instance");
    assert!(
        protect
            .note
            .as_deref()
            .is_some_and(|n| n.contains("cordon:protected=true not honoured")),
        "{protect:#?}"
    );
    let items = ledger_items(&d.clients.dynamodb, &d.table, &finding)
        .await
        .unwrap();
    assert!(
        items
            .iter()
            .any(|i| attr(i, "action") == "protect_instance"
                && attr(i, "note").contains("not honoured")),
        "{items:#?}"
    );
}

/// Item 3: what an administrator lists is never touched, whatever its tags say.
#[tokio::test]
async fn a_listed_instance_is_never_touched() {
    let d = deployment().await;
    let w = seed_workload(&d, &[]).await.unwrap();
    let before = eni_groups(&d, &w.enis).await;
    let r = responder(
        &d,
        Function::IsolateInstance,
        &[("PROTECTED_INSTANCES", &w.instance)],
    )
    .await;
    let (_, e) = instance_finding(&w.instance);

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Protected), "{report:#?}");
    assert!(report.actions.is_empty(), "{report:#?}");
    assert_eq!(eni_groups(&d, &w.enis).await, before);
    let termination = d
        .clients
        .ec2
        .describe_instance_attribute()
        .instance_id(&w.instance)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .unwrap();
    assert_ne!(
        termination
            .disable_api_termination()
            .and_then(|v| v.value()),
        Some(true),
        "not even termination protection is set"
    );
}

/// Item 4: `user/admins/*` protects the users under `/admins/`, not every user.
#[tokio::test]
async fn only_users_under_the_protected_path_are_protected() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let outsider = unique("dev");
    let outsider_keys = seed_user(iam, &outsider, 1).await.unwrap();
    let admin = unique("admin");
    iam.create_user()
        .user_name(&admin)
        .path("/admins/")
        .send()
        .await
        .unwrap();
    let admin_key = iam
        .create_access_key()
        .user_name(&admin)
        .send()
        .await
        .unwrap()
        .access_key()
        .unwrap()
        .access_key_id()
        .to_owned();
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("PROTECTED_PRINCIPALS", "arn:aws:iam::*:user/admins/*")],
    )
    .await;

    // A GuardDuty finding names the user without a path; the user is not under /admins/.
    let (_, e) = user_finding(&outsider, &outsider_keys[0]);
    let report = lambda_invoke(&r, e).await;
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(key_statuses(iam, &outsider).await.unwrap()[0].1, "Inactive");

    // A CloudTrail call carries the path in the ARN AWS wrote.
    let by_admin = call_by_user(
        "cloudtrail-stop-logging.json",
        &admin,
        "/admins/",
        &admin_key,
    );
    let report = lambda_invoke(&r, by_admin).await;
    assert_eq!(report.status, Some(Status::Protected), "{report:#?}");
    assert_eq!(key_statuses(iam, &admin).await.unwrap()[0].1, "Active");

    // The same name's prefix elsewhere is not under /admins/.
    let by_outsider = call_by_user(
        "cloudtrail-stop-logging.json",
        &outsider,
        "/admins-not/",
        &outsider_keys[0],
    );
    let report = lambda_invoke(&r, by_outsider).await;
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
}

/// The containment budget's count for the one window a huge RATE_WINDOW_SECONDS makes.
async fn budget_used(d: &Deployment) -> String {
    let item = d
        .clients
        .dynamodb
        .get_item()
        .table_name(&d.table)
        .key("pk", AttributeValue::S(format!("RATE#{ACCOUNT}#0")))
        .key("sk", AttributeValue::S("RATE".to_owned()))
        .send()
        .await
        .unwrap();
    item.item()
        .map(|i| attr(i, "used").to_owned())
        .unwrap_or_default()
}

/// Item 5: with a budget of 2, seven incidents against a user already contained spend none of
/// it, and a new user is still contained.
#[tokio::test]
async fn a_contained_user_cannot_spend_the_budget() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let limit = 2;
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[
            ("RATE_LIMIT", &limit.to_string()),
            ("RATE_WINDOW_SECONDS", "4000000000"),
        ],
    )
    .await;
    let mallory = unique("mallory");
    let key = seed_user(iam, &mallory, 1).await.unwrap().remove(0);
    let (_, e) = user_finding(&mallory, &key);
    assert_eq!(lambda_invoke(&r, e).await.status, Some(Status::Contained));
    assert_eq!(budget_used(&d).await, "1");

    // The quarantined user keeps calling a watched API: a new incident each time.
    for _ in 0..limit + 5 {
        let call = call_by_user("cloudtrail-stop-logging.json", &mallory, "/", &key);
        let report = lambda_invoke(&r, call).await;
        assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    }
    assert_eq!(budget_used(&d).await, "1", "nothing spent on mallory again");

    let bob = unique("bob");
    let bob_key = seed_user(iam, &bob, 1).await.unwrap().remove(0);
    let (_, e) = user_finding(&bob, &bob_key);
    let report = lambda_invoke(&r, e).await;
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(key_statuses(iam, &bob).await.unwrap()[0].1, "Inactive");
    assert_eq!(budget_used(&d).await, "2");
}

fn cordon_roles() -> (String, String, String) {
    let quarantine = unique("cordon-QuarantineCredentialsFunctionRole");
    let isolate = unique("cordon-IsolateInstanceFunctionRole");
    let both =
        format!("arn:aws:iam::{ACCOUNT}:role/{quarantine},arn:aws:iam::{ACCOUNT}:role/{isolate}");
    (quarantine, isolate, both)
}

/// Item 13: quarantine-credentials does not revoke the sessions of isolate-instance's role
/// (each function used to learn only its own).
#[tokio::test]
async fn neither_function_is_turned_on_the_other() {
    let d = deployment().await;
    let (_, isolate, both) = cordon_roles();
    seed_role(&d.clients.iam, &isolate).await.unwrap();
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("CORDON_ROLES", &both)],
    )
    .await;
    let (_, e) = role_finding(&isolate);

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Protected), "{report:#?}");
    assert!(!sessions_revoked(&d.clients.iam, &isolate).await);
}

/// isolate-instance's untrack rule (all traffic from anywhere) as CloudTrail records it, called
/// by `identity`, naming the group as `group` (`{"groupId": ...}` or `{"groupName": ...}`).
fn untrack_rule(identity: Value, group: Value) -> Value {
    let mut e = event("cloudtrail-open-ssh.json").unwrap();
    e["detail"]["eventID"] = unique("event").into();
    e["detail"]["userIdentity"] = identity;
    let mut params = group;
    params["ipPermissions"] = json!({"items": [{
        "ipProtocol": "-1",
        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
        "ipv6Ranges": {"items": [{"cidrIpv6": "::/0"}]},
    }]});
    e["detail"]["requestParameters"] = params;
    e
}

/// Item 13: isolate-instance opening its own untrack group does not raise `admin-ports-open`;
/// the same rule by anyone else still does, on whatever group, however named.
#[tokio::test]
async fn cordon_does_not_alarm_about_its_own_groups() {
    let d = deployment().await;
    let (_, isolate, both) = cordon_roles();
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("CORDON_ROLES", &both)],
    )
    .await;
    let cordon = json!({
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLECORDON001:isolate-instance",
        "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{isolate}/isolate-instance"),
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": isolate,
            "arn": format!("arn:aws:iam::{ACCOUNT}:role/{isolate}")}},
    });

    let report = lambda_invoke(&r, untrack_rule(cordon, json!({"groupId": "sg-0a1b2c3d"}))).await;

    assert_eq!(report.status, Some(Status::Ignored), "{report:#?}");
    assert!(d.notifications(moto()).await.unwrap().is_empty());

    // An attacker's group named like cordon's proves nothing: only the caller does.
    let mallory = unique("mallory");
    let key = seed_user(&d.clients.iam, &mallory, 1)
        .await
        .unwrap()
        .remove(0);
    let forged = untrack_rule(
        json!({"type": "IAMUser", "arn": format!("arn:aws:iam::{ACCOUNT}:user/{mallory}"),
            "accountId": ACCOUNT, "accessKeyId": key, "userName": mallory}),
        json!({"groupId": "sg-0a1b2c3d"}),
    );
    let report = lambda_invoke(&r, forged).await;
    assert_eq!(report.status, Some(Status::NotifyOnly), "{report:#?}");
    assert_eq!(
        report.finding_type.as_deref(),
        Some("CloudTrail:admin-ports-open")
    );
    // Named `cordon-untrack` by the attacker: cordon's name on it is tampering, not cordon.
    let named = untrack_rule(
        json!({"type": "IAMUser", "arn": format!("arn:aws:iam::{ACCOUNT}:user/{mallory}"),
            "accountId": ACCOUNT, "accessKeyId": key, "userName": mallory}),
        json!({"groupName": "cordon-untrack"}),
    );
    let report = lambda_invoke(&r, named).await;
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(
        report.finding_type.as_deref(),
        Some("CloudTrail:cordon-tampered")
    );
}

/// Every function is told both roles (in the environment all functions share, which none
/// overrides), and isolate-instance its protected instances and tag key.
#[test]
fn the_template_protects_both_roles_in_both_functions() {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let t = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    let vars = &t["Globals"]["Function"]["Environment"]["Variables"];
    let roles = format!("{:?}", vars["CORDON_ROLES"]);
    for role in [
        "QuarantineCredentialsFunctionRole",
        "IsolateInstanceFunctionRole",
    ] {
        assert!(roles.contains(role), "CORDON_ROLES lacks {role}");
    }
    for function in [
        "QuarantineCredentialsFunction",
        "CloudTrailCallsFunction",
        "IsolateInstanceFunction",
    ] {
        let own = &t["Resources"][function]["Properties"]["Environment"]["Variables"];
        assert!(own["CORDON_ROLES"].is_badvalue(), "{function} overrides it");
    }
    let isolate =
        &t["Resources"]["IsolateInstanceFunction"]["Properties"]["Environment"]["Variables"];
    for (var, parameter) in [
        ("PROTECTED_INSTANCES", "ProtectedInstances"),
        ("PROTECTION_TAG_KEY", "ProtectionTagKey"),
    ] {
        assert!(
            format!("{:?}", isolate[var]).contains(parameter),
            "{var} is set from parameter {parameter}"
        );
        assert_eq!(t["Parameters"][parameter]["Default"].as_str(), Some(""));
    }
}
