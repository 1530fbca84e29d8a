//! isolate-instance's security groups: only groups cordon made itself are used and repaired, and
//! the two-step swap fails safe (never leaving an interface on the allow-all group).

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, Tag, TagSpecification};
use cordon::actions::{Action, ActionRecord};
use cordon::ledger::Status;
use cordon::{Function, Report};
use integration_tests::faults::{ec2_error, Answer, AnswerWhen, FaultProxy};
use integration_tests::seed::{seed_workload as seed, Workload};
use integration_tests::{
    attr, event, key_statuses, ledger_items, seed_user, unique, Deployment, ACCOUNT,
};

use crate::instance::{described, eni_groups, finding, groups};
use crate::{deployment, lambda_invoke, lambda_try, moto, responder, through_as};

fn isolated(report: &Report) -> Vec<&ActionRecord> {
    report
        .actions
        .iter()
        .filter(|a| a.action == Action::IsolateNetwork)
        .collect()
}

/// A workload's own group, as a team would make it: one HTTPS rule from the VPC, tagged `tag`.
async fn team_group(d: &Deployment, vpc: &str, name: &str, tag: Option<(&str, &str)>) -> String {
    let mut create = d
        .clients
        .ec2
        .create_security_group()
        .vpc_id(vpc)
        .group_name(name)
        .description("a team's own group");
    if let Some((k, v)) = tag {
        create = create.tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SecurityGroup)
                .tags(Tag::builder().key(k).value(v).build())
                .build(),
        );
    }
    let id = create.send().await.unwrap().group_id().unwrap().to_owned();
    d.clients
        .ec2
        .authorize_security_group_ingress()
        .group_id(&id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    id
}

/// A group's rules, both ways, for comparing before and after.
async fn rules(d: &Deployment, group: &str) -> String {
    let out = d
        .clients
        .ec2
        .describe_security_groups()
        .group_ids(group)
        .send()
        .await
        .unwrap();
    let g = &out.security_groups()[0];
    format!("{:?} / {:?}", g.ip_permissions(), g.ip_permissions_egress())
}

/// A second instance in the workload's subnet, on the workload's groups: (instance, interface).
async fn neighbour(d: &Deployment, w: &Workload) -> (String, String) {
    let ec2 = &d.clients.ec2;
    let first = &described(d, &w.instance).await;
    let groups: Vec<String> = first
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect();
    let run = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .subnet_id(first.subnet_id().unwrap())
        .set_security_group_ids(Some(groups))
        .send()
        .await
        .unwrap();
    let i = &run.instances()[0];
    (
        i.instance_id().unwrap().to_owned(),
        i.network_interfaces()[0]
            .network_interface_id()
            .unwrap()
            .to_owned(),
    )
}

/// Anyone with ec2:CreateTags can tag sg-prod `cordon:purpose`; with write access to the table
/// they can even register it. cordon still never opens or empties it: it uses groups it made,
/// and the record names the lookalikes it left alone.
#[tokio::test]
async fn a_group_tagged_or_registered_as_cordons_is_left_untouched() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let prod_db = team_group(&d, &w.vpc, "prod-db", Some(("cordon:purpose", "isolation"))).await;
    let prod_web = team_group(&d, &w.vpc, "prod-web", Some(("cordon:purpose", "untrack"))).await;
    d.clients
        .dynamodb
        .put_item()
        .table_name(&d.table)
        .item("pk", AttributeValue::S(format!("VPC#{}", w.vpc)))
        .item("sk", AttributeValue::S("GROUP#isolation".to_owned()))
        .item("group_id", AttributeValue::S(prod_db.clone()))
        .send()
        .await
        .unwrap();
    let before = (rules(&d, &prod_db).await, rules(&d, &prod_web).await);
    let r = responder(&d, Function::IsolateInstance, &[]).await;
    let (_, e) = finding(&w.instance);

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(
        (rules(&d, &prod_db).await, rules(&d, &prod_web).await),
        before,
        "the team's groups keep their rules"
    );
    let isolation: Vec<String> = eni_groups(&d, &w.enis[0]).await;
    assert_eq!(isolation.len(), 1);
    assert!(
        ![&prod_db, &prod_web].contains(&&isolation[0]),
        "{isolation:?}"
    );
    let ours = groups(&d, &w.vpc, "group-id", &isolation[0]).await;
    let ours = &ours.security_groups()[0];
    assert!(ours.ip_permissions().is_empty() && ours.ip_permissions_egress().is_empty());
    assert_eq!(eni_groups(&d, &w.enis[1]).await, isolation);
    for a in isolated(&report) {
        let note = a.note.as_deref().unwrap_or_default();
        assert!(
            note.contains("left untouched") && note.contains(&prod_db) && note.contains(&prod_web),
            "{a:#?}"
        );
    }
}

