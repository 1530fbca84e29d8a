//! The record: ledger items, notifications, concurrency and honest failure.

use cordon::ledger::{Delivery, Status};
use cordon::{Function, Responder, ResponseError};
use integration_tests::{attr, key_statuses, ledger_items, sdk_config, seed_user, unique};

use crate::{deployment, invoke, moto, responder, user_finding};

#[tokio::test]
async fn ledger_holds_each_action_with_the_state_before() {
    let d = deployment().await;
    let user = unique("ivy");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let (finding, e) = user_finding(&user, &keys[0]);
    invoke(
        &responder(&d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await
    .expect("contained");

    let items = ledger_items(&d.clients.dynamodb, &d.table, &finding)
        .await
        .unwrap();
    let meta = items
        .iter()
        .find(|i| attr(i, "sk").starts_with("META#"))
        .expect("incident item");
    assert_eq!(attr(meta, "status"), "contained");
    assert_eq!(attr(meta, "resource_pk"), format!("RESOURCE#user/{user}"));
    assert_eq!(attr(meta, "open_pk"), "OPEN");
    assert_eq!(attr(meta, "lease_expires"), "0", "lease released");
    let key_item = items
        .iter()
        .find(|i| attr(i, "action") == "deactivate_access_key")
        .expect("key action");
    assert_eq!(attr(key_item, "target"), keys[0]);
    assert_eq!(attr(key_item, "outcome"), "succeeded");
    assert!(attr(key_item, "before").contains("\"Active\""));
    assert!(attr(key_item, "after").contains("\"Inactive\""));
    assert!(!attr(key_item, "request_id").is_empty());
    assert!(items
        .iter()
        .any(|i| attr(i, "action") == "attach_quarantine_policy"));
    assert!(items.iter().any(
        |i| attr(i, "sk") == "DELIVERY#quarantine-credentials#0001" && attr(i, "kind") == "new"
    ));

    // All incidents of this user, through the index a person would query.
    let by_user = d
        .clients
        .dynamodb
        .query()
        .table_name(&d.table)
        .index_name(cordon::ledger::BY_RESOURCE_INDEX)
        .key_condition_expression("resource_pk = :r")
        .expression_attribute_values(
            ":r",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("RESOURCE#user/{user}")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_user.count(), 1);
}

#[tokio::test]
async fn one_readable_notification_with_filterable_attributes() {
    let d = deployment().await;
    let user = unique("jack");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let (finding, e) = user_finding(&user, &keys[0]);
    invoke(
        &responder(&d, Function::QuarantineCredentials, &[]).await,
        e,
    )
    .await
    .expect("contained");

    let messages = d.notifications(moto()).await.unwrap();
    assert_eq!(messages.len(), 1);
    let subject = messages[0]["Subject"].as_str().unwrap();
    assert!(subject.len() <= 100, "{subject}");
    assert!(
        // The key id is dropped only when the subject would not fit otherwise.
        subject.starts_with(&format!("[cordon] contained IAM user {user}")),
        "{subject}"
    );
    assert!(
        subject.ends_with("UnauthorizedAccess:IAMUser/TorIPCaller"),
        "{subject}"
    );
    let body = messages[0]["Message"].as_str().unwrap();
    assert!(
        body.contains(&finding) && body.contains("What to do next"),
        "{body}"
    );
    let attrs = &messages[0]["MessageAttributes"];
    assert_eq!(attrs["outcome"]["Value"], "contained");
    assert_eq!(
        attrs["finding_type"]["Value"],
        "UnauthorizedAccess:IAMUser/TorIPCaller"
    );
    assert_eq!(attrs["account"]["Value"], integration_tests::ACCOUNT);
    assert_eq!(attrs["severity"]["Value"], "high");
}

#[tokio::test]
async fn concurrent_duplicates_give_one_set_of_effects() {
    let d = deployment().await;
    let user = unique("kate");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let (finding, e) = user_finding(&user, &keys[0]);
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let results = futures::future::join_all((0..8).map(|_| invoke(&r, e.clone()))).await;

    let reports: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("every delivery answers"))
        .collect();
    let acted = reports
        .iter()
        .filter(|r| r.actions.iter().any(|a| a.outcome.word() == "succeeded"))
        .count();
    assert_eq!(
        acted, 1,
        "exactly one delivery changed anything: {reports:#?}"
    );
    assert!(reports.iter().filter(|r| r.notified).count() <= 1);
    assert!(d.notifications(moto()).await.unwrap().len() <= 1);
    let items = ledger_items(&d.clients.dynamodb, &d.table, &finding)
        .await
        .unwrap();
    let deliveries = items
        .iter()
        .filter(|i| attr(i, "sk").starts_with("DELIVERY#"))
        .count();
    assert_eq!(deliveries, 8, "every invocation is accounted for");
    assert!(reports.iter().any(|r| r.delivery == Some(Delivery::New)));
    assert_eq!(
        key_statuses(&d.clients.iam, &user).await.unwrap()[0].1,
        "Inactive"
    );
}

#[tokio::test]
async fn iam_unreachable_fails_the_invocation_and_records_the_failure() {
    let d = deployment().await;
    let user = unique("liam");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let (finding, e) = user_finding(&user, &keys[0]);
    // Every service but IAM reaches moto; IAM points at a port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut clients = d.clients.clone();
    clients.iam = aws_sdk_iam::Client::new(&sdk_config(&format!("http://127.0.0.1:{dead}"), 1));
    let r = Responder::new(Function::QuarantineCredentials, d.config(&[]), clients)
        .await
        .unwrap();

    let err = invoke(&r, e).await.expect_err("must not report success");

    let ResponseError::ContainmentFailed { report, .. } = err else {
        panic!("expected a containment failure, got {err}");
    };
    assert_eq!(report.status, Some(Status::Failed));
    let items = ledger_items(&d.clients.dynamodb, &d.table, &finding)
        .await
        .unwrap();
    let meta = items
        .iter()
        .find(|i| attr(i, "sk").starts_with("META#"))
        .unwrap();
    assert_eq!(attr(meta, "status"), "failed");
    assert!(items
        .iter()
        .any(|i| attr(i, "outcome") == "failed" && !attr(i, "error").is_empty()));
    let messages = d.notifications(moto()).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert!(messages[0]["Subject"].as_str().unwrap().contains("FAILED"));
    assert!(!messages[0]["Message"]
        .as_str()
        .unwrap()
        .contains("succeeded"));
}
