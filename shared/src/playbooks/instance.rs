//! Contain an instance: protect it, take it out of service and off the network, cut its
//! credentials, and only then collect evidence. Stopping it is opt-in: memory is evidence too.

use time::OffsetDateTime;

use crate::actions::iam::{Iam, IamActions};
use crate::actions::instance::InstanceActions;
use crate::actions::{read_failed, Action};
use crate::ids::{IamName, IncidentId, InstanceId};
use crate::playbooks::Played;
use crate::protect::{self, ProtectionTag, TagVerdict};

pub struct Options {
    pub dry_run: bool,
    pub stop_instance: bool,
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
    let mut protected = ec2.protect(&facts, dry_run).await;
    if let Some(note) = unhonoured {
        protected.note = Some(match protected.note {
            Some(n) => format!("{n}; {note}"),
            None => note,
        });
    }
    let mut records = vec![protected];
    let (asg, elb, network, (profile, roles)) = tokio::join!(
        ec2.detach_from_auto_scaling(instance, dry_run),
        ec2.deregister_from_target_groups(instance, dry_run),
        ec2.isolate(&facts, dry_run),
        ec2.detach_profile(&facts, dry_run),
    );
    records.extend([asg, elb]);
    records.extend(network);
    records.push(profile);
    // Credentials already fetched from instance metadata stay valid until revoked.
    let names: Vec<IamName> = roles
        .iter()
        .filter_map(|r| IamName::parse(r).ok())
        .collect();
    let revokes = names
        .iter()
        .map(|r| iam.revoke_sessions(Iam::Role(r), cutoff, dry_run));
    records.extend(futures::future::join_all(revokes).await);
    records.extend(ec2.snapshot(&facts, incident, cutoff, dry_run).await);
    if opts.stop_instance {
        records.push(ec2.stop(&facts, dry_run).await);
    }
    records.push(ec2.tag(&facts, incident, cutoff, dry_run).await);
    Played::Actions(records)
}
