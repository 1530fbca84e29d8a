//! Take every interface off the network: onto cordon's untracking group (allow-all, so EC2 stops
//! tracking the open connections), then onto its isolation group (no rules), which ends them.
//!
//! The swap fails safe. Without a usable untracking group (an SCP or Firewall Manager forbids
//! `0.0.0.0/0`), an interface goes straight into isolation and the record says tracked flows
//! may persist. An interface never stays on the allow-all group: if the second step fails after
//! retries, its original groups are put back, and the record says which happened.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use serde_json::json;

use super::groups::{GroupId, Purpose, PURPOSE_TAG};
use super::{InstanceActions, InstanceFacts, Interface};
use crate::actions::{
    converge, read_back, read_failed, Action, ActionRecord, Applied, Observed, Outcome,
};
use crate::aws::{aws, AwsError};
use crate::ids::InstanceId;

/// What the limits of a security-group swap are, for the person reading the record.
const TRACKING_NOTE: &str = "connections are cut by a two-step swap (allow-all untracked, then no rules); \
flows through NAT gateways, Network Load Balancers, Transit Gateway, PrivateLink and ICMP may stay tracked";

/// Waits before the second and third try of a group change that must not be left half done.
const RETRY_WAITS_MS: [u64; 2] = [200, 600];

/// A VPC's groups, as found (and outside dry run, made) for its interfaces.
struct VpcGroups {
    /// `None` only in dry run, where nothing is created.
    isolation: Result<Option<GroupId>, AwsError>,
    /// Why there is no usable untracking group, when there is none.
    untrack: Result<GroupId, AwsError>,
    /// Groups tagged as cordon's that cordon did not create, left untouched.
    lookalikes: Option<String>,
}

async fn with_retries<F, Fut>(call: F) -> Result<(), AwsError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), AwsError>>,
{
    let mut last = call().await;
    for wait in RETRY_WAITS_MS {
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(wait)).await;
        last = call().await;
    }
    last
}

