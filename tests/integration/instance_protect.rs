//! isolate-instance's protections, each applied and recorded on its own.

use aws_sdk_ec2::types::InstanceAttributeName;
use cordon::actions::Action;
use cordon::ledger::Status;
use cordon::Function;
use integration_tests::faults::{ec2_error, Answer, AnswerWhen, FaultProxy};
use integration_tests::seed::seed_workload as seed;

use crate::instance::{described, finding, volumes_kept};
use crate::{deployment, lambda_invoke, moto, through_as};

/// A Spot instance refuses termination protection (EC2's UnsupportedOperation, scripted: moto
/// accepts it for any instance). Its volumes are kept and its shutdown is a stop all the same,
/// and the refusal is recorded as a skip with EC2's reason, not a failure no retry can cure.
#[tokio::test]
async fn a_spot_instance_refusing_termination_protection_still_keeps_its_volumes() {
    let d = deployment().await;
    let w = seed(&d, &[]).await.unwrap();
    let ec2 = &d.clients.ec2;
    let proxy = FaultProxy::answering_when(
        &moto().endpoint,
        vec![AnswerWhen {
            contains: "DisableApiTermination.Value=true".to_owned(),
            answer: Answer {
                action: "ModifyInstanceAttribute",
                status: "400 Bad Request",
                body: ec2_error(
                    "UnsupportedOperation",
                    "Modifying 'disableApiTermination' is not supported for spot instances.",
                ),
                times: usize::MAX,
            },
        }],
    )
    .await
    .unwrap();
    let r = through_as(Function::IsolateInstance, &proxy, &d, &[]).await;

    let report = lambda_invoke(&r, finding(&w.instance).1).await;

    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    assert!(!proxy.answered.lock().unwrap().is_empty(), "EC2 was asked");
    let protect = |target: String| {
        report
            .actions
            .iter()
            .find(|a| a.action == Action::ProtectInstance && a.target == target)
            .unwrap_or_else(|| panic!("{target}: {:#?}", report.actions))
    };
    let termination = protect(format!("{}/disableApiTermination", w.instance));
    assert_eq!(termination.outcome.word(), "skipped", "{termination:#?}");
    assert!(format!("{:?}", termination.outcome).contains("Spot"));
    // moto's instances already stop on shutdown (and moto cannot change that attribute later).
    let shutdown = protect(format!("{}/instanceInitiatedShutdownBehavior", w.instance));
    assert_eq!(shutdown.outcome.word(), "skipped", "{shutdown:#?}");
    for v in &w.volumes {
        assert_eq!(protect(v.clone()).outcome.word(), "succeeded");
    }

    assert!(volumes_kept(&described(&d, &w.instance).await));
    let behaviour = ec2
        .describe_instance_attribute()
        .instance_id(&w.instance)
        .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
        .send()
        .await
        .unwrap();
    assert_eq!(
        behaviour
            .instance_initiated_shutdown_behavior()
            .and_then(|v| v.value()),
        Some("stop")
    );
}
