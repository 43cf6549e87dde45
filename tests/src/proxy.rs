//! A small HTTP proxy of our own between rolecall and moto: it counts calls
//! by service and operation, and injects the faults AWS has and moto does
//! not: throttling (query-protocol XML, or `TooManyRequestsException` JSON
//! for JSON services such as Organizations), 500 InternalFailure, 503,
//! connections dropped before or after the call reached the service, and
//! latency. Faults are chosen per service, action and account by a seeded
//! hash of the call's place in its sequence, so a failing run replays
//! with the same seed, whatever the interleaving. Like AWS's endpoints it
//! keeps client connections open between calls (moto's server does not).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What goes wrong with one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 400 Throttling / TooManyRequestsException; the call does not reach moto.
    Throttle,
    /// 500 InternalFailure; the call does not reach moto.
    InternalError,
    /// 503 ServiceUnavailable; the call does not reach moto.
    Unavailable,
    /// The connection closes before the call is forwarded.
    DropBefore,
    /// The call reaches moto, then the connection closes without its
    /// answer: the client must retry a call that already happened.
    DropAfter,
}

/// Which calls a fault hits, and how often.
#[derive(Clone, Debug)]
pub struct Rule {
    /// `cloudformation`, `sts`, `organizations`, `iam` (the signing name);
    /// `None`: any.
    pub service: Option<String>,
    pub action: Option<String>,
    /// The account the call acts in (learnt from AssumeRole); `None`: any.
    pub account: Option<String>,
    pub fault: Fault,
    /// Share of matching calls hit, 0.0–1.0 (ignored with `first`).
    pub share: f64,
    /// Hit the first N matching calls of each service/action/account.
    pub first: Option<usize>,
}

impl Rule {
    pub fn share(fault: Fault, share: f64) -> Rule {
        Rule {
            service: None,
            action: None,
            account: None,
            fault,
            share,
            first: None,
        }
    }
}

/// A fault plan: rules tried in order (the first that hits wins), a
/// seed, and latency added to every call (a fixed part plus a seeded
/// jitter up to `jitter`).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub seed: u64,
    pub rules: Vec<Rule>,
    pub latency: Duration,
    pub jitter: Duration,
}

#[derive(Default)]
struct Shared {
    /// `service:Operation` → calls that reached the proxy (throttled ones too).
    calls: BTreeMap<String, usize>,
    /// `Operation` → how many more calls to answer with Throttling.
    throttle: BTreeMap<String, usize>,
    throttled: usize,
    /// Added to every call before it is forwarded (a slow cloud).
    delay: Duration,
    faults: Faults,
    /// Calls so far by (service, action, account): a call's place in it
    /// picks its fault.
    sequence: BTreeMap<(String, String, String), u64>,
    /// Faults injected, by kind.
    injected: BTreeMap<Fault, usize>,
    /// Access key id → account, from AssumeRole answers.
    keys: BTreeMap<String, String>,
    /// Secret access keys and session tokens the service handed out.
    secrets: Vec<String>,
    /// Slow stacks: for this long after its CreateStack, a stack reads
    /// CREATE_IN_PROGRESS without outputs (AWS takes 30–60 s; moto none).
    slow_stacks: Duration,
    /// When each stack was created, by (account, region, stack name).
    created: BTreeMap<(String, String, String), std::time::Instant>,
    /// The most stacks in progress at once (slow stacks only).
    max_in_progress: usize,
}

