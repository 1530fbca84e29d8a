//! template.yaml and the code stay in step: each function's role lists exactly the IAM actions
//! its playbook declares, and no wildcard. And the deployment guards itself: every failure
//! alarms, every rule has a dead-letter queue, only cordon writes the ledger, and a permissions
//! boundary keeps cordon from changing cordon.

use std::collections::BTreeSet;

use cordon::Function;
use integration_tests::repo_root;
use yaml_rust2::{Yaml, YamlLoader};

/// Every function of the template, by logical id.
const FUNCTIONS: [(&str, Function); 3] = [
    (
        "QuarantineCredentialsFunction",
        Function::QuarantineCredentials,
    ),
    ("IsolateInstanceFunction", Function::IsolateInstance),
    ("TraceCredentialsFunction", Function::TraceCredentials),
];

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

/// One EventBridge rule of the template, SAM event or plain resource.
struct Rule {
    place: String,
    name: Yaml,
    pattern: Yaml,
    /// Where its deliveries are configured: the SAM event's properties, or each target.
    deliveries: Vec<Yaml>,
}

fn event_rules(t: &Yaml) -> Vec<Rule> {
    let mut rules = Vec::new();
    for (id, resource) in t["Resources"].as_hash().unwrap() {
        let props = &resource["Properties"];
        for (event, e) in props["Events"].as_hash().into_iter().flatten() {
            if e["Type"].as_str() == Some("EventBridgeRule") {
                let p = &e["Properties"];
                rules.push(Rule {
                    place: format!("{id:?}/{event:?}"),
                    name: p["RuleName"].clone(),
                    pattern: p["Pattern"].clone(),
                    deliveries: vec![p.clone()],
                });
            }
        }
        if resource["Type"].as_str() == Some("AWS::Events::Rule") {
            rules.push(Rule {
                place: format!("{id:?}"),
                name: props["Name"].clone(),
                pattern: props["EventPattern"].clone(),
                deliveries: props["Targets"].as_vec().cloned().unwrap_or_default(),
            });
        }
    }
    rules
}

/// The rules' names as the template writes them (`${AWS::StackName}-…`).
fn rule_names(t: &Yaml) -> Vec<String> {
    event_rules(t)
        .iter()
        .map(|r| r.name.as_str().unwrap().to_owned())
        .collect()
}

fn resources_of<'a>(t: &'a Yaml, kind: &str) -> Vec<(&'a str, &'a Yaml)> {
    t["Resources"]
        .as_hash()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().unwrap(), r))
        .collect()
}

