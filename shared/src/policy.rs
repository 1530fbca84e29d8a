//! The policy documents cordon writes. The quarantine policy is AWS's AWSCompromisedKeyQuarantineV3
//! verbatim (`policies/AWSCompromisedKeyQuarantineV3.json`, copied from the published v3 with its
//! provenance) plus one statement of our own; when AWS publishes a new version, replacing that one
//! file is the whole change.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// AWSCompromisedKeyQuarantineV3 v3 (2026-03-16), as published: 99 denied actions in 2 statements.
pub const AWS_QUARANTINE_V3: &str = include_str!("../policies/AWSCompromisedKeyQuarantineV3.json");

/// Name of the customer managed policy holding our mirror. The `V3` follows AWS's name; later
/// changes to our mirror become new versions of this same policy.
pub const QUARANTINE_POLICY_NAME: &str = "CordonCompromisedKeyQuarantineV3";
pub const QUARANTINE_POLICY_PATH: &str = "/cordon/";

/// Inline policy name for the session cutoff; the same name the IAM console's "Revoke active
/// sessions" button uses, so either one refreshes the other rather than stacking.
pub const REVOKE_SESSIONS_POLICY_NAME: &str = "AWSRevokeOlderSessions";

/// Inline fallback when the user already holds the maximum number of managed policies.
pub const FALLBACK_POLICY_NAME: &str = "CordonQuarantineDenyAll";

/// Statement id of our addition to V3.
pub const HARDENING_SID: &str = "CordonPreventQuarantineRemoval";

/// V3 denies `iam:DetachUserPolicy` but not the calls that remove an inline policy, a role
/// policy or a permissions boundary, nor those that delete a policy outright or silence the
/// responder. Without these a quarantined principal could lift its own quarantine.
pub const HARDENING_ACTIONS: &[&str] = &[
    "iam:DeleteUserPolicy",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:DeleteUserPermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:UntagUser",
    "iam:UntagRole",
    "iam:TagUser",
    "iam:TagRole",
    "events:DisableRule",
    "events:DeleteRule",
    "events:RemoveTargets",
    "lambda:DeleteFunction",
    "lambda:PutFunctionConcurrency",
    "guardduty:DeleteDetector",
    "guardduty:UpdateDetector",
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
];

/// AWS's V3 document followed by our hardening statement.
pub fn quarantine_document() -> Value {
    // The file is part of the binary and checked by a unit test, so it always parses.
    let mut doc: Value = serde_json::from_str(AWS_QUARANTINE_V3).unwrap_or(Value::Null);
    if let Some(statements) = doc.get_mut("Statement").and_then(Value::as_array_mut) {
        statements.push(json!({
            "Sid": HARDENING_SID,
            "Effect": "Deny",
            "Action": HARDENING_ACTIONS,
            "Resource": "*",
        }));
    }
    doc
}

/// Deny everything signed with credentials issued before `cutoff`: the AWSRevokeOlderSessions
/// pattern. Long-term keys carry no `aws:TokenIssueTime`, so this never stops an `AKIA` key.
/// The cutoff a session-revoke document enforces (ours or the console's: the same shape), if it
/// is one: the latest `aws:TokenIssueTime` of its `DateLessThan` deny statements.
pub fn revoke_sessions_cutoff(doc: &Value) -> Option<OffsetDateTime> {
    let statements = match doc.get("Statement")? {
        Value::Array(list) => list.iter().collect(),
        single => vec![single],
    };
    statements
        .into_iter()
        .filter(|st| st.get("Effect").and_then(Value::as_str) == Some("Deny"))
        .filter_map(|st| {
            st.pointer("/Condition/DateLessThan/aws:TokenIssueTime")
                .and_then(Value::as_str)
        })
        .filter_map(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .max()
}

pub fn revoke_sessions_document(cutoff: OffsetDateTime) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": rfc3339_seconds(cutoff)}},
        }],
    })
}

pub fn deny_all_document() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "CordonQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    })
}

