//! Integration tests: the responder against moto server, asserting state through the SDK.
//! One binary (one moto process); every test uses its own names, table and topic.

mod attacker;
mod cloudtrail;
mod corpus;
mod coverage;
mod credentials;
mod delivery;
mod floods;
mod instance;
mod instance_network;
mod instance_profile;
mod instance_protect;
mod instance_service;
mod layers;
mod ledger;
mod never_silent;
mod protection;
mod quarantine_denies;
mod regions;
mod reliability;
mod sequence;
mod tamper;
mod template;
mod trace;
mod user_credentials;

use std::sync::OnceLock;

use cordon::{Function, Report, Responder, ResponseError};
use integration_tests::faults::FaultProxy;
use integration_tests::patterns;
use integration_tests::{event, sdk_config, unique, Deployment, Moto};
use serde_json::Value;

pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| Moto::start().expect("moto server"))
}

pub async fn deployment() -> Deployment {
    Deployment::create(moto()).await.expect("deployment")
}

pub async fn responder(d: &Deployment, function: Function, extra: &[(&str, &str)]) -> Responder {
    Responder::new(function, d.config(extra), d.clients.clone())
        .await
        .expect("responder")
}

/// `r.handle`, for an event the template delivers to `r`'s function.
pub async fn invoke(r: &Responder, event: Value) -> Result<Report, ResponseError> {
    assert_delivered(r, &event);
    invoke_undelivered(r, event).await
}

/// For the few tests about an event the template would not deliver (a forgery, a bad body):
/// what cordon does if one arrives anyway.
pub async fn invoke_undelivered(r: &Responder, event: Value) -> Result<Report, ResponseError> {
    r.handle(event, &unique("request")).await
}

/// No test hands a function what template.yaml's EventBridge rules would not deliver to it.
pub fn assert_delivered(r: &Responder, event: &Value) {
    let reached = reached(r, event);
    let function = r.function().name();
    assert!(
        reached.contains_key(function),
        "template.yaml delivers this event to {reached:?}, not to {function}: {event}"
    );
}

/// The functions template.yaml's rules deliver `event` to (with `r`'s canary keys as the
/// template's parameter), each with the rule that does.
pub fn reached(r: &Responder, event: &Value) -> std::collections::HashMap<String, String> {
    let canary = r.config().rules.canary_keys.join(",");
    let rules = patterns::rules(&serde_json::json!({"CanaryAccessKeys": canary})).expect("rules");
    patterns::reaches(&moto().endpoint, &rules, event).expect("TestEventPattern")
}

/// quarantine-credentials with its AWS calls through `proxy`, retrying as the functions do.
pub async fn through(proxy: &FaultProxy, d: &Deployment, extra: &[(&str, &str)]) -> Responder {
    through_as(Function::QuarantineCredentials, proxy, d, extra).await
}

/// `function` with its AWS calls through `proxy`, retrying as the functions do.
pub async fn through_as(
    function: Function,
    proxy: &FaultProxy,
    d: &Deployment,
    extra: &[(&str, &str)],
) -> Responder {
    Responder::new(
        function,
        d.config(extra),
        cordon::aws::Clients::new(&sdk_config(&proxy.endpoint, 6)),
    )
    .await
    .expect("responder")
}

/// One invocation as Lambda makes it, expected to succeed.
pub async fn lambda_invoke(r: &Responder, event: Value) -> Report {
    lambda_try(r, event)
        .await
        .unwrap_or_else(|e| panic!("{}: {}", e.error_type, e.error_message))
}

/// One invocation as Lambda makes it: `cordon::lambda::handle` (what `lambda_runtime` calls
/// for each event) with a context as the Runtime API gives it, a minute before its deadline.
/// An error is what Lambda records for a failed invocation (and retries).
pub async fn lambda_try(r: &Responder, event: Value) -> Result<Report, lambda_runtime::Diagnostic> {
    lambda_try_as(r, event, &unique("request")).await
}

/// [`lambda_try`] under `request_id`: Lambda retries a failed asynchronous invocation under the
/// request id it had.
pub async fn lambda_try_as(
    r: &Responder,
    event: Value,
    request_id: &str,
) -> Result<Report, lambda_runtime::Diagnostic> {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id.to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    context.deadline = u64::try_from(now.as_millis()).expect("millis") + 60_000;
    context.invoked_function_arn = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:{}",
        r.function().name()
    );
    assert_delivered(r, &event);
    // Boxed: the invocation's state on the heap, not in each test's own future (on its stack).
    Box::pin(cordon::lambda::handle(
        r,
        lambda_runtime::LambdaEvent::new(event, context),
    ))
    .await
}

/// The sample IAM-user finding, aimed at `user`'s `key` under a fresh finding id.
pub fn user_finding(user: &str, key: &str) -> (String, Value) {
    let mut e = event("guardduty-iam-user.json").expect("sample event");
    let id = unique("finding").replace('-', "");
    e["detail"]["id"] = id.clone().into();
    e["detail"]["resource"]["accessKeyDetails"]["userName"] = user.into();
    e["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = key.into();
    (id, e)
}

pub fn role_finding(role: &str) -> (String, Value) {
    let mut e = event("guardduty-assumed-role.json").expect("sample event");
    let id = unique("finding").replace('-', "");
    e["detail"]["id"] = id.clone().into();
    e["detail"]["resource"]["accessKeyDetails"]["userName"] = role.into();
    (id, e)
}
