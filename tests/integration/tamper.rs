//! An attacker with a second foothold undoes cordon's work: rewrites the quarantine policy,
//! detaches it, or moves the session cutoff; and the attacker keeps acting after containment.
//! A call on cordon's policy (rule `cordon-tampered`) restores it even when cordon does not
//! contain the caller.
//! Every event goes through `cordon::lambda::handle`, the function `lambda_runtime` serves.
//!
//! The quarantine policy is one per account, attached to every contained principal: tests that
//! rewrite its document start their own moto server, so no other test sees the rewrite.

use cordon::actions::{rfc3339_millis, Action, ActionRecord, Outcome};
use cordon::ledger::{Delivery, Status};
use cordon::policy::{self, REVOKE_SESSIONS_POLICY_NAME};
use cordon::{Function, Report};
use integration_tests::{
    attr, event, key_statuses, ledger_items, seed_role, seed_user, unique, user_policies,
    Deployment, Moto, ACCOUNT,
};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cloudtrail::by_role;
use crate::credentials::{decode, default_document, policy_arn};
use crate::{deployment, lambda_invoke, moto, responder, user_finding};

/// What a second foothold would make the quarantine's default version: everything allowed, or
/// a statement that denies nothing anyone uses (IAM refuses a document with no statement).
const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const DENIES_NOTHING: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::nothing/*"}]}"#;

fn record(report: &Report, action: Action) -> &ActionRecord {
    report
        .actions
        .iter()
        .find(|a| a.action == action)
        .unwrap_or_else(|| panic!("no {} in {report:#?}", action.name()))
}

/// The repeat GuardDuty sends: the same finding, seen `count` times.
fn repeat(e: &Value, count: u64) -> Value {
    let mut again = e.clone();
    again["detail"]["service"]["count"] = count.into();
    again
}

/// The ledger's item for `action` in delivery `delivery` of `incident`.
async fn ledger_action(
    d: &Deployment,
    incident: &str,
    delivery: u64,
    action: Action,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    ledger_items(&d.clients.dynamodb, &d.table, incident)
        .await
        .unwrap()
        .into_iter()
        .find(|i| attr(i, "action") == action.name() && attr(i, "delivery") == delivery.to_string())
        .unwrap_or_else(|| panic!("no {} item in delivery {delivery}", action.name()))
}

/// The message bodies delivered since the last call.
async fn bodies(d: &Deployment, moto: &Moto) -> Vec<String> {
    d.notifications(moto)
        .await
        .unwrap()
        .iter()
        .map(|m| m["Message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `AWSRevokeOlderSessions` on `user`, as IAM returns it (decoded, not reformatted).
async fn revoke_document(iam: &aws_sdk_iam::Client, user: &str) -> String {
    let out = iam
        .get_user_policy()
        .user_name(user)
        .policy_name(REVOKE_SESSIONS_POLICY_NAME)
        .send()
        .await
        .unwrap();
    policy::decode(out.policy_document())
}

fn cutoff_of(document: &str) -> OffsetDateTime {
    policy::revoke_sessions_cutoff(&decode(document)).expect("a session cutoff")
}

/// A new default version of cordon's policy holding `document`, as a second foothold makes it.
/// Returns its version id.
async fn plant_version(iam: &aws_sdk_iam::Client, document: &str) -> String {
    iam.create_policy_version()
        .policy_arn(policy_arn())
        .policy_document(document)
        .set_as_default(true)
        .send()
        .await
        .unwrap()
        .policy_version()
        .and_then(|v| v.version_id())
        .unwrap()
        .to_owned()
}

/// Its own emulator, where cordon's policy is in use: one user contained by it (returned).
async fn policy_in_use() -> (Moto, Deployment, String) {
    let moto = Moto::start().unwrap();
    let d = Deployment::create(&moto).await.unwrap();
    let victim = unique("xena");
    let keys = seed_user(&d.clients.iam, &victim, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let report = lambda_invoke(&r, user_finding(&victim, &keys[0]).1).await;
    assert_eq!(report.status, Some(Status::Contained));
    bodies(&d, &moto).await;
    (moto, d, victim)
}

/// The victim's quarantine is whole: key Inactive, cordon's policy attached.
async fn still_contained(iam: &aws_sdk_iam::Client, victim: &str) {
    assert_eq!(key_statuses(iam, victim).await.unwrap()[0].1, "Inactive");
    let (attached, _) = user_policies(iam, victim).await.unwrap();
    assert_eq!(attached, vec![policy::QUARANTINE_POLICY_NAME.to_owned()]);
}

/// A second foothold makes a new default version of cordon's policy that denies nothing, twice
/// over. Each repeat of the finding restores cordon's document, records the action as tampered
/// (in the report and the ledger) and says TAMPERED WITH in the notification; the contained
/// user's key stays Inactive throughout.
#[tokio::test]
async fn a_rewritten_quarantine_policy_is_restored_on_the_next_delivery() {
    let moto = Moto::start().unwrap();
    let d = Deployment::create(&moto).await.unwrap();
    let iam = &d.clients.iam;
    let user = unique("tina");
    let keys = seed_user(iam, &user, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let (finding, e) = user_finding(&user, &keys[0]);
    assert_eq!(
        lambda_invoke(&r, e.clone()).await.status,
        Some(Status::Contained)
    );
    bodies(&d, &moto).await;

    for (delivery, planted) in [(2, ALLOW_ALL), (3, DENIES_NOTHING)] {
        let version = plant_version(iam, planted).await;
        assert_eq!(default_document(iam).await, decode(planted));

        let report = lambda_invoke(&r, repeat(&e, delivery)).await;

        assert_eq!(report.delivery, Some(Delivery::Repeat));
        assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
        assert_eq!(default_document(iam).await, policy::quarantine_document());
        let attach = record(&report, Action::AttachQuarantinePolicy);
        assert_eq!(attach.outcome, Outcome::Succeeded, "{attach:#?}");
        assert_eq!(attach.verified, Some(true), "{attach:#?}");
        let tampered = attach.tampered.as_deref().expect("recorded as tampered");
        assert!(tampered.contains(&version), "{tampered}");
        assert_eq!(
            attach.before.as_ref().unwrap()["quarantine_document"],
            format!("altered ({version})")
        );
        assert!(report
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("tampered with")));
        let item = ledger_action(&d, &finding, delivery, Action::AttachQuarantinePolicy).await;
        assert_eq!(attr(&item, "tampered"), tampered);
        assert!(attr(&item, "before").contains(&version));
        let messages = bodies(&d, &moto).await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(
            messages[0].contains(&format!("TAMPERED WITH: {tampered}")),
            "{}",
            messages[0]
        );
        assert_eq!(
            key_statuses(iam, &user).await.unwrap(),
            vec![(keys[0].clone(), "Inactive".to_owned())]
        );
    }
}

/// A second foothold detaches the quarantine from the contained user. The document is untouched,
/// so this is drift on that one user, not tampering with the account's policy: the repeat
/// attaches it again, records what it found and notifies.
#[tokio::test]
async fn a_detached_quarantine_is_attached_again_on_the_next_delivery() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("uma");
    let keys = seed_user(iam, &user, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let (finding, e) = user_finding(&user, &keys[0]);
    lambda_invoke(&r, e.clone()).await;
    bodies(&d, moto()).await;
    iam.detach_user_policy()
        .user_name(&user)
        .policy_arn(policy_arn())
        .send()
        .await
        .unwrap();

    let report = lambda_invoke(&r, repeat(&e, 2)).await;

    let (attached, _) = user_policies(iam, &user).await.unwrap();
    assert_eq!(attached, vec![policy::QUARANTINE_POLICY_NAME.to_owned()]);
    let attach = record(&report, Action::AttachQuarantinePolicy);
    assert_eq!(attach.outcome, Outcome::Succeeded, "{attach:#?}");
    assert_eq!(
        attach.before.as_ref().unwrap()["attached_policies"],
        Value::Array(Vec::new())
    );
    assert_eq!(
        attach.tampered, None,
        "the document itself was never altered"
    );
    assert!(report.reason.as_deref().unwrap_or("").contains("drift"));
    let item = ledger_action(&d, &finding, 2, Action::AttachQuarantinePolicy).await;
    assert_eq!(attr(&item, "outcome"), "succeeded");
    let messages = bodies(&d, moto()).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("found drift"), "{}", messages[0]);
    assert_eq!(key_statuses(iam, &user).await.unwrap()[0].1, "Inactive");
}

/// After containment, a person's "Revoke active sessions" (or another incident) writes the
/// console's document with a later `aws:TokenIssueTime`. The older finding's repeat keeps it,
/// byte for byte, and reports the cutoff as satisfied: nothing re-applied, nobody notified.
#[tokio::test]
async fn a_later_cutoff_survives_a_repeat_of_an_older_finding() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("vera");
    let keys = seed_user(iam, &user, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let (_, e) = user_finding(&user, &keys[0]);
    lambda_invoke(&r, e.clone()).await;
    bodies(&d, moto()).await;
    let ours = cutoff_of(&revoke_document(iam, &user).await);
    // The console's shape: Action and Resource as lists, the time to the millisecond.
    let later = OffsetDateTime::now_utc();
    let console = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{}"}}}}}}]}}"#,
        rfc3339_millis(later)
    );
    assert!(cutoff_of(&console) > ours);
    iam.put_user_policy()
        .user_name(&user)
        .policy_name(REVOKE_SESSIONS_POLICY_NAME)
        .policy_document(&console)
        .send()
        .await
        .unwrap();

    let report = lambda_invoke(&r, repeat(&e, 2)).await;

    assert_eq!(revoke_document(iam, &user).await, console);
    let revoke = record(&report, Action::RevokeSessions);
    assert_eq!(
        revoke.outcome,
        Outcome::Skipped {
            reason: "already in place".to_owned()
        },
        "{revoke:#?}"
    );
    assert_eq!(
        revoke.before.as_ref().unwrap()["document"],
        decode(&console)
    );
    assert!(
        report.actions.iter().all(|a| a.outcome.word() == "skipped"),
        "{report:#?}"
    );
    assert_eq!(report.reason, None, "not drift: {report:#?}");
    assert!(!report.notified);
    assert!(bodies(&d, moto()).await.is_empty());
}

/// GuardDuty re-sends the finding. Without activity after the cutoff the repeat keeps it; with
/// `eventLastSeen` after the cutoff but the key the cutoff covered, the key is only being refused
/// and the cutoff stays; with a key it did not cover, the attacker holds a credential issued
/// since, so the cutoff moves to now, the ledger keeps the new one, and the notification says
/// why.
#[tokio::test]
async fn activity_after_containment_moves_the_cutoff_to_now() {
    let d = deployment().await;
    let iam = &d.clients.iam;
    let user = unique("wade");
    let keys = seed_user(iam, &user, 1).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let (finding, e) = user_finding(&user, &keys[0]);
    lambda_invoke(&r, e.clone()).await;
    bodies(&d, moto()).await;
    let first = revoke_document(iam, &user).await;
    let cutoff = cutoff_of(&first);
    let ledger_cutoff = || async {
        let items = ledger_items(&d.clients.dynamodb, &d.table, &finding)
            .await
            .unwrap();
        let meta = items
            .iter()
            .find(|i| attr(i, "sk").starts_with("META#"))
            .unwrap();
        OffsetDateTime::parse(attr(meta, "cutoff"), &Rfc3339).unwrap()
    };
    assert_eq!(ledger_cutoff().await, cutoff);

    // The sample's eventLastSeen is days before the cutoff: nothing new.
    let quiet = lambda_invoke(&r, repeat(&e, 2)).await;
    assert_eq!(revoke_document(iam, &user).await, first);
    assert_eq!(ledger_cutoff().await, cutoff);
    assert_eq!(
        record(&quiet, Action::RevokeSessions).outcome.word(),
        "skipped"
    );
    assert!(!quiet.notified && quiet.reason.is_none(), "{quiet:#?}");

    // Seen again in a later second than the cutoff (which IAM keeps to the second).
    while OffsetDateTime::now_utc().unix_timestamp() <= cutoff.unix_timestamp() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let seen = OffsetDateTime::now_utc();
    // The key the cutoff covered, still calling: only refused. Moving the cutoff for it would
    // cut a shared role's legitimate sessions again each time the attacker calls.
    let mut refused = repeat(&e, 3);
    refused["detail"]["service"]["eventLastSeen"] = rfc3339_millis(seen).into();
    let same_key = lambda_invoke(&r, refused).await;
    assert_eq!(revoke_document(iam, &user).await, first);
    assert_eq!(ledger_cutoff().await, cutoff);
    assert!(!same_key.notified, "{same_key:#?}");

    // A credential the cutoff did not cover (GuardDuty folded a new session into the finding).
    let mut active = repeat(&e, 4);
    active["detail"]["service"]["eventLastSeen"] = rfc3339_millis(seen).into();
    active["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = "ASIAEXAMPLENEWSESS01".into();
    let report = lambda_invoke(&r, active).await;

    let moved = cutoff_of(&revoke_document(iam, &user).await);
    assert!(moved > cutoff, "{moved} after {cutoff}");
    assert!(
        moved.unix_timestamp() >= seen.unix_timestamp() && moved <= OffsetDateTime::now_utc(),
        "about now: {moved}"
    );
    assert_eq!(ledger_cutoff().await, moved);
    let revoke = record(&report, Action::RevokeSessions);
    assert_eq!(revoke.outcome, Outcome::Succeeded, "{revoke:#?}");
    assert_eq!(
        cutoff_of(&revoke.before.as_ref().unwrap()["document"].to_string()),
        cutoff
    );
    let why = report.reason.as_deref().unwrap_or_default();
    assert!(
        why.contains("activity continued after containment"),
        "{why}"
    );
    assert!(why.contains(&rfc3339_millis(seen)[..19]), "{why}");
    let item = ledger_action(&d, &finding, 4, Action::RevokeSessions).await;
    assert_eq!(attr(&item, "outcome"), "succeeded");
    let messages = bodies(&d, moto()).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("activity continued after containment"),
        "{}",
        messages[0]
    );
    assert_eq!(key_statuses(iam, &user).await.unwrap()[0].1, "Inactive");
}

/// Rule `cordon-tampered` on a protected user's CreatePolicyVersion of cordon's policy: the
/// user is not contained, only notified about, yet cordon's document is the default again. The
/// restore is its own action with the altered version as its before-state, and the ledger and the
/// notification say TAMPERED WITH. The same event delivered twice restores nothing twice.
#[tokio::test]
async fn a_protected_users_new_version_is_restored_and_the_user_left_alone() {
    let (moto, d, victim) = policy_in_use().await;
    let iam = &d.clients.iam;
    let operator = unique("operator");
    let keys = seed_user(iam, &operator, 1).await.unwrap();
    let protected = format!("arn:aws:iam::{ACCOUNT}:user/{operator}");
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("PROTECTED_PRINCIPALS", &protected)],
    )
    .await;
    let mut e = event("cloudtrail-cordon-policy-version.json").unwrap();
    let incident = unique("event");
    e["detail"]["eventID"] = incident.clone().into();
    e["detail"]["userIdentity"]["userName"] = operator.clone().into();
    e["detail"]["userIdentity"]["arn"] = protected.clone().into();
    e["detail"]["userIdentity"]["accessKeyId"] = keys[0].clone().into();
    let planted = e["detail"]["requestParameters"]["policyDocument"]
        .as_str()
        .unwrap()
        .to_owned();
    let version = plant_version(iam, &planted).await;
    e["detail"]["responseElements"]["policyVersion"]["versionId"] = version.clone().into();

    let report = lambda_invoke(&r, e.clone()).await;

    assert_eq!(report.status, Some(Status::Protected), "{report:#?}");
    assert_eq!(
        report.finding_type.as_deref(),
        Some("CloudTrail:cordon-tampered")
    );
    assert_eq!(default_document(iam).await, policy::quarantine_document());
    let tampered = assert_restored(&report, &version);
    assert_eq!(
        report.actions.len(),
        1,
        "the caller is not touched: {report:#?}"
    );
    assert_eq!(key_statuses(iam, &operator).await.unwrap()[0].1, "Active");
    assert_eq!(
        user_policies(iam, &operator).await.unwrap(),
        (vec![], vec![])
    );
    let items = ledger_items(&d.clients.dynamodb, &d.table, &incident)
        .await
        .unwrap();
    let meta = items
        .iter()
        .find(|i| attr(i, "sk").starts_with("META#"))
        .unwrap();
    assert_eq!(attr(meta, "status"), "protected");
    assert!(attr(meta, "reason").contains("is protected by"), "{meta:?}");
    let item = ledger_action(&d, &incident, 1, Action::RestoreQuarantinePolicy).await;
    assert_eq!(attr(&item, "tampered"), tampered);
    assert!(attr(&item, "before").contains(&version));
    let messages = d.notifications(&moto).await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0]["Subject"]
        .as_str()
        .unwrap()
        .contains("did NOT touch protected"));
    let body = messages[0]["Message"].as_str().unwrap();
    assert!(
        body.contains(&format!("TAMPERED WITH: {tampered}")),
        "{body}"
    );
    still_contained(iam, &victim).await;

    // EventBridge delivers at least once: the same event again finds the policy in place.
    let again = lambda_invoke(&r, e).await;
    assert_eq!(again.delivery, Some(Delivery::Repeat));
    assert_eq!(again.status, Some(Status::Protected));
    assert_eq!(
        record(&again, Action::RestoreQuarantinePolicy).outcome,
        Outcome::Skipped {
            reason: "already in place".to_owned()
        }
    );
    assert!(!again.notified && bodies(&d, &moto).await.is_empty());
}

/// A role's session makes an altered version the default (SetDefaultPolicyVersion) while
/// `QUARANTINE_ROLES` is off: the role's sessions are revoked but no policy is attached to it,
/// and cordon's document is the default again.
#[tokio::test]
async fn a_roles_default_version_is_restored_while_quarantine_roles_is_off() {
    let (moto, d, victim) = policy_in_use().await;
    let iam = &d.clients.iam;
    let version = plant_version(iam, ALLOW_ALL).await;
    let role = unique("ci-runner");
    seed_role(iam, &role).await.unwrap();
    let mut e = by_role(
        event("cloudtrail-cordon-policy-version.json").unwrap(),
        &role,
        None,
    );
    e["detail"]["eventName"] = "SetDefaultPolicyVersion".into();
    e["detail"]["requestParameters"] = json!({"policyArn": policy_arn(), "versionId": version});
    e["detail"]["responseElements"] = Value::Null;
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(default_document(iam).await, policy::quarantine_document());
    let tampered = assert_restored(&report, &version);
    let attach = record(&report, Action::AttachQuarantinePolicy);
    assert!(
        matches!(&attach.outcome, Outcome::Skipped { reason } if reason.contains("QUARANTINE_ROLES")),
        "{attach:#?}"
    );
    let role_policies = iam
        .list_attached_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert!(role_policies.attached_policies().is_empty());
    assert!(integration_tests::sessions_revoked(iam, &role).await);
    let messages = bodies(&d, &moto).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains(&format!("TAMPERED WITH: {tampered}")));
    still_contained(iam, &victim).await;
}

/// The report's restore record: succeeded and read back, tampered with `version` found as the
/// default before. Returns what it says was tampered with.
fn assert_restored(report: &Report, version: &str) -> String {
    let restore = record(report, Action::RestoreQuarantinePolicy);
    assert_eq!(restore.outcome, Outcome::Succeeded, "{restore:#?}");
    assert_eq!(restore.target, policy_arn());
    assert_eq!(restore.verified, Some(true), "{restore:#?}");
    assert_eq!(
        restore.before.as_ref().unwrap()["quarantine_document"],
        format!("altered ({version})")
    );
    let tampered = restore.tampered.clone().expect("recorded as tampered");
    assert!(tampered.contains(version), "{tampered}");
    assert!(report
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("tampered with")));
    tampered
}

/// Only a call on cordon's policy in this account restores it: a `cordon-tampered` call on one
/// of cordon's functions contains its caller and leaves the policy alone, and another account's
/// call on that account's policy of the same name is ignored here.
#[tokio::test]
async fn only_a_call_on_this_accounts_policy_restores_it() {
    let d = deployment().await;
    let user = unique("yuri");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("CORDON_PREFIX", "cordon")],
    )
    .await;
    let mut throttled = event("cloudtrail-cordon-function-throttled.json").unwrap();
    throttled["detail"]["eventID"] = unique("event").into();
    throttled["detail"]["userIdentity"]["userName"] = user.clone().into();
    throttled["detail"]["userIdentity"]["accessKeyId"] = keys[0].clone().into();

    let report = lambda_invoke(&r, throttled).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(
        report.finding_type.as_deref(),
        Some("CloudTrail:cordon-tampered")
    );
    assert!(
        !report
            .actions
            .iter()
            .any(|a| a.action == Action::RestoreQuarantinePolicy),
        "{report:#?}"
    );

    let other = "210987654321";
    let mut elsewhere = event("cloudtrail-cordon-policy-version.json").unwrap();
    elsewhere["detail"]["eventID"] = unique("event").into();
    elsewhere["detail"]["recipientAccountId"] = other.into();
    elsewhere["detail"]["userIdentity"]["accountId"] = other.into();
    elsewhere["detail"]["requestParameters"]["policyArn"] = format!(
        "arn:aws:iam::{other}:policy/cordon/{}",
        policy::QUARANTINE_POLICY_NAME
    )
    .into();

    let report = lambda_invoke(&r, elsewhere).await;

    assert_eq!(report.status, Some(Status::Ignored), "{report:#?}");
    assert!(report.actions.is_empty(), "{report:#?}");
}

/// An attacker who first spends cordon's containment budget (a flood of findings), then rewrites
/// the policy: the caller's containment is deferred, but the restore is not.
#[tokio::test]
async fn a_spent_rate_limit_does_not_hold_back_the_restore() {
    let moto = Moto::start().unwrap();
    let d = Deployment::create(&moto).await.unwrap();
    let iam = &d.clients.iam;
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("RATE_LIMIT", "1"), ("RATE_WINDOW_SECONDS", "3600")],
    )
    .await;
    let decoy = unique("zoe");
    let decoy_keys = seed_user(iam, &decoy, 1).await.unwrap();
    let spent = lambda_invoke(&r, user_finding(&decoy, &decoy_keys[0]).1).await;
    assert_eq!(spent.status, Some(Status::Contained));
    let mallory = unique("mallory");
    let keys = seed_user(iam, &mallory, 1).await.unwrap();
    let version = plant_version(iam, ALLOW_ALL).await;
    let mut e = event("cloudtrail-cordon-policy-version.json").unwrap();
    e["detail"]["eventID"] = unique("event").into();
    e["detail"]["userIdentity"]["userName"] = mallory.clone().into();
    e["detail"]["userIdentity"]["accessKeyId"] = keys[0].clone().into();

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Deferred), "{report:#?}");
    assert_eq!(key_statuses(iam, &mallory).await.unwrap()[0].1, "Active");
    assert_eq!(default_document(iam).await, policy::quarantine_document());
    let tampered = assert_restored(&report, &version);
    let body = bodies(&d, &moto).await.join("\n");
    assert!(body.contains("Why: rate limit: "), "{body}");
    assert!(
        body.contains(&format!("TAMPERED WITH: {tampered}")),
        "{body}"
    );
    still_contained(iam, &decoy).await;
}
