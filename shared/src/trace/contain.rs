//! Stop what the chain made. Credentials made for a user are the attacker's whoever holds them,
//! so they are stopped even on a protected user; a principal itself (a user or role the chain
//! created, a role whose sessions it took) is left to a person when it is protected.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::chain::Made;
use super::Tracer;
use crate::actions::instance::PROTECTED_TAG;
use crate::actions::{read_failed, skipped, Action, ActionRecord};
use crate::ids::{IamName, IncidentId, InstanceId};
use crate::playbooks::credentials::{self, Credentials, Options};
use crate::principal::Principal;

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
    let jobs = made
        .iter()
        .map(|m| Box::pin(one(t, m, &created, incident, cutoff)));
    futures::future::join_all(jobs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn one(
    t: &Tracer<'_>,
    made: &Made,
    created: &BTreeSet<&IamName>,
    incident: &IncidentId,
    cutoff: OffsetDateTime,
) -> Vec<ActionRecord> {
    let dry_run = t.config.dry_run;
    let of_created = |user: &IamName| created.contains(user);
    match made {
        Made::AccessKey { user, key } if !of_created(user) => {
            t.iam.deactivate_keys(user, Some(key), false, dry_run).await
        }
        Made::LoginProfile { user } if !of_created(user) => {
            t.iam.remove_login_profile(user, dry_run).await
        }
        Made::ServiceSpecificCredential { user } if !of_created(user) => {
            t.iam
                .deactivate_service_specific_credentials(user, dry_run)
                .await
        }
        Made::SshPublicKey { user } if !of_created(user) => {
            t.iam.deactivate_ssh_public_keys(user, dry_run).await
        }
        Made::AccessKey { .. }
        | Made::LoginProfile { .. }
        | Made::ServiceSpecificCredential { .. }
        | Made::SshPublicKey { .. } => Vec::new(),
        Made::User { user } => {
            principal(t, Principal::User(user.clone()), incident, cutoff, None).await
        }
        Made::Role { role, trust } => {
            let note = format!(
                "trust policy the chain set: {}",
                trust.chars().take(TRUST_IN_NOTE).collect::<String>()
            );
            principal(
                t,
                Principal::Role(role.clone()),
                incident,
                cutoff,
                Some(note),
            )
            .await
        }
        Made::RoleSessions { role, sessions } => {
            if let Some(p) = t.protected(&Principal::Role(role.clone())) {
                return vec![skipped(
                    Action::DenyRoleSessions,
                    format!("role/{role}"),
                    format!("role {role} is protected by {p}: a person must end the sessions the chain took"),
                )];
            }
            vec![t.iam.deny_role_sessions(role, sessions, dry_run).await]
        }
        Made::Share { shared, accounts } if !accounts.is_empty() => {
            vec![t.shares.unshare(shared, accounts, dry_run).await]
        }
        Made::Instance { id } if t.config.trace.stop_instances => vec![stop(t, id).await],
        // Listed with the writes; stopping what the chain launched is opt-in.
        Made::Share { .. } | Made::Instance { .. } => Vec::new(),
    }
}

/// TRACE_STOP_INSTANCES: an instance the chain launched is stopped (its disks kept), unless it
/// carries the protection tag.
async fn stop(t: &Tracer<'_>, id: &InstanceId) -> ActionRecord {
    match t.instances.describe(id).await {
        Err(e) => read_failed(Action::StopInstance, id.as_str(), &e),
        Ok(facts) if facts.protected => skipped(
            Action::StopInstance,
            id.as_str(),
            format!("{id} carries {PROTECTED_TAG}=true: a person decides"),
        ),
        Ok(facts) => t.instances.stop(&facts, t.config.dry_run).await,
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
    if let Some(p) = t.protected(&who) {
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
