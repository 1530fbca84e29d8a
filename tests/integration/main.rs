//! Integration tests: the responder against moto server, asserting state through the SDK.
//! One binary (one moto process); every test uses its own names, table and topic.

mod cloudtrail;
mod corpus;
mod credentials;
mod instance;
mod instance_network;
mod instance_profile;
mod instance_protect;
mod instance_service;
mod layers;
mod ledger;
mod quarantine_denies;
mod reliability;
mod template;
mod user_credentials;

use std::sync::OnceLock;

use cordon::{Function, Report, Responder, ResponseError};
use integration_tests::faults::FaultProxy;
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

pub async fn invoke(r: &Responder, event: Value) -> Result<Report, ResponseError> {
    r.handle(event, &unique("request")).await
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

/// One invocation as Lambda makes it: `cordon::lambda::handle` (what `lambda_runtime` calls
/// for each event) with a context as the Runtime API gives it, a minute before its deadline.
pub async fn lambda_invoke(r: &Responder, event: Value) -> Report {
    lambda_handle(r, event)
        .await
        .unwrap_or_else(|e| panic!("{}: {}", e.error_type, e.error_message))
}

/// [`lambda_invoke`], for an invocation that may fail: what Lambda would get back.
pub async fn lambda_handle(
    r: &Responder,
    event: Value,
) -> Result<Report, lambda_runtime::Diagnostic> {
    let mut context = lambda_runtime::Context::default();
    context.request_id = unique("request");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    context.deadline = u64::try_from(now.as_millis()).expect("millis") + 60_000;
    context.invoked_function_arn =
        "arn:aws:lambda:us-east-1:123456789012:function:quarantine-credentials".to_owned();
    cordon::lambda::handle(r, lambda_runtime::LambdaEvent::new(event, context)).await
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
