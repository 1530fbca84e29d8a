//! The GuardDuty finding as EventBridge delivers it in `detail` (camelCase, the GetFindings shape).
//! Only what a playbook reads is typed; every field is optional because GuardDuty varies by
//! finding type and AWS's own samples disagree on types (see `lenient`).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub id: String,
    #[serde(rename = "type")]
    pub finding_type: String,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default, deserialize_with = "lenient::f64")]
    pub severity: Option<f64>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    pub resource: Resource,
    #[serde(default)]
    pub service: Service,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub access_key_details: Option<AccessKeyDetails>,
    #[serde(default)]
    pub instance_details: Option<InstanceDetails>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyDetails {
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub principal_id: Option<String>,
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub user_type: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDetails {
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub iam_instance_profile: Option<InstanceProfileRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceProfileRef {
    #[serde(default)]
    pub arn: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    #[serde(default, deserialize_with = "lenient::u64")]
    pub count: Option<u64>,
    #[serde(default)]
    pub event_last_seen: Option<String>,
    /// `ACTOR` (the resource did it) or `TARGET` (it was done to the resource).
    #[serde(default)]
    pub resource_role: Option<String>,
    /// Extended Threat Detection's attack sequence, when the finding is one.
    #[serde(default)]
    pub detection: Option<Detection>,
    /// Free-form in events (`{"sample": true}`, `{"unusual": …}`), so left untyped.
    #[serde(default)]
    pub additional_info: Option<serde_json::Value>,
    /// What GuardDuty saw done (`awsApiCallAction`, `networkConnectionAction`, ...): read by
    /// path, so a shape cordon does not know never fails the parse.
    #[serde(default)]
    pub action: Option<serde_json::Value>,
}

/// `service.detection` (GuardDuty API model: `Detection`, `Sequence`, `Actor`, `User`,
/// `ResourceV2`). Only what cordon acts on is typed; the rest is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    #[serde(default)]
    pub sequence: Option<Sequence>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sequence {
    #[serde(default)]
    pub actors: Vec<Actor>,
    #[serde(default)]
    pub resources: Vec<ResourceV2>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    #[serde(default)]
    pub user: Option<User>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The access key the actor used, when GuardDuty knows it.
    #[serde(default)]
    pub credential_uid: Option<String>,
    /// Not necessarily the finding's account.
    #[serde(default)]
    pub account: Option<UserAccount>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAccount {
    #[serde(default)]
    pub uid: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceV2 {
    #[serde(default)]
    pub uid: Option<String>,
    /// `EC2_INSTANCE`, `ACCESS_KEY`, `S3_BUCKET`, ...
    #[serde(default)]
    pub resource_type: Option<String>,
    /// A sequence may span accounts and regions; cordon acts only on its own.
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// One member per resource kind (`accessKey`, `ec2Instance`, `autoscalingAutoScalingGroup`
    /// with `ec2InstanceUids`, ...): read by path where needed.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

impl Finding {
    /// `CreateSampleFindings` marks its output; acting on it would let anyone with
    /// `guardduty:CreateSampleFindings` aim us at a principal.
    pub fn is_sample(&self) -> bool {
        self.service
            .additional_info
            .as_ref()
            .and_then(|i| i.get("sample"))
            .is_some_and(|s| s.as_bool() == Some(true) || s.as_str() == Some("true"))
    }

    /// The account that made the API call, when GuardDuty says it came from outside the
    /// finding's account (`service.action.awsApiCallAction.remoteAccountDetails`, which
    /// "appears if the call was made from outside your account"). The principal
    /// `accessKeyDetails` then names is that account's: a same-named one here is someone else.
    pub fn remote_caller_account(&self) -> Option<&str> {
        self.service
            .action
            .as_ref()?
            .pointer("/awsApiCallAction/remoteAccountDetails/accountId")?
            .as_str()
    }

    pub fn resource_type(&self) -> &str {
        self.resource.resource_type.as_deref().unwrap_or("")
    }

    /// The resource was acted on from outside (probed, scanned, brute-forced), not the actor.
    pub fn resource_is_target(&self) -> bool {
        self.service.resource_role.as_deref() == Some("TARGET")
    }
}

/// AWS's samples carry numbers as strings and strings as numbers; accept either, never fail on it.
mod lenient {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
    }

    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(f64(d)?.filter(|n| *n >= 0.0).map(|n| n as u64))
    }
}
