//! When a person is told, and the telling: once per status, again on failure or on drift.

use time::OffsetDateTime;

use crate::actions::{ActionRecord, Outcome};
use crate::ledger::{Delivery, Status};
use crate::notify;
use crate::policy::rfc3339_seconds;
use crate::signals::{Function, Incident};

use super::{Report, Responder, ResponseError};

/// A repeat that had to change something found drift: a key re-activated, a policy removed.
pub(super) fn found_drift(kind: Delivery, actions: &[ActionRecord]) -> bool {
    kind == Delivery::Repeat && actions.iter().any(|a| a.outcome == Outcome::Succeeded)
}

/// Something cordon relies on was found altered and restored: always news.
pub(super) fn found_tampering(actions: &[ActionRecord]) -> bool {
    actions.iter().any(|a| a.tampered.is_some())
}

/// On a repeat, GuardDuty's `eventLastSeen` after the session cutoff: the attacker is still
/// active with a session issued since. Returns when it was last seen.
pub(super) fn activity_after(
    kind: Delivery,
    incident: &Incident,
    cutoff: OffsetDateTime,
) -> Option<String> {
    let seen = incident.last_seen.filter(|seen| *seen > cutoff)?;
    (kind == Delivery::Repeat).then(|| rfc3339_seconds(seen))
}

/// Whether this delivery is news: a failure or a change found on a repeat always is; otherwise only a status that
/// nobody was notified of before (`notified` is the last status a notification went out for).
pub(super) fn is_news(status: Status, drift: bool, notified: Option<&str>) -> bool {
    status == Status::Failed || drift || notified != Some(status.as_str())
}

/// A declined incident is told once, on its first delivery, unless it is merely ignored.
pub(super) fn decline_is_news(status: Status, delivery: u64) -> bool {
    status != Status::Ignored && delivery == 1
}

impl Responder {
    pub(super) async fn publish(
        &self,
        incident: &Incident,
        message: &notify::Message,
        report: &mut Report,
    ) -> Result<(), ResponseError> {
        let traced;
        let message = if self.function == Function::TraceCredentials {
            traced = notify::labelled(message, "trace");
            &traced
        } else {
            message
        };
        match notify::publish(&self.clients.sns, &self.config.alert_topic_arn, message).await {
            Ok(()) => {
                report.notified = true;
                tracing::info!(incident = %incident.id, subject = %message.subject, "notified");
                Ok(())
            }
            Err(error) => {
                tracing::error!(incident = %incident.id, %error, "notification failed");
                Err(ResponseError::Notify {
                    incident: incident.id.clone(),
                    error,
                    report: Box::new(report.clone()),
                })
            }
        }
    }
}
