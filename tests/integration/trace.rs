//! trace-credentials on moto, through the Lambda runtime code path. moto has no LookupEvents:
//! `tests/moto_server.py` serves it in CloudTrail's wire format from the real recorded Stratus
//! Red Team detonations (and AWS's documented AssumeRole record) of `tests/corpus/cloudtrail`,
//! re-stamped to what each test seeds here.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_ec2::types::SnapshotAttributeName;
use cordon::actions::role_sessions::TRACED_SESSIONS_POLICY_NAME;
use cordon::actions::ActionRecord;
use cordon::{Function, Report};
use integration_tests::faults::{FaultProxy, Scripted};
use integration_tests::trail::{as_role_session, backdoor_key, put, recorded, restamp};
use integration_tests::{
    attr, key_statuses, ledger_items, reactivate, sdk_config, seed_role, seed_user,
    sessions_revoked, unique, user_policies, Deployment, ACCOUNT, REGION,
};
use serde_json::{json, Value};

use crate::{deployment, lambda_invoke, moto, responder, user_finding};

const ADMIN_USER: &str = "stratus__aws.persistence.iam-create-admin-user";
const LOGIN_PROFILE: &str = "stratus__aws.persistence.iam-create-user-login-profile";
const FEDERATION: &str = "stratus__aws.persistence.sts-federation-token";
const SHARE_SNAPSHOT: &str = "stratus__aws.exfiltration.ec2-share-ebs-snapshot";
const ASSUME_ROLE: &str = "awsdocs__iam-user-guide__cloudtrail-integration__AssumeRole__1";

/// A temporary key id no other test uses.
fn session_key() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "ASIATRACE{:05}{:06}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An attacker's user with one key, and the finding about that key.
async fn attacker(d: &Deployment) -> (String, String, String, Value) {
    let user = unique("attacker");
    let key = seed_user(&d.clients.iam, &user, 1).await.unwrap().remove(0);
    let (id, finding) = user_finding(&user, &key);
    (user, key, id, finding)
}

fn history(records: &[Value]) {
    put(&moto().endpoint, REGION, records).unwrap();
}

fn status_of(statuses: &[(String, String)], key: &str) -> String {
    statuses
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, s)| s.clone())
        .unwrap_or_default()
}

fn actions<'a>(report: &'a Report, action: &str) -> Vec<&'a ActionRecord> {
    report
        .actions
        .iter()
        .filter(|a| a.action.name() == action)
        .collect()
}

/// Stratus `sts-federation-token`'s GetFederationToken, as `key` of `user` half an hour ago,
/// stored as the history; the temporary key it minted.
fn federation_token(user: &str, key: &str) -> String {
    let session = session_key();
    let mut minted = restamp(
        recorded(FEDERATION, "GetFederationToken").unwrap(),
        user,
        key,
        30,
    );
    minted["responseElements"]["credentials"]["accessKeyId"] = session.clone().into();
    history(&[minted]);
    session
}

/// A role of moto's, and its unique id.
async fn role(d: &Deployment, prefix: &str) -> (String, String) {
    let name = unique(prefix);
    seed_role(&d.clients.iam, &name).await.unwrap();
    let id = d
        .clients
        .iam
        .get_role()
        .role_name(&name)
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .role_id()
        .to_owned();
    (name, id)
}

/// AWS's recorded AssumeRole, as `key` of `user` taking session `session` of `role`, whose
/// answer holds the temporary key `minted`.
fn assume(
    user: &str,
    key: &str,
    minutes_ago: i64,
    (role, role_id): &(String, String),
    session: &str,
    minted: &str,
) -> Value {
    let mut r = restamp(
        recorded(ASSUME_ROLE, "AssumeRole").unwrap(),
        user,
        key,
        minutes_ago,
    );
    r["requestParameters"]["roleArn"] = format!("arn:aws:iam::{ACCOUNT}:role/{role}").into();
    r["requestParameters"]["roleSessionName"] = session.into();
    r["responseElements"]["credentials"]["accessKeyId"] = minted.into();
    r["responseElements"]["assumedRoleUser"] = json!({
        "assumedRoleId": format!("{role_id}:{session}"),
        "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}")});
    r
}

