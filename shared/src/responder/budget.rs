//! The account's containment budget: the rate limit that keeps a flood of findings (or a forged
//! one) from containing half the account.

use time::OffsetDateTime;

use crate::aws::AwsError;
use crate::ledger::{Delivery, Status};
use crate::signals::{Function, Incident};

use super::Responder;

/// Only incidents not yet contained spend the budget; repeats re-verify freely, and a dry run
/// changes nothing to spend it on.
pub(super) fn spends_budget(kind: Delivery, previous: Option<&str>, dry_run: bool) -> bool {
    (kind == Delivery::New || previous == Some(Status::Deferred.as_str())) && !dry_run
}

impl Responder {
    pub(super) async fn within_budget(
        &self,
        incident: &Incident,
        now: OffsetDateTime,
    ) -> Result<bool, AwsError> {
        let account = incident.account.as_ref().unwrap_or(&self.account);
        // The trace answers every incident quarantine-credentials does: its own budget, of the
        // same size, so tracing never spends what containment needs.
        let bucket = match self.function {
            Function::TraceCredentials => format!("{account}#{}", self.function.name()),
            _ => account.to_string(),
        };
        self.ledger
            .take_budget(
                &bucket,
                self.config.rate_limit,
                self.config.rate_window_seconds,
                now,
            )
            .await
    }

    pub(super) fn deferral_reason(&self) -> String {
        format!(
            "rate limit: {} containments per {} s in account {} already used; needs a person",
            self.config.rate_limit, self.config.rate_window_seconds, self.account
        )
    }
}
