//! The message a person reads: an SNS subject that names what happened in under 100 characters,
//! a plain-text body for email, and attributes subscribers can filter on.

use aws_sdk_sns::types::MessageAttributeValue;

use crate::actions::{ActionRecord, Outcome};
use crate::aws::{aws, AwsError};
use crate::ledger::Status;
use crate::signals::{Incident, Target};

/// SNS requires a subject shorter than 100 characters.
pub const MAX_SUBJECT: usize = 99;

pub struct Message {
    pub subject: String,
    pub body: String,
    pub attributes: Vec<(&'static str, String)>,
}

pub fn compose(
    incident: &Incident,
    target: Option<&Target>,
    status: Status,
    dry_run: bool,
    reason: Option<&str>,
    actions: &[ActionRecord],
) -> Message {
    let what = target.map_or_else(|| "unknown target".to_owned(), Target::describe);
    let verb = match status {
        Status::Contained => "contained",
        Status::Failed => "FAILED to fully contain",
        Status::Planned => "dry run, would contain",
        Status::Protected => "did NOT touch protected",
        Status::NotifyOnly => "ACT NOW, cannot contain",
        Status::Unsupported => "cannot contain",
        Status::Ignored => "ignored",
        Status::Deferred => "RATE LIMIT: did NOT contain",
    };
    // The full subject if it fits, else without the key id, else cut.
    let short = target.map_or_else(|| what.clone(), Target::describe_briefly);
    let subject = [&what, &short]
        .iter()
        .map(|w| ascii(&format!("[cordon] {verb} {w}: {}", incident.kind)))
        .find(|s| s.len() <= MAX_SUBJECT)
        .unwrap_or_else(|| {
            truncate(
                &ascii(&format!("[cordon] {verb} {short}: {}", incident.kind)),
                MAX_SUBJECT,
            )
        });

    let mut body = String::new();
    let mut line = |s: String| {
        body.push_str(&s);
        body.push('\n');
    };
    line(format!(
        "What happened: {} ({})",
        incident.kind,
        one_line(&incident.title)
    ));
    line(format!(
        "Finding: {} (severity {}, seen {} time(s))",
        incident.id, incident.severity, incident.count
    ));
    if let Some(a) = &incident.account {
        line(format!(
            "Account: {a}  Region: {}",
            incident.region.as_deref().unwrap_or("-")
        ));
    }
    line(format!("Target: {what}"));
    line(format!(
        "Outcome: {}{}",
        status.as_str(),
        if dry_run {
            " (DRY_RUN: nothing was changed)"
        } else {
            ""
        }
    ));
    if let Some(r) = reason {
        line(format!("Why: {}", one_line(r)));
    }
    if !actions.is_empty() {
        line(String::new());
        line("What cordon did:".to_owned());
        for a in actions {
            let detail = match &a.outcome {
                Outcome::Succeeded if a.verified == Some(false) => {
                    " (applied; not yet visible when read back)".to_owned()
                }
                Outcome::Succeeded => String::new(),
                Outcome::Planned => " (planned)".to_owned(),
                Outcome::Skipped { reason } => format!(" ({})", one_line(reason)),
                Outcome::Failed { error } => format!(": {}", one_line(error)),
            };
            line(format!(
                "  - {} {}: {}{detail}",
                a.action.name(),
                a.target,
                a.outcome.word().to_uppercase()
            ));
            if let Some(note) = &a.note {
                line(format!("      note: {}", one_line(note)));
            }
            if let Some(tampered) = &a.tampered {
                line(format!("      TAMPERED WITH: {}", one_line(tampered)));
            }
        }
    }
    line(String::new());
    line("What to do next:".to_owned());
    for step in next_steps(status)
        .iter()
        .copied()
        .chain(redelivery(status, incident))
    {
        line(format!("  - {step}"));
    }
    if let (Some(region), Some(_)) = (&incident.region, &incident.account) {
        line(String::new());
        line(if from_cloudtrail(incident) {
            format!(
                "CloudTrail: https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{}",
                incident.id
            )
        } else {
            format!(
                "GuardDuty: https://{region}.console.aws.amazon.com/guardduty/home?region={region}#/findings?search=id%3D{}",
                incident.id
            )
        });
    }
    line(LEDGER_LINE.to_owned());

    Message {
        subject,
        body,
        attributes: vec![
            (
                "severity",
                severity_label(incident.severity, status).to_owned(),
            ),
            ("finding_type", incident.kind.clone()),
            (
                "account",
                incident
                    .account
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), ToString::to_string),
            ),
            ("outcome", status.as_str().to_owned()),
        ],
    }
}

