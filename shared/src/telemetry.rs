//! Logs: JSON when Lambda asks for it (`AWS_LAMBDA_LOG_FORMAT=JSON`), with the request id of the
//! invocation on every line (the runtime's span carries it).

pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
