//! One invocation, start to end: event -> signal -> safety checks -> claim -> playbook -> ledger
//! -> notification -> response. Both Lambda functions are this, with a different [`Function`].
//!
//! Each stage has its own module: [`refusal`] (why a target is not touched), [`restore`]
//! (cordon's quarantine policy put back when a call touched it, whoever made the call),
//! [`budget`] (the rate limit), [`passes`] (the playbook and its extra passes), [`notice`] (when
//! a person is told), [`flood`] (a rule and principal's notify-only incidents told once per
//! window). The claim (why a delivery is a repeat) is the ledger's: [`crate::ledger::Ledger::claim`].

mod budget;
mod flood;
mod notice;
mod passes;
mod refusal;
mod report;
mod restore;

pub use report::{Report, ResponseError};

use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;

use crate::actions::iam::IamActions;
use crate::actions::instance::InstanceActions;
use crate::actions::{ActionRecord, Outcome};
use crate::aws::{aws, AwsError, Clients};
use crate::config::{Config, ConfigError};
use crate::ids::{AccessKeyId, AccountId, InvalidId};
use crate::ledger::{Claim, Delivery, Ledger, Noted, Settled, Status};
use crate::notify;
use crate::principal::Principal;
use crate::protect::Pattern;
use crate::rules;
use crate::signals::{self, Function, Incident, Signal, Target};

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