/// Someone made untagged groups named as the old cordon named its groups. Isolation still works,
/// in groups of cordon's own, and theirs are left as they were.
#[tokio::test]
async fn a_squatted_group_name_does_not_stop_isolation() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let squatted = [
        team_group(&d, &w.vpc, "cordon-isolation", None).await,
        team_group(&d, &w.vpc, "cordon-untrack", None).await,
    ];
    let before = [rules(&d, &squatted[0]).await, rules(&d, &squatted[1]).await];
    let r = responder(&d, Function::IsolateInstance, &[]).await;
    let (_, e) = finding(&w.instance);

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert!(isolated(&report).iter().all(|a| a.verified == Some(true)));
    let isolation = eni_groups(&d, &w.enis[0]).await;
    assert!(!squatted.contains(&isolation[0]));
    assert_eq!(
        [rules(&d, &squatted[0]).await, rules(&d, &squatted[1]).await],
        before
    );
}

/// A stolen key opens cordon's isolation group to the internet, by id (as CloudTrail names
/// the group): that is `cordon-tampered`, and the key's user is contained. The same call on a
/// team's group is not an incident.
#[tokio::test]
async fn opening_cordons_isolation_group_contains_whoever_did_it() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let isolate = responder(&d, Function::IsolateInstance, &[]).await;
    lambda_invoke(&isolate, finding(&w.instance).1).await;
    let isolation = eni_groups(&d, &w.enis[0]).await.remove(0);
    let team = team_group(&d, &w.vpc, "prod-web", None).await;
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    for (group, tampered) in [(team, false), (isolation, true)] {
        let user = unique("mallory");
        let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
        let mut e = event("cloudtrail-open-ssh.json").unwrap();
        let detail = &mut e["detail"];
        detail["eventID"] = unique("event").into();
        detail["eventName"] = "AuthorizeSecurityGroupEgress".into();
        detail["userIdentity"]["userName"] = user.clone().into();
        detail["userIdentity"]["arn"] = format!("arn:aws:iam::{ACCOUNT}:user/{user}").into();
        detail["userIdentity"]["accessKeyId"] = keys[0].clone().into();
        detail["requestParameters"]["groupId"] = group.clone().into();
        detail["requestParameters"]["ipPermissions"]["items"][0] = serde_json::json!({"ipProtocol": "-1", "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}});

        let report = lambda_invoke(&r, e).await;

        let status = key_statuses(&d.clients.iam, &user).await.unwrap()[0]
            .1
            .clone();
        if tampered {
            assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
            assert_eq!(
                report.finding_type.as_deref(),
                Some("CloudTrail:cordon-tampered")
            );
            assert_eq!(status, "Inactive");
        } else {
            assert_eq!(report.status, Some(Status::Ignored), "{report:#?}");
            assert_eq!(status, "Active");
        }
    }
}

/// Someone creates, first, the very name cordon picks (EC2 answers InvalidGroup.Duplicate,
/// scripted: the names carry the time in nanoseconds). cordon picks a new name and isolates.
#[tokio::test]
async fn a_group_name_taken_first_is_replaced_by_a_new_one() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let proxy = FaultProxy::answering(
        &moto().endpoint,
        vec![Answer {
            action: "CreateSecurityGroup",
            status: "400 Bad Request",
            body: ec2_error(
                "InvalidGroup.Duplicate",
                "The security group already exists",
            ),
            times: 2,
        }],
    )
    .await
    .unwrap();
    let r = through_as(Function::IsolateInstance, &proxy, &d, &[]).await;

    let report = lambda_invoke(&r, finding(&w.instance).1).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(proxy.answered.lock().unwrap().len(), 2, "both taken names");
    assert!(isolated(&report).iter().all(|a| a.verified == Some(true)));
}

/// An SCP (or Firewall Manager) forbids 0.0.0.0/0, so the untracking group cannot be opened.
/// EC2 answers UnauthorizedOperation (scripted: moto enforces no SCP). The interfaces go straight
/// into isolation, and the record says open connections may stay tracked.
#[tokio::test]
async fn without_an_untracking_group_interfaces_go_straight_into_isolation() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let refused = |action| Answer {
        action,
        status: "403 Forbidden",
        body: ec2_error(
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ),
        times: usize::MAX,
    };
    let proxy = FaultProxy::answering(
        &moto().endpoint,
        vec![
            refused("AuthorizeSecurityGroupIngress"),
            refused("AuthorizeSecurityGroupEgress"),
        ],
    )
    .await
    .unwrap();
    let r = through_as(Function::IsolateInstance, &proxy, &d, &[]).await;
    let (_, e) = finding(&w.instance);

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    let isolation = groups(&d, &w.vpc, "tag:cordon:purpose", "isolation").await;
    let isolation = isolation.security_groups()[0]
        .group_id()
        .unwrap()
        .to_owned();
    for eni in &w.enis {
        assert_eq!(eni_groups(&d, eni).await, vec![isolation.clone()], "{eni}");
    }
    for a in isolated(&report) {
        assert_eq!(a.verified, Some(true), "{a:#?}");
        assert_eq!(
            a.after.as_ref().unwrap()["through"],
            serde_json::Value::Null
        );
        let note = a.note.as_deref().unwrap_or_default();
        assert!(
            note.contains("UnauthorizedOperation") && note.contains("may stay tracked"),
            "{note}"
        );
    }
}

