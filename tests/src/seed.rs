//! Seeding the emulator with what findings name: users with keys, roles, instances.

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, IamInstanceProfileSpecification, ResourceType, Tag,
    TagSpecification,
};
use serde_json::Value;

use crate::{unique, BoxError, Deployment};

/// An IAM user with `keys` access keys; returns their ids.
pub async fn seed_user(
    iam: &aws_sdk_iam::Client,
    name: &str,
    keys: usize,
) -> Result<Vec<String>, BoxError> {
    iam.create_user().user_name(name).send().await?;
    let mut ids = Vec::new();
    for _ in 0..keys {
        let key = iam.create_access_key().user_name(name).send().await?;
        ids.push(key.access_key().ok_or("no key")?.access_key_id().to_owned());
    }
    Ok(ids)
}

/// Set `user`'s `key` Active again (as before a repeat of the same scene).
pub async fn reactivate(iam: &aws_sdk_iam::Client, user: &str, key: &str) -> Result<(), BoxError> {
    iam.update_access_key()
        .user_name(user)
        .access_key_id(key)
        .status(aws_sdk_iam::types::StatusType::Active)
        .send()
        .await?;
    Ok(())
}

pub async fn seed_role(iam: &aws_sdk_iam::Client, name: &str) -> Result<(), BoxError> {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .send()
        .await?;
    Ok(())
}

/// An instance as real workloads have them: a VPC with IPv6, two interfaces, two EBS volumes,
/// an instance profile, an Auto Scaling group and a target group.
pub struct Workload {
    pub instance: String,
    pub enis: Vec<String>,
    pub volumes: Vec<String>,
    pub vpc: String,
    pub role: String,
    pub asg: String,
    pub target_group: String,
}

pub async fn seed_workload(d: &Deployment, tags: &[(&str, &str)]) -> Result<Workload, BoxError> {
    let (ec2, iam) = (&d.clients.ec2, &d.clients.iam);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .amazon_provided_ipv6_cidr_block(true)
        .send()
        .await?;
    let vpc = vpc
        .vpc()
        .ok_or("missing field in response")?
        .vpc_id()
        .ok_or("missing field in response")?
        .to_owned();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.0.1.0/24")
        .availability_zone("us-east-1a")
        .send()
        .await?;
    let subnet = subnet
        .subnet()
        .ok_or("missing field in response")?
        .subnet_id()
        .ok_or("missing field in response")?
        .to_owned();
    let web = ec2
        .create_security_group()
        .vpc_id(&vpc)
        .group_name(unique("web"))
        .description("web")
        .send()
        .await?;
    let web = web
        .group_id()
        .ok_or("missing field in response")?
        .to_owned();

    let role = unique("web-app");
    seed_role(iam, &role).await?;
    iam.create_instance_profile()
        .instance_profile_name(&role)
        .send()
        .await?;
    iam.add_role_to_instance_profile()
        .instance_profile_name(&role)
        .role_name(&role)
        .send()
        .await?;

    let volume = |dev: &str| {
        BlockDeviceMapping::builder()
            .device_name(dev)
            .ebs(
                EbsBlockDevice::builder()
                    .volume_size(8)
                    .delete_on_termination(true)
                    .build(),
            )
            .build()
    };
    let mut tag_spec = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(Tag::builder().key("Name").value("web-1").build());
    for (k, v) in tags {
        tag_spec = tag_spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    let run = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .subnet_id(&subnet)
        .security_group_ids(&web)
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name(&role)
                .build(),
        )
        .block_device_mappings(volume("/dev/sdf"))
        .block_device_mappings(volume("/dev/sdg"))
        .tag_specifications(tag_spec.build())
        .send()
        .await?;
    let instance = run.instances()[0]
        .instance_id()
        .ok_or("missing field in response")?
        .to_owned();
    let second = ec2
        .create_network_interface()
        .subnet_id(&subnet)
        .groups(&web)
        .send()
        .await?;
    let second = second
        .network_interface()
        .ok_or("missing field in response")?
        .network_interface_id()
        .ok_or("missing field in response")?
        .to_owned();
    ec2.attach_network_interface()
        .network_interface_id(&second)
        .instance_id(&instance)
        .device_index(1)
        .send()
        .await?;

    let asg = unique("asg");
    let lt = ec2
        .create_launch_template()
        .launch_template_name(unique("lt"))
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .build(),
        )
        .send()
        .await?;
    let lt_id = lt
        .launch_template()
        .ok_or("missing field in response")?
        .launch_template_id()
        .ok_or("missing field in response")?
        .to_owned();
    d.clients
        .autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name(&asg)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_id(lt_id)
                .build(),
        )
        .min_size(0)
        .max_size(3)
        .desired_capacity(0)
        .vpc_zone_identifier(&subnet)
        .send()
        .await?;
    d.clients
        .autoscaling
        .attach_instances()
        .auto_scaling_group_name(&asg)
        .instance_ids(&instance)
        .send()
        .await?;

    let tg = d
        .clients
        .elbv2
        .create_target_group()
        .name(
            unique("tg")
                .replace('-', "")
                .chars()
                .take(30)
                .collect::<String>(),
        )
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
        .send()
        .await?;
    let target_group = tg.target_groups()[0]
        .target_group_arn()
        .ok_or("missing field in response")?
        .to_owned();
    d.clients
        .elbv2
        .register_targets()
        .target_group_arn(&target_group)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id(&instance)
                .port(80)
                .build(),
        )
        .send()
        .await?;

    let described = ec2
        .describe_instances()
        .instance_ids(&instance)
        .send()
        .await?;
    let i = &described.reservations()[0].instances()[0];
    let enis = i
        .network_interfaces()
        .iter()
        .filter_map(|n| n.network_interface_id().map(str::to_owned))
        .collect();
    let volumes = i
        .block_device_mappings()
        .iter()
        .filter_map(|b| b.ebs()?.volume_id().map(str::to_owned))
        .collect();
    Ok(Workload {
        instance,
        enis,
        volumes,
        vpc,
        role,
        asg,
        target_group,
    })
}

