//! Cut the instance's role credentials: take its instance profile away (no new credentials
//! reach it) and deny, on each of the profile's roles, every call signed with credentials
//! delivered to this instance (`ec2:SourceInstanceARN`, which copies taken off the instance
//! carry too). The rest of the fleet sharing the role keeps working; cutting every session of
//! the role is the playbook's opt-in.
//!
//! The profiles and roles are remembered before the profile is disassociated: afterwards EC2
//! no longer names them, and a retry must still find, revoke and verify them.

use serde_json::{json, Value};

use super::register::Remembered;
use super::{filter, InstanceActions, InstanceFacts};
use crate::actions::iam::decode_json;
use crate::actions::{converge, read_failed, Action, ActionRecord, Observed};
use crate::aws::{aws, AwsError};
use crate::ids::{IamName, InstanceId};
use crate::policy::{self, INSTANCE_REVOKE_POLICY_PREFIX};

/// Deny everything signed with credentials EC2 delivered to `instance_arn`, whenever issued:
/// a profile re-associated by the attacker hands out credentials this still denies.
pub fn instance_revoke_document(instance_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CordonRevokeInstanceCredentials",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"ArnEquals": {"ec2:SourceInstanceARN": instance_arn}},
        }],
    })
}

/// `arn:<partition>:ec2:<region>:<account>:instance/<id>`, with the partition and account of
/// one of its instance profiles (an instance's profile is in its own account).
fn instance_arn(profile_arn: &str, region: &str, instance: &InstanceId) -> Option<String> {
    let mut parts = profile_arn.split(':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    (ok(partition)
        && ok(region)
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit()))
    .then(|| format!("arn:{partition}:ec2:{region}:{account}:instance/{instance}"))
}

fn profile_label(arn: &str) -> String {
    format!(
        "instance-profile/{}",
        arn.rsplit('/').next().unwrap_or_default()
    )
}

impl InstanceActions {
    /// The records (profile taken away, each role's credentials for this instance denied,
    /// each profile whose roles could not be read) and the roles, for the opt-in cutoff of
    /// every session of them.
    pub async fn detach_profile(
        &self,
        facts: &InstanceFacts,
        dry_run: bool,
    ) -> (Vec<ActionRecord>, Vec<IamName>) {
        let id = &facts.id;
        let (live, memory) = tokio::join!(self.associations(id), self.register.profiles(id));
        let mut seen = Remembered::default();
        seen.profiles
            .extend(live.iter().flatten().map(|(_, arn)| arn.clone()));
        seen.profiles.extend(facts.profile_arn.clone());
        if let Ok(m) = &memory {
            seen.profiles.extend(m.profiles.iter().cloned());
            seen.roles.extend(m.roles.iter().cloned());
        }
        let mut records = Vec::new();
        let lookups = seen
            .profiles
            .iter()
            .map(|p| async move { (p, self.profile_roles(p).await) });
        for (profile, roles) in futures::future::join_all(lookups).await {
            match roles {
                Ok(roles) => seen.roles.extend(roles),
                // Not "no roles": the revoke is owed, and this says it was not made.
                Err(e) => records.push(read_failed(
                    Action::RevokeSessions,
                    profile_label(profile),
                    &e,
                )),
            }
        }
        // Remembered before it is disassociated, never after.
        let remembered = match &memory {
            Ok(m) if dry_run || m.holds(&seen) => Ok(()),
            Ok(_) => self.register.remember_profiles(id, &seen).await,
            Err(e) => Err(e.clone()),
        };
        // Without the memory, a repeat cannot know what it took away: not "nothing to do".
        let observed = memory.clone().and(live.clone()).map(|a| Observed {
            in_place: a.is_empty(),
            state: json!({
                "associations": a.iter().map(|(id, arn)| json!({"association_id": id, "instance_profile_arn": arn})).collect::<Vec<_>>(),
                "instance_profiles": seen.profiles,
                "roles": seen.roles,
            }),
        });
        records.push(
            converge(
                Action::DetachInstanceProfile,
                id.as_str(),
                dry_run,
                observed,
                || async {
                    remembered.map_err(|e| AwsError {
                        message: format!(
                            "left associated, so that a retry still finds its roles: cordon could not remember them ({})",
                            e.message
                        ),
                        code: e.code,
                    })?;
                    for (association, _) in live.unwrap_or_default() {
                        self.ec2
                            .disassociate_iam_instance_profile()
                            .association_id(association)
                            .send()
                            .await
                            .map_err(aws)?;
                    }
                    Ok(json!({"associations": []}).into())
                },
            )
            .await,
        );
        let roles: Vec<IamName> = seen
            .roles
            .iter()
            .filter_map(|r| IamName::parse(r).ok())
            .collect();
        let region = self.ec2.config().region().map(|r| r.to_string());
        let arn = seen
            .profiles
            .iter()
            .find_map(|p| instance_arn(p, region.as_deref()?, id));
        let revokes = roles
            .iter()
            .map(|role| self.deny_instance_credentials(role, id, arn.as_deref(), dry_run));
        records.extend(futures::future::join_all(revokes).await);
        (records, roles)
    }

