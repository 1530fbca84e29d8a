//! cordon: contain compromised AWS credentials and instances.
//!
//! events -> signals -> playbooks -> actions -> records (ledger, notification, logs).

pub mod actions;
pub mod aws;
pub mod config;
pub mod events;
pub mod ids;
pub mod lambda;
pub mod ledger;
pub mod notify;
pub mod permissions;
pub mod playbooks;
pub mod policy;
pub mod principal;
pub mod protect;
pub mod responder;
pub mod rules;
pub mod signals;
pub mod telemetry;
pub mod trace;

pub use responder::{Report, Responder, ResponseError};
pub use signals::Function;
