//! Take the instance out of service: out of its Auto Scaling group and out of every ELBv2
//! target group that sends it traffic, by instance id or (target type `ip`) by its addresses.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetTypeEnum};
use futures::StreamExt;
use serde_json::json;

use super::{InstanceActions, InstanceFacts};
use crate::actions::{converge, Action, ActionRecord, Applied, Observed};
use crate::aws::{aws, AwsError};
use crate::ids::InstanceId;

/// At most this many ELBv2 calls in flight: an account with hundreds of target groups must not
/// become hundreds of concurrent DescribeTargetHealth calls (ELBv2 throttles per account).
pub const ELB_CONCURRENCY: usize = 8;

/// Targets registered with an `ip` target group outside its own VPC (peered, on premises) are
/// in this zone; an address there is some other host's, whatever it equals.
const OUTSIDE_THE_VPC: &str = "all";

/// One target group and the target ids that would be this instance in it.
struct Candidate {
    arn: String,
    ids: BTreeSet<String>,
}

/// A target that is this instance, as registered.
#[derive(Clone)]
struct Held {
    group: String,
    target: TargetDescription,
}

impl Held {
    fn state(&self) -> serde_json::Value {
        json!({"arn": self.group, "id": self.target.id(), "port": self.target.port()})
    }
}

impl InstanceActions {
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
        facts: &InstanceFacts,
        dry_run: bool,
    ) -> ActionRecord {
        let registered = self.target_groups_holding(facts).await;
        let observed = registered.clone().map(|held| Observed {
            in_place: held.is_empty(),
            state: json!({"target_groups": held.iter().map(Held::state).collect::<Vec<_>>()}),
        });
        converge(
            Action::DeregisterFromTargetGroups,
            facts.id.as_str(),
            dry_run,
            observed,
            || async {
                let mut by_group: BTreeMap<String, Vec<TargetDescription>> = BTreeMap::new();
                for h in registered.unwrap_or_default() {
                    by_group.entry(h.group).or_default().push(h.target);
                }
                let calls = futures::stream::iter(by_group)
                    .map(|(arn, targets)| {
                        self.elbv2
                            .deregister_targets()
                            .target_group_arn(arn)
                            .set_targets(Some(targets))
                            .send()
                    })
                    .buffer_unordered(ELB_CONCURRENCY)
                    .collect::<Vec<_>>()
                    .await;
                for r in calls {
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

    /// Every target group, and the ids this instance would have in it: its id in an `instance`
    /// group; in an `ip` group, the addresses of its interfaces in that group's VPC (the same
    /// private address in another VPC is another host).
    async fn candidates(&self, facts: &InstanceFacts) -> Result<Vec<Candidate>, AwsError> {
        let mut candidates = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .elbv2
                .describe_target_groups()
                .set_marker(marker)
                .send()
                .await
                .map_err(aws)?;
            for t in page.target_groups() {
                let ids: BTreeSet<String> = match t.target_type() {
                    None | Some(TargetTypeEnum::Instance) => {
                        BTreeSet::from([facts.id.as_str().to_owned()])
                    }
                    Some(TargetTypeEnum::Ip) => facts
                        .interfaces
                        .iter()
                        .filter(|i| t.vpc_id() == Some(i.vpc.as_str()))
                        .flat_map(|i| i.addresses.iter().cloned())
                        .collect(),
                    // Lambda functions and load balancers are never this instance.
                    Some(_) => BTreeSet::new(),
                };
                if let (Some(arn), false) = (t.target_group_arn(), ids.is_empty()) {
                    candidates.push(Candidate {
                        arn: arn.to_owned(),
                        ids,
                    });
                }
            }
            marker = page.next_marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        Ok(candidates)
    }

    async fn target_groups_holding(&self, facts: &InstanceFacts) -> Result<Vec<Held>, AwsError> {
        let candidates = self.candidates(facts).await?;
        let health = futures::stream::iter(candidates)
            .map(|c| async move {
                let out = self
                    .elbv2
                    .describe_target_health()
                    .target_group_arn(&c.arn)
                    .send()
                    .await
                    .map_err(aws)?;
                Ok::<_, AwsError>(
                    out.target_health_descriptions()
                        .iter()
                        .filter_map(|d| d.target())
                        .filter(|t| t.id().is_some_and(|id| c.ids.contains(id)))
                        .filter(|t| t.availability_zone() != Some(OUTSIDE_THE_VPC))
                        .map(|t| Held {
                            group: c.arn.clone(),
                            target: t.clone(),
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .buffer_unordered(ELB_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut held = Vec::new();
        for r in health {
            held.extend(r?);
        }
        // The stream finishes in any order; the record lists them the same way every time.
        held.sort_by(|a, b| (&a.group, a.target.id()).cmp(&(&b.group, b.target.id())));
        Ok(held)
    }
}
