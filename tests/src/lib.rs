//! Test support: a real AWS API emulator (moto server) on 127.0.0.1, an account seeded with what
//! cordon acts on, and the sample events of `events/`. Used by the integration tests and the demo.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use cordon::aws::Clients;
use cordon::config::Config;
use cordon::ledger::{BY_RESOURCE_INDEX, OPEN_INDEX};
use serde_json::Value;

pub mod faults;
pub mod patterns;
pub mod runtime_api;
pub mod seed;
pub mod watch;

pub use seed::{seed_role, seed_user};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// moto server (`tests/moto_server.py`), started for this process; it stops as soon as our end
/// of its stdin closes, so it never outlives us, even if we crash.
pub struct Moto {
    pub endpoint: String,
    _process: Child,
}

impl Moto {
    pub fn start() -> Result<Self, BoxError> {
        let python = std::env::var("CORDON_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join(".venv/bin/python"));
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut process = Command::new(&python)
            .arg(repo_root().join("tests/moto_server.py"))
            .arg(port.to_string())
            .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start moto with {} ({e}); run `make venv`",
                    python.display()
                )
            })?;
        let stdout = process.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("moto server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _process: process,
        })
    }

    /// SDK configuration pointing every service at moto, with test credentials.
    pub fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint, 3)
    }

    /// IAM in another account (moto keeps each account's resources apart and serves
    /// `sts:AssumeRole` into any of them).
    pub async fn iam_of_account(&self, account: &str) -> Result<aws_sdk_iam::Client, BoxError> {
        let sts = cordon::aws::Clients::new(&self.sdk_config()).sts;
        let out = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/cordon-tests"))
            .role_session_name("tests")
            .send()
            .await?;
        let c = out.credentials().ok_or("no credentials")?;
        let credentials = aws_sdk_iam::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "assumed",
        );
        let config = self
            .sdk_config()
            .into_builder()
            .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .build();
        Ok(aws_sdk_iam::Client::new(&config))
    }

    /// The environment a function process needs to run against this emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// The volumes of this account's snapshots that match `filter` (e.g. `tag:cordon:incident`).
pub async fn snapshotted_volumes(
    ec2: &aws_sdk_ec2::Client,
    filter: &str,
    values: &[String],
) -> Result<Vec<String>, BoxError> {
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(filter)
                .set_values(Some(values.to_vec()))
                .build(),
        )
        .send()
        .await?;
    Ok(out
        .snapshots()
        .iter()
        .filter_map(|s| s.volume_id().map(str::to_owned))
        .collect())
}

/// The size multiplier of the reliability suite: 1 in `make test`, more in `make soak`.
pub fn soak_scale() -> usize {
    std::env::var("CORDON_SOAK_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

pub fn sdk_config(endpoint: &str, attempts: u32) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        // The functions' own retry mode, with a short backoff so fault tests run in seconds.
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(20)),
        )
        .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(
            aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "tests"),
        ))
        .build()
}

/// A name no other test in this run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The ledger table as template.yaml defines it.
pub async fn create_ledger_table(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), BoxError> {
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
    };
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let index = |name: &str, pk: &str| -> Result<GlobalSecondaryIndex, BoxError> {
        Ok(GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?)
            .key_schema(key("created_at", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()?)
    };
    ddb.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("resource_pk")?)
        .attribute_definitions(attr("open_pk")?)
        .attribute_definitions(attr("created_at")?)
        .global_secondary_indexes(index(BY_RESOURCE_INDEX, "resource_pk")?)
        .global_secondary_indexes(index(OPEN_INDEX, "open_pk")?)
        .send()
        .await?;
    Ok(())
}

/// A ledger table, an alert topic and a queue subscribed to it (so tests read what a person
/// would receive), plus the function configuration that points at them.
pub struct Deployment {
    pub clients: Clients,
    pub table: String,
    pub topic_arn: String,
    pub queue_url: String,
}

impl Deployment {
    pub async fn create(moto: &Moto) -> Result<Self, BoxError> {
        let config = moto.sdk_config();
        let clients = Clients::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let table = unique("ledger");
        create_ledger_table(&clients.dynamodb, &table).await?;
        let topic_arn = clients
            .sns
            .create_topic()
            .name(unique("alerts"))
            .send()
            .await?
            .topic_arn()
            .ok_or("no topic arn")?
            .to_owned();
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("inbox"))
            .send()
            .await?
            .queue_url()
            .ok_or("no queue url")?
            .to_owned();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .ok_or("no queue arn")?;
        clients
            .sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await?;
        Ok(Self {
            clients,
            table,
            topic_arn,
            queue_url,
        })
    }

    /// The function's environment, plus `extra` (e.g. `DRY_RUN=true`).
    pub fn vars(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut vars = vec![
            ("ALERT_TOPIC_ARN".to_owned(), self.topic_arn.clone()),
            ("LEDGER_TABLE".to_owned(), self.table.clone()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        vars
    }

    pub fn config(&self, extra: &[(&str, &str)]) -> Config {
        Config::from_vars(&self.vars(extra).into_iter().collect()).expect("test configuration")
    }

    /// Every notification delivered so far: (subject, message, attributes).
    pub async fn notifications(&self, moto: &Moto) -> Result<Vec<Value>, BoxError> {
        let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config());
        let mut all = Vec::new();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await?;
            if out.messages().is_empty() {
                return Ok(all);
            }
            for m in out.messages() {
                all.push(serde_json::from_str(m.body().unwrap_or("null"))?);
                if let Some(h) = m.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(h)
                        .send()
                        .await?;
                }
            }
        }
    }
}

/// A sample event from `events/`.
pub fn event(name: &str) -> Result<Value, BoxError> {
    let path = repo_root().join("events").join(name);
    Ok(serde_json::from_str(
        &std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?,
    )?)
}

/// Status of each of a user's keys, by id.
pub async fn key_statuses(
    iam: &aws_sdk_iam::Client,
    user: &str,
) -> Result<Vec<(String, String)>, BoxError> {
    let out = iam.list_access_keys().user_name(user).send().await?;
    Ok(out
        .access_key_metadata()
        .iter()
        .map(|k| {
            (
                k.access_key_id().unwrap_or_default().to_owned(),
                k.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect())
}

/// Whether a role holds cordon's session cutoff (`AWSRevokeOlderSessions`).
pub async fn sessions_revoked(iam: &aws_sdk_iam::Client, role: &str) -> bool {
    iam.get_role_policy()
        .role_name(role)
        .policy_name(cordon::policy::REVOKE_SESSIONS_POLICY_NAME)
        .send()
        .await
        .is_ok()
}

/// Names of the managed policies attached to a user, and of its inline policies.
pub async fn user_policies(
    iam: &aws_sdk_iam::Client,
    user: &str,
) -> Result<(Vec<String>, Vec<String>), BoxError> {
    let (attached, inline) = tokio::join!(
        iam.list_attached_user_policies().user_name(user).send(),
        iam.list_user_policies().user_name(user).send(),
    );
    let attached = attached?
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_name().map(str::to_owned))
        .collect();
    Ok((attached, inline?.policy_names().to_vec()))
}

/// Every item of one incident in the ledger, sorted by `sk`.
pub async fn ledger_items(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    incident: &str,
) -> Result<Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>, BoxError>
{
    let out = ddb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("INCIDENT#{incident}")),
        )
        .send()
        .await?;
    Ok(out.items().to_vec())
}

pub fn attr<'a>(
    item: &'a std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    key: &str,
) -> &'a str {
    item.get(key)
        .and_then(|v| v.as_s().ok().or_else(|| v.as_n().ok()))
        .map_or("", String::as_str)
}
