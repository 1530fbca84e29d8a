//! A CloudTrail record, as EventBridge delivers it in `detail` ("AWS API Call via CloudTrail")
//! and as trail log files hold it. Request and response bodies differ per API: left as JSON.

use serde::Deserialize;
use serde_json::Value;

/// The path of service-linked roles (`arn:aws:iam::<account>:role/aws-service-role/<service>/…`).
const SERVICE_LINKED_ROLE_PATH: &str = "aws-service-role/";

/// Our own type, not `aws_lambda_events`' `AWSAPICall`: that one requires `requestID`, `eventID`,
/// `userAgent` and `sourceIPAddress`, which real records (console sign-ins, AWS's own examples) lack.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Absent from some published examples; an event without one cannot be an incident.
    #[serde(default, rename = "eventID")]
    pub event_id: Option<String>,
    pub event_source: String,
    pub event_name: String,
    #[serde(default)]
    pub event_time: Option<String>,
    #[serde(default)]
    pub aws_region: Option<String>,
    #[serde(default)]
    pub source_ip_address: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub request_parameters: Option<Value>,
    #[serde(default)]
    pub response_elements: Option<Value>,
    #[serde(default)]
    pub recipient_account_id: Option<String>,
    #[serde(default)]
    pub user_identity: UserIdentity,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub invoked_by: Option<String>,
    #[serde(default)]
    pub session_context: Option<SessionContext>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    #[serde(default)]
    pub session_issuer: Option<SessionIssuer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub arn: Option<String>,
}

impl Record {
    /// A request field by dotted path (`policyArn`, `trailName`, `ipPermissions.items`).
    pub fn request(&self, path: &str) -> Option<&Value> {
        path.split('.')
            .try_fold(self.request_parameters.as_ref()?, |v, k| v.get(k))
    }

    pub fn request_str(&self, path: &str) -> Option<&str> {
        self.request(path).and_then(Value::as_str)
    }

    pub fn account(&self) -> Option<&str> {
        self.recipient_account_id
            .as_deref()
            .or(self.user_identity.account_id.as_deref())
    }

    /// Made by an AWS service itself: `userIdentity.type` is `AWSService`, or the identity names
    /// no principal at all, only the service (`{"accountId", "invokedBy"}`, as service events such
    /// as KMS `RotateKey` carry it).
    ///
    /// `invokedBy` beside an IAM user, a role session or root does not make the call a service's:
    /// it says which service carried that principal's request (CloudFormation's forward-access
    /// sessions, `signin.amazonaws.com` for the console, Secrets Manager calling KMS). The call is
    /// that principal acting, with its own permissions: a backdoor key created through a stack is
    /// the stack deployer's doing.
    ///
    /// A service-linked role's session is the service too: IAM reserves the `/aws-service-role/`
    /// path for roles only AWS creates, which only their service can assume and nobody can change.
    pub fn by_aws_service(&self) -> bool {
        let id = &self.user_identity;
        match id.kind.as_deref() {
            Some("AWSService") => true,
            Some("AssumedRole") => id
                .session_context
                .as_ref()
                .and_then(|c| c.session_issuer.as_ref())
                .and_then(|i| i.arn.as_deref())
                .and_then(|arn| arn.split_once(":role/"))
                .is_some_and(|(_, path)| path.starts_with(SERVICE_LINKED_ROLE_PATH)),
            None => id.invoked_by.is_some(),
            Some(_) => false,
        }
    }
}

/// Every record in a JSON document, whatever its form: one record, an array, a trail log file
/// (`{"Records": [...]}`) or an EventBridge envelope. Items that are not records come back as
/// errors, never as a panic.
pub fn records(doc: Value) -> Vec<Result<Record, serde_json::Error>> {
    match doc {
        Value::Array(items) => items.into_iter().flat_map(records).collect(),
        Value::Object(mut map) => {
            if let Some(list) = map.remove("Records") {
                records(list)
            } else if map.contains_key("detail-type") {
                records(map.remove("detail").unwrap_or(Value::Null))
            } else {
                vec![serde_json::from_value(Value::Object(map))]
            }
        }
        other => vec![serde_json::from_value(other)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(user_identity: Value) -> Record {
        serde_json::from_value(json!({
            "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
            "userIdentity": user_identity,
        }))
        .unwrap()
    }

    #[test]
    fn invoked_by_does_not_make_a_principal_a_service() {
        // A principal whose call a service carried (forward-access sessions, the console).
        for kind in ["IAMUser", "AssumedRole", "Root"] {
            let r = identity(json!({"type": kind, "invokedBy": "cloudformation.amazonaws.com"}));
            assert!(!r.by_aws_service(), "{kind}");
        }
        // The service itself: by type, or an identity that names only the service.
        let service = identity(json!({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}));
        assert!(service.by_aws_service());
        let event = identity(json!({"accountId": "123456789012", "invokedBy": "AWS Internal"}));
        assert!(event.by_aws_service());
        assert!(!identity(json!({"type": "IAMUser"})).by_aws_service());
        // A service-linked role's session (IAM refuses that path to CreateRole); an ordinary
        // role under `/service-role/` is anyone's.
        let session = |arn: &str| {
            identity(json!({"type": "AssumedRole",
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": arn}}}))
        };
        let linked = "arn:aws:iam::123456789012:role/aws-service-role/guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty";
        assert!(session(linked).by_aws_service());
        let ordinary = "arn:aws:iam::123456789012:role/service-role/codebuild-deploy";
        assert!(!session(ordinary).by_aws_service());
        let named_like = "arn:aws:iam::123456789012:role/ops/aws-service-role/x";
        assert!(!session(named_like).by_aws_service());
    }
}
