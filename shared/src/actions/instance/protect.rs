//! Keep the evidence through a terminate: termination protection, shutdown stops rather than
//! terminates, volumes outlive the instance. Each is applied and recorded on its own, so one
//! that EC2 refuses (a Spot instance takes no termination protection) never keeps the others,
//! the volumes above all, from being applied.

use aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput;
use aws_sdk_ec2::operation::modify_instance_attribute::builders::ModifyInstanceAttributeFluentBuilder;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, AttributeValue, EbsInstanceBlockDeviceSpecification,
    InstanceAttributeName, InstanceBlockDeviceMappingSpecification,
};
use serde_json::{json, Value};

use super::{InstanceActions, InstanceFacts, Volume};
use crate::actions::{converge, Action, ActionRecord, Applied, Observed};
use crate::aws::{aws, AwsError};

/// One instance attribute that keeps the instance from being terminated.
#[derive(Clone, Copy)]
enum Guard {
    Termination,
    Shutdown,
}

impl Guard {
    fn attribute(self) -> InstanceAttributeName {
        match self {
            Self::Termination => InstanceAttributeName::DisableApiTermination,
            Self::Shutdown => InstanceAttributeName::InstanceInitiatedShutdownBehavior,
        }
    }

    /// (in place, the state found)
    fn found(self, out: &DescribeInstanceAttributeOutput) -> (bool, Value) {
        match self {
            Self::Termination => {
                let on = out
                    .disable_api_termination()
                    .and_then(|v| v.value())
                    .unwrap_or(false);
                (on, json!({"termination_protection": on}))
            }
            Self::Shutdown => {
                let behaviour = out
                    .instance_initiated_shutdown_behavior()
                    .and_then(|v| v.value())
                    .unwrap_or("stop");
                (behaviour == "stop", json!({"shutdown_behavior": behaviour}))
            }
        }
    }

    fn set(
        self,
        call: ModifyInstanceAttributeFluentBuilder,
    ) -> ModifyInstanceAttributeFluentBuilder {
        match self {
            Self::Termination => {
                call.disable_api_termination(AttributeBooleanValue::builder().value(true).build())
            }
            Self::Shutdown => call.instance_initiated_shutdown_behavior(
                AttributeValue::builder().value("stop").build(),
            ),
        }
    }

    fn wanted(self) -> Value {
        match self {
            Self::Termination => json!({"termination_protection": true}),
            Self::Shutdown => json!({"shutdown_behavior": "stop"}),
        }
    }
}

/// EC2 refuses some attributes for some instances for good (termination protection on a Spot
/// instance): no retry changes that, so it is recorded as skipped with EC2's reason, not failed.
fn refused_for_good(result: Result<Applied, AwsError>) -> Result<Applied, AwsError> {
    match result {
        Err(e) if e.is("UnsupportedOperation") => Ok(Applied {
            deferred: Some(format!(
                "EC2 does not support this for this instance (a Spot instance takes no termination protection), so no retry would change it; the other protections are applied on their own: {e}"
            )),
            ..Applied::default()
        }),
        other => other,
    }
}

impl InstanceActions {
    /// One record per guard and one per volume (target: `<instance>/<attribute>`, the volume id).
    pub async fn protect(&self, facts: &InstanceFacts, dry_run: bool) -> Vec<ActionRecord> {
        let guards = [Guard::Termination, Guard::Shutdown].map(|g| self.guard(facts, g, dry_run));
        let volumes = facts
            .volumes
            .iter()
            .map(|v| self.keep_volume(facts, v, dry_run));
        let (mut records, volumes) = tokio::join!(
            futures::future::join_all(guards),
            futures::future::join_all(volumes)
        );
        records.extend(volumes);
        records
    }

    async fn guard(&self, facts: &InstanceFacts, guard: Guard, dry_run: bool) -> ActionRecord {
        let id = facts.id.as_str();
        let attribute = guard.attribute();
        let observed = self
            .ec2
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(attribute.clone())
            .send()
            .await
            .map_err(aws)
            .map(|out| {
                let (in_place, state) = guard.found(&out);
                Observed { state, in_place }
            });
        let target = format!("{id}/{}", attribute.as_str());
        converge(
            Action::ProtectInstance,
            target,
            dry_run,
            observed,
            || async {
                // One attribute per ModifyInstanceAttribute call, as EC2 requires.
                let applied = guard
                    .set(self.ec2.modify_instance_attribute().instance_id(id))
                    .send()
                    .await
                    .map(|_| guard.wanted().into())
                    .map_err(aws);
                refused_for_good(applied)
            },
        )
        .await
    }

    async fn keep_volume(&self, facts: &InstanceFacts, v: &Volume, dry_run: bool) -> ActionRecord {
        let observed = Ok(Observed {
            in_place: !v.delete_on_termination,
            state: json!({"volume": v.id, "device": v.device, "delete_on_termination": v.delete_on_termination}),
        });
        converge(
            Action::ProtectInstance,
            v.id.clone(),
            dry_run,
            observed,
            || async {
                let applied = self
                    .ec2
                    .modify_instance_attribute()
                    .instance_id(facts.id.as_str())
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
                    .map(|_| json!({"volume": v.id, "delete_on_termination": false}).into())
                    .map_err(aws);
                refused_for_good(applied)
            },
        )
        .await
    }
}
