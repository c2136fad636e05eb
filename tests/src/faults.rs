//! A fault-injecting proxy between the function binaries and the local AWS.
//!
//! It listens on a free 127.0.0.1 port and forwards every AWS request to the
//! emulator, except that a set share of requests (the rate, drawn from a
//! seed, so a run is repeatable) get one injected fault instead:
//!
//! - the service's own **throttling error**, in the service's protocol: EC2
//!   `RequestLimitExceeded` (HTTP 503, EC2's XML), the other query services
//!   (SNS, RDS, STS, IAM, Auto Scaling, ELB) `Throttling` (HTTP 400,
//!   `ErrorResponse` XML), DynamoDB `ProvisionedThroughputExceededException`,
//!   Organizations `TooManyRequestsException`, Cost Explorer
//!   `LimitExceededException`, the other JSON services (SQS, Secrets Manager,
//!   Config, Budgets, KMS, ECS, ...) `ThrottlingException` (HTTP 400 JSON),
//!   REST services (GuardDuty, EKS, Lambda) HTTP 429 `TooManyRequestsException`;
//! - a **5xx** (500 `InternalFailure` or 503 `ServiceUnavailable`, in the
//!   same protocol);
//! - a **dropped connection**: the socket is closed without an answer. For
//!   a call that is not idempotent the drop happens only BEFORE the request
//!   reaches the emulator; an idempotent call may also be dropped AFTER the
//!   emulator did the work (its answer is thrown away), which is what a lost
//!   response looks like to a client;
//! - **latency**: the request waits (`FaultPlan::latency`) and is forwarded.
//!
//! Idempotent, for this proxy, means a read (`Describe*`, `List*`, `Get*`,
//! `BatchGet*`, `Query`, `Scan`, `AssumeRole`, REST `GET`) or a write listed
//! in [`IDEMPOTENT_WRITES`] (setting a state or a tag to a value). Every
//! other call is treated as NOT idempotent and is never dropped after the
//! emulator saw it: notably SNS `Publish`/`PublishBatch`, SQS
//! `SendMessage`/`SendMessageBatch`, RDS `CopyDBSnapshot`,
//! `CopyDBClusterSnapshot`, `CreateDBSnapshot`, `CreateDBClusterSnapshot`,
//! EC2 `CopySnapshot`, `CreateSnapshot(s)`, `CreateImage`, `CopyImage`,
//! `RunInstances`, `CreateSecurityGroup`, DynamoDB's conditional
//! `PutItem`/`UpdateItem`/`DeleteItem` (an idempotency claim answered twice
//! would look taken), Auto Scaling `EnterStandby`, Secrets Manager
//! `PutSecretValue`/`UpdateSecretVersionStage`, Config `PutEvaluations`.
//!
//! Determinism: the decision for a request depends only on the seed, its
//! `service.Operation` and how many requests of that operation came before
//! (not on timing), so a sequential scenario sees the same faults each run.
//!
//! The proxy counts what it injected ([`FaultProxy::counts`]). The function
//! binaries reach it by setting `AWS_ENDPOINT_URL` to [`FaultProxy::endpoint`]
//! (see [`FaultProxy::env`]); the harness's own set-up and checks go to the
//! emulator directly. Every forwarded exchange uses its own upstream
//! connection and the client connection is closed after one answer
//! (`Connection: close`), so no request is ever half-delivered by the proxy
//! except on purpose.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Writes that leave the same state however often they are repeated: a
/// dropped answer to one of these may be retried safely.
pub const IDEMPOTENT_WRITES: &[&str] = &[
    "StopInstances",
    "StartInstances",
    "CreateTags",
    "DeleteTags",
    "ModifyNetworkInterfaceAttribute",
    "ModifyInstanceAttribute",
    "AddTagsToResource",
    "RemoveTagsFromResource",
    "TagResource",
    "UntagResource",
    "StopDBInstance",
    "StartDBInstance",
    "StopDBCluster",
    "StartDBCluster",
    "UpdateAutoScalingGroup",
    "UpdateNodegroupConfig",
    "UpdateService",
    "DeregisterTargets",
    "PutRolePolicy",
    "AttachRolePolicy",
];

/// What to inject and how often.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Seeds every decision.
    pub seed: u64,
    /// Share of requests that get a fault, 0.0 to 1.0.
    pub rate: f64,
    /// How long a delayed request waits before it is forwarded.
    pub latency: Duration,
}

impl FaultPlan {
    /// `rate` faults with this seed and a 300 ms delay.
    pub fn new(seed: u64, rate: f64) -> FaultPlan {
        FaultPlan {
            seed,
            rate,
            latency: Duration::from_millis(300),
        }
    }
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Throttle,
    ServerError,
    DropBefore,
    DropAfter,
    Latency,
}

