//! `make bench`: cold start, time to containment, burst and rule-evaluation figures, written to
//! BENCHMARKS.md. Whole-process timings use the release function binaries under a local Lambda
//! Runtime API; in-process figures use the library directly. Nothing here asserts a duration.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cordon::aws::Clients;
use cordon::events::cloudtrail::Record;
use cordon::rules::{evaluate, RuleSettings};
use cordon::{Function, Responder};
use integration_tests::faults::FaultProxy;
use integration_tests::runtime_api::{RuntimeApi, Step};
use integration_tests::seed::{seed_for_event, seed_workload};
use integration_tests::trail::{backdoor_key, put, recorded, restamp};
use integration_tests::{
    event, key_statuses, reactivate, repo_root, sdk_config, seed_user, unique, BoxError,
    Deployment, Moto,
};
use serde_json::Value;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

fn spread(v: &mut [f64]) -> String {
    format!(
        "median {:.1}, min {:.1}, p90 {:.1}, max {:.1}",
        median(v),
        v.first().copied().unwrap_or(0.0),
        percentile(v, 0.9),
        v.last().copied().unwrap_or(0.0)
    )
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// One cold start: spawn the binary, serve it one event, note init, answer and peak memory.
/// `custodian run` on one policy document, timed from process start to exit.
struct Custodian<'a> {
    bin: &'a PathBuf,
    dir: &'a PathBuf,
    env: &'a [(String, String)],
}

impl Custodian<'_> {
    fn run(&self, policy: &str) -> Result<(f64, bool), BoxError> {
        let file = self.dir.join("policy.yml");
        std::fs::write(&file, policy)?;
        let t = Instant::now();
        let status = Command::new(self.bin)
            // No resource cache: each run must look the (new) resource up, as a fresh Lambda would.
            .args(["run", "--cache-period", "0", "-s"])
            .arg(self.dir.join("out"))
            .arg(&file)
            .envs(self.env.iter().cloned())
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok((t.elapsed().as_secs_f64() * 1e3, status.success()))
    }
}

/// One cold start: spawn → first poll (init) → first answer, with the process's peak RSS and the
/// CPU time all its threads used by then.
struct ColdStart {
    init_ms: f64,
    answer_ms: f64,
    rss_kib: u64,
    cpu_ms: f64,
    ok: bool,
}

/// CPU time of every thread of `pid` so far, from the scheduler's nanosecond counters.
fn cpu_ms(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e6
}