/// `message` as another function sends it: its subject says which ("[cordon trace] ..."),
/// still under SNS's limit, and an attribute subscribers can filter on.
pub fn labelled(message: &Message, label: &'static str) -> Message {
    let subject = message
        .subject
        .replacen("[cordon]", &format!("[cordon {label}]"), 1);
    let mut attributes = message.attributes.clone();
    attributes.push(("function", label.to_owned()));
    Message {
        subject: truncate(&ascii(&subject), MAX_SUBJECT),
        body: message.body.clone(),
        attributes,
    }
}

/// The body's last line, which [`Message::ledger_failed`] replaces when it is not true.
const LEDGER_LINE: &str = "The incident ledger holds the state before every change, for release.";

impl Message {
    /// The same message, saying the ledger write failed: the person must not rely on the
    /// ledger for release, and the function's log of `request_id` holds what it lacks.
    pub fn ledger_failed(mut self, error: &AwsError, request_id: &str) -> Self {
        let rest = self
            .subject
            .strip_prefix("[cordon] ")
            .unwrap_or(&self.subject);
        self.subject = truncate(
            &ascii(&format!("[cordon] LEDGER FAILED, {rest}")),
            MAX_SUBJECT,
        );
        self.body = self.body.replace(
            LEDGER_LINE,
            &format!(
                "The incident ledger could NOT be written ({}): its record of this incident is incomplete. \
                 The function's log for request {} holds the report, with the state before every change. \
                 Lambda retries the event to record it; if the ledger stays unwritable, find out why: a \
                 changed policy on the table or on cordon's roles may be tampering.",
                one_line(&error.to_string()),
                one_line(request_id)
            ),
        );
        for (name, value) in &mut self.attributes {
            if *name == "severity" {
                *value = "high".to_owned();
            }
        }
        self.attributes.push(("ledger", "failed".to_owned()));
        self
    }
}

/// CloudTrail delivers each call once; GuardDuty re-sends a finding while its activity recurs.
fn from_cloudtrail(incident: &Incident) -> bool {
    incident.kind.starts_with("CloudTrail:")
}

/// What a deferred incident's next delivery does, if there is one.
fn redelivery(status: Status, incident: &Incident) -> Option<&'static str> {
    (status == Status::Deferred).then_some(if from_cloudtrail(incident) {
        "CloudTrail delivers each call once: cordon will NOT act on this one later. Contain the caller by hand now."
    } else {
        "If GuardDuty sends this finding again (it does while the activity recurs), a delivery after the window is contained automatically; do not wait for one."
    })
}

fn next_steps(status: Status) -> &'static [&'static str] {
    match status {
        Status::Contained => &[
            "Review the CloudTrail activity of the principal since the finding's first sighting.",
            "Look for persistence: new users, access keys, login profiles, roles and trust policy changes.",
            "When the cause is fixed, rotate the credentials and release the quarantine using the ledger's before-state.",
        ],
        Status::Failed => &[
            "Containment is INCOMPLETE: finish the failed steps by hand now.",
            "Lambda retries the event; if retries fail it lands in the dead-letter queue.",
        ],
        Status::Planned => &["DRY_RUN is on: turn it off to let cordon act, or contain by hand."],
        Status::Protected => &[
            "A protected principal was named in a finding: check it by hand at once.",
            "If it is compromised, contain it yourself; cordon will not.",
        ],
        Status::NotifyOnly => &[
            "Root credentials cannot be contained in IAM: sign in as root, rotate the password, delete root access keys, check MFA.",
            "Review CloudTrail for everything the root user did.",
        ],
        Status::Unsupported => &["Contain this principal by hand (identity provider, SSO session, or the calling service)."],
        Status::Ignored => &["Nothing: this event was recorded and ignored."],
        Status::Deferred => &[
            "cordon reached its containment limit for this account (RATE_LIMIT per RATE_WINDOW_SECONDS) and did NOT act.",
            "Many findings at once may be a real incident or someone feeding cordon findings: review them now and contain by hand.",
        ],
    }
}

fn severity_label(severity: f64, status: Status) -> &'static str {
    if matches!(
        status,
        Status::NotifyOnly | Status::Failed | Status::Deferred
    ) || severity >= 7.0
    {
        "high"
    } else if severity >= 4.0 {
        "medium"
    } else {
        "low"
    }
}

/// Finding titles and errors may carry anything; a subject and body lines must not break lines.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect()
}

