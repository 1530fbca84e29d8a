//! From a parsed event to what a function should do about it: which incident, which principal or
//! instance, or why it ignores the event. Pure: no AWS calls, no configuration beyond flags.

use serde::Serialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::Config;
use crate::events::cloudtrail::Record;
use crate::events::{self, guardduty::Finding, health::HealthEvent, Envelope, Event, EventError};
use crate::ids::{AccessKeyId, AccountId, IamName, IncidentId, InstanceId};
use crate::principal::{IamPath, Principal};
use crate::rules::{self, Response};

mod sequence;

impl Incident {
    /// One part of an incident with several targets: its own id, stable across re-sends
    /// whatever order they list the targets in, so each part is claimed, recorded and repeated
    /// on its own.
    pub fn part(&self, target: &Target) -> Result<Incident, EventError> {
        let key = format!(
            "{}#{}",
            target.resource_key(),
            target.access_key().map(AccessKeyId::as_str).unwrap_or("")
        );
        Ok(Incident {
            id: IncidentId::parse(&format!("{}:{}", self.id.as_str(), short_hash(&key)))?,
            title: format!("{} ({})", self.title, target.describe_briefly()),
            ..self.clone()
        })
    }
}

/// FNV-1a, as 16 hex digits: a short, stable name for a longer one inside an incident id.
fn short_hash(s: &str) -> String {
    let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Which Lambda function is asking: each handles its own kind of target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Function {
    QuarantineCredentials,
    IsolateInstance,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Self::QuarantineCredentials => "quarantine-credentials",
            Self::IsolateInstance => "isolate-instance",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: IncidentId,
    /// The finding type, e.g. `UnauthorizedAccess:IAMUser/TorIPCaller`.
    pub kind: String,
    pub title: String,
    pub severity: f64,
    /// The account the finding is about (a delegated admin also receives its members' findings).
    pub account: Option<AccountId>,
    pub region: Option<String>,
    /// GuardDuty's occurrence count: it rises on each re-sent copy of the same finding.
    pub count: u64,
    /// When the finding last saw the activity (GuardDuty's `eventLastSeen`): on a repeat, later
    /// than the session cutoff means the attacker is still active.
    #[serde(skip)]
    pub last_seen: Option<OffsetDateTime>,
    /// The call touched cordon's quarantine policy (rule `cordon-tampered`): its document is
    /// restored whether or not the caller is contained.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub touched_quarantine: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    Credentials {
        principal: Principal,
        /// Where the principal sits, as the caller's ARN in a CloudTrail record says; `None`
        /// when the event does not say (a GuardDuty finding names the principal alone).
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<IamPath>,
        access_key: Option<AccessKeyId>,
        /// Deactivate every key of the user, whatever DEACTIVATE_ALL_KEYS says.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        all_keys: bool,
        /// What the call that gave the principal away made for someone else: stopped with it.
        #[serde(skip_serializing_if = "Option::is_none")]
        created: Option<Created>,
    },
    Instance {
        instance: InstanceId,
    },
}

/// A credential the caller made for another user. It is the attacker's, whoever it belongs
/// to, so it is stopped in the same invocation as its maker.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Created {
    /// `CreateAccessKey` for another user: `responseElements.accessKey` names the key (a record
    /// without it still stops the caller, and says the key must be found by a person).
    AccessKey {
        user: IamName,
        key: Option<AccessKeyId>,
    },
    /// `CreateLoginProfile`/`UpdateLoginProfile` for another user: the attacker knows the password.
    LoginProfile { user: IamName },
    /// `UpdateAccessKey` to `Active` (rule `cordon-tampered`) by a caller cordon contains: the
    /// key it brought back is the attacker's again, so it is set Inactive beside its caller.
    /// Containing the caller alone left a key cordon had reported contained working.
    ReactivatedKey { user: IamName, key: AccessKeyId },
}

