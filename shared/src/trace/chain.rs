//! What a credential's history says it made, read from the CloudTrail records alone (no AWS
//! calls): the credentials it minted, which the trace follows, and what it left behind, which
//! the trace contains or lists. Only calls that succeeded made anything.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::actions::role_sessions::SessionId;
use crate::actions::shares::Shared;
use crate::events::cloudtrail::Record;
use crate::ids::{AccessKeyId, AccountId, IamName, InstanceId};
use crate::principal::IamPath;
use crate::rules::{self, RuleSettings};

/// The calls whose answer holds a new credential (`responseElements.credentials.accessKeyId`).
pub const MINTING: &[&str] = &[
    "GetSessionToken",
    "GetFederationToken",
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
];

/// The calls read by name, account-wide, before any key's history: those whose records say what
/// cordon stops, and the two that mint a key for a user (`AssumeRole*` is every workload's daily
/// call, too many to read by name; a role session is found in its minter's history).
pub const READ_FIRST: &[&str] = &[
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "CreateUser",
    "GetSessionToken",
    "GetFederationToken",
    "CreateServiceSpecificCredential",
    "ResetServiceSpecificCredential",
    "UploadSSHPublicKey",
    "CreateRole",
    "UpdateAssumeRolePolicy",
    "ModifySnapshotAttribute",
    "ModifyImageAttribute",
];

/// The compute creates cryptomining campaigns use, listed with what they made.
const COMPUTE: &[&str] = &[
    "RunInstances",
    "RequestSpotInstances",
    "RequestSpotFleet",
    "CreateFleet",
    "CreateCluster",
    "CreateService",
    "RegisterTaskDefinition",
    "RunTask",
    "CreateProject",
    "CreateNotebookInstance",
    "CreateTrainingJob",
    "CreateProcessingJob",
    "CreateEndpoint",
    "CreateApp",
    "CreateBackendEnvironment",
];

/// A credential the chain minted, with the call that minted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Minted {
    pub key: AccessKeyId,
    pub by: String,
    /// For `AssumeRole*`: the role (in this account) and the session, to deny precisely.
    pub session: Option<(RoleAt, SessionId)>,
}

/// A role of this account, with its path as the ARN the chain assumed says (`/` when it says
/// none): path-aware protection patterns need it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RoleAt {
    pub role: IamName,
    pub path: String,
}

/// Something the chain made that cordon stops.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Made {
    AccessKey {
        user: IamName,
        key: AccessKeyId,
    },
    User {
        user: IamName,
    },
    LoginProfile {
        user: IamName,
    },
    ServiceSpecificCredential {
        user: IamName,
    },
    SshPublicKey {
        user: IamName,
    },
    /// Created, or its trust opened to an account outside ALLOWED_ACCOUNTS.
    Role {
        role: IamName,
        trust: String,
    },
    RoleSessions {
        role: RoleAt,
        sessions: Vec<SessionId>,
    },
    Share {
        shared: Shared,
        accounts: Vec<String>,
    },
    Instance {
        id: InstanceId,
    },
}

/// One write of the chain, for the list grouped by service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Write {
    pub event: String,
    pub time: Option<String>,
    pub region: Option<String>,
    pub event_id: Option<String>,
    /// What it named or made, where the record says (an instance id, a policy ARN, a name).
    pub resource: Option<String>,
    /// Compute launched, a policy attached, a function created: called out in the notification.
    pub notable: bool,
}

/// Everything read from one set of records.
#[derive(Debug, Default)]
pub struct Read {
    pub minted: Vec<Minted>,
    pub made: Vec<Made>,
    /// service (`ec2`) -> its writes, in the order read.
    pub writes: BTreeMap<String, Vec<Write>>,
}

