//! A small HTTP proxy of our own between rolecall and moto: it counts calls
//! by service and operation, and can answer some calls itself with the
//! throttling error AWS would send (moto never throttles).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Default)]
struct Shared {
    /// `service:Operation` → calls that reached the proxy (throttled ones too).
    calls: BTreeMap<String, usize>,
    /// `Operation` → how many more calls to answer with Throttling.
    throttle: BTreeMap<String, usize>,
    throttled: usize,
    /// Added to every call before it is forwarded (a slow cloud).
    delay: Duration,
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

fn serve(client: TcpStream, upstream_port: u16, shared: &Mutex<Shared>) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
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
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let operation = operation(header("x-amz-target"), &body);
        let service = header("authorization")
            .and_then(|a| a.split('/').nth(3).map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        let json = header("content-type").is_some_and(|c| c.contains("json"));
        let (throttle, delay) = {
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
            (throttle, s.delay)
        };
        thread::sleep(delay);
        let response = if throttle {
            throttling_response(json)
        } else {
            forward(upstream_port, &head, &body)?
        };
        client.write_all(&response)?;
        client.flush()?;
    }
    // moto closes after each response; so do we (one request per connection).
    Ok(())
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
        "HTTP/1.1 400 Bad Request\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: rolecall-proxy\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