/// Listens on a free loopback port and forwards to `upstream`; stops when
/// dropped.
pub struct Proxy {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (shared.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                thread::spawn(move || {
                    let _ = serve(conn, upstream_port, &s);
                });
            }
        });
        Proxy { port, shared, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Calls by `service:Operation`, then forgets them.
    pub fn take_calls(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut self.shared.lock().unwrap().calls)
    }

    /// Calls of `Operation` (any service) so far.
    pub fn calls_of(&self, operation: &str) -> usize {
        let shared = self.shared.lock().unwrap();
        shared
            .calls
            .iter()
            .filter(|(k, _)| k.rsplit(':').next() == Some(operation))
            .map(|(_, n)| n)
            .sum()
    }

    /// Answers the next `count` calls of `operation` with Throttling.
    pub fn throttle(&self, operation: &str, count: usize) {
        self.shared.lock().unwrap().throttle.insert(operation.to_owned(), count);
    }

    /// Makes every later call this much slower.
    pub fn delay(&self, delay: Duration) {
        self.shared.lock().unwrap().delay = delay;
    }

    pub fn throttled(&self) -> usize {
        self.shared.lock().unwrap().throttled
    }

    /// Injects faults from now on (replacing any earlier plan).
    pub fn faults(&self, faults: Faults) {
        let mut s = self.shared.lock().unwrap();
        s.faults = faults;
        s.sequence.clear();
    }

    /// Every secret access key and session token that AssumeRole answers
    /// carried through the proxy.
    pub fn secrets(&self) -> Vec<String> {
        self.shared.lock().unwrap().secrets.clone()
    }

    /// From now on a created stack reads CREATE_IN_PROGRESS, without
    /// outputs, for `duration` after its CreateStack.
    pub fn slow_stacks(&self, duration: Duration) {
        self.shared.lock().unwrap().slow_stacks = duration;
    }

    /// The most stacks that were in progress at once (slow stacks).
    pub fn max_stacks_in_progress(&self) -> usize {
        self.shared.lock().unwrap().max_in_progress
    }

    /// Faults injected so far, by kind, then forgets them.
    pub fn take_injected(&self) -> BTreeMap<Fault, usize> {
        std::mem::take(&mut self.shared.lock().unwrap().injected)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Calls whose name says they only read.
pub fn is_read(operation: &str) -> bool {
    let op = operation.rsplit(':').next().unwrap_or(operation);
    ["Describe", "List", "Get"].iter().any(|p| op.starts_with(p)) || op == "AssumeRole" || op == "GetCallerIdentity"
}

/// Serves one client connection: calls one after another on it, as AWS's
/// endpoints do (HTTP/1.1 keep-alive), although moto's server closes the
/// connection after every answer: each call is forwarded to moto on a
/// connection of its own. A dropped-connection fault closes it.
fn serve(client: TcpStream, upstream_port: u16, shared: &Mutex<Shared>) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    while serve_one(&mut reader, &mut client, upstream_port, shared)? {}
    Ok(())
}

