//! AWS clients, built once per cold start from the SDK's own configuration chain, so
//! `AWS_ENDPOINT_URL[_<SERVICE>]` and `AWS_REGION` point the same code at moto or at AWS.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, HttpClientError};
use aws_smithy_types::error::display::DisplayErrorContext;

#[derive(Clone, Debug)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    pub sns: aws_sdk_sns::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
}

impl Clients {
    pub async fn from_env(trust: TrustStore) -> Result<Self, HttpClientError> {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(trust.https_client()?)
            // IAM throttles at a few requests per second per account: retry with backoff, but
            // within a bound that leaves the invocation time to record what happened.
            .retry_config(RetryConfig::standard().with_max_attempts(6))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .load()
            .await;
        Ok(Self::new(&config))
    }

    /// Every call keeps its full retry attempts. The SDK's default retry quota (a token bucket
    /// shared by a client's calls) would, under sustained throttling, turn a warm container's
    /// later calls into single attempts: the soak test saw 30% of invocations fail that way.
    /// Each call's attempts and time stay bounded, and so does the functions' concurrency.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        use aws_sdk_iam::config::retry::{RetryPartition, TokenBucket};
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(config)
                        .retry_partition(
                            RetryPartition::custom("cordon")
                                .token_bucket(TokenBucket::unlimited())
                                .build(),
                        )
                        .build(),
                )
            };
        }
        Self {
            iam: client!(aws_sdk_iam),
            sts: client!(aws_sdk_sts),
            sns: client!(aws_sdk_sns),
            dynamodb: client!(aws_sdk_dynamodb),
            ec2: client!(aws_sdk_ec2),
            autoscaling: client!(aws_sdk_autoscaling),
            elbv2: client!(aws_sdk_elasticloadbalancingv2),
        }
    }
}

impl Clients {
    /// The ledger and the alert topic may live in another region: one of each per account,
    /// shared by every region's deployment. Their clients call the region their ARNs name.
    pub fn with_store_regions(mut self, ledger: Option<&str>, topic: Option<&str>) -> Self {
        use aws_config::Region;
        if let Some(region) = ledger {
            let conf = self.dynamodb.config().to_builder();
            self.dynamodb = aws_sdk_dynamodb::Client::from_conf(
                conf.region(Region::new(region.to_owned())).build(),
            );
        }
        if let Some(region) = topic {
            let conf = self.sns.config().to_builder();
            self.sns =
                aws_sdk_sns::Client::from_conf(conf.region(Region::new(region.to_owned())).build());
        }
        self
    }
}

/// Which certificate authorities the AWS clients trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustStore {
    /// The five Amazon Trust Services roots every AWS API endpoint chains to, compiled in. No
    /// other CA can vouch for an endpoint that receives our IAM writes, and cold start skips
    /// reading and parsing the system's ~150 roots (CPU that 128 MB Lambda has little of).
    Amazon,
    /// The operating system's store: for a TLS-inspecting proxy, or a partition whose endpoints
    /// chain to other roots.
    System,
}

const AMAZON_TRUST_SERVICES: &str = include_str!("../tls/amazon-trust-services.pem");

impl TrustStore {
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "amazon" => Some(Self::Amazon),
            "system" => Some(Self::System),
            _ => None,
        }
    }

    fn https_client(self) -> Result<aws_sdk_iam::config::SharedHttpClient, HttpClientError> {
        let store = match self {
            Self::Amazon => tls::TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES),
            Self::System => tls::TrustStore::default(),
        };
        Ok(Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(tls::TlsContext::builder().with_trust_store(store).build()?)
            .build_https())
    }
}

/// An AWS call that failed after the SDK's retries: the service's error code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn from_sdk<E>(e: E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error,
    {
        Self {
            code: e.code().unwrap_or("NoResponse").to_owned(),
            message: e
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| DisplayErrorContext(&e).to_string()),
        }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }
}

/// `.map_err(aws)` on any SDK call.
pub fn aws<E>(e: E) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    AwsError::from_sdk(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    /// The SDK parses these PEMs when it first connects and panics on a bad one: prove they parse.
    #[test]
    fn the_amazon_trust_store_holds_the_five_roots() {
        let roots = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(roots.len(), 5);
        assert!(TrustStore::Amazon.https_client().is_ok());
        assert_eq!(TrustStore::parse("System"), Some(TrustStore::System));
        assert_eq!(TrustStore::parse("none"), None);
    }
}
