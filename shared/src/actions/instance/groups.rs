//! cordon's own security groups, one per VPC and purpose: the untracking group (allow-all both
//! ways) and the isolation group (no rules at all).
//!
//! cordon uses and repairs only a group it created itself: registered in its table when it was
//! created, and still in that VPC, named and tagged as cordon made it. Neither a tag (anyone
//! with `ec2:CreateTags` can tag sg-prod `cordon:purpose`) nor a name (anyone can create
//! `cordon-isolation` first) proves that. Any other group is left untouched, and the record
//! names those that carry cordon's tag. The role's policy backs this up: it tags a group only
//! while creating it, and rewrites or deletes a group only while it carries the tag.

use std::fmt;

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroup, TagSpecification,
};
use serde::Serialize;
use time::OffsetDateTime;

use super::{filter, tag, InstanceActions};
use crate::aws::{aws, AwsError};

pub(super) const PURPOSE_TAG: &str = "cordon:purpose";

/// Names tried for a new group before a name someone else holds counts as a failure.
const NAME_TRIES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Untrack,
    Isolation,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Untrack => "untrack",
            Self::Isolation => "isolation",
        }
    }

    /// The start of the names cordon gives its groups; the rest makes each name new, so a
    /// group someone else named first never stands in the way.
    fn name_prefix(self) -> String {
        format!("cordon-{}-", self.as_str())
    }
}

/// `sg-` and 8 or 17 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct GroupId(String);

impl GroupId {
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sg-")?;
        ((hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn missing(what: &str) -> AwsError {
    AwsError {
        code: "MissingField".to_owned(),
        message: format!("EC2's answer has no {what}"),
    }
}

/// Whether `group` is the one cordon made for `purpose` in `vpc`.
fn made_by_cordon(group: &SecurityGroup, vpc: &str, purpose: Purpose) -> bool {
    group.vpc_id() == Some(vpc)
        && group
            .group_name()
            .is_some_and(|n| n.starts_with(&purpose.name_prefix()))
        && group
            .tags()
            .iter()
            .any(|t| t.key() == Some(PURPOSE_TAG) && t.value() == Some(purpose.as_str()))
}

/// The allow-all rule (any protocol, IPv4 and IPv6) the untracking group wants and `rules`
/// lack, if they lack any of it.
fn missing_allow_all(rules: &[IpPermission]) -> Option<IpPermission> {
    let all = |v6: bool| {
        rules.iter().any(|p| {
            p.ip_protocol() == Some("-1")
                && if v6 {
                    p.ipv6_ranges()
                        .iter()
                        .any(|r| r.cidr_ipv6() == Some("::/0"))
                } else {
                    p.ip_ranges()
                        .iter()
                        .any(|r| r.cidr_ip() == Some("0.0.0.0/0"))
                }
        })
    };
    let (v4, v6) = (all(false), all(true));
    let mut p = IpPermission::builder().ip_protocol("-1");
    if !v4 {
        p = p.ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build());
    }
    if !v6 {
        p = p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build());
    }
    (!(v4 && v6)).then(|| p.build())
}

impl InstanceActions {
    /// Whether `id` is a group cordon made and registered: a call on it by anyone else is
    /// tampering (rule `cordon-tampered`), whatever the call's record says about its name.
    pub async fn is_cordons_group(&self, id: &str) -> Result<bool, AwsError> {
        match GroupId::parse(id) {
            Some(id) => self.register.owns(&id).await,
            None => Ok(false),
        }
    }

    /// cordon's registered group for `purpose` in `vpc`, if it still is cordon's.
    pub(super) async fn find_own_group(
        &self,
        vpc: &str,
        purpose: Purpose,
    ) -> Result<Option<(GroupId, SecurityGroup)>, AwsError> {
        let Some(id) = self.register.group(vpc, purpose).await? else {
            return Ok(None);
        };
        Ok(self.own(vpc, purpose, &id).await?.map(|g| (id, g)))
    }