/// One call of a connection; `false` when the connection is to close.
fn serve_one(
    reader: &mut BufReader<TcpStream>,
    client: &mut TcpStream,
    upstream_port: u16,
    shared: &Mutex<Shared>,
) -> std::io::Result<bool> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(false);
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let header = |name: &str| {
        head.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let keep_open = !head[0].trim_end().ends_with("HTTP/1.0")
        && !header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let service = header("authorization")
        .and_then(|a| a.split('/').nth(3).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    let operation = if service == "s3" {
        s3_operation(
            &head[0],
            header("if-match").is_some(),
            header("if-none-match").is_some(),
        )
    } else {
        operation(header("x-amz-target"), &body)
    };
    let json = header("content-type").is_some_and(|c| c.contains("json"));
    let account = account_of(&service, &operation, &body, header("authorization"), shared);
    let account_key = account.clone();
    let (throttle, fault, delay) = {
        let mut s = shared.lock().unwrap();
        *s.calls.entry(format!("{service}:{operation}")).or_default() += 1;
        let throttle = match s.throttle.get_mut(&operation) {
            Some(n) if *n > 0 => {
                *n -= 1;
                s.throttled += 1;
                true
            }
            _ => false,
        };
        let key = (service.clone(), operation.clone(), account);
        let n = {
            let n = s.sequence.entry(key.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let fault = if throttle { None } else { pick(&s.faults, &key, n) };
        if let Some(f) = fault {
            *s.injected.entry(f).or_default() += 1;
        }
        let jitter = s.faults.jitter.as_micros() as u64;
        let jitter = if jitter == 0 {
            0
        } else {
            mix(s.faults.seed ^ 0x6a09e667, &key, n) % jitter
        };
        (
            throttle,
            fault,
            s.delay + s.faults.latency + Duration::from_micros(jitter),
        )
    };
    thread::sleep(delay);
    let response = match (throttle, fault) {
        (true, _) | (_, Some(Fault::Throttle)) => throttling_response(json),
        (_, Some(Fault::InternalError)) => error_response(json, 500, "InternalFailure", "Internal Server Error"),
        (_, Some(Fault::Unavailable)) => error_response(json, 503, "ServiceUnavailable", "Service Unavailable"),
        (_, Some(Fault::DropBefore)) => return Ok(false),
        (_, Some(Fault::DropAfter)) => {
            let response = forward(upstream_port, &head, &body)?;
            learn_keys(&operation, &body, &response, shared);
            return Ok(false);
        }
        (false, None) => {
            let response = forward(upstream_port, &head, &body)?;
            learn_keys(&operation, &body, &response, shared);
            let region = header("authorization")
                .and_then(|a| a.split("Credential=").nth(1)?.split('/').nth(2).map(str::to_owned))
                .unwrap_or_default();
            slow_stack(&service, &operation, (account_key, region), &body, response, shared)
        }
    };
    let (response, open) = match reframed(&response, keep_open) {
        Some(r) => (r, keep_open),
        None => (response, false),
    };
    client.write_all(&response)?;
    client.flush()?;
    Ok(open)
}

/// Slow stacks: a CreateStack is remembered; a DescribeStacks of a stack
/// created less than the slow time ago answers CREATE_IN_PROGRESS without
/// outputs (and its Content-Length fixed).
fn slow_stack(
    service: &str,
    operation: &str,
    (account, region): (String, String),
    body: &[u8],
    response: Vec<u8>,
    shared: &Mutex<Shared>,
) -> Vec<u8> {
    if service != "cloudformation" {
        return response;
    }
    let mut s = shared.lock().unwrap();
    if s.slow_stacks.is_zero() {
        return response;
    }
    let body = String::from_utf8_lossy(body);
    let Some(name) = body.split('&').find_map(|kv| kv.strip_prefix("StackName=")) else {
        return response;
    };
    let key = (account, region, name.to_owned());
    let now = std::time::Instant::now();
    let slow = s.slow_stacks;
    let ok = response.starts_with(b"HTTP/1.1 200") || response.starts_with(b"HTTP/1.0 200");
    match operation {
        "CreateStack" if ok => {
            s.created.insert(key, now);
            let in_progress = s.created.values().filter(|t| now.duration_since(**t) < slow).count();
            s.max_in_progress = s.max_in_progress.max(in_progress);
            response
        }
        "DescribeStacks" if s.created.get(&key).is_some_and(|t| now.duration_since(*t) < slow) => {
            in_progress(&response).unwrap_or(response)
        }
        _ => response,
    }
}

/// A DescribeStacks answer as AWS gives it while the stack is being
/// created: CREATE_IN_PROGRESS, no outputs yet.
fn in_progress(response: &[u8]) -> Option<Vec<u8>> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..end]).ok()?;
    let body = std::str::from_utf8(&response[end + 4..]).ok()?;
    let mut body = body.replace(
        "<StackStatus>CREATE_COMPLETE</StackStatus>",
        "<StackStatus>CREATE_IN_PROGRESS</StackStatus>",
    );
    if let (Some(start), Some(stop)) = (body.find("<Outputs>"), body.find("</Outputs>")) {
        body.replace_range(start..stop + "</Outputs>".len(), "");
    }
    let head: Vec<String> = head
        .split("\r\n")
        .map(|line| {
            if line.to_ascii_lowercase().starts_with("content-length:") {
                format!("Content-Length: {}", body.len())
            } else {
                line.to_owned()
            }
        })
        .collect();
    Some(format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes())
}

