//! `make demo`: moto server, a seeded account, the sample events of `events/` invoked through the
//! real Lambda runtime path (`cargo lambda watch` + `cargo lambda invoke`), and a report of what
//! changed. Exits non-zero unless the account ends as expected.

use std::path::PathBuf;
use std::time::Instant;

use integration_tests::seed::{seed_workload, Workload};
use integration_tests::watch::Watch;
use integration_tests::{
    attr, key_statuses, ledger_items, repo_root, seed_role, seed_user, BoxError, Deployment, Moto,
    ACCOUNT,
};
use serde_json::Value;

struct Demo {
    watch: Watch,
    dir: PathBuf,
    failures: Vec<String>,
}

impl Demo {
    fn invoke(&self, function: &str, name: &str, event: &Value) -> Result<(bool, Value), BoxError> {
        let file = self.dir.join(name);
        std::fs::write(&file, serde_json::to_vec_pretty(event)?)?;
        self.watch.invoke(function, &file)
    }

    fn expect(&mut self, ok: bool, what: &str) {
        println!("  [{}] {what}", if ok { "ok" } else { "FAIL" });
        if !ok {
            self.failures.push(what.to_owned());
        }
    }
}

fn summary(report: &Value) -> String {
    let actions: Vec<String> = report["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{} {} -> {}{}",
                a["action"].as_str().unwrap_or("?"),
                a["target"].as_str().unwrap_or("?"),
                a["outcome"].as_str().unwrap_or("?"),
                a["reason"]
                    .as_str()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        "status={} delivery={}{}\n      {}",
        report["status"].as_str().unwrap_or("-"),
        report["delivery"].as_str().unwrap_or("-"),
        report["reason"]
            .as_str()
            .map(|r| format!(" reason=\"{r}\""))
            .unwrap_or_default(),
        if actions.is_empty() {
            "(no actions)".to_owned()
        } else {
            actions.join("\n      ")
        }
    )
}

async fn user_state(iam: &aws_sdk_iam::Client, user: &str) -> Result<String, BoxError> {
    let keys = key_statuses(iam, user).await?;
    let attached = iam
        .list_attached_user_policies()
        .user_name(user)
        .send()
        .await?;
    let inline = iam.list_user_policies().user_name(user).send().await?;
    let tags = iam.list_user_tags().user_name(user).send().await?;
    Ok(format!(
        "keys: {}\n      managed policies: {:?}\n      inline policies: {:?}\n      tags: {:?}",
        keys.iter()
            .map(|(k, s)| format!("{k}={s}"))
            .collect::<Vec<_>>()
            .join(", "),
        attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_name())
            .collect::<Vec<_>>(),
        inline.policy_names(),
        tags.tags()
            .iter()
            .map(|t| format!("{}={}", t.key(), t.value()))
            .collect::<Vec<_>>(),
    ))
}

async fn instance_state(d: &Deployment, w: &Workload) -> Result<String, BoxError> {
    let ec2 = &d.clients.ec2;
    let mut groups = Vec::new();
    for eni in &w.enis {
        let out = ec2
            .describe_network_interfaces()
            .network_interface_ids(eni)
            .send()
            .await?;
        let g: Vec<String> = out
            .network_interfaces()
            .iter()
            .flat_map(|n| n.groups())
            .filter_map(|g| g.group_name().map(str::to_owned))
            .collect();
        groups.push(format!("{eni}: {g:?}"));
    }
    let protection = ec2
        .describe_instance_attribute()
        .instance_id(&w.instance)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
        .send()
        .await?
        .disable_api_termination()
        .and_then(|v| v.value())
        .unwrap_or(false);
    let profile = ec2
        .describe_iam_instance_profile_associations()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .values(&w.instance)
                .build(),
        )
        .send()
        .await?
        .iam_instance_profile_associations()
        .iter()
        .filter(|a| a.state().map(|s| s.as_str()) == Some("associated"))
        .count();
    let in_asg = d
        .clients
        .autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(&w.instance)
        .send()
        .await?
        .auto_scaling_instances()
        .len();
    Ok(format!(
        "groups: {}\n  termination protection: {protection}, instance profile associations: {profile}, in Auto Scaling group: {}",
        groups.join("; "),
        in_asg > 0
    ))
}

