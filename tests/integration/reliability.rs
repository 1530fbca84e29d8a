//! Faults, floods, bad input and concurrency: cordon stays honest and never over-reaches.

use cordon::ledger::Status;
use cordon::Function;
use integration_tests::faults::{FaultProxy, Rng, Scripted};
use integration_tests::{
    attr, event, key_statuses, ledger_items, seed_user, soak_scale, unique, user_policies,
    Deployment, Moto,
};
use serde_json::Value;

use crate::{deployment, invoke, moto, responder, through, user_finding};

/// With 30% of requests throttled, failed or dropped, every finding still ends contained once
/// Lambda's retries are counted, and no record claims a success that did not happen.
#[tokio::test]
async fn thirty_percent_faults_all_contained_nothing_falsely_succeeded() {
    let d = deployment().await;
    let proxy = FaultProxy::start(&moto().endpoint, 30, 42).await.unwrap();
    // Standard retries, as the functions configure them, through the faulty proxy.
    let r = through(&proxy, &d, &[("RATE_LIMIT", "100000")]).await;
    let findings = 100 * soak_scale();
    let mut users = Vec::new();
    for _ in 0..findings {
        let user = unique("f");
        let key = seed_user(&d.clients.iam, &user, 1).await.unwrap().remove(0);
        users.push((user, key));
    }
    let mut invocations = 0;
    let mut failed_invocations = 0;
    let mut outcomes = std::collections::HashMap::new();
    for (user, key) in &users {
        let (_, e) = user_finding(user, key);
        // Lambda's asynchronous invocation: the first attempt and up to two retries, which
        // carry the same request id.
        let request_id = unique("request");
        for _ in 0..3 {
            invocations += 1;
            let result = r.handle(e.clone(), &request_id).await;
            let done = result.is_ok();
            failed_invocations += usize::from(!done);
            outcomes.insert(user.clone(), result);
            if done {
                break;
            }
        }
    }
    let counts = &proxy.counts;
    println!(
        "{findings} findings, {invocations} invocations ({failed_invocations} failed and retried); proxy: {:?}",
        counts
    );
    for (user, _) in &users {
        let report = outcomes[user]
            .as_ref()
            .expect("contained within Lambda's retries");
        assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
        // Read through moto directly: the truth, not what cordon believes.
        assert_eq!(
            key_statuses(&d.clients.iam, user).await.unwrap()[0].1,
            "Inactive",
            "{user}"
        );
        let attached = d
            .clients
            .iam
            .list_attached_user_policies()
            .user_name(user)
            .send()
            .await
            .unwrap();
        assert_eq!(attached.attached_policies().len(), 1, "{user}: {report:#?}");
    }
    assert!(counts.throttled.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// An attacker who can create findings must not make cordon lock out the account.
#[tokio::test]
async fn a_flood_of_findings_is_deferred_loudly_past_the_rate_limit() {
    let d = deployment().await;
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("RATE_LIMIT", "3"), ("RATE_WINDOW_SECONDS", "3600")],
    )
    .await;
    let mut statuses = Vec::new();
    let mut users = Vec::new();
    for _ in 0..5 {
        let user = unique("flood");
        let key = seed_user(&d.clients.iam, &user, 1).await.unwrap().remove(0);
        let (_, e) = user_finding(&user, &key);
        statuses.push(invoke(&r, e).await.expect("answered").status);
        users.push(user);
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == Some(Status::Contained))
            .count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == Some(Status::Deferred))
            .count(),
        2,
        "{statuses:?}"
    );
    for user in &users[3..] {
        assert_eq!(
            key_statuses(&d.clients.iam, user).await.unwrap()[0].1,
            "Active",
            "deferred means untouched"
        );
    }
    let messages = d.notifications(moto()).await.unwrap();
    let loud = messages
        .iter()
        .filter(|m| m["Subject"].as_str().unwrap_or("").contains("RATE LIMIT"))
        .count();
    assert_eq!(
        loud, 2,
        "every deferral is notified, never dropped silently"
    );
}

#[tokio::test]
async fn fifty_concurrent_deliveries_one_set_of_effects_all_accounted_for() {
    let d = deployment().await;
    let user = unique("burst");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let (finding, e) = user_finding(&user, &keys[0]);
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;

    let deliveries = 50 * soak_scale();
    let reports: Vec<_> =
        futures::future::join_all((0..deliveries).map(|_| invoke(&r, e.clone()))).await;

    let reports: Vec<_> = reports.into_iter().map(|r| r.expect("answered")).collect();
    let acting = reports
        .iter()
        .filter(|r| r.actions.iter().any(|a| a.outcome.word() == "succeeded"))
        .count();
    assert_eq!(acting, 1);
    let items = ledger_items(&d.clients.dynamodb, &d.table, &finding)
        .await
        .unwrap();
    assert_eq!(
        items
            .iter()
            .filter(|i| attr(i, "sk").starts_with("DELIVERY#"))
            .count(),
        deliveries
    );
    assert!(d.notifications(moto()).await.unwrap().len() <= 1);
}