/// The records of a trace, read for what they made. `account` is this deployment's: a role
/// session is denied only on a role here.
pub fn read(records: &[Record], account: &AccountId, settings: &RuleSettings) -> Read {
    let mut out = Read::default();
    let mut sessions: BTreeMap<RoleAt, Vec<SessionId>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.error_code.is_none()) {
        if let Some(m) = minted(r, account) {
            if let Some((role, session)) = &m.session {
                let list = sessions.entry(role.clone()).or_default();
                if !list.contains(session) {
                    list.push(session.clone());
                }
            }
            out.minted.push(m);
        }
        out.made.extend(made(r, settings));
        if r.read_only != Some(true) && !MINTING.contains(&r.event_name.as_str()) {
            let service = r.event_source.trim_end_matches(".amazonaws.com").to_owned();
            out.writes.entry(service).or_default().push(write(r));
        }
    }
    out.made.extend(
        sessions
            .into_iter()
            .map(|(role, sessions)| Made::RoleSessions { role, sessions }),
    );
    out.made.sort();
    out.made.dedup();
    out
}

fn response_str<'a>(r: &'a Record, pointer: &str) -> Option<&'a str> {
    r.response_elements.as_ref()?.pointer(pointer)?.as_str()
}

fn minted(r: &Record, account: &AccountId) -> Option<Minted> {
    if !MINTING.contains(&r.event_name.as_str()) {
        return None;
    }
    let key = AccessKeyId::parse(response_str(r, "/credentials/accessKeyId")?).ok()?;
    let session = r.event_name.starts_with("AssumeRole").then(|| {
        let arn = r.request_str("roleArn")?;
        let (prefix, name) = arn.split_once(":role/")?;
        // Only a role of this account can carry our deny.
        if !prefix.ends_with(&format!(":{account}")) {
            return None;
        }
        let (path, name) = name.rsplit_once('/').unwrap_or(("", name));
        let role = IamName::parse(name).ok()?;
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            format!("/{path}/")
        };
        IamPath::parse(&path)?;
        let id = SessionId::parse(response_str(r, "/assumedRoleUser/assumedRoleId")?).ok()?;
        Some((RoleAt { role, path }, id))
    });
    Some(Minted {
        key,
        by: r.event_name.clone(),
        session: session.flatten(),
    })
}

fn user_named(r: &Record) -> Option<IamName> {
    IamName::parse(r.request_str("userName")?).ok()
}

fn made(r: &Record, settings: &RuleSettings) -> Vec<Made> {
    let user = || user_named(r);
    let one = |m: Option<Made>| m.into_iter().collect::<Vec<_>>();
    match r.event_name.as_str() {
        "CreateAccessKey" => one((|| {
            let key = AccessKeyId::parse(response_str(r, "/accessKey/accessKeyId")?).ok()?;
            let user = IamName::parse(response_str(r, "/accessKey/userName")?).ok()?;
            Some(Made::AccessKey { user, key })
        })()),
        "CreateUser" => one(user().map(|user| Made::User { user })),
        "CreateLoginProfile" | "UpdateLoginProfile" => {
            one(user().map(|user| Made::LoginProfile { user }))
        }
        "CreateServiceSpecificCredential" | "ResetServiceSpecificCredential" => {
            one(user().map(|user| Made::ServiceSpecificCredential { user }))
        }
        "UploadSSHPublicKey" => one(user().map(|user| Made::SshPublicKey { user })),
        "CreateRole" | "UpdateAssumeRolePolicy" => {
            let opened = rules::fires("persistence-trust-outside", r, settings);
            let role = r
                .request_str("roleName")
                .and_then(|n| IamName::parse(n).ok());
            let trust = r
                .request_str("assumeRolePolicyDocument")
                .or_else(|| r.request_str("policyDocument"))
                .unwrap_or_default()
                .to_owned();
            one(role
                .filter(|_| opened || r.event_name == "CreateRole")
                .map(|role| Made::Role { role, trust }))
        }
        "ModifySnapshotAttribute" | "ModifyImageAttribute"
            if rules::fires("exfiltration-sharing", r, settings) =>
        {
            let shared = if r.event_name == "ModifySnapshotAttribute" {
                r.request_str("snapshotId").and_then(Shared::snapshot)
            } else {
                r.request_str("imageId").and_then(Shared::image)
            };
            let own = r.account().unwrap_or_default();
            let accounts = shared_with(r)
                .into_iter()
                .filter(|a| {
                    a == "all" || (a != own && !settings.allowed_accounts.iter().any(|x| x == a))
                })
                .collect();
            one(shared.map(|shared| Made::Share { shared, accounts }))
        }
        "RunInstances" => instances(r)
            .into_iter()
            .map(|id| Made::Instance { id })
            .collect(),
        _ => Vec::new(),
    }
}

