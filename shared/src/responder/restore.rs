//! cordon's quarantine policy, restored when a call touched it, whatever becomes of the caller:
//! a protected principal, or a role while `QUARANTINE_ROLES` is off, is not contained, yet the
//! policy's document holds every quarantine in the account.

use crate::actions::ActionRecord;
use crate::signals::Incident;

use super::Responder;

impl Responder {
    /// Whether the incident's call touched cordon's quarantine policy here. Another account's
    /// call is about that account's policy, not ours.
    pub(super) fn restores_quarantine(&self, incident: &Incident) -> bool {
        incident.touched_quarantine && self.other_account(incident).is_none()
    }

    /// The restore's record, or none when the call did not touch the policy. It runs before the
    /// playbook, which then finds the document in place, and outside the rate limit, which
    /// bounds the principals cordon locks out, not the repair of its own policy.
    pub(super) async fn restore_quarantine(&self, incident: &Incident) -> Vec<ActionRecord> {
        if !self.restores_quarantine(incident) {
            return Vec::new();
        }
        // Boxed: inline, its SDK call chains would add to every invocation's stack.
        vec![Box::pin(self.iam.restore_quarantine_policy(self.config.dry_run)).await]
    }
}
