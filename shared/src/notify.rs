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
    for step in next_steps(status) {
        line(format!("  - {step}"));
    }
    if let (Some(region), Some(_)) = (&incident.region, &incident.account) {
        line(String::new());
        line(if incident.kind.starts_with("CloudTrail:") {
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
    line("The incident ledger holds the state before every change, for release.".to_owned());

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
            "The next delivery of this finding after the window is contained automatically.",
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

    #[test]
    fn subject_is_capped_and_ascii() {
        let target = Target::Credentials {
            principal: Principal::User(IamName::parse(&"u".repeat(64)).unwrap()),
            access_key: None,
            all_keys: false,
            created: None,
        };
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
