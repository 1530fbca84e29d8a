//! A fault-injecting HTTP proxy on 127.0.0.1 between the functions and moto. A configurable share
//! of requests is answered with each service's own throttling error, a 5xx, or a dropped
//! connection (before or after moto applied the request), so retries and honesty are tested
//! against the failures AWS really produces. A script can also answer named calls with a named
//! error, for the conditions moto never produces (eventual consistency, account limits), or
//! with a service's own success answer, for the calls moto does not serve; the requests it
//! answered are kept, so a test can see what was asked. It also counts how many requests for
//! each call were in flight at once, so a test can see a bound on concurrency held.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::BoxError;

#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub dropped_before: AtomicU64,
    pub dropped_after: AtomicU64,
    pub scripted: AtomicU64,
    pub in_flight: std::sync::Mutex<InFlight>,
}

/// Requests in flight by query API action: now, and the most there ever were at once.
#[derive(Debug, Default)]
pub struct InFlight {
    now: std::collections::HashMap<String, u64>,
    pub most: std::collections::HashMap<String, u64>,
}

impl Counts {
    /// The most requests for `action` the proxy held at once.
    pub fn most_at_once(&self, action: &str) -> u64 {
        self.in_flight
            .lock()
            .map(|f| f.most.get(action).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// One request counted in flight until dropped.
struct Flight<'a> {
    counts: &'a Counts,
    action: String,
}

impl<'a> Flight<'a> {
    fn start(counts: &'a Counts, request: &[u8]) -> Self {
        let action = query_action(request);
        if let Ok(mut f) = counts.in_flight.lock() {
            let now = f.now.entry(action.clone()).or_default();
            *now += 1;
            let now = *now;
            let most = f.most.entry(action.clone()).or_default();
            *most = (*most).max(now);
        }
        Self { counts, action }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        if let Ok(mut f) = self.counts.in_flight.lock() {
            if let Some(now) = f.now.get_mut(&self.action) {
                *now = now.saturating_sub(1);
            }
        }
    }
}

/// The query API action of a request (`Action=X&...` body), or "" for other protocols.
fn query_action(request: &[u8]) -> String {
    let text = String::from_utf8_lossy(request);
    text.split_once("\r\n\r\n")
        .and_then(|(_, body)| body.strip_prefix("Action="))
        .and_then(|rest| rest.split('&').next())
        .unwrap_or("")
        .to_owned()
}

pub struct FaultProxy {
    pub endpoint: String,
    pub counts: Arc<Counts>,
    /// The body of every request the script answered, in order.
    pub answered: Arc<std::sync::Mutex<Vec<String>>>,
}

/// Answer the next `times` requests for the API `action` (e.g. `AttachUserPolicy`, or a JSON
/// protocol's `UpdateItem`) with the error `code` and HTTP `status`, in that service's wire
/// format (IAM's XML, DynamoDB's JSON), without forwarding them.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub action: &'static str,
    pub code: &'static str,
    pub status: &'static str,
    pub times: usize,
}

/// Answer the next `times` requests for the query API `action` with `body` (the service's XML
/// answer) and HTTP `status`, without forwarding them: for calls moto does not implement.
#[derive(Debug, Clone)]
pub struct Answer {
    pub action: &'static str,
    pub status: &'static str,
    pub body: String,
    pub times: usize,
}

/// An [`Answer`] only for the requests for its action whose body also holds `contains`: one
/// attribute of a call that carries many (`DisableApiTermination.Value=true` of
/// ModifyInstanceAttribute), or one resource (a group id). Other requests reach moto.
#[derive(Debug, Clone)]
pub struct AnswerWhen {
    pub contains: String,
    pub answer: Answer,
}

/// EC2's own error answer (EC2 wraps errors differently from IAM), for [`Answer::body`].
pub fn ec2_error(code: &str, message: &str) -> String {
    format!("<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>scripted</RequestID></Response>")
}

/// Forward the next `times` requests for `action` untouched: written before a [`Scripted`]
/// rule for the same action, it lets the first calls through (a claim) and fails later ones.
#[derive(Debug, Clone)]
pub struct Forward {
    pub action: &'static str,
    pub times: usize,
}

/// What a rule does with a request it matches.
enum Reply {
    Error {
        status: &'static str,
        code: &'static str,
    },
    Raw(String),
    Forward,
}

/// One scripted rule, for the next `times` requests for `action` (whose body holds `contains`).
pub struct Rule {
    action: &'static str,
    contains: String,
    reply: Reply,
    times: usize,
}

impl From<Scripted> for Rule {
    fn from(s: Scripted) -> Self {
        Self {
            action: s.action,
            contains: String::new(),
            reply: Reply::Error {
                status: s.status,
                code: s.code,
            },
            times: s.times,
        }
    }
}

impl From<AnswerWhen> for Rule {
    fn from(a: AnswerWhen) -> Self {
        Self {
            contains: a.contains,
            ..Rule::from(a.answer)
        }
    }
}

impl From<Answer> for Rule {
    fn from(a: Answer) -> Self {
        Self {
            action: a.action,
            contains: String::new(),
            reply: Reply::Raw(format!(
                "HTTP/1.1 {}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                a.status,
                a.body.len(),
                a.body
            )),
            times: a.times,
        }
    }
}

impl From<Forward> for Rule {
    fn from(f: Forward) -> Self {
        Self {
            action: f.action,
            contains: String::new(),
            reply: Reply::Forward,
            times: f.times,
        }
    }
}

/// The JSON protocols (DynamoDB) name the operation in `X-Amz-Target: <Service>.<Action>`.
fn json_target(request: &str) -> Option<&str> {
    request.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("x-amz-target")
            .then(|| value.trim().rsplit('.').next())
            .flatten()
    })
}

