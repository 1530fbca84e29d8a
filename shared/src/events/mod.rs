//! The EventBridge envelope and the event bodies we understand. Parsing never panics: anything
//! we cannot read becomes an [`EventError`].

pub mod cloudtrail;
pub mod guardduty;

use serde_json::Value;

use crate::ids::InvalidId;

pub const GUARDDUTY_FINDING: &str = "GuardDuty Finding";
pub const CLOUDTRAIL_API_CALL: &str = "AWS API Call via CloudTrail";
pub const CLOUDTRAIL_SIGN_IN: &str = "AWS Console Sign In via CloudTrail";

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
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
}

pub enum Event {
    GuardDuty(Box<guardduty::Finding>),
    CloudTrail(Box<cloudtrail::Record>),
    /// Any other `detail-type`: the caller decides whether that is ignorable.
    Other {
        detail_type: String,
    },
}

pub fn parse(event: Value) -> Result<(Envelope, Event), EventError> {
    let mut envelope: Envelope =
        serde_json::from_value(event).map_err(EventError::NotAnEnvelope)?;
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
        other => Event::Other {
            detail_type: other.to_owned(),
        },
    };
    Ok((envelope, body))
}
