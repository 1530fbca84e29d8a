//! What template.yaml's EventBridge rules deliver, and to which function: every sample event in
//! `events/` and the third-party events of `tests/corpus`, matched by the events service's
//! TestEventPattern (moto's pattern engine, served by `tests/moto_server.py`) against the rules
//! as `tests/event_patterns.py` resolves them from the template.

use std::collections::{BTreeMap, HashMap};

use cordon::events::cloudtrail::records;
use cordon::rules::{evaluate, RuleSettings};
use integration_tests::patterns::{reaches, rules, Rule};
use integration_tests::{repo_root, ACCOUNT};
use serde_json::{json, Value};

use crate::moto;

const QUARANTINE: &str = "quarantine-credentials";
const ISOLATE: &str = "isolate-instance";
/// The canary key of `events/cloudtrail-canary-key.json`, as the template's parameter.
const CANARY: &str = "AKIAIOSFODNN7CANARY1";

fn template_rules() -> Vec<Rule> {
    rules(&json!({"CanaryAccessKeys": CANARY})).expect("template rules")
}

fn functions(rules: &[Rule], event: &Value) -> Vec<String> {
    let mut reached: Vec<String> = reaches(&moto().endpoint, rules, event)
        .expect("TestEventPattern")
        .into_keys()
        .collect();
    reached.sort();
    reached
}

/// A CloudTrail record as EventBridge wraps it.
fn envelope(record: &Value) -> Value {
    let service = record["eventSource"]
        .as_str()
        .unwrap_or("")
        .trim_end_matches(".amazonaws.com");
    let detail_type = if record["eventType"] == "AwsConsoleSignIn" {
        "AWS Console Sign In via CloudTrail"
    } else {
        "AWS API Call via CloudTrail"
    };
    json!({"version": "0", "id": "e", "detail-type": detail_type, "source": format!("aws.{service}"),
           "account": ACCOUNT, "region": "us-east-1", "time": "2026-11-22T20:00:00Z",
           "resources": [], "detail": record})
}

/// Each sample event reaches exactly the function it is a sample for; the same event from any
/// source but AWS reaches nothing.
#[test]
fn every_sample_event_reaches_its_function_and_a_forgery_none() {
    let rules = template_rules();
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(repo_root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "malformed.json" {
            continue; // not an event EventBridge could deliver: the bad-input tests use it
        }
        let mut event: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let want: &[&str] = match name.as_str() {
            "guardduty-ec2.json" => &[ISOLATE],
            // The stolen role's sessions are revoked, and the instance it was taken from isolated.
            "guardduty-instance-credential-exfiltration.json" => &[ISOLATE, QUARANTINE],
            // Its instances isolated, its IAM actors contained.
            "guardduty-attack-sequence-ec2.json" => &[ISOLATE, QUARANTINE],
            _ => &[QUARANTINE],
        };
        let got = functions(&rules, &event);
        assert_eq!(got, want, "{name}");
        for forged in ["custom.guardduty", "attacker.aws", "guardduty"] {
            event["source"] = forged.into();
            assert!(functions(&rules, &event).is_empty(), "{name} from {forged}");
        }
        seen.insert(name, got);
    }
    println!("{seen:#?}");
    assert!(seen.len() >= 25, "{seen:?}");
}

/// Every third-party GuardDuty finding that names an access key (or a bucket, which S3
/// Protection findings reach with a key, or an attack sequence) reaches quarantine-credentials,
/// every one that names an instance (or an EC2 sequence) reaches isolate-instance.
#[test]
fn corpus_findings_reach_the_function_for_their_resource() {
    let rules = template_rules();
    for file in crate::corpus::corpus("guardduty") {
        let mut doc = crate::corpus::load(&file);
        if doc.get("detail-type").is_none() {
            doc = json!({"version": "0", "id": "e", "detail-type": "GuardDuty Finding",
                         "source": "aws.guardduty", "account": ACCOUNT, "region": "us-east-1",
                         "time": "2026-11-22T20:00:00Z", "resources": [], "detail": doc});
        }
        let instance_sequence = doc["detail"]["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("AttackSequence:EC2/"));
        let want: Vec<&str> = match doc["detail"]["resource"]["resourceType"].as_str() {
            Some("AttackSequence") if instance_sequence => vec![ISOLATE, QUARANTINE],
            Some("AccessKey" | "S3Bucket" | "AttackSequence") => vec![QUARANTINE],
            Some("Instance") => vec![ISOLATE],
            _ => vec![],
        };
        let got = functions(&rules, &doc);
        println!("{}: {got:?}", file.display());
        assert_eq!(got, want, "{}", file.display());
    }
}

/// Every third-party CloudTrail record a detection rule fires on reaches quarantine-credentials:
/// no rule is starved by the template's patterns or rule states. (Records no rule fires on with
/// the default settings may still be delivered: some rules fire only as configured.)
#[test]
fn every_record_a_rule_fires_on_is_delivered() {
    let rules = template_rules();
    let settings = RuleSettings::default();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for sub in ["cloudtrail", "datasets"] {
        for file in crate::corpus::corpus(sub) {
            for raw in raw_records(crate::corpus::load(&file)) {
                let Ok(record) = serde_json::from_value(raw.clone()) else {
                    continue;
                };
                let fires = evaluate(&record, &settings).is_some();
                if !fires && sub == "datasets" {
                    continue; // 2,900 routine records: the exact-list test covers them
                }
                let got = functions(&rules, &envelope(&raw));
                let name = format!("{}:{}", raw["eventSource"], raw["eventName"]);
                if fires {
                    assert_eq!(got, [QUARANTINE], "{} {name}", file.display());
                    *counts.entry("delivered, a rule fires").or_default() += 1;
                } else {
                    assert!(
                        !got.iter().any(|f| f == ISOLATE),
                        "{} {name}",
                        file.display()
                    );
                    let delivered = if got.is_empty() {
                        "not delivered"
                    } else {
                        "delivered"
                    };
                    *counts.entry(delivered).or_default() += 1;
                }
            }
        }
    }
    println!("{counts:?}");
    assert!(counts["delivered, a rule fires"] > 0);
}

/// The records of a document as JSON, in any of the forms `records` reads.
fn raw_records(doc: Value) -> Vec<Value> {
    let parsed = records(doc.clone()).len();
    let raw: Vec<Value> = match doc {
        Value::Array(items) => items.into_iter().flat_map(raw_records).collect(),
        Value::Object(mut o) => match o.remove("Records") {
            Some(Value::Array(items)) => items,
            _ => match o.remove("detail") {
                Some(detail) if o.contains_key("detail-type") => vec![detail],
                other => {
                    if let Some(d) = other {
                        o.insert("detail".into(), d);
                    }
                    vec![Value::Object(o)]
                }
            },
        },
        _ => Vec::new(),
    };
    assert_eq!(raw.len(), parsed, "every record read");
    raw
}
