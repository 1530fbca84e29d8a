//! A contained user's credentials other than access keys: the console password (login profile),
//! service-specific credentials (long-term Amazon Bedrock API keys, CodeCommit, Keyspaces), SSH
//! public keys and X.509 signing certificates. Each would keep working under the quarantine's
//! deny-list or outside it (console sign-in mints new sessions after the revoke's cutoff).
//!
//! Keys, certificates and service-specific credentials are evidence, as access keys are: they
//! are set `Inactive`, never deleted, and a person can reactivate a legitimate one. The password
//! is the one thing deleted (IAM cannot disable a login profile); the record keeps that it
//! existed and when it was created, and the release procedure gives the user a new one.

use std::fmt;

use aws_sdk_iam::primitives::{DateTime, DateTimeFormat};
use aws_sdk_iam::types::StatusType;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::iam::IamActions;
use super::{converge, read_back, read_failed, Action, ActionRecord, Applied, Observed};
use crate::aws::{aws, AwsError};
use crate::ids::{IamName, InvalidId};

/// What the record of a removed password tells the person who releases the user.
pub const PASSWORD_NOT_RESTORABLE: &str = "a deleted console password cannot be restored: on \
     release, give the user a new one (CreateLoginProfile, with PasswordResetRequired)";

/// The id of an SSH public key, a signing certificate or a service-specific credential, as IAM
/// returned it (`[\w]+`, 20 to 128 characters), before it goes back into an update call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CredentialId(String);

impl CredentialId {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if (20..=128).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId {
                what: "IAM credential id",
                value: s.chars().take(80).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The credentials that are switched off, not deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ServiceSpecific,
    SshPublicKey,
    SigningCertificate,
}

impl Kind {
    pub fn action(self) -> Action {
        match self {
            Self::ServiceSpecific => Action::DeactivateServiceSpecificCredentials,
            Self::SshPublicKey => Action::DeactivateSshPublicKeys,
            Self::SigningCertificate => Action::DeactivateSigningCertificates,
        }
    }
}

/// One credential as listed: its id, its status and what a person needs to recognise it.
struct Listed {
    id: String,
    status: StatusType,
    facts: Map<String, Value>,
}

/// IAM's pagination, bounded: a marker that never ends must not hold the invocation.
const MAX_PAGES: usize = 20;

/// Inactive or expired: the credential no longer signs anything.
fn stopped(status: &StatusType) -> bool {
    matches!(status, StatusType::Inactive | StatusType::Expired)
}

fn date(d: &DateTime) -> Value {
    d.fmt(DateTimeFormat::DateTime)
        .map_or(Value::Null, Value::String)
}

impl IamActions {
    /// Delete the user's console password. `GetLoginProfile` answering NoSuchEntity means the
    /// user has no password: nothing to stop, and no record (as for a user without keys).
    pub async fn remove_login_profile(&self, user: &IamName, dry_run: bool) -> Vec<ActionRecord> {
        let action = Action::RemoveLoginProfile;
        let target = format!("user/{user}");
        let profile = match self.login_profile(user).await {
            Ok(None) => return Vec::new(),
            Ok(Some(profile)) => profile,
            Err(e) => return vec![read_failed(action, target, &e)],
        };
        let observed = Observed {
            in_place: false,
            state: json!({"user": user, "login_profile": profile}),
        };
        let record = converge(action, target, dry_run, Ok(observed), || async {
            let deleted = self
                .client
                .delete_login_profile()
                .user_name(user.as_str())
                .send()
                .await
                .map_err(aws);
            match deleted {
                // A retry after a lost answer finds it gone: that is the change, not a failure.
                Ok(_) => {}
                Err(e) if e.is("NoSuchEntity") => {}
                Err(e) => return Err(e),
            }
            let verified = read_back(
                || async { matches!(self.login_profile(user).await, Ok(None)) },
                |gone| *gone,
            )
            .await;
            Ok(Applied {
                after: json!({"user": user, "login_profile": {"exists": false}}),
                note: Some(PASSWORD_NOT_RESTORABLE.to_owned()),
                verified: Some(verified),
                ..Applied::default()
            })
        })
        .await;
        vec![record]
    }