/// The statements of a policy document.
fn statements(document: &Yaml) -> Vec<Yaml> {
    document["Statement"].as_vec().cloned().unwrap_or_default()
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
    for (resource, function) in FUNCTIONS {
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
    let pattern = &t["Resources"]["QuarantineCredentialsFunctionCloudTrailCall"]["Properties"]
        ["EventPattern"]["detail"];
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
    let prefixes: Vec<&str> = calls
        .iter()
        .filter_map(|(_, n)| n.strip_suffix('*'))
        .collect();
    // A name that one of the pattern's prefixes already matches (SNS's AddPermission, Lambda's
    // AddPermission20150331v2) is not listed again.
    let want_names: BTreeSet<String> = calls
        .iter()
        .map(|(_, n)| n.to_string())
        .filter(|n| n.ends_with('*') || !prefixes.iter().any(|p| n.starts_with(p)))
        .collect();
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
    assert!(rules.len() >= 5, "{}", rules.len());
    for Rule { place, name, .. } in &rules {
        assert!(
            name.as_str()
                .is_some_and(|n| n.starts_with("${AWS::StackName}-")),
            "{place} is not named after the stack: {name:?}"
        );
    }
    for (resource, name) in [
        ("QuarantineCredentialsFunction", "quarantine-credentials"),
        ("CloudTrailCallsFunction", "cloudtrail-calls"),
        ("IsolateInstanceFunction", "isolate-instance"),
        ("TraceCredentialsFunction", "trace-credentials"),
    ] {
        let name = format!("${{AWS::StackName}}-{name}");
        assert_eq!(
            t["Resources"][resource]["Properties"]["FunctionName"].as_str(),
            Some(name.as_str())
        );
    }
    let vars = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(vars["CORDON_PREFIX"].as_str(), Some("AWS::StackName"));
    let roles = format!("{:?}", vars["CORDON_ROLES"]);
    for role in [
        "QuarantineCredentialsFunctionRole",
        "IsolateInstanceFunctionRole",
        "TraceCredentialsFunctionRole",
    ] {
        assert!(roles.contains(role), "CORDON_ROLES lacks {role}: {roles}");
    }
}

/// Every EventBridge rule accepts only sources AWS publishes: `events:PutEvents` refuses the
/// `aws.` prefix to callers, so a forged record cannot aim cordon at a principal.
#[test]
fn every_rule_accepts_only_aws_sources() {
    let t = template();
    for Rule {
        place: rule,
        pattern,
        ..
    } in &event_rules(&t)
    {
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

/// Every rule that invokes quarantine-credentials invokes trace-credentials too (a second target
/// of the same rule, so tracing never delays containment), and each target may be invoked.
#[test]
fn every_rule_feeding_quarantine_also_feeds_the_trace() {
    let t = template();
    let resources = t["Resources"].as_hash().unwrap();
    let mut rules = 0;
    for (id, resource) in resources {
        let props = &resource["Properties"];
        if resource["Type"].as_str() != Some("AWS::Events::Rule") {
            continue;
        }
        let targets: Vec<String> = props["Targets"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|t| format!("{:?}", t["Arn"]))
            .collect();
        // CloudTrailCallsFunction runs quarantine-credentials' code on the CloudTrail rules.
        let containing = ["QuarantineCredentialsFunction", "CloudTrailCallsFunction"];
        let Some(function) = containing
            .into_iter()
            .find(|f| targets.iter().any(|a| a.contains(&format!("{f}.Arn"))))
        else {
            continue;
        };
        rules += 1;
        assert!(
            targets
                .iter()
                .any(|a| a.contains("TraceCredentialsFunction")),
            "{id:?} does not invoke trace-credentials: {targets:?}"
        );
        let id = id.as_str().unwrap();
        for function in [function, "TraceCredentialsFunction"] {
            let granted = resources.values().any(|r| {
                r["Type"].as_str() == Some("AWS::Lambda::Permission")
                    && format!("{:?}", r["Properties"]["FunctionName"]).contains(function)
                    && format!("{:?}", r["Properties"]["SourceArn"]).contains(id)
            });
            assert!(granted, "{id} may not invoke {function}");
        }
    }
    assert_eq!(
        rules, 5,
        "AccessKeyFinding, CloudTrailCall, RootActivity, HealthCredentialRisk, CanaryKeyRule"
    );
    assert!(
        t["Resources"]["QuarantineCredentialsFunction"]["Properties"]["Events"].is_badvalue(),
        "a SAM event's rule has one target: quarantine-credentials' rules are plain rules"
    );
    let timeout = t["Resources"]["TraceCredentialsFunction"]["Properties"]["Timeout"].as_i64();
    assert_eq!(timeout, Some(900), "the trace may use Lambda's 15 minutes");
}

/// Never silent: whatever fails without a notification of its own reaches the alert topic. Each
/// function's errors and throttles, each rule's failed invocations, the dead-letter queue's depth.
#[test]
fn every_failure_alarms_to_the_alert_topic() {
    let t = template();
    let alarms = resources_of(&t, "AWS::CloudWatch::Alarm");
    let watched: BTreeSet<(String, String, String)> = alarms
        .iter()
        .map(|(id, a)| {
            let p = &a["Properties"];
            assert_eq!(strings(&p["AlarmActions"]), vec!["AlertTopic"], "{id}");
            assert_eq!(p["TreatMissingData"].as_str(), Some("notBreaching"), "{id}");
            assert_eq!(p["Threshold"].as_i64(), Some(1), "{id}");
            let name = p["AlarmName"].as_str().unwrap();
            assert!(name.starts_with("${AWS::StackName}-"), "{id}: {name}");
            let dimensions = p["Dimensions"].as_vec().unwrap();
            assert_eq!(dimensions.len(), 1, "{id}");
            (
                p["MetricName"].as_str().unwrap().to_owned(),
                dimensions[0]["Name"].as_str().unwrap().to_owned(),
                dimensions[0]["Value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut wanted = vec![(
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        "DeadLetterQueue.QueueName".to_owned(),
    )];
    for function in [
        "QuarantineCredentialsFunction",
        "CloudTrailCallsFunction",
        "IsolateInstanceFunction",
        "TraceCredentialsFunction",
    ] {
        wanted.push(("Errors", "FunctionName", function.to_owned()));
        wanted.push(("Throttles", "FunctionName", function.to_owned()));
    }
    for rule in rule_names(&t) {
        wanted.push(("FailedInvocations", "RuleName", rule));
    }
    for (metric, dimension, value) in &wanted {
        let want = (metric.to_string(), dimension.to_string(), value.clone());
        assert!(watched.contains(&want), "no alarm on {want:?}");
    }
    assert_eq!(alarms.len(), wanted.len(), "{watched:?}");
    // CloudWatch cannot publish to a topic under the AWS-managed SNS key: the alarms would be
    // dropped without a word.
    let key = &t["Resources"]["AlertTopic"]["Properties"]["KmsMasterKeyId"];
    assert!(!format!("{key:?}").contains("alias/aws/sns"), "{key:?}");
}

/// An event EventBridge cannot hand to its function is retried, then kept in the dead-letter
/// queue (which the queue's policy lets exactly cordon's rules write), never dropped.
#[test]
fn every_rule_retries_then_keeps_what_it_could_not_deliver() {
    let t = template();
    for rule in event_rules(&t) {
        assert!(!rule.deliveries.is_empty(), "{}", rule.place);
        for d in &rule.deliveries {
            assert_eq!(
                d["DeadLetterConfig"]["Arn"].as_str(),
                Some("DeadLetterQueue.Arn"),
                "{}",
                rule.place
            );
            let retry = &d["RetryPolicy"];
            assert!(
                retry["MaximumRetryAttempts"].as_i64() > Some(0),
                "{}",
                rule.place
            );
            assert!(
                retry["MaximumEventAgeInSeconds"].as_i64() >= Some(3600),
                "{}",
                rule.place
            );
        }
    }
    let policy = &t["Resources"]["DeadLetterQueuePolicy"]["Properties"];
    assert_eq!(strings(&policy["Queues"]), vec!["DeadLetterQueue"]);
    let statements = statements(&policy["PolicyDocument"]);
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(s["Effect"].as_str(), Some("Allow"));
    assert_eq!(
        s["Principal"]["Service"].as_str(),
        Some("events.amazonaws.com")
    );
    assert_eq!(strings(&s["Action"]), vec!["sqs:SendMessage"]);
    let sources: BTreeSet<String> = strings(&s["Condition"]["ArnEquals"]["aws:SourceArn"])
        .into_iter()
        .collect();
    let rules: BTreeSet<String> = rule_names(&t)
        .iter()
        .map(|name| {
            format!(
                "arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{name}"
            )
        })
        .collect();
    assert_eq!(sources, rules, "exactly cordon's rules may send");
}

/// Nobody but cordon writes the ledger: an attacker with a stolen admin key cannot erase an
/// incident, reset the rate limit's count, expire items with a TTL, lift deletion protection or
/// replace the table's policy, except through a CloudFormation stack update.
#[test]
fn only_cordon_writes_the_ledger() {
    let t = template();
    let table = &t["Resources"]["LedgerTable"];
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"));
    let props = &table["Properties"];
    assert_eq!(props["DeletionProtectionEnabled"].as_bool(), Some(true));
    let statements = statements(&props["ResourcePolicy"]["PolicyDocument"]);
    let denying = |action: &str| -> Vec<&Yaml> {
        statements
            .iter()
            .filter(|s| {
                s["Effect"].as_str() == Some("Deny")
                    && s["Principal"].as_str() == Some("*")
                    && s["Resource"].as_str() == Some("*")
                    && strings(&s["Action"]).iter().any(|a| a == action)
            })
            .collect()
    };
    for write in [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    ] {
        let deny = denying(write);
        assert_eq!(deny.len(), 1, "{write}");
        // Exactly the functions' roles, by ARN: no pattern a name could match, no tag anyone can set.
        let condition = deny[0]["Condition"].as_hash().unwrap();
        assert_eq!(condition.len(), 1, "{write}: {condition:?}");
        // `!Split [",", !Join [",", [roles..., PeerCordonRoles]]]`: the other regions'
        // deployments share the ledger.
        let split = &deny[0]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"];
        let except: BTreeSet<String> = strings(&split[1][1]).into_iter().collect();
        assert_eq!(
            except,
            FUNCTIONS
                .iter()
                .map(|(id, _)| format!("{id}Role.Arn"))
                .chain(["PeerCordonRoles".to_owned()])
                .collect::<BTreeSet<_>>(),
            "{write}"
        );
    }
    for change in [
        "dynamodb:DeleteTable",
        "dynamodb:UpdateTable",
        "dynamodb:UpdateTimeToLive",
        "dynamodb:UpdateContinuousBackups",
        "dynamodb:PutResourcePolicy",
        "dynamodb:DeleteResourcePolicy",
    ] {
        let deny = denying(change);
        assert_eq!(deny.len(), 1, "{change}");
        assert_eq!(
            strings(&deny[0]["Condition"]["ForAllValues:StringNotEquals"]["aws:CalledVia"]),
            vec!["cloudformation.amazonaws.com"],
            "{change}"
        );
    }
    // The roles name the table by the name CloudFormation generates (a reference back would be a
    // cycle), so the table must keep a generated name.
    assert!(props["TableName"].is_badvalue());
    for (function, _) in FUNCTIONS {
        let record = t["Resources"][function]["Properties"]["Policies"][0]["Statement"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|s| s["Sid"].as_str() == Some("Record"))
            .cloned()
            .unwrap();
        // `!If [HasSharedLedger, !Ref SharedLedgerTableArn, !Sub <this stack's ledger>]`.
        assert_eq!(
            strings(&record["Resource"]),
            [
                "HasSharedLedger",
                "SharedLedgerTableArn",
                "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${AWS::StackName}-LedgerTable-*"
            ],
            "{function}"
        );
    }
}

/// Deny statements of the boundary that cover `action` on a resource matching `resource`.
fn boundary_denies(boundary: &[Yaml], action: &str, resource: &str) -> bool {
    let service = format!("{}:*", action.split(':').next().unwrap_or_default());
    boundary.iter().any(|s| {
        s["Effect"].as_str() == Some("Deny")
            && strings(&s["Action"])
                .iter()
                .any(|a| a == action || *a == service)
            && strings(&s["Resource"]).iter().any(|r| r == resource)
    })
}

/// Least privilege that holds against a bug: whatever a role's policy grants, every role carries a
/// boundary that keeps cordon from changing cordon (its roles, functions, rules, topic, queue,
/// ledger, alarms, logs and the boundary itself), and caps them to the services they use.
#[test]
fn a_boundary_keeps_cordon_from_changing_cordon() {
    let t = template();
    assert_eq!(
        t["Globals"]["Function"]["PermissionsBoundary"].as_str(),
        Some("PermissionsBoundary")
    );
    for (function, _) in FUNCTIONS {
        let props = &t["Resources"][function]["Properties"];
        assert!(
            props["PermissionsBoundary"].is_badvalue(),
            "{function} overrides it"
        );
        assert!(
            props["Role"].is_badvalue(),
            "{function}: SAM's role carries the boundary"
        );
    }
    // cloudtrail-calls runs as quarantine-credentials, in that role.
    let calls = &t["Resources"]["CloudTrailCallsFunction"]["Properties"];
    assert_eq!(
        calls["Role"].as_str(),
        Some("QuarantineCredentialsFunctionRole.Arn")
    );
    assert!(calls["Policies"].is_badvalue());
    let policy = &t["Resources"]["PermissionsBoundary"];
    assert_eq!(policy["Type"].as_str(), Some("AWS::IAM::ManagedPolicy"));
    let name = policy["Properties"]["ManagedPolicyName"].as_str().unwrap();
    let own_arn = format!("arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:policy/{name}");
    let boundary = statements(&policy["Properties"]["PolicyDocument"]);

    // cordon's roles are those carrying this boundary.
    for write in [
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:DeleteRolePermissionsBoundary",
    ] {
        assert!(
            boundary.iter().any(|s| s["Effect"].as_str() == Some("Deny")
                && strings(&s["Action"]).iter().any(|a| a == write)
                && s["Resource"].as_str() == Some("*")
                && s["Condition"]["StringEquals"]["iam:PermissionsBoundary"].as_str()
                    == Some(own_arn.as_str())),
            "{write} on cordon's roles"
        );
    }
    let lambda = |f: &str| {
        format!("arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:${{AWS::StackName}}-{f}")
    };
    let mut guarded = vec![
        ("iam:CreatePolicyVersion", own_arn.clone()),
        ("iam:DeletePolicy", own_arn.clone()),
        ("iam:UpdateAssumeRolePolicy", "*".to_owned()),
        ("iam:CreateAccessKey", "*".to_owned()),
        ("iam:PassRole", "*".to_owned()),
        ("lambda:UpdateFunctionCode", lambda("quarantine-credentials")),
        ("lambda:UpdateFunctionConfiguration", lambda("isolate-instance")),
        ("lambda:DeleteFunction", lambda("quarantine-credentials")),
        ("lambda:PutFunctionConcurrency", lambda("isolate-instance")),
        ("lambda:UpdateFunctionCode", lambda("trace-credentials")),
        ("lambda:UpdateFunctionCode", lambda("cloudtrail-calls")),
        ("lambda:PutFunctionConcurrency", lambda("cloudtrail-calls")),
        ("sns:SetTopicAttributes", "AlertTopic".to_owned()),
        ("sns:DeleteTopic", "AlertTopic".to_owned()),
        ("sns:Unsubscribe", "${AlertTopic}:*".to_owned()),
        ("sqs:PurgeQueue", "DeadLetterQueue.Arn".to_owned()),
        ("sqs:DeleteMessage", "DeadLetterQueue.Arn".to_owned()),
        ("sqs:SetQueueAttributes", "DeadLetterQueue.Arn".to_owned()),
        (
            "cloudwatch:DeleteAlarms",
            "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-*".to_owned(),
        ),
        (
            "logs:DeleteLogGroup",
            "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${AWS::StackName}-*".to_owned(),
        ),
    ];
    let ledger = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${AWS::StackName}-LedgerTable-*";
    for action in [
        "dynamodb:DeleteTable",
        "dynamodb:UpdateTable",
        "dynamodb:UpdateTimeToLive",
        "dynamodb:PutResourcePolicy",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    ] {
        guarded.push((action, ledger.to_owned()));
    }
    for rule in rule_names(&t) {
        for action in [
            "events:DisableRule",
            "events:PutTargets",
            "events:DeleteRule",
        ] {
            guarded.push((
                action,
                format!("arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{rule}"),
            ));
        }
    }
    for (action, resource) in &guarded {
        assert!(
            boundary_denies(&boundary, action, resource),
            "{action} on {resource} is not denied"
        );
    }
    // The functions' alarms and log groups are the ones those patterns name.
    for (id, alarm) in resources_of(&t, "AWS::CloudWatch::Alarm") {
        let name = alarm["Properties"]["AlarmName"].as_str().unwrap();
        assert!(name.starts_with("${AWS::StackName}-"), "{id}");
    }
    for (id, group) in resources_of(&t, "AWS::Logs::LogGroup") {
        let name = group["Properties"]["LogGroupName"].as_str().unwrap();
        assert!(name.starts_with("/aws/lambda/${AWS::StackName}-"), "{id}");
    }

    // What the code calls still gets through: no deny names it, and the ceiling covers its
    // service (and Lambda's own logs, traces and dead letters).
    let ceiling: Vec<String> = boundary
        .iter()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
        .flat_map(|s| strings(&s["Action"]))
        .collect();
    // Unconditional denies everywhere, or on the stores the code writes.
    let stores = [
        "*",
        ledger,
        "AlertTopic",
        "DeadLetterQueue.Arn",
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${AWS::StackName}-*",
    ];
    let denied: BTreeSet<String> = boundary
        .iter()
        .filter(|s| {
            s["Effect"].as_str() == Some("Deny")
                && s["Condition"].is_badvalue()
                && strings(&s["Resource"])
                    .iter()
                    .any(|r| stores.contains(&r.as_str()))
        })
        .flat_map(|s| strings(&s["Action"]))
        .collect();
    let used = FUNCTIONS.iter().flat_map(|(_, f)| f.permissions()).chain([
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "sqs:SendMessage",
    ]);
    for action in used {
        let service = format!("{}:*", action.split(':').next().unwrap_or_default());
        assert!(
            ceiling.iter().any(|c| c == action || *c == service),
            "{action} is above the ceiling"
        );
        assert!(!denied.contains(action), "{action} is used and denied");
    }
}

/// The optional customer-managed key reaches every store: ledger, topic, queue, logs and the
/// functions' environment.
#[test]
fn the_optional_key_reaches_every_store() {
    let t = template();
    let key = "[String(\"HasKmsKey\"), String(\"KmsKeyArn\"), String(\"AWS::NoValue\")]";
    let r = &t["Resources"];
    for (place, value) in [
        ("Globals", &t["Globals"]["Function"]["KmsKeyArn"]),
        (
            "LedgerTable",
            &r["LedgerTable"]["Properties"]["SSESpecification"]["KMSMasterKeyId"],
        ),
        (
            "AlertTopic",
            &r["AlertTopic"]["Properties"]["KmsMasterKeyId"],
        ),
        (
            "DeadLetterQueue",
            &r["DeadLetterQueue"]["Properties"]["KmsMasterKeyId"],
        ),
        (
            "QuarantineCredentialsLogGroup",
            &r["QuarantineCredentialsLogGroup"]["Properties"]["KmsKeyId"],
        ),
        (
            "IsolateInstanceLogGroup",
            &r["IsolateInstanceLogGroup"]["Properties"]["KmsKeyId"],
        ),
        (
            "TraceCredentialsLogGroup",
            &r["TraceCredentialsLogGroup"]["Properties"]["KmsKeyId"],
        ),
        (
            "CloudTrailCallsLogGroup",
            &r["CloudTrailCallsLogGroup"]["Properties"]["KmsKeyId"],
        ),
    ] {
        let found = format!("{:?}", value.as_vec());
        assert!(found.contains(key), "{place}: {found}");
    }
}

/// Issue 14 item 11: no flood of API calls takes the concurrency GuardDuty's findings need.
/// Every rule on CloudTrail calls invokes cloudtrail-calls (quarantine-credentials' code, in a
/// function of its own, with a reserved concurrency of its own); GuardDuty's findings (and AWS
/// Health's reports) go to functions no such rule invokes.
#[test]
fn guardduty_findings_keep_concurrency_no_call_can_take() {
    let t = template();
    let rules = integration_tests::patterns::rules(
        &serde_json::json!({"CanaryAccessKeys": "AKIAIOSFODNN7EXAMPLE"}),
    )
    .unwrap();
    let (mut findings, mut calls, mut others) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for r in &rules {
        let pattern: serde_json::Value = serde_json::from_str(&r.pattern).unwrap();
        let kinds = pattern["detail-type"].to_string();
        if pattern["source"] == serde_json::json!(["aws.guardduty"]) {
            findings.insert(r.resource.as_str());
        } else if kinds.contains("via CloudTrail") {
            calls.insert(r.resource.as_str());
        } else {
            others.insert(r.resource.as_str());
        }
    }
    // The trace answers the same calls, in a function (and concurrency) of its own.
    assert_eq!(
        calls,
        BTreeSet::from(["CloudTrailCallsFunction", "TraceCredentialsFunction"]),
        "{rules:#?}"
    );
    assert!(!others.contains("CloudTrailCallsFunction"), "{others:?}");
    assert_eq!(
        findings,
        BTreeSet::from([
            "IsolateInstanceFunction",
            "QuarantineCredentialsFunction",
            "TraceCredentialsFunction"
        ])
    );
    let props = |f: &str| t["Resources"][f]["Properties"].clone();
    assert_eq!(
        props("CloudTrailCallsFunction")["ReservedConcurrentExecutions"].as_str(),
        Some("CloudTrailReservedConcurrency")
    );
    assert_eq!(
        props("CloudTrailCallsFunction")["CodeUri"].as_str(),
        Some("target/lambda/quarantine-credentials/")
    );
    assert_eq!(
        t["Globals"]["Function"]["ReservedConcurrentExecutions"].as_str(),
        Some("ReservedConcurrency")
    );
    for f in ["QuarantineCredentialsFunction", "IsolateInstanceFunction"] {
        assert!(
            props(f)["ReservedConcurrentExecutions"].is_badvalue(),
            "{f}"
        );
    }
}