/// Create what a sample event names, so it can be invoked against an empty emulator: the user
/// (with a real key, written back into the event), the role, or the instance.
pub async fn seed_for_event(d: &Deployment, event: &mut Value) -> Result<Vec<String>, BoxError> {
    let iam = &d.clients.iam;
    let mut seeded = Vec::new();
    let detail = &mut event["detail"];
    if detail["resource"].is_object() {
        let details = detail["resource"]["accessKeyDetails"].clone();
        let resource_type = detail["resource"]["resourceType"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let name = details["userName"].as_str().unwrap_or("").to_owned();
        match details["userType"].as_str() {
            Some("IAMUser") if resource_type == "AccessKey" => {
                let keys = seed_user(iam, &name, 2).await?;
                detail["resource"]["accessKeyDetails"]["accessKeyId"] = keys[0].clone().into();
                seeded.push(format!("user {name} with keys {keys:?}"));
            }
            Some("AssumedRole") => {
                seed_role(iam, &name).await?;
                seeded.push(format!("role {name}"));
            }
            _ => {}
        }
        if detail["resource"]["instanceDetails"]["instanceId"].is_string() {
            let w = seed_workload(d, &[]).await?;
            detail["resource"]["instanceDetails"]["instanceId"] = w.instance.clone().into();
            seeded.push(format!(
                "instance {} (2 interfaces, 2 volumes, profile {}, group {})",
                w.instance, w.role, w.asg
            ));
        }
    } else if detail["eventSource"].is_string() {
        let identity = detail["userIdentity"].clone();
        match identity["type"].as_str() {
            Some("IAMUser") => {
                let name = identity["userName"].as_str().unwrap_or("").to_owned();
                let keys = seed_user(iam, &name, 1).await?;
                detail["userIdentity"]["accessKeyId"] = keys[0].clone().into();
                seeded.push(format!("user {name} with key {}", keys[0]));
            }
            Some("AssumedRole") => {
                let name = identity["sessionContext"]["sessionIssuer"]["userName"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                seed_role(iam, &name).await?;
                seeded.push(format!("role {name}"));
            }
            _ => {}
        }
        if detail["eventName"] == "AttachUserPolicy" {
            if let Some(target) = detail["requestParameters"]["userName"].as_str() {
                let keys = seed_user(iam, target, 2).await?;
                seeded.push(format!("user {target} with keys {keys:?}"));
            }
        }
    }
    Ok(seeded)
}
