//! Stop what the chain made. Credentials made for a user are the attacker's whoever holds them,
//! so they are stopped even on a protected user; a principal itself (a user or role the chain
//! created, a role whose sessions it took) is left to a person when it is protected.

use std::collections::BTreeSet;

use futures::future::BoxFuture;
use time::OffsetDateTime;

use super::chain::{Made, RoleAt};
use super::Tracer;
use crate::actions::{read_failed, skipped, Action, ActionRecord};
use crate::ids::{IamName, IncidentId, InstanceId};
use crate::playbooks::credentials::{self, Credentials, Options};
use crate::principal::{IamPath, Principal};
use crate::protect::{self, TagVerdict};

/// How much of a trust document the record keeps in its note (the ledger's item holds it all).
const TRUST_IN_NOTE: usize = 1500;

pub async fn all(
    t: &Tracer<'_>,
    made: &[Made],
    incident: &IncidentId,
    cutoff: OffsetDateTime,
) -> Vec<ActionRecord> {
    // A user the chain created is contained whole: its keys and password with it, not twice.
    let created: BTreeSet<&IamName> = made
        .iter()
        .filter_map(|m| match m {
            Made::User { user } => Some(user),
            _ => None,
        })
        .collect();
    let jobs = made.iter().map(|m| one(t, m, &created, incident, cutoff));
    futures::future::join_all(jobs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Each kind's work as its own boxed future, made in a plain function: the poll of one never
/// holds the stack space of all the others (a debug build's frames add up to its 2 MiB).
fn one<'a>(
    t: &'a Tracer<'a>,
    made: &'a Made,
    created: &BTreeSet<&IamName>,
    incident: &'a IncidentId,
    cutoff: OffsetDateTime,
) -> BoxFuture<'a, Vec<ActionRecord>> {
    let dry_run = t.config.dry_run;
    let of_created = |user: &IamName| created.contains(user);
    match made {
        Made::AccessKey { user, key } if !of_created(user) => {
            Box::pin(t.iam.deactivate_keys(user, Some(key), false, dry_run))
        }
        Made::LoginProfile { user } if !of_created(user) => {
            Box::pin(t.iam.remove_login_profile(user, dry_run))
        }
        Made::ServiceSpecificCredential { user } if !of_created(user) => {
            Box::pin(t.iam.deactivate_service_specific_credentials(user, dry_run))
        }
        Made::SshPublicKey { user } if !of_created(user) => {
            Box::pin(t.iam.deactivate_ssh_public_keys(user, dry_run))
        }
        Made::AccessKey { .. }
        | Made::LoginProfile { .. }
        | Made::ServiceSpecificCredential { .. }
        | Made::SshPublicKey { .. } => Box::pin(async { Vec::new() }),
        Made::User { user } => Box::pin(principal(
            t,
            Principal::User(user.clone()),
            incident,
            cutoff,
            None,
        )),
        Made::Role { role, trust } => {
            let note = format!(
                "trust policy the chain set: {}",
                trust.chars().take(TRUST_IN_NOTE).collect::<String>()
            );
            Box::pin(principal(
                t,
                Principal::Role(role.clone()),
                incident,
                cutoff,
                Some(note),
            ))
        }
        Made::RoleSessions {
            role: RoleAt { role, path },
            sessions,
        } => {
            let at = IamPath::parse(path);
            if let Some(p) = t.protected(&Principal::Role(role.clone()), at.as_ref()) {
                let refused = skipped(
                    Action::DenyRoleSessions,
                    format!("role/{role}"),
                    format!("role {role} is protected by {p}: a person must end the sessions the chain took"),
                );
                return Box::pin(async { vec![refused] });
            }
            Box::pin(async move { vec![t.iam.deny_role_sessions(role, sessions, dry_run).await] })
        }
        Made::Share { shared, accounts } if !accounts.is_empty() => {
            Box::pin(async move { vec![t.shares.unshare(shared, accounts, dry_run).await] })
        }
        Made::Instance { id } if t.config.trace.stop_instances => {
            Box::pin(async move { vec![stop(t, id).await] })
        }
        // Listed with the writes; stopping what the chain launched is opt-in.
        Made::Share { .. } | Made::Instance { .. } => Box::pin(async { Vec::new() }),
    }
}

/// TRACE_STOP_INSTANCES: an instance the chain launched is stopped (its disks kept), unless
/// PROTECTED_INSTANCES or the reserved PROTECTION_TAG_KEY protects it, as isolate-instance would.
async fn stop(t: &Tracer<'_>, id: &InstanceId) -> ActionRecord {
    let refuse = |why: String| {
        skipped(
            Action::StopInstance,
            id.as_str(),
            format!("{id} is {why}: a person decides"),
        )
    };
    if protect::instance_listed(&t.config.protected_instances, id) {
        return refuse("in PROTECTED_INSTANCES".to_owned());
    }
    match t.instances.describe(id).await {
        Err(e) => read_failed(Action::StopInstance, id.as_str(), &e),
        Ok(facts) => match protect::tag_verdict(t.config.protection_tag.as_ref(), &facts.tags) {
            TagVerdict::Protected(why) => refuse(why),
            TagVerdict::NotHonoured(_) | TagVerdict::Unprotected => {
                t.instances.stop(&facts, t.config.dry_run).await
            }
        },
    }
}

/// A user or role the chain created (or opened to outside accounts): contained as a finding's
/// principal is, with the quarantine on a role too (nobody else's sessions depend on it).
async fn principal(
    t: &Tracer<'_>,
    who: Principal,
    incident: &IncidentId,
    cutoff: OffsetDateTime,
    note: Option<String>,
) -> Vec<ActionRecord> {
    if let Some(p) = t.protected(&who, None) {
        return vec![skipped(
            Action::AttachQuarantinePolicy,
            who.describe(),
            format!("{} is protected by {p}: a person decides; credentials the chain made for it are stopped", who.describe()),
        )];
    }
    let opts = Options {
        dry_run: t.config.dry_run,
        deactivate_all_keys: true,
        quarantine_roles: true,
    };
    let mut records = credentials::contain(
        t.iam,
        Credentials {
            principal: &who,
            key: None,
            created: None,
        },
        incident,
        cutoff,
        &opts,
    )
    .await;
    if let Some(first) = records
        .iter_mut()
        .find(|r| r.action == Action::AttachQuarantinePolicy)
    {
        first.note = Some(match first.note.take() {
            Some(n) => format!("{n}; {}", note.clone().unwrap_or_default()),
            None => note.unwrap_or_default(),
        })
        .filter(|n| !n.is_empty());
    }
    records
}
