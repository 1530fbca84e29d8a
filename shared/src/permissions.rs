//! The IAM actions each function needs: its playbook's actions plus recording. template.yaml's
//! roles are checked against this by a test, so the deployed role and the code cannot drift.

use std::collections::BTreeSet;

use crate::actions::Action;
use crate::signals::Function;

/// Ledger and notification, for every function (GetItem: the window before's count of a rule
/// and principal's notices). (sts:GetCallerIdentity needs no permission.)
pub const RECORDING: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:PutItem",
    "sns:Publish",
];

impl Function {
    pub fn actions(self) -> &'static [Action] {
        match self {
            Self::QuarantineCredentials => &[
                Action::FindKeyOwner,
                Action::DeactivateAccessKey,
                Action::AttachQuarantinePolicy,
                Action::RestoreQuarantinePolicy,
                Action::RevokeSessions,
                Action::TagPrincipal,
                Action::RemoveLoginProfile,
                Action::DeactivateServiceSpecificCredentials,
                Action::DeactivateSshPublicKeys,
                Action::DeactivateSigningCertificates,
            ],
            Self::IsolateInstance => &[
                Action::ProtectInstance,
                Action::DetachFromAutoScaling,
                Action::DeregisterFromTargetGroups,
                Action::IsolateNetwork,
                // Revokes the profile role's sessions too: its permissions include the role half
                // of RevokeSessions, not the user half.
                Action::DetachInstanceProfile,
                Action::SnapshotVolumes,
                Action::StopInstance,
                Action::TagInstance,
            ],
            // What the chain made is contained as a finding's principal is, plus the trace's own.
            Self::TraceCredentials => &[
                Action::TraceHistory,
                Action::DeactivateAccessKey,
                Action::AttachQuarantinePolicy,
                Action::RevokeSessions,
                Action::TagPrincipal,
                Action::RemoveLoginProfile,
                Action::DeactivateServiceSpecificCredentials,
                Action::DeactivateSshPublicKeys,
                Action::DeactivateSigningCertificates,
                Action::DenyRoleSessions,
                Action::RemoveShare,
                Action::StopInstance,
                Action::ListActivity,
            ],
        }
    }

    pub fn permissions(self) -> BTreeSet<&'static str> {
        self.actions()
            .iter()
            .flat_map(|a| a.permissions().iter().copied())
            .chain(RECORDING.iter().copied())
            .collect()
    }
}
