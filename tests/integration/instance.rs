//! isolate-instance on GuardDuty EC2 findings, against a VPC seeded like a real workload.

use aws_sdk_ec2::types::InstanceAttributeName;
use cordon::actions::Outcome;
use cordon::ledger::Status;
use cordon::Function;
use integration_tests::seed::seed_workload as seed;
use integration_tests::{event, snapshotted_volumes, unique, Deployment};
use serde_json::Value;

use crate::{deployment, invoke, invoke_undelivered, responder};

pub(crate) fn finding(instance: &str) -> (String, Value) {
    let mut e = event("guardduty-ec2.json").unwrap();
    let id = unique("finding").replace('-', "");
    e["detail"]["id"] = id.clone().into();
    e["detail"]["resource"]["instanceDetails"]["instanceId"] = instance.into();
    (id, e)
}

/// The VPC's security groups that match one more filter.
pub(crate) async fn groups(
    d: &Deployment,
    vpc: &str,
    name: &str,
    value: &str,
) -> aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput {
    let filter = |n: &str, v: &str| {
        aws_sdk_ec2::types::Filter::builder()
            .name(n)
            .values(v)
            .build()
    };
    d.clients
        .ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vpc))
        .filters(filter(name, value))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn eni_groups(d: &Deployment, eni: &str) -> Vec<String> {
    let out = d
        .clients
        .ec2
        .describe_network_interfaces()
        .network_interface_ids(eni)
        .send()
        .await
        .unwrap();
    out.network_interfaces()[0]
        .groups()
        .iter()
        .map(|g| g.group_id().unwrap().to_owned())
        .collect()
}

/// The document of cordon's inline policy on `role` that denies `instance`'s credentials.
pub(crate) async fn instance_credentials_denied(
    d: &Deployment,
    role: &str,
    instance: &str,
) -> Option<Value> {
    let policy = d
        .clients
        .iam
        .get_role_policy()
        .role_name(role)
        .policy_name(format!(
            "{}{instance}",
            cordon::policy::INSTANCE_REVOKE_POLICY_PREFIX
        ))
        .send()
        .await
        .ok()?;
    serde_json::from_str(&cordon::policy::decode(policy.policy_document())).ok()
}

/// The instance as EC2 describes it now.
pub(crate) async fn described(d: &Deployment, instance: &str) -> aws_sdk_ec2::types::Instance {
    let out = d
        .clients
        .ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0].clone()
}

/// Every volume of `instance` outlives it (DeleteOnTermination false).
pub(crate) fn volumes_kept(instance: &aws_sdk_ec2::types::Instance) -> bool {
    instance
        .block_device_mappings()
        .iter()
        .all(|b| b.ebs().unwrap().delete_on_termination() == Some(false))
}

async fn snapshots(d: &Deployment, finding: &str) -> Vec<String> {
    snapshotted_volumes(&d.clients.ec2, "tag:cordon:incident", &[finding.to_owned()])
        .await
        .unwrap()
}

#[tokio::test]
async fn instance_is_contained_on_every_interface_then_snapshotted_once() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    assert_eq!(w.enis.len(), 2);
    assert_eq!(
        w.volumes.len(),
        2,
        "two EBS volumes (moto adds no root volume here)"
    );
    let r = responder(&d, Function::IsolateInstance, &[]).await;
    let (finding, e) = finding(&w.instance);

    let report = invoke(&r, e.clone()).await.expect("contained");
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    let isolated: Vec<_> = report
        .actions
        .iter()
        .filter(|a| a.action.name() == "isolate_network")
        .collect();
    assert_eq!(isolated.len(), 2);
    assert!(
        isolated.iter().all(|a| a.verified == Some(true)),
        "every interface's groups read back: {isolated:#?}"
    );
    let repeat = invoke(&r, e).await.expect("repeat");
    assert!(
        repeat.actions.iter().all(|a| a.outcome.word() == "skipped"),
        "{repeat:#?}"
    );

    let ec2 = &d.clients.ec2;
    // Both interfaces on the VPC's isolation group only; that group has no rules at all.
    let isolation = groups(&d, &w.vpc, "tag:cordon:purpose", "isolation").await;
    assert_eq!(
        isolation.security_groups().len(),
        1,
        "found and reused, never duplicated"
    );
    let group = &isolation.security_groups()[0];
    assert!(
        group.ip_permissions().is_empty() && group.ip_permissions_egress().is_empty(),
        "{group:?}"
    );
    let isolation_id = group.group_id().unwrap().to_owned();
    for eni in &w.enis {
        assert_eq!(
            eni_groups(&d, eni).await,
            vec![isolation_id.clone()],
            "{eni}"
        );
    }
    // The untracking group exists with allow-all both ways, v4 and v6.
    let untrack = groups(&d, &w.vpc, "tag:cordon:purpose", "untrack").await;
    let untrack = &untrack.security_groups()[0];
    for rules in [untrack.ip_permissions(), untrack.ip_permissions_egress()] {
        assert!(rules.iter().any(|p| p
            .ip_ranges()
            .iter()
            .any(|r| r.cidr_ip() == Some("0.0.0.0/0"))));
        assert!(rules.iter().any(|p| p
            .ipv6_ranges()
            .iter()
            .any(|r| r.cidr_ipv6() == Some("::/0"))));
    }

    // One snapshot per volume after two deliveries.
    let mut snapped = snapshots(&d, &finding).await;
    snapped.sort();
    let mut volumes = w.volumes.clone();
    volumes.sort();
    assert_eq!(snapped, volumes);

    // Protected from termination, volumes outlive it.
    let attr = ec2
        .describe_instance_attribute()
        .instance_id(&w.instance)
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .unwrap();
    assert_eq!(attr.disable_api_termination().unwrap().value(), Some(true));
    let instance = &described(&d, &w.instance).await;
    assert!(volumes_kept(instance));
    assert!(instance
        .tags()
        .iter()
        .any(|t| t.key() == Some("cordon:incident") && t.value() == Some(finding.as_str())));

    // Profile gone, role sessions revoked.
    let assoc = ec2
        .describe_iam_instance_profile_associations()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .values(&w.instance)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(assoc
        .iam_instance_profile_associations()
        .iter()
        .all(|a| a.state().map(|s| s.as_str()) != Some("associated")));
    // Only the credentials delivered to this instance are denied: the role's other sessions
    // (the rest of the fleet) keep working unless REVOKE_WHOLE_INSTANCE_ROLE is set.
    assert_eq!(
        instance_credentials_denied(&d, &w.role, &w.instance).await,
        Some(cordon::actions::instance::instance_revoke_document(
            &format!(
                "arn:aws:ec2:us-east-1:{}:instance/{}",
                integration_tests::ACCOUNT,
                w.instance
            )
        ))
    );
    assert!(
        !integration_tests::sessions_revoked(&d.clients.iam, &w.role).await,
        "the whole role's sessions are cut only when configured"
    );

    // Out of the Auto Scaling group, desired capacity unchanged; out of the target group.
    let asg = d
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&w.asg)
        .send()
        .await
        .unwrap();
    let asg = &asg.auto_scaling_groups()[0];
    assert!(asg
        .instances()
        .iter()
        .all(|i| i.instance_id() != Some(w.instance.as_str())));
    assert_eq!(asg.desired_capacity(), Some(1));
    let health = d
        .clients
        .elbv2
        .describe_target_health()
        .target_group_arn(&w.target_group)
        .send()
        .await
        .unwrap();
    assert!(health
        .target_health_descriptions()
        .iter()
        .all(|t| t.target().and_then(|t| t.id()) != Some(w.instance.as_str())));
}

