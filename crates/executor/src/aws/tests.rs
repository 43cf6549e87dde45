//! The SDK path against stub servers on loopback: one validation of the
//! HTTP client per process, and account sessions renewed before they expire.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use model::AccountId;

use super::sts::needs_renewal;
use super::*;
use crate::cloud::Cloud;

/// Counts the validations the SDK asks of an HTTP client.
#[derive(Debug)]
struct Counting(Arc<AtomicUsize>, SharedHttpClient);

impl HttpClient for Counting {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.1.http_connector(settings, components)
    }

    fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Builds five CloudFormation clients the way a session does and says
/// how many times the base HTTP client was validated.
async fn validations(wrap: bool) -> usize {
    let count = Arc::new(AtomicUsize::new(0));
    let counting = SharedHttpClient::new(Counting(count.clone(), http_client()));
    let base = aws_config::defaults(BehaviorVersion::latest())
        .http_client(if wrap { ValidateOnce::wrap(counting) } else { counting })
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDCALLER", "callersecret", None, None, "test"))
        .load()
        .await;
    for account in 0..5 {
        let _ = cfn::Client::from_conf(
            cfn::config::Builder::from(&base)
                .region(Region::new("eu-west-1"))
                .retry_partition(partition("cfn", &account.to_string()))
                .build(),
        );
    }
    count.load(Ordering::SeqCst)
}

#[tokio::test]
async fn the_http_client_is_validated_once_not_per_client() {
    // The SDK validates per client (for hyper: a TLS connector built
    // and thrown away, every root certificate parsed); ours once.
    assert_eq!(validations(false).await, 5);
    assert_eq!(validations(true).await, 1);
}

/// A one-operation STS on loopback: AssumeRole answers whose first
/// credentials of each role expire in a minute and later ones in an hour.
fn stub_sts(calls: Arc<AtomicUsize>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut roles = std::collections::HashSet::new();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let body = String::from_utf8_lossy(&body);
            let role = body.split('&').find(|p| p.starts_with("RoleArn=")).unwrap_or_default();
            let lasts = if roles.insert(role.to_owned()) { 60 } else { 3600 };
            let expiry = cfn::primitives::DateTime::from(std::time::SystemTime::now() + Duration::from_secs(lasts))
                .fmt(cfn::primitives::DateTimeFormat::DateTime)
                .unwrap();
            let xml = format!(
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials><AccessKeyId>ASIAKEY{n}</AccessKeyId><SecretAccessKey>secret{n}</SecretAccessKey><SessionToken>token{n}</SessionToken><Expiration>{expiry}</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::111111111111:assumed-role/R/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r{n}</RequestId></ResponseMetadata></AssumeRoleResponse>"
            );
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
        }
    });
    url
}

/// rolecall's cloud with the stub STS of `stub_sts` as its endpoint.
async fn stub_cloud(calls: Arc<AtomicUsize>) -> SdkCloud {
    let base = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .region(Region::new("us-east-1"))
        .endpoint_url(stub_sts(calls))
        .credentials_provider(Credentials::new("AKIDCALLER", "callersecret", None, None, "test"))
        .load()
        .await;
    SdkCloud::new(base)
}

#[tokio::test]
async fn an_account_session_is_renewed_before_it_expires() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cloud = stub_cloud(calls.clone()).await;
    let account = AccountId::parse("111111111111").unwrap();
    let session = cloud
        .assume_role(&account, "arn:aws:iam::111111111111:role/Boot", "s", None)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The first session has a minute left: the next use renews it.
    let creds = session.creds.provide_credentials().await.unwrap();
    assert_eq!(creds.access_key_id(), "ASIAKEY2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // An hour left: kept.
    let creds = session.creds.provide_credentials().await.unwrap();
    assert_eq!(creds.access_key_id(), "ASIAKEY2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// Thousands of sessions in flight, each used by three stacks at once when
/// it has a minute left: each is renewed exactly once (the stacks wait for
/// the one renewal), and the renewals go through the run's STS limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_sessions_in_flight_are_each_renewed_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut cloud = stub_cloud(calls.clone()).await;
    // A limit this test can see: 2,000 a second, no burst.
    cloud.sts_limit = Arc::new(RateLimit::per_second(2_000, 1));
    let n = 1_000;
    let sessions = futures::future::join_all((0..n).map(|i| {
        let cloud = &cloud;
        async move {
            let account = AccountId::parse(&format!("{:012}", 200_000_000_000u64 + i)).unwrap();
            let arn = format!("arn:aws:iam::{account}:role/Boot");
            cloud.assume_role(&account, &arn, "s", None).await.unwrap()
        }
    }))
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), n as usize);
    let started = std::time::Instant::now();
    let keys =
        futures::future::join_all(sessions.iter().flat_map(|session| {
            (0..3).map(move |_| async move { session.creds.provide_credentials().await.unwrap() })
        }))
        .await;
    let took = started.elapsed();
    assert_eq!(calls.load(Ordering::SeqCst), 2 * n as usize, "one renewal per session");
    let number = |k: &Credentials| k.access_key_id()["ASIAKEY".len()..].parse::<u64>().unwrap();
    assert!(
        keys.iter().all(|k| number(k) > n),
        "every stack got renewed credentials"
    );
    let distinct: std::collections::HashSet<&str> = keys.iter().map(|k| k.access_key_id()).collect();
    assert_eq!(
        distinct.len(),
        n as usize,
        "the three stacks of a session share its renewal"
    );
    // 1,000 renewals at 2,000 a second with no burst take half a second.
    assert!(
        took >= Duration::from_millis(450),
        "{took:?}: the renewals went around the STS limit"
    );
}

#[test]
fn renewal_window() {
    let now = std::time::SystemTime::now();
    let lasting = |secs| Credentials::new("a", "b", None, Some(now + Duration::from_secs(secs)), "t");
    assert!(needs_renewal(None, now));
    assert!(needs_renewal(Some(&lasting(299)), now));
    assert!(!needs_renewal(Some(&lasting(301)), now));
    let expired = Credentials::new("a", "b", None, Some(now - Duration::from_secs(1)), "t");
    assert!(needs_renewal(Some(&expired), now));
}

/// StackSets takes a count or a percentage of each preference, never both:
/// a percentage from the inventory replaces the count.
#[test]
fn operation_preferences_are_a_count_or_a_percentage() {
    let base = crate::cloud::OperationPrefs {
        max_concurrent: 64,
        failure_tolerance: 2,
        region_parallel: true,
        soft_failure_tolerance: true,
        max_concurrent_percentage: None,
        failure_tolerance_percentage: None,
    };
    let counts = super::stacksets::prefs(base);
    assert_eq!(
        (counts.max_concurrent_count(), counts.max_concurrent_percentage()),
        (Some(64), None)
    );
    assert_eq!(
        (counts.failure_tolerance_count(), counts.failure_tolerance_percentage()),
        (Some(2), None)
    );
    let percent = super::stacksets::prefs(crate::cloud::OperationPrefs {
        max_concurrent_percentage: Some(100),
        failure_tolerance_percentage: Some(10),
        ..base
    });
    assert_eq!(
        (percent.max_concurrent_count(), percent.max_concurrent_percentage()),
        (None, Some(100))
    );
    assert_eq!(
        (
            percent.failure_tolerance_count(),
            percent.failure_tolerance_percentage()
        ),
        (None, Some(10))
    );
    assert_eq!(
        percent.concurrency_mode(),
        Some(&aws_sdk_cloudformation::types::ConcurrencyMode::SoftFailureTolerance)
    );
}