    async fn own(
        &self,
        vpc: &str,
        purpose: Purpose,
        id: &GroupId,
    ) -> Result<Option<SecurityGroup>, AwsError> {
        let found = self
            .ec2
            .describe_security_groups()
            .group_ids(id.as_str())
            .send()
            .await
            .map_err(aws);
        match found {
            Ok(out) => Ok(out
                .security_groups()
                .first()
                .filter(|g| made_by_cordon(g, vpc, purpose))
                .cloned()),
            Err(e) if e.is("InvalidGroup.NotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// cordon's group for `purpose` in `vpc`, created (and registered) if there is none, with
    /// its rules made to match the purpose: drift, such as a rule someone added to the
    /// isolation group, is repaired.
    pub(super) async fn own_group(&self, vpc: &str, purpose: Purpose) -> Result<GroupId, AwsError> {
        let registered = self.register.group(vpc, purpose).await?;
        if let Some(id) = &registered {
            if let Some(group) = self.own(vpc, purpose, id).await? {
                self.repair(id, &group, purpose).await?;
                return Ok(id.clone());
            }
            // Deleted, or no longer tagged as cordon's: left as it is, replaced below.
            tracing::warn!(group = %id, vpc, purpose = purpose.as_str(), "registered group is no longer cordon's");
        }
        let (id, group) = self.create_group(vpc, purpose).await?;
        if self
            .register
            .claim_group(vpc, purpose, &id, registered.as_ref())
            .await?
        {
            self.repair(&id, &group, purpose).await?;
            return Ok(id);
        }
        // Another invocation registered its group first: that one is used, ours goes.
        if let Err(e) = self
            .ec2
            .delete_security_group()
            .group_id(id.as_str())
            .send()
            .await
        {
            tracing::warn!(group = %id, error = %aws(e), "could not delete a group another invocation's made redundant");
        }
        let (winner, group) = self
            .find_own_group(vpc, purpose)
            .await?
            .ok_or_else(|| AwsError {
                code: "GroupNotCordons".to_owned(),
                message: format!(
                    "the {} group registered for {vpc} is not cordon's",
                    purpose.as_str()
                ),
            })?;
        self.repair(&winner, &group, purpose).await?;
        Ok(winner)
    }

    async fn create_group(
        &self,
        vpc: &str,
        purpose: Purpose,
    ) -> Result<(GroupId, SecurityGroup), AwsError> {
        // Someone may have taken a name first (the names are guessable): a new name, then.
        let mut tries = 0;
        let created = loop {
            let name = format!(
                "{}{}",
                purpose.name_prefix(),
                OffsetDateTime::now_utc().unix_timestamp_nanos()
            );
            let created = self
                .ec2
                .create_security_group()
                .vpc_id(vpc)
                .group_name(&name)
                .description(format!(
                    "cordon incident response: {} (created and managed by cordon, do not edit)",
                    purpose.as_str()
                ))
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroup)
                        .tags(tag(PURPOSE_TAG, purpose.as_str()))
                        .tags(tag("Name", &name))
                        .build(),
                )
                .send()
                .await
                .map_err(aws);
            tries += 1;
            match created {
                Err(e) if e.is("InvalidGroup.Duplicate") && tries < NAME_TRIES => continue,
                other => break other?,
            }
        };
        let id = created
            .group_id()
            .and_then(GroupId::parse)
            .ok_or_else(|| missing("group id"))?;
        let described = self
            .ec2
            .describe_security_groups()
            .group_ids(id.as_str())
            .send()
            .await
            .map_err(aws)?;
        let group = described
            .security_groups()
            .first()
            .cloned()
            .ok_or_else(|| missing("group just created"))?;
        Ok((id, group))
    }

    async fn repair(
        &self,
        id: &GroupId,
        group: &SecurityGroup,
        purpose: Purpose,
    ) -> Result<(), AwsError> {
        let ingress = group.ip_permissions().to_vec();
        let egress = group.ip_permissions_egress().to_vec();
        match purpose {
            Purpose::Isolation => {
                // No rules at all: revoke what is there, whatever it is.
                if !egress.is_empty() {
                    self.ec2
                        .revoke_security_group_egress()
                        .group_id(id.as_str())
                        .set_ip_permissions(Some(egress))
                        .send()
                        .await
                        .map_err(aws)?;
                }
                if !ingress.is_empty() {
                    self.ec2
                        .revoke_security_group_ingress()
                        .group_id(id.as_str())
                        .set_ip_permissions(Some(ingress))
                        .send()
                        .await
                        .map_err(aws)?;
                }
            }
            Purpose::Untrack => {
                if let Some(p) = missing_allow_all(&ingress) {
                    self.ec2
                        .authorize_security_group_ingress()
                        .group_id(id.as_str())
                        .ip_permissions(p)
                        .send()
                        .await
                        .map_err(aws)?;
                }
                if let Some(p) = missing_allow_all(&egress) {
                    self.ec2
                        .authorize_security_group_egress()
                        .group_id(id.as_str())
                        .ip_permissions(p)
                        .send()
                        .await
                        .map_err(aws)?;
                }
            }
        }
        Ok(())
    }

    /// The groups in `vpc` that carry cordon's tag but are none of `ours`: someone tagged them
    /// (or an older cordon made them). cordon leaves them alone; the record says which.
    pub(super) async fn lookalikes(
        &self,
        vpc: &str,
        ours: &[&GroupId],
    ) -> Result<Vec<String>, AwsError> {
        let found = self
            .ec2
            .describe_security_groups()
            .filters(filter("vpc-id", vpc))
            .filters(filter("tag-key", PURPOSE_TAG))
            .send()
            .await
            .map_err(aws)?;
        let mut ids: Vec<String> = found
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id())
            .filter(|id| !ours.iter().any(|o| o.as_str() == *id))
            .map(str::to_owned)
            .collect();
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids() {
        assert!(GroupId::parse("sg-0123456789abcdef0").is_some());
        assert!(GroupId::parse("sg-12345678").is_some());
        for bad in [
            "sg-",
            "sg-xyz12345",
            "vpc-12345678",
            "sg-12345678 OR 1=1",
            "",
        ] {
            assert!(GroupId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn allow_all_is_added_only_where_missing() {
        let v4 = IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        let wanted = missing_allow_all(std::slice::from_ref(&v4)).unwrap();
        assert!(wanted.ip_ranges().is_empty());
        assert_eq!(wanted.ipv6_ranges()[0].cidr_ipv6(), Some("::/0"));
        let both = IpPermission::builder()
            .ip_protocol("-1")
            .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
            .build();
        assert!(missing_allow_all(&[v4, both]).is_none());
    }
}
