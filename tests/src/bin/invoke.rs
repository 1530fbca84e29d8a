//! `make invoke FN=<function> EVENT=<file> [TARGET=moto|aws]`: one event through the real Lambda
//! runtime path (`cargo lambda watch` + `cargo lambda invoke`).
//!
//! TARGET=moto (default) starts moto server, creates the ledger table and topic, and seeds what
//! the event names (the user and a real key of theirs, the role, the instance), rewriting the
//! event's ids to the seeded ones. It sets ALLOWED_REGIONS=us-east-1 and makes the canary
//! sample's key a canary, so every sample in events/ meets its rule. TARGET=aws runs against the account your AWS credentials
//! reach, with ALERT_TOPIC_ARN and LEDGER_TABLE taken from your environment (the stack outputs).

use std::path::PathBuf;

use integration_tests::seed::seed_for_event;
use integration_tests::watch::Watch;
use integration_tests::{repo_root, BoxError, Deployment, Moto};
use serde_json::Value;

/// Configuration the functions read, passed through from this process for TARGET=aws.
const PASSED_THROUGH: &[&str] = &[
    "ALERT_TOPIC_ARN",
    "LEDGER_TABLE",
    "PROTECTED_PRINCIPALS",
    "DRY_RUN",
    "DEACTIVATE_ALL_KEYS",
    "QUARANTINE_ROLES",
    "RESPOND_TO_SAMPLE_FINDINGS",
    "STOP_INSTANCE",
    "CANARY_ACCESS_KEYS",
    "ALLOWED_ACCOUNTS",
    "ALLOWED_REGIONS",
    "BEDROCK_ALLOWED_PRINCIPALS",
    "COMPUTE_ALLOWED_PRINCIPALS",
    "DISABLED_RULES",
];

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, function, file] = args.as_slice() else {
        return Err("usage: invoke <moto|aws> <function> <event file>".into());
    };
    let path = PathBuf::from(file);
    let path = if path.is_absolute() {
        path
    } else {
        repo_root().join(path)
    };
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .unwrap_or_else(|e| Value::String(format!("not JSON: {e}")));
    let dir = repo_root().join("target/invoke");
    std::fs::create_dir_all(&dir)?;
    let log = dir.join(format!("{function}.log"));

    let mut _moto = None;
    let mut deployment = None;
    let env: Vec<(String, String)> = match target.as_str() {
        "moto" => {
            let moto = Moto::start()?;
            let d = Deployment::create(&moto).await?;
            for line in seed_for_event(&d, &mut event).await? {
                println!("seeded {line}");
            }
            // Settings that give every sample its rule: compute outside us-east-1 is foreign, and
            // the canary sample's seeded key is a canary.
            let caller = &event["detail"]["userIdentity"];
            let canary = match caller["userName"].as_str() {
                Some("canary") => caller["accessKeyId"].as_str().unwrap_or("").to_owned(),
                _ => String::new(),
            };
            let mut env = moto.env();
            env.extend(d.vars(&[
                ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
                ("ALLOWED_REGIONS", "us-east-1"),
                ("CANARY_ACCESS_KEYS", &canary),
            ]));
            deployment = Some(d);
            _moto = Some(moto);
            env
        }
        "aws" => std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_") || PASSED_THROUGH.contains(&k.as_str()))
            .collect(),
        other => return Err(format!("TARGET must be moto or aws, not {other}").into()),
    };
    let sent = dir.join(path.file_name().unwrap_or_default());
    std::fs::write(&sent, serde_json::to_vec_pretty(&event)?)?;
    let watch = Watch::start(&env, &log)?;
    println!("invoking {function} with {} ({target})", sent.display());
    let (ok, response) = watch.invoke(function, &sent)?;
    if ok {
        println!("{}", serde_json::to_string_pretty(&response)?);
    } else {
        println!(
            "function error:\n{}",
            response
                .as_str()
                .map_or_else(|| response.to_string(), str::to_owned)
        );
    }
    if let (Some(d), Some(moto)) = (&deployment, &_moto) {
        for n in d.notifications(moto).await? {
            println!("notification: {}", n["Subject"].as_str().unwrap_or("?"));
        }
    }
    println!("function logs: {}", log.display());
    Ok(())
}
