//! EC2 actions on one instance: protect it, take it out of service, isolate every interface,
//! cut its credentials, snapshot its volumes, tag it. Each job has its own module; this one
//! reads the instance once and holds the evidence actions.

mod groups;
mod network;
mod profile;
mod protect;
mod register;
mod service;

pub use profile::instance_revoke_document;
pub use service::ELB_CONCURRENCY;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{converge, read_failed, skipped, Action, ActionRecord, Applied, Observed};
use crate::aws::{aws, AwsError, Clients};
use crate::ids::{IncidentId, InstanceId};
use crate::policy::rfc3339_seconds;
use register::Register;

#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    pub id: String,
    pub vpc: String,
    pub groups: Vec<String>,
    pub primary: bool,
    /// Its private IPv4 and IPv6 addresses: what `ip` target groups know it by.
    pub addresses: Vec<String>,
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
    register: Register,
}

fn tag(key: &str, value: impl Into<String>) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn filter(name: &str, value: impl Into<String>) -> Filter {
    Filter::builder().name(name).values(value).build()
}

impl InstanceActions {
    /// `table` is the ledger table, where cordon remembers the groups it made and the
    /// profiles it took away.
    pub fn new(clients: &Clients, table: impl Into<String>) -> Self {
        Self {
            ec2: clients.ec2.clone(),
            autoscaling: clients.autoscaling.clone(),
            elbv2: clients.elbv2.clone(),
            iam: clients.iam.clone(),
            register: Register::new(clients.dynamodb.clone(), table),
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
                addresses: n
                    .private_ip_addresses()
                    .iter()
                    .filter_map(|a| a.private_ip_address())
                    .chain(n.private_ip_address())
                    .chain(n.ipv6_addresses().iter().filter_map(|a| a.ipv6_address()))
                    .map(str::to_owned)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
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
