//! template.yaml and the code stay in step: each function's role lists exactly the IAM actions
//! its playbook declares, and no wildcard.

use std::collections::BTreeSet;

use cordon::Function;
use integration_tests::repo_root;
use yaml_rust2::{Yaml, YamlLoader};

pub(crate) fn template() -> Yaml {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

pub(crate) fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    }
}

/// Every EventBridge rule in the template, SAM event or plain resource: (where, name, pattern).
fn event_rules(t: &Yaml) -> Vec<(String, Yaml, Yaml)> {
    let mut rules = Vec::new();
    for (id, resource) in t["Resources"].as_hash().unwrap() {
        let props = &resource["Properties"];
        for (event, e) in props["Events"].as_hash().into_iter().flatten() {
            if e["Type"].as_str() == Some("EventBridgeRule") {
                let p = &e["Properties"];
                rules.push((
                    format!("{id:?}/{event:?}"),
                    p["RuleName"].clone(),
                    p["Pattern"].clone(),
                ));
            }
        }
        if resource["Type"].as_str() == Some("AWS::Events::Rule") {
            rules.push((
                format!("{id:?}"),
                props["Name"].clone(),
                props["EventPattern"].clone(),
            ));
        }
    }
    rules
}

fn role_actions(t: &Yaml, resource: &str) -> BTreeSet<String> {
    let policies = &t["Resources"][resource]["Properties"]["Policies"];
    policies
        .as_vec()
        .expect("inline policies")
        .iter()
        .flat_map(|p| p["Statement"].as_vec().cloned().unwrap_or_default())
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
        .flat_map(|s| strings(&s["Action"]))
        .collect()
}

#[test]
fn each_role_lists_exactly_what_its_code_calls() {
    let t = template();
    for (resource, function) in [
        (
            "QuarantineCredentialsFunction",
            Function::QuarantineCredentials,
        ),
        ("IsolateInstanceFunction", Function::IsolateInstance),
    ] {
        let declared: BTreeSet<String> = function
            .permissions()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let granted = role_actions(&t, resource);
        assert_eq!(
            granted,
            declared,
            "{resource}: granted but not used {:?}; used but not granted {:?}",
            granted.difference(&declared).collect::<Vec<_>>(),
            declared.difference(&granted).collect::<Vec<_>>()
        );
        assert!(
            granted.iter().all(|a| !a.contains('*')),
            "{resource} has a wildcard action"
        );
        let props = &t["Resources"][resource]["Properties"];
        assert_eq!(
            props["CodeUri"].as_str(),
            Some(format!("target/lambda/{}/", function.name()).as_str())
        );
    }
}

#[test]
fn functions_share_the_runtime_settings_the_issue_asks_for() {
    let t = template();
    let g = &t["Globals"]["Function"];
    assert_eq!(g["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(g["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(strings(&g["Architectures"]), vec!["arm64"]);
    assert_eq!(g["Tracing"].as_str(), Some("Active"));
    // Every configuration variable the code reads is set from a parameter.
    let vars = &g["Environment"]["Variables"];
    for v in [
        "ALERT_TOPIC_ARN",
        "LEDGER_TABLE",
        "DRY_RUN",
        "PROTECTED_PRINCIPALS",
        "DEACTIVATE_ALL_KEYS",
        "QUARANTINE_ROLES",
        "RESPOND_TO_SAMPLE_FINDINGS",
        "STOP_INSTANCE",
        "RATE_LIMIT",
        "RATE_WINDOW_SECONDS",
    ] {
        assert!(!vars[v].is_badvalue(), "{v} missing from the template");
    }
}

/// The CloudTrail rule lists exactly the sources and names the detection rules look at.
#[test]
fn cloudtrail_pattern_matches_the_rules() {
    let t = template();
    let pattern = &t["Resources"]["QuarantineCredentialsFunction"]["Properties"]["Events"]
        ["CloudTrailCall"]["Properties"]["Pattern"]["detail"];
    let sources: BTreeSet<String> = strings(&pattern["eventSource"]).into_iter().collect();
    let names: BTreeSet<String> = pattern["eventName"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|n| match n {
            Yaml::String(s) => s.clone(),
            other => format!("{}*", other["prefix"].as_str().unwrap()),
        })
        .collect();
    let calls = cordon::rules::watched_calls();
    let want_sources: BTreeSet<String> = calls.iter().map(|(s, _)| s.to_string()).collect();
    let want_names: BTreeSet<String> = calls.iter().map(|(_, n)| n.to_string()).collect();
    assert_eq!(sources, want_sources);
    assert_eq!(
        names,
        want_names,
        "extra: {:?}, missing: {:?}",
        names.difference(&want_names).collect::<Vec<_>>(),
        want_names.difference(&names).collect::<Vec<_>>()
    );
}

/// Every sample event is valid JSON the functions can be invoked with.
#[test]
fn every_sample_event_is_an_eventbridge_envelope() {
    for entry in std::fs::read_dir(repo_root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(doc["detail-type"].is_string(), "{}", path.display());
    }
}

/// Rule cordon-tampered knows cordon's functions and EventBridge rules by the stack's name, and
/// its roles by ARN: every rule is named `<stack>-…`, and the function is told the prefix and
/// both roles.
#[test]
fn cordon_names_what_the_tamper_rule_watches() {
    let t = template();
    let rules = event_rules(&t);
    assert!(rules.len() >= 5, "{rules:?}");
    for (rule, name, _) in &rules {
        assert!(
            name.as_str()
                .is_some_and(|n| n.starts_with("${AWS::StackName}-")),
            "{rule} is not named after the stack: {name:?}"
        );
    }
    let fn_props = &t["Resources"]["QuarantineCredentialsFunction"]["Properties"];
    for (resource, function) in [
        (
            "QuarantineCredentialsFunction",
            Function::QuarantineCredentials,
        ),
        ("IsolateInstanceFunction", Function::IsolateInstance),
    ] {
        let name = format!("${{AWS::StackName}}-{}", function.name());
        assert_eq!(
            t["Resources"][resource]["Properties"]["FunctionName"].as_str(),
            Some(name.as_str())
        );
    }
    let vars = &fn_props["Environment"]["Variables"];
    assert_eq!(vars["CORDON_PREFIX"].as_str(), Some("AWS::StackName"));
    let roles = format!("{:?}", vars["CORDON_ROLES"]);
    for role in [
        "QuarantineCredentialsFunctionRole",
        "IsolateInstanceFunctionRole",
    ] {
        assert!(roles.contains(role), "CORDON_ROLES lacks {role}: {roles}");
    }
}

/// Every EventBridge rule accepts only sources AWS publishes: `events:PutEvents` refuses the
/// `aws.` prefix to callers, so a forged record cannot aim cordon at a principal.
#[test]
fn every_rule_accepts_only_aws_sources() {
    let t = template();
    for (rule, _, pattern) in &event_rules(&t) {
        let sources = pattern["source"]
            .as_vec()
            .unwrap_or_else(|| panic!("{rule}: no source"));
        assert!(!sources.is_empty(), "{rule}");
        for s in sources {
            let trusted = match s {
                Yaml::String(s) => s.starts_with(cordon::events::AWS_SOURCE_PREFIX),
                other => other["prefix"].as_str() == Some(cordon::events::AWS_SOURCE_PREFIX),
            };
            assert!(trusted, "{rule} accepts source {s:?}");
        }
    }
}