async fn role_state(iam: &aws_sdk_iam::Client, role: &str) -> Result<String, BoxError> {
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await?;
    let inline = iam.list_role_policies().role_name(role).send().await?;
    Ok(format!(
        "managed policies: {:?}\n      inline policies: {:?}",
        attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_name())
            .collect::<Vec<_>>(),
        inline.policy_names()
    ))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    println!("== cordon demo: moto server on 127.0.0.1, functions under cargo lambda watch\n");
    let moto = Moto::start()?;
    let d = Deployment::create(&moto).await?;
    let iam = &d.clients.iam;
    let (alice, role, breakglass, mallory) = ("alice", "web-app", "breakglass", "mallory");
    let alice_keys = seed_user(iam, alice, 2).await?;
    let mallory_keys = seed_user(iam, mallory, 1).await?;
    let breakglass_keys = seed_user(iam, breakglass, 1).await?;
    seed_role(iam, role).await?;
    println!("Seeded account {ACCOUNT}: user {alice} (2 keys), user {breakglass} (protected), user {mallory} (1 key), role {role}\n");

    let mut env = moto.env();
    env.extend(d.vars(&[
        (
            "PROTECTED_PRINCIPALS",
            &format!("arn:aws:iam::{ACCOUNT}:user/{breakglass}"),
        ),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
    ]));
    let dir = repo_root().join("target/demo");
    std::fs::create_dir_all(&dir)?;
    let watch = Watch::start(&env, &dir.join("functions.log"))?;
    let mut demo = Demo {
        watch,
        dir: dir.clone(),
        failures: Vec::new(),
    };

    println!(
        "Before:\n  user {alice}: {}\n  role {role}: {}\n",
        user_state(iam, alice).await?,
        role_state(iam, role).await?
    );

    let mut user_event = integration_tests::event("guardduty-iam-user.json")?;
    user_event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] =
        alice_keys[0].clone().into();
    let mut protected_event = integration_tests::event("guardduty-iam-user.json")?;
    protected_event["detail"]["id"] = "9a8b7c6d5e4f30211203a4b5c6d7e8f9".into();
    protected_event["detail"]["resource"]["accessKeyDetails"]["userName"] = breakglass.into();
    protected_event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] =
        breakglass_keys[0].clone().into();
    let mut stop_logging = integration_tests::event("cloudtrail-stop-logging.json")?;
    stop_logging["detail"]["userIdentity"]["accessKeyId"] = mallory_keys[0].clone().into();
    let mut repeat = user_event.clone();
    repeat["detail"]["service"]["count"] = 2.into();
    let cases = [
        (
            "IAM user finding (alice's first key)",
            "user.json",
            user_event,
            true,
        ),
        (
            "the same finding again (GuardDuty re-sends it)",
            "user-repeat.json",
            repeat,
            true,
        ),
        (
            "assumed-role finding (web-app)",
            "role.json",
            integration_tests::event("guardduty-assumed-role.json")?,
            true,
        ),
        (
            "root credential finding",
            "root.json",
            integration_tests::event("guardduty-root.json")?,
            true,
        ),
        (
            "finding on a protected user",
            "protected.json",
            protected_event,
            true,
        ),
        (
            "GuardDuty sample finding",
            "sample.json",
            integration_tests::event("guardduty-sample-finding.json")?,
            true,
        ),
        (
            "CloudTrail StopLogging by mallory's key",
            "stop-logging.json",
            stop_logging,
            true,
        ),
        (
            "malformed event",
            "malformed.json",
            integration_tests::event("malformed.json")?,
            false,
        ),
    ];
    let mut reports = Vec::new();
    for (label, file, event, should_succeed) in cases {
        println!("Invoke quarantine-credentials: {label}");
        let started = Instant::now();
        let (ok, report) = demo.invoke("quarantine-credentials", file, &event)?;
        if ok {
            println!(
                "  {} ({} ms)",
                summary(&report),
                started.elapsed().as_millis()
            );
        } else {
            println!("  error: {report}");
        }
        demo.expect(
            ok == should_succeed,
            if should_succeed {
                "invocation succeeded"
            } else {
                "invocation failed with a typed error"
            },
        );
        reports.push(report);
    }

    println!(
        "\nAfter:\n  user {alice}: {}\n  role {role}: {}\n  user {breakglass}: {}\n",
        user_state(iam, alice).await?,
        role_state(iam, role).await?,
        user_state(iam, breakglass).await?
    );

    let keys = key_statuses(iam, alice).await?;
    demo.expect(
        keys.contains(&(alice_keys[0].clone(), "Inactive".into())),
        "alice's reported key is Inactive",
    );
    demo.expect(
        keys.contains(&(alice_keys[1].clone(), "Active".into())),
        "alice's other key is still Active",
    );
    let attached = iam
        .list_attached_user_policies()
        .user_name(alice)
        .send()
        .await?;
    demo.expect(
        attached
            .attached_policies()
            .iter()
            .any(|p| p.policy_name() == Some(cordon::policy::QUARANTINE_POLICY_NAME)),
        "alice holds the quarantine policy",
    );
    demo.expect(
        reports[1]["delivery"] == "repeat"
            && reports[1]["actions"]
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x["outcome"] == "skipped")),
        "the repeat changed nothing",
    );
    let role_inline = iam.list_role_policies().role_name(role).send().await?;
    demo.expect(
        role_inline
            .policy_names()
            .iter()
            .any(|n| n == cordon::policy::REVOKE_SESSIONS_POLICY_NAME),
        "web-app's sessions are revoked",
    );
    demo.expect(
        reports[3]["status"] == "notify_only",
        "root: recorded and notified, nothing changed",
    );
    demo.expect(
        key_statuses(iam, breakglass).await?[0].1 == "Active",
        "the protected user was not touched",
    );
    demo.expect(
        reports[5]["status"] == "ignored",
        "the sample finding was ignored",
    );
    demo.expect(
        reports[6]["status"] == "contained" && key_statuses(iam, mallory).await?[0].1 == "Inactive",
        "StopLogging: mallory's key is Inactive",
    );

    // ---- an EC2 finding: isolate-instance -------------------------------------------
    let w = seed_workload(&d, &[]).await?;
    println!(
        "\nSeeded instance {} (ENIs {:?}, volumes {:?}, Auto Scaling group {}, target group)",
        w.instance, w.enis, w.volumes, w.asg
    );
    println!("Before:\n  {}", instance_state(&d, &w).await?);
    let mut ec2_event = integration_tests::event("guardduty-ec2.json")?;
    ec2_event["detail"]["resource"]["instanceDetails"]["instanceId"] = w.instance.clone().into();
    for (label, file) in [
        ("EC2 finding (crypto mining)", "ec2.json"),
        ("the same EC2 finding again", "ec2-repeat.json"),
    ] {
        println!("Invoke isolate-instance: {label}");
        let started = Instant::now();
        let (ok, report) = demo.invoke("isolate-instance", file, &ec2_event)?;
        println!(
            "  {} ({} ms)",
            summary(&report),
            started.elapsed().as_millis()
        );
        demo.expect(ok, "invocation succeeded");
        reports.push(report);
    }
    println!("After:\n  {}", instance_state(&d, &w).await?);
    let isolated = reports
        .iter()
        .rev()
        .nth(1)
        .is_some_and(|r| r["status"] == "contained");
    demo.expect(isolated, "the instance is contained");
    let snapshots = integration_tests::snapshotted_volumes(
        &d.clients.ec2,
        "tag:cordon:instance",
        std::slice::from_ref(&w.instance),
    )
    .await?;
    demo.expect(
        snapshots.len() == w.volumes.len(),
        "one snapshot per volume after two deliveries",
    );

    println!("\nLedger ({}):", d.table);
    let incidents: Vec<String> = reports
        .iter()
        .filter_map(|r| r["incident_id"].as_str().map(str::to_owned))
        .fold(Vec::new(), |mut seen, id| {
            if !seen.contains(&id) {
                seen.push(id);
            }
            seen
        });
    for id in &incidents {
        for item in ledger_items(&d.clients.dynamodb, &d.table, id).await? {
            let sk = attr(&item, "sk");
            let line = match sk {
                s if s.starts_with("META#") => format!(
                    "{} status={} deliveries={} {}",
                    attr(&item, "finding_type"),
                    attr(&item, "status"),
                    attr(&item, "deliveries"),
                    attr(&item, "reason")
                ),
                s if s.starts_with("DELIVERY#") => format!(
                    "{} request {}",
                    attr(&item, "kind"),
                    attr(&item, "request_id")
                ),
                _ => format!(
                    "{} {} {}{} before={}",
                    attr(&item, "action"),
                    attr(&item, "target"),
                    attr(&item, "outcome"),
                    match item.get("verified").and_then(|v| v.as_bool().ok()) {
                        Some(true) => " (verified)",
                        Some(false) => " (applied, not yet visible)",
                        None => "",
                    },
                    attr(&item, "before")
                ),
            };
            println!("  {id} {sk:<16} {line}");
        }
    }
    let notes = d.notifications(&moto).await?;
    println!("\nNotifications ({}):", notes.len());
    for n in &notes {
        println!("  {}", n["Subject"].as_str().unwrap_or("?"));
    }
    if let Some(first) = notes.first() {
        println!(
            "\nFirst message body:\n{}",
            first["Message"].as_str().unwrap_or("")
        );
    }
    println!("Function logs: {}", dir.join("functions.log").display());
    if demo.failures.is_empty() {
        println!("\nDemo passed: every expectation held.");
        Ok(())
    } else {
        Err(format!(
            "{} expectation(s) failed: {:?}",
            demo.failures.len(),
            demo.failures
        )
        .into())
    }
}
