//! Deny the sessions a traced chain obtained on a role, and only those: a statement on the role
//! that denies everything to `aws:userid` = `<role id>:<session name>`. Revoking every session
//! of the role (`AWSRevokeOlderSessions`) would cut off the rest of the fleet that uses it.

use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

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

/// One trace's deny: everything, to exactly these sessions, as issued before `cutoff`. A session
/// name is the caller's choice: should the chain have named its session as another workload
/// names its own, that workload's next session is not denied, only those issued before the
/// trace (the chain's).
fn statement(sessions: &[String], cutoff: &str) -> Value {
    json!({
        "Sid": format!("{TRACED_SESSIONS_POLICY_NAME}{}", cutoff.replace(['-', ':'], "")),
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:userid": sessions},
            "DateLessThan": {"aws:TokenIssueTime": cutoff},
        },
    })
}

/// The statements of a document of ours; anything else in it is not kept.
fn statements(doc: &Value) -> Vec<Value> {
    doc.get("Statement")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| {
            s.get("Sid")
                .and_then(Value::as_str)
                .is_some_and(|sid| sid.starts_with(TRACED_SESSIONS_POLICY_NAME))
        })
        .cloned()
        .collect()
}

/// The session ids the statements deny.
fn denied(statements: &[Value]) -> Vec<String> {
    statements
        .iter()
        .filter_map(|s| s.pointer("/Condition/StringEquals/aws:userid"))
        .flat_map(|list| match list {
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        })
        .collect()
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
        let mut kept = current
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(statements)
            .unwrap_or_default();
        let before = denied(&kept);
        let new: Vec<String> = sessions
            .iter()
            .map(|s| s.as_str().to_owned())
            .filter(|s| !before.contains(s))
            .collect();
        let observed = current.map(|_| Observed {
            in_place: new.is_empty(),
            state: json!({"inline_policy": TRACED_SESSIONS_POLICY_NAME, "denied_sessions": before}),
        });
        let cutoff = policy::rfc3339_seconds(OffsetDateTime::now_utc());
        kept.push(statement(&new, &cutoff));
        let all = denied(&kept);
        let desired = json!({"Version": "2012-10-17", "Statement": kept});
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
                    after: json!({"inline_policy": TRACED_SESSIONS_POLICY_NAME,
                                  "denied_sessions": all, "issued_before": cutoff}),
                    note: Some(format!(
                        "only these sessions are denied (aws:userid, issued before {cutoff}); the role's other sessions are untouched"
                    )),
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
        let doc = json!({"Statement": [
            statement(&["AROAEXAMPLEEXAMPLE01:x1".to_owned()], "2026-12-02T10:00:00Z"),
            {"Sid": "Planted", "Effect": "Allow", "Action": "*", "Resource": "*"},
        ]});
        let ours = statements(&doc);
        assert_eq!(ours.len(), 1, "only our statements are kept");
        assert_eq!(denied(&ours), ["AROAEXAMPLEEXAMPLE01:x1"]);
        assert_eq!(
            ours[0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-12-02T10:00:00Z"
        );
    }
}
