//! What cordon remembers between deliveries, in the ledger table, about what it made and what it
//! found: the security groups it created (a tag is no proof of that, anyone may set one), and the
//! instance profiles and roles an instance had (gone from EC2 once the profile is disassociated,
//! still needed to revoke and verify on a retry).
//!
//! Items (beside the ledger's `INCIDENT#` and `RATE#` items, in none of its indexes):
//! - `VPC#<vpc-id>` / `GROUP#<purpose>`: `group_id`, `created_at`.
//! - `GROUP#<group-id>` / `CORDON`: `vpc`, `purpose`: the same group by id, for a CloudTrail
//!   record that names the group by id alone (a rule added to cordon's isolation group).
//! - `INSTANCE#<instance-id>` / `PROFILE`: `instance_profiles` and `roles`, string sets that
//!   only grow.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::groups::{GroupId, Purpose};
use crate::actions::rfc3339_millis;
use crate::aws::{aws, AwsError};
use crate::ids::InstanceId;

pub struct Register {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// An instance's profiles and their roles, as far as cordon has seen them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remembered {
    pub profiles: BTreeSet<String>,
    pub roles: BTreeSet<String>,
}

impl Remembered {
    pub fn holds(&self, other: &Self) -> bool {
        self.profiles.is_superset(&other.profiles) && self.roles.is_superset(&other.roles)
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn group_key(vpc: &str, purpose: Purpose) -> [(&'static str, AttributeValue); 2] {
    [
        ("pk", s(format!("VPC#{vpc}"))),
        ("sk", s(format!("GROUP#{}", purpose.as_str()))),
    ]
}

fn owned_key(group: &GroupId) -> [(&'static str, AttributeValue); 2] {
    [("pk", s(format!("GROUP#{group}"))), ("sk", s("CORDON"))]
}

fn profile_key(instance: &InstanceId) -> [(&'static str, AttributeValue); 2] {
    [
        ("pk", s(format!("INSTANCE#{instance}"))),
        ("sk", s("PROFILE")),
    ]
}

fn strings(item: &HashMap<String, AttributeValue>, name: &str) -> BTreeSet<String> {
    item.get(name)
        .and_then(|v| v.as_ss().ok())
        .map(|v| v.iter().cloned().collect())
        .unwrap_or_default()
}

impl Register {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get(
        &self,
        key: [(&'static str, AttributeValue); 2],
    ) -> Result<Option<HashMap<String, AttributeValue>>, AwsError> {
        let [(pk, pv), (sk, sv)] = key;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(pk, pv)
            .key(sk, sv)
            .consistent_read(true)
            .send()
            .await
            .map_err(aws)?;
        Ok(out.item().cloned())
    }

    /// The group cordon created for `purpose` in `vpc`, if it registered one. A value that is
    /// not a group id (the table is writable by more than cordon) counts as none.
    pub async fn group(&self, vpc: &str, purpose: Purpose) -> Result<Option<GroupId>, AwsError> {
        let item = self.get(group_key(vpc, purpose)).await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get("group_id"))
            .and_then(|v| v.as_s().ok())
            .and_then(|id| GroupId::parse(id)))
    }

    /// Register `group` as cordon's, in place of `replacing` (the registered group, found no
    /// longer cordon's) or of none. `false`: another invocation registered a group first.
    pub async fn claim_group(
        &self,
        vpc: &str,
        purpose: Purpose,
        group: &GroupId,
        replacing: Option<&GroupId>,
    ) -> Result<bool, AwsError> {
        let [(pk, pv), (sk, sv)] = group_key(vpc, purpose);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(pk, pv)
            .key(sk, sv)
            .update_expression("SET group_id = :new, created_at = :at")
            .expression_attribute_values(":new", s(group.as_str()))
            .expression_attribute_values(":at", s(rfc3339_millis(OffsetDateTime::now_utc())));
        update = match replacing {
            Some(old) => update
                .condition_expression("group_id = :old")
                .expression_attribute_values(":old", s(old.as_str())),
            None => update.condition_expression("attribute_not_exists(group_id)"),
        };
        match update.send().await.map_err(aws) {
            Ok(_) => {}
            Err(e) if e.is("ConditionalCheckFailedException") => return Ok(false),
            Err(e) => return Err(e),
        }
        let [(pk, pv), (sk, sv)] = owned_key(group);
        self.client
            .put_item()
            .table_name(&self.table)
            .item(pk, pv)
            .item(sk, sv)
            .item("vpc", s(vpc))
            .item("purpose", s(purpose.as_str()))
            .send()
            .await
            .map_err(aws)?;
        Ok(true)
    }

    /// Whether cordon made and registered the group `id` (in any VPC).
    pub async fn owns(&self, id: &GroupId) -> Result<bool, AwsError> {
        Ok(self.get(owned_key(id)).await?.is_some())
    }

    pub async fn profiles(&self, instance: &InstanceId) -> Result<Remembered, AwsError> {
        let item = self.get(profile_key(instance)).await?.unwrap_or_default();
        Ok(Remembered {
            profiles: strings(&item, "instance_profiles"),
            roles: strings(&item, "roles"),
        })
    }

    /// Adds to what is remembered, never removes: a profile swapped or a role taken out of it
    /// later must not make cordon forget what the instance's credentials could act as.
    pub async fn remember_profiles(
        &self,
        instance: &InstanceId,
        seen: &Remembered,
    ) -> Result<(), AwsError> {
        let sets = [
            ("instance_profiles", &seen.profiles),
            ("roles", &seen.roles),
        ];
        // DynamoDB refuses empty sets: only what holds something is added.
        let adds: Vec<_> = sets.iter().filter(|(_, v)| !v.is_empty()).collect();
        if adds.is_empty() {
            return Ok(());
        }
        let [(pk, pv), (sk, sv)] = profile_key(instance);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(pk, pv)
            .key(sk, sv);
        let mut clauses = Vec::new();
        for (name, values) in adds {
            // Behind placeholders: `roles` is one of DynamoDB's reserved words.
            clauses.push(format!("#{name} :{name}"));
            update = update
                .expression_attribute_names(format!("#{name}"), *name)
                .expression_attribute_values(
                    format!(":{name}"),
                    AttributeValue::Ss(values.iter().cloned().collect()),
                );
        }
        update
            .update_expression(format!("ADD {}", clauses.join(", ")))
            .send()
            .await
            .map_err(aws)?;
        Ok(())
    }
}
