//! Never silent: whatever the ledger does, a person is told, and the invocation fails honestly.
//!
//! moto's DynamoDB never refuses a write, so the fault proxy answers the ledger's calls with
//! DynamoDB's own JSON error (`AccessDeniedException`, what a deny on the table or on the role
//! gives; not retried by the SDK), after letting the first `passed` of them through.

use integration_tests::faults::{FaultProxy, Forward, Scripted};
use integration_tests::{key_statuses, seed_user, unique, Deployment, ACCOUNT};
use serde_json::Value;

use crate::{deployment, lambda_try, moto, through, user_finding};

/// A proxy that forwards the first `passed` DynamoDB `UpdateItem` calls and refuses the rest.
async fn ledger_refusing_after(passed: usize) -> FaultProxy {
    let rules = vec![
        Forward {
            action: "UpdateItem",
            times: passed,
        }
        .into(),
        Scripted {
            action: "UpdateItem",
            code: "AccessDeniedException",
            status: "400 Bad Request",
            times: usize::MAX,
        }
        .into(),
    ];
    FaultProxy::in_order(&moto().endpoint, rules).await.unwrap()
}

/// One finding about a new user through Lambda's code path; the failed invocation's error type,
/// the user's key status and every notification.
async fn deliver(
    d: &Deployment,
    proxy: &FaultProxy,
    protect: bool,
) -> (String, String, Vec<Value>) {
    let user = unique("unrecorded");
    let key = seed_user(&d.clients.iam, &user, 1).await.unwrap().remove(0);
    let protected = format!("arn:aws:iam::{ACCOUNT}:user/{user}");
    let extra: &[(&str, &str)] = if protect {
        &[("PROTECTED_PRINCIPALS", &protected)]
    } else {
        &[]
    };
    let (_, e) = user_finding(&user, &key);

    let failed = lambda_try(&through(proxy, d, extra).await, e)
        .await
        .expect_err("an unrecorded incident fails the invocation");

    let status = key_statuses(&d.clients.iam, &user).await.unwrap()[0]
        .1
        .clone();
    (
        failed.error_type,
        status,
        d.notifications(moto()).await.unwrap(),
    )
}

/// The message says, in subject, body and attributes, that the ledger was not written.
fn says_ledger_failed(message: &Value) {
    let subject = message["Subject"].as_str().unwrap();
    let body = message["Message"].as_str().unwrap();
    assert!(subject.starts_with("[cordon] LEDGER FAILED, "), "{subject}");
    assert!(subject.len() <= cordon::notify::MAX_SUBJECT, "{subject}");
    assert!(
        body.contains("could NOT be written (AccessDeniedException"),
        "{body}"
    );
    assert!(!body.contains("The incident ledger holds"), "{body}");
    assert_eq!(message["MessageAttributes"]["ledger"]["Value"], "failed");
    assert_eq!(message["MessageAttributes"]["severity"]["Value"], "high");
}

/// The claim is refused: containment runs anyway and a person is told it is unrecorded.
#[tokio::test]
async fn a_refused_claim_still_contains_and_tells_a_person() {
    let d = deployment().await;
    let proxy = ledger_refusing_after(0).await;

    let (error, key, messages) = deliver(&d, &proxy, false).await;

    assert_eq!(error, "LedgerUnavailable");
    assert_eq!(key, "Inactive", "containment beats bookkeeping");
    assert_eq!(messages.len(), 1, "{messages:#?}");
    says_ledger_failed(&messages[0]);
    let subject = messages[0]["Subject"].as_str().unwrap();
    assert!(subject.contains("contained IAM user"), "{subject}");
}

/// A declined incident (a protected principal) whose note is refused is still told.
#[tokio::test]
async fn a_refused_note_still_tells_a_person() {
    let d = deployment().await;
    let proxy = ledger_refusing_after(0).await;

    let (error, key, messages) = deliver(&d, &proxy, true).await;

    assert_eq!(error, "LedgerUnavailable");
    assert_eq!(key, "Active", "protected means untouched");
    assert_eq!(messages.len(), 1, "{messages:#?}");
    says_ledger_failed(&messages[0]);
    let subject = messages[0]["Subject"].as_str().unwrap();
    assert!(subject.contains("did NOT touch protected"), "{subject}");
}

/// The budget cannot be read (claim passed, budget refused): nothing is changed, and a person
/// is told cordon did not act.
#[tokio::test]
async fn an_unreadable_budget_is_told_not_skipped_silently() {
    let d = deployment().await;
    let proxy = ledger_refusing_after(1).await;

    let (error, key, messages) = deliver(&d, &proxy, false).await;

    assert_eq!(error, "LedgerUnavailable");
    assert_eq!(key, "Active", "an unknown budget is not spent");
    assert_eq!(messages.len(), 1, "{messages:#?}");
    says_ledger_failed(&messages[0]);
    let body = messages[0]["Message"].as_str().unwrap();
    assert!(body.contains("cordon did NOT act yet"), "{body}");
    assert!(
        messages[0]["Subject"].as_str().unwrap().contains("FAILED"),
        "{body}"
    );
}

/// The record of a finished containment is refused (claim and budget passed): the first
/// notification promised a ledger record, so a second one says it is missing.
#[tokio::test]
async fn a_refused_record_after_notifying_is_corrected() {
    let d = deployment().await;
    // The claim, then the budget's three: paid for before? take one; mark paid.
    let proxy = ledger_refusing_after(4).await;

    let (error, key, messages) = deliver(&d, &proxy, false).await;

    assert_eq!(error, "LedgerUnavailable");
    assert_eq!(key, "Inactive");
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let (corrections, first): (Vec<&Value>, Vec<&Value>) = messages
        .iter()
        .partition(|m| m["Subject"].as_str().unwrap().contains("LEDGER FAILED"));
    assert!(first[0]["Message"]
        .as_str()
        .unwrap()
        .contains("The incident ledger holds"));
    says_ledger_failed(corrections[0]);
    let subject = corrections[0]["Subject"].as_str().unwrap();
    assert!(subject.contains("contained IAM user"), "{subject}");
}
