//! One ledger and one alert topic per account, in the home region (us-east-1, where IAM's and
//! STS's events reach EventBridge): a deployment in any other region records and notifies
//! there, through the ARNs `make deploy` passes it.

use aws_config::Region;
use cordon::ledger::Status;
use cordon::{Function, Responder};
use integration_tests::{key_statuses, ledger_items, sdk_config, seed_user, unique, ACCOUNT};

use crate::{deployment, lambda_invoke, moto, user_finding};

#[tokio::test]
async fn another_regions_deployment_records_in_the_home_ledger_and_topic() {
    let d = deployment().await; // the home region's ledger and topic
    let user = unique("abroad");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let table_arn = format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{}", d.table);
    assert!(d.topic_arn.starts_with("arn:aws:sns:us-east-1:"));
    let abroad = sdk_config(&moto().endpoint, 3)
        .into_builder()
        .region(Region::new("eu-west-1"))
        .build();
    let r = Responder::new(
        Function::QuarantineCredentials,
        d.config(&[("LEDGER_TABLE", &table_arn)]),
        cordon::aws::Clients::new(&abroad),
    )
    .await
    .unwrap();
    let (finding, mut e) = user_finding(&user, &keys[0]);
    e["region"] = "eu-west-1".into();
    e["detail"]["region"] = "eu-west-1".into();

    let report = lambda_invoke(&r, e).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert_eq!(
        key_statuses(&d.clients.iam, &user).await.unwrap()[0].1,
        "Inactive"
    );
    let items = ledger_items(&d.clients.dynamodb, &d.table, &finding)
        .await
        .unwrap();
    assert!(!items.is_empty(), "recorded in the home region's ledger");
    let told = d.notifications(moto()).await.unwrap();
    assert!(
        told.iter().any(|n| n.to_string().contains(&user)),
        "published to the home region's topic: {told:#?}"
    );
}
