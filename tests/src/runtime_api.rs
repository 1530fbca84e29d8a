//! A minimal Lambda Runtime API on 127.0.0.1: enough for a `lambda_runtime` binary to start,
//! poll for one event and answer, with the instants of each step, for cold-start benchmarks.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::BoxError;

/// What the function did, and when (measured from when the API started listening).
#[derive(Debug)]
pub enum Step {
    /// The first `GET /runtime/invocation/next`: initialisation is over.
    FirstPoll(Instant),
    /// `POST /runtime/invocation/<id>/response` or `/error`, with the body.
    Answered(Instant, bool, String),
    InitError(String),
}

pub struct RuntimeApi {
    pub address: String,
    pub steps: mpsc::UnboundedReceiver<Step>,
}

impl RuntimeApi {
    /// Serves `event` to the first poll; later polls wait forever (the process is killed).
    pub async fn start(event: String) -> Result<Self, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (tx, steps) = mpsc::unbounded_channel();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let served = served.clone();
                let event = event.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 16384];
                    loop {
                        let Ok(n) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_owned())
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + length {
                            continue;
                        }
                        let body =
                            String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                        buf.drain(..end + 4 + length);
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                        if path.ends_with("/invocation/next") {
                            if served.swap(true, std::sync::atomic::Ordering::SeqCst) {
                                // One event per process: later polls wait until it is killed.
                                std::future::pending::<()>().await;
                            }
                            let _ = tx.send(Step::FirstPoll(Instant::now()));
                            let response = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: bench-request\r\n\
                                 lambda-runtime-deadline-ms: 9999999999999\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                                 content-length: {}\r\n\r\n{event}",
                                event.len()
                            );
                            let _ = stream.write_all(response.as_bytes()).await;
                        } else {
                            let step = if path.contains("/init/error") {
                                Step::InitError(body)
                            } else {
                                Step::Answered(Instant::now(), path.ends_with("/response"), body)
                            };
                            let _ = tx.send(step);
                            let _ = stream
                                .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                                .await;
                        }
                    }
                });
            }
        });
        Ok(Self { address, steps })
    }
}