#[derive(Clone, Copy)]
enum Fault {
    Throttle,
    ServerError,
    DropBefore,
    DropAfter,
}

/// A small deterministic generator (xorshift): the same seed gives the same sequence.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

impl FaultProxy {
    /// Proxies to `upstream` (`http://127.0.0.1:PORT`), failing `percent` of requests.
    pub async fn start(upstream: &str, percent: u64, seed: u64) -> Result<Self, BoxError> {
        Self::scripted(upstream, percent, seed, Vec::new()).await
    }

    pub async fn scripted(
        upstream: &str,
        percent: u64,
        seed: u64,
        script: Vec<Scripted>,
    ) -> Result<Self, BoxError> {
        Self::with_rules(upstream, percent, seed, script.into_iter().map(Rule::from)).await
    }

    /// Proxies to `upstream` without faults, answering the calls `answers` names itself (the
    /// first rule for an action that has answers left wins, so a sequence is written in order).
    pub async fn answering(upstream: &str, answers: Vec<Answer>) -> Result<Self, BoxError> {
        Self::in_order(upstream, answers.into_iter().map(Rule::from).collect()).await
    }

    /// Proxies to `upstream` without faults, applying `rules` of any kind in order.
    pub async fn in_order(upstream: &str, rules: Vec<Rule>) -> Result<Self, BoxError> {
        Self::with_rules(upstream, 0, 1, rules.into_iter()).await
    }

    /// [`FaultProxy::answering`], each answer only for the requests that hold its `contains`.
    pub async fn answering_when(
        upstream: &str,
        answers: Vec<AnswerWhen>,
    ) -> Result<Self, BoxError> {
        Self::in_order(upstream, answers.into_iter().map(Rule::from).collect()).await
    }

    async fn with_rules(
        upstream: &str,
        percent: u64,
        seed: u64,
        rules: impl Iterator<Item = Rule>,
    ) -> Result<Self, BoxError> {
        let script = Arc::new(std::sync::Mutex::new(rules.collect::<Vec<_>>()));
        let answered = Arc::new(std::sync::Mutex::new(Vec::new()));
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let counts = Arc::new(Counts::default());
        let rng = Arc::new(std::sync::Mutex::new(Rng(seed | 1)));
        let (c, seen) = (counts.clone(), answered.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, counts, rng, script, seen) = (
                    upstream.clone(),
                    c.clone(),
                    rng.clone(),
                    script.clone(),
                    seen.clone(),
                );
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, percent, &counts, &rng, &script, &seen).await;
                });
            }
        });
        Ok(Self {
            endpoint,
            counts,
            answered,
        })
    }
}

/// Reads one HTTP/1.1 request (headers and Content-Length body).
async fn read_request(stream: &mut TcpStream) -> Result<Option<Vec<u8>>, BoxError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buf))
}

