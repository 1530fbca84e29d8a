//! Issue 14 item 11: a flood of notify-only incidents (failed calls matching a rule, open admin
//! ports, root use) is told once per rule and principal per window; the rest are recorded and
//! counted in the ledger, not published, and the next window's first notice says how many.

use aws_sdk_dynamodb::types::AttributeValue;
use cordon::ledger::Status;
use cordon::Function;
use integration_tests::faults::{FaultProxy, Scripted};
use integration_tests::{attr, event, ledger_items, unique, Deployment, ACCOUNT};
use serde_json::Value;

use crate::{deployment, lambda_invoke, lambda_try_as, moto, responder, through};

/// The sample StopLogging call by `user`, failed with AccessDenied, as a new incident.
fn failed_call(user: &str) -> (String, Value) {
    let id = unique("event");
    let mut e = event("cloudtrail-stop-logging.json").unwrap();
    e["detail"]["eventID"] = id.clone().into();
    e["detail"]["userIdentity"]["userName"] = user.into();
    e["detail"]["userIdentity"]["arn"] = format!("arn:aws:iam::{ACCOUNT}:user/{user}").into();
    e["detail"]["errorCode"] = "AccessDenied".into();
    (id, e)
}

/// The window's count for the sample's rule and `user`.
async fn counted(d: &Deployment, user: &str) -> Vec<u64> {
    let out = d
        .clients
        .dynamodb
        .query()
        .table_name(&d.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(format!(
                "NOTICE#{ACCOUNT}#CloudTrail:logging-tampered#user/{}",
                user.to_ascii_lowercase()
            )),
        )
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|i| attr(i, "seen").parse().unwrap())
        .collect()
}

/// Waits for the start of the next `seconds`-long window, with a margin for the calls after.
async fn next_window(seconds: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.as_millis() % u128::from(seconds * 1000);
    let wait = u64::try_from(u128::from(seconds * 1000) - into).unwrap() + 50;
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
}

#[tokio::test]
async fn a_flood_of_failed_calls_is_told_once_per_rule_and_principal_per_window() {
    const WINDOW: u64 = 6;
    let d = deployment().await;
    let (mallory, eve) = (unique("mallory"), unique("eve"));
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("NOTICE_WINDOW_SECONDS", "6")],
    )
    .await;
    next_window(WINDOW).await;

    let mut reports = Vec::new();
    for _ in 0..5 {
        let (id, e) = failed_call(&mallory);
        reports.push((id, lambda_invoke(&r, e).await));
    }
    let (_, other) = failed_call(&eve);
    let other = lambda_invoke(&r, other).await;

    assert!(reports
        .iter()
        .all(|(_, r)| r.status == Some(Status::NotifyOnly)));
    let told: Vec<bool> = reports.iter().map(|(_, r)| r.notified).collect();
    assert_eq!(told, [true, false, false, false, false], "{reports:#?}");
    assert!(other.notified, "another principal's notice is its own");
    let first = reports[0].1.reason.as_deref().unwrap_or_default();
    assert!(
        first.contains("are counted in the ledger, not published"),
        "{first}"
    );
    for (id, report) in &reports[1..] {
        let reason = report.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("counted in the ledger, not published"),
            "{reason}"
        );
        // Each one is still recorded as its own incident, with why it was not published.
        let items = ledger_items(&d.clients.dynamodb, &d.table, id)
            .await
            .unwrap();
        let meta = items
            .iter()
            .find(|i| attr(i, "sk").starts_with("META#"))
            .expect("incident recorded");
        assert_eq!(attr(meta, "status"), "notify_only");
        assert!(attr(meta, "reason").contains("not published"), "{meta:?}");
    }
    assert_eq!(counted(&d, &mallory).await, [5]);
    let published = d.notifications(moto()).await.unwrap();
    assert_eq!(published.len(), 2, "one per principal: {published:#?}");

    next_window(WINDOW).await;
    let (_, e) = failed_call(&mallory);
    let later = lambda_invoke(&r, e).await;

    assert!(later.notified, "a new window tells again");
    let reason = later.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("the window before counted 4 more, not published"),
        "{reason}"
    );
    assert_eq!(counted(&d, &mallory).await, [5, 1]);
}

/// Containment is never aggregated: a principal whose failed calls were counted is contained,
/// and told about, the moment a call of theirs succeeds.
#[tokio::test]
async fn a_flood_of_notices_does_not_quieten_a_containment() {
    let d = deployment().await;
    let user = unique("mallory");
    let keys = integration_tests::seed_user(&d.clients.iam, &user, 1)
        .await
        .unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    for _ in 0..3 {
        let (_, mut e) = failed_call(&user);
        e["detail"]["userIdentity"]["accessKeyId"] = keys[0].clone().into();
        lambda_invoke(&r, e).await;
    }
    let (_, mut e) = failed_call(&user);
    e["detail"]["userIdentity"]["accessKeyId"] = keys[0].clone().into();
    e["detail"].as_object_mut().unwrap().remove("errorCode");

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert!(report.notified);
}

/// Never silent: the window's first notice fails to go out (SNS refuses, scripted), so the
/// invocation fails; Lambda's retry, under the same request id, publishes it (not counted
/// again, so the window's later notices stay counted). A copy under another request id, a
/// repeat, does not publish it a second time.
#[tokio::test]
async fn a_notice_that_failed_to_go_out_is_published_on_the_retry() {
    let d = deployment().await;
    let user = unique("mallory");
    let proxy = FaultProxy::scripted(
        &moto().endpoint,
        0,
        1,
        vec![Scripted {
            action: "Publish",
            code: "AuthorizationError",
            status: "403 Forbidden",
            times: 1,
        }],
    )
    .await
    .unwrap();
    let r = through(&proxy, &d, &[]).await;
    let (_, e) = failed_call(&user);
    let request = unique("request");

    let failed = lambda_try_as(&r, e.clone(), &request).await;
    assert!(failed.is_err(), "the notice did not go out: {failed:?}");
    let retried = lambda_try_as(&r, e.clone(), &request).await.unwrap();
    let repeat = lambda_try_as(&r, e, &unique("request")).await.unwrap();

    assert!(retried.notified, "{retried:#?}");
    assert!(!repeat.notified, "{repeat:#?}");
    assert_eq!(counted(&d, &user).await, [1], "counted once");
    assert_eq!(d.notifications(moto()).await.unwrap().len(), 1);
    let (_, later) = failed_call(&user);
    assert!(
        !lambda_invoke(&r, later).await.notified,
        "the window's first went out"
    );
}