/// How a request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Forward,
    Inject(Fault),
}

/// The wire protocol of a request (decides the shape of an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// EC2's query protocol (its own error XML).
    Ec2,
    /// The other query-protocol services (`ErrorResponse` XML).
    Query,
    /// `X-Amz-Target` JSON services.
    Json,
    /// REST services (GuardDuty, EKS, Lambda).
    Rest,
}

/// What the proxy knows of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The signing name (`ec2`, `sns`, `dynamodb`, ...).
    pub service: String,
    /// The operation (`StopInstances`), or `METHOD /path` for REST calls.
    pub operation: String,
    pub protocol: Protocol,
    pub method: String,
}

impl Call {
    /// True when repeating the call after the emulator did it changes nothing.
    pub fn idempotent(&self) -> bool {
        if self.protocol == Protocol::Rest {
            return self.method == "GET";
        }
        let op = self.operation.as_str();
        ["Describe", "List", "Get", "BatchGet"]
            .iter()
            .any(|p| op.starts_with(p))
            || matches!(op, "Query" | "Scan" | "AssumeRole")
            || IDEMPOTENT_WRITES.contains(&op)
    }
}

/// What was injected, in total and per `service.Operation`.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub forwarded: u64,
    pub by_fault: BTreeMap<Fault, u64>,
    pub by_operation: BTreeMap<String, BTreeMap<Fault, u64>>,
}

impl Counts {
    /// Injected faults of every kind.
    pub fn injected(&self) -> u64 {
        self.by_fault.values().sum()
    }

    pub fn of(&self, fault: Fault) -> u64 {
        self.by_fault.get(&fault).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests reached the emulator; injected: {} throttles, {} 5xx, {} drops before, {} drops after, {} delays",
            self.forwarded,
            self.of(Fault::Throttle),
            self.of(Fault::ServerError),
            self.of(Fault::DropBefore),
            self.of(Fault::DropAfter),
            self.of(Fault::Latency),
        )
    }
}

