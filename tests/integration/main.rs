//! Integration tests: the responder against moto server, asserting state through the SDK.
//! One binary (one moto process); every test uses its own names, table and topic.

mod cloudtrail;
mod corpus;
mod credentials;
mod instance;
mod layers;
mod ledger;
mod quarantine_denies;
mod reliability;
mod template;
mod user_credentials;

use std::sync::OnceLock;

use cordon::{Function, Report, Responder, ResponseError};
use integration_tests::{event, unique, Deployment, Moto};
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
