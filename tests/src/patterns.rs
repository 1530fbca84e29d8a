//! Which of template.yaml's EventBridge rules an event reaches. The rules come resolved from
//! `tests/event_patterns.py` (cfn-lint's reading of the template, intrinsic functions applied);
//! each match is the events service's `TestEventPattern`, which moto lacks and
//! `tests/moto_server.py` serves with moto's own event-pattern engine.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::{harness_call, repo_root, BoxError};

/// One EventBridge rule of the template and the function it invokes.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `<logical id>/<event>` for a SAM event, the logical id for an `AWS::Events::Rule`.
    pub rule: String,
    /// The code its target runs: `quarantine-credentials`, `isolate-instance` or
    /// `trace-credentials` (a rule with two targets is two of these).
    pub function: String,
    /// Its target's logical id: `CloudTrailCallsFunction` runs quarantine-credentials too.
    pub resource: String,
    /// `ENABLED`, or `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`: only such a rule receives
    /// read-only management events (`readOnly: true`: InvokeModel, GetCallerIdentity).
    pub state: String,
    pub pattern: String,
}

const ALL_MANAGEMENT_EVENTS: &str = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS";

/// The template's rules with `parameters` (template parameter names) over the defaults; the
/// rules whose Condition is false are left out. Read once per set of parameters.
pub fn rules(parameters: &Value) -> Result<Vec<Rule>, BoxError> {
    static CACHE: Mutex<Vec<(String, Vec<Rule>)>> = Mutex::new(Vec::new());
    let key = parameters.to_string();
    let mut cache = CACHE.lock().map_err(|_| "rule cache poisoned")?;
    if let Some((_, rules)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(rules.clone());
    }
    let python = std::env::var("CORDON_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".venv/bin/python"));
    let out = Command::new(&python)
        .arg(repo_root().join("tests/event_patterns.py"))
        .arg(repo_root().join("template.yaml"))
        .arg(&key)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "event_patterns.py: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    let rules: Vec<Rule> = doc["rules"]
        .as_array()
        .ok_or("no rules")?
        .iter()
        .map(|r| Rule {
            rule: r["rule"].as_str().unwrap_or_default().to_owned(),
            function: r["function"].as_str().unwrap_or_default().to_owned(),
            resource: r["resource"].as_str().unwrap_or_default().to_owned(),
            state: r["state"].as_str().unwrap_or_default().to_owned(),
            pattern: r["pattern"].to_string(),
        })
        .collect();
    cache.push((key, rules.clone()));
    Ok(rules)
}

/// `events:TestEventPattern` against the emulator at `endpoint`.
pub fn test_event_pattern(endpoint: &str, pattern: &str, event: &Value) -> Result<bool, BoxError> {
    let body = json!({"EventPattern": pattern, "Event": event.to_string()});
    let answer = harness_call(endpoint, "AWSEvents.TestEventPattern", &body)?;
    let result: Value = serde_json::from_str(&answer)?;
    result["Result"].as_bool().ok_or_else(|| "no Result".into())
}

/// The functions `event` reaches, each with the rule that delivers it.
pub fn reaches(
    endpoint: &str,
    rules: &[Rule],
    event: &Value,
) -> Result<HashMap<String, String>, BoxError> {
    let read_only = event["detail"]["readOnly"] == Value::Bool(true)
        && event["detail-type"] == "AWS API Call via CloudTrail";
    let mut reached = HashMap::new();
    for r in rules {
        if read_only && r.state != ALL_MANAGEMENT_EVENTS {
            continue;
        }
        if test_event_pattern(endpoint, &r.pattern, event)? {
            reached
                .entry(r.function.clone())
                .or_insert_with(|| r.rule.clone());
        }
    }
    Ok(reached)
}