impl Created {
    /// From a successful call that made a credential for a user other than the caller. Never an
    /// error: what cannot be read here must not keep the caller from being contained.
    fn from_record(record: &Record) -> Option<Self> {
        let user = IamName::parse(record.request_str("userName")?).ok()?;
        match record.event_name.as_str() {
            "CreateAccessKey" => {
                let key = record
                    .response_elements
                    .as_ref()
                    .and_then(|r| r.pointer("/accessKey/accessKeyId"))
                    .and_then(Value::as_str)
                    .and_then(|k| AccessKeyId::parse(k).ok());
                Some(Self::AccessKey { user, key })
            }
            "CreateLoginProfile" | "UpdateLoginProfile" => Some(Self::LoginProfile { user }),
            _ => None,
        }
    }

    /// The key a successful `UpdateAccessKey` to `Active` names. Without `userName` the caller
    /// reactivated its own key, which its own containment deactivates.
    fn reactivated(record: &Record) -> Option<Self> {
        let active = record
            .request_str("status")
            .is_some_and(|s| s.eq_ignore_ascii_case("Active"));
        if record.event_name != "UpdateAccessKey" || !active {
            return None;
        }
        Some(Self::ReactivatedKey {
            user: IamName::parse(record.request_str("userName")?).ok()?,
            key: AccessKeyId::parse(record.request_str("accessKeyId")?).ok()?,
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::AccessKey {
                user,
                key: Some(key),
            } => {
                format!("key {} of user {user}", key.redacted())
            }
            Self::AccessKey { user, key: None } => format!("a new key of user {user}"),
            Self::LoginProfile { user } => format!("console password of user {user}"),
            Self::ReactivatedKey { user, key } => {
                format!("key {} of user {user}", key.redacted())
            }
        }
    }
}

impl Target {
    pub fn describe(&self) -> String {
        let text = match self {
            Self::Credentials {
                principal,
                access_key: Some(key),
                ..
            } => format!("{} (key {})", principal.describe(), key.redacted()),
            _ => self.describe_briefly(),
        };
        match self {
            Self::Credentials {
                created: Some(c), ..
            } => {
                let verb = match c {
                    Created::ReactivatedKey { .. } => "reactivated",
                    _ => "made",
                };
                format!("{text}, and the {} it {verb}", c.describe())
            }
            _ => text,
        }
    }

    /// Without the key id, for where space is short.
    pub fn describe_briefly(&self) -> String {
        match self {
            Self::Credentials { principal, .. } => principal.describe(),
            Self::Instance { instance } => format!("instance {instance}"),
        }
    }

    /// The access key the finding or call names, if any.
    pub fn access_key(&self) -> Option<&AccessKeyId> {
        match self {
            Self::Credentials { access_key, .. } => access_key.as_ref(),
            Self::Instance { .. } => None,
        }
    }