/// The second step (onto the isolation group) is refused. It is retried; an interface whose
/// retries all fail goes back onto its original groups, never staying on the allow-all group,
/// and the failed record says so.
#[tokio::test]
async fn an_interface_never_stays_on_the_allow_all_group() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let (stuck, stuck_eni) = neighbour(&d, &w).await;
    let (retried, retried_eni) = neighbour(&d, &w).await;
    let original = eni_groups(&d, &stuck_eni).await;
    // The first incident in the VPC makes cordon's groups.
    let r = responder(&d, Function::IsolateInstance, &[]).await;
    lambda_invoke(&r, finding(&w.instance).1).await;
    let isolation = eni_groups(&d, &w.enis[0]).await.remove(0);
    let refused = |times| AnswerWhen {
        contains: isolation.clone(),
        answer: Answer {
            action: "ModifyNetworkInterfaceAttribute",
            status: "403 Forbidden",
            body: ec2_error(
                "UnauthorizedOperation",
                "You are not authorized to perform this operation.",
            ),
            times,
        },
    };

    let proxy = FaultProxy::answering_when(&moto().endpoint, vec![refused(1)])
        .await
        .unwrap();
    let r = through_as(Function::IsolateInstance, &proxy, &d, &[]).await;
    let report = lambda_invoke(&r, finding(&retried).1).await;
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(eni_groups(&d, &retried_eni).await, vec![isolation.clone()]);

    let proxy = FaultProxy::answering_when(&moto().endpoint, vec![refused(usize::MAX)])
        .await
        .unwrap();
    let r = through_as(Function::IsolateInstance, &proxy, &d, &[]).await;
    let (id, e) = finding(&stuck);
    let failed = lambda_try(&r, e).await;
    assert!(failed.is_err(), "a failed isolation fails the invocation");
    assert_eq!(eni_groups(&d, &stuck_eni).await, original);
    let items = ledger_items(&d.clients.dynamodb, &d.table, &id)
        .await
        .unwrap();
    let record = items
        .iter()
        .find(|i| attr(i, "action") == "isolate_network" && attr(i, "target") == stuck_eni)
        .expect("an isolation record");
    assert_eq!(attr(record, "outcome"), "failed");
    assert!(
        attr(record, "error").contains("put back on its original groups"),
        "{record:?}"
    );
}

/// Even a bug cannot rewrite another group: the role rewrites or deletes only groups carrying
/// cordon's tag, may set that tag only while creating a group, and creates none without it.
#[test]
fn the_role_rewrites_and_tags_only_cordons_groups() {
    use crate::template::{strings, template};
    let t = template();
    let statements = t["Resources"]["IsolateInstanceFunction"]["Properties"]["Policies"][0]
        ["Statement"]
        .as_vec()
        .unwrap()
        .clone();
    let rewrites = [
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:DeleteSecurityGroup",
    ];
    let purposes = vec!["untrack".to_owned(), "isolation".to_owned()];
    let mut checked = 0;
    for s in statements
        .iter()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
    {
        let actions = strings(&s["Action"]);
        let resources = strings(&s["Resource"]);
        assert!(!resources.is_empty(), "{s:?}");
        let on_groups = resources
            .iter()
            .any(|r| r == "*" || r.ends_with(":*") || r.ends_with(":security-group/*"));
        if !on_groups {
            continue;
        }
        let condition = &s["Condition"]["StringEquals"];
        let has = |a: &str| actions.iter().any(|x| x == a);
        if actions.iter().any(|a| rewrites.contains(&a.as_str())) {
            assert_eq!(
                strings(&condition["aws:ResourceTag/cordon:purpose"]),
                purposes,
                "{s:?}"
            );
            checked += 1;
        }
        if has("ec2:CreateTags") {
            assert_eq!(
                strings(&condition["ec2:CreateAction"]),
                vec!["CreateSecurityGroup"],
                "{s:?}"
            );
            checked += 1;
        }
        if has("ec2:CreateSecurityGroup") {
            assert_eq!(
                strings(&condition["aws:RequestTag/cordon:purpose"]),
                purposes,
                "{s:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked, 3,
        "one statement each for rewriting, tagging and creating"
    );
}
