//! IAM actions on users and roles: deactivate keys, attach the quarantine, revoke sessions, tag.

use aws_sdk_iam::types::{StatusType, Tag};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{
    converge, found, read_back, read_failed, skipped, Action, ActionRecord, Applied, Observed,
};
use crate::aws::{aws, AwsError};
use crate::ids::{AccessKeyId, AccountId, IamName, IncidentId};
use crate::policy::{self, rfc3339_seconds};
use crate::principal::Principal;

/// A user or a role: the two principals IAM lets us change.
#[derive(Debug, Clone, Copy)]
pub enum Iam<'a> {
    User(&'a IamName),
    Role(&'a IamName),
}

impl<'a> Iam<'a> {
    pub fn of(principal: &'a Principal) -> Option<Self> {
        match principal {
            Principal::User(n) => Some(Self::User(n)),
            Principal::Role(n) => Some(Self::Role(n)),
            Principal::Root | Principal::Unsupported(_) => None,
        }
    }

    fn label(&self) -> String {
        match self {
            Self::User(n) => format!("user/{n}"),
            Self::Role(n) => format!("role/{n}"),
        }
    }
}

pub const INCIDENT_TAG: &str = "cordon:incident";
pub const QUARANTINED_AT_TAG: &str = "cordon:quarantined-at";

/// IAM actions for one account.
pub struct IamActions {
    pub(super) client: aws_sdk_iam::Client,
    policy_arn: String,
}

/// What the quarantine policy's default version holds. Read on every delivery: anyone with
/// `iam:CreatePolicyVersion` on it could empty it and lift every quarantine in the account.
#[derive(Debug, Clone, PartialEq)]
enum PolicyDocument {
    Ours,
    /// The default version is not this build's document: tampered with, or an older build's.
    Altered {
        version: String,
    },
    Absent,
}

impl PolicyDocument {
    /// For the record's before-state.
    fn shown(&self) -> String {
        match self {
            Self::Ours => "cordon's".to_owned(),
            Self::Altered { version } => format!("altered ({version})"),
            Self::Absent => "absent".to_owned(),
        }
    }

    /// What the record says was tampered with, when this is not our document.
    fn tampered(&self, policy_arn: &str) -> Option<String> {
        match self {
            Self::Altered { version } => Some(format!(
                "{policy_arn}: default version {version} was not cordon's document (tampered with, or an older cordon build's); restored"
            )),
            Self::Ours | Self::Absent => None,
        }
    }
}

impl IamActions {
    pub fn new(client: aws_sdk_iam::Client, account: &AccountId) -> Self {
        Self {
            client,
            policy_arn: format!(
                "arn:aws:iam::{account}:policy{}{}",
                policy::QUARANTINE_POLICY_PATH,
                policy::QUARANTINE_POLICY_NAME
            ),
        }
    }

    pub fn quarantine_policy_arn(&self) -> &str {
        &self.policy_arn
    }

    /// Whose key this is, in this account. `GetAccessKeyLastUsed` names a user; the key must
    /// also be in that user's own list here, so a name alone (another account's user, read
    /// back) never aims cordon at a same-named user of this account.
    pub async fn find_key_owner(&self, key: &AccessKeyId) -> (ActionRecord, Option<IamName>) {
        let action = Action::FindKeyOwner;
        let used = self
            .client
            .get_access_key_last_used()
            .access_key_id(key.as_str())
            .send()
            .await
            .map_err(aws);
        let user = match used {
            Ok(out) => out.user_name().and_then(|n| IamName::parse(n).ok()),
            Err(e) if e.is("NoSuchEntity") => None,
            Err(e) => return (read_failed(action, key.to_string(), &e), None),
        };
        let Some(user) = user else {
            let reason = "not a key of this account's IAM users";
            return (skipped(action, key.to_string(), reason), None);
        };
        match self.key_status_checked(&user, key.as_str()).await {
            Ok(Some(status)) => {
                let state = json!({"user": user, "status": status});
                (found(action, key.to_string(), state), Some(user))
            }
            Ok(None) => {
                let reason = format!("IAM names {user}, whose keys here do not include it");
                (skipped(action, key.to_string(), reason), None)
            }
            Err(e) if e.is("NoSuchEntity") => {
                let reason = format!("IAM names {user}, who is no user of this account");
                (skipped(action, key.to_string(), reason), None)
            }
            Err(e) => (read_failed(action, key.to_string(), &e), None),
        }
    }

    /// Set the finding's key, or every active key of the user, Inactive. Never deletes: the keys
    /// are evidence and a person may need to reactivate a legitimate one.
    pub async fn deactivate_keys(
        &self,
        user: &IamName,
        key: Option<&AccessKeyId>,
        all: bool,
        dry_run: bool,
    ) -> Vec<ActionRecord> {
        let listed = self
            .client
            .list_access_keys()
            .user_name(user.as_str())
            .send()
            .await
            .map_err(aws);
        let keys: Vec<(String, String)> = match listed {
            Ok(out) => out
                .access_key_metadata()
                .iter()
                .filter_map(|k| {
                    Some((
                        k.access_key_id()?.to_owned(),
                        k.status()?.as_str().to_owned(),
                    ))
                })
                .collect(),
            Err(e) => {
                let target = key.map_or_else(|| user.to_string(), ToString::to_string);
                if e.is("NoSuchEntity") {
                    // Its keys went with it: nothing is left to stop.
                    return vec![skipped(
                        Action::DeactivateAccessKey,
                        target,
                        format!("user {user} no longer exists"),
                    )];
                }
                return vec![read_failed(Action::DeactivateAccessKey, target, &e)];
            }
        };
        let mut targets: Vec<String> = if all {
            keys.iter().map(|(id, _)| id.clone()).collect()
        } else {
            Vec::new()
        };
        if let Some(k) = key {
            if !targets.iter().any(|t| t == k.as_str()) {
                targets.push(k.to_string());
            }
        }
        let jobs = targets.into_iter().map(|id| {
            let status = keys.iter().find(|(k, _)| *k == id).map(|(_, s)| s.clone());
            async move {
                let Some(status) = status else {
                    return skipped(
                        Action::DeactivateAccessKey,
                        id,
                        format!(
                            "the key is no longer one of {user}'s keys (deleted or never existed)"
                        ),
                    );
                };
                let observed = Observed {
                    in_place: status == "Inactive",
                    state: json!({"user": user, "status": status}),
                };
                converge(
                    Action::DeactivateAccessKey,
                    id.clone(),
                    dry_run,
                    Ok(observed),
                    || async {
                        self.client
                            .update_access_key()
                            .user_name(user.as_str())
                            .access_key_id(&id)
                            .status(StatusType::Inactive)
                            .send()
                            .await
                            .map_err(aws)?;
                        let verified = read_back(
                            || async {
                                self.key_status(user, &id).await.as_deref() == Some("Inactive")
                            },
                            |shown| *shown,
                        )
                        .await;
                        Ok(Applied {
                            after: json!({"user": user, "status": "Inactive"}),
                            verified: Some(verified),
                            ..Applied::default()
                        })
                    },
                )
                .await
            }
        });
        futures::future::join_all(jobs).await
    }

    /// Attach our V3 mirror. Falls back to an inline deny-all when the principal already holds
    /// the maximum number of managed policies.
    pub async fn attach_quarantine(&self, who: Iam<'_>, dry_run: bool) -> ActionRecord {
        let observed = self.observe_quarantine(who).await;
        let (document, attached_before) = match &observed {
            Ok((_, document, attached)) => (document.clone(), *attached),
            Err(_) => (PolicyDocument::Absent, false),
        };
        converge(
            Action::AttachQuarantinePolicy,
            who.label(),
            dry_run,
            observed.map(|(o, ..)| o),
            || async {
                if attached_before {
                    // Attached already: only the document needed restoring.
                    let restored = self.restore_document(&document).await?;
                    return Ok(Applied {
                        after: json!({"attached": self.policy_arn, "document_restored": true}),
                        ..restored
                    });
                }
                let created = self.converge_policy(&document).await?;
                let mut attached = self.attach_once(who).await;
                // A policy created a moment ago may not be visible yet: NoSuchEntity is not final.
                for wait in [250, 500, 1000] {
                    match &attached {
                        Err(e) if e.is("NoSuchEntity") && created.is_some() => {
                            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                            attached = self.attach_once(who).await;
                        }
                        _ => break,
                    }
                }
                let (after, note) = match attached {
                    Ok(()) => (json!({"attached": self.policy_arn}), created.clone()),
                    Err(e) if e.is("LimitExceeded") => {
                        self.put_inline(
                            who,
                            policy::FALLBACK_POLICY_NAME,
                            &policy::deny_all_document(),
                        )
                        .await?;
                        let note = format!(
                        "managed policy limit reached ({e}); applied inline {} (Deny *) instead",
                        policy::FALLBACK_POLICY_NAME
                    );
                        (json!({"inline": policy::FALLBACK_POLICY_NAME}), Some(note))
                    }
                    Err(e) => return Err(e),
                };
                // In force: attached (or the inline fallback) and the default version reads back
                // as this build's document.
                let verified = read_back(
                    || async {
                        self.observe_quarantine(who)
                            .await
                            .is_ok_and(|(o, ..)| o.in_place)
                    },
                    |shown| *shown,
                )
                .await;
                Ok(Applied {
                    after,
                    note,
                    verified: Some(verified),
                    tampered: document.tampered(&self.policy_arn),
                    ..Applied::default()
                })
            },
        )
        .await
    }

    /// Make this build's document the quarantine policy's default version again, attached to
    /// anyone or not: for a call that touched the policy, whoever made it and whatever becomes
    /// of them. The document is what holds every quarantine in the account.
    pub async fn restore_quarantine_policy(&self, dry_run: bool) -> ActionRecord {
        let found = self.policy_document().await;
        let document = found.as_ref().map_or(PolicyDocument::Absent, Clone::clone);
        let observed = found.map(|d| Observed {
            in_place: d == PolicyDocument::Ours,
            state: json!({"policy": self.policy_arn, "quarantine_document": d.shown()}),
        });
        converge(
            Action::RestoreQuarantinePolicy,
            self.policy_arn.clone(),
            dry_run,
            observed,
            || self.restore_document(&document),
        )
        .await
    }

    /// Converge the policy to this build's document and read it back; the result says what was
    /// found tampered with.
    async fn restore_document(&self, found: &PolicyDocument) -> Result<Applied, AwsError> {
        let note = self.converge_policy(found).await?;
        let verified = read_back(
            || async { self.policy_document().await.ok() == Some(PolicyDocument::Ours) },
            |shown| *shown,
        )
        .await;
        Ok(Applied {
            after: json!({"policy": self.policy_arn, "quarantine_document": PolicyDocument::Ours.shown()}),
            note,
            verified: Some(verified),
            tampered: found.tampered(&self.policy_arn),
            ..Applied::default()
        })
    }

    async fn attach_once(&self, who: Iam<'_>) -> Result<(), AwsError> {
        match who {
            Iam::User(n) => self
                .client
                .attach_user_policy()
                .user_name(n.as_str())
                .policy_arn(&self.policy_arn)
                .send()
                .await
                .map(drop)
                .map_err(aws),
            Iam::Role(n) => self
                .client
                .attach_role_policy()
                .role_name(n.as_str())
                .policy_arn(&self.policy_arn)
                .send()
                .await
                .map(drop)
                .map_err(aws),
        }
    }

    async fn key_status(&self, user: &IamName, key: &str) -> Option<String> {
        self.key_status_checked(user, key).await.ok().flatten()
    }

    /// The key's status, if it is one of the user's keys.
    async fn key_status_checked(
        &self,
        user: &IamName,
        key: &str,
    ) -> Result<Option<String>, AwsError> {
        let out = self
            .client
            .list_access_keys()
            .user_name(user.as_str())
            .send()
            .await
            .map_err(aws)?;
        Ok(out
            .access_key_metadata()
            .iter()
            .find(|k| k.access_key_id() == Some(key))
            .and_then(|k| k.status())
            .map(|s| s.as_str().to_owned()))
    }

    /// The principal's policies and the quarantine policy's default document, read concurrently;
    /// also whether the policy is attached (which may hold while the document does not).
    async fn observe_quarantine(
        &self,
        who: Iam<'_>,
    ) -> Result<(Observed, PolicyDocument, bool), AwsError> {
        let (policies, document) =
            tokio::join!(self.principal_policies(who), self.policy_document());
        let ((attached, inline), document) = (policies?, document?);
        let is_attached = attached.contains(&self.policy_arn);
        let fallback = inline.iter().any(|n| n == policy::FALLBACK_POLICY_NAME);
        let in_place = fallback || (is_attached && document == PolicyDocument::Ours);
        Ok((
            Observed {
                in_place,
                state: json!({"attached_policies": attached, "inline_policies": inline, "quarantine_document": document.shown()}),
            },
            document,
            is_attached,
        ))
    }

    /// The managed policies attached to the principal and the names of its inline policies.
    async fn principal_policies(
        &self,
        who: Iam<'_>,
    ) -> Result<(Vec<String>, Vec<String>), AwsError> {
        Ok(match who {
            Iam::User(n) => {
                let (a, i) = tokio::join!(
                    self.client
                        .list_attached_user_policies()
                        .user_name(n.as_str())
                        .send(),
                    self.client
                        .list_user_policies()
                        .user_name(n.as_str())
                        .send(),
                );
                let a = a.map_err(aws)?;
                let attached: Vec<String> = a
                    .attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_owned))
                    .collect();
                (attached, i.map_err(aws)?.policy_names().to_vec())
            }
            Iam::Role(n) => {
                let (a, i) = tokio::join!(
                    self.client
                        .list_attached_role_policies()
                        .role_name(n.as_str())
                        .send(),
                    self.client
                        .list_role_policies()
                        .role_name(n.as_str())
                        .send(),
                );
                let a = a.map_err(aws)?;
                let attached: Vec<String> = a
                    .attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_owned))
                    .collect();
                (attached, i.map_err(aws)?.policy_names().to_vec())
            }
        })
    }

    /// Create our managed policy, or make this build's document its default version again.
    /// Returns what it changed, for the record.
    async fn converge_policy(&self, found: &PolicyDocument) -> Result<Option<String>, AwsError> {
        let document = policy::quarantine_document().to_string();
        let default_version = match found {
            PolicyDocument::Ours => return Ok(None),
            PolicyDocument::Altered { version } => version.clone(),
            PolicyDocument::Absent => {
                let created = self
                    .client
                    .create_policy()
                    .policy_name(policy::QUARANTINE_POLICY_NAME)
                    .path(policy::QUARANTINE_POLICY_PATH)
                    .description("cordon: AWSCompromisedKeyQuarantineV3 plus a statement that keeps the quarantine in place")
                    .policy_document(&document)
                    .send()
                    .await
                    .map_err(aws);
                return match created {
                    Ok(_) => Ok(Some(format!("created {}", self.policy_arn))),
                    // Another invocation created it a moment ago.
                    Err(e) if e.is("EntityAlreadyExists") => Ok(None),
                    Err(e) => Err(e),
                };
            }
        };
        // Our mirror changed: a new default version. IAM keeps five; drop the oldest other one.
        let versions = self
            .client
            .list_policy_versions()
            .policy_arn(&self.policy_arn)
            .send()
            .await
            .map_err(aws)?;
        let mut old: Vec<_> = versions
            .versions()
            .iter()
            .filter(|v| !v.is_default_version())
            .filter_map(|v| Some((v.create_date()?.secs(), v.version_id()?.to_owned())))
            .collect();
        old.sort();
        if versions.versions().len() >= 5 {
            if let Some((_, oldest)) = old.first() {
                self.client
                    .delete_policy_version()
                    .policy_arn(&self.policy_arn)
                    .version_id(oldest)
                    .send()
                    .await
                    .map_err(aws)?;
            }
        }
        self.client
            .create_policy_version()
            .policy_arn(&self.policy_arn)
            .policy_document(&document)
            .set_as_default(true)
            .send()
            .await
            .map_err(aws)?;
        Ok(Some(format!(
            "updated {} from {default_version} to this build's document",
            self.policy_arn
        )))
    }

    /// The managed policy's default version, compared with this build's document.
    async fn policy_document(&self) -> Result<PolicyDocument, AwsError> {
        let policy = match self
            .client
            .get_policy()
            .policy_arn(&self.policy_arn)
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) => {
                let e = aws(e);
                return if e.is("NoSuchEntity") {
                    Ok(PolicyDocument::Absent)
                } else {
                    Err(e)
                };
            }
        };
        let version = policy
            .policy()
            .and_then(|p| p.default_version_id())
            .unwrap_or_default()
            .to_owned();
        Ok(if self.version_is_ours(&version).await? {
            PolicyDocument::Ours
        } else {
            PolicyDocument::Altered { version }
        })
    }

    async fn version_is_ours(&self, version: &str) -> Result<bool, AwsError> {
        let current = self
            .client
            .get_policy_version()
            .policy_arn(&self.policy_arn)
            .version_id(version)
            .send()
            .await
            .map_err(aws)?;
        let doc = current
            .policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default();
        Ok(policy::same_document(doc, &policy::quarantine_document()))
    }

    /// Deny everything signed with credentials issued before `cutoff` (the incident's start).
    /// The cutoff only moves forward: a later one already in force (another incident's, or the
    /// console's "Revoke active sessions", which writes the same policy) is kept.
    pub async fn revoke_sessions(
        &self,
        who: Iam<'_>,
        cutoff: OffsetDateTime,
        dry_run: bool,
    ) -> ActionRecord {
        let desired = policy::revoke_sessions_document(cutoff);
        let name = policy::REVOKE_SESSIONS_POLICY_NAME;
        let current = match who {
            Iam::User(n) => self
                .client
                .get_user_policy()
                .user_name(n.as_str())
                .policy_name(name)
                .send()
                .await
                .map(|o| Some(o.policy_document().to_owned()))
                .map_err(aws),
            Iam::Role(n) => self
                .client
                .get_role_policy()
                .role_name(n.as_str())
                .policy_name(name)
                .send()
                .await
                .map(|o| Some(o.policy_document().to_owned()))
                .map_err(aws),
        };
        let observed = match current {
            Ok(doc) => Ok(doc),
            Err(e) if e.is("NoSuchEntity") => Ok(None),
            Err(e) => Err(e),
        }
        .map(|doc| {
            let doc = doc.map(|d| decode_json(&d));
            let later = doc
                .as_ref()
                .and_then(policy::revoke_sessions_cutoff)
                .is_some_and(|in_force| in_force >= cutoff);
            Observed {
                in_place: later,
                state: json!({"inline_policy": name, "document": doc}),
            }
        });
        converge(
            Action::RevokeSessions,
            who.label(),
            dry_run,
            observed,
            || async {
                self.put_inline(who, name, &desired).await?;
                Ok(
                    json!({"inline_policy": name, "tokens_issued_before": rfc3339_seconds(cutoff)})
                        .into(),
                )
            },
        )
        .await
    }

    /// Mark the principal with the incident, so anyone looking at it in the console sees why.
    pub async fn tag(
        &self,
        who: Iam<'_>,
        incident: &IncidentId,
        at: OffsetDateTime,
        dry_run: bool,
    ) -> ActionRecord {
        let tags = match who {
            Iam::User(n) => self
                .client
                .list_user_tags()
                .user_name(n.as_str())
                .send()
                .await
                .map(|o| o.tags().to_vec())
                .map_err(aws),
            Iam::Role(n) => self
                .client
                .list_role_tags()
                .role_name(n.as_str())
                .send()
                .await
                .map(|o| o.tags().to_vec())
                .map_err(aws),
        };
        let observed = tags.map(|tags| {
            let current = tags
                .iter()
                .find(|t| t.key() == INCIDENT_TAG)
                .map(|t| t.value().to_owned());
            Observed {
                in_place: current.as_deref() == Some(incident.as_str()),
                state: json!({INCIDENT_TAG: current}),
            }
        });
        converge(
            Action::TagPrincipal,
            who.label(),
            dry_run,
            observed,
            || async {
                let tags = [
                    (INCIDENT_TAG, incident.to_string()),
                    (QUARANTINED_AT_TAG, rfc3339_seconds(at)),
                ]
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AwsError {
                    code: "InvalidTag".to_owned(),
                    message: e.to_string(),
                })?;
                match who {
                    Iam::User(n) => self
                        .client
                        .tag_user()
                        .user_name(n.as_str())
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map(drop)
                        .map_err(aws),
                    Iam::Role(n) => self
                        .client
                        .tag_role()
                        .role_name(n.as_str())
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map(drop)
                        .map_err(aws),
                }?;
                Ok(json!({INCIDENT_TAG: incident}).into())
            },
        )
        .await
    }

    async fn put_inline(&self, who: Iam<'_>, name: &str, doc: &Value) -> Result<(), AwsError> {
        let doc = doc.to_string();
        match who {
            Iam::User(n) => self
                .client
                .put_user_policy()
                .user_name(n.as_str())
                .policy_name(name)
                .policy_document(doc)
                .send()
                .await
                .map(drop)
                .map_err(aws),
            Iam::Role(n) => self
                .client
                .put_role_policy()
                .role_name(n.as_str())
                .policy_name(name)
                .policy_document(doc)
                .send()
                .await
                .map(drop)
                .map_err(aws),
        }
    }
}

pub(super) fn decode_json(doc: &str) -> Value {
    let decoded = policy::decode(doc);
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let n = IamName::parse("alice").unwrap();
        assert_eq!(Iam::User(&n).label(), "user/alice");
        assert_eq!(Iam::Role(&n).label(), "role/alice");
    }
}