#[tokio::test]
async fn fifty_different_findings_for_one_user_at_once() {
    let d = deployment().await;
    let user = unique("target");
    let keys = seed_user(&d.clients.iam, &user, 1).await.unwrap();
    let r = responder(
        &d,
        Function::QuarantineCredentials,
        &[("RATE_LIMIT", "100000")],
    )
    .await;
    let events: Vec<(String, Value)> = (0..50 * soak_scale())
        .map(|_| user_finding(&user, &keys[0]))
        .collect();

    let results =
        futures::future::join_all(events.iter().map(|(_, e)| invoke(&r, e.clone()))).await;

    for result in results {
        assert_eq!(result.expect("answered").status, Some(Status::Contained));
    }
    let iam = &d.clients.iam;
    assert_eq!(key_statuses(iam, &user).await.unwrap()[0].1, "Inactive");
    let attached = iam
        .list_attached_user_policies()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attached.attached_policies().len(),
        1,
        "one quarantine, not fifty"
    );
    for (finding, _) in &events {
        let items = ledger_items(&d.clients.dynamodb, &d.table, finding)
            .await
            .unwrap();
        assert!(items
            .iter()
            .any(|i| attr(i, "sk").starts_with("META#") && attr(i, "status") == "contained"));
    }
}

/// Replace, delete or retype one value somewhere in the document.
fn mutate(v: &mut Value, rng: &mut Rng, depth: usize) {
    let hostile = [
        Value::Null,
        Value::Bool(true),
        Value::from(-1),
        Value::from(1e308),
        Value::from(""),
        Value::from("a\"b\n}{"),
        Value::from("../../etc/passwd"),
        Value::from("x".repeat(5000)),
        Value::from("AKIA\u{0}\u{202e}"),
        serde_json::json!([]),
        serde_json::json!({}),
    ];
    match v {
        Value::Object(map) if !map.is_empty() && depth < 12 => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.below(keys.len())];
            match rng.below(4) {
                0 => {
                    map.remove(key);
                }
                1 => {
                    map.insert(key.clone(), hostile[rng.below(hostile.len())].clone());
                }
                _ => mutate(map.get_mut(key).unwrap(), rng, depth + 1),
            }
        }
        Value::Array(items) if !items.is_empty() && depth < 12 => {
            let i = rng.below(items.len());
            mutate(&mut items[i], rng, depth + 1);
        }
        other => *other = hostile[rng.below(hostile.len())].clone(),
    }
}

/// 100,000 mutated events: every one gives a signal or a typed error, never a panic; and no
/// mutated user name ever becomes a principal that fails validation.
#[tokio::test]
async fn a_hundred_thousand_mutated_events_never_panic() {
    let d = deployment().await;
    let config = d.config(&[("RESPOND_TO_SAMPLE_FINDINGS", "true")]);
    let seeds: Vec<Value> = std::fs::read_dir(integration_tests::repo_root().join("events"))
        .unwrap()
        .map(|e| event(e.unwrap().file_name().to_str().unwrap()).unwrap())
        .collect();
    let mut rng = Rng(0x5eed);
    let (mut signals, mut errors) = (0, 0);
    let events = 100_000 * soak_scale();
    for i in 0..events {
        let mut e = seeds[i % seeds.len()].clone();
        for _ in 0..=rng.below(3) {
            mutate(&mut e, &mut rng, 0);
        }
        for function in [Function::QuarantineCredentials, Function::IsolateInstance] {
            match cordon::signals::from_event(function, e.clone(), &config) {
                Ok(cordon::signals::Signal::Respond { target, .. }) => {
                    signals += 1;
                    // Whatever reached a target passed the newtypes' validation.
                    let text = serde_json::to_string(&target).unwrap();
                    assert!(!text.contains('\n') && !text.contains("../"), "{text}");
                }
                Ok(_) => signals += 1,
                Err(_) => errors += 1,
            }
        }
    }
    println!(
        "{events} mutated events, {} evaluations: {signals} signals or ignores, {errors} typed errors",
        2 * events
    );
}

