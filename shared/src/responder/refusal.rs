//! Why a target is not touched: another account's finding, a protected principal or instance, or
//! a kind of principal that an IAM policy cannot contain. Checked before any change.

use crate::ids::AccountId;
use crate::ledger::Status;
use crate::principal::Principal;
use crate::protect;
use crate::rules;
use crate::signals::{Incident, Target};

use super::Responder;

impl Responder {
    /// The account the incident is about, when it is not this one.
    pub(super) fn other_account<'a>(&self, incident: &'a Incident) -> Option<&'a AccountId> {
        incident.account.as_ref().filter(|a| **a != self.account)
    }

    /// Why this target must not be touched, checked before any change.
    pub(super) fn refusal(&self, incident: &Incident, target: &Target) -> Option<(Status, String)> {
        if let Some(other) = self.other_account(incident) {
            // A delegated administrator receives its members' findings: a same-named principal
            // here is not the one the finding is about.
            return Some((
                Status::Ignored,
                format!(
                    "the finding is about account {other}; this deployment acts in {} only",
                    self.account
                ),
            ));
        }
        let (principal, path) = match target {
            // The administrator's tag, if one is reserved, is read with the instance's state
            // by the playbook.
            Target::Instance { instance } => {
                return protect::instance_listed(&self.config.protected_instances, instance).then(
                    || {
                        (
                            Status::Protected,
                            format!("instance {instance} is listed in PROTECTED_INSTANCES"),
                        )
                    },
                );
            }
            Target::Credentials {
                principal, path, ..
            } => (principal, path),
        };
        if let Some(p) =
            self.config
                .protected
                .matching(Some(&self.account), principal, path.as_ref())
        {
            return Some((
                Status::Protected,
                format!("{} is protected by {p}", principal.describe()),
            ));
        }
        match principal {
            Principal::Root => Some((
                Status::NotifyOnly,
                "root credentials cannot be contained by IAM policy; a person must act".to_owned(),
            )),
            Principal::Unsupported(kind) if kind == rules::IDENTITY_CENTER => Some((
                Status::Unsupported,
                "an IAM Identity Center session: only Identity Center can change its role. In Identity Center, revoke the user's active sessions, disable the user (or remove the permission set's account assignment), then review what it did; nothing was changed here".to_owned(),
            )),
            Principal::Unsupported(kind) => Some((
                Status::Unsupported,
                format!("cordon does not contain {kind} principals; nothing was changed"),
            )),
            Principal::User(_) | Principal::Role(_) => None,
        }
    }
}
