//! AWS Health events (`source: aws.health`, detail-type `AWS Health Event`). The `RISK`
//! service's credential events are how AWS tells an account it found one of its keys exposed
//! (in a public repository, say) or quarantined it.

use serde::Deserialize;

pub const HEALTH_EVENT: &str = "AWS Health Event";
/// The Health service whose events are about a risk to the account.
pub const RISK: &str = "RISK";
/// The credential-risk event types: each names the keys in `affectedEntities`.
pub const CREDENTIAL_RISKS: &[&str] = &[
    "AWS_RISK_CREDENTIALS_EXPOSED",
    "AWS_RISK_CREDENTIALS_COMPROMISED_SUSPECTED",
    "AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED",
    "AWS_RISK_IAM_QUARANTINE",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthEvent {
    /// Stable across the updates Health sends for one event: the incident's identity.
    pub event_arn: String,
    pub service: String,
    pub event_type_code: String,
    #[serde(default)]
    pub affected_account: Option<String>,
    #[serde(default)]
    pub affected_entities: Vec<AffectedEntity>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedEntity {
    pub entity_value: String,
}

impl HealthEvent {
    pub fn is_credential_risk(&self) -> bool {
        self.service == RISK && CREDENTIAL_RISKS.contains(&self.event_type_code.as_str())
    }
}