async fn cold_start(
    binary: &PathBuf,
    env: &[(String, String)],
    event: &Value,
) -> Result<ColdStart, BoxError> {
    let mut api = RuntimeApi::start(event.to_string()).await?;
    let spawned = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().cloned())
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut init_ms = 0.0;
    let result = loop {
        match tokio::time::timeout(Duration::from_secs(60), api.steps.recv()).await {
            Ok(Some(Step::FirstPoll(at))) => init_ms = (at - spawned).as_secs_f64() * 1e3,
            Ok(Some(Step::Answered(at, ok, _))) => {
                break Ok(ColdStart {
                    init_ms,
                    answer_ms: (at - spawned).as_secs_f64() * 1e3,
                    rss_kib: peak_rss_kib(child.id()),
                    cpu_ms: cpu_ms(child.id()),
                    ok,
                });
            }
            Ok(Some(Step::InitError(e))) => break Err(format!("init error: {e}").into()),
            _ => break Err("no answer from the function".into()),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Section 7: one key's 10,000-event history traced under LookupEvents' quota: every page read, the one
/// backdoor key at its oldest end found and set Inactive; then the same history with a minute
/// left, what was read and what was recorded as not read. Returns the section's text.
async fn trace_section(moto: &Moto, d: &Deployment) -> Result<String, BoxError> {
    const EVENTS: usize = 10_000;
    let mut out = String::new();
    writeln!(
        out,
        "\n## 7. trace-credentials: a key with {EVENTS} events in its history\n"
    )?;
    writeln!(out, "The stolen key's history in the LookupEvents stand-in of tests/moto_server.py: {} recorded `GetCallerIdentity` calls (Stratus `iam-create-user-login-profile`) re-stamped to the key, one a minute, and at the oldest end Stratus `iam-backdoor-user`'s `CreateAccessKey` for another user. LookupEvents allows 2 calls per second per account and region and returns 50 events a page, so {EVENTS} events are 200 pages and at least 100 s (the incident's region is us-east-1, where the global events land too: one region, one quota). Before the key's history the trace reads the 13 calls that make what it stops by name, account-wide (one page each here), so that a flood of other calls cannot hide them: 13 calls more. The client-side limiter is the bound; the stand-in answers a page in a few ms. This run: a {} build (the limiter, not the build, sets the pace).\n", EVENTS - 1, if cfg!(debug_assertions) { "debug" } else { "release" })?;
    writeln!(out, "| invocation time | events read | LookupEvents calls | quota's bound | wall s | backdoor key | not read |\n|---|---|---|---|---|---|---|")?;
    let user = unique("bench-trace");
    let key = seed_user(&d.clients.iam, &user, 1).await?.remove(0);
    let victim = unique("bench-victim");
    let backdoor = seed_user(&d.clients.iam, &victim, 1).await?.remove(0);
    let noise = recorded(
        "stratus__aws.persistence.iam-create-user-login-profile",
        "GetCallerIdentity",
    )?;
    let mut records: Vec<Value> = (0..EVENTS - 1)
        .map(|i| restamp(noise.clone(), &user, &key, i as i64 + 1))
        .collect();
    records.push(backdoor_key(
        &user,
        &key,
        EVENTS as i64 + 1,
        &victim,
        &backdoor,
    )?);
    put(&moto.endpoint, "us-east-1", &records)?;
    let tracer = Responder::new(
        Function::TraceCredentials,
        d.config(&[("RATE_LIMIT", "100000")]),
        Clients::new(&sdk_config(&moto.endpoint, 3)),
    )
    .await?;
    // Lambda's 15 minutes, then a minute: the trace stops reading 30 s before either ends.
    for (label, left) in [("900 s (Lambda's most)", 900), ("60 s", 60)] {
        let mut e = event("guardduty-iam-user.json")?;
        e["detail"]["id"] = unique("bt").replace('-', "").into();
        e["detail"]["resource"]["accessKeyDetails"]["userName"] = user.clone().into();
        e["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = key.clone().into();
        let started = Instant::now();
        let report = tracer
            .handle_until(
                e,
                &unique("bench"),
                Some(started + Duration::from_secs(left)),
            )
            .await?;
        let wall = started.elapsed().as_secs_f64();
        let read = report
            .actions
            .iter()
            .find(|a| a.action.name() == "trace_history" && a.target.starts_with(key.as_str()))
            .ok_or("no history read")?;
        let summary = read.after.clone().unwrap_or_default();
        let pages = summary["pages"].as_u64().unwrap_or(0);
        // Every LookupEvents call: the key's history and the calls read by name first.
        let calls: u64 = report
            .actions
            .iter()
            .filter(|a| a.action.name() == "trace_history")
            .filter_map(|a| a.after.as_ref()?["pages"].as_u64())
            .sum();
        let status = key_statuses(&d.clients.iam, &victim)
            .await?
            .into_iter()
            .find(|(k, _)| *k == backdoor)
            .map(|(_, s)| s)
            .unwrap_or_default();
        writeln!(
            out,
            "| {label} | {} of {EVENTS} | {calls} ({pages} of the key's history, {} by name) | {:.1} s for {calls} calls | {wall:.1} | {status} | {} |",
            summary["events"],
            calls - pages,
            calls.saturating_sub(1) as f64 / 2.0,
            summary["not_read"].as_str().unwrap_or("nothing"),
        )?;
        // The second run finds the key already Inactive; set it back so it shows what it finds.
        reactivate(&d.clients.iam, &victim, &backdoor).await?;
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // `bench trace`: section 7 alone, put in place of BENCHMARKS.md's own (before the notes).
    if std::env::args().nth(1).as_deref() == Some("trace") {
        let moto = Moto::start()?;
        let d = Deployment::create(&moto).await?;
        let section = trace_section(&moto, &d).await?;
        let path = repo_root().join("BENCHMARKS.md");
        let text = std::fs::read_to_string(&path)?;
        let start = text
            .find("\n## 7. ")
            .or_else(|| text.find("\n## Reading these numbers"))
            .unwrap_or(text.len());
        let end = text[start..]
            .find("\n## Reading these numbers")
            .map_or(text.len(), |i| start + i);
        std::fs::write(
            &path,
            format!("{}{section}\n{}", &text[..start], &text[end..]),
        )?;
        println!("{section}");
        return Ok(());
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let bin_dir = repo_root()
        .join(std::env::var("BENCH_BIN_DIR").unwrap_or_else(|_| "target/release".into()));
    let mut out = String::new();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()?
        .stdout;
    writeln!(out, "# Benchmarks\n")?;
    writeln!(
        out,
        "Machine: {} cores, {cpu}. Date: {}. Command: `make bench` (release x86_64 binaries from `{}`; moto server (tests/requirements.txt) on 127.0.0.1, requests serialised as in the tests).\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        String::from_utf8_lossy(&date).trim(),
        bin_dir.strip_prefix(repo_root()).unwrap_or(&bin_dir).display(),
    )?;

    let moto = Moto::start()?;
    let d = Deployment::create(&moto).await?;

    // ---- 1. cold start -----------------------------------------------------------------
    writeln!(
        out,
        "## 1. Cold start (process spawn → first Runtime API poll → first response)\n"
    )?;
    writeln!(out, "Each run is a new process with a new event against moto; init includes building the SDK clients and one `sts:GetCallerIdentity`. Peak RSS is the process's VmHWM after its answer; CPU is the time all its threads ran by then (`/proc/<pid>/task/*/schedstat`), the figure a 128 MB Lambda (a fraction of one vCPU) stretches most.\n")?;
    writeln!(
        out,
        "| function | runs | init ms | first response ms | CPU ms to first response | peak RSS MiB |\n|---|---|---|---|---|---|"
    )?;
    // The last row is the default trust store's before → after: the system store costs reading
    // and parsing every root the OS has.
    for (label, function, file, trust) in [
        (
            "quarantine-credentials",
            "quarantine-credentials",
            "guardduty-iam-user.json",
            "amazon",
        ),
        (
            "isolate-instance",
            "isolate-instance",
            "guardduty-ec2.json",
            "amazon",
        ),
        (
            "quarantine-credentials, `TRUST_STORE=system`",
            "quarantine-credentials",
            "guardduty-iam-user.json",
            "system",
        ),
    ] {
        let binary = bin_dir.join(function);
        if !binary.exists() {
            writeln!(
                out,
                "| {label} | - | not built ({}) | | | |",
                binary.display()
            )?;
            continue;
        }
        let mut env = moto.env();
        env.extend(d.vars(&[("RATE_LIMIT", "100000"), ("TRUST_STORE", trust)]));
        let (mut inits, mut answers, mut cpu, mut rss) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let mut e = event(file)?;
            e["detail"]["id"] = unique("b").replace('-', "").into();
            if function == "quarantine-credentials" {
                let user = unique("cold");
                e["detail"]["resource"]["accessKeyDetails"]["userName"] = user.clone().into();
            }
            seed_for_event(&d, &mut e).await?;
            let run = cold_start(&binary, &env, &e).await?;
            if !run.ok {
                return Err(format!("{function} answered with an error").into());
            }
            inits.push(run.init_ms);
            answers.push(run.answer_ms);
            cpu.push(run.cpu_ms);
            rss.push(run.rss_kib as f64 / 1024.0);
        }
        writeln!(
            out,
            "| {label} | {runs} | {} | {} | {} | {} |",
            spread(&mut inits),
            spread(&mut answers),
            spread(&mut cpu),
            spread(&mut rss)
        )?;
    }

    // ---- 2. time to containment ----------------------------------------------------------
    writeln!(
        out,
        "\n## 2. Time to containment (in-process, warm clients, one finding at a time)\n"
    )?;
    writeln!(out, "From event receipt to the end of the named actions, and the AWS calls made (counted at a pass-through proxy; `Describe/List/Get` are reads).\n")?;
    let proxy = FaultProxy::start(&moto.endpoint, 0, 1).await?;
    let r = Responder::new(
        Function::QuarantineCredentials,
        d.config(&[("RATE_LIMIT", "100000")]),
        Clients::new(&sdk_config(&proxy.endpoint, 3)),
    )
    .await?;
    let ri = Responder::new(
        Function::IsolateInstance,
        d.config(&[("RATE_LIMIT", "100000")]),
        Clients::new(&sdk_config(&proxy.endpoint, 3)),
    )
    .await?;
    // Warm both (first use creates the managed policy and the security groups).
    for (resp, file) in [(&r, "guardduty-iam-user.json"), (&ri, "guardduty-ec2.json")] {
        let mut e = event(file)?;
        e["detail"]["id"] = unique("w").replace('-', "").into();
        if file.contains("iam-user") {
            e["detail"]["resource"]["accessKeyDetails"]["userName"] = unique("warm").into();
        }
        seed_for_event(&d, &mut e).await?;
        resp.handle(e, "warm").await?;
    }
    writeln!(out, "| scenario | runs | contained ms (critical path) | whole invocation ms | AWS calls (reads + writes) |\n|---|---|---|---|---|")?;
    for (label, resp, file, critical) in [
        (
            "IAM user: key inactive + policy in force",
            &r,
            "guardduty-iam-user.json",
            &["deactivate_access_key", "attach_quarantine_policy"][..],
        ),
        (
            "EC2: instance isolated (every ENI)",
            &ri,
            "guardduty-ec2.json",
            &["isolate_network"][..],
        ),
    ] {
        let (mut contained, mut whole, mut calls) = (Vec::new(), Vec::new(), Vec::new());
        let mut per_action: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for _ in 0..runs {
            let mut e = event(file)?;
            e["detail"]["id"] = unique("t").replace('-', "").into();
            if file.contains("iam-user") {
                e["detail"]["resource"]["accessKeyDetails"]["userName"] = unique("ttc").into();
            }
            seed_for_event(&d, &mut e).await?;
            let before = proxy
                .counts
                .requests
                .load(std::sync::atomic::Ordering::Relaxed);
            let started = time::OffsetDateTime::now_utc();
            let t = Instant::now();
            let report = resp.handle(e, "bench").await?;
            whole.push(t.elapsed().as_secs_f64() * 1e3);
            calls.push(
                (proxy
                    .counts
                    .requests
                    .load(std::sync::atomic::Ordering::Relaxed)
                    - before) as f64,
            );
            let finished = |a: &cordon::actions::ActionRecord| {
                time::OffsetDateTime::parse(
                    &a.finished_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()
            };
            let critical_end = report
                .actions
                .iter()
                .filter(|a| critical.contains(&a.action.name()))
                .filter_map(finished)
                .max();
            if let Some(end) = critical_end {
                contained.push((end - started).as_seconds_f64() * 1e3);
            }
            for a in &report.actions {
                if let (Some(end), Ok(start)) = (
                    finished(a),
                    time::OffsetDateTime::parse(
                        &a.started_at,
                        &time::format_description::well_known::Rfc3339,
                    ),
                ) {
                    per_action
                        .entry(a.action.name().to_owned())
                        .or_default()
                        .push((end - start).as_seconds_f64() * 1e3);
                }
            }
        }
        writeln!(
            out,
            "| {label} | {runs} | {} | {} | median {} |",
            spread(&mut contained),
            spread(&mut whole),
            median(&mut calls)
        )?;
        let detail: Vec<String> = per_action
            .iter_mut()
            .map(|(k, v)| format!("{k} {:.1}", median(v)))
            .collect();
        writeln!(
            out,
            "| ↳ per action, median ms (from its first read) | | {} | | |",
            detail.join(", ")
        )?;
    }

    // ---- 3. side by side with Cloud Custodian --------------------------------------------
    let custodian = std::env::var("CUSTODIAN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".venv-c7n/bin/custodian"));
    writeln!(
        out,
        "\n## 3. Side by side with Cloud Custodian (same moto server, process start to done)\n"
    )?;
    let ours = bin_dir.join("quarantine-credentials");
    let ours_ec2 = bin_dir.join("isolate-instance");
    if custodian.exists() && ours.exists() && ours_ec2.exists() {
        let dir = repo_root().join("target/bench-c7n");
        std::fs::create_dir_all(&dir)?;
        let mut env = moto.env();
        env.extend(d.vars(&[("RATE_LIMIT", "100000")]));
        let c7n = Custodian {
            bin: &custodian,
            dir: &dir,
            env: &env,
        };
        let policy_arn = format!(
            "arn:aws:iam::{}:policy/cordon/{}",
            integration_tests::ACCOUNT,
            cordon::policy::QUARANTINE_POLICY_NAME
        );
        let (mut theirs_ms, mut ours_ms) = (Vec::new(), Vec::new());
        let mut both_disabled = 0;
        for _ in 0..runs.min(10) {
            // Custodian: disable the keys and attach the same quarantine policy.
            let user = unique("c7n");
            seed_user(&d.clients.iam, &user, 2).await?;
            let (ms, ok) = c7n.run(&format!(
                "policies:\n  - name: contain-user\n    resource: iam-user\n    filters:\n      - UserName: {user}\n    actions:\n      - type: remove-keys\n        disable: true\n      - type: set-policy\n        state: attached\n        arn: {policy_arn}\n"
            ))?;
            theirs_ms.push(ms);
            let keys = key_statuses(&d.clients.iam, &user).await?;
            both_disabled += usize::from(ok && keys.iter().all(|(_, s)| s == "Inactive"));
            // cordon: the same containment from the finding, one new process.
            let mut e = event("guardduty-iam-user.json")?;
            e["detail"]["id"] = unique("c").replace('-', "").into();
            e["detail"]["resource"]["accessKeyDetails"]["userName"] = unique("ours").into();
            seed_for_event(&d, &mut e).await?;
            let run = cold_start(&ours, &env, &e).await?;
            if run.ok {
                ours_ms.push(run.answer_ms);
            }
        }
        let (mut theirs_ec2, mut ours_ec2_ms) = (Vec::new(), Vec::new());
        let mut snapshotted = 0;
        for _ in 0..runs.min(10) {
            // Custodian: snapshot every volume and move every interface to an isolation group,
            // which it needs to exist already (made here, outside the timing).
            let w = seed_workload(&d, &[]).await?;
            let isolation = d
                .clients
                .ec2
                .create_security_group()
                .group_name(unique("c7n-isolation"))
                .description("isolation")
                .vpc_id(&w.vpc)
                .send()
                .await?
                .group_id()
                .unwrap_or_default()
                .to_owned();
            let (ms, ok) = c7n.run(&format!(
                "policies:\n  - name: contain-instance\n    resource: ec2\n    filters:\n      - InstanceId: {}\n    actions:\n      - type: snapshot\n      - type: modify-security-groups\n        remove: all\n        isolation-group: {isolation}\n",
                w.instance
            ))?;
            theirs_ec2.push(ms);
            let snaps =
                integration_tests::snapshotted_volumes(&d.clients.ec2, "volume-id", &w.volumes)
                    .await?;
            snapshotted += usize::from(ok && snaps.len() == w.volumes.len());
            let mut e = event("guardduty-ec2.json")?;
            e["detail"]["id"] = unique("c").replace('-', "").into();
            seed_for_event(&d, &mut e).await?;
            let run = cold_start(&ours_ec2, &env, &e).await?;
            if run.ok {
                ours_ec2_ms.push(run.answer_ms);
            }
        }
        writeln!(
            out,
            "| scenario | Cloud Custodian ms | cordon ms | ratio |\n|---|---|---|---|"
        )?;
        for (label, theirs, ours) in [
            (
                "IAM user: keys disabled + quarantine policy attached",
                &mut theirs_ms,
                &mut ours_ms,
            ),
            (
                "EC2: volumes snapshotted + every interface isolated",
                &mut theirs_ec2,
                &mut ours_ec2_ms,
            ),
        ] {
            let ratio = median(theirs) / median(ours).max(0.001);
            writeln!(
                out,
                "| {label} | {} | {} | {ratio:.1}x |",
                spread(theirs),
                spread(ours)
            )?;
        }
        writeln!(
            out,
            "\nCustodian runs in pull mode (`custodian run --cache-period 0`), filtered to the one user or instance, as a fresh Lambda would look it up; cordon is one new process answering one finding under the local Runtime API.\n\n- **IAM user.** Custodian: `remove-keys disable: true` + `set-policy`. It disabled **every** key of the user (in {both_disabled} of {} runs): without an `access-key` filter on the finding's key id it cannot target only the leaked key, and its guard-duty mode passes the finding's user, not its key, to that action. cordon deactivates only the finding's key (unless DEACTIVATE_ALL_KEYS) and also revokes sessions and tags the user.\n- **EC2.** Custodian: `snapshot` + `modify-security-groups remove: all, isolation-group`. It snapshotted every volume in {snapshotted} of {} runs and set each interface's groups in one step. It needs the isolation group made beforehand, and a one-step swap leaves established (tracked) connections open, an attacker's shell included; cordon moves each interface through an allow-all untracking group first. cordon's run also protects the instance from termination, detaches it from its Auto Scaling group and target group, removes the instance profile and revokes the role's sessions, and snapshots after containment; Custodian's run does none of that, so the comparison favours it.",
            theirs_ms.len(),
            theirs_ec2.len()
        )?;
    } else {
        writeln!(
            out,
            "Not run: install Cloud Custodian with `make bench` ({} missing).",
            custodian.display()
        )?;
    }

    // ---- 4. burst ------------------------------------------------------------------------
    let burst: usize = std::env::var("BENCH_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let pool = 16;
    writeln!(
        out,
        "\n## 4. Burst: {burst} distinct IAM-user findings, {pool} concurrent invocations\n"
    )?;
    let mut users = Vec::new();
    for _ in 0..burst {
        let user = unique("burst");
        let key = seed_user(&d.clients.iam, &user, 1).await?.remove(0);
        users.push((user, key));
    }
    let responders = futures::future::join_all((0..pool).map(|_| {
        Responder::new(
            Function::QuarantineCredentials,
            d.config(&[("RATE_LIMIT", "100000")]),
            Clients::new(&moto.sdk_config()),
        )
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(users.clone()));
    let started = Instant::now();
    let latencies = futures::future::join_all(responders.iter().map(|resp| {
        let queue = queue.clone();
        async move {
            let mut lat = Vec::new();
            loop {
                let Some((user, key)) = queue.lock().await.pop() else {
                    break;
                };
                let mut e = event("guardduty-iam-user.json").unwrap_or(Value::Null);
                e["detail"]["id"] = unique("burst").replace('-', "").into();
                e["detail"]["resource"]["accessKeyDetails"]["userName"] = user.into();
                e["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = key.into();
                let t = Instant::now();
                let ok = resp
                    .handle(e, "burst")
                    .await
                    .map(|r| r.status == Some(cordon::ledger::Status::Contained))
                    .unwrap_or(false);
                lat.push((t.elapsed().as_secs_f64() * 1e3, ok));
            }
            lat
        }
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut all: Vec<f64> = latencies.iter().flatten().map(|(l, _)| *l).collect();
    let reported = latencies.iter().flatten().filter(|(_, ok)| *ok).count();
    let mut inactive = 0;
    for (user, _) in &users {
        inactive += usize::from(
            key_statuses(&d.clients.iam, user)
                .await?
                .first()
                .is_some_and(|(_, s)| s == "Inactive"),
        );
    }
    writeln!(
        out,
        "{:.1} findings/s over {elapsed:.1} s; per finding p50 {:.0} ms, p99 {:.0} ms; {reported}/{burst} reported contained, {inactive}/{burst} keys Inactive when read back.\n\nmoto serves one request at a time (see tests/moto_server.py), so this measures cordon plus a serialised emulator, not AWS.",
        burst as f64 / elapsed,
        percentile(&mut all, 0.5),
        percentile(&mut all, 0.99)
    )?;

    // ---- 5. CloudTrail rule evaluation ---------------------------------------------------
    writeln!(
        out,
        "\n## 5. CloudTrail rule evaluation over the corpus (one core)\n"
    )?;
    let mut raw: Vec<Vec<u8>> = Vec::new();
    let corpus = repo_root().join("tests/corpus");
    let mut stack = vec![corpus.join("cloudtrail"), corpus.join("datasets")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let doc: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
                if let Value::Object(mut map) = doc.clone() {
                    if let Some(Value::Array(list)) = map.remove("Records") {
                        raw.extend(list.iter().map(|r| r.to_string().into_bytes()));
                        continue;
                    }
                }
                match doc {
                    Value::Array(list) => {
                        raw.extend(list.iter().map(|r| r.to_string().into_bytes()))
                    }
                    Value::Object(ref m) if m.contains_key("detail-type") => {
                        raw.push(m["detail"].to_string().into_bytes())
                    }
                    other => raw.push(other.to_string().into_bytes()),
                }
            }
        }
    }
    let bytes: usize = raw.iter().map(Vec::len).sum();
    let settings = RuleSettings::default();
    let rounds = 20;
    let t = Instant::now();
    for _ in 0..rounds {
        for r in &raw {
            let v: Value = serde_json::from_slice(r).unwrap_or(Value::Null);
            std::hint::black_box(v);
        }
    }
    let value_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut parsed = Vec::new();
    for _ in 0..rounds {
        parsed.clear();
        for r in &raw {
            if let Ok(rec) = serde_json::from_slice::<Record>(r) {
                parsed.push(rec);
            }
        }
    }
    let record_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut hits = 0;
    for _ in 0..rounds * 10 {
        for rec in &parsed {
            hits += usize::from(evaluate(rec, &settings).is_some());
        }
    }
    let eval_s = t.elapsed().as_secs_f64() / 10.0;
    let n = (raw.len() * rounds) as f64;
    writeln!(
        out,
        "{} records ({:.1} MiB), {rounds} rounds, {} rule hits per round.\n",
        raw.len(),
        bytes as f64 / 1048576.0,
        hits / (rounds * 10)
    )?;
    writeln!(out, "| step | records/s | µs/record |\n|---|---|---|")?;
    for (label, s) in [
        ("`serde_json::from_slice` into `Value` (the bound)", value_s),
        ("parse into our `Record`", record_s),
        ("evaluate all rules on a parsed `Record`", eval_s),
        ("parse + evaluate", record_s + eval_s),
    ] {
        writeln!(out, "| {label} | {:.0} | {:.2} |", n / s, s / n * 1e6)?;
    }

    // ---- 6. artefact size ----------------------------------------------------------------
    writeln!(out, "\n## 6. Artefact size (arm64, `make package`)\n")?;
    writeln!(
        out,
        "| function | bootstrap bytes | bootstrap.zip bytes |\n|---|---|---|"
    )?;
    for function in [
        "quarantine-credentials",
        "isolate-instance",
        "trace-credentials",
    ] {
        let dir = repo_root().join("target/lambda").join(function);
        let size = |f: &str| {
            std::fs::metadata(dir.join(f))
                .map(|m| m.len().to_string())
                .unwrap_or_else(|_| "not built".into())
        };
        writeln!(
            out,
            "| {function} | {} | {} |",
            size("bootstrap"),
            size("bootstrap.zip")
        )?;
    }

    out.push_str(&trace_section(&moto, &d).await?);

    let path = repo_root().join("BENCHMARKS.md");
    let notes =
        std::fs::read_to_string(repo_root().join("tests/bench-notes.md")).unwrap_or_default();
    std::fs::write(&path, format!("{out}\n{notes}"))?;
    println!("{out}");
    println!("written to {}", path.display());
    Ok(())
}