fn ascii(s: &str) -> String {
    s.replace('…', "...")
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        s.to_owned()
    } else {
        format!("{}...", &s[..max - 3])
    }
}

pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    message: &Message,
) -> Result<(), AwsError> {
    let mut req = sns
        .publish()
        .topic_arn(topic_arn)
        .subject(&message.subject)
        .message(&message.body);
    for (name, value) in &message.attributes {
        let attr = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| AwsError {
                code: "InvalidParameter".to_owned(),
                message: e.to_string(),
            })?;
        req = req.message_attributes(*name, attr);
    }
    req.send().await.map_err(aws)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccessKeyId, AccountId, IamName, IncidentId};
    use crate::principal::Principal;

    fn incident(kind: &str) -> Incident {
        Incident {
            id: IncidentId::parse("abc123").unwrap(),
            kind: kind.to_owned(),
            title: "line one\nline two".to_owned(),
            severity: 8.0,
            account: Some(AccountId::parse("123456789012").unwrap()),
            region: Some("us-east-1".to_owned()),
            count: 1,
            last_seen: None,
            touched_quarantine: false,
        }
    }

    #[test]
    fn subject_names_what_was_contained() {
        let target = Target::Credentials {
            principal: Principal::User(IamName::parse("alice").unwrap()),
            path: None,
            access_key: Some(AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap()),
            all_keys: false,
            created: None,
        };
        let m = compose(
            &incident("UnauthorizedAccess:IAMUser/TorIPCaller"),
            Some(&target),
            Status::Contained,
            false,
            None,
            &[],
        );
        assert_eq!(
            m.subject,
            "[cordon] contained IAM user alice (key AKIA...MPLE): UnauthorizedAccess:IAMUser/TorIPCaller"
        );
        assert!(m.body.contains("line one line two"));
        assert!(m.attributes.contains(&("outcome", "contained".to_owned())));
    }

    fn deferred(kind: &str) -> Message {
        compose(&incident(kind), None, Status::Deferred, false, None, &[])
    }

    /// CloudTrail delivers a call once: a deferred one is never retried, so the message must
    /// not promise a next delivery, and tells a person to contain by hand.
    #[test]
    fn a_deferred_cloudtrail_call_promises_no_next_delivery() {
        let body = deferred("CloudTrail:logging-tampered").body;
        assert!(!body.contains("next delivery"), "{body}");
        assert!(
            body.contains("CloudTrail delivers each call once"),
            "{body}"
        );
        assert!(body.contains("Contain the caller by hand now"), "{body}");
        let body = deferred("UnauthorizedAccess:IAMUser/TorIPCaller").body;
        assert!(
            body.contains("If GuardDuty sends this finding again"),
            "{body}"
        );
        assert!(!body.contains("CloudTrail delivers"), "{body}");
    }

    /// A user of IAM's longest name (64 characters), for the length limits.
    fn longest_user() -> Target {
        Target::Credentials {
            principal: Principal::User(IamName::parse(&"u".repeat(64)).unwrap()),
            path: None,
            access_key: None,
            all_keys: false,
            created: None,
        }
    }

    #[test]
    fn a_ledger_failure_is_in_subject_body_and_attributes() {
        let error = AwsError {
            code: "AccessDeniedException".to_owned(),
            message: "denied".to_owned(),
        };
        let target = longest_user();
        let low = Incident {
            severity: 2.0,
            ..incident("Very:Long/Type")
        };
        let m = compose(&low, Some(&target), Status::Contained, false, None, &[])
            .ledger_failed(&error, "req-1");
        assert!(m.subject.starts_with("[cordon] LEDGER FAILED, contained"));
        assert!(m.subject.len() <= MAX_SUBJECT, "{}", m.subject);
        assert!(m
            .body
            .contains("could NOT be written (AccessDeniedException: denied)"));
        assert!(m.body.contains("request req-1"));
        assert!(!m.body.contains(LEDGER_LINE));
        assert!(m.attributes.contains(&("ledger", "failed".to_owned())));
        assert!(m.attributes.contains(&("severity", "high".to_owned())));
    }

    #[test]
    fn subject_is_capped_and_ascii() {
        let target = longest_user();
        let m = compose(
            &incident(&"Very:Long/Type".repeat(10)),
            Some(&target),
            Status::Failed,
            false,
            None,
            &[],
        );
        assert!(m.subject.len() <= MAX_SUBJECT);
        assert!(m.subject.is_ascii());
        assert!(m.subject.contains("FAILED"));
    }
}
