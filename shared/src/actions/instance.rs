//! EC2 actions on one instance: protect it, take it out of service, isolate every interface,
//! cut its credentials, snapshot its volumes, tag it.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ec2::types::{
    AttributeBooleanValue, AttributeValue, EbsInstanceBlockDeviceSpecification, Filter,
    InstanceAttributeName, InstanceBlockDeviceMappingSpecification, IpPermission, IpRange,
    Ipv6Range, ResourceType, Tag, TagSpecification,
};
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{
    converge, read_back, read_failed, skipped, Action, ActionRecord, Applied, Observed, Outcome,
};
use crate::aws::{aws, AwsError, Clients};
use crate::ids::{IncidentId, InstanceId};
use crate::policy::rfc3339_seconds;

pub const PURPOSE_TAG: &str = "cordon:purpose";
const UNTRACK: &str = "untrack";
const ISOLATION: &str = "isolation";

/// What the limits of a security-group swap are, for the person reading the record.
pub const TRACKING_NOTE: &str = "connections are cut by a two-step swap (allow-all untracked, then no rules); \
flows through NAT gateways, Network Load Balancers, Transit Gateway, PrivateLink and ICMP may stay tracked";

#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    pub id: String,
    pub vpc: String,
    pub groups: Vec<String>,
    pub primary: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    pub device: String,
    pub id: String,
    pub delete_on_termination: bool,
}

/// The instance as DescribeInstances shows it: read once, used by every action.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceFacts {
    pub id: InstanceId,
    pub state: String,
    /// Key to value. Whether a tag protects the instance is `protect::tag_verdict`'s to say.
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
    pub interfaces: Vec<Interface>,
    pub volumes: Vec<Volume>,
    pub profile_arn: Option<String>,
}

pub struct InstanceActions {
    ec2: aws_sdk_ec2::Client,
    autoscaling: aws_sdk_autoscaling::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    iam: aws_sdk_iam::Client,
}

fn tag(key: &str, value: impl Into<String>) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn filter(name: &str, value: impl Into<String>) -> Filter {
    Filter::builder().name(name).values(value).build()
}

impl InstanceActions {
    pub fn new(clients: &Clients) -> Self {
        Self {
            ec2: clients.ec2.clone(),
            autoscaling: clients.autoscaling.clone(),
            elbv2: clients.elbv2.clone(),
            iam: clients.iam.clone(),
        }
    }

    pub async fn describe(&self, id: &InstanceId) -> Result<InstanceFacts, AwsError> {
        let out = self
            .ec2
            .describe_instances()
            .instance_ids(id.as_str())
            .send()
            .await
            .map_err(aws)?;
        let instance = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .ok_or_else(|| AwsError {
                code: "InvalidInstanceID.NotFound".to_owned(),
                message: format!("instance {id} does not exist"),
            })?;
        let interfaces = instance
            .network_interfaces()
            .iter()
            .map(|n| Interface {
                id: n.network_interface_id().unwrap_or_default().to_owned(),
                vpc: n.vpc_id().unwrap_or_default().to_owned(),
                groups: n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect(),
                primary: n
                    .attachment()
                    .and_then(|a| a.device_index())
                    .is_some_and(|i| i == 0),
            })
            .collect();
        let volumes = instance
            .block_device_mappings()
            .iter()
            .filter_map(|b| {
                let ebs = b.ebs()?;
                Some(Volume {
                    device: b.device_name()?.to_owned(),
                    id: ebs.volume_id()?.to_owned(),
                    delete_on_termination: ebs.delete_on_termination().unwrap_or(false),
                })
            })
            .collect();
        Ok(InstanceFacts {
            id: id.clone(),
            state: instance
                .state()
                .and_then(|s| s.name())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            tags: instance
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
                .collect(),
            interfaces,
            volumes,
            profile_arn: instance
                .iam_instance_profile()
                .and_then(|p| p.arn())
                .map(str::to_owned),
        })
    }