/// The accounts (or `all`) a snapshot or image share added.
fn shared_with(r: &Record) -> Vec<String> {
    [
        "createVolumePermission.add.items",
        "launchPermission.add.items",
    ]
    .iter()
    .filter_map(|p| r.request(p).and_then(Value::as_array))
    .flatten()
    .filter_map(|item| {
        item.get("userId")
            .or_else(|| item.get("group"))
            .and_then(Value::as_str)
            .filter(|a| *a == "all" || AccountId::parse(a).is_ok())
            .map(str::to_owned)
    })
    .collect()
}

fn instances(r: &Record) -> Vec<InstanceId> {
    r.response_elements
        .as_ref()
        .and_then(|v| v.pointer("/instancesSet/items"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("instanceId").and_then(Value::as_str))
        .filter_map(|id| InstanceId::parse(id).ok())
        .collect()
}

fn write(r: &Record) -> Write {
    let name = r.event_name.as_str();
    let resource = match name {
        "RunInstances" => Some(
            instances(r)
                .iter()
                .map(InstanceId::as_str)
                .collect::<Vec<_>>()
                .join(","),
        )
        .filter(|s| !s.is_empty()),
        _ => [
            "policyArn",
            "functionName",
            "roleName",
            "userName",
            "bucketName",
            "name",
        ]
        .iter()
        .find_map(|k| r.request_str(k))
        .map(|s| s.chars().take(200).collect()),
    };
    let notable = COMPUTE.contains(&name)
        || name.starts_with("Attach")
        || name.starts_with("Put") && name.ends_with("Policy")
        || name.starts_with("CreateFunction");
    Write {
        event: name.to_owned(),
        time: r.event_time.clone(),
        region: r.aws_region.clone(),
        event_id: r.event_id.clone(),
        resource,
        notable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn account() -> AccountId {
        AccountId::parse("123456789012").unwrap()
    }

    fn rec(v: Value) -> Record {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn minted_credentials_and_role_sessions_are_found() {
        let assume = rec(json!({
            "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
            "requestParameters": {"roleArn": "arn:aws:iam::123456789012:role/ops/deploy", "roleSessionName": "x"},
            "responseElements": {"credentials": {"accessKeyId": "ASIAEXAMPLEEXAMPLE01"},
                                 "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLEEXAMPLE01:x1"}}}));
        let elsewhere = rec(json!({
            "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
            "requestParameters": {"roleArn": "arn:aws:iam::999988887777:role/deploy"},
            "responseElements": {"credentials": {"accessKeyId": "ASIAEXAMPLEEXAMPLE02"},
                                 "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLEEXAMPLE02:x1"}}}));
        let failed = rec(json!({
            "eventSource": "iam.amazonaws.com", "eventName": "CreateUser", "errorCode": "AccessDenied",
            "requestParameters": {"userName": "u"}}));
        let read = read(
            &[assume, elsewhere, failed],
            &account(),
            &RuleSettings::default(),
        );
        assert_eq!(read.minted.len(), 2);
        assert!(read.minted[1].session.is_none(), "another account's role");
        assert_eq!(
            read.made,
            [Made::RoleSessions {
                role: RoleAt {
                    role: IamName::parse("deploy").unwrap(),
                    path: "/ops/".to_owned()
                },
                sessions: vec![SessionId::parse("AROAEXAMPLEEXAMPLE01:x1").unwrap()],
            }]
        );
        assert!(
            read.writes.is_empty(),
            "minting is followed, a failed call made nothing"
        );
    }

    /// A forged or hostile value in a record never reaches a call: it is not read at all.
    #[test]
    fn hostile_values_are_dropped() {
        let r = rec(json!({
            "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
            "requestParameters": {"userName": "a"},
            "responseElements": {"accessKey": {"accessKeyId": "AKIA\"*", "userName": "a b"}}}));
        assert!(read(&[r], &account(), &RuleSettings::default())
            .made
            .is_empty());
    }
}
