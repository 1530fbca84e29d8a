//! Running the playbook: once, then again over what failed while time allows, and the status
//! that the result earns.

use std::time::Instant;

use time::OffsetDateTime;

use crate::actions::shares::ShareActions;
use crate::actions::ActionRecord;
use crate::ledger::Status;
use crate::playbooks::{credentials, instance, Played};
use crate::signals::{Function, Incident, Target};
use crate::trace;

use super::{Report, Responder, PASS_RESERVE};

impl Responder {
    /// Every action is safe to repeat, so failed ones get two more passes within the
    /// invocation (after the SDK's own retries, and before Lambda's), each reading state anew.
    pub(super) async fn run_playbook(
        &self,
        incident: &Incident,
        target: &Target,
        cutoff: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Played {
        let mut played = self.play_once(incident, target, cutoff, deadline).await;
        for pass in 1..=2u64 {
            let Played::Actions(first) = &played else {
                break;
            };
            if !first.iter().any(ActionRecord::failed) {
                break;
            }
            if deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) < PASS_RESERVE)
            {
                tracing::warn!(
                    pass,
                    "no time left for another pass; Lambda's retry gets it"
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250 * pass)).await;
            let again = self.play_once(incident, target, cutoff, deadline).await;
            played = match (played, again) {
                (Played::Actions(first), Played::Actions(again)) => {
                    Played::Actions(merge(first, again))
                }
                (_, again) => again,
            };
        }
        played
    }

    async fn play_once(
        &self,
        incident: &Incident,
        target: &Target,
        cutoff: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Played {
        match target {
            Target::Credentials {
                principal,
                access_key,
                ..
            } if self.function == Function::TraceCredentials => {
                let tracer = trace::Tracer {
                    iam: &self.iam,
                    shares: ShareActions::new(self.clients.ec2.clone()),
                    instances: &self.ec2,
                    cloudtrail: &self.clients.cloudtrail,
                    account: &self.account,
                    config: &self.config,
                };
                let start = trace::Start {
                    principal,
                    key: access_key.as_ref(),
                    region: incident.region.as_deref(),
                    incident: &incident.id,
                };
                // Boxed: the walk's state is large, and on the heap it stays off the stack.
                Played::Actions(Box::pin(tracer.trace(start, cutoff, deadline)).await)
            }
            Target::Credentials {
                principal,
                access_key,
                all_keys,
                created,
                ..
            } => {
                let opts = credentials::Options {
                    dry_run: self.config.dry_run,
                    deactivate_all_keys: self.config.deactivate_all_keys || *all_keys,
                    quarantine_roles: self.config.quarantine_roles,
                };
                // Boxed, like the instance playbook: each playbook's state on the heap, so the
                // invocation's future (which holds both) stays small on the caller's stack.
                Played::Actions(
                    Box::pin(credentials::contain(
                        &self.iam,
                        credentials::Credentials {
                            principal,
                            key: access_key.as_ref(),
                            created: created.as_ref(),
                        },
                        &incident.id,
                        cutoff,
                        &opts,
                    ))
                    .await,
                )
            }
            Target::Instance { instance: id } => {
                let opts = instance::Options {
                    dry_run: self.config.dry_run,
                    stop_instance: self.config.stop_instance,
                    revoke_whole_role: self.config.revoke_whole_instance_role,
                    protection_tag: self.config.protection_tag.clone(),
                };
                Box::pin(instance::contain(
                    &self.ec2,
                    &self.iam,
                    id,
                    &incident.id,
                    cutoff,
                    &opts,
                ))
                .await
            }
        }
    }

    /// The incident's status from what the playbook did, after what the report holds already
    /// (the restore); a refusal (a protected instance) is recorded with its reason.
    pub(super) fn settle(&self, report: &mut Report, played: Played) -> Status {
        match played {
            Played::Refused(reason) => {
                report.reason = Some(reason);
                Status::Protected
            }
            Played::Actions(actions) => {
                report.actions.extend(actions);
                if report.actions.iter().any(ActionRecord::failed) {
                    Status::Failed
                } else if self.config.dry_run {
                    Status::Planned
                } else {
                    Status::Contained
                }
            }
        }
    }
}

/// A declined caller (protected, root, notify-only) keeps its status and reason; the restore
/// that ran regardless makes it failed if it failed.
pub(super) fn keep_declined(report: &mut Report, (status, reason): (Status, String)) -> Status {
    report.reason = Some(reason);
    if report.actions.iter().any(ActionRecord::failed) {
        Status::Failed
    } else {
        status
    }
}

/// The first pass's records, each failed one replaced by the later pass's record for the same
/// action and target (which keeps the original before-state of what succeeded the first time).
fn merge(first: Vec<ActionRecord>, again: Vec<ActionRecord>) -> Vec<ActionRecord> {
    let same = |a: &ActionRecord, b: &ActionRecord| a.action == b.action && a.target == b.target;
    let mut merged: Vec<ActionRecord> = first
        .into_iter()
        .map(|a| match again.iter().find(|b| same(&a, b)) {
            Some(b) if a.failed() => b.clone(),
            _ => a,
        })
        .collect();
    for b in again {
        if !merged.iter().any(|a| same(a, &b)) {
            merged.push(b);
        }
    }
    merged
}