/// A snapshot in moto shared as Stratus `ec2-share-ebs-snapshot` shared its own (with the same
/// outside account), and that record as `key` of `user` made it: (snapshot, account, record).
async fn shared_snapshot(
    d: &Deployment,
    user: &str,
    key: &str,
    minutes_ago: i64,
) -> (String, String, Value) {
    let ec2 = &d.clients.ec2;
    let volume = ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(1)
        .send()
        .await
        .unwrap();
    let snapshot = ec2
        .create_snapshot()
        .volume_id(volume.volume_id().unwrap())
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_owned();
    let mut r = restamp(
        recorded(SHARE_SNAPSHOT, "ModifySnapshotAttribute").unwrap(),
        user,
        key,
        minutes_ago,
    );
    r["requestParameters"]["snapshotId"] = snapshot.clone().into();
    let outside = r["requestParameters"]["createVolumePermission"]["add"]["items"][0]["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    ec2.modify_snapshot_attribute()
        .snapshot_id(&snapshot)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        // The form moto serves (CreateVolumePermission's is ignored there).
        .operation_type(aws_sdk_ec2::types::OperationType::Add)
        .user_ids(&outside)
        .send()
        .await
        .unwrap();
    (snapshot, outside, r)
}

/// What the chain left in moto, read back.
#[derive(Debug, PartialEq)]
struct State {
    backdoor: String,
    made_key: String,
    made_quarantined: bool,
    profiles: Vec<bool>,
    denied: Vec<Value>,
    whole_role_revoked: Vec<bool>,
    shared_with: Vec<String>,
}

struct Scene {
    victim: String,
    backdoor: String,
    made: String,
    made_key: String,
    other: String,
    roles: [(String, String); 2],
    snapshot: String,
}

impl Scene {
    async fn state(&self, d: &Deployment) -> State {
        let iam = &d.clients.iam;
        let victim = key_statuses(iam, &self.victim).await.unwrap();
        let made = key_statuses(iam, &self.made).await.unwrap();
        let (attached, _) = user_policies(iam, &self.made).await.unwrap();
        let mut profiles = Vec::new();
        for u in [&self.made, &self.other] {
            let p = iam.get_login_profile().user_name(u.as_str()).send().await;
            profiles.push(p.is_ok());
        }
        let mut denied = Vec::new();
        let mut whole_role_revoked = Vec::new();
        for (role, _) in &self.roles {
            let doc = iam
                .get_role_policy()
                .role_name(role)
                .policy_name(TRACED_SESSIONS_POLICY_NAME)
                .send()
                .await
                .ok()
                .map(|p| {
                    serde_json::from_str::<Value>(&cordon::policy::decode(p.policy_document()))
                        .unwrap()
                });
            denied.push(doc.map_or(Value::Null, |d| {
                d["Statement"][0]["Condition"]["StringEquals"]["aws:userid"].clone()
            }));
            whole_role_revoked.push(sessions_revoked(iam, role).await);
        }
        let shares = d
            .clients
            .ec2
            .describe_snapshot_attribute()
            .snapshot_id(&self.snapshot)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .send()
            .await
            .unwrap();
        State {
            backdoor: status_of(&victim, &self.backdoor),
            made_key: status_of(&made, &self.made_key),
            made_quarantined: attached.contains(&cordon::policy::QUARANTINE_POLICY_NAME.to_owned()),
            profiles,
            denied,
            whole_role_revoked,
            shared_with: shares
                .create_volume_permissions()
                .iter()
                .filter_map(|p| p.user_id().map(str::to_owned))
                .collect(),
        }
    }
}

/// The "Done when", from one stolen key's recorded history: it assumed a role (AWS's
/// recorded AssumeRole), that session assumed a second role, and the second session made a key
/// for an existing user (Stratus `iam-backdoor-user`): a chain of depth 2. The key itself created
/// a user with AdministratorAccess, a key and a console password (Stratus
/// `iam-create-admin-user`), gave another user a console password (Stratus
/// `iam-create-user-login-profile`) and shared a snapshot outside (Stratus
/// `ec2-share-ebs-snapshot`). In DRY_RUN the trace plans all of it and changes nothing; then every
/// key the chain made is Inactive, the user it made contained, both passwords gone, exactly the
/// two sessions denied (no whole-role revoke), the snapshot private again, and the ledger and the
/// one notification list each of them.
#[tokio::test]
async fn what_a_stolen_key_made_through_two_roles_is_contained_and_dry_run_changes_nothing() {
    let d = deployment().await;
    let (user, key, incident, finding) = attacker(&d).await;
    let iam = &d.clients.iam;
    let roles = [role(&d, "deploy").await, role(&d, "admin").await];
    let (first, second) = (session_key(), session_key());
    let victim = unique("victim");
    let backdoor = seed_user(iam, &victim, 1).await.unwrap().remove(0);
    let made = unique("malicious");
    let made_key = seed_user(iam, &made, 1).await.unwrap().remove(0);
    let made_id = iam
        .get_user()
        .user_name(&made)
        .send()
        .await
        .unwrap()
        .user()
        .unwrap()
        .user_id()
        .to_owned();
    let other = unique("console");
    seed_user(iam, &other, 0).await.unwrap();
    for u in [&made, &other] {
        iam.create_login_profile()
            .user_name(u.as_str())
            .password("Attacker-Chose-1!")
            .send()
            .await
            .unwrap();
    }
    let (snapshot, outside, share) = shared_snapshot(&d, &user, &key, 10).await;

    let mut records = vec![assume(&user, &key, 60, &roles[0], "stolen", &first)];
    let (r1, r1_id) = &roles[0];
    records.push(as_role_session(
        assume(&user, &key, 55, &roles[1], "hop", &second),
        r1,
        r1_id,
        "stolen",
        &first,
    ));
    let (r2, r2_id) = &roles[1];
    records.push(as_role_session(
        backdoor_key(&user, &key, 50, &victim, &backdoor).unwrap(),
        r2,
        r2_id,
        "hop",
        &second,
    ));
    for (n, event) in ["CreateUser", "AttachUserPolicy", "CreateAccessKey"]
        .iter()
        .enumerate()
    {
        let mut r = restamp(
            recorded(ADMIN_USER, event).unwrap(),
            &user,
            &key,
            40 - n as i64,
        );
        r["requestParameters"]["userName"] = made.clone().into();
        match *event {
            "CreateUser" => {
                r["responseElements"]["user"]["userName"] = made.clone().into();
                r["responseElements"]["user"]["userId"] = made_id.clone().into();
            }
            "CreateAccessKey" => {
                r["responseElements"]["accessKey"]["userName"] = made.clone().into();
                r["responseElements"]["accessKey"]["accessKeyId"] = made_key.clone().into();
            }
            _ => {}
        }
        records.push(r);
    }
    for (minutes, who) in [(30, &made), (20, &other)] {
        let mut r = restamp(
            recorded(LOGIN_PROFILE, "CreateLoginProfile").unwrap(),
            &user,
            &key,
            minutes,
        );
        r["requestParameters"]["userName"] = who.clone().into();
        records.push(r);
    }
    records.push(share);
    history(&records);
    let scene = Scene {
        victim: victim.clone(),
        backdoor: backdoor.clone(),
        made: made.clone(),
        made_key: made_key.clone(),
        other: other.clone(),
        roles: roles.clone(),
        snapshot: snapshot.clone(),
    };
    let before = scene.state(&d).await;
    assert_eq!(
        before.shared_with,
        vec![outside.clone()],
        "the share is real in moto"
    );

    let dry = responder(&d, Function::TraceCredentials, &[("DRY_RUN", "true")]).await;
    let planned = lambda_invoke(&dry, finding.clone()).await;
    assert_eq!(scene.state(&d).await, before, "DRY_RUN changes nothing");
    for a in &planned.actions {
        let reads = ["trace_history", "list_activity"].contains(&a.action.name());
        assert!(
            reads || a.outcome.word() != "succeeded",
            "DRY_RUN changed {a:?}"
        );
    }
    for (action, target) in [
        ("deactivate_access_key", backdoor.as_str()),
        ("remove_login_profile", other.as_str()),
        ("remove_share", snapshot.as_str()),
    ] {
        assert!(
            planned.actions.iter().any(|a| a.action.name() == action
                && a.target.contains(target)
                && a.outcome.word() == "planned"),
            "{action} {target} not planned: {:#?}",
            planned.actions
        );
    }

    let tracer = responder(&d, Function::TraceCredentials, &[]).await;
    let report = lambda_invoke(&tracer, finding).await;
    let after = scene.state(&d).await;
    let session = |(_, id): &(String, String), name: &str| json!([format!("{id}:{name}")]);
    assert_eq!(
        after,
        State {
            backdoor: "Inactive".into(),
            made_key: "Inactive".into(),
            made_quarantined: true,
            profiles: vec![false, false],
            denied: vec![session(&roles[0], "stolen"), session(&roles[1], "hop")],
            whole_role_revoked: vec![false, false],
            shared_with: Vec::new(),
        },
        "{:#?}",
        report.actions
    );
    // Both minted keys were read, and so was what each made.
    let read: Vec<&str> = actions(&report, "trace_history")
        .iter()
        .map(|a| a.target.as_str())
        .collect();
    for k in [&key, &first, &second] {
        assert!(
            read.iter().any(|t| t.starts_with(k.as_str())),
            "{k}: {read:?}"
        );
    }
    // The stolen key itself is quarantine-credentials' to stop, not the trace's.
    let own = key_statuses(iam, &user).await.unwrap();
    assert_eq!(status_of(&own, &key), "Active");
    assert_eq!(
        actions(&report, "deactivate_access_key")
            .iter()
            .find(|a| a.target == backdoor)
            .unwrap()
            .before
            .as_ref()
            .unwrap()["status"],
        "Active"
    );
    assert_eq!(
        actions(&report, "remove_share")[0].before.as_ref().unwrap()["shared_with"],
        json!([outside])
    );
    let iam_writes = actions(&report, "list_activity");
    let iam_writes = iam_writes.iter().find(|a| a.target == "iam").unwrap();
    assert!(iam_writes
        .note
        .as_deref()
        .unwrap()
        .contains("AttachUserPolicy arn:aws:iam::aws:policy/AdministratorAccess"));

    // Everything done is in the ledger under the incident, and in the trace's one notification.
    let items = ledger_items(&d.clients.dynamodb, &d.table, &incident)
        .await
        .unwrap();
    let notes = d.notifications(moto()).await.unwrap();
    let traced: Vec<&Value> = notes
        .iter()
        .filter(|n| {
            n["Subject"]
                .as_str()
                .unwrap_or("")
                .starts_with("[cordon trace]")
        })
        .collect();
    assert_eq!(
        traced.len(),
        2,
        "one per trace (the dry run's and this one)"
    );
    assert!(traced[1]["Subject"].as_str().unwrap().len() < 100);
    let message = traced[1]["Message"].as_str().unwrap();
    for (action, target) in [
        ("deactivate_access_key", backdoor.clone()),
        ("deactivate_access_key", made_key.clone()),
        ("attach_quarantine_policy", made.clone()),
        ("remove_login_profile", other.clone()),
        ("deny_role_sessions", roles[0].0.clone()),
        ("deny_role_sessions", roles[1].0.clone()),
        ("remove_share", snapshot.clone()),
    ] {
        assert!(
            items
                .iter()
                .any(|i| attr(i, "sk").starts_with("ACTION#trace-credentials#")
                    && attr(i, "action") == action
                    && attr(i, "target").contains(&target)),
            "ledger lacks {action} {target}"
        );
        assert!(
            message.contains(&target),
            "notification lacks {target}: {message}"
        );
    }
}

/// A key with 1,000 unrelated events and one backdoor key, read through a proxy that throttles
/// LookupEvents twice (CloudTrail's own JSON error): every page is read (the SDK retries the
/// throttled ones), the key is found and stopped. Then the same history with too little time
/// for it, as a key that floods its own history would leave: what was not read is recorded as
/// NOT READ, never dropped, and the backdoor key is still found and stopped.
#[tokio::test]
async fn a_thousand_events_a_throttled_page_and_what_was_not_read() {
    let d = deployment().await;
    let (user, key, _, finding) = attacker(&d).await;
    let victim = unique("victim");
    let backdoor = seed_user(&d.clients.iam, &victim, 1)
        .await
        .unwrap()
        .remove(0);
    let noise = recorded(LOGIN_PROFILE, "GetCallerIdentity").unwrap();
    let mut records: Vec<Value> = (0..1000)
        .map(|i| restamp(noise.clone(), &user, &key, 60 + i))
        .collect();
    records.push(backdoor_key(&user, &key, 2000, &victim, &backdoor).unwrap());
    history(&records);

    let proxy = FaultProxy::scripted(
        &moto().endpoint,
        0,
        1,
        vec![Scripted {
            action: "LookupEvents",
            code: "ThrottlingException",
            status: "400 Bad Request",
            times: 2,
        }],
    )
    .await
    .unwrap();
    let tracer = cordon::Responder::new(
        Function::TraceCredentials,
        d.config(&[]),
        cordon::aws::Clients::new(&sdk_config(&proxy.endpoint, 6)),
    )
    .await
    .unwrap();
    let report = lambda_invoke(&tracer, finding.clone()).await;
    assert_eq!(
        proxy.counts.scripted.load(Ordering::Relaxed),
        2,
        "two pages were throttled"
    );
    let own = |report: &Report| {
        let read = actions(report, "trace_history");
        (*read.iter().find(|a| a.target.starts_with(&key)).unwrap()).clone()
    };
    let read = own(&report);
    let after = read.after.as_ref().unwrap();
    assert_eq!(
        (after["events"].as_u64(), after["pages"].as_u64()),
        (Some(1001), Some(21))
    );
    assert_eq!(read.outcome.word(), "succeeded");
    let statuses = key_statuses(&d.clients.iam, &victim).await.unwrap();
    assert_eq!(status_of(&statuses, &backdoor), "Inactive");

    // The attacker's flood, in effect: a fresh incident for the same key (its backdoor key
    // Active again) with 9 s to read in. The key's own history is cut short and said to be, but
    // the backdoor key at its oldest end is found all the same: CreateAccessKey is read by name,
    // account-wide, before any key's history.
    reactivate(&d.clients.iam, &victim, &backdoor)
        .await
        .unwrap();
    let mut again = finding;
    again["detail"]["id"] = unique("finding").replace('-', "").into();
    let short = responder(&d, Function::TraceCredentials, &[]).await;
    let deadline =
        std::time::Instant::now() + cordon::trace::RESERVE + std::time::Duration::from_secs(9);
    let report = short
        .handle_until(again, &unique("request"), Some(deadline))
        .await
        .unwrap();
    let skipped = own(&report);
    assert_eq!(skipped.outcome.word(), "skipped");
    assert!(
        format!("{:?}", skipped.outcome).contains("NOT READ"),
        "{skipped:?}"
    );
    assert!(skipped.after.as_ref().unwrap()["pages"].as_u64().unwrap() < 21);
    let statuses = key_statuses(&d.clients.iam, &victim).await.unwrap();
    assert_eq!(
        status_of(&statuses, &backdoor),
        "Inactive",
        "{:#?}",
        report.actions
    );
}

/// A GuardDuty finding about a temporary (ASIA) key of an IAM user: the trace finds the
/// long-term key that minted it (Stratus `sts-federation-token`'s GetFederationToken) and
/// deactivates it.
#[tokio::test]
async fn a_temporary_key_leads_to_the_long_term_key_that_minted_it() {
    let d = deployment().await;
    let (user, key, _, _) = attacker(&d).await;
    let session = federation_token(&user, &key);
    let (_, finding) = user_finding(&user, &session);
    let tracer = responder(&d, Function::TraceCredentials, &[]).await;
    let report = lambda_invoke(&tracer, finding).await;
    let statuses = key_statuses(&d.clients.iam, &user).await.unwrap();
    assert_eq!(
        status_of(&statuses, &key),
        "Inactive",
        "{:#?}",
        report.actions
    );
}

/// TRACE_DEPTH bounds the walk: at 0 the role session the key obtained is recorded as not
/// followed, and what it made is left alone (and said).
#[tokio::test]
async fn trace_depth_bounds_the_walk() {
    let d = deployment().await;
    let (user, key, _, finding) = attacker(&d).await;
    let session = federation_token(&user, &key);
    let tracer = responder(&d, Function::TraceCredentials, &[("TRACE_DEPTH", "0")]).await;
    let report = lambda_invoke(&tracer, finding).await;
    let not_followed = actions(&report, "trace_history")
        .into_iter()
        .find(|a| a.target == session)
        .expect("the minted key is recorded");
    assert!(format!("{:?}", not_followed.outcome).contains("TRACE_DEPTH 0 reached"));
}
