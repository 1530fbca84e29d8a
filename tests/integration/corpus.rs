//! Every third-party event in `tests/corpus` parses without a panic, and the Stratus Red Team
//! Bedrock (LLMjacking) sequence is contained. The corpus's sources and licenses:
//! `tests/corpus/PROVENANCE.md`.

use std::path::{Path, PathBuf};

use cordon::events::cloudtrail::records;
use cordon::ledger::Status;
use cordon::rules::{evaluate, RuleSettings};
use cordon::Function;
use integration_tests::{repo_root, seed_role, ACCOUNT};
use serde_json::{json, Value};

use crate::{deployment, invoke, responder};

pub fn corpus(sub: &str) -> Vec<PathBuf> {
    let dir = repo_root().join("tests/corpus").join(sub);
    let mut files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no corpus under {}", dir.display());
    files
}

pub fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_cloudtrail_record_parses_and_evaluates() {
    let mut parsed = 0;
    let mut matched = 0;
    for sub in ["cloudtrail", "datasets"] {
        for file in corpus(sub) {
            for record in records(load(&file)) {
                let record = record.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                parsed += 1;
                matched += usize::from(evaluate(&record, &RuleSettings::default()).is_some());
            }
        }
    }
    println!("{parsed} CloudTrail records parsed, {matched} matched a rule");
    assert!(parsed >= 368 + 2900, "{parsed}");
    assert!(matched > 0);
}

/// Each GuardDuty file, as an envelope or a bare finding, gives a signal or a typed error.
#[tokio::test]
async fn every_guardduty_finding_gives_a_signal_or_a_typed_error() {
    let d = deployment().await;
    for function in [Function::QuarantineCredentials, Function::IsolateInstance] {
        let config = d.config(&[("RESPOND_TO_SAMPLE_FINDINGS", "true")]);
        for file in corpus("guardduty") {
            let mut doc = load(&file);
            if doc.get("detail-type").is_none() {
                doc = json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": doc});
            }
            let signal = cordon::signals::from_event(function, doc, &config);
            println!(
                "{} {}: {:?}",
                function.name(),
                file.display(),
                signal.as_ref().map(|_| "signal").map_err(|e| e.to_string())
            );
        }
    }
}

/// The real LLMjacking detonation: a stolen role session enabling and invoking Bedrock models.
#[tokio::test]
async fn stratus_bedrock_sequence_is_contained() {
    let d = deployment().await;
    let role = integration_tests::unique("test-role");
    seed_role(&d.clients.iam, &role).await.unwrap();
    let r = responder(&d, Function::QuarantineCredentials, &[]).await;
    let file =
        repo_root().join("tests/corpus/cloudtrail/stratus__aws.impact.bedrock-invoke-model.json");
    let mut statuses = Vec::new();
    for mut raw in load(&file).as_array().cloned().unwrap() {
        // The same record, moved into the emulator's account and onto a role that exists there.
        raw["recipientAccountId"] = ACCOUNT.into();
        raw["userIdentity"]["accountId"] = ACCOUNT.into();
        raw["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] = role.clone().into();
        let event = json!({"version": "0", "id": "e", "detail-type": "AWS API Call via CloudTrail",
                           "source": "aws.bedrock", "account": ACCOUNT, "region": "us-east-1", "time": "2026-11-22T20:00:00Z", "resources": [], "detail": raw});
        // EventBridge delivers only what the template's rules match; the rest never arrives.
        let status = if crate::reached(&r, &event).contains_key(r.function().name()) {
            invoke(&r, event).await.expect("handled").status
        } else {
            None
        };
        statuses.push((raw["eventName"].as_str().unwrap().to_owned(), status));
    }
    let contained: Vec<_> = statuses
        .iter()
        .filter(|(_, s)| *s == Some(Status::Contained))
        .collect();
    assert!(
        contained.iter().any(|(n, _)| n == "InvokeModel"),
        "{statuses:?}"
    );
    assert!(
        contained
            .iter()
            .any(|(n, _)| n == "PutFoundationModelEntitlement"),
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .filter(|(n, _)| n == "GetFoundationModelAvailability")
        .all(|(_, s)| s.is_none()));
    assert!(
        integration_tests::sessions_revoked(&d.clients.iam, &role).await,
        "the stolen role's sessions are revoked"
    );
}
