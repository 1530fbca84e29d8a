//! Contain a principal whose credentials leaked: containment first (key, quarantine, sessions,
//! and for a user every other credential: password, service-specific credentials, SSH keys,
//! signing certificates; all at once), the tag for people after.

use time::OffsetDateTime;

use crate::actions::iam::{Iam, IamActions};
use crate::actions::{skipped, Action, ActionRecord};
use crate::ids::{AccessKeyId, IncidentId};
use crate::principal::Principal;

pub struct Options {
    pub dry_run: bool,
    pub deactivate_all_keys: bool,
    pub quarantine_roles: bool,
}

pub async fn contain(
    iam: &IamActions,
    principal: &Principal,
    key: Option<&AccessKeyId>,
    incident: &IncidentId,
    cutoff: OffsetDateTime,
    opts: &Options,
) -> Vec<ActionRecord> {
    let dry_run = opts.dry_run;
    // Nothing in IAM contains root, and we never guess at other principals.
    let Some(who) = Iam::of(principal) else {
        return Vec::new();
    };
    let mut records = match who {
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
    };
    records.push(iam.tag(who, incident, cutoff, dry_run).await);
    records
}
