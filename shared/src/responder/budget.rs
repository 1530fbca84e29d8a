//! The account's containment budget: the rate limit that keeps a flood of findings (or a forged
//! one) from containing half the account.
//!
//! It is charged once per target, not per incident: a principal already contained that keeps
//! calling watched APIs makes a new incident each time, and must not spend the budget that other
//! containments in the account need.

use time::OffsetDateTime;

use crate::aws::AwsError;
use crate::ledger::{Delivery, Status};
use crate::signals::{Incident, Target};

use super::Responder;

/// Only incidents not yet contained spend the budget; repeats re-verify freely, and a dry run
/// changes nothing to spend it on.
pub(super) fn spends_budget(kind: Delivery, previous: Option<&str>, dry_run: bool) -> bool {
    (kind == Delivery::New || previous == Some(Status::Deferred.as_str())) && !dry_run
}

impl Responder {
    /// A target the budget paid for before costs nothing; a new one takes one containment from
    /// the window's budget and is then marked paid for. Two first incidents for one target at
    /// the same instant may both pay: the budget errs towards deferring, never towards more.
    pub(super) async fn within_budget(
        &self,
        incident: &Incident,
        target: &Target,
        now: OffsetDateTime,
    ) -> Result<bool, AwsError> {
        let account = incident.account.as_ref().unwrap_or(&self.account).as_str();
        let resource = target.resource_key();
        if self.ledger.paid_for(account, &resource).await? {
            return Ok(true);
        }
        let taken = self
            .ledger
            .take_budget(
                account,
                self.config.rate_limit,
                self.config.rate_window_seconds,
                now,
            )
            .await?;
        // The containment is paid for: failing to remember that must not hold it back. The
        // cost is that the target's next incident pays again.
        if taken {
            if let Err(error) = self.ledger.mark_paid(account, &resource).await {
                tracing::warn!(incident = %incident.id, %error, "could not mark the target paid for");
            }
        }
        Ok(taken)
    }

    pub(super) fn deferral_reason(&self) -> String {
        format!(
            "rate limit: {} containments per {} s in account {} already used; needs a person",
            self.config.rate_limit, self.config.rate_window_seconds, self.account
        )
    }
}