#[tokio::test]
async fn own_role_is_protected_at_start_up() {
    // moto's caller is a user, so check the mechanism on an assumed-role caller ARN directly.
    let p = cordon::protect::Pattern::from_caller_arn(
        "arn:aws:sts::123456789012:assumed-role/cordon-fn/x",
    )
    .unwrap();
    let mut set = cordon::protect::PrincipalPatterns::default();
    set.add(p);
    let role =
        cordon::principal::Principal::Role(cordon::ids::IamName::parse("cordon-fn").unwrap());
    assert!(set.matching(None, &role, None).is_some());
    let _: &Deployment;
}

/// A new finding for a new user on its own emulator, whose `AttachUserPolicy` calls the proxy
/// answers `times` times with `code`. The emulator is returned to keep it running.
async fn contain_with_attach_answered(
    code: &'static str,
    status: &'static str,
    times: usize,
) -> (Moto, Deployment, String, cordon::Report) {
    let moto = Moto::start().unwrap();
    let d = Deployment::create(&moto).await.unwrap();
    let script = vec![Scripted {
        action: "AttachUserPolicy",
        code,
        status,
        times,
    }];
    let proxy = FaultProxy::scripted(&moto.endpoint, 0, 1, script)
        .await
        .unwrap();
    let user = unique("scripted");
    let key = seed_user(&d.clients.iam, &user, 1).await.unwrap().remove(0);
    let (_, e) = user_finding(&user, &key);
    let report = invoke(&through(&proxy, &d, &[]).await, e)
        .await
        .expect("contained");
    assert_eq!(report.status, Some(Status::Contained), "{report:#?}");
    (moto, d, user, report)
}

fn attach_record(report: &cordon::Report) -> &cordon::actions::ActionRecord {
    let attach = report
        .actions
        .iter()
        .find(|a| a.action == cordon::actions::Action::AttachQuarantinePolicy)
        .expect("an attach record");
    assert_eq!(attach.outcome.word(), "succeeded", "{attach:#?}");
    assert_eq!(attach.verified, Some(true), "{attach:#?}");
    attach
}

/// IAM is eventually consistent: attaching a policy created a moment ago can answer
/// NoSuchEntity. That is not final; the attach is retried and then read back.
#[tokio::test]
async fn a_policy_not_yet_visible_after_creation_is_attached_on_retry() {
    let (_moto, d, user, report) =
        contain_with_attach_answered("NoSuchEntity", "404 Not Found", 2).await;

    let attach = attach_record(&report);
    assert!(attach.note.as_deref().unwrap_or("").starts_with("created"));
    let attached = user_policies(&d.clients.iam, &user).await.unwrap();
    assert_eq!(attached.0.len(), 1, "{attached:?}");
}

/// A user already holding IAM's maximum of managed policies gets the inline Deny-all instead,
/// and the record says so.
#[tokio::test]
async fn managed_policy_limit_falls_back_to_an_inline_deny_all() {
    let (_moto, d, user, report) =
        contain_with_attach_answered("LimitExceeded", "409 Conflict", usize::MAX).await;

    let attach = attach_record(&report);
    assert!(attach
        .note
        .as_deref()
        .unwrap_or("")
        .contains("managed policy limit reached"));
    let fallback = d
        .clients
        .iam
        .get_user_policy()
        .user_name(&user)
        .policy_name(cordon::policy::FALLBACK_POLICY_NAME)
        .send()
        .await
        .unwrap();
    let doc: Value =
        serde_json::from_str(&cordon::policy::decode(fallback.policy_document())).unwrap();
    assert_eq!(doc, cordon::policy::deny_all_document());
}

/// Extra passes over a failed action start only while the Lambda deadline leaves time for them
/// and for the record: close to the deadline, one pass, and the invocation fails for the retry.
#[tokio::test]
async fn no_extra_pass_close_to_the_deadline() {
    let d = deployment().await;
    for (deadline, passes) in [(None, 3), (Some(std::time::Duration::from_secs(5)), 1)] {
        let script = vec![Scripted {
            action: "AttachUserPolicy",
            code: "AccessDenied",
            status: "403 Forbidden",
            times: usize::MAX,
        }];
        let proxy = FaultProxy::scripted(&moto().endpoint, 0, 1, script)
            .await
            .unwrap();
        let r = through(&proxy, &d, &[]).await;
        let user = unique("late");
        let key = seed_user(&d.clients.iam, &user, 1).await.unwrap().remove(0);
        let (_, e) = user_finding(&user, &key);

        let result = r
            .handle_until(
                e,
                &unique("request"),
                deadline.map(|left| std::time::Instant::now() + left),
            )
            .await;

        assert!(result.is_err(), "a failed action fails the invocation");
        let attempts = proxy
            .counts
            .scripted
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(attempts, passes, "deadline {deadline:?}");
    }
}
