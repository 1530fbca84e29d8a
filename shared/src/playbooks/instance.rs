//! Contain an instance: protect it, take it out of service and off the network, cut its
//! credentials, and only then collect evidence. Stopping it is opt-in (memory is evidence too),
//! and so is cutting every session of its role (the rest of the fleet shares the role).

use time::OffsetDateTime;

use crate::actions::iam::{Iam, IamActions};
use crate::actions::instance::InstanceActions;
use crate::actions::{read_failed, Action};
use crate::ids::{IncidentId, InstanceId};
use crate::playbooks::Played;
use crate::protect::{self, ProtectionTag, TagVerdict};

pub struct Options {
    pub dry_run: bool,
    pub stop_instance: bool,
    /// Also cut every session of the profile's roles, not only the credentials delivered to
    /// this instance: the whole fleet sharing a role loses its sessions too.
    pub revoke_whole_role: bool,
    /// The administrator's reserved tag (PROTECTION_TAG_KEY), if any.
    pub protection_tag: Option<ProtectionTag>,
}

pub async fn contain(
    ec2: &InstanceActions,
    iam: &IamActions,
    instance: &InstanceId,
    incident: &IncidentId,
    cutoff: OffsetDateTime,
    opts: &Options,
) -> Played {
    let dry_run = opts.dry_run;
    let facts = match ec2.describe(instance).await {
        Ok(f) => f,
        Err(e) => {
            return Played::Actions(vec![read_failed(
                Action::ProtectInstance,
                instance.as_str(),
                &e,
            )])
        }
    };
    let unhonoured = match protect::tag_verdict(opts.protection_tag.as_ref(), &facts.tags) {
        TagVerdict::Protected(why) => {
            return Played::Refused(format!("instance {instance} is {why}"))
        }
        TagVerdict::NotHonoured(note) => Some(note),
        TagVerdict::Unprotected => None,
    };
    let mut records = ec2.protect(&facts, dry_run).await;
    if let (Some(note), Some(first)) = (unhonoured, records.first_mut()) {
        first.note = Some(match first.note.take() {
            Some(n) => format!("{n}; {note}"),
            None => note,
        });
    }
    let (asg, elb, network, (credentials, roles)) = tokio::join!(
        ec2.detach_from_auto_scaling(instance, dry_run),
        ec2.deregister_from_target_groups(&facts, dry_run),
        ec2.isolate(&facts, dry_run),
        ec2.detach_profile(&facts, dry_run),
    );
    records.extend([asg, elb]);
    records.extend(network);
    records.extend(credentials);
    if opts.revoke_whole_role {
        let revokes = roles
            .iter()
            .map(|r| iam.revoke_sessions(Iam::Role(r), cutoff, dry_run));
        records.extend(futures::future::join_all(revokes).await);
    }
    records.extend(ec2.snapshot(&facts, incident, cutoff, dry_run).await);
    if opts.stop_instance {
        records.push(ec2.stop(&facts, dry_run).await);
    }
    records.push(ec2.tag(&facts, incident, cutoff, dry_run).await);
    Played::Actions(records)
}