    async fn associations(&self, id: &InstanceId) -> Result<Vec<(String, String)>, AwsError> {
        let out = self
            .ec2
            .describe_iam_instance_profile_associations()
            .filters(filter("instance-id", id.as_str()))
            .send()
            .await
            .map_err(aws)?;
        Ok(out
            .iam_instance_profile_associations()
            .iter()
            .filter(|a| {
                a.state()
                    .is_some_and(|s| matches!(s.as_str(), "associated" | "associating"))
            })
            .filter_map(|a| {
                Some((
                    a.association_id()?.to_owned(),
                    a.iam_instance_profile()?.arn()?.to_owned(),
                ))
            })
            .collect())
    }

    async fn profile_roles(&self, arn: &str) -> Result<Vec<String>, AwsError> {
        let name = arn.rsplit('/').next().unwrap_or_default();
        let out = self
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(aws)?;
        Ok(out
            .instance_profile()
            .map(|p| p.roles().iter().map(|r| r.role_name().to_owned()).collect())
            .unwrap_or_default())
    }

    async fn deny_instance_credentials(
        &self,
        role: &IamName,
        instance: &InstanceId,
        arn: Option<&str>,
        dry_run: bool,
    ) -> ActionRecord {
        let target = format!("role/{role} for {instance}");
        let Some(arn) = arn else {
            let e = AwsError {
                code: "NoInstanceArn".to_owned(),
                message: "no instance profile ARN and region to build the instance's ARN from"
                    .to_owned(),
            };
            return read_failed(Action::RevokeSessions, target, &e);
        };
        let name = format!("{INSTANCE_REVOKE_POLICY_PREFIX}{instance}");
        let desired = instance_revoke_document(arn);
        let current = self
            .iam
            .get_role_policy()
            .role_name(role.as_str())
            .policy_name(&name)
            .send()
            .await
            .map(|o| Some(o.policy_document().to_owned()))
            .map_err(aws);
        let observed = match current {
            Ok(doc) => Ok(doc),
            Err(e) if e.is("NoSuchEntity") => Ok(None),
            Err(e) => Err(e),
        }
        .map(|doc| Observed {
            in_place: doc
                .as_deref()
                .is_some_and(|d| policy::same_document(d, &desired)),
            state: json!({"inline_policy": name, "document": doc.as_deref().map(decode_json)}),
        });
        converge(
            Action::RevokeSessions,
            target,
            dry_run,
            observed,
            || async {
                self.iam
                    .put_role_policy()
                    .role_name(role.as_str())
                    .policy_name(&name)
                    .policy_document(desired.to_string())
                    .send()
                    .await
                    .map_err(aws)?;
                Ok(json!({"inline_policy": name, "denies_credentials_of": arn}).into())
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_arn_comes_from_its_profile() {
        let i = InstanceId::parse("i-0123456789abcdef0").unwrap();
        assert_eq!(
            instance_arn(
                "arn:aws-cn:iam::123456789012:instance-profile/path/web",
                "cn-north-1",
                &i
            )
            .as_deref(),
            Some("arn:aws-cn:ec2:cn-north-1:123456789012:instance/i-0123456789abcdef0")
        );
        for bad in [
            "arn:aws:iam::12345:instance-profile/web",
            "arn:aws:s3:::bucket",
            "arn:a\"ws:iam::123456789012:instance-profile/web",
            "",
        ] {
            assert_eq!(instance_arn(bad, "us-east-1", &i), None, "{bad}");
        }
        assert_eq!(
            instance_arn(
                "arn:aws:iam::123456789012:instance-profile/web",
                "us east",
                &i
            ),
            None
        );
    }
}
