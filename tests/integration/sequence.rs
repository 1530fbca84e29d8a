//! GuardDuty Extended Threat Detection's attack sequences: one finding, several targets. Each
//! target is one part of the incident, handled, recorded and notified as a single-target
//! incident is; what cordon cannot act on is told to a person under the whole.

use cordon::ledger::{Delivery, Status};
use cordon::{Function, Report};
use integration_tests::seed::seed_workload;
use integration_tests::{event, key_statuses, repo_root, seed_user, unique, ACCOUNT};
use serde_json::{json, Value};

use crate::{deployment, lambda_invoke, moto, responder};

fn sequence_finding(name: &str) -> Value {
    let mut e = event(name).unwrap();
    e["detail"]["id"] = unique("finding").replace('-', "").into();
    e
}

/// The instances isolate-instance verified on every interface, across the parts.
fn isolated(report: &Report) -> Vec<String> {
    let mut out: Vec<String> = report
        .parts
        .iter()
        .filter(|p| {
            p.status == Some(Status::Contained)
                && p.actions
                    .iter()
                    .any(|a| a.action.name() == "isolate_network" && a.verified == Some(true))
        })
        .filter_map(|p| p.target.as_ref().map(|t| t.describe_briefly()))
        .collect();
    out.sort();
    out
}

/// `AttackSequence:IAM/CompromisedCredentials` names its actor's user and key: both contained.
/// An actor in another account is not looked up by name here (a same-named user of this
/// account is someone else): it is listed for a person.
#[tokio::test]
async fn an_iam_sequence_contains_the_credential_it_names() {
    let d = deployment().await;
    let user = unique("seq-user");
    let keys = seed_user(&d.clients.iam, &user, 2).await.unwrap();
    let bystander = unique("seq-bystander");
    let bystander_keys = seed_user(&d.clients.iam, &bystander, 1).await.unwrap();
    let mut e = sequence_finding("guardduty-attack-sequence-iam.json");
    let sequence = &mut e["detail"]["service"]["detection"]["sequence"];
    sequence["actors"][0]["user"]["name"] = user.clone().into();
    sequence["actors"][0]["user"]["credentialUid"] = keys[0].clone().into();
    sequence["resources"][0]["uid"] = keys[0].clone().into();
    sequence["resources"][0]["data"]["accessKey"]["userName"] = user.clone().into();
    // The same name as a user of this account, but another account's.
    sequence["actors"].as_array_mut().unwrap().push(
        json!({"id": "other", "user": {"name": bystander, "type": "IAMUser",
                     "account": {"uid": "999988887777"}}}),
    );
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let report = lambda_invoke(&r, e.clone()).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    let contained: Vec<_> = report
        .parts
        .iter()
        .filter(|p| p.status == Some(Status::Contained))
        .collect();
    assert_eq!(
        contained.len(),
        1,
        "actor and key resource are one target: {report:#?}"
    );
    let statuses = key_statuses(&d.clients.iam, &user).await.unwrap();
    let status_of = |k: &str| statuses.iter().find(|(id, _)| id == k).unwrap().1.clone();
    assert_eq!(status_of(&keys[0]), "Inactive", "the key it names");
    assert!(
        report
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("999988887777"),
        "the other account's actor is told: {report:#?}"
    );
    assert_eq!(
        key_statuses(&d.clients.iam, &bystander).await.unwrap()[0],
        (bystander_keys[0].clone(), "Active".to_owned()),
        "a same-named user of this account is not the other account's actor"
    );
    let told = d.notifications(moto()).await.unwrap();
    assert!(
        told.iter().any(|n| n.to_string().contains(&user)),
        "the part is notified: {told:#?}"
    );

    // GuardDuty re-sends the finding: each part is a repeat of itself, nothing new is changed.
    let repeat = lambda_invoke(&r, e).await;
    assert_eq!(repeat.status, Some(Status::Contained), "{repeat:#?}");
    let part = repeat
        .parts
        .iter()
        .find(|p| p.status == Some(Status::Contained))
        .unwrap();
    assert_eq!(part.delivery, Some(Delivery::Repeat), "{repeat:#?}");
    assert_eq!(part.incident_id, contained[0].incident_id, "the same part");
}

/// `AttackSequence:EC2/CompromisedInstanceGroup` names an instance and an Auto Scaling group's
/// members: each is isolated once, up to MAX_INSTANCES_PER_INCIDENT; the rest are listed.
#[tokio::test]
async fn an_instance_group_sequence_isolates_each_instance_up_to_the_cap() {
    let d = deployment().await;
    let (a, b, c) = (
        seed_workload(&d, &[]).await.unwrap(),
        seed_workload(&d, &[]).await.unwrap(),
        seed_workload(&d, &[]).await.unwrap(),
    );
    let mut e = sequence_finding("guardduty-attack-sequence-ec2.json");
    let resources = &mut e["detail"]["service"]["detection"]["sequence"]["resources"];
    resources[0]["uid"] = a.instance.clone().into();
    resources[1]["data"]["autoscalingAutoScalingGroup"]["ec2InstanceUids"] =
        json!([a.instance, b.instance]);
    let r = responder(&d, Function::IsolateInstance, &[]).await;

    let report = lambda_invoke(&r, e.clone()).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    let mut want = vec![
        format!("instance {}", a.instance),
        format!("instance {}", b.instance),
    ];
    want.sort();
    assert_eq!(isolated(&report), want, "{report:#?}");

    // A bigger group than the cap: the first is isolated, the others wait on a person.
    let mut e = sequence_finding("guardduty-attack-sequence-ec2.json");
    let resources = &mut e["detail"]["service"]["detection"]["sequence"]["resources"];
    resources[0]["uid"] = c.instance.clone().into();
    resources[1]["data"]["autoscalingAutoScalingGroup"]["ec2InstanceUids"] =
        json!([c.instance, "i-0abc0abc0abc0abc0", "i-0def0def0def0def0"]);
    let capped = responder(
        &d,
        Function::IsolateInstance,
        &[("MAX_INSTANCES_PER_INCIDENT", "1")],
    )
    .await;
    let report = lambda_invoke(&capped, e).await;
    assert_eq!(isolated(&report), vec![format!("instance {}", c.instance)]);
    let reason = report.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("MAX_INSTANCES_PER_INCIDENT") && reason.contains("i-0def0def0def0def0"),
        "{report:#?}"
    );
}

/// AWS's own sample of an IAM sequence, trimmed of `service.detection` (tests/corpus): cordon
/// cannot tell whom it names, so it changes nothing, tells a person, and does not fail.
#[tokio::test]
async fn a_sequence_without_its_detection_is_told_not_failed() {
    let d = deployment().await;
    let path = repo_root().join(
        "tests/corpus/guardduty/panther__aws-guardduty-criticalseverityfinding__critical-sev-finding.json",
    );
    let mut detail: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(detail["service"].get("detection").is_none());
    detail["id"] = unique("finding").replace('-', "").into();
    detail["accountId"] = ACCOUNT.into();
    let e = json!({"version": "0", "id": unique("event"), "detail-type": "GuardDuty Finding",
                   "source": "aws.guardduty", "account": ACCOUNT, "region": "us-east-1",
                   "time": "2026-11-22T20:00:00Z", "resources": [], "detail": detail});
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::NotifyOnly), "{report:#?}");
    assert!(report.notified, "{report:#?}");
    assert!(report.parts.iter().all(|p| p.actions.is_empty()));
}