struct State {
    plan: Mutex<FaultPlan>,
    seen: Mutex<HashMap<String, u64>>,
    counts: Mutex<Counts>,
    upstream: String,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:<port>`, the emulator).
    pub async fn start(upstream: &str, plan: FaultPlan) -> anyhow::Result<FaultProxy> {
        let upstream = upstream
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("the emulator's endpoint is not http: {upstream}"))?
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State {
            plan: Mutex::new(plan),
            seen: Mutex::new(HashMap::new()),
            counts: Mutex::new(Counts::default()),
            upstream,
        });
        let accepting = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = accepting.clone();
                tokio::spawn(async move {
                    let _ = serve(client, state).await;
                });
            }
        });
        Ok(FaultProxy {
            endpoint,
            state,
            task,
        })
    }

    /// What was injected so far.
    pub fn counts(&self) -> Counts {
        self.state
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the rate (0.0 switches injection off) from now on.
    pub fn set_rate(&self, rate: f64) {
        self.state
            .plan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rate = rate;
    }

    /// The variables that point a function process at the proxy (append
    /// them after the emulator's own so they win).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("AWS_ENDPOINT_URL".into(), self.endpoint.clone())]
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fault (or none) for the `nth` request (0-based) of `call`: pure, so
/// the same seed, operation and position always give the same answer.
pub fn decide(plan: &FaultPlan, call: &Call, nth: u64) -> Decision {
    let key = format!("{}.{}", call.service, call.operation);
    let h = mix(plan.seed ^ fnv1a(key.as_bytes()) ^ nth.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let draw = (h >> 11) as f64 / (1u64 << 53) as f64;
    if draw >= plan.rate {
        return Decision::Forward;
    }
    // Of the faults: 40% throttles, 25% 5xx, 20% drops, 15% delays.
    let kind = mix(h) % 100;
    let fault = match kind {
        0..=39 => Fault::Throttle,
        40..=64 => Fault::ServerError,
        65..=84 if call.idempotent() && mix(h ^ 1).is_multiple_of(2) => Fault::DropAfter,
        65..=84 => Fault::DropBefore,
        _ => Fault::Latency,
    };
    Decision::Inject(fault)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One HTTP/1.1 request as read from the client.
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn method_and_path(&self) -> (&str, &str) {
        let mut parts = self.head.lines().next().unwrap_or_default().split(' ');
        (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        )
    }

    /// The service, operation and protocol of the request.
    pub fn call(&self) -> Call {
        let (method, path) = self.method_and_path();
        let service = self
            .header("authorization")
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|scope| scope.split('/').nth(3))
            .unwrap_or("unknown")
            .to_string();
        if let Some(target) = self.header("x-amz-target") {
            return Call {
                service,
                operation: target.rsplit('.').next().unwrap_or(target).to_string(),
                protocol: Protocol::Json,
                method: method.to_string(),
            };
        }
        let body = String::from_utf8_lossy(&self.body);
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let action = [body.as_ref(), query].iter().find_map(|form| {
            form.split('&')
                .find_map(|pair| pair.strip_prefix("Action="))
                .map(str::to_string)
        });
        match action {
            Some(action) => Call {
                protocol: if service == "ec2" {
                    Protocol::Ec2
                } else {
                    Protocol::Query
                },
                service,
                operation: action,
                method: method.to_string(),
            },
            None => Call {
                service,
                operation: format!("{method} {}", path.split('?').next().unwrap_or(path)),
                protocol: Protocol::Rest,
                method: method.to_string(),
            },
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request (head, then a `Content-Length` or chunked body).
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut request = Request {
        head,
        body: buf[head_end..].to_vec(),
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    loop {
        let complete = if chunked {
            request.body.ends_with(b"0\r\n\r\n")
        } else {
            request.body.len() >= length
        };
        if complete {
            return Ok(Some(request));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        request.body.extend_from_slice(&chunk[..n]);
    }
}

/// The head with every `Connection` header replaced by `Connection: close`.
fn closing(head: &str) -> String {
    let mut out = String::new();
    for line in head.trim_end_matches("\r\n").split("\r\n") {
        if line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

async fn serve(mut client: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    let Some(request) = read_request(&mut client).await? else {
        return Ok(());
    };
    let call = request.call();
    let key = format!("{}.{}", call.service, call.operation);
    let nth = {
        let mut seen = state.seen.lock().unwrap_or_else(|e| e.into_inner());
        let n = seen.entry(key.clone()).or_insert(0);
        *n += 1;
        *n - 1
    };
    let plan = state.plan.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let decision = decide(&plan, &call, nth);
    if let Decision::Inject(fault) = decision {
        let mut counts = state.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.by_fault.entry(fault).or_default() += 1;
        *counts
            .by_operation
            .entry(key)
            .or_default()
            .entry(fault)
            .or_default() += 1;
    }
    match decision {
        Decision::Inject(Fault::Throttle) => {
            return client.write_all(&error_response(&call, true)).await;
        }
        Decision::Inject(Fault::ServerError) => {
            return client.write_all(&error_response(&call, false)).await;
        }
        // Closing the socket unanswered: the emulator never saw the request.
        Decision::Inject(Fault::DropBefore) => return Ok(()),
        Decision::Inject(Fault::Latency) => tokio::time::sleep(plan.latency).await,
        Decision::Inject(Fault::DropAfter) | Decision::Forward => {}
    }
    let response = forward(&state.upstream, &request).await?;
    state
        .counts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .forwarded += 1;
    if decision == Decision::Inject(Fault::DropAfter) {
        // The emulator did the work; the client never hears of it.
        return Ok(());
    }
    client.write_all(&response).await?;
    client.shutdown().await
}

/// Sends the request to the emulator on a fresh connection and returns its
/// whole answer, with `Connection: close`.
async fn forward(upstream: &str, request: &Request) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(closing(&request.head).as_bytes()).await?;
    server.write_all(&request.body).await?;
    let mut raw = Vec::new();
    server.read_to_end(&mut raw).await?;
    let Some(head_end) = find(&raw, b"\r\n\r\n") else {
        return Ok(raw);
    };
    let head = String::from_utf8_lossy(&raw[..head_end + 4]).into_owned();
    let mut out = closing(&head).into_bytes();
    out.extend_from_slice(&raw[head_end + 4..]);
    Ok(out)
}

/// The service's throttling error (`throttle`) or a 5xx, as a whole HTTP answer.
pub fn error_response(call: &Call, throttle: bool) -> Vec<u8> {
    let message = if throttle {
        "Rate exceeded (injected by the test harness)"
    } else {
        "We encountered an internal error (injected by the test harness)"
    };
    let (status, code) = match (call.protocol, throttle) {
        (Protocol::Ec2, true) => (503, "RequestLimitExceeded"),
        (Protocol::Query, true) => (400, "Throttling"),
        (Protocol::Json, true) => match call.service.as_str() {
            "dynamodb" => (400, "ProvisionedThroughputExceededException"),
            "organizations" => (400, "TooManyRequestsException"),
            "ce" => (400, "LimitExceededException"),
            _ => (400, "ThrottlingException"),
        },
        (Protocol::Rest, true) => (429, "TooManyRequestsException"),
        (Protocol::Ec2, false) => (503, "Unavailable"),
        (_, false) if call.operation.len().is_multiple_of(2) => (503, "ServiceUnavailable"),
        (_, false) => (500, "InternalFailure"),
    };
    let (content_type, body) = match call.protocol {
        Protocol::Ec2 => (
            "text/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>steward-fault</RequestID></Response>"
            ),
        ),
        Protocol::Query => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>steward-fault</RequestId></ErrorResponse>",
                if throttle { "Sender" } else { "Receiver" }
            ),
        ),
        Protocol::Json => (
            if matches!(call.service.as_str(), "dynamodb" | "sqs") {
                "application/x-amz-json-1.0"
            } else {
                "application/x-amz-json-1.1"
            },
            format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"),
        ),
        Protocol::Rest => (
            "application/json",
            format!("{{\"message\":\"{message}\"}}"),
        ),
    };
    let reason = match status {
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: steward-fault\r\nx-amzn-ErrorType: {code}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(service: &str, operation: &str, protocol: Protocol) -> Call {
        Call {
            service: service.into(),
            operation: operation.into(),
            protocol,
            method: "POST".into(),
        }
    }

    #[test]
    fn decisions_repeat_for_a_seed_and_hit_the_rate() {
        let plan = FaultPlan::new(7, 0.3);
        let publish = call("sns", "Publish", Protocol::Query);
        let first: Vec<Decision> = (0..2000).map(|n| decide(&plan, &publish, n)).collect();
        let again: Vec<Decision> = (0..2000).map(|n| decide(&plan, &publish, n)).collect();
        assert_eq!(first, again);
        let faults = first.iter().filter(|d| **d != Decision::Forward).count();
        assert!((500..700).contains(&faults), "{faults} of 2000");
        assert!(
            !first.contains(&Decision::Inject(Fault::DropAfter)),
            "a publish is never dropped after the emulator saw it"
        );
        let describe = call("ec2", "DescribeInstances", Protocol::Ec2);
        assert!(
            (0..2000).any(|n| decide(&plan, &describe, n) == Decision::Inject(Fault::DropAfter))
        );
    }

    #[test]
    fn throttles_speak_each_services_protocol() {
        let text = |c: Call| String::from_utf8(error_response(&c, true)).unwrap();
        assert!(text(call("ec2", "StopInstances", Protocol::Ec2))
            .contains("<Code>RequestLimitExceeded</Code>"));
        assert!(text(call("sns", "Publish", Protocol::Query)).contains("<Code>Throttling</Code>"));
        assert!(text(call("dynamodb", "PutItem", Protocol::Json))
            .contains("ProvisionedThroughputExceededException"));
        assert!(
            text(call("secretsmanager", "GetSecretValue", Protocol::Json))
                .contains("\"__type\":\"ThrottlingException\"")
        );
        assert!(text(call(
            "guardduty",
            "POST /detector/x/findings",
            Protocol::Rest
        ))
        .starts_with("HTTP/1.1 429"));
        for code in [
            "RequestLimitExceeded",
            "Throttling",
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "TooManyRequestsException",
            "LimitExceededException",
        ] {
            assert!(steward_shared::sdk::THROTTLING_CODES.contains(&code));
        }
    }

    #[test]
    fn requests_name_their_service_operation_and_protocol() {
        let auth = "Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=x";
        let request = |service: &str, head: &str, body: &str| Request {
            head: format!("{head}\r\n{}\r\n\r\n", auth.replace("{}", service)),
            body: body.as_bytes().to_vec(),
        };
        let query = request(
            "ec2",
            "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
            "Action=StopInstances&Version=2016-11-15&InstanceId.1=i-1",
        );
        assert_eq!(query.call(), call("ec2", "StopInstances", Protocol::Ec2));
        let sns = request("sns", "POST / HTTP/1.1", "Action=Publish&TopicArn=x");
        assert_eq!(sns.call(), call("sns", "Publish", Protocol::Query));
        let json = request(
            "dynamodb",
            "POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.PutItem",
            "{}",
        );
        assert_eq!(json.call(), call("dynamodb", "PutItem", Protocol::Json));
        let rest = request("guardduty", "GET /detector/d1/findings?x=1 HTTP/1.1", "");
        let rest = rest.call();
        assert_eq!(rest.operation, "GET /detector/d1/findings");
        assert_eq!(rest.protocol, Protocol::Rest);
        assert!(rest.idempotent());
    }

    #[test]
    fn reads_and_state_setting_writes_are_idempotent_copies_are_not() {
        assert!(call("ec2", "DescribeInstances", Protocol::Ec2).idempotent());
        assert!(call("ec2", "StopInstances", Protocol::Ec2).idempotent());
        for op in [
            "Publish",
            "SendMessage",
            "CopyDBSnapshot",
            "PutItem",
            "CreateSecurityGroup",
        ] {
            assert!(!call("x", op, Protocol::Query).idempotent(), "{op}");
        }
    }
}
