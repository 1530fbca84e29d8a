//! Contain a principal whose credentials leaked: containment first (key, quarantine, sessions,
//! and for a user every other credential: password, service-specific credentials, SSH keys,
//! signing certificates; all at once), and beside it whatever credential the principal just made
//! for another user; the tag for people after.

use time::OffsetDateTime;

use crate::actions::iam::{Iam, IamActions};
use crate::actions::{skipped, Action, ActionRecord};
use crate::ids::{AccessKeyId, IncidentId};
use crate::principal::Principal;
use crate::signals::Created;

pub struct Options {
    pub dry_run: bool,
    pub deactivate_all_keys: bool,
    pub quarantine_roles: bool,
}

pub struct Credentials<'a> {
    pub principal: &'a Principal,
    /// The key the finding or call names.
    pub key: Option<&'a AccessKeyId>,
    pub created: Option<&'a Created>,
}

pub async fn contain(
    iam: &IamActions,
    target: Credentials<'_>,
    incident: &IncidentId,
    cutoff: OffsetDateTime,
    opts: &Options,
) -> Vec<ActionRecord> {
    // Nothing in IAM contains root, and we never guess at other principals.
    let Some(who) = Iam::of(target.principal) else {
        return Vec::new();
    };
    let (mut records, created) = tokio::join!(
        contain_principal(iam, who, target.key, cutoff, opts),
        Box::pin(stop_created(iam, target.created, opts.dry_run)),
    );
    records.extend(created);
    records.push(iam.tag(who, incident, cutoff, opts.dry_run).await);
    records
}

/// The other user is the attacker's victim, not the attacker: only the credential made for it
/// is stopped, even when that user is protected (the password or key is the attacker's now).
async fn stop_created(
    iam: &IamActions,
    created: Option<&Created>,
    dry_run: bool,
) -> Vec<ActionRecord> {
    match created {
        None => Vec::new(),
        Some(Created::AccessKey {
            user,
            key: Some(key),
        }) => iam.deactivate_keys(user, Some(key), false, dry_run).await,
        Some(Created::AccessKey { user, key: None }) => vec![skipped(
            Action::DeactivateAccessKey,
            format!("user/{user}"),
            format!("the record does not name the key the caller made: check {user}'s keys"),
        )],
        Some(Created::LoginProfile { user }) => iam.remove_login_profile(user, dry_run).await,
        Some(Created::ReactivatedKey { user, key }) => {
            iam.deactivate_keys(user, Some(key), false, dry_run).await
        }
    }
}

async fn contain_principal(
    iam: &IamActions,
    who: Iam<'_>,
    key: Option<&AccessKeyId>,
    cutoff: OffsetDateTime,
    opts: &Options,
) -> Vec<ActionRecord> {
    let dry_run = opts.dry_run;
    match who {
        Iam::User(name) => {
            let long_term = key.filter(|k| k.is_long_term());
            let (mut keys, attach, revoke, password, service, ssh, certificates) = tokio::join!(
                async {
                    if long_term.is_some() || opts.deactivate_all_keys {
                        iam.deactivate_keys(name, long_term, opts.deactivate_all_keys, dry_run)
                            .await
                    } else {
                        Vec::new()
                    }
                },
                iam.attach_quarantine(who, dry_run),
                iam.revoke_sessions(who, cutoff, dry_run),
                // Boxed: four more SDK call chains inline would outgrow a thread's stack.
                Box::pin(iam.remove_login_profile(name, dry_run)),
                Box::pin(iam.deactivate_service_specific_credentials(name, dry_run)),
                Box::pin(iam.deactivate_ssh_public_keys(name, dry_run)),
                Box::pin(iam.deactivate_signing_certificates(name, dry_run)),
            );
            if let Some(k) = key.filter(|k| !k.is_long_term()) {
                keys.push(skipped(
                    Action::DeactivateAccessKey,
                    k.to_string(),
                    "temporary (ASIA) credentials cannot be deactivated; the user's sessions are revoked instead",
                ));
            }
            keys.extend([password, service, ssh, certificates].into_iter().flatten());
            keys.extend([attach, revoke]);
            keys
        }
        // A role has no password, service-specific credentials, SSH keys or certificates.
        Iam::Role(name) => {
            let (revoke, attach) = tokio::join!(iam.revoke_sessions(who, cutoff, dry_run), async {
                if opts.quarantine_roles {
                    iam.attach_quarantine(who, dry_run).await
                } else {
                    skipped(
                        Action::AttachQuarantinePolicy,
                        format!("role/{name}"),
                        "QUARANTINE_ROLES is off: a role is shared by legitimate callers",
                    )
                }
            });
            vec![revoke, attach]
        }
    }
}
