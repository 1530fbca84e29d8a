//! Actions: one change each, with the IAM permissions it needs and exactly one outcome.
//! Every action reads the current state first, so it records what it found (the state a person
//! restores on release), skips what is already in place (which makes repeats free of side
//! effects), plans instead of acting in dry run, and says so when it fails.

pub mod iam;
pub mod instance;
pub mod role_sessions;
pub mod shares;
pub mod user_credentials;

use std::future::Future;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::aws::AwsError;
use crate::policy::rfc3339_seconds;

/// Everything cordon can do. `permissions` is the source of the IAM role in template.yaml; a
/// test keeps the two in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    FindKeyOwner,
    DeactivateAccessKey,
    AttachQuarantinePolicy,
    RestoreQuarantinePolicy,
    RevokeSessions,
    TagPrincipal,
    RemoveLoginProfile,
    DeactivateServiceSpecificCredentials,
    DeactivateSshPublicKeys,
    DeactivateSigningCertificates,
    ProtectInstance,
    DetachFromAutoScaling,
    DeregisterFromTargetGroups,
    IsolateNetwork,
    DetachInstanceProfile,
    SnapshotVolumes,
    StopInstance,
    TagInstance,
    TraceHistory,
    DenyRoleSessions,
    RemoveShare,
    ListActivity,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Self::FindKeyOwner => "find_key_owner",
            Self::DeactivateAccessKey => "deactivate_access_key",
            Self::AttachQuarantinePolicy => "attach_quarantine_policy",
            Self::RestoreQuarantinePolicy => "restore_quarantine_policy",
            Self::RevokeSessions => "revoke_sessions",
            Self::TagPrincipal => "tag_principal",
            Self::RemoveLoginProfile => "remove_login_profile",
            Self::DeactivateServiceSpecificCredentials => "deactivate_service_specific_credentials",
            Self::DeactivateSshPublicKeys => "deactivate_ssh_public_keys",
            Self::DeactivateSigningCertificates => "deactivate_signing_certificates",
            Self::ProtectInstance => "protect_instance",
            Self::DetachFromAutoScaling => "detach_from_auto_scaling",
            Self::DeregisterFromTargetGroups => "deregister_from_target_groups",
            Self::IsolateNetwork => "isolate_network",
            Self::DetachInstanceProfile => "detach_instance_profile",
            Self::SnapshotVolumes => "snapshot_volumes",
            Self::StopInstance => "stop_instance",
            Self::TagInstance => "tag_instance",
            Self::TraceHistory => "trace_history",
            Self::DenyRoleSessions => "deny_role_sessions",
            Self::RemoveShare => "remove_share",
            Self::ListActivity => "list_activity",
        }
    }

    /// The IAM actions this action's calls need, reads included.
    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Self::FindKeyOwner => &["iam:GetAccessKeyLastUsed", "iam:ListAccessKeys"],
            Self::DeactivateAccessKey => &["iam:ListAccessKeys", "iam:UpdateAccessKey"],
            Self::AttachQuarantinePolicy => &[
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:CreatePolicy",
                "iam:CreatePolicyVersion",
                "iam:ListPolicyVersions",
                "iam:DeletePolicyVersion",
                "iam:ListAttachedUserPolicies",
                "iam:AttachUserPolicy",
                "iam:ListUserPolicies",
                "iam:PutUserPolicy",
                "iam:ListAttachedRolePolicies",
                "iam:AttachRolePolicy",
                "iam:ListRolePolicies",
                "iam:PutRolePolicy",
            ],
            Self::RestoreQuarantinePolicy => &[
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:CreatePolicy",
                "iam:CreatePolicyVersion",
                "iam:ListPolicyVersions",
                "iam:DeletePolicyVersion",
            ],
            Self::RevokeSessions => &[
                "iam:GetUserPolicy",
                "iam:PutUserPolicy",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
            ],
            Self::TagPrincipal => &[
                "iam:ListUserTags",
                "iam:TagUser",
                "iam:ListRoleTags",
                "iam:TagRole",
            ],
            Self::RemoveLoginProfile => &["iam:GetLoginProfile", "iam:DeleteLoginProfile"],
            Self::DeactivateServiceSpecificCredentials => &[
                "iam:ListServiceSpecificCredentials",
                "iam:UpdateServiceSpecificCredential",
            ],
            Self::DeactivateSshPublicKeys => &["iam:ListSSHPublicKeys", "iam:UpdateSSHPublicKey"],
            Self::DeactivateSigningCertificates => &[
                "iam:ListSigningCertificates",
                "iam:UpdateSigningCertificate",
            ],
            Self::ProtectInstance => &[
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceAttribute",
                "ec2:ModifyInstanceAttribute",
            ],
            Self::DetachFromAutoScaling => &[
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DetachInstances",
            ],
            Self::DeregisterFromTargetGroups => &[
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DeregisterTargets",
            ],
            // cordon's groups are remembered in the ledger table when created.
            Self::IsolateNetwork => &[
                "ec2:DescribeSecurityGroups",
                "ec2:CreateSecurityGroup",
                "ec2:CreateTags",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
                "ec2:ModifyNetworkInterfaceAttribute",
                "ec2:ModifyInstanceAttribute",
                "ec2:DescribeNetworkInterfaces",
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
            ],
            // The profile's roles are remembered in the ledger table before it is taken away.
            Self::DetachInstanceProfile => &[
                "ec2:DescribeIamInstanceProfileAssociations",
                "ec2:DisassociateIamInstanceProfile",
                "iam:GetInstanceProfile",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
            ],
            Self::SnapshotVolumes => &[
                "ec2:DescribeSnapshots",
                "ec2:CreateSnapshot",
                "ec2:CreateTags",
            ],
            // Its state is read first: isolate-instance's playbook has it, the trace reads it.
            Self::StopInstance => &["ec2:DescribeInstances", "ec2:StopInstances"],
            Self::TagInstance => &["ec2:DescribeTags", "ec2:CreateTags"],
            Self::TraceHistory => &["cloudtrail:LookupEvents"],
            Self::DenyRoleSessions => &["iam:GetRolePolicy", "iam:PutRolePolicy"],
            Self::RemoveShare => &[
                "ec2:DescribeSnapshotAttribute",
                "ec2:ModifySnapshotAttribute",
                "ec2:DescribeImageAttribute",
                "ec2:ModifyImageAttribute",
            ],
            // Listing what a credential did reads nothing beyond its history.
            Self::ListActivity => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
    /// Dry run: what would have been done.
    Planned,
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Skipped { .. } => "skipped",
            Self::Failed { .. } => "failed",
            Self::Planned => "planned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRecord {
    pub action: Action,
    /// The resource acted on, by its AWS id (access key id, user name, ENI id, ...).
    pub target: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The state found before acting: what a person restores on release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// For a change: whether reading the resource back showed it. `false` means AWS accepted
    /// the change but did not show it yet (eventual consistency); the next delivery re-checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Facts a person should know (a fallback taken, a limit of the method).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Something cordon relies on was found altered behind its back, and restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tampered: Option<String>,
    pub started_at: String,
    pub finished_at: String,
}