/// `2026-11-22T20:41:07Z`: IAM's date format, to the second.
pub fn rfc3339_seconds(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// IAM returns documents URL-encoded and reformatted; compare meaning, not bytes.
pub fn same_document(returned: &str, ours: &Value) -> bool {
    let decoded = decode(returned);
    serde_json::from_str::<Value>(&decoded).is_ok_and(|v| normalize(v) == normalize(ours.clone()))
}

/// A single action or statement may come back as a bare value instead of a one-element list.
fn normalize(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = normalize(v);
                    let v = match (k.as_str(), v) {
                        ("Statement" | "Action" | "Resource", Value::String(s)) => {
                            Value::Array(vec![Value::String(s)])
                        }
                        ("Statement", Value::Object(o)) => Value::Array(vec![Value::Object(o)]),
                        (_, v) => v,
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

/// IAM's documents come back percent-encoded.
pub fn decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn actions(statement: &Value) -> Vec<String> {
        match &statement["Action"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        }
    }

    /// The mirror is V3 verbatim plus exactly one statement: diffed against the reference.
    #[test]
    fn mirror_is_v3_plus_hardening() {
        let reference: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/policies/AWSCompromisedKeyQuarantineV3.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let ours = quarantine_document();
        let (ref_st, our_st) = (
            reference["Statement"].as_array().unwrap(),
            ours["Statement"].as_array().unwrap(),
        );
        assert_eq!(ref_st.len(), 2);
        assert_eq!(our_st.len(), 3);
        assert_eq!(
            &our_st[..2],
            &ref_st[..],
            "V3 statements must be carried verbatim"
        );
        assert_eq!(ours["Version"], "2012-10-17");
        let denied: Vec<String> = ref_st.iter().flat_map(actions).collect();
        assert_eq!(denied.len(), 99);
        assert_eq!(
            ref_st[1]["Condition"],
            json!({"Null": {"kms:ViaService": "true"}})
        );
        let hardening = &our_st[2];
        assert_eq!(hardening["Sid"], HARDENING_SID);
        assert_eq!(hardening["Effect"], "Deny");
        let set: BTreeSet<String> = denied.into_iter().collect();
        for a in actions(hardening) {
            assert!(!set.contains(&a), "{a} is already in V3");
        }
        for needed in [
            "iam:DeleteUserPolicy",
            "iam:DeleteRolePolicy",
            "iam:DetachRolePolicy",
            "iam:DeleteUserPermissionsBoundary",
        ] {
            assert!(actions(hardening).iter().any(|a| a == needed), "{needed}");
        }
    }

    /// Managed policies are capped at 6,144 characters (not counting white space); inline user
    /// policies at 2,048, which V3 alone exceeds.
    #[test]
    fn sizes_fit_iam_limits() {
        let minified = serde_json::to_string(&quarantine_document()).unwrap();
        assert!(minified.len() <= 6144, "{}", minified.len());
        assert!(minified.len() > 2048);
        let revoke =
            serde_json::to_string(&revoke_sessions_document(OffsetDateTime::UNIX_EPOCH)).unwrap();
        assert!(revoke.len() <= 2048);
        assert!(serde_json::to_string(&deny_all_document()).unwrap().len() <= 2048);
    }

    #[test]
    fn reads_back_the_cutoff_of_ours_and_the_consoles() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            revoke_sessions_cutoff(&revoke_sessions_document(t)),
            Some(t)
        );
        // The IAM console's "Revoke active sessions" document.
        let console = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
            "Action": ["*"], "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2023-11-14T22:13:20.000Z"}}}]});
        assert_eq!(revoke_sessions_cutoff(&console), Some(t));
        assert_eq!(
            revoke_sessions_cutoff(&serde_json::json!({"Statement": []})),
            None
        );
    }

    #[test]
    fn revoke_cutoff_is_iso_seconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let doc = revoke_sessions_document(t);
        assert_eq!(
            doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn compares_url_encoded_documents() {
        let ours = deny_all_document();
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Sid%22%3A%22CordonQuarantine%22%2C%22Effect%22%3A%22Deny%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%7D";
        assert!(same_document(encoded, &ours));
        assert!(!same_document(
            encoded,
            &revoke_sessions_document(OffsetDateTime::UNIX_EPOCH)
        ));
    }
}
