//! `trace-credentials`: the Lambda entry point. All logic lives in the `cordon` library.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cordon::lambda::run(cordon::Function::TraceCredentials).await
}