/// The signing service in the Authorization header's credential scope.
fn service(request: &[u8]) -> String {
    let text = String::from_utf8_lossy(request);
    text.split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("")
        .to_owned()
}

/// The script's answer to this request, if any, used up by one (a [`Forward`] is used up and
/// answers nothing). The body of a request it answered is kept.
fn scripted_answer(
    request: &[u8],
    script: &std::sync::Mutex<Vec<Rule>>,
    answered: &std::sync::Mutex<Vec<String>>,
) -> Option<String> {
    let text = String::from_utf8_lossy(request);
    let target = json_target(&text);
    let mut script = script.lock().ok()?;
    let entry = script.iter_mut().find(|s| {
        s.times > 0
            && (target == Some(s.action) || text.contains(&format!("Action={}&", s.action)))
            && text.contains(&s.contains)
    })?;
    entry.times -= 1;
    let response = match &entry.reply {
        Reply::Forward => return None,
        Reply::Raw(response) => response.clone(),
        Reply::Error { status, code } if target.is_some() => {
            json_error(status, code, "scripted by the test")
        }
        Reply::Error { status, code } => query_error(status, code, "scripted by the test"),
    };
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    if let Ok(mut seen) = answered.lock() {
        seen.push(body.to_owned());
    }
    Some(response)
}

/// An error as DynamoDB's JSON protocol sends it.
fn json_error(status: &str, code: &str, message: &str) -> String {
    let body =
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#);
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn query_error(status: &str, code: &str, message: &str) -> String {
    let body = format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>");
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn throttle_response(service: &str) -> String {
    let (status, content_type, body) = match service {
        "dynamodb" => {
            return json_error(
                "400 Bad Request",
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            )
        }
        "ec2" => (
            "503 Service Unavailable",
            "text/xml",
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault</RequestID></Response>".to_owned(),
        ),
        _ => return query_error("400 Bad Request", "Throttling", "Rate exceeded"),
    };
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    percent: u64,
    counts: &Counts,
    rng: &std::sync::Mutex<Rng>,
    script: &std::sync::Mutex<Vec<Rule>>,
    answered: &std::sync::Mutex<Vec<String>>,
) -> Result<(), BoxError> {
    let Some(request) = read_request(&mut client).await? else {
        return Ok(());
    };
    counts.requests.fetch_add(1, Ordering::Relaxed);
    let _flight = Flight::start(counts, &request);
    if let Some(answer) = scripted_answer(&request, script, answered) {
        counts.scripted.fetch_add(1, Ordering::Relaxed);
        client.write_all(answer.as_bytes()).await?;
        return Ok(());
    }
    let roll = rng.lock().map(|mut r| r.next_u64()).unwrap_or(0);
    let kind = match (roll / 100) % 4 {
        0 => Fault::Throttle,
        1 => Fault::ServerError,
        2 => Fault::DropBefore,
        _ => Fault::DropAfter,
    };
    let fault = (roll % 100 < percent).then_some(kind);
    match fault {
        Some(Fault::Throttle) => {
            counts.throttled.fetch_add(1, Ordering::Relaxed);
            client
                .write_all(throttle_response(&service(&request)).as_bytes())
                .await?;
            return Ok(());
        }
        Some(Fault::ServerError) => {
            counts.server_errors.fetch_add(1, Ordering::Relaxed);
            client
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await?;
            return Ok(());
        }
        Some(Fault::DropBefore) => {
            counts.dropped_before.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        Some(Fault::DropAfter) | None => {}
    }
    // Forward with the connection closed after one exchange, so the response ends at EOF.
    let mut upstream = TcpStream::connect(upstream).await?;
    let text = String::from_utf8_lossy(&request);
    let header_end = text.find("\r\n\r\n").unwrap_or(0);
    let head: String = text[..header_end]
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    upstream.write_all(head.as_bytes()).await?;
    upstream.write_all(b"\r\nconnection: close\r\n\r\n").await?;
    upstream.write_all(&request[header_end + 4..]).await?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response).await?;
    if matches!(fault, Some(Fault::DropAfter)) {
        // Applied, but the caller never hears: its retry must be harmless.
        counts.dropped_after.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    client.write_all(&response).await?;
    Ok(())
}
