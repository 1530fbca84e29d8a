//! The real Lambda runtime path: `cargo lambda watch` emulates the Lambda control plane and runs
//! the function binaries under it; `cargo lambda invoke` sends them events.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{repo_root, BoxError};

fn cargo_lambda() -> PathBuf {
    std::env::var("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".venv/bin/cargo-lambda"))
}

/// `cargo lambda watch`, stopped (with the functions it runs) when dropped.
pub struct Watch {
    process: Child,
    port: u16,
}

impl Watch {
    /// Starts the emulator with `env` for the functions; their output goes to `log`.
    pub fn start(env: &[(String, String)], log_path: &Path) -> Result<Self, BoxError> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(log_path)?;
        let mut cmd = Command::new(cargo_lambda());
        cmd.current_dir(repo_root())
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .stdout(log.try_clone()?)
            .stderr(log);
        // cargo lambda rejects `KEY=`; an unset variable means the same to the functions.
        for (k, v) in env.iter().filter(|(_, v)| !v.is_empty()) {
            cmd.arg("--env-var").arg(format!("{k}={v}"));
        }
        let process = cmd.spawn().map_err(|e| {
            format!(
                "cargo lambda ({}): {e}; run `make venv`",
                cargo_lambda().display()
            )
        })?;
        let mut watch = Self { process, port };
        // Generous: it waits for cargo's build lock when another build holds it.
        let deadline = Instant::now() + Duration::from_secs(600);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || watch.process.try_wait()?.is_some() {
                return Err(format!(
                    "cargo lambda watch did not start; see {}",
                    log_path.display()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(watch)
    }

    /// Invokes `function` with the event in `file`: whether it succeeded, and its response or
    /// error.
    pub fn invoke(&self, function: &str, file: &Path) -> Result<(bool, Value), BoxError> {
        let out = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                function,
                "--output-format",
                "json",
                "-A",
                "127.0.0.1",
            ])
            .args(["-P", &self.port.to_string(), "--data-file"])
            .arg(file)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let body = serde_json::from_str(&text).unwrap_or_else(|_| {
            Value::String(
                format!("{text}{}", String::from_utf8_lossy(&out.stderr))
                    .trim()
                    .to_owned(),
            )
        });
        Ok((out.status.success(), body))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
