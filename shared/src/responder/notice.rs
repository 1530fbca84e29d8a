//! When a person is told, and the telling: once per status, again on failure or on drift, and
//! whenever the ledger could not be written.

use time::OffsetDateTime;

use crate::actions::{ActionRecord, Outcome};
use crate::aws::AwsError;
use crate::ids::AccessKeyId;
use crate::ledger::{Delivery, Noted, Status};
use crate::notify;
use crate::policy::rfc3339_seconds;
use crate::signals::{Function, Incident, Target};

use super::{Report, Responder, ResponseError};

/// A repeat that had to change something found drift: a key re-activated, a policy removed.
pub(super) fn found_drift(kind: Delivery, actions: &[ActionRecord]) -> bool {
    kind == Delivery::Repeat && actions.iter().any(|a| a.outcome == Outcome::Succeeded)
}

/// Something cordon relies on was found altered and restored: always news.
pub(super) fn found_tampering(actions: &[ActionRecord]) -> bool {
    actions.iter().any(|a| a.tampered.is_some())
}

/// On a repeat, GuardDuty's `eventLastSeen` after the session cutoff, with a key the cutoff
/// did not cover: the attacker is active with a credential issued since. Returns when it was
/// last seen. The key the cutoff was set for, still "active", is only being refused: moving the
/// cutoff for it would cut every legitimate session of a shared role again, as often as the
/// attacker cares to keep calling.
pub(super) fn activity_after(
    kind: Delivery,
    incident: &Incident,
    cutoff: OffsetDateTime,
    key: Option<&AccessKeyId>,
    cut_key: Option<&str>,
) -> Option<String> {
    let seen = incident.last_seen.filter(|seen| *seen > cutoff)?;
    let new_key = key.is_some_and(|k| cut_key != Some(k.as_str()));
    (kind == Delivery::Repeat && new_key).then(|| rfc3339_seconds(seen))
}

/// Whether this delivery is news: a failure or a change found on a repeat always is; otherwise only a status that
/// nobody was notified of before (`notified` is the last status a notification went out for).
pub(super) fn is_news(status: Status, drift: bool, notified: Option<&str>) -> bool {
    status == Status::Failed || drift || notified != Some(status.as_str())
}

/// A declined incident is told on its first delivery, unless it is merely ignored; and again
/// on Lambda's retry of an invocation whose notice did not go out. Not when its notice was
/// counted against a flood window, nor on a repeat (a concurrent copy, GuardDuty's re-send).
pub(super) fn decline_is_news(status: Status, noted: &Noted) -> bool {
    status != Status::Ignored
        && !noted.counted
        && (noted.delivery == 1
            || noted.retry && noted.notified.as_deref() != Some(status.as_str()))
}

impl Responder {
    /// A ledger write failed: a person is told all the same (the message says the record is
    /// incomplete), and the invocation fails, so Lambda's retry records it.
    pub(super) async fn ledger_failed(
        &self,
        incident: &Incident,
        target: Option<&Target>,
        request_id: &str,
        error: AwsError,
        mut report: Report,
    ) -> ResponseError {
        let message = notify::compose(
            incident,
            target,
            report.status.unwrap_or(Status::Failed),
            self.config.dry_run,
            report.reason.as_deref(),
            &report.actions,
        )
        .ledger_failed(&error, request_id);
        // A failed publish is logged by `publish` and shows as `notified: false`; the ledger
        // error stays the one the invocation fails with.
        let _ = self.publish(incident, &message, &mut report).await;
        ResponseError::Ledger {
            incident: incident.id.clone(),
            error,
            report: Box::new(report),
        }
    }

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
