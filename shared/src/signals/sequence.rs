//! GuardDuty Extended Threat Detection's attack sequences: one finding that names several
//! targets. Each target becomes one part of the incident, with an id derived from the finding's
//! and the target's, and is then handled exactly as a single-target incident is.

use crate::events::guardduty::{Finding, Sequence};
use crate::events::EventError;
use crate::ids::{AccessKeyId, AccountId, InstanceId};

use super::{principal_of, Function, Incident, Signal, Target};

pub const ATTACK_SEQUENCE: &str = "AttackSequence:";
/// The sequences whose instances are the attacker's: isolated. In the others (IAM, S3, EKS,
/// ECS) an instance may be a victim, so only the IAM actors are contained.
const INSTANCE_SEQUENCE: &str = "AttackSequence:EC2/";

pub(super) fn is_sequence(finding: &Finding) -> bool {
    finding.finding_type.starts_with(ATTACK_SEQUENCE)
}

/// The parts of a sequence `function` acts on, and what it leaves to a person.
pub(super) fn from_sequence(
    function: Function,
    incident: Incident,
    finding: &Finding,
    max_instances: usize,
) -> Result<Signal, EventError> {
    let Some(sequence) = finding
        .service
        .detection
        .as_ref()
        .and_then(|d| d.sequence.as_ref())
    else {
        return Ok(Signal::Each {
            incident,
            parts: Vec::new(),
            unhandled: Some(
                "the finding carries no service.detection.sequence, so cordon cannot tell whom it names: read it in GuardDuty".to_owned(),
            ),
        });
    };
    let here = Here {
        account: incident.account.as_ref().map(AccountId::as_str),
        region: incident.region.as_deref(),
    };
    let (mut targets, mut elsewhere) = match function {
        Function::QuarantineCredentials => credentials(sequence, &here),
        Function::IsolateInstance if finding.finding_type.starts_with(INSTANCE_SEQUENCE) => {
            instances(sequence, &here)
        }
        Function::IsolateInstance => (Vec::new(), Vec::new()),
    };
    // The cap is on instances (each isolation may cut a service off); every credential is
    // contained.
    let beyond = match function {
        Function::IsolateInstance => targets.split_off(max_instances.min(targets.len())),
        Function::QuarantineCredentials => Vec::new(),
    };
    let mut unhandled = Vec::new();
    if !beyond.is_empty() {
        let list: Vec<String> = beyond.iter().map(Target::describe_briefly).collect();
        unhandled.push(format!(
            "MAX_INSTANCES_PER_INCIDENT is {max_instances}, so these are not isolated and a person decides: {}",
            list.join(", ")
        ));
    }
    if !elsewhere.is_empty() {
        elsewhere.dedup();
        unhandled.push(format!(
            "outside what this deployment acts on (another account or region, or unreadable): {}",
            elsewhere.join(", ")
        ));
    }
    let parts = targets
        .into_iter()
        .map(|target| {
            Ok(Signal::Respond {
                incident: incident.part(&target)?,
                target,
            })
        })
        .collect::<Result<_, EventError>>()?;
    Ok(Signal::Each {
        incident,
        parts,
        unhandled: (!unhandled.is_empty()).then(|| unhandled.join("; ")),
    })
}

/// The finding's account and region: a sequence may name resources in others, which this
/// deployment's calls would not reach (or, by name, would reach the wrong one).
struct Here<'a> {
    account: Option<&'a str>,
    region: Option<&'a str>,
}

impl Here<'_> {
    fn holds(&self, account: Option<&str>, region: Option<&str>) -> bool {
        let same = |theirs: Option<&str>, ours: Option<&str>| match (theirs, ours) {
            (Some(theirs), Some(ours)) => theirs == ours,
            _ => true,
        };
        same(account, self.account) && same(region, self.region)
    }
}

/// The IAM principals the sequence's actors and access-key resources name, each once, and
/// what it names that cordon cannot act on here.
fn credentials(sequence: &Sequence, here: &Here) -> (Vec<Target>, Vec<String>) {
    struct Named<'a> {
        kind: Option<&'a str>,
        name: Option<&'a str>,
        key: Option<&'a str>,
        account: Option<&'a str>,
    }
    let actors = sequence
        .actors
        .iter()
        .filter_map(|a| a.user.as_ref())
        .map(|u| Named {
            kind: u.kind.as_deref(),
            name: u.name.as_deref(),
            key: u.credential_uid.as_deref(),
            account: u.account.as_ref().and_then(|a| a.uid.as_deref()),
        });
    let keys = sequence
        .resources
        .iter()
        .filter(|r| r.resource_type.as_deref() == Some("ACCESS_KEY"))
        .map(|r| {
            let data = r.data.as_ref().and_then(|d| d.get("accessKey"));
            let field = |f: &str| data.and_then(|d| d.get(f)).and_then(|v| v.as_str());
            Named {
                kind: field("userType"),
                name: field("userName"),
                key: r.uid.as_deref(),
                account: r.account_id.as_deref(),
            }
        });
    let mut targets: Vec<Target> = Vec::new();
    let mut elsewhere = Vec::new();
    for named in actors.chain(keys) {
        let who = format!(
            "{} {} ({})",
            named.kind.unwrap_or("unknown"),
            named.name.unwrap_or("unnamed"),
            named.account.unwrap_or("this account")
        );
        let principal = named
            .kind
            .filter(|_| here.holds(named.account, None))
            .and_then(|kind| principal_of(kind, named.name).ok());
        let Some(principal) = principal else {
            elsewhere.push(who);
            continue;
        };
        let target = Target::Credentials {
            principal,
            path: None,
            access_key: named.key.and_then(|k| AccessKeyId::parse(k).ok()),
            all_keys: false,
            created: None,
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    (targets, elsewhere)
}

/// The instances the sequence names: `EC2_INSTANCE` resources, and every group's
/// `ec2InstanceUids` (Auto Scaling groups, launch templates, VPCs, images, ...), each once.
fn instances(sequence: &Sequence, here: &Here) -> (Vec<Target>, Vec<String>) {
    let mut targets: Vec<Target> = Vec::new();
    let mut elsewhere = Vec::new();
    for resource in &sequence.resources {
        let direct = (resource.resource_type.as_deref() == Some("EC2_INSTANCE"))
            .then_some(resource.uid.as_deref())
            .flatten();
        let grouped = resource
            .data
            .as_ref()
            .and_then(|d| d.as_object())
            .into_iter()
            .flat_map(|data| data.values())
            .filter_map(|member| member.get("ec2InstanceUids")?.as_array())
            .flatten()
            .filter_map(|uid| uid.as_str());
        for id in direct.into_iter().chain(grouped) {
            let instance = InstanceId::parse(id)
                .ok()
                .filter(|_| here.holds(resource.account_id.as_deref(), resource.region.as_deref()));
            let Some(instance) = instance else {
                elsewhere.push(format!("instance {id}"));
                continue;
            };
            let target = Target::Instance { instance };
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    (targets, elsewhere)
}
