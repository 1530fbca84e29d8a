//! Take back a snapshot or an image shared with an account outside ALLOWED_ACCOUNTS (or with
//! everyone): only the accounts the share added, read first, the rest of its permissions kept.

use aws_sdk_ec2::types::{
    ImageAttributeName, LaunchPermission, LaunchPermissionModifications, OperationType,
    PermissionGroup, SnapshotAttributeName,
};
use serde::Serialize;
use serde_json::json;

use super::{converge, Action, ActionRecord, Applied, Observed};
use crate::aws::{aws, AwsError};

/// A snapshot (`snap-…`) or an image (`ami-…`), by an id checked at the edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Shared {
    Snapshot(String),
    Image(String),
}

fn ec2_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

impl Shared {
    pub fn snapshot(id: &str) -> Option<Self> {
        ec2_id("snap-", id).then(|| Self::Snapshot(id.to_owned()))
    }

    pub fn image(id: &str) -> Option<Self> {
        ec2_id("ami-", id).then(|| Self::Image(id.to_owned()))
    }

    fn id(&self) -> &str {
        match self {
            Self::Snapshot(id) | Self::Image(id) => id,
        }
    }
}

/// Who may use it: account ids, and `all` for public.
type Grantees = Vec<String>;

pub struct ShareActions {
    ec2: aws_sdk_ec2::Client,
}

impl ShareActions {
    pub fn new(ec2: aws_sdk_ec2::Client) -> Self {
        Self { ec2 }
    }

    /// Remove `accounts` (ids or `all`) from what may use `shared`.
    pub async fn unshare(
        &self,
        shared: &Shared,
        accounts: &[String],
        dry_run: bool,
    ) -> ActionRecord {
        let observed = self.grantees(shared).await.map(|now| {
            let outside: Vec<&String> = accounts.iter().filter(|a| now.contains(a)).collect();
            Observed {
                in_place: outside.is_empty(),
                state: json!({"shared_with": now}),
            }
        });
        converge(
            Action::RemoveShare,
            shared.id(),
            dry_run,
            observed,
            || async {
                self.remove(shared, accounts).await?;
                let left = self.grantees(shared).await?;
                Ok(Applied {
                    verified: Some(!accounts.iter().any(|a| left.contains(a))),
                    after: json!({"shared_with": left, "removed": accounts}),
                    ..Applied::default()
                })
            },
        )
        .await
    }

    async fn grantees(&self, shared: &Shared) -> Result<Grantees, AwsError> {
        let pick = |user: Option<&str>, group: Option<&PermissionGroup>| {
            user.map(str::to_owned)
                .or_else(|| group.map(|g| g.as_str().to_owned()))
        };
        Ok(match shared {
            Shared::Snapshot(id) => self
                .ec2
                .describe_snapshot_attribute()
                .snapshot_id(id)
                .attribute(SnapshotAttributeName::CreateVolumePermission)
                .send()
                .await
                .map_err(aws)?
                .create_volume_permissions()
                .iter()
                .filter_map(|p| pick(p.user_id(), p.group()))
                .collect(),
            Shared::Image(id) => self
                .ec2
                .describe_image_attribute()
                .image_id(id)
                .attribute(ImageAttributeName::LaunchPermission)
                .send()
                .await
                .map_err(aws)?
                .launch_permissions()
                .iter()
                .filter_map(|p| pick(p.user_id(), p.group()))
                .collect(),
        })
    }

    async fn remove(&self, shared: &Shared, accounts: &[String]) -> Result<(), AwsError> {
        let all = |a: &String| a == "all";
        match shared {
            // The OperationType form (EC2 takes it and the CreateVolumePermission form alike).
            Shared::Snapshot(id) => {
                let (groups, users): (Vec<&String>, Vec<&String>) =
                    accounts.iter().partition(|a| all(a));
                self.ec2
                    .modify_snapshot_attribute()
                    .snapshot_id(id)
                    .attribute(SnapshotAttributeName::CreateVolumePermission)
                    .operation_type(OperationType::Remove)
                    .set_user_ids(Some(users.into_iter().cloned().collect()))
                    .set_group_names((!groups.is_empty()).then(|| vec!["all".to_owned()]))
                    .send()
                    .await
                    .map(drop)
                    .map_err(aws)
            }
            Shared::Image(id) => {
                let remove = accounts.iter().map(|a| {
                    let p = LaunchPermission::builder();
                    if all(a) {
                        p.group(PermissionGroup::All)
                    } else {
                        p.user_id(a)
                    }
                    .build()
                });
                self.ec2
                    .modify_image_attribute()
                    .image_id(id)
                    .launch_permission(
                        LaunchPermissionModifications::builder()
                            .set_remove(Some(remove.collect()))
                            .build(),
                    )
                    .send()
                    .await
                    .map(drop)
                    .map_err(aws)
            }
        }
    }
}
