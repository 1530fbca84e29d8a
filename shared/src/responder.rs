//! One invocation, start to end: event -> signal -> safety checks -> claim -> playbook -> ledger
//! -> notification -> response. Both Lambda functions are this, with a different [`Function`].

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::actions::iam::IamActions;
use crate::actions::instance::InstanceActions;
use crate::actions::{ActionRecord, Outcome};
use crate::aws::{aws, AwsError, Clients};
use crate::config::{Config, ConfigError};
use crate::events::EventError;
use crate::ids::{AccountId, IncidentId, InvalidId};
use crate::ledger::{Claim, Delivery, Ledger, Status};
use crate::notify;
use crate::playbooks::{credentials, instance, Played};
use crate::protect::Pattern;
use crate::signals::{self, Function, Incident, Principal, Signal, Target};

/// Everything built once per cold start.
pub struct Responder {
    function: Function,
    config: Config,
    clients: Clients,
    account: AccountId,
    iam: IamActions,
    ec2: InstanceActions,
    ledger: Ledger,
}

/// An extra pass starts only with this much of the invocation left, for the pass (the SDK bounds
/// each operation at 30 s) and the ledger and notification after it; otherwise the invocation
/// fails as it stands and Lambda's retry gets a fresh timeout.
const PASS_RESERVE: Duration = Duration::from_secs(40);

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot learn our own identity (sts:GetCallerIdentity): {0}")]
    Identity(AwsError),
    #[error("our own identity: {0}")]
    Account(#[from] InvalidId),
    #[error("HTTPS client: {0}")]
    Http(#[from] aws_smithy_http_client::HttpClientError),
}

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
    #[error("incident {incident}: the ledger could not be written ({error}); containment ran, the retry records it")]
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

impl Responder {
    pub async fn from_env(function: Function) -> Result<Self, InitError> {
        let config = Config::from_env()?;
        let clients = Clients::from_env(config.trust_store).await?;
        Self::new(function, config, clients).await
    }

    /// Learns the account and the function's own role, which joins the protected principals.
    pub async fn new(
        function: Function,
        mut config: Config,
        clients: Clients,
    ) -> Result<Self, InitError> {
        let me = clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| InitError::Identity(aws(e)))?;
        let account = AccountId::parse(me.account().unwrap_or_default())?;
        if let Some(own_role) = me.arn().and_then(Pattern::from_caller_arn) {
            config.protected.add(own_role);
        }
        Ok(Self {
            function,
            iam: IamActions::new(clients.iam.clone(), &account),
            ec2: InstanceActions::new(&clients),
            ledger: Ledger::new(
                clients.dynamodb.clone(),
                config.ledger_table.clone(),
                function,
            ),
            config,
            clients,
            account,
        })
    }

    pub async fn handle(&self, event: Value, request_id: &str) -> Result<Report, ResponseError> {
        self.handle_until(event, request_id, None).await
    }

    /// `handle`, within Lambda's `deadline`: extra passes over failed actions start only while
    /// enough time remains to finish them and still write the record and the notification.
    pub async fn handle_until(
        &self,
        event: Value,
        request_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Report, ResponseError> {
        let signal = signals::from_event(self.function, event, &self.config).inspect_err(|e| {
            tracing::warn!(error = %e, "bad event");
        })?;
        let report = Report {
            function: self.function.name(),
            incident_id: None,
            finding_type: None,
            target: None,
            status: None,
            delivery: None,
            delivery_number: None,
            dry_run: self.config.dry_run,
            reason: None,
            notified: false,
            actions: Vec::new(),
        };
        let (incident, target, notify_only) = match signal {
            Signal::Ignore {
                incident: None,
                reason,
            } => {
                tracing::info!(%reason, "ignored");
                return Ok(Report {
                    status: Some(Status::Ignored),
                    reason: Some(reason),
                    ..report
                });
            }
            Signal::Ignore {
                incident: Some(incident),
                reason,
            } => {
                return self
                    .decline(report, &incident, None, request_id, Status::Ignored, reason)
                    .await
            }
            Signal::Respond { incident, target } => (incident, target, None),
            Signal::Notify {
                incident,
                target,
                reason,
            } => (incident, target, Some(reason)),
        };
        let report = Report {
            incident_id: Some(incident.id.clone()),
            finding_type: Some(incident.kind.clone()),
            target: Some(target.clone()),
            ..report
        };
        let declined = self
            .refusal(&incident, &target)
            .or_else(|| notify_only.map(|reason| (Status::NotifyOnly, reason)));
        if let Some((status, reason)) = declined {
            return self
                .decline(report, &incident, Some(&target), request_id, status, reason)
                .await;
        }
        self.respond(report, &incident, &target, request_id, deadline)
            .await
    }

    /// Why this target must not be touched, checked before any change.
    fn refusal(&self, incident: &Incident, target: &Target) -> Option<(Status, String)> {
        if let Some(other) = incident.account.as_ref().filter(|a| **a != self.account) {
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
        let Target::Credentials { principal, .. } = target else {
            return None;
        };
        if let Some(p) = self
            .config
            .protected
            .matching(Some(&self.account), principal)
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
            Principal::Unsupported(kind) => Some((
                Status::Unsupported,
                format!("cordon does not contain {kind} principals; nothing was changed"),
            )),
            Principal::User(_) | Principal::Role(_) => None,
        }
    }

    /// Record (and on first sight, notify) an incident we do not act on.
    async fn decline(
        &self,
        report: Report,
        incident: &Incident,
        target: Option<&Target>,
        request_id: &str,
        status: Status,
        reason: String,
    ) -> Result<Report, ResponseError> {
        tracing::info!(incident = %incident.id, status = status.as_str(), %reason, "not acting");
        let mut report = Report {
            incident_id: Some(incident.id.clone()),
            finding_type: Some(incident.kind.clone()),
            status: Some(status),
            reason: Some(reason.clone()),
            ..report
        };
        let delivery = self
            .ledger
            .note(incident, target, request_id, status, &reason)
            .await
            .map_err(|error| ResponseError::Ledger {
                incident: incident.id.clone(),
                error,
                report: Box::new(report.clone()),
            })?;
        report.delivery_number = Some(delivery);
        report.delivery = Some(if delivery > 1 {
            Delivery::Repeat
        } else {
            Delivery::New
        });
        if status != Status::Ignored && delivery == 1 {
            let message = notify::compose(
                incident,
                target,
                status,
                self.config.dry_run,
                Some(&reason),
                &[],
            );
            self.publish(incident, &message, &mut report).await?;
        }
        Ok(report)
    }

    async fn respond(
        &self,
        mut report: Report,
        incident: &Incident,
        target: &Target,
        request_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Report, ResponseError> {
        let now = OffsetDateTime::now_utc();
        let claim = self
            .ledger
            .claim(incident, target, request_id, self.config.lease_seconds, now)
            .await;
        let (delivery, kind, cutoff, previous, notified) = match claim {
            Ok(Claim::Owned {
                delivery,
                kind,
                cutoff,
                previous,
                notified,
            }) => (Some(delivery), kind, cutoff, previous, notified),
            Ok(Claim::Busy { delivery, owner }) => {
                tracing::info!(incident = %incident.id, %owner, "another invocation is handling this incident");
                return Ok(Report {
                    delivery: Some(Delivery::ConcurrentDuplicate),
                    delivery_number: Some(delivery),
                    reason: Some(format!(
                        "invocation {owner} is handling this incident; nothing was changed"
                    )),
                    ..report
                });
            }
            // Containment beats bookkeeping: act now, fail afterwards so the retry records it.
            Err(e) => {
                tracing::error!(incident = %incident.id, error = %e, "ledger unavailable; containing anyway");
                let played = self.run_playbook(incident, target, now, deadline).await;
                report.status = Some(self.settle(&mut report, played));
                return Err(ResponseError::Ledger {
                    incident: incident.id.clone(),
                    error: e,
                    report: Box::new(report),
                });
            }
        };
        report.delivery = Some(kind);
        report.delivery_number = delivery;
        // Only incidents not yet contained spend the account's budget; repeats re-verify freely.
        let first_attempt =
            kind == Delivery::New || previous.as_deref() == Some(Status::Deferred.as_str());
        let within_budget = if first_attempt && !self.config.dry_run {
            self.within_budget(incident, now).await
        } else {
            Ok(true)
        };
        let status = match within_budget {
            Ok(true) => {
                let played = self.run_playbook(incident, target, cutoff, deadline).await;
                self.settle(&mut report, played)
            }
            Ok(false) => {
                report.reason = Some(format!(
                    "rate limit: {} containments per {} s in account {} already used; needs a person",
                    self.config.rate_limit, self.config.rate_window_seconds, self.account
                ));
                tracing::warn!(incident = %incident.id, "containment deferred by the rate limit");
                Status::Deferred
            }
            Err(error) => {
                return Err(ResponseError::Ledger {
                    incident: incident.id.clone(),
                    error,
                    report: Box::new(report),
                })
            }
        };
        report.status = Some(status);

        // A repeat that had to change something found drift: a key re-activated, a policy removed.
        let drift = kind == Delivery::Repeat
            && report
                .actions
                .iter()
                .any(|a| a.outcome == Outcome::Succeeded);
        if drift {
            report.reason = Some("repeat delivery found drift and re-applied it".to_owned());
        }
        let should_notify =
            status == Status::Failed || drift || notified.as_deref() != Some(status.as_str());
        let mut notify_error = None;
        if should_notify {
            let message = notify::compose(
                incident,
                Some(target),
                status,
                self.config.dry_run,
                report.reason.as_deref(),
                &report.actions,
            );
            if let Err(e) = self.publish(incident, &message, &mut report).await {
                notify_error = Some(e);
            }
        }
        let delivery = delivery.unwrap_or_default();
        let recorded = self
            .ledger
            .finish(
                incident,
                delivery,
                request_id,
                status,
                &report.actions,
                report.notified.then_some(status),
            )
            .await;
        if let Err(error) = recorded {
            return Err(ResponseError::Ledger {
                incident: incident.id.clone(),
                error,
                report: Box::new(report),
            });
        }
        let failures: Vec<String> = report
            .actions
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Failed { error } => {
                    Some(format!("{} {}: {error}", a.action.name(), a.target))
                }
                _ => None,
            })
            .collect();
        if !failures.is_empty() {
            return Err(ResponseError::ContainmentFailed {
                incident: incident.id.clone(),
                failures: failures.join("; "),
                report: Box::new(report),
            });
        }
        if let Some(e) = notify_error {
            return Err(e);
        }
        Ok(report)
    }

    async fn within_budget(
        &self,
        incident: &Incident,
        now: OffsetDateTime,
    ) -> Result<bool, AwsError> {
        let account = incident.account.as_ref().unwrap_or(&self.account);
        self.ledger
            .take_budget(
                account.as_str(),
                self.config.rate_limit,
                self.config.rate_window_seconds,
                now,
            )
            .await
    }

    /// Every action is safe to repeat, so failed ones get two more passes within the
    /// invocation (after the SDK's own retries, and before Lambda's), each reading state anew.
    async fn run_playbook(
        &self,
        incident: &Incident,
        target: &Target,
        cutoff: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Played {
        let mut played = self.play_once(incident, target, cutoff).await;
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
            let again = self.play_once(incident, target, cutoff).await;
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
    ) -> Played {
        match target {
            Target::Credentials {
                principal,
                access_key,
                all_keys,
            } => {
                let opts = credentials::Options {
                    dry_run: self.config.dry_run,
                    deactivate_all_keys: self.config.deactivate_all_keys || *all_keys,
                    quarantine_roles: self.config.quarantine_roles,
                };
                Played::Actions(
                    credentials::contain(
                        &self.iam,
                        principal,
                        access_key.as_ref(),
                        &incident.id,
                        cutoff,
                        &opts,
                    )
                    .await,
                )
            }
            Target::Instance { instance: id } => {
                let opts = instance::Options {
                    dry_run: self.config.dry_run,
                    stop_instance: self.config.stop_instance,
                };
                instance::contain(&self.ec2, &self.iam, id, &incident.id, cutoff, &opts).await
            }
        }
    }

    /// The incident's status from what the playbook did; a refusal (a protected instance) is
    /// recorded with its reason.
    fn settle(&self, report: &mut Report, played: Played) -> Status {
        match played {
            Played::Refused(reason) => {
                report.reason = Some(reason);
                Status::Protected
            }
            Played::Actions(actions) => {
                report.actions = actions;
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

    async fn publish(
        &self,
        incident: &Incident,
        message: &notify::Message,
        report: &mut Report,
    ) -> Result<(), ResponseError> {
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