impl ActionRecord {
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { .. })
    }
}

/// What an action found.
pub struct Observed {
    pub state: Value,
    /// The desired state already holds: nothing to do.
    pub in_place: bool,
}

/// What an action did, when it did something.
#[derive(Default)]
pub struct Applied {
    pub after: Value,
    pub note: Option<String>,
    /// The result of reading the change back, where the action does.
    pub verified: Option<bool>,
    /// What was found tampered with (and is restored by this change).
    pub tampered: Option<String>,
    /// Not done now, for a reason that is not a failure (a regional limit): recorded as
    /// skipped, so the next delivery tries again.
    pub deferred: Option<String>,
}

impl From<Value> for Applied {
    fn from(after: Value) -> Self {
        Self {
            after,
            ..Self::default()
        }
    }
}

/// Read, then change only if needed: the shape every action follows.
pub async fn converge<F, Fut>(
    action: Action,
    target: impl Into<String>,
    dry_run: bool,
    observed: Result<Observed, AwsError>,
    apply: F,
) -> ActionRecord
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Applied, AwsError>>,
{
    let started = OffsetDateTime::now_utc();
    let (outcome, before, applied) = match observed {
        Err(e) => return read_failed(action, target, &e),
        Ok(Observed {
            state,
            in_place: true,
        }) => (
            Outcome::Skipped {
                reason: "already in place".to_owned(),
            },
            Some(state),
            None,
        ),
        Ok(Observed { state, .. }) if dry_run => (Outcome::Planned, Some(state), None),
        Ok(Observed { state, .. }) => match apply().await {
            Ok(Applied {
                deferred: Some(reason),
                ..
            }) => (Outcome::Skipped { reason }, Some(state), None),
            Ok(applied) => (Outcome::Succeeded, Some(state), Some(applied)),
            Err(e) => (failed(&e, "applying the change"), Some(state), None),
        },
    };
    record(action, target, outcome, before, applied, started)
}