/// An answer framed for the client's connection: moto's `Connection:
/// close` dropped, a length added if it has none (moto closed its
/// connection, so the body is whole), and `Connection: close` when ours
/// closes too. `None` if it is not an HTTP answer (sent as it is, then the
/// connection closes).
fn reframed(response: &[u8], keep_open: bool) -> Option<Vec<u8>> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..end]).ok()?;
    let body = &response[end + 4..];
    let mut lines = head.split("\r\n");
    let mut out = format!("{}\r\n", lines.next()?);
    let mut framed = false;
    for line in lines {
        let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
        match name.as_str() {
            "connection" => continue,
            "content-length" | "transfer-encoding" => framed = true,
            _ => {}
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if !framed {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if !keep_open {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    Some(out)
}

/// The fault for the `n`-th call of `key`, if any.
fn pick(faults: &Faults, key: &(String, String, String), n: u64) -> Option<Fault> {
    let (service, action, account) = key;
    faults.rules.iter().enumerate().find_map(|(i, rule)| {
        let matches = rule.service.as_ref().is_none_or(|s| s == service)
            && rule.action.as_ref().is_none_or(|a| a == action)
            && rule.account.as_ref().is_none_or(|a| a == account);
        if !matches {
            return None;
        }
        let hit = match rule.first {
            Some(first) => n < first as u64,
            None => (mix(faults.seed.wrapping_add(i as u64), key, n) as f64 / u64::MAX as f64) < rule.share,
        };
        hit.then_some(rule.fault)
    })
}

/// A seeded hash of a call's place (SplitMix64 over FNV-1a of the key).
fn mix(seed: u64, key: &(String, String, String), n: u64) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325 ^ seed;
    for part in [&key.0, &key.1, &key.2] {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    let mut z = h ^ n.wrapping_mul(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// The account a call acts in: AssumeRole's target, or the account whose
/// assumed keys signed it; the caller's own calls are `source`.
fn account_of(
    service: &str,
    operation: &str,
    body: &[u8],
    authorization: Option<String>,
    shared: &Mutex<Shared>,
) -> String {
    if service == "sts"
        && operation == "AssumeRole"
        && let Some(account) = role_account(body)
    {
        return account;
    }
    let key = authorization
        .as_deref()
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned();
    shared
        .lock()
        .unwrap()
        .keys
        .get(&key)
        .cloned()
        .unwrap_or_else(|| "source".to_owned())
}

/// The account id in AssumeRole's (URL-encoded) RoleArn.
fn role_account(body: &[u8]) -> Option<String> {
    let body = String::from_utf8_lossy(body);
    let arn = body.split('&').find_map(|kv| kv.strip_prefix("RoleArn="))?;
    let arn = arn.replace("%3A", ":").replace("%3a", ":");
    arn.split(':').nth(4).map(str::to_owned)
}

/// Remembers which account the keys of an AssumeRole answer act in.
fn learn_keys(operation: &str, body: &[u8], response: &[u8], shared: &Mutex<Shared>) {
    if operation != "AssumeRole" {
        return;
    }
    let response = String::from_utf8_lossy(response);
    let key = response
        .split("<AccessKeyId>")
        .nth(1)
        .and_then(|r| r.split("</AccessKeyId>").next());
    let mut s = shared.lock().unwrap();
    for tag in ["SecretAccessKey", "SessionToken"] {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        if let Some(value) = response.split(&open).nth(1).and_then(|r| r.split(&close).next()) {
            s.secrets.push(value.to_owned());
        }
    }
    if let (Some(key), Some(account)) = (key, role_account(body)) {
        s.keys.insert(key.to_owned(), account);
    }
}

/// S3 is REST: the operation is the method on an object, with the write's
/// condition (`PutObject(If-Match)`, `PutObject(If-None-Match)`).
fn s3_operation(request_line: &str, if_match: bool, if_none_match: bool) -> String {
    let name = match request_line.split(' ').next() {
        Some("PUT") => "PutObject",
        Some("GET") => "GetObject",
        Some("HEAD") => "HeadObject",
        Some("DELETE") => "DeleteObject",
        _ => "unknown",
    };
    match (if_match, if_none_match) {
        (true, _) => format!("{name}(If-Match)"),
        (_, true) => format!("{name}(If-None-Match)"),
        _ => name.to_owned(),
    }
}

fn operation(target: Option<String>, body: &[u8]) -> String {
    if let Some(t) = target {
        return t.rsplit('.').next().unwrap_or(&t).to_owned();
    }
    let body = String::from_utf8_lossy(body);
    body.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("unknown")
        .to_owned()
}

fn forward(port: u16, head: &[String], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut upstream = TcpStream::connect(("127.0.0.1", port))?;
    upstream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut request = Vec::new();
    for line in head {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            request.extend_from_slice(b"Connection: close\r\n");
        }
        request.extend_from_slice(line.as_bytes());
    }
    request.extend_from_slice(body);
    upstream.write_all(&request)?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response)?;
    Ok(response)
}

fn error_response(json: bool, status: u16, code: &str, message: &str) -> Vec<u8> {
    let (content_type, body) = if json {
        (
            "application/x-amz-json-1.1",
            format!(r#"{{"__type":"{code}","message":"{message}"}}"#),
        )
    } else {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>rolecall-proxy</RequestId></ErrorResponse>"
            ),
        )
    };
    let reason = if status == 503 {
        "Service Unavailable"
    } else {
        "Internal Server Error"
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: rolecall-proxy\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn throttling_response(json: bool) -> Vec<u8> {
    let (content_type, body) = if json {
        (
            "application/x-amz-json-1.1",
            r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#.to_owned(),
        )
    } else {
        (
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>rolecall-proxy</RequestId></ErrorResponse>".to_owned(),
        )
    };
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: rolecall-proxy\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