    /// Termination protection, shutdown stops rather than terminates, volumes outlive the
    /// instance: the evidence survives an attacker's or an auto scaling group's terminate.
    pub async fn protect(&self, facts: &InstanceFacts, dry_run: bool) -> ActionRecord {
        let id = facts.id.as_str();
        let attribute = |name: InstanceAttributeName| {
            self.ec2
                .describe_instance_attribute()
                .instance_id(id)
                .attribute(name)
                .send()
        };
        let (termination, shutdown) = tokio::join!(
            attribute(InstanceAttributeName::DisableApiTermination),
            attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior),
        );
        let observed = termination.map_err(aws).and_then(|t| {
            let shutdown = shutdown.map_err(aws)?;
            let protected = t
                .disable_api_termination()
                .and_then(|v| v.value())
                .unwrap_or(false);
            let behaviour = shutdown
                .instance_initiated_shutdown_behavior()
                .and_then(|v| v.value())
                .unwrap_or("stop")
                .to_owned();
            let deleting: Vec<&Volume> = facts
                .volumes
                .iter()
                .filter(|v| v.delete_on_termination)
                .collect();
            Ok(Observed {
                in_place: protected && behaviour == "stop" && deleting.is_empty(),
                state: json!({
                    "termination_protection": protected,
                    "shutdown_behavior": behaviour,
                    "delete_on_termination": facts.volumes.iter()
                        .map(|v| (v.id.clone(), v.delete_on_termination))
                        .collect::<std::collections::BTreeMap<_, _>>(),
                }),
            })
        });
        converge(Action::ProtectInstance, id, dry_run, observed, || async {
            // One attribute per ModifyInstanceAttribute call, as EC2 requires.
            self.ec2
                .modify_instance_attribute()
                .instance_id(id)
                .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
                .send()
                .await
                .map_err(aws)?;
            self.ec2
                .modify_instance_attribute()
                .instance_id(id)
                .instance_initiated_shutdown_behavior(AttributeValue::builder().value("stop").build())
                .send()
                .await
                .map_err(aws)?;
            for v in facts.volumes.iter().filter(|v| v.delete_on_termination) {
                self.ec2
                    .modify_instance_attribute()
                    .instance_id(id)
                    .block_device_mappings(
                        InstanceBlockDeviceMappingSpecification::builder()
                            .device_name(&v.device)
                            .ebs(
                                EbsInstanceBlockDeviceSpecification::builder()
                                    .delete_on_termination(false)
                                    .build(),
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(aws)?;
            }
            Ok(json!({"termination_protection": true, "shutdown_behavior": "stop", "delete_on_termination": false}).into())
        })
        .await
    }

    /// Out of its Auto Scaling group without shrinking it, so the group neither terminates it
    /// nor stops serving.
    pub async fn detach_from_auto_scaling(&self, id: &InstanceId, dry_run: bool) -> ActionRecord {
        let group = self
            .autoscaling
            .describe_auto_scaling_instances()
            .instance_ids(id.as_str())
            .send()
            .await
            .map_err(aws)
            .map(|o| {
                o.auto_scaling_instances()
                    .first()
                    .and_then(|i| i.auto_scaling_group_name())
                    .map(str::to_owned)
            });
        let observed = group.clone().map(|g| Observed {
            in_place: g.is_none(),
            state: json!({"auto_scaling_group": g}),
        });
        converge(
            Action::DetachFromAutoScaling,
            id.as_str(),
            dry_run,
            observed,
            || async {
                let group = group.ok().flatten().unwrap_or_default();
                self.autoscaling
                    .detach_instances()
                    .auto_scaling_group_name(&group)
                    .instance_ids(id.as_str())
                    .should_decrement_desired_capacity(false)
                    .send()
                    .await
                    .map_err(aws)?;
                Ok(json!({"detached_from": group}).into())
            },
        )
        .await
    }

    /// Out of every ELBv2 target group that holds it.
    pub async fn deregister_from_target_groups(
        &self,
        id: &InstanceId,
        dry_run: bool,
    ) -> ActionRecord {
        let registered = self.target_groups_holding(id).await;
        let observed = registered.clone().map(|held| Observed {
            in_place: held.is_empty(),
            state: json!({"target_groups": held.iter().map(|(arn, port)| json!({"arn": arn, "port": port})).collect::<Vec<_>>()}),
        });
        converge(
            Action::DeregisterFromTargetGroups,
            id.as_str(),
            dry_run,
            observed,
            || async {
                let held = registered.unwrap_or_default();
                let jobs = held.iter().map(|(arn, port)| {
                    self.elbv2
                        .deregister_targets()
                        .target_group_arn(arn)
                        .targets(
                            TargetDescription::builder()
                                .id(id.as_str())
                                .set_port(*port)
                                .build(),
                        )
                        .send()
                });
                for r in futures::future::join_all(jobs).await {
                    r.map_err(aws)?;
                }
                Ok(Applied {
                    after: json!({"target_groups": []}),
                    note: Some("classic load balancers are not checked".to_owned()),
                    ..Applied::default()
                })
            },
        )
        .await
    }

    async fn target_groups_holding(
        &self,
        id: &InstanceId,
    ) -> Result<Vec<(String, Option<i32>)>, AwsError> {
        let mut arns = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .elbv2
                .describe_target_groups()
                .set_marker(marker)
                .send()
                .await
                .map_err(aws)?;
            arns.extend(
                page.target_groups()
                    .iter()
                    .filter(|t| t.target_type().is_none_or(|k| k.as_str() == "instance"))
                    .filter_map(|t| t.target_group_arn().map(str::to_owned)),
            );
            marker = page.next_marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        let health = arns.iter().map(|arn| async move {
            let out = self
                .elbv2
                .describe_target_health()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(aws)?;
            Ok::<_, AwsError>(
                out.target_health_descriptions()
                    .iter()
                    .filter_map(|d| d.target())
                    .filter(|t| t.id() == Some(id.as_str()))
                    .map(|t| (arn.clone(), t.port()))
                    .collect::<Vec<_>>(),
            )
        });
        let mut held = Vec::new();
        for r in futures::future::join_all(health).await {
            held.extend(r?);
        }
        Ok(held)
    }

    /// Find cordon's group of this purpose in the VPC, or create it; then make its rules match
    /// the purpose (repairing any drift, e.g. a rule someone added to the isolation group).
    async fn group(&self, vpc: &str, purpose: &str) -> Result<String, AwsError> {
        let found = self
            .ec2
            .describe_security_groups()
            .filters(filter("vpc-id", vpc))
            .filters(filter(&format!("tag:{PURPOSE_TAG}"), purpose))
            .send()
            .await
            .map_err(aws)?;
        let group = match found.security_groups().first() {
            Some(g) => g.clone(),
            None => {
                let created = self
                    .ec2
                    .create_security_group()
                    .vpc_id(vpc)
                    .group_name(format!("cordon-{purpose}"))
                    .description(format!(
                        "cordon incident response: {purpose} (managed by cordon, do not edit)"
                    ))
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::SecurityGroup)
                            .tags(tag(PURPOSE_TAG, purpose))
                            .tags(tag("Name", format!("cordon-{purpose}")))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(aws)?;
                let id = created.group_id().unwrap_or_default().to_owned();
                let described = self
                    .ec2
                    .describe_security_groups()
                    .group_ids(&id)
                    .send()
                    .await
                    .map_err(aws)?;
                described
                    .security_groups()
                    .first()
                    .cloned()
                    .ok_or_else(|| AwsError {
                        code: "InvalidGroup.NotFound".to_owned(),
                        message: format!("security group {id} vanished after creation"),
                    })?
            }
        };
        let id = group.group_id().unwrap_or_default().to_owned();
        let ingress = group.ip_permissions().to_vec();
        let egress = group.ip_permissions_egress().to_vec();
        if purpose == ISOLATION {
            // No rules at all: revoke what is there, whatever it is.
            if !egress.is_empty() {
                self.ec2
                    .revoke_security_group_egress()
                    .group_id(&id)
                    .set_ip_permissions(Some(egress))
                    .send()
                    .await
                    .map_err(aws)?;
            }
            if !ingress.is_empty() {
                self.ec2
                    .revoke_security_group_ingress()
                    .group_id(&id)
                    .set_ip_permissions(Some(ingress))
                    .send()
                    .await
                    .map_err(aws)?;
            }
        } else {
            let all = |rules: &[IpPermission]| {
                let v4 = rules.iter().any(|p| {
                    p.ip_protocol() == Some("-1")
                        && p.ip_ranges()
                            .iter()
                            .any(|r| r.cidr_ip() == Some("0.0.0.0/0"))
                });
                let v6 = rules.iter().any(|p| {
                    p.ip_protocol() == Some("-1")
                        && p.ipv6_ranges()
                            .iter()
                            .any(|r| r.cidr_ipv6() == Some("::/0"))
                });
                (v4, v6)
            };
            let wanted = |(v4, v6): (bool, bool)| {
                let mut p = IpPermission::builder().ip_protocol("-1");
                if !v4 {
                    p = p.ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build());
                }
                if !v6 {
                    p = p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build());
                }
                (!(v4 && v6)).then(|| p.build())
            };
            if let Some(p) = wanted(all(&ingress)) {
                self.ec2
                    .authorize_security_group_ingress()
                    .group_id(&id)
                    .ip_permissions(p)
                    .send()
                    .await
                    .map_err(aws)?;
            }
            if let Some(p) = wanted(all(&egress)) {
                self.ec2
                    .authorize_security_group_egress()
                    .group_id(&id)
                    .ip_permissions(p)
                    .send()
                    .await
                    .map_err(aws)?;
            }
        }
        Ok(id)
    }

    /// Every interface onto the VPC's isolation group, through the untracking group first.
    pub async fn isolate(&self, facts: &InstanceFacts, dry_run: bool) -> Vec<ActionRecord> {
        let mut vpcs: Vec<&str> = facts.interfaces.iter().map(|i| i.vpc.as_str()).collect();
        vpcs.sort_unstable();
        vpcs.dedup();
        let mut groups = HashMap::new();
        for vpc in vpcs {
            // Looking up (or, outside dry run, creating) the groups is itself a change to the
            // account; in dry run only an existing isolation group can be recognised.
            let pair = if dry_run {
                self.find_isolation_group(vpc)
                    .await
                    .map(|g| (String::new(), g))
            } else {
                match tokio::try_join!(self.group(vpc, UNTRACK), self.group(vpc, ISOLATION)) {
                    Ok((u, i)) => Ok((u, Some(i))),
                    Err(e) => Err(e),
                }
            };
            groups.insert(vpc, pair);
        }
        let jobs = facts.interfaces.iter().map(|eni| {
            let pair = groups.get(eni.vpc.as_str()).cloned();
            async move {
                let (untrack, isolation) = match pair {
                    Some(Ok(p)) => p,
                    Some(Err(e)) => return read_failed(Action::IsolateNetwork, eni.id.clone(), &e),
                    None => (String::new(), None),
                };
                let observed = Observed {
                    in_place: isolation
                        .as_ref()
                        .is_some_and(|i| eni.groups.len() == 1 && eni.groups[0] == *i),
                    state: json!({"interface": eni.id, "groups": eni.groups, "primary": eni.primary}),
                };
                converge(Action::IsolateNetwork, eni.id.clone(), dry_run, Ok(observed), || async {
                    let isolation = isolation.unwrap_or_default();
                    for step in [&untrack, &isolation] {
                        self.set_groups(&facts.id, eni, step).await?;
                    }
                    Ok(Applied {
                        after: json!({"interface": eni.id, "groups": [isolation]}),
                        note: Some(TRACKING_NOTE.to_owned()),
                        ..Applied::default()
                    })
                })
                .await
            }
        });
        let mut records = futures::future::join_all(jobs).await;
        // Read the changed interfaces back in one call once all have changed: the primary
        // interface's groups are also the instance's, set by its own call.
        let expected: HashMap<String, String> = records
            .iter()
            .filter(|r| r.outcome == Outcome::Succeeded)
            .filter_map(|r| {
                let eni = facts.interfaces.iter().find(|i| i.id == r.target)?;
                let (_, isolation) = groups.get(eni.vpc.as_str())?.as_ref().ok()?;
                Some((r.target.clone(), isolation.clone()?))
            })
            .collect();
        if !expected.is_empty() {
            let ids: Vec<String> = expected.keys().cloned().collect();
            let isolated = |found: &Result<HashMap<String, Vec<String>>, AwsError>, eni: &str| {
                found.as_ref().is_ok_and(|f| {
                    f.get(eni)
                        .is_some_and(|g| g.len() == 1 && Some(&g[0]) == expected.get(eni))
                })
            };
            let found = read_back(
                || self.interface_groups(&ids),
                |found| ids.iter().all(|eni| isolated(found, eni)),
            )
            .await;
            for r in records
                .iter_mut()
                .filter(|r| expected.contains_key(&r.target))
            {
                r.verified = Some(isolated(&found, &r.target));
            }
        }
        records
    }

    async fn find_isolation_group(&self, vpc: &str) -> Result<Option<String>, AwsError> {
        let found = self
            .ec2
            .describe_security_groups()
            .filters(filter("vpc-id", vpc))
            .filters(filter(&format!("tag:{PURPOSE_TAG}"), ISOLATION))
            .send()
            .await
            .map_err(aws)?;
        Ok(found
            .security_groups()
            .first()
            .and_then(|g| g.group_id())
            .map(str::to_owned))
    }

    /// Each interface's security groups, by interface id.
    async fn interface_groups(
        &self,
        enis: &[String],
    ) -> Result<HashMap<String, Vec<String>>, AwsError> {
        let out = self
            .ec2
            .describe_network_interfaces()
            .set_network_interface_ids(Some(enis.to_vec()))
            .send()
            .await
            .map_err(aws)?;
        Ok(out
            .network_interfaces()
            .iter()
            .filter_map(|i| {
                let groups = i
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned));
                Some((i.network_interface_id()?.to_owned(), groups.collect()))
            })
            .collect())
    }

    async fn set_groups(
        &self,
        instance: &InstanceId,
        eni: &Interface,
        group: &str,
    ) -> Result<(), AwsError> {
        self.ec2
            .modify_network_interface_attribute()
            .network_interface_id(&eni.id)
            .groups(group)
            .send()
            .await
            .map_err(aws)?;
        if eni.primary {
            // The instance-level attribute is the primary interface in AWS; moto keeps them
            // apart, so both are set and both agree.
            self.ec2
                .modify_instance_attribute()
                .instance_id(instance.as_str())
                .groups(group)
                .send()
                .await
                .map_err(aws)?;
        }
        Ok(())
    }

    /// Take the instance profile away, so no new role credentials reach the instance. Returns
    /// the record and the profile's roles, whose older sessions the caller revokes.
    pub async fn detach_profile(
        &self,
        facts: &InstanceFacts,
        dry_run: bool,
    ) -> (ActionRecord, Vec<String>) {
        let id = facts.id.as_str();
        let associations = self
            .ec2
            .describe_iam_instance_profile_associations()
            .filters(filter("instance-id", id))
            .send()
            .await
            .map_err(aws)
            .map(|o| {
                o.iam_instance_profile_associations()
                    .iter()
                    .filter(|a| {
                        a.state()
                            .is_some_and(|s| matches!(s.as_str(), "associated" | "associating"))
                    })
                    .filter_map(|a| {
                        Some((
                            a.association_id()?.to_owned(),
                            a.iam_instance_profile()?.arn()?.to_owned(),
                        ))
                    })
                    .collect::<Vec<_>>()
            });
        // The roles come from the profile we found, or from DescribeInstances on a repeat
        // (the association is gone by then, the sessions still need their cutoff).
        let profile = associations
            .as_ref()
            .ok()
            .and_then(|a| a.first().map(|(_, arn)| arn.clone()))
            .or_else(|| facts.profile_arn.clone());
        let roles = match &profile {
            Some(arn) => self.profile_roles(arn).await.unwrap_or_default(),
            None => Vec::new(),
        };
        let observed = associations.clone().map(|a| Observed {
            in_place: a.is_empty(),
            state: json!({"associations": a.iter().map(|(id, arn)| json!({"association_id": id, "instance_profile_arn": arn})).collect::<Vec<_>>()}),
        });
        let record = converge(
            Action::DetachInstanceProfile,
            id,
            dry_run,
            observed,
            || async {
                for (association, _) in associations.unwrap_or_default() {
                    self.ec2
                        .disassociate_iam_instance_profile()
                        .association_id(association)
                        .send()
                        .await
                        .map_err(aws)?;
                }
                Ok(json!({"associations": []}).into())
            },
        )
        .await;
        (record, roles)
    }

    async fn profile_roles(&self, arn: &str) -> Result<Vec<String>, AwsError> {
        let name = arn.rsplit('/').next().unwrap_or_default();
        let out = self
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(aws)?;
        Ok(out
            .instance_profile()
            .map(|p| p.roles().iter().map(|r| r.role_name().to_owned()).collect())
            .unwrap_or_default())
    }

    /// One snapshot per attached volume, tagged with the incident. Volumes that already have a
    /// snapshot for this incident are skipped, so repeats never pile up snapshots.
    pub async fn snapshot(
        &self,
        facts: &InstanceFacts,
        incident: &IncidentId,
        at: OffsetDateTime,
        dry_run: bool,
    ) -> Vec<ActionRecord> {
        let existing = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(filter("tag:cordon:incident", incident.as_str()))
            .send()
            .await
            .map_err(aws);
        let existing: Vec<(String, String)> = match existing {
            Ok(out) => out
                .snapshots()
                .iter()
                .filter_map(|s| Some((s.volume_id()?.to_owned(), s.snapshot_id()?.to_owned())))
                .collect(),
            Err(e) => return vec![read_failed(Action::SnapshotVolumes, facts.id.as_str(), &e)],
        };
        if facts.volumes.is_empty() {
            return vec![skipped(
                Action::SnapshotVolumes,
                facts.id.as_str(),
                "no EBS volumes attached",
            )];
        }
        let jobs = facts.volumes.iter().map(|v| {
            let taken = existing
                .iter()
                .find(|(vol, _)| *vol == v.id)
                .map(|(_, s)| s.clone());
            async move {
                let observed = Observed {
                    in_place: taken.is_some(),
                    state: json!({"volume": v.id, "device": v.device, "snapshot": taken}),
                };
                converge(
                    Action::SnapshotVolumes,
                    v.id.clone(),
                    dry_run,
                    Ok(observed),
                    || async {
                        let created = self
                            .ec2
                            .create_snapshot()
                            .volume_id(&v.id)
                            .description(format!(
                                "cordon evidence: {} {} incident {incident}",
                                facts.id, v.device
                            ))
                            .tag_specifications(
                                TagSpecification::builder()
                                    .resource_type(ResourceType::Snapshot)
                                    .tags(tag("cordon:incident", incident.as_str()))
                                    .tags(tag("cordon:instance", facts.id.as_str()))
                                    .tags(tag("cordon:device", &v.device))
                                    .tags(tag("cordon:incident-time", rfc3339_seconds(at)))
                                    .build(),
                            )
                            .send()
                            .await;
                        match created.map_err(aws) {
                            Ok(s) => Ok(json!({"snapshot": s.snapshot_id()}).into()),
                            // A regional limit, not a failure to contain: the next delivery (or a
                            // person re-invoking) takes the snapshot.
                            Err(e)
                                if e.is("ConcurrentSnapshotLimitExceeded")
                                    || e.is("SnapshotCreationPerVolumeRateExceeded") =>
                            {
                                Ok(Applied {
                                    deferred: Some(format!(
                                        "deferred, the next delivery retries: {e}"
                                    )),
                                    ..Applied::default()
                                })
                            }
                            Err(e) => Err(e),
                        }
                    },
                )
                .await
            }
        });
        futures::future::join_all(jobs).await
    }

    pub async fn stop(&self, facts: &InstanceFacts, dry_run: bool) -> ActionRecord {
        let observed = Ok(Observed {
            in_place: matches!(facts.state.as_str(), "stopped" | "stopping"),
            state: json!({"state": facts.state}),
        });
        converge(
            Action::StopInstance,
            facts.id.as_str(),
            dry_run,
            observed,
            || async {
                self.ec2
                    .stop_instances()
                    .instance_ids(facts.id.as_str())
                    .send()
                    .await
                    .map_err(aws)?;
                Ok(json!({"state": "stopping"}).into())
            },
        )
        .await
    }

    pub async fn tag(
        &self,
        facts: &InstanceFacts,
        incident: &IncidentId,
        at: OffsetDateTime,
        dry_run: bool,
    ) -> ActionRecord {
        let tags = self
            .ec2
            .describe_tags()
            .filters(filter("resource-id", facts.id.as_str()))
            .filters(filter("key", "cordon:incident"))
            .send()
            .await
            .map_err(aws)
            .map(|o| o.tags().first().and_then(|t| t.value()).map(str::to_owned));
        let observed = tags.map(|current| Observed {
            in_place: current.as_deref() == Some(incident.as_str()),
            state: json!({"cordon:incident": current}),
        });
        converge(
            Action::TagInstance,
            facts.id.as_str(),
            dry_run,
            observed,
            || async {
                self.ec2
                    .create_tags()
                    .resources(facts.id.as_str())
                    .tags(tag("cordon:incident", incident.as_str()))
                    .tags(tag("cordon:contained-at", rfc3339_seconds(at)))
                    .send()
                    .await
                    .map_err(aws)?;
                Ok(json!({"cordon:incident": incident}).into())
            },
        )
        .await
    }
}
