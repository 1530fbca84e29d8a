//! An attacker with a second foothold undoes cordon's work: rewrites the quarantine policy,
//! detaches it, or moves the session cutoff; and the attacker keeps acting after containment.
//! Every event goes through `cordon::lambda::handle`, the function `lambda_runtime` serves.
//!
//! The quarantine policy is one per account, attached to every contained principal: tests that
//! rewrite its document start their own moto server, so no other test sees the rewrite.

use cordon::actions::{rfc3339_millis, Action, ActionRecord, Outcome};
use cordon::ledger::{Delivery, Status};
use cordon::policy::{self, REVOKE_SESSIONS_POLICY_NAME};
use cordon::{Function, Report};
use integration_tests::{
    attr, key_statuses, ledger_items, seed_user, unique, user_policies, Deployment, Moto,
};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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
        let version = iam
            .create_policy_version()
            .policy_arn(policy_arn())
            .policy_document(planted)
            .set_as_default(true)
            .send()
            .await
            .unwrap()
            .policy_version()
            .and_then(|v| v.version_id())
            .unwrap()
            .to_owned();
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
/// `eventLastSeen` after the cutoff (and a higher `count`) the attacker holds a session issued
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
    let mut active = repeat(&e, 3);
    active["detail"]["service"]["eventLastSeen"] = rfc3339_millis(seen).into();
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
    let item = ledger_action(&d, &finding, 3, Action::RevokeSessions).await;
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
