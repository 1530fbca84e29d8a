//! What an invocation answers: the report of every action, or the error that fails it (with the
//! report, so the log and the caller still see what was done).

use serde::Serialize;

use crate::actions::ActionRecord;
use crate::aws::AwsError;
use crate::events::EventError;
use crate::ids::IncidentId;
use crate::ledger::{Delivery, Status};
use crate::signals::Target;

/// What the invocation returns: every action with its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub function: &'static str,
    pub incident_id: Option<IncidentId>,
    pub finding_type: Option<String>,
    pub target: Option<Target>,
    /// `None` when another invocation was handling the same incident.
    pub status: Option<Status>,
    pub delivery: Option<Delivery>,
    pub delivery_number: Option<u64>,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub notified: bool,
    pub actions: Vec<ActionRecord>,
    /// An incident with several targets: one report per part (and one for what was left to a
    /// person); the whole's status is the most urgent part's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Report>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("bad event: {0}")]
    BadEvent(#[from] EventError),
    #[error("containment of incident {incident} failed: {failures}")]
    ContainmentFailed {
        incident: IncidentId,
        failures: String,
        report: Box<Report>,
    },
    #[error("incident {incident}: the ledger could not be written ({error}); the report says what was done, the retry records it")]
    Ledger {
        incident: IncidentId,
        error: AwsError,
        report: Box<Report>,
    },
    #[error("incident {incident}: the notification could not be sent ({error})")]
    Notify {
        incident: IncidentId,
        error: AwsError,
        report: Box<Report>,
    },
}

impl ResponseError {
    pub fn report(&self) -> Option<&Report> {
        match self {
            Self::BadEvent(_) => None,
            Self::ContainmentFailed { report, .. }
            | Self::Ledger { report, .. }
            | Self::Notify { report, .. } => Some(report),
        }
    }
}

impl From<ResponseError> for lambda_runtime::Diagnostic {
    fn from(e: ResponseError) -> Self {
        let error_type = match &e {
            ResponseError::BadEvent(_) => "BadEvent",
            ResponseError::ContainmentFailed { .. } => "ContainmentFailed",
            ResponseError::Ledger { .. } => "LedgerUnavailable",
            ResponseError::Notify { .. } => "NotificationFailed",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}