/// By the administrator's reserved tag (opt-in): tests/integration/protection.rs shows the tag
/// protects nothing unless PROTECTION_TAG_KEY names it.
#[tokio::test]
async fn protected_instance_is_untouched() {
    let d = deployment().await;
    let w = seed(&d, &[("cordon:protected", "true")]).await.unwrap();
    let r = responder(
        &d,
        Function::IsolateInstance,
        &[("PROTECTION_TAG_KEY", "cordon:protected")],
    )
    .await;
    let (finding, e) = finding(&w.instance);
    let before: Vec<Vec<String>> =
        futures::future::join_all(w.enis.iter().map(|e| eni_groups(&d, e))).await;

    let report = invoke(&r, e).await.expect("recorded");

    assert_eq!(report.status, Some(Status::Protected));
    let after: Vec<Vec<String>> =
        futures::future::join_all(w.enis.iter().map(|e| eni_groups(&d, e))).await;
    assert_eq!(before, after);
    assert!(snapshots(&d, &finding).await.is_empty());
}

#[tokio::test]
async fn dry_run_instance_is_untouched() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let r = responder(&d, Function::IsolateInstance, &[("DRY_RUN", "true")]).await;
    let (finding, e) = finding(&w.instance);
    let before: Vec<Vec<String>> =
        futures::future::join_all(w.enis.iter().map(|e| eni_groups(&d, e))).await;

    let report = invoke(&r, e).await.expect("planned");

    assert_eq!(report.status, Some(Status::Planned), "{report:#?}");
    // What is already in place (moto's shutdown behaviour is stop) is skipped, all else planned.
    assert!(
        report.actions.iter().all(|a| a.outcome.word() == "planned"
            || matches!(&a.outcome, Outcome::Skipped { reason } if reason == "already in place")),
        "{report:#?}"
    );
    let after: Vec<Vec<String>> =
        futures::future::join_all(w.enis.iter().map(|e| eni_groups(&d, e))).await;
    assert_eq!(before, after);
    assert!(snapshots(&d, &finding).await.is_empty());
    let groups = groups(&d, &w.vpc, "tag-key", "cordon:purpose").await;
    assert!(
        groups.security_groups().is_empty(),
        "dry run creates no groups"
    );
}

#[tokio::test]
async fn credential_exfiltration_finding_isolates_the_source_instance() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let mut e = event("guardduty-instance-credential-exfiltration.json").unwrap();
    e["detail"]["id"] = unique("finding").replace('-', "").into();
    e["detail"]["resource"]["instanceDetails"]["instanceId"] = w.instance.clone().into();
    e["detail"]["resource"]["accessKeyDetails"]["userName"] = w.role.clone().into();
    // EventBridge routes this AccessKey finding to both functions, on one shared ledger: each
    // keeps its own claim, so neither mistakes the other for a duplicate.
    let (isolated, revoked) = tokio::join!(
        async {
            invoke(
                &responder(&d, Function::IsolateInstance, &[]).await,
                e.clone(),
            )
            .await
        },
        async {
            invoke(
                &responder(&d, Function::QuarantineCredentials, &[]).await,
                e.clone(),
            )
            .await
        },
    );
    assert_eq!(isolated.expect("isolated").status, Some(Status::Contained));
    let revoked = revoked.expect("revoked");
    assert_eq!(revoked.status, Some(Status::Contained), "{revoked:#?}");
    assert!(revoked
        .actions
        .iter()
        .any(|a| a.action.name() == "revoke_sessions" && a.outcome.word() != "failed"));
}

#[tokio::test]
async fn access_key_findings_are_not_for_this_function() {
    let d = deployment().await;
    let r = responder(&d, Function::IsolateInstance, &[]).await;
    let report = invoke_undelivered(&r, event("guardduty-iam-user.json").unwrap())
        .await
        .expect("ignored");
    assert_eq!(report.status, Some(Status::Ignored));
}