/// The parts of an incident with several targets, what cordon leaves to a person, and the
/// lookups that found the parts.
struct Each {
    parts: Vec<Signal>,
    unhandled: Option<String>,
    lookups: Vec<ActionRecord>,
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
        let clients =
            clients.with_store_regions(config.ledger_region(), config.alert_topic_region());
        Ok(Self {
            function,
            iam: IamActions::new(clients.iam.clone(), &account),
            ec2: InstanceActions::new(&clients, config.ledger_table_name()),
            ledger: Ledger::new(
                clients.dynamodb.clone(),
                config.ledger_table_name().to_owned(),
                function,
            ),
            config,
            clients,
            account,
        })
    }

    pub fn function(&self) -> Function {
        self.function
    }

    pub fn config(&self) -> &Config {
        &self.config
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
        // A call on one of cordon's security groups by id: the rules learn it is cordon's.
        let extended = match self.cordon_group_written(&event).await {
            Some(group) => {
                let mut config = self.config.clone();
                config.rules.cordon_groups.push(group);
                Some(config)
            }
            None => None,
        };
        let config = extended.as_ref().unwrap_or(&self.config);
        let signal = signals::from_event(self.function, event, config).inspect_err(|e| {
            tracing::warn!(error = %e, "bad event");
        })?;
        self.handle_signal(signal, request_id, deadline).await
    }

    /// Boxed: an incident with several targets handles each part through this same path.
    fn handle_signal<'a>(
        &'a self,
        signal: Signal,
        request_id: &'a str,
        deadline: Option<Instant>,
    ) -> futures::future::BoxFuture<'a, Result<Report, ResponseError>> {
        Box::pin(self.handle_one(signal, request_id, deadline))
    }

    async fn handle_one(
        &self,
        signal: Signal,
        request_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Report, ResponseError> {
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
            parts: Vec::new(),
        };
        let (incident, target, notify_only) = match signal {
            Signal::Each {
                incident,
                parts,
                unhandled,
            } => {
                let each = Each {
                    parts,
                    unhandled,
                    lookups: Vec::new(),
                };
                return self
                    .handle_each(report, &incident, each, request_id, deadline)
                    .await;
            }
            Signal::Keys {
                incident,
                keys,
                unhandled,
            } => {
                let each = self.owners_of(&incident, &keys, unhandled).await?;
                return self
                    .handle_each(report, &incident, each, request_id, deadline)
                    .await;
            }
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
        match declined {
            Some((status, reason)) if !self.restores_quarantine(&incident) => {
                self.decline(report, &incident, Some(&target), request_id, status, reason)
                    .await
            }
            // A declined caller that touched cordon's policy: claimed like any response, so one
            // invocation restores it, but the caller is not contained.
            declined => {
                self.respond(report, &incident, &target, declined, request_id, deadline)
                    .await
            }
        }
    }

    /// The security group a CloudTrail call writes, if cordon made it (the ledger says so). A
    /// lookup that fails is logged and the call judged on its record alone.
    async fn cordon_group_written(&self, event: &Value) -> Option<String> {
        let id = rules::security_group_written(event)?;
        match self.ec2.is_cordons_group(id).await {
            Ok(true) => Some(id.to_owned()),
            Ok(false) => None,
            Err(error) => {
                tracing::warn!(group = id, %error, "could not tell whether the group is cordon's");
                None
            }
        }
    }

    /// Each reported key's owner in this account, looked up concurrently: one part per key
    /// cordon can attribute; the rest are left to a person.
    async fn owners_of(
        &self,
        incident: &Incident,
        keys: &[AccessKeyId],
        unhandled: Option<String>,
    ) -> Result<Each, ResponseError> {
        let found =
            futures::future::join_all(keys.iter().map(|k| self.iam.find_key_owner(k))).await;
        let mut each = Each {
            parts: Vec::new(),
            unhandled: None,
            lookups: Vec::new(),
        };
        let mut left: Vec<String> = unhandled.into_iter().collect();
        for (key, (lookup, owner)) in keys.iter().zip(found) {
            match owner {
                Some(user) => {
                    let target = Target::Credentials {
                        principal: Principal::User(user),
                        path: None,
                        access_key: Some(key.clone()),
                        all_keys: false,
                        created: None,
                    };
                    each.parts.push(Signal::Respond {
                        incident: incident.part(&target)?,
                        target,
                    });
                }
                None if !lookup.failed() => left.push(format!(
                    "key {} is not contained: {}",
                    key.redacted(),
                    match &lookup.outcome {
                        Outcome::Skipped { reason } => reason.as_str(),
                        _ => "its owner is unknown",
                    }
                )),
                None => {}
            }
            each.lookups.push(lookup);
        }
        each.unhandled = (!left.is_empty()).then(|| left.join("; "));
        Ok(each)
    }

    /// Every part at once, each as its own incident; the whole's status is its worst part's.
    /// What cordon leaves to a person (no parts it can act on, or more than it may) is recorded
    /// and notified under the whole incident, and a lookup that failed fails the invocation.
    async fn handle_each(
        &self,
        report: Report,
        incident: &Incident,
        each: Each,
        request_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Report, ResponseError> {
        let Each {
            parts,
            unhandled,
            lookups,
        } = each;
        let runs = parts
            .into_iter()
            .map(|part| self.handle_signal(part, request_id, deadline));
        let results = futures::future::join_all(runs).await;
        let lookup_failures: Vec<String> = lookups
            .iter()
            .filter(|a| a.failed())
            .map(|a| format!("{} {}: {:?}", a.action.name(), a.target, a.outcome))
            .collect();
        let mut whole = Report {
            incident_id: Some(incident.id.clone()),
            finding_type: Some(incident.kind.clone()),
            actions: lookups,
            ..report.clone()
        };
        let mut failure = None;
        for result in results {
            match result {
                Ok(part) => whole.parts.push(part),
                Err(e) => {
                    if let Some(part) = e.report() {
                        whole.parts.push(part.clone());
                    }
                    failure.get_or_insert(e);
                }
            }
        }
        let unhandled = match (unhandled, lookup_failures.is_empty()) {
            (unhandled, true) => unhandled,
            (unhandled, false) => Some(
                unhandled
                    .into_iter()
                    .chain([format!(
                        "cordon could not tell whose keys these are, so it contained nothing for them yet: {}",
                        lookup_failures.join("; ")
                    )])
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        let left = match unhandled {
            Some(reason) => Some((Status::NotifyOnly, reason)),
            None if whole.parts.is_empty() => Some((
                Status::Ignored,
                "the sequence names nothing this function acts on".to_owned(),
            )),
            None => None,
        };
        if let Some((status, reason)) = left {
            let told = self
                .decline(report, incident, None, request_id, status, reason)
                .await?;
            whole.notified = told.notified;
            whole.reason.clone_from(&told.reason);
            whole.delivery = told.delivery;
            whole.delivery_number = told.delivery_number;
            whole.parts.push(told);
        }
        whole.status = whole
            .parts
            .iter()
            .filter_map(|p| p.status)
            .max_by_key(|s| s.urgency());
        match failure {
            Some(e) => Err(e),
            None if !lookup_failures.is_empty() => {
                whole.status = Some(Status::Failed);
                Err(ResponseError::ContainmentFailed {
                    incident: incident.id.clone(),
                    failures: lookup_failures.join("; "),
                    report: Box::new(whole),
                })
            }
            None => Ok(whole),
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
        let noted = match self
            .ledger
            .note(incident, target, request_id, status, &reason)
            .await
        {
            Ok(noted) => noted,
            // Unrecorded, so it may be a first delivery: told unless merely ignored.
            Err(error) if notice::decline_is_news(status, &Noted::first()) => {
                return Err(self
                    .ledger_failed(incident, target, request_id, error, report)
                    .await)
            }
            Err(error) => {
                return Err(ResponseError::Ledger {
                    incident: incident.id.clone(),
                    error,
                    report: Box::new(report),
                })
            }
        };
        let delivery = noted.delivery;
        report.delivery_number = Some(delivery);
        report.delivery = Some(if delivery > 1 {
            Delivery::Repeat
        } else {
            Delivery::New
        });
        if !notice::decline_is_news(status, &noted) {
            return Ok(report);
        }
        // Counted once, on the first delivery: a retry of a notice that failed to go out is
        // published, not counted again.
        let telling = if delivery == 1 {
            self.tell_or_count(incident, target, status).await
        } else {
            flood::Telling::Publish(None)
        };
        let reason = match telling {
            flood::Telling::Publish(note) => match note {
                Some(note) => format!("{reason}; {note}"),
                None => reason,
            },
            flood::Telling::Counted(why) => {
                let reason = format!("{reason}; {why}");
                // The count is the record; failing to say so on the incident loses nothing.
                if let Err(error) = self.ledger.counted(incident, &reason).await {
                    tracing::warn!(incident = %incident.id, %error, "could not record why the notice was not published");
                }
                report.reason = Some(reason);
                return Ok(report);
            }
        };
        report.reason = Some(reason.clone());
        let message = notify::compose(
            incident,
            target,
            status,
            self.config.dry_run,
            Some(&reason),
            &[],
        );
        self.publish(incident, &message, &mut report).await?;
        if let Err(error) = self.ledger.notified(incident, status).await {
            // The notice is out; at worst a repeat tells again.
            tracing::warn!(incident = %incident.id, %error, "could not record that the notice went out");
        }
        Ok(report)
    }

    /// Contain the target, or with `declined` (a status and its reason) only record it, after
    /// restoring cordon's policy if the incident's call touched it.
    async fn respond(
        &self,
        mut report: Report,
        incident: &Incident,
        target: &Target,
        declined: Option<(Status, String)>,
        request_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Report, ResponseError> {
        let now = OffsetDateTime::now_utc();
        let claim = self
            .ledger
            .claim(incident, target, request_id, self.config.lease_seconds, now)
            .await;
        let (delivery, kind, cutoff, previous, notified, cut_key) = match claim {
            Ok(Claim::Owned {
                delivery,
                kind,
                cutoff,
                previous,
                notified,
                cut_key,
            }) => (Some(delivery), kind, cutoff, previous, notified, cut_key),
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
                report.actions = self.restore_quarantine(incident).await;
                report.status = Some(match declined {
                    Some(declined) => passes::keep_declined(&mut report, declined),
                    None => {
                        let played = self.run_playbook(incident, target, now, deadline).await;
                        self.settle(&mut report, played)
                    }
                });
                return Err(self
                    .ledger_failed(incident, Some(target), request_id, e, report)
                    .await);
            }
        };
        report.delivery = Some(kind);
        report.delivery_number = delivery;
        // A repeat showing activity after the cutoff: the attacker holds a session issued since.
        let continued = notice::activity_after(
            kind,
            incident,
            cutoff,
            target.access_key(),
            cut_key.as_deref(),
        );
        let cutoff = if continued.is_some() { now } else { cutoff };
        report.actions = self.restore_quarantine(incident).await;
        let status = if let Some(declined) = declined {
            passes::keep_declined(&mut report, declined)
        } else {
            let within_budget =
                if budget::spends_budget(kind, previous.as_deref(), self.config.dry_run) {
                    self.within_budget(incident, target, now).await
                } else {
                    Ok(true)
                };
            match within_budget {
                Ok(true) => {
                    let played = self.run_playbook(incident, target, cutoff, deadline).await;
                    self.settle(&mut report, played)
                }
                Ok(false) => {
                    report.reason = Some(self.deferral_reason());
                    tracing::warn!(incident = %incident.id, "containment deferred by the rate limit");
                    Status::Deferred
                }
                // Not knowing the budget is not a licence to spend it: nothing is changed, a
                // person is told, and the failed invocation is retried.
                Err(error) => {
                    tracing::error!(incident = %incident.id, %error, "containment budget unreadable; not acting");
                    report.status = Some(Status::Failed);
                    report.reason = Some(
                        "the account's containment budget could not be read from the ledger: cordon did NOT act yet"
                            .to_owned(),
                    );
                    return Err(self
                        .ledger_failed(incident, Some(target), request_id, error, report)
                        .await);
                }
            }
        };
        report.status = Some(status);

        let drift = notice::found_drift(kind, &report.actions);
        let tampered = notice::found_tampering(&report.actions);
        let news = if let Some(seen) = &continued {
            Some(format!(
                "activity continued after containment (last seen {seen}, after the session cutoff): sessions cut again as of now"
            ))
        } else if tampered {
            Some("cordon's quarantine policy had been tampered with; this build's document was restored".to_owned())
        } else {
            drift.then(|| "repeat delivery found drift and re-applied it".to_owned())
        };
        // After the reason the status already has (a refusal, the rate limit), not instead of it.
        if let Some(news) = news {
            report.reason = Some(match report.reason.take() {
                Some(why) => format!("{why}; {news}"),
                None => news,
            });
        }
        let mut notify_error = None;
        if notice::is_news(
            status,
            drift || tampered || continued.is_some(),
            notified.as_deref(),
        ) {
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
                Settled {
                    status,
                    actions: &report.actions,
                    notified: report.notified.then_some(status),
                    moved_cutoff: continued.is_some().then_some((cutoff, target.access_key())),
                    reason: report.reason.as_deref(),
                },
            )
            .await;
        // Any notification above promised a ledger record that is not there: say so.
        if let Err(error) = recorded {
            return Err(self
                .ledger_failed(incident, Some(target), request_id, error, report)
                .await);
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
}
