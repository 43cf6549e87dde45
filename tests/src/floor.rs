//! The AWS SDK's own cost per call on this machine: rolecall's real SDK path
//! (`executor::aws`) against a canned server in this process that answers
//! at once on a kept-alive connection, with the client on one thread whose
//! CPU time alone is measured. No emulator, no scheduling between threads:
//! what is left is the SDK's work per call (request building, endpoint
//! rules, signing, HTTP, XML parsing) and rolecall's around it, the floor
//! under the client CPU per account of the moto runs.

// The calling thread's CPU time (clock_gettime): std has none.
#![allow(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use executor::aws::{Connection, SdkCloud, load_config};
use executor::cloud::{Cloud, Stacks};
use model::{AccountId, Observed};

/// Client CPU per unit of work, in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    /// AssumeRole, plus the session rolecall builds from it.
    pub assume_role: f64,
    /// An account's first DescribeStacks, which builds its region's
    /// CloudFormation client from the process's config.
    pub first_describe: f64,
    /// DescribeStacks on a session that has its client.
    pub describe: f64,
    /// What `plan` does for one account and region: AssumeRole, then
    /// DescribeStacks with a new client.
    pub plan_account: f64,
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// AssumeRole calls at once within rolecall's STS rate limit (its burst).
const BATCH: usize = executor::limit::STS_PER_SECOND as usize;

/// Measures about `n` of each (in batches of `BATCH`), sequentially.
pub fn measure(n: usize) -> Floor {
    current_thread().block_on(async move {
        let cloud = warm_cloud().await;
        // Batches no larger than the AssumeRole rate limit's burst, with a
        // pause between them (not measured): a call held back by the limit
        // would count the runtime's sleep and wake-up, not the SDK's work.
        let (mut assume_role, mut first_describe, mut describe_again, mut plan_account) = (0.0, 0.0, 0.0, 0.0);
        let rounds = n.div_ceil(BATCH);
        for round in 0..rounds {
            let accounts: Vec<AccountId> = (0..BATCH)
                .map(|i| AccountId::parse(&format!("{:012}", 100_000_000_000 + round * BATCH + i)).expect("account id"))
                .collect();
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let start = thread_cpu();
            let mut sessions = Vec::with_capacity(BATCH);
            for account in &accounts {
                sessions.push(assume(&cloud, account).await);
            }
            assume_role += per(start, BATCH);

            let start = thread_cpu();
            for session in &sessions {
                describe(session).await;
            }
            first_describe += per(start, BATCH);

            let start = thread_cpu();
            for session in &sessions {
                describe(session).await;
            }
            describe_again += per(start, BATCH);
            drop(sessions);

            tokio::time::sleep(Duration::from_millis(1100)).await;
            let start = thread_cpu();
            for account in &accounts {
                describe(&assume(&cloud, account).await).await;
            }
            plan_account += per(start, BATCH);
        }
        let r = rounds as f64;
        let (assume_role, first_describe, describe_again, plan_account) = (
            assume_role / r,
            first_describe / r,
            describe_again / r,
            plan_account / r,
        );
        Floor {
            assume_role,
            first_describe,
            describe: describe_again,
            plan_account,
        }
    })
}

/// The measurements' runtime: one thread, whose CPU time is the client's.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// rolecall's real SDK path, pointed at a canned server of this process,
/// warmed up: the first call loads what is loaded once.
async fn warm_cloud() -> SdkCloud {
    let conn = Connection {
        endpoint_url: Some(canned_server()),
        region: Some("us-east-1".to_owned()),
        ..Connection::default()
    };
    let base = load_config(&conn)
        .await
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDFLOOR",
            "floorsecret",
            None,
            None,
            "floor",
        )))
        .build();
    let cloud = SdkCloud::new(base);
    let warm = assume(&cloud, &AccountId::parse("100000000000").expect("account id")).await;
    describe(&warm).await;
    cloud
}

/// What an account in flight costs in memory on the real SDK path: `n`
/// accounts assumed (through the STS rate limit: n / 100 seconds), each
/// with its CloudFormation client built by one DescribeStacks, all kept.
/// (resident MB before, resident MB with all `n` held).
pub fn sessions_in_flight(n: usize) -> (f64, f64) {
    current_thread().block_on(async move {
        let cloud = warm_cloud().await;
        let before = resident_mb();
        let mut sessions = Vec::with_capacity(n);
        for i in 0..n {
            let account = AccountId::parse(&format!("{:012}", 100_000_000_001 + i)).expect("account id");
            let session = assume(&cloud, &account).await;
            describe(&session).await;
            sessions.push(session);
        }
        let after = resident_mb();
        drop(sessions);
        (before, after)
    })
}

/// This process's resident set now (VmRSS), MB.
fn resident_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn assume(cloud: &SdkCloud, account: &AccountId) -> <SdkCloud as Cloud>::Session {
    let role = format!("arn:aws:iam::{account}:role/Floor");
    cloud
        .assume_role(account, &role, "floor", None)
        .await
        .expect("AssumeRole")
}

async fn describe(session: &impl Stacks) {
    match session.describe_stack("us-east-1", "rolecall-role").await {
        Ok(Observed::Present(_)) => {}
        other => panic!("the canned DescribeStacks answer did not parse: {other:?}"),
    }
}

fn per(start: Duration, n: usize) -> f64 {
    (thread_cpu() - start).as_secs_f64() * 1e6 / n as f64
}

/// A server on loopback answering AssumeRole and DescribeStacks with fixed
/// answers, keeping connections open; its own threads are not measured.
fn canned_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut conn = conn;
                loop {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let xml = if body.starts_with(b"Action=AssumeRole") {
                        assume_role_answer()
                    } else {
                        DESCRIBE_STACKS.to_owned()
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                        xml.len()
                    );
                    if conn.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

fn assume_role_answer() -> String {
    let expiry = aws_sdk_sts::primitives::DateTime::from(std::time::SystemTime::now() + Duration::from_secs(3600))
        .fmt(aws_sdk_sts::primitives::DateTimeFormat::DateTime)
        .expect("date");
    format!(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials><AccessKeyId>ASIAFLOOR</AccessKeyId><SecretAccessKey>floorsecret</SecretAccessKey><SessionToken>floortoken</SessionToken><Expiration>{expiry}</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::100000000000:assumed-role/Floor/floor</Arn><AssumedRoleId>AROAFLOOR:floor</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>floor</RequestId></ResponseMetadata></AssumeRoleResponse>"
    )
}

/// A rolecall role stack as DescribeStacks shows it.
const DESCRIBE_STACKS: &str = "<DescribeStacksResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><DescribeStacksResult><Stacks><member><StackId>arn:aws:cloudformation:us-east-1:100000000000:stack/rolecall-role/0b5e2f30-0000-0000-0000-000000000000</StackId><StackName>rolecall-role</StackName><StackStatus>CREATE_COMPLETE</StackStatus><CreationTime>2026-11-30T00:00:00Z</CreationTime><Description>rolecall cross-account role</Description><Capabilities><member>CAPABILITY_NAMED_IAM</member></Capabilities><Parameters/><Tags><member><Key>rolecall:managed</Key><Value>true</Value></member><member><Key>rolecall:template-sha256</Key><Value>0123456789abcdef</Value></member></Tags><Outputs><member><OutputKey>RoleArn</OutputKey><OutputValue>arn:aws:iam::100000000000:role/RolecallAccess</OutputValue></member></Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>floor</RequestId></ResponseMetadata></DescribeStacksResponse>";