/// IAM and EC2 are eventually consistent: a read right after a write may not show it yet.
/// Reads again, briefly, until `shows_change` holds (three looks over 400 ms); returns the last
/// read, from which the record says "verified" or "applied, not verified".
pub async fn read_back<T, F, Fut>(read: F, shows_change: impl Fn(&T) -> bool) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = T>,
{
    let mut last = read().await;
    for wait_ms in [100, 300] {
        if shows_change(&last) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
        last = read().await;
    }
    last
}

/// An action decided without calling AWS (protected, not applicable, temporary key).
pub fn skipped(
    action: Action,
    target: impl Into<String>,
    reason: impl Into<String>,
) -> ActionRecord {
    let now = OffsetDateTime::now_utc();
    record(
        action,
        target,
        Outcome::Skipped {
            reason: reason.into(),
        },
        None,
        None,
        now,
    )
}

/// Something done that changes nothing in the account (a history read, a list for a person):
/// its result is `after`.
pub fn observed(
    action: Action,
    target: impl Into<String>,
    after: Value,
    note: Option<String>,
) -> ActionRecord {
    let now = OffsetDateTime::now_utc();
    let applied = Applied {
        after,
        note,
        ..Applied::default()
    };
    record(action, target, Outcome::Succeeded, None, Some(applied), now)
}

/// A lookup that changes nothing: what it found.
pub fn found(action: Action, target: impl Into<String>, state: Value) -> ActionRecord {
    let now = OffsetDateTime::now_utc();
    record(action, target, Outcome::Succeeded, Some(state), None, now)
}

/// The state could not be read, so nothing was changed.
pub fn read_failed(action: Action, target: impl Into<String>, e: &AwsError) -> ActionRecord {
    let now = OffsetDateTime::now_utc();
    record(
        action,
        target,
        failed(e, "reading the current state"),
        None,
        None,
        now,
    )
}

fn failed(e: &AwsError, while_doing: &str) -> Outcome {
    Outcome::Failed {
        error: format!("{while_doing}: {e}"),
    }
}

fn record(
    action: Action,
    target: impl Into<String>,
    outcome: Outcome,
    before: Option<Value>,
    applied: Option<Applied>,
    started: OffsetDateTime,
) -> ActionRecord {
    let (after, note, verified, tampered) = match applied {
        Some(a) => (Some(a.after), a.note, a.verified, a.tampered),
        None => (None, None, None, None),
    };
    let record = ActionRecord {
        action,
        target: target.into(),
        outcome,
        before,
        after,
        verified,
        note,
        tampered,
        started_at: rfc3339_millis(started),
        finished_at: rfc3339_millis(OffsetDateTime::now_utc()),
    };
    tracing::info!(
        action = record.action.name(),
        target = %record.target,
        outcome = record.outcome.word(),
        detail = ?record.outcome,
        "action"
    );
    record
}

pub fn rfc3339_millis(t: OffsetDateTime) -> String {
    let ms = t.millisecond();
    let secs = rfc3339_seconds(t);
    format!("{}.{ms:03}Z", secs.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(in_place: bool) -> Result<Observed, AwsError> {
        Ok(Observed {
            state: json!({"status": "Active"}),
            in_place,
        })
    }

    #[tokio::test]
    async fn one_outcome_per_action() {
        let apply = || async { Ok(Applied::from(json!({"status": "Inactive"}))) };
        let ok = converge(Action::DeactivateAccessKey, "k", false, found(false), apply).await;
        assert_eq!(ok.outcome, Outcome::Succeeded);
        assert_eq!(ok.before, Some(json!({"status": "Active"})));
        let repeat = converge(Action::DeactivateAccessKey, "k", false, found(true), apply).await;
        assert!(matches!(repeat.outcome, Outcome::Skipped { .. }));
        let planned = converge(Action::DeactivateAccessKey, "k", true, found(false), apply).await;
        assert_eq!(planned.outcome, Outcome::Planned);
        let failing = || async {
            Err::<Applied, _>(AwsError {
                code: "Throttling".into(),
                message: "slow down".into(),
            })
        };
        let failed = converge(
            Action::DeactivateAccessKey,
            "k",
            false,
            found(false),
            failing,
        )
        .await;
        assert!(failed.failed());
    }

    /// A regional limit is not a success: the record says skipped, and why.
    #[tokio::test]
    async fn deferred_is_skipped_never_succeeded() {
        let apply = || async {
            Ok(Applied {
                deferred: Some("deferred: ConcurrentSnapshotLimitExceeded".into()),
                ..Applied::default()
            })
        };
        let r = converge(Action::SnapshotVolumes, "vol-1", false, found(false), apply).await;
        assert_eq!(
            r.outcome,
            Outcome::Skipped {
                reason: "deferred: ConcurrentSnapshotLimitExceeded".into()
            }
        );
        assert!(r.after.is_none());
    }
}