    /// The user's login profile, `None` when the user has no console password.
    async fn login_profile(&self, user: &IamName) -> Result<Option<Value>, AwsError> {
        let got = self
            .client
            .get_login_profile()
            .user_name(user.as_str())
            .send()
            .await
            .map_err(aws);
        match got {
            Ok(out) => Ok(out.login_profile().map(|p| {
                json!({
                    "exists": true,
                    "create_date": date(p.create_date()),
                    "password_reset_required": p.password_reset_required(),
                })
            })),
            Err(e) if e.is("NoSuchEntity") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every Active service-specific credential of the user (Bedrock API keys, CodeCommit and
    /// Keyspaces passwords) set Inactive.
    pub async fn deactivate_service_specific_credentials(
        &self,
        user: &IamName,
        dry_run: bool,
    ) -> Vec<ActionRecord> {
        self.deactivate_each(Kind::ServiceSpecific, user, dry_run)
            .await
    }

    /// Every Active SSH public key of the user (CodeCommit over SSH) set Inactive.
    pub async fn deactivate_ssh_public_keys(
        &self,
        user: &IamName,
        dry_run: bool,
    ) -> Vec<ActionRecord> {
        self.deactivate_each(Kind::SshPublicKey, user, dry_run)
            .await
    }

    /// Every Active X.509 signing certificate of the user set Inactive.
    pub async fn deactivate_signing_certificates(
        &self,
        user: &IamName,
        dry_run: bool,
    ) -> Vec<ActionRecord> {
        self.deactivate_each(Kind::SigningCertificate, user, dry_run)
            .await
    }

    /// One record per credential of `kind`, as `deactivate_keys` keeps one per key: each read,
    /// set Inactive if it is not, and read back. A user with none of them gets no record.
    async fn deactivate_each(
        &self,
        kind: Kind,
        user: &IamName,
        dry_run: bool,
    ) -> Vec<ActionRecord> {
        let action = kind.action();
        let listed = match self.list(kind, user).await {
            Ok(listed) => listed,
            Err(e) => return vec![read_failed(action, format!("user/{user}"), &e)],
        };
        let jobs = listed.into_iter().map(|c| async move {
            let id = match CredentialId::parse(&c.id) {
                Ok(id) => id,
                Err(e) => {
                    let e = AwsError {
                        code: "UnexpectedCredentialId".to_owned(),
                        message: e.to_string(),
                    };
                    return read_failed(action, c.id, &e);
                }
            };
            let mut state = c.facts;
            state.insert("user".to_owned(), json!(user));
            state.insert("status".to_owned(), json!(c.status.as_str()));
            let observed = Observed {
                in_place: stopped(&c.status),
                state: Value::Object(state),
            };
            converge(action, id.to_string(), dry_run, Ok(observed), || async {
                self.set_inactive(kind, user, &id).await?;
                let verified = read_back(
                    || async {
                        self.status_of(kind, user, &id).await == Some(StatusType::Inactive)
                    },
                    |shown| *shown,
                )
                .await;
                Ok(Applied {
                    after: json!({"user": user, "status": StatusType::Inactive.as_str()}),
                    verified: Some(verified),
                    ..Applied::default()
                })
            })
            .await
        });
        futures::future::join_all(jobs).await
    }

    async fn status_of(&self, kind: Kind, user: &IamName, id: &CredentialId) -> Option<StatusType> {
        self.list(kind, user)
            .await
            .ok()?
            .into_iter()
            .find(|c| c.id == id.as_str())
            .map(|c| c.status)
    }

    async fn set_inactive(
        &self,
        kind: Kind,
        user: &IamName,
        id: &CredentialId,
    ) -> Result<(), AwsError> {
        let (user, id) = (user.as_str(), id.as_str());
        match kind {
            Kind::ServiceSpecific => self
                .client
                .update_service_specific_credential()
                .user_name(user)
                .service_specific_credential_id(id)
                .status(StatusType::Inactive)
                .send()
                .await
                .map(drop)
                .map_err(aws),
            Kind::SshPublicKey => self
                .client
                .update_ssh_public_key()
                .user_name(user)
                .ssh_public_key_id(id)
                .status(StatusType::Inactive)
                .send()
                .await
                .map(drop)
                .map_err(aws),
            Kind::SigningCertificate => self
                .client
                .update_signing_certificate()
                .user_name(user)
                .certificate_id(id)
                .status(StatusType::Inactive)
                .send()
                .await
                .map(drop)
                .map_err(aws),
        }
    }

    /// Every credential of `kind` the user holds, all pages.
    async fn list(&self, kind: Kind, user: &IamName) -> Result<Vec<Listed>, AwsError> {
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let (page, next) = self.list_page(kind, user, marker.take()).await?;
            all.extend(page);
            match next {
                Some(next) => marker = Some(next),
                None => return Ok(all),
            }
        }
        Err(AwsError {
            code: "TooManyPages".to_owned(),
            message: format!("more than {MAX_PAGES} pages of credentials for {user}"),
        })
    }

    /// One page, and the marker of the next when IAM says the list is truncated.
    async fn list_page(
        &self,
        kind: Kind,
        user: &IamName,
        marker: Option<String>,
    ) -> Result<(Vec<Listed>, Option<String>), AwsError> {
        let next =
            |truncated: bool, marker: Option<&str>| marker.filter(|_| truncated).map(str::to_owned);
        match kind {
            Kind::ServiceSpecific => {
                let out = self
                    .client
                    .list_service_specific_credentials()
                    .user_name(user.as_str())
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(aws)?;
                let page = out
                    .service_specific_credentials()
                    .iter()
                    .map(|c| {
                        let mut facts = Map::new();
                        facts.insert("service".to_owned(), json!(c.service_name()));
                        if let Some(alias) = c.service_credential_alias() {
                            facts.insert("alias".to_owned(), json!(alias));
                        }
                        if !c.service_user_name().is_empty() {
                            facts.insert(
                                "service_user_name".to_owned(),
                                json!(c.service_user_name()),
                            );
                        }
                        facts.insert("create_date".to_owned(), date(c.create_date()));
                        if let Some(expires) = c.expiration_date() {
                            facts.insert("expiration_date".to_owned(), date(expires));
                        }
                        Listed {
                            id: c.service_specific_credential_id().to_owned(),
                            status: c.status().clone(),
                            facts,
                        }
                    })
                    .collect();
                Ok((page, next(out.is_truncated(), out.marker())))
            }
            Kind::SshPublicKey => {
                let out = self
                    .client
                    .list_ssh_public_keys()
                    .user_name(user.as_str())
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(aws)?;
                let page = out
                    .ssh_public_keys()
                    .iter()
                    .map(|k| Listed {
                        id: k.ssh_public_key_id().to_owned(),
                        status: k.status().clone(),
                        facts: Map::from_iter([("upload_date".to_owned(), date(k.upload_date()))]),
                    })
                    .collect();
                Ok((page, next(out.is_truncated(), out.marker())))
            }
            Kind::SigningCertificate => {
                let out = self
                    .client
                    .list_signing_certificates()
                    .user_name(user.as_str())
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(aws)?;
                let page = out
                    .certificates()
                    .iter()
                    .map(|c| Listed {
                        id: c.certificate_id().to_owned(),
                        status: c.status().clone(),
                        facts: Map::from_iter([(
                            "upload_date".to_owned(),
                            c.upload_date().map_or(Value::Null, date),
                        )]),
                    })
                    .collect();
                Ok((page, next(out.is_truncated(), out.marker())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_ids_are_iam_ids_only() {
        assert!(CredentialId::parse("APKAEIBAERJR2EXAMPLE").is_ok());
        assert!(CredentialId::parse("ACCA12345ABCDEXAMPLE").is_ok());
        assert!(CredentialId::parse("tbzq8gbfnlr0cbcgeys44jtvvnqrhnuo").is_ok());
        assert!(CredentialId::parse("short").is_err());
        assert!(CredentialId::parse("APKAEIBAERJR2EXAMPLE&Status=Active").is_err());
        assert!(CredentialId::parse(&"A".repeat(129)).is_err());
    }

    #[test]
    fn inactive_and_expired_are_stopped_active_is_not() {
        assert!(stopped(&StatusType::Inactive));
        assert!(stopped(&StatusType::Expired));
        assert!(!stopped(&StatusType::Active));
        assert!(!stopped(&StatusType::from("Suspended")));
    }

    #[test]
    fn each_kind_is_its_own_action() {
        let actions = [
            Kind::ServiceSpecific,
            Kind::SshPublicKey,
            Kind::SigningCertificate,
        ]
        .map(Kind::action);
        assert_eq!(
            actions.map(Action::name),
            [
                "deactivate_service_specific_credentials",
                "deactivate_ssh_public_keys",
                "deactivate_signing_certificates"
            ]
        );
    }
}
