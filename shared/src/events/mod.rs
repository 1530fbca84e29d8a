//! The EventBridge envelope and the event bodies we understand. Parsing never panics: anything
//! we cannot read becomes an [`EventError`].

pub mod cloudtrail;
pub mod guardduty;
pub mod health;

use serde_json::Value;

use crate::ids::InvalidId;

pub const GUARDDUTY_FINDING: &str = "GuardDuty Finding";
pub const CLOUDTRAIL_API_CALL: &str = "AWS API Call via CloudTrail";
pub const CLOUDTRAIL_SIGN_IN: &str = "AWS Console Sign In via CloudTrail";
/// The prefix EventBridge reserves for events AWS services publish.
pub const AWS_SOURCE_PREFIX: &str = "aws.";

/// The EventBridge envelope, as `aws_lambda_events` types it; its `detail` is read below.
pub type Envelope = aws_lambda_events::eventbridge::EventBridgeEvent<Value>;

/// An event we cannot act on because it is not what it claims to be.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not an EventBridge event: {0}")]
    NotAnEnvelope(serde_json::Error),
    #[error("malformed {detail_type} detail: {source}")]
    MalformedDetail {
        detail_type: String,
        source: serde_json::Error,
    },
    #[error("finding {finding} lacks {field}")]
    MissingField {
        finding: String,
        field: &'static str,
    },
    /// Only AWS can publish an event whose source begins `aws.`: `events:PutEvents` refuses
    /// that prefix to everyone else, so any other source may be a forgery aimed at a target.
    #[error("event source {0:?} is not an AWS service; refusing a possibly forged event")]
    UntrustedSource(String),
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
}

pub enum Event {
    GuardDuty(Box<guardduty::Finding>),
    CloudTrail(Box<cloudtrail::Record>),
    Health(Box<health::HealthEvent>),
    /// Any other `detail-type`: the caller decides whether that is ignorable.
    Other {
        detail_type: String,
    },
}

pub fn parse(event: Value) -> Result<(Envelope, Event), EventError> {
    let mut envelope: Envelope =
        serde_json::from_value(event).map_err(EventError::NotAnEnvelope)?;
    if !envelope.source.starts_with(AWS_SOURCE_PREFIX) {
        return Err(EventError::UntrustedSource(
            envelope.source.chars().take(128).collect(),
        ));
    }
    let detail = std::mem::take(&mut envelope.detail);
    let malformed = |source| EventError::MalformedDetail {
        detail_type: envelope.detail_type.clone(),
        source,
    };
    let body = match envelope.detail_type.as_str() {
        GUARDDUTY_FINDING => {
            Event::GuardDuty(Box::new(serde_json::from_value(detail).map_err(malformed)?))
        }
        CLOUDTRAIL_API_CALL | CLOUDTRAIL_SIGN_IN => {
            Event::CloudTrail(Box::new(serde_json::from_value(detail).map_err(malformed)?))
        }
        health::HEALTH_EVENT => {
            Event::Health(Box::new(serde_json::from_value(detail).map_err(malformed)?))
        }
        other => Event::Other {
            detail_type: other.to_owned(),
        },
    };
    Ok((envelope, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_aws_sources_are_trusted() {
        let event = |source: &str| json!({"detail-type": GUARDDUTY_FINDING, "source": source, "detail": {}});
        for forged in ["custom.guardduty", "awsguardduty", "AWS.guardduty", ""] {
            assert!(
                matches!(parse(event(forged)), Err(EventError::UntrustedSource(_))),
                "{forged}"
            );
        }
        assert!(!matches!(
            parse(event("aws.guardduty")),
            Err(EventError::UntrustedSource(_))
        ));
    }
}
