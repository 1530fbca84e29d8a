//! The Lambda wiring both functions share: cold start once, then one `handle` per event.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::responder::{Report, Responder};
use crate::signals::Function;
use crate::telemetry;

/// Runs `function` under whatever Lambda Runtime API `AWS_LAMBDA_RUNTIME_API` names.
pub async fn run(function: Function) -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let responder = Responder::from_env(function).await.inspect_err(|e| {
        tracing::error!(error = %e, "cold start failed");
    })?;
    let responder = &responder;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(responder, event).await
    }))
    .await
}

pub async fn handle(
    responder: &Responder,
    event: LambdaEvent<Value>,
) -> Result<Report, Diagnostic> {
    let result = responder
        .handle_until(
            event.payload,
            &event.context.request_id,
            deadline(event.context.deadline),
        )
        .await;
    match &result {
        Ok(report) => {
            tracing::info!(report = %serde_json::to_string(report).unwrap_or_default(), "done")
        }
        Err(e) => tracing::error!(
            error = %e,
            report = %e.report().and_then(|r| serde_json::to_string(r).ok()).unwrap_or_default(),
            "invocation failed"
        ),
    }
    result.map_err(Diagnostic::from)
}

/// Lambda's deadline (milliseconds since the epoch) as an `Instant`.
fn deadline(epoch_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis();
    let left = u64::try_from(u128::from(epoch_ms).saturating_sub(now_ms)).ok()?;
    Some(Instant::now() + Duration::from_millis(left))
}
