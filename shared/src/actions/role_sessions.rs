//! Deny the sessions a traced chain obtained on a role, and only those: a statement on the role
//! that denies everything to `aws:userid` = `<role id>:<session name>`. Revoking every session
//! of the role (`AWSRevokeOlderSessions`) would cut off the rest of the fleet that uses it.

use serde::Serialize;
use serde_json::{json, Value};

use super::iam::IamActions;
use super::{converge, Action, ActionRecord, Applied, Observed};
use crate::aws::aws;
use crate::ids::{IamName, InvalidId};
use crate::policy;

/// The role's inline policy that holds the denied sessions; each delivery adds to it.
pub const TRACED_SESSIONS_POLICY_NAME: &str = "CordonDenyTracedSessions";

/// `aws:userid` of a role session: the role's unique id (`AROA…`) and the session name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let ok = s.split_once(':').is_some_and(|(id, name)| {
            id.len() >= 16
                && id.starts_with("AROA")
                && id
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && (2..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "role session id",
                value: s.chars().take(80).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn document(sessions: &[String]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CordonDenyTracedSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:userid": sessions}},
        }],
    })
}

/// The session ids a document of ours already denies.
fn denied(doc: &Value) -> Vec<String> {
    let list = doc.pointer("/Statement/0/Condition/StringEquals/aws:userid");
    match list {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl IamActions {
    /// Add `sessions` to the role's deny; sessions denied before stay denied.
    pub async fn deny_role_sessions(
        &self,
        role: &IamName,
        sessions: &[SessionId],
        dry_run: bool,
    ) -> ActionRecord {
        let current = self
            .client
            .get_role_policy()
            .role_name(role.as_str())
            .policy_name(TRACED_SESSIONS_POLICY_NAME)
            .send()
            .await
            .map(|o| {
                let text = policy::decode(o.policy_document());
                serde_json::from_str::<Value>(&text).ok()
            })
            .map_err(aws);
        let current = match current {
            Err(e) if e.is("NoSuchEntity") => Ok(None),
            other => other,
        };
        let mut all = current
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(denied)
            .unwrap_or_default();
        for s in sessions {
            if !all.iter().any(|a| a == s.as_str()) {
                all.push(s.as_str().to_owned());
            }
        }
        let observed = current.map(|doc| {
            let before = doc.as_ref().map(denied).unwrap_or_default();
            Observed {
                in_place: sessions.iter().all(|s| before.iter().any(|b| b == s.as_str())),
                state: json!({"inline_policy": TRACED_SESSIONS_POLICY_NAME, "denied_sessions": before}),
            }
        });
        let desired = document(&all);
        converge(
            Action::DenyRoleSessions,
            format!("role/{role}"),
            dry_run,
            observed,
            || async {
                self.client
                    .put_role_policy()
                    .role_name(role.as_str())
                    .policy_name(TRACED_SESSIONS_POLICY_NAME)
                    .policy_document(desired.to_string())
                    .send()
                    .await
                    .map_err(aws)?;
                Ok(Applied {
                    after: json!({"inline_policy": TRACED_SESSIONS_POLICY_NAME, "denied_sessions": all}),
                    note: Some(
                        "only these sessions are denied (aws:userid); the role's other sessions are untouched"
                            .to_owned(),
                    ),
                    ..Applied::default()
                })
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_role_ids_and_session_names_only() {
        assert!(SessionId::parse("AROAEXAMPLEEXAMPLE01:attacker").is_ok());
        for bad in [
            "AIDAEXAMPLEEXAMPLE01:x1",
            "AROAEXAMPLEEXAMPLE01",
            "AROAEXAMPLEEXAMPLE01:*",
            "AROAEXAMPLEEXAMPLE01:a\"}",
        ] {
            assert!(SessionId::parse(bad).is_err(), "{bad}");
        }
        let doc = document(&["AROAEXAMPLEEXAMPLE01:x1".to_owned()]);
        assert_eq!(denied(&doc), ["AROAEXAMPLEEXAMPLE01:x1"]);
    }
}