impl InstanceActions {
    async fn vpc_groups(&self, vpc: &str, dry_run: bool) -> VpcGroups {
        let (isolation, untrack) = if dry_run {
            // Looking up (or creating) groups is itself a change to the account; in dry run
            // only an existing isolation group can be recognised.
            let found = self.find_own_group(vpc, Purpose::Isolation).await;
            let untrack = Err(AwsError {
                code: "DryRun".to_owned(),
                message: "dry run makes no groups".to_owned(),
            });
            (found.map(|f| f.map(|(id, _)| id)), untrack)
        } else {
            let (isolation, untrack) = tokio::join!(
                self.own_group(vpc, Purpose::Isolation),
                self.own_group(vpc, Purpose::Untrack)
            );
            (isolation.map(Some), untrack)
        };
        let ours: Vec<&GroupId> = [
            isolation.as_ref().ok().and_then(Option::as_ref),
            untrack.as_ref().ok(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let lookalikes = match self.lookalikes(vpc, &ours).await {
            Ok(ids) if ids.is_empty() => None,
            Ok(ids) => Some(format!(
                "groups tagged {} that cordon did not create were left untouched: {}",
                PURPOSE_TAG,
                ids.join(", ")
            )),
            Err(e) => Some(format!(
                "could not look for groups tagged {} that cordon did not create: {e}",
                PURPOSE_TAG
            )),
        };
        VpcGroups {
            isolation,
            untrack,
            lookalikes,
        }
    }

    /// Every interface onto its VPC's isolation group, through the untracking group first.
    pub async fn isolate(&self, facts: &InstanceFacts, dry_run: bool) -> Vec<ActionRecord> {
        let mut vpcs: Vec<&str> = facts.interfaces.iter().map(|i| i.vpc.as_str()).collect();
        vpcs.sort_unstable();
        vpcs.dedup();
        let mut groups = HashMap::new();
        for vpc in vpcs {
            groups.insert(vpc, self.vpc_groups(vpc, dry_run).await);
        }
        let jobs = facts.interfaces.iter().map(|eni| {
            let vpc = groups.get(eni.vpc.as_str());
            async move {
                let Some(vpc) = vpc else {
                    return read_failed(Action::IsolateNetwork, eni.id.clone(), &no_vpc(eni));
                };
                let isolation = match &vpc.isolation {
                    Ok(i) => i.clone(),
                    Err(e) => return read_failed(Action::IsolateNetwork, eni.id.clone(), e),
                };
                let observed = Observed {
                    in_place: isolation
                        .as_ref()
                        .is_some_and(|i| eni.groups.len() == 1 && eni.groups[0] == i.as_str()),
                    state: json!({"interface": eni.id, "groups": eni.groups, "primary": eni.primary}),
                };
                converge(Action::IsolateNetwork, eni.id.clone(), dry_run, Ok(observed), || async {
                    let isolation = isolation.ok_or_else(|| no_vpc(eni))?;
                    self.swap(&facts.id, eni, &isolation, vpc).await
                })
                .await
            }
        });
        let mut records = futures::future::join_all(jobs).await;
        self.read_back_isolation(facts, &groups, &mut records).await;
        records
    }

    /// One interface, untracking group then isolation group, failing safe as the module says.
    async fn swap(
        &self,
        instance: &InstanceId,
        eni: &Interface,
        isolation: &GroupId,
        vpc: &VpcGroups,
    ) -> Result<Applied, AwsError> {
        let mut notes = Vec::new();
        // A failed first step may still have moved the interface (the primary interface takes
        // two calls), so once tried, the untracking group counts as possibly in place.
        let tried = vpc.untrack.as_ref().ok();
        let via = match &vpc.untrack {
            Ok(untrack) => match self.set_groups(instance, eni, &[untrack.as_str()]).await {
                Ok(()) => Some(untrack),
                Err(e) => {
                    notes.push(format!(
                        "the untracking group {untrack} could not be used ({e})"
                    ));
                    None
                }
            },
            Err(e) => {
                notes.push(format!("no untracking group could be made ({e})"));
                None
            }
        };
        if via.is_none() {
            notes.push(
                "moved straight into isolation: connections already open may stay tracked, and alive, until they end"
                    .to_owned(),
            );
        } else {
            notes.push(TRACKING_NOTE.to_owned());
        }
        let isolated_groups = [isolation.as_str()];
        let isolated = with_retries(|| self.set_groups(instance, eni, &isolated_groups)).await;
        if let Err(e) = isolated {
            let Some(untrack) = tried else {
                return Err(e);
            };
            // Never left open: back onto the groups it had.
            let original: Vec<&str> = eni.groups.iter().map(String::as_str).collect();
            let restored = with_retries(|| self.set_groups(instance, eni, &original)).await;
            let message = match restored {
                Ok(()) => format!(
                    "{}; the interface was put back on its original groups {:?}",
                    e.message, eni.groups
                ),
                Err(r) => format!(
                    "{}; putting back its original groups {:?} failed too ({r}): it may be on the allow-all group {untrack}",
                    e.message, eni.groups
                ),
            };
            return Err(AwsError {
                code: e.code,
                message,
            });
        }
        notes.extend(vpc.lookalikes.clone());
        Ok(Applied {
            after: json!({"interface": eni.id, "groups": [isolation], "through": via}),
            note: Some(notes.join("; ")),
            ..Applied::default()
        })
    }

    /// Read the changed interfaces back in one call once all have changed: the primary
    /// interface's groups are also the instance's, set by its own call.
    async fn read_back_isolation(
        &self,
        facts: &InstanceFacts,
        groups: &HashMap<&str, VpcGroups>,
        records: &mut [ActionRecord],
    ) {
        let expected: HashMap<String, GroupId> = records
            .iter()
            .filter(|r| r.outcome == Outcome::Succeeded)
            .filter_map(|r| {
                let eni = facts.interfaces.iter().find(|i| i.id == r.target)?;
                let isolation = groups.get(eni.vpc.as_str())?.isolation.as_ref().ok()?;
                Some((r.target.clone(), isolation.clone()?))
            })
            .collect();
        if expected.is_empty() {
            return;
        }
        let ids: Vec<String> = expected.keys().cloned().collect();
        let isolated = |found: &Result<HashMap<String, Vec<String>>, AwsError>, eni: &str| {
            found.as_ref().is_ok_and(|f| {
                f.get(eni).is_some_and(|g| {
                    g.len() == 1 && expected.get(eni).is_some_and(|i| g[0] == i.as_str())
                })
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
        groups: &[&str],
    ) -> Result<(), AwsError> {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        self.ec2
            .modify_network_interface_attribute()
            .network_interface_id(&eni.id)
            .set_groups(Some(groups.clone()))
            .send()
            .await
            .map_err(aws)?;
        if eni.primary {
            // The instance-level attribute is the primary interface in AWS; moto keeps them
            // apart, so both are set and both agree.
            self.ec2
                .modify_instance_attribute()
                .instance_id(instance.as_str())
                .set_groups(Some(groups))
                .send()
                .await
                .map_err(aws)?;
        }
        Ok(())
    }
}

fn no_vpc(eni: &Interface) -> AwsError {
    AwsError {
        code: "NoIsolationGroup".to_owned(),
        message: format!("no isolation group for {} in {}", eni.id, eni.vpc),
    }
}
