//! isolate-instance takes the instance out of every target group that sends it traffic, by id
//! or by address, with a bounded number of ELB calls in flight.

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription, TargetTypeEnum};
use cordon::ledger::Status;
use cordon::Function;
use integration_tests::faults::FaultProxy;
use integration_tests::seed::seed_workload as seed;
use integration_tests::{unique, Deployment};

use crate::instance::{described, finding};
use crate::{deployment, lambda_invoke, moto, through_as};

async fn target_group(d: &Deployment, vpc: &str, kind: TargetTypeEnum, targets: &[&str]) -> String {
    let elb = &d.clients.elbv2;
    let tg = elb
        .create_target_group()
        .name(unique("tg").replace('-', ""))
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc)
        .target_type(kind)
        .send()
        .await
        .unwrap();
    let arn = tg.target_groups()[0].target_group_arn().unwrap().to_owned();
    for t in targets {
        elb.register_targets()
            .target_group_arn(&arn)
            .targets(TargetDescription::builder().id(*t).port(8080).build())
            .send()
            .await
            .unwrap();
    }
    arn
}

async fn targets(d: &Deployment, arn: &str) -> Vec<String> {
    let health = d
        .clients
        .elbv2
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .unwrap();
    health
        .target_health_descriptions()
        .iter()
        .filter_map(|t| t.target()?.id().map(str::to_owned))
        .collect()
}

/// An `ip` target group holds the instance by its private addresses; another VPC's `ip` group
/// holds the same address, which there is another host, and keeps it. Many target groups, and
/// never more DescribeTargetHealth calls in flight than the bound.
#[tokio::test]
async fn every_target_group_by_id_or_address_with_bounded_fan_out() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let addresses: Vec<String> = described(&d, &w.instance)
        .await
        .network_interfaces()
        .iter()
        .filter_map(|n| n.private_ip_address().map(str::to_owned))
        .collect();
    assert_eq!(addresses.len(), 2);
    let bystander = "10.0.1.250";
    let by_address = target_group(
        &d,
        &w.vpc,
        TargetTypeEnum::Ip,
        &[&addresses[0], &addresses[1], bystander],
    )
    .await;
    let elsewhere = d
        .clients
        .ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap();
    let elsewhere = elsewhere.vpc().unwrap().vpc_id().unwrap().to_owned();
    let other_vpc = target_group(&d, &elsewhere, TargetTypeEnum::Ip, &[&addresses[0]]).await;
    let mut by_id = Vec::new();
    for _ in 0..3 * cordon::actions::instance::ELB_CONCURRENCY {
        by_id.push(target_group(&d, &w.vpc, TargetTypeEnum::Instance, &[&w.instance]).await);
    }
    let proxy = FaultProxy::start(&moto().endpoint, 0, 1).await.unwrap();
    let r = through_as(Function::IsolateInstance, &proxy, &d, &[]).await;

    let report = lambda_invoke(&r, finding(&w.instance).1).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(targets(&d, &by_address).await, vec![bystander.to_owned()]);
    assert_eq!(targets(&d, &other_vpc).await, vec![addresses[0].clone()]);
    for arn in by_id.iter().chain([&w.target_group]) {
        assert!(targets(&d, arn).await.is_empty(), "{arn}");
    }
    let most = proxy.counts.most_at_once("DescribeTargetHealth");
    assert!(
        (1..=cordon::actions::instance::ELB_CONCURRENCY as u64).contains(&most),
        "{most} DescribeTargetHealth calls at once"
    );
}