    /// The ledger's index key for "all incidents of this principal or instance".
    pub fn resource_key(&self) -> String {
        match self {
            Self::Credentials { principal, .. } => match principal {
                Principal::User(n) => format!("user/{n}"),
                Principal::Role(n) => format!("role/{n}"),
                Principal::Root => "root".to_owned(),
                Principal::Unsupported(kind) => format!("unsupported/{kind}"),
            },
            Self::Instance { instance } => format!("instance/{instance}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Signal {
    Respond {
        incident: Incident,
        target: Target,
    },
    /// Worth a person's attention, but not for cordon to contain.
    Notify {
        incident: Incident,
        target: Target,
        reason: String,
    },
    /// Recorded and answered, but nothing is touched.
    Ignore {
        incident: Option<Incident>,
        reason: String,
    },
    /// Access keys someone else reported (AWS Health): each key's owner is looked up, then
    /// each is one part, as in `Each`.
    Keys {
        incident: Incident,
        keys: Vec<AccessKeyId>,
        unhandled: Option<String>,
    },
    /// One incident, several targets (an attack sequence): each part handled as its own
    /// single-target incident, and what cordon leaves to a person notified under the whole.
    Each {
        incident: Incident,
        parts: Vec<Signal>,
        unhandled: Option<String>,
    },
}

const INSTANCE_CREDENTIAL_EXFILTRATION: &str =
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration";

pub fn from_event(
    function: Function,
    event: serde_json::Value,
    config: &Config,
) -> Result<Signal, EventError> {
    let (envelope, event) = events::parse(event)?;
    match event {
        Event::GuardDuty(finding) => from_finding(function, &envelope, &finding, config),
        Event::CloudTrail(record) => match function {
            Function::QuarantineCredentials => from_cloudtrail(&record, config),
            Function::IsolateInstance => Ok(Signal::Ignore {
                incident: None,
                reason: "isolate-instance does not act on CloudTrail calls".to_owned(),
            }),
        },
        Event::Health(health) => Ok(from_health(function, &envelope, &health)?),
        Event::Other { detail_type } => Ok(Signal::Ignore {
            incident: None,
            reason: format!("{} does not handle {detail_type:?} events", function.name()),
        }),
    }
}

fn from_finding(
    function: Function,
    envelope: &Envelope,
    finding: &Finding,
    config: &Config,
) -> Result<Signal, EventError> {
    let incident = Incident {
        id: IncidentId::parse(&finding.id)?,
        kind: finding.finding_type.clone(),
        title: finding.title.clone().unwrap_or_default(),
        severity: finding.severity.unwrap_or(0.0),
        account: finding
            .account_id
            .as_deref()
            .or(envelope.account.as_deref())
            .map(AccountId::parse)
            .transpose()?,
        region: finding.region.clone().or_else(|| envelope.region.clone()),
        count: finding.service.count.unwrap_or(1),
        last_seen: finding
            .service
            .event_last_seen
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()),
        touched_quarantine: false,
    };
    let ignore = |reason: String| {
        Ok(Signal::Ignore {
            incident: Some(incident.clone()),
            reason,
        })
    };
    if finding.is_sample() && !config.respond_to_sample_findings {
        return ignore("sample finding (RESPOND_TO_SAMPLE_FINDINGS is off)".to_owned());
    }
    // Before the resource checks: a sequence's resource type is `AttackSequence`, and its
    // `resourceRole` says TARGET whoever it names.
    let below_floor = || {
        (incident.severity < config.min_severity).then(|| {
            format!(
                "severity {} is below MIN_SEVERITY {}",
                incident.severity, config.min_severity
            )
        })
    };
    if sequence::is_sequence(finding) {
        if let Some(reason) = below_floor() {
            return ignore(reason);
        }
        let max = config.max_instances_per_incident;
        return sequence::from_sequence(function, incident, finding, max);
    }
    let missing = |field| EventError::MissingField {
        finding: finding.id.chars().take(128).collect(),
        field,
    };
    let target = match function {
        Function::QuarantineCredentials => {
            // S3 Protection findings (`Exfiltration:S3/MaliciousIPCaller`) name the bucket as
            // the resource and the key that reached it in `accessKeyDetails`.
            let s3_by_key = finding.resource_type() == "S3Bucket"
                && finding.resource.access_key_details.is_some();
            if finding.resource_type() != "AccessKey" && !s3_by_key {
                return ignore(format!(
                    "resource type {:?} is not an access key",
                    finding.resource_type()
                ));
            }
            // A call from another account names that account's principal: containing a
            // same-named user or role here would aim cordon at a bystander.
            if let Some(caller) = finding
                .remote_caller_account()
                .filter(|a| Some(*a) != incident.account.as_ref().map(AccountId::as_str))
            {
                if let Some(reason) = below_floor() {
                    return ignore(reason);
                }
                let caller = AccountId::parse(caller)
                    .map_or_else(|_| "another account".to_owned(), |a| format!("account {a}"));
                return Ok(Signal::Each {
                    incident: incident.clone(),
                    parts: Vec::new(),
                    unhandled: Some(format!(
                        "the call came from {caller} (remoteAccountDetails), so the principal GuardDuty names is that account's and a same-named one here is someone else: nothing was changed. Block the caller where it reached this account (bucket policy, role trust, resource policy) and tell the owner of {caller}"
                    )),
                });
            }
            let details = finding
                .resource
                .access_key_details
                .as_ref()
                .ok_or_else(|| missing("resource.accessKeyDetails"))?;
            credentials_target(details)
                .map_err(|e| e.unwrap_or_else(|| missing("resource.accessKeyDetails.userName")))?
        }
        Function::IsolateInstance => {
            let credential_theft = finding
                .finding_type
                .starts_with(INSTANCE_CREDENTIAL_EXFILTRATION);
            if finding.resource_type() != "Instance" && !credential_theft {
                return ignore(format!(
                    "resource type {:?} is not an instance",
                    finding.resource_type()
                ));
            }
            let id = finding
                .resource
                .instance_details
                .as_ref()
                .and_then(|d| d.instance_id.as_deref())
                .ok_or_else(|| missing("resource.instanceDetails.instanceId"))?;
            let target = Target::Instance {
                instance: InstanceId::parse(id)?,
            };
            // Probed or scanned from outside: the instance is the victim. (A stolen-credential
            // finding's resource is the key, whatever its role says.)
            if finding.resource_is_target() && !credential_theft {
                return Ok(Signal::Notify {
                    incident,
                    target,
                    reason: "the instance is the target of this activity, not its actor: it is not isolated".to_owned(),
                });
            }
            target
        }
    };
    // Root is only ever told about, and GuardDuty rates its use Low: the floor is for what
    // cordon would change.
    let root = matches!(
        &target,
        Target::Credentials {
            principal: Principal::Root,
            ..
        }
    );
    if let Some(reason) = below_floor().filter(|_| !root) {
        return ignore(reason);
    }
    Ok(Signal::Respond { incident, target })
}

/// `Err(None)` means a required field is absent; the caller names it.
fn credentials_target(
    details: &events::guardduty::AccessKeyDetails,
) -> Result<Target, Option<EventError>> {
    let key = details
        .access_key_id
        .as_deref()
        .map(AccessKeyId::parse)
        .transpose()
        .map_err(|e| Some(e.into()))?;
    Ok(Target::Credentials {
        principal: principal_of(
            details.user_type.as_deref().unwrap_or(""),
            details.user_name.as_deref(),
        )?,
        path: None,
        access_key: key,
        all_keys: false,
        created: None,
    })
}

/// AWS Health's credential-risk events: the keys it names, whatever the severity floor (AWS
/// itself found them exposed).
fn from_health(
    function: Function,
    envelope: &Envelope,
    event: &HealthEvent,
) -> Result<Signal, EventError> {
    if function != Function::QuarantineCredentials || !event.is_credential_risk() {
        return Ok(Signal::Ignore {
            incident: None,
            reason: format!(
                "{} does not act on Health {} events",
                function.name(),
                event.event_type_code.chars().take(64).collect::<String>()
            ),
        });
    }
    let incident = Incident {
        id: IncidentId::parse(&format!("health:{}", short_hash(&event.event_arn)))?,
        kind: format!("Health:{}", event.event_type_code),
        title: format!(
            "AWS Health reports a credential risk ({})",
            event.event_type_code
        ),
        severity: HEALTH_SEVERITY,
        account: event
            .affected_account
            .as_deref()
            .or(envelope.account.as_deref())
            .map(AccountId::parse)
            .transpose()?,
        region: envelope.region.clone(),
        count: 1,
        last_seen: None,
        touched_quarantine: false,
    };
    let mut keys: Vec<AccessKeyId> = Vec::new();
    let mut other: Vec<String> = Vec::new();
    for entity in &event.affected_entities {
        match AccessKeyId::parse(&entity.entity_value) {
            Ok(key) if !keys.contains(&key) => keys.push(key),
            Ok(_) => {}
            Err(_) => other.push(entity.entity_value.chars().take(128).collect()),
        }
    }
    Ok(Signal::Keys {
        incident,
        keys,
        unhandled: (!other.is_empty())
            .then(|| format!("not an access key, so not contained: {}", other.join(", "))),
    })
}

/// AWS Health gives no severity; a key AWS found exposed is as urgent as GuardDuty's High.
const HEALTH_SEVERITY: f64 = 8.0;

/// GuardDuty's user type and name (`accessKeyDetails`, a sequence's actors): `Err(None)` when
/// the name it needs is absent.
fn principal_of(kind: &str, name: Option<&str>) -> Result<Principal, Option<EventError>> {
    let name = || -> Result<IamName, Option<EventError>> {
        IamName::parse(name.ok_or(None)?).map_err(|e| Some(e.into()))
    };
    Ok(match kind {
        "IAMUser" => Principal::User(name()?),
        "AssumedRole" => Principal::Role(name()?),
        "Root" => Principal::Root,
        other => Principal::unsupported(other),
    })
}

/// A CloudTrail call: which rule it trips, and whom to contain (normally the caller).
fn from_cloudtrail(record: &Record, config: &Config) -> Result<Signal, EventError> {
    let Some(rule) = rules::evaluate(record, &config.rules) else {
        return Ok(Signal::Ignore {
            incident: None,
            reason: format!(
                "{}:{} matches no detection rule",
                record.event_source, record.event_name
            ),
        });
    };
    let caller_arn = record
        .user_identity
        .arn
        .as_deref()
        .unwrap_or("unknown caller");
    let event_id = record.event_id.as_deref().ok_or(EventError::MissingField {
        finding: format!("{}:{}", record.event_source, record.event_name),
        field: "eventID",
    })?;
    let incident = Incident {
        id: IncidentId::parse(event_id)?,
        kind: format!("CloudTrail:{}", rule.id),
        title: format!(
            "{} ({}:{} by {caller_arn})",
            rule.description,
            record.event_source.trim_end_matches(".amazonaws.com"),
            record.event_name
        ),
        severity: rule.severity,
        account: record.account().map(AccountId::parse).transpose()?,
        region: record.aws_region.clone(),
        count: 1,
        last_seen: None,
        touched_quarantine: rule.id == "cordon-tampered"
            && rules::touches_quarantine_policy(record),
    };
    // AWS quarantined someone: the target is that user, not the caller (often AWS itself).
    let quarantined = if rule.id == "aws-quarantined-key" {
        let user = record
            .request_str("userName")
            .ok_or(EventError::MissingField {
                finding: event_id.to_owned(),
                field: "requestParameters.userName",
            })?;
        Some(Principal::User(IamName::parse(user)?))
    } else {
        None
    };
    let aws_quarantine = quarantined.is_some();
    let target = if let Some(principal) = quarantined.clone() {
        Target::Credentials {
            principal,
            // Named by a request field: where it sits is not said by an ARN.
            path: None,
            access_key: None,
            all_keys: true,
            created: None,
        }
    } else {
        let principal = rules::caller(record);
        Target::Credentials {
            path: IamPath::of_caller(&record.user_identity, &principal),
            principal,
            access_key: record
                .user_identity
                .access_key_id
                .as_deref()
                .and_then(|k| AccessKeyId::parse(k).ok()),
            all_keys: false,
            // Only a rule that names another user's credential, and only if the call succeeded.
            created: match (rule.id, &record.error_code) {
                ("persistence-other-user", None) => Created::from_record(record),
                ("cordon-tampered", None) => Created::reactivated(record),
                _ => None,
            },
        }
    };
    let notify = |reason: String| Signal::Notify {
        incident: incident.clone(),
        target: target.clone(),
        reason,
    };
    // Only a service's own call (`userIdentity.type` AWSService) is passed over; a user or role
    // whose call carries `invokedBy` is that principal acting (`Record::by_aws_service`).
    if record.by_aws_service() && !aws_quarantine {
        return Ok(Signal::Ignore {
            incident: Some(incident.clone()),
            reason:
                "called by an AWS service itself (userIdentity.type AWSService): never contained"
                    .to_owned(),
        });
    }
    if rule.response == Response::Notify {
        return Ok(notify(rule.description.to_owned()));
    }
    // AWS makes this call itself or as the quarantined user. Anyone else attaching AWS's policy
    // to a user must not get cordon to take every credential of that user on their word.
    if aws_quarantine && !record.by_aws_service() && quarantined != Some(rules::caller(record)) {
        return Ok(notify(format!(
            "{}, but by {caller_arn}, neither AWS nor the user itself: notify only",
            rule.description
        )));
    }
    // A canary key has no business making any call: one that failed still proves the key is
    // in someone's hands.
    let canary = rule.id == "canary-key-used";
    if let Some(code) = record.error_code.as_ref().filter(|_| !canary) {
        let code: String = code
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(64)
            .collect();
        return Ok(notify(format!(
            "{} (the call failed with {code}: notify only)",
            rule.description
        )));
    }
    Ok(Signal::Respond { incident, target })
}
