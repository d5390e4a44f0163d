//! A fault-injecting HTTP/1.1 proxy in front of the AWS API emulator, for tests and benches.
//!
//! [`FaultProxy::start`] listens on a free loopback port and forwards every request to the
//! emulator, one std thread per client connection (threads are detached and die with the
//! process). Clients may keep their connection alive for many requests, as the AWS SDK does;
//! each request goes upstream on a fresh connection with `Connection: close`, and its response
//! comes back with a plain `Content-Length` (chunked bodies are decoded both ways).
//!
//! Every request waits [`FaultConfig::latency`] first, so a test or bench sees a realistic
//! round trip. A deterministic pseudo-random fraction [`FaultConfig::fault_rate`] of the AWS
//! API requests (never the emulator's own `/moto-api/`) is not forwarded at all: the proxy
//! answers it itself, alternately with an HTTP 503 throttling error and an HTTP 500 internal
//! error, in the wire format of the calling service's protocol, so the SDK parses the error
//! code as it would from AWS:
//!
//! | protocol (how it is recognised)                         | 503 code               | 500 code          |
//! |---------------------------------------------------------|------------------------|-------------------|
//! | EC2 query (`Version=2016-11-15` in the body)            | `RequestLimitExceeded` | `InternalError`   |
//! | AWS query: IAM, ELBv2, Auto Scaling (`Action=` in body) | `Throttling`           | `InternalFailure` |
//! | Route53 REST-XML (path under `/2013-04-01/`)            | `Throttling`           | `InternalFailure` |
//! | AWS JSON (`X-Amz-Target` header)                        | `ThrottlingException`  | `InternalFailure` |
//! | anything else, S3 REST-XML (unwrapped `<Error>`)        | `SlowDown`             | `InternalError`   |
//!
//! It can also behave as AWS does where the emulator does not: with
//! [`FaultConfig::profile_propagation`], an instance profile that just got its role
//! (`AddRoleToInstanceProfile`) is not yet usable by Auto Scaling, which answers
//! `CreateAutoScalingGroup` and `UpdateAutoScalingGroup` for that long with AWS's own
//! `ValidationError` ("… Invalid IAM Instance Profile name").
//!
//! With [`FaultConfig::role_propagation`], a new role is, for that long after `CreateRole`,
//! unknown to `AddRoleToInstanceProfile`, which answers IAM's `NoSuchEntity` ("The role with
//! name … cannot be found.").
//!
//! With [`FaultConfig::vpc_consistency`], a new VPC is, for that long after `CreateVpc`, not
//! yet visible: `ModifyVpcAttribute` answers `InvalidVpcID.NotFound` and `DescribeVpcs` does
//! not list it (AWS's eventual consistency, which the emulator does not have).
//!
//! With [`FaultConfig::queue_propagation`], a new SQS queue is, for that long after
//! `CreateQueue`, not yet usable: `GetQueueAttributes` and `SetQueueAttributes` answer SQS's
//! `QueueDoesNotExist` ("after you create a queue, you must wait at least one second after
//! the queue is created to be able to use the queue", SQS API reference, CreateQueue).
//!
//! With [`FaultConfig::dependency_linger`], for that long after a load balancer or a NAT
//! gateway is deleted, deleting a subnet, a security group or the VPC, or detaching the
//! internet gateway, answers `DependencyViolation` (their network interfaces linger on AWS).
//!
//! Always, as Auto Scaling does and the emulator does not: an instance's launch template
//! version in `DescribeAutoScalingGroups` is the one it was launched with (the emulator
//! answers the template's current default for every instance); the proxy keeps, per
//! instance, the version it first saw it with.
//!
//! Always, as EC2 does and the emulator does not: `AttachVolume` of a volume that is attached
//! already answers `VolumeInUse` ("vol-… is already attached to an instance"), and of a
//! volume in another zone than the instance `InvalidVolume.ZoneMismatch`.
//!
//! With [`FaultConfig::listing_lag`], for that long after a NAT gateway or a route table is
//! created, describes of that kind by filter (not by id) do not list anything: AWS's
//! describes are eventually consistent, so a lookup by tag right after a create can miss it.
//!
//! With [`FaultConfig::insufficient_capacity`] (an instance type and a zone), Auto Scaling
//! launches nothing: `DescribeAutoScalingGroups` lists no instances in any group, and
//! `DescribeScalingActivities` answers with a failed launch whose reason is AWS's
//! `InsufficientInstanceCapacity` text; the emulator launches every instance at once.
//!
//! With [`FaultConfig::bucket_regions`], S3 requests signed for another region than their
//! bucket's are refused as S3 refuses them: `301 PermanentRedirect` with the bucket's region
//! in `x-amz-bucket-region` (the emulator serves every bucket from every region).
//!
//! Always, as EC2 does: `DeleteSecurityGroup` of a group another group's rule (inbound or
//! outbound) refers to answers `DependencyViolation` ("resource sg-… has a dependent
//! object"); the emulator deletes it anyway. And a request with a `ClientToken` it has answered before gets that
//! answer again without being forwarded (nothing new is made), and the same token with other
//! parameters gets `IdempotentParameterMismatch` ("Ensuring idempotency in Amazon EC2 API
//! requests", EC2 developer guide); the emulator ignores tokens.
//!
//! And as S3-compatible servers and networks do: [`FaultConfig::ignore_conditions`] drops
//! `If-None-Match` / `If-Match` before forwarding (a server that ignores conditional writes
//! and answers 200), and [`FaultConfig::lose_first_answer_to`] forwards the first request
//! whose path ends so, or whose query `Action` is so, and answers the client with a 500 instead (the write happened; its
//! answer was lost, so the SDK sends it again).
//!
//! Counters ([`FaultProxy::forwarded`], [`FaultProxy::faults`], [`FaultProxy::operations`])
//! let tests prove faults happened and benches cross-check the SDK's call counts.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body accepted (the emulator's answers and rafter's requests are far smaller).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// What the proxy does to each request.
#[derive(Debug, Clone, Copy)]
pub struct FaultConfig {
    /// Pause before forwarding (or failing) each request.
    pub latency: Duration,
    /// Fraction (0..1) of AWS API requests answered with an injected error instead.
    pub fault_rate: f64,
    /// Seed of the fault sequence: the same seed fails the same request numbers.
    pub seed: u64,
    /// Forward a faulted request anyway and lose the emulator's answer: the request took
    /// effect but the client sees an error (a timeout or a connection reset in real life).
    pub lose_answers: bool,
    /// How long after the last `AddRoleToInstanceProfile` Auto Scaling refuses launch
    /// templates with AWS's propagation error (zero: never).
    pub profile_propagation: Duration,
    /// How long after the last `CreateRole` `AddRoleToInstanceProfile` does not know it.
    pub role_propagation: Duration,
    /// How long a new SQS queue answers `QueueDoesNotExist` to attribute calls.
    pub queue_propagation: Duration,
    /// How long a new VPC stays invisible to `ModifyVpcAttribute` and `DescribeVpcs`.
    pub vpc_consistency: Duration,
    /// How long a deleted load balancer's or NAT gateway's interfaces keep their subnets,
    /// groups and VPC from being deleted.
    pub dependency_linger: Duration,
    /// Forward conditional writes without their conditions.
    pub ignore_conditions: bool,
    /// The first request whose path ends with this (or lies under it, for a name ending in
    /// `/`), or whose `Action` is this, takes effect, and its answer is lost; `PUT /suffix`
    /// names the method too.
    pub lose_first_answer_to: Option<&'static str>,
    /// How long filtered describes of NAT gateways and route tables list nothing after one
    /// was created.
    pub listing_lag: Duration,
    /// `(instance type, zone)`: no group gets instances, and each one's last launch failed
    /// for want of that type in that zone.
    pub insufficient_capacity: Option<(&'static str, &'static str)>,
    /// Refuse S3 requests signed for another region than the bucket's.
    pub bucket_regions: bool,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            fault_rate: 0.0,
            seed: 1,
            lose_answers: false,
            profile_propagation: Duration::ZERO,
            role_propagation: Duration::ZERO,
            queue_propagation: Duration::ZERO,
            vpc_consistency: Duration::ZERO,
            dependency_linger: Duration::ZERO,
            ignore_conditions: false,
            lose_first_answer_to: None,
            listing_lag: Duration::ZERO,
            insufficient_capacity: None,
            bucket_regions: false,
        }
    }
}

/// Counter values at one moment; subtract two to get what happened in between.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProxyCounts {
    /// Requests forwarded to the emulator (answered by it).
    pub forwarded: u64,
    /// Requests answered with an injected error (never forwarded).
    pub faults: u64,
}

impl ProxyCounts {
    /// Requests the proxy answered either way: the SDK's attempts.
    pub fn total(&self) -> u64 {
        self.forwarded + self.faults
    }
}

impl std::ops::Sub for ProxyCounts {
    type Output = ProxyCounts;
    fn sub(self, earlier: ProxyCounts) -> ProxyCounts {
        ProxyCounts {
            forwarded: self.forwarded - earlier.forwarded,
            faults: self.faults - earlier.faults,
        }
    }
}

/// `(Action, ClientToken)` of an EC2 request.
type TokenKey = (String, String);

struct Shared {
    /// `host:port` of the emulator.
    upstream: String,
    config: FaultConfig,
    /// Client connections accepted (fewer than requests when clients keep them alive).
    connections: AtomicU64,
    forwarded: AtomicU64,
    faults: AtomicU64,
    /// Sequence number of AWS API requests, the input of the fault decision.
    sequence: AtomicU64,
    /// Forwarded requests by `service Operation`.
    operations: Mutex<BTreeMap<String, u64>>,
    /// Requests forwarded whose answer was then lost, by `service Operation`.
    lost: Mutex<BTreeMap<String, u64>>,
    /// When the last `AddRoleToInstanceProfile` was forwarded.
    profile_changed: Mutex<Option<std::time::Instant>>,
    /// Auto Scaling requests refused while a profile propagated.
    propagation_refusals: AtomicU64,
    /// When the last load balancer or NAT gateway was deleted.
    interfaces_released: Mutex<Option<std::time::Instant>>,
    /// Deletes refused while interfaces lingered.
    dependency_refusals: AtomicU64,
    /// When the last `CreateRole` was forwarded.
    role_created: Mutex<Option<std::time::Instant>>,
    queue_created: Mutex<Option<std::time::Instant>>,
    /// When the last `CreateVpc` was forwarded.
    vpc_created: Mutex<Option<std::time::Instant>>,
    /// EC2 requests answered as if a new VPC were not visible yet.
    consistency_refusals: AtomicU64,
    /// Whether the answer named by `lose_first_answer_to` was lost already.
    first_answer_lost: std::sync::atomic::AtomicBool,
    /// EC2 answers by `(Action, ClientToken)`, with the request body they answered.
    client_tokens: Mutex<BTreeMap<TokenKey, (Vec<u8>, Response)>>,
    /// Requests answered from `client_tokens` (replayed or refused as a mismatch).
    token_answers: AtomicU64,
    /// When a resource of a lagging listing (`Describe…` action) was last created.
    lagging_since: Mutex<BTreeMap<&'static str, std::time::Instant>>,
    /// Describes answered with an empty listing while it lagged.
    lagging_answers: AtomicU64,
    /// Called with each AWS query request's action and form body before it is forwarded.
    hook: Mutex<Option<Hook>>,
    /// The launch template version each auto-scaling instance was first listed with.
    launched_versions: Mutex<BTreeMap<String, String>>,
}

/// What a test runs before a request is forwarded (see [`FaultProxy::before_forwarding`]).
pub type Hook = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// A running proxy; see the module documentation.
pub struct FaultProxy {
    endpoint: String,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free 127.0.0.1 port.
    pub fn start(upstream: &str, config: FaultConfig) -> FaultProxy {
        Self::start_on("127.0.0.1", upstream, config)
    }

    /// Starts a proxy to `upstream` on a free port of the local address `address` (the test
    /// bed's bridge, for its hosts).
    pub fn start_on(address: &str, upstream: &str, config: FaultConfig) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        assert!(
            (0.0..=1.0).contains(&config.fault_rate),
            "fault_rate must be within 0..1, not {}",
            config.fault_rate
        );
        let listener = TcpListener::bind((address, 0)).expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            upstream,
            config,
            connections: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            sequence: AtomicU64::new(0),
            operations: Mutex::new(BTreeMap::new()),
            lost: Mutex::new(BTreeMap::new()),
            profile_changed: Mutex::new(None),
            propagation_refusals: AtomicU64::new(0),
            first_answer_lost: std::sync::atomic::AtomicBool::new(false),
            vpc_created: Mutex::new(None),
            role_created: Mutex::new(None),
            queue_created: Mutex::new(None),
            interfaces_released: Mutex::new(None),
            dependency_refusals: AtomicU64::new(0),
            consistency_refusals: AtomicU64::new(0),
            client_tokens: Mutex::new(BTreeMap::new()),
            token_answers: AtomicU64::new(0),
            lagging_since: Mutex::new(BTreeMap::new()),
            lagging_answers: AtomicU64::new(0),
            hook: Mutex::new(None),
            launched_versions: Mutex::new(BTreeMap::new()),
        });
        let accepting = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    accepting.connections.fetch_add(1, Ordering::SeqCst);
                    let shared = Arc::clone(&accepting);
                    // A connection that breaks only ends its own thread.
                    let _ = std::thread::Builder::new()
                        .name(format!("fault-proxy-{port}-conn"))
                        .spawn(move || {
                            if let Err(error) = serve(client, &shared)
                                && !quiet(&error)
                            {
                                eprintln!("fault proxy: connection dropped: {error}");
                            }
                        });
                }
            })
            .expect("start the proxy thread");
        FaultProxy {
            endpoint: format!("http://{address}:{port}"),
            shared,
        }
    }

    /// Runs `hook` with the action and form body of every AWS query request (EC2, Auto
    /// Scaling, …) before forwarding it, in the request's thread: what happens in the world
    /// before AWS acts (an instance Auto Scaling terminates powers off first).
    pub fn before_forwarding(&self, hook: Hook) {
        *self.shared.hook.lock().unwrap() = Some(hook);
    }

    /// `http://ADDRESS:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn config(&self) -> FaultConfig {
        self.shared.config
    }

    /// Client connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Requests forwarded to the emulator so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Requests answered with an injected error so far.
    pub fn faults(&self) -> u64 {
        self.shared.faults.load(Ordering::SeqCst)
    }

    pub fn counts(&self) -> ProxyCounts {
        ProxyCounts {
            forwarded: self.forwarded(),
            faults: self.faults(),
        }
    }

    /// Forwarded requests by `service Operation` (e.g. `ec2 CreateVpc`) so far.
    pub fn operations(&self) -> BTreeMap<String, u64> {
        self.shared
            .operations
            .lock()
            .map(|operations| operations.clone())
            .unwrap_or_default()
    }

    /// Operations that took effect but whose answer the proxy lost (with `lose_answers`).
    /// Deletes refused because a deleted load balancer's interfaces lingered.
    pub fn dependency_refusals(&self) -> u64 {
        self.shared.dependency_refusals.load(Ordering::SeqCst)
    }

    /// EC2 requests answered as if a new VPC were not visible yet.
    pub fn consistency_refusals(&self) -> u64 {
        self.shared.consistency_refusals.load(Ordering::SeqCst)
    }

    /// EC2 requests answered from an earlier answer to their `ClientToken`.
    pub fn token_answers(&self) -> u64 {
        self.shared.token_answers.load(Ordering::SeqCst)
    }

    /// Filtered describes answered with an empty listing because it lagged a create.
    pub fn lagging_answers(&self) -> u64 {
        self.shared.lagging_answers.load(Ordering::SeqCst)
    }

    /// Auto Scaling requests refused because an instance profile was still propagating.
    pub fn propagation_refusals(&self) -> u64 {
        self.shared.propagation_refusals.load(Ordering::SeqCst)
    }

    pub fn lost(&self) -> BTreeMap<String, u64> {
        self.shared
            .lost
            .lock()
            .map(|lost| lost.clone())
            .unwrap_or_default()
    }

    /// An SDK configuration that talks to the emulator through this proxy, with the same
    /// region and dummy credentials as `moto::sdk_config()`.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .endpoint_url(self.endpoint())
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "moto"),
            ))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }
}

/// Errors of clients that simply went away: not worth a line on stderr.
fn quiet(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// One HTTP message head: the start line and the headers in order.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| value.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    }

    fn chunked(&self) -> bool {
        self.has_token("transfer-encoding", "chunked")
    }

    fn content_length(&self) -> io::Result<Option<usize>> {
        match self.header("content-length") {
            None => Ok(None),
            Some(value) => value
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| bad(format!("bad Content-Length {value:?}"))),
        }
    }
}

/// Reads a message head; `None` on a clean end of stream before its first byte.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut lines = Vec::new();
    let mut size = 0;
    loop {
        let mut line = Vec::new();
        let read = reader
            .by_ref()
            .take(MAX_HEAD as u64)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            if lines.is_empty() && size == 0 {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        size += read;
        if size > MAX_HEAD {
            return Err(bad("message head too large"));
        }
        let line = String::from_utf8(line).map_err(|_| bad("message head is not UTF-8"))?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if lines.is_empty() {
                continue; // stray CRLF between messages
            }
            break;
        }
        lines.push(line.to_string());
    }
    let start = lines.remove(0);
    let headers = lines
        .into_iter()
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
            Ok((name.trim().to_string(), value.trim().to_string()))
        })
        .collect::<io::Result<_>>()?;
    Ok(Some(Head { start, headers }))
}

/// Decodes a chunked body (trailers are read and dropped).
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if reader.by_ref().take(1024).read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let size = line.trim().split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| bad(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut trailer = String::new();
                let read = reader
                    .by_ref()
                    .take(MAX_HEAD as u64)
                    .read_line(&mut trailer)?;
                if read == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(bad("chunked body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(bad("chunk not followed by CRLF"));
        }
    }
}

fn read_exact_body(reader: &mut impl Read, length: usize) -> io::Result<Vec<u8>> {
    if length > MAX_BODY {
        return Err(bad(format!("body of {length} bytes is too large")));
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(body)
}

/// Headers that describe one hop, not the message: the proxy sets its own.
fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "content-length",
        "te",
        "trailer",
        "upgrade",
        "expect",
    ]
    .iter()
    .any(|hop| name.eq_ignore_ascii_case(hop))
}

/// Serves one client connection until it closes or breaks.
fn serve(client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut writer = client.try_clone()?;
    let mut reader = BufReader::new(client);
    while let Some(head) = read_head(&mut reader)? {
        let mut parts = head.start.split_whitespace();
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(format!("bad request line {:?}", head.start)));
        };
        let (method, target, version) = (method.to_string(), target.to_string(), version);
        let keep_alive = if version.eq_ignore_ascii_case("HTTP/1.0") {
            head.has_token("connection", "keep-alive")
        } else {
            !head.has_token("connection", "close")
        };
        if head.has_token("expect", "100-continue") {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = if head.chunked() {
            read_chunked(&mut reader)?
        } else {
            match head.content_length()? {
                Some(length) => read_exact_body(&mut reader, length)?,
                None => Vec::new(),
            }
        };

        std::thread::sleep(shared.config.latency);
        let head = if shared.config.ignore_conditions {
            Head {
                start: head.start.clone(),
                headers: head
                    .headers
                    .iter()
                    .filter(|(name, _)| {
                        !name.eq_ignore_ascii_case("if-none-match")
                            && !name.eq_ignore_ascii_case("if-match")
                    })
                    .cloned()
                    .collect(),
            }
        } else {
            head
        };
        let request = Request {
            method: &method,
            target: &target,
            head: &head,
            body: &body,
        };
        let path = target.split('?').next().unwrap_or_default();
        let action = request.form_field("Action");
        let lose_this = shared.config.lose_first_answer_to.is_some_and(|named| {
            // `METHOD suffix`, a path suffix, or a query `Action`.
            let (wanted_method, named) = match named.split_once(' ') {
                Some((wanted, named)) => (Some(wanted), named),
                None => (None, named),
            };
            // A name ending in `/` stands for any path under it.
            let under = named.ends_with('/') && path.contains(named);
            wanted_method.is_none_or(|wanted| wanted.eq_ignore_ascii_case(&method))
                && (under || path.ends_with(named) || action.as_deref() == Some(named))
        }) && !shared.first_answer_lost.swap(true, Ordering::SeqCst);
        let response = if let Some(refusal) = shared.propagating(&request, action.as_deref()) {
            refusal
        } else if let Some(unknown) = shared.role_not_yet_known(&request, action.as_deref()) {
            unknown
        } else if let Some(unseen) = shared.vpc_not_yet_visible(action.as_deref()) {
            unseen
        } else if let Some(unusable) = shared.queue_not_yet_usable(&request) {
            unusable
        } else if let Some(unlisted) = shared.listing_lags(&request, action.as_deref()) {
            unlisted
        } else if let Some(failed) = shared.failed_launches(&request, action.as_deref()) {
            failed
        } else if let Some(redirect) = shared.wrong_bucket_region(&request) {
            redirect
        } else if let Some(refused) = shared.interfaces_linger(action.as_deref()) {
            refused
        } else if let Some(refused) = shared.group_referenced(&request, action.as_deref()) {
            refused
        } else if let Some(refused) = shared.volume_unattachable(&request, action.as_deref()) {
            refused
        } else if lose_this {
            let number = shared.faults.fetch_add(1, Ordering::SeqCst);
            if shared.forward(&request, action.as_deref()).is_ok()
                && let Ok(mut lost) = shared.lost.lock()
            {
                *lost.entry(request.operation()).or_default() += 1;
            }
            injected_error(&request, number | 1)
        } else if !target.starts_with("/moto-api") && shared.fault_now() {
            let number = shared.faults.fetch_add(1, Ordering::SeqCst);
            if shared.config.lose_answers
                && shared.forward(&request, action.as_deref()).is_ok()
                && let Ok(mut lost) = shared.lost.lock()
            {
                *lost.entry(request.operation()).or_default() += 1;
            }
            injected_error(&request, number)
        } else {
            let hook = shared.hook.lock().ok().and_then(|hook| hook.clone());
            if let (Some(hook), Some(action)) = (hook, action.as_deref()) {
                hook(action, &request.body_text());
            }
            let response = match shared.forward(&request, action.as_deref()) {
                Ok(response) => response,
                Err(error) => {
                    eprintln!("fault proxy: {method} {target} upstream failed: {error}");
                    Response::text(
                        502,
                        "Bad Gateway",
                        &format!("proxy upstream error: {error}"),
                    )
                }
            };
            shared.forwarded.fetch_add(1, Ordering::SeqCst);
            let response = if shared.config.insufficient_capacity.is_some()
                && action.as_deref() == Some("DescribeAutoScalingGroups")
            {
                without_instances(response)
            } else if action.as_deref() == Some("DescribeAutoScalingGroups") {
                shared.with_launched_versions(response)
            } else {
                response
            };
            if action.as_deref() == Some("AddRoleToInstanceProfile")
                && let Ok(mut changed) = shared.profile_changed.lock()
            {
                *changed = Some(std::time::Instant::now());
            }
            if matches!(
                action.as_deref(),
                Some("DeleteLoadBalancer" | "DeleteNatGateway")
            ) && let Ok(mut released) = shared.interfaces_released.lock()
            {
                *released = Some(std::time::Instant::now());
            }
            if action.as_deref() == Some("CreateRole")
                && let Ok(mut created) = shared.role_created.lock()
            {
                *created = Some(std::time::Instant::now());
            }
            if action.as_deref() == Some("CreateVpc")
                && let Ok(mut created) = shared.vpc_created.lock()
            {
                *created = Some(std::time::Instant::now());
            }
            if request.head.header("x-amz-target") == Some("AmazonSQS.CreateQueue")
                && let Ok(mut created) = shared.queue_created.lock()
            {
                *created = Some(std::time::Instant::now());
            }
            if let Ok(mut operations) = shared.operations.lock() {
                *operations.entry(request.operation()).or_default() += 1;
            }
            response
        };
        writer.write_all(&response.encode(method.eq_ignore_ascii_case("HEAD"), keep_alive))?;
        writer.flush()?;
        if !keep_alive {
            break;
        }
    }
    Ok(())
}

impl Shared {
    /// Forwards `request`, as EC2 would take it: an answered `ClientToken` is not forwarded
    /// again (see the module documentation).
    fn forward(&self, request: &Request<'_>, action: Option<&str>) -> io::Result<Response> {
        let answer = self.forward_once(request, action)?;
        if let Some(listing) = match action {
            Some("CreateNatGateway") => Some("DescribeNatGateways"),
            Some("CreateRouteTable") => Some("DescribeRouteTables"),
            _ => None,
        } && let Ok(mut lagging) = self.lagging_since.lock()
        {
            lagging.insert(listing, std::time::Instant::now());
        }
        Ok(answer)
    }

    fn forward_once(&self, request: &Request<'_>, action: Option<&str>) -> io::Result<Response> {
        let token = match (action, request.protocol()) {
            (Some(action), Protocol::Ec2Query) => request
                .form_field("ClientToken")
                .map(|token| (action.to_string(), token)),
            _ => None,
        };
        let Some(token) = token else {
            return forward(request, &self.upstream);
        };
        // Held while forwarding: a second request with the token waits for the first's answer.
        let mut tokens = self
            .client_tokens
            .lock()
            .map_err(|_| bad("client token table poisoned"))?;
        if let Some((body, answer)) = tokens.get(&token) {
            let number = self.token_answers.fetch_add(1, Ordering::SeqCst);
            if body.as_slice() == request.body {
                return Ok(answer.clone());
            }
            return Ok(ec2_error(
                "IdempotentParameterMismatch",
                "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
                &format!("fault-proxy-token-{number}"),
            ));
        }
        let answer = forward(request, &self.upstream)?;
        if answer.status_line.split_whitespace().nth(1) == Some("200") {
            tokens.insert(token, (request.body.to_vec(), answer.clone()));
        }
        Ok(answer)
    }

    /// The answer with each instance's launch template version as first listed (see the
    /// module documentation).
    fn with_launched_versions(&self, mut response: Response) -> Response {
        let body = String::from_utf8_lossy(&response.body).into_owned();
        let Ok(mut launched) = self.launched_versions.lock() else {
            return response;
        };
        let mut out = String::with_capacity(body.len());
        let mut rest = body.as_str();
        // Each instance is a <member> of an <Instances> list; the group's own launch
        // template (outside those lists) is left alone.
        while let Some(start) = rest.find("<Instances>") {
            let Some(length) = rest[start..].find("</Instances>") else {
                break;
            };
            let (before, list) = rest.split_at(start);
            let (list, after) = list.split_at(length);
            out.push_str(before);
            let mut members = list.split("<member>");
            out.push_str(members.next().unwrap_or_default());
            for member in members {
                out.push_str("<member>");
                let id = between(member, "<InstanceId>", "</InstanceId>");
                let version = between(member, "<Version>", "</Version>");
                match (id, version) {
                    (Some(id), Some(version)) => {
                        let kept = launched
                            .entry(id.to_string())
                            .or_insert_with(|| version.to_string());
                        out.push_str(&member.replacen(
                            &format!("<Version>{version}</Version>"),
                            &format!("<Version>{kept}</Version>"),
                            1,
                        ));
                    }
                    _ => out.push_str(member),
                }
            }
            rest = after;
        }
        out.push_str(rest);
        response.body = out.into_bytes();
        response
    }

    /// EC2's refusals to attach a volume that is attached already (the emulator moves the
    /// attachment instead) or lives in another zone than the instance (the emulator does
    /// not check), with EC2's codes and texts.
    fn volume_unattachable(&self, request: &Request<'_>, action: Option<&str>) -> Option<Response> {
        if action? != "AttachVolume" {
            return None;
        }
        let (volume, instance) = (
            request.form_field("VolumeId")?,
            request.form_field("InstanceId")?,
        );
        let describe = |body: String| {
            let describe = Request {
                method: "POST",
                target: "/",
                head: request.head,
                body: body.as_bytes(),
            };
            forward(&describe, &self.upstream)
                .map(|answer| String::from_utf8_lossy(&answer.body).replace(['\r', '\n'], ""))
                .unwrap_or_default()
        };
        let volumes = describe(format!(
            "Action=DescribeVolumes&Version=2016-11-15&VolumeId.1={volume}"
        ));
        let instances = describe(format!(
            "Action=DescribeInstances&Version=2016-11-15&InstanceId.1={instance}"
        ));
        let first = |xml: &str, name: &str| -> Option<String> {
            let open = format!("<{name}>");
            let start = xml.find(&open)? + open.len();
            let end = xml[start..].find('<')? + start;
            Some(xml[start..end].to_string())
        };
        let number = self.faults.load(Ordering::SeqCst);
        // A volume's description names an instance only in its attachment.
        if volumes.contains("<instanceId>") {
            return Some(ec2_error(
                "VolumeInUse",
                &format!("{volume} is already attached to an instance"),
                &format!("fault-proxy-volume-{number}"),
            ));
        }
        let volume_zone = first(&volumes, "availabilityZone");
        let instance_zone = first(&instances, "availabilityZone");
        if volume_zone.is_some() && instance_zone.is_some() && volume_zone != instance_zone {
            return Some(ec2_error(
                "InvalidVolume.ZoneMismatch",
                &format!(
                    "The volume '{volume}' is not in the same availability zone as instance '{instance}'"
                ),
                &format!("fault-proxy-volume-{number}"),
            ));
        }
        None
    }

    /// EC2's refusal to delete a group that another group's rule refers to.
    fn group_referenced(&self, request: &Request<'_>, action: Option<&str>) -> Option<Response> {
        if action? != "DeleteSecurityGroup" {
            return None;
        }
        let group = request.form_field("GroupId")?;
        let referring = ["ip-permission.group-id", "egress.ip-permission.group-id"]
            .iter()
            .flat_map(|filter| {
                let body = format!(
                    "Action=DescribeSecurityGroups&Version=2016-11-15&Filter.1.Name={filter}\
                     &Filter.1.Value.1={group}"
                );
                let describe = Request {
                    method: "POST",
                    target: "/",
                    head: request.head,
                    body: body.as_bytes(),
                };
                forward(&describe, &self.upstream)
                    .map(|answer| top_level_group_ids(&String::from_utf8_lossy(&answer.body)))
                    .unwrap_or_default()
            })
            .any(|referrer| referrer != group);
        referring.then(|| {
            let number = self.dependency_refusals.fetch_add(1, Ordering::SeqCst);
            ec2_error(
                "DependencyViolation",
                &format!("resource {group} has a dependent object"),
                &format!("fault-proxy-dependency-{number}"),
            )
        })
    }

    /// S3's refusal of a request signed for another region than its bucket's.
    fn wrong_bucket_region(&self, request: &Request<'_>) -> Option<Response> {
        if !self.config.bucket_regions || request.protocol() != Protocol::S3 {
            return None;
        }
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((request.target, ""));
        let bucket = path.trim_start_matches('/').split('/').next()?;
        // Listing buckets, making one, and asking where one is work from any region.
        let bucket_root = path.trim_start_matches('/').trim_end_matches('/') == bucket;
        if bucket.is_empty()
            || query
                .split('&')
                .any(|pair| pair == "location" || pair == "location=")
            || (bucket_root && request.method == "PUT")
        {
            return None;
        }
        let signed_for = request.signing_region()?;
        let location = Request {
            method: "GET",
            target: &format!("/{bucket}?location"),
            head: request.head,
            body: &[],
        };
        let answer = forward(&location, &self.upstream).ok()?;
        let text = String::from_utf8_lossy(&answer.body);
        let region = text
            .split("<LocationConstraint")
            .nth(1)
            .and_then(|rest| rest.split_once('>'))
            .map(|(_, rest)| rest.split('<').next().unwrap_or_default())
            .filter(|region| !region.is_empty())
            .unwrap_or("us-east-1")
            .to_string();
        if region == signed_for {
            return None;
        }
        let mut refusal = Response {
            status_line: "HTTP/1.1 301 Moved Permanently".to_string(),
            headers: vec![
                ("Content-Type".into(), "application/xml".into()),
                ("x-amz-bucket-region".into(), region.clone()),
            ],
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PermanentRedirect</Code>\
                 <Message>The bucket you are attempting to access must be addressed using the \
                 specified endpoint. Please send all future requests to this endpoint.</Message>\
                 <Endpoint>{bucket}.s3.{region}.amazonaws.com</Endpoint><Bucket>{bucket}</Bucket>\
                 <RequestId>fault-proxy-region</RequestId></Error>"
            )
            .into_bytes(),
            bodiless: false,
        };
        if request.method == "HEAD" {
            refusal.body.clear();
        }
        Some(refusal)
    }

    /// Auto Scaling's record of a launch that failed for want of capacity.
    fn failed_launches(&self, request: &Request<'_>, action: Option<&str>) -> Option<Response> {
        let (instance_type, zone) = self.config.insufficient_capacity?;
        if action? != "DescribeScalingActivities" {
            return None;
        }
        let group = request
            .form_field("AutoScalingGroupName")
            .unwrap_or_default()
            .replace("%2F", "/");
        let reason = format!(
            "We currently do not have sufficient {instance_type} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity. You can currently get {instance_type} capacity by not specifying an Availability Zone in your request or choosing other Availability Zones. Launching EC2 instance failed."
        );
        let body = format!(
            "<DescribeScalingActivitiesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
             <DescribeScalingActivitiesResult><Activities><member>\
             <ActivityId>f9f2d65b-0000-0000-0000-000000000000</ActivityId>\
             <AutoScalingGroupName>{group}</AutoScalingGroupName>\
             <Description>Launching a new EC2 instance.  Status Reason: {reason}</Description>\
             <Cause>At 2026-12-01T00:00:00Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 0 to 1.</Cause>\
             <StartTime>2026-12-01T00:00:01Z</StartTime><EndTime>2026-12-01T00:00:02Z</EndTime>\
             <StatusCode>Failed</StatusCode><StatusMessage>{reason}</StatusMessage>\
             <Progress>100</Progress></member></Activities></DescribeScalingActivitiesResult>\
             <ResponseMetadata><RequestId>fault-proxy-capacity</RequestId></ResponseMetadata>\
             </DescribeScalingActivitiesResponse>"
        );
        Some(Response {
            status_line: "HTTP/1.1 200 OK".to_string(),
            headers: vec![("Content-Type".into(), "text/xml".into())],
            body: body.into_bytes(),
            bodiless: false,
        })
    }

    /// An empty listing for a filtered describe that lags a create of its kind.
    fn listing_lags(&self, request: &Request<'_>, action: Option<&str>) -> Option<Response> {
        let (action, set) = match action? {
            "DescribeNatGateways" => ("DescribeNatGateways", "natGatewaySet"),
            "DescribeRouteTables" => ("DescribeRouteTables", "routeTableSet"),
            _ => return None,
        };
        if !request.body_text().contains("Filter.") {
            return None;
        }
        let since = *self.lagging_since.lock().ok()?.get(action)?;
        if since.elapsed() >= self.config.listing_lag {
            return None;
        }
        let number = self.lagging_answers.fetch_add(1, Ordering::SeqCst);
        Some(ec2_listing(
            action,
            set,
            &format!("fault-proxy-lag-{number}"),
        ))
    }

    /// EC2's refusal while the network interfaces of a deleted load balancer or NAT gateway
    /// still exist.
    fn interfaces_linger(&self, action: Option<&str>) -> Option<Response> {
        let what = match action? {
            "DeleteSubnet" => "subnet",
            "DeleteSecurityGroup" => "security group",
            "DeleteVpc" => "vpc",
            "DetachInternetGateway" => "internet gateway",
            _ => return None,
        };
        let released = (*self.interfaces_released.lock().ok()?)?;
        if released.elapsed() >= self.config.dependency_linger {
            return None;
        }
        let number = self.dependency_refusals.fetch_add(1, Ordering::SeqCst);
        Some(ec2_error(
            "DependencyViolation",
            &format!("The {what} has dependencies and cannot be deleted."),
            &format!("fault-proxy-dependency-{number}"),
        ))
    }

    /// EC2's answers while a VPC made moments ago has not reached every part of it.
    fn vpc_not_yet_visible(&self, action: Option<&str>) -> Option<Response> {
        let created = (*self.vpc_created.lock().ok()?)?;
        if created.elapsed() >= self.config.vpc_consistency {
            return None;
        }
        let number = self.consistency_refusals.fetch_add(1, Ordering::SeqCst);
        let request_id = format!("fault-proxy-consistency-{number}");
        match action? {
            "ModifyVpcAttribute" => Some(ec2_error(
                "InvalidVpcID.NotFound",
                "The vpc ID does not exist",
                &request_id,
            )),
            "DescribeVpcs" => Some(ec2_listing("DescribeVpcs", "vpcSet", &request_id)),
            _ => {
                self.consistency_refusals.fetch_sub(1, Ordering::SeqCst);
                None
            }
        }
    }

    /// SQS's answer to an attribute call on a queue made moments ago (JSON protocol, with
    /// the query-compatible code in `x-amzn-query-error`, as SQS sends it).
    fn queue_not_yet_usable(&self, request: &Request<'_>) -> Option<Response> {
        let target = request.head.header("x-amz-target")?;
        if !matches!(
            target,
            "AmazonSQS.GetQueueAttributes" | "AmazonSQS.SetQueueAttributes"
        ) {
            return None;
        }
        let created = (*self.queue_created.lock().ok()?)?;
        if created.elapsed() >= self.config.queue_propagation {
            return None;
        }
        let number = self.propagation_refusals.fetch_add(1, Ordering::SeqCst);
        Some(Response {
            status_line: "HTTP/1.1 400 Bad Request".to_string(),
            headers: vec![
                ("Content-Type".into(), "application/x-amz-json-1.0".into()),
                (
                    "x-amzn-query-error".into(),
                    "AWS.SimpleQueueService.NonExistentQueue;Sender".into(),
                ),
                (
                    "x-amzn-RequestId".into(),
                    format!("fault-proxy-propagation-{number}"),
                ),
            ],
            body: br#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#
                .to_vec(),
            bodiless: false,
        })
    }

    /// IAM's answer to `AddRoleToInstanceProfile` naming a role made moments ago.
    fn role_not_yet_known(&self, request: &Request<'_>, action: Option<&str>) -> Option<Response> {
        if action? != "AddRoleToInstanceProfile" {
            return None;
        }
        let created = (*self.role_created.lock().ok()?)?;
        if created.elapsed() >= self.config.role_propagation {
            return None;
        }
        let number = self.propagation_refusals.fetch_add(1, Ordering::SeqCst);
        let role = request.form_field("RoleName").unwrap_or_default();
        Some(query_error(
            404,
            "Not Found",
            "NoSuchEntity",
            &format!("The role with name {role} cannot be found."),
            &format!("fault-proxy-role-{number}"),
        ))
    }

    /// AWS's answer to an Auto Scaling group naming a launch template whose instance profile
    /// got its role moments ago (the emulator accepts it at once).
    fn propagating(&self, request: &Request<'_>, action: Option<&str>) -> Option<Response> {
        if !matches!(
            action,
            Some("CreateAutoScalingGroup" | "UpdateAutoScalingGroup")
        ) {
            return None;
        }
        let changed = (*self.profile_changed.lock().ok()?)?;
        if changed.elapsed() >= self.config.profile_propagation {
            return None;
        }
        let number = self.propagation_refusals.fetch_add(1, Ordering::SeqCst);
        let group = request
            .form_field("AutoScalingGroupName")
            .unwrap_or_default();
        Some(query_error(
            400,
            "Bad Request",
            "ValidationError",
            &format!(
                "You must use a valid fully-formed launch template. Value ({group}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
            ),
            &format!("fault-proxy-propagation-{number}"),
        ))
    }

    /// Whether the next AWS API request gets an injected fault: splitmix64 of the seed and
    /// the request's sequence number, compared with the rate.
    fn fault_now(&self) -> bool {
        let number = self.sequence.fetch_add(1, Ordering::SeqCst);
        if self.config.fault_rate <= 0.0 {
            return false;
        }
        let mut x = self
            .config
            .seed
            .wrapping_add(number.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
        unit < self.config.fault_rate
    }
}

struct Request<'a> {
    method: &'a str,
    target: &'a str,
    head: &'a Head,
    body: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Ec2Query,
    AwsQuery,
    Route53,
    AwsJson,
    S3,
}

impl Request<'_> {
    fn body_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.body)
    }

    /// A form field of a query-protocol body (values here are plain identifiers).
    fn form_field(&self, name: &str) -> Option<String> {
        self.body_text()
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .map(ToString::to_string)
    }

    fn protocol(&self) -> Protocol {
        let body = self.body_text();
        if body.contains("Version=2016-11-15") {
            Protocol::Ec2Query
        } else if self.form_field("Action").is_some() {
            Protocol::AwsQuery
        } else if self.target.starts_with("/2013-04-01/") {
            Protocol::Route53
        } else if self.head.header("x-amz-target").is_some() {
            Protocol::AwsJson
        } else {
            Protocol::S3
        }
    }

    /// The region of the SigV4 credential scope (`Credential=AKID/date/REGION/service/…`).
    fn signing_region(&self) -> Option<String> {
        let authorization = self.head.header("authorization")?;
        let scope = authorization.split("Credential=").nth(1)?;
        let scope = scope.split([',', ' ']).next()?;
        scope.split('/').nth(2).map(ToString::to_string)
    }

    /// The service of the SigV4 credential scope (`Credential=AKID/date/region/SERVICE/…`).
    fn service(&self) -> Option<String> {
        let authorization = self.head.header("authorization")?;
        let scope = authorization.split("Credential=").nth(1)?;
        let scope = scope.split([',', ' ']).next()?;
        scope.split('/').nth(3).map(ToString::to_string)
    }

    /// `service Operation` for the tally: the query `Action`, the JSON target, or the method
    /// and the path's words (ids left out) for REST services.
    fn operation(&self) -> String {
        let service = self.service().unwrap_or_else(|| "-".to_string());
        if let Some(action) = self.form_field("Action") {
            return format!("{service} {action}");
        }
        if let Some(target) = self.head.header("x-amz-target") {
            let operation = target.rsplit('.').next().unwrap_or(target);
            return format!("{service} {operation}");
        }
        let path = self.target.split('?').next().unwrap_or_default();
        let words: Vec<&str> = path
            .split('/')
            .filter(|word| !word.is_empty())
            .filter(|word| word.chars().all(|c| c.is_ascii_lowercase()))
            .collect();
        format!("{service} {} /{}", self.method, words.join("/"))
    }
}

#[derive(Clone)]
struct Response {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// 1xx, 204, 304: no body and no length.
    bodiless: bool,
}

impl Response {
    fn text(status: u16, reason: &str, text: &str) -> Response {
        Response {
            status_line: format!("HTTP/1.1 {status} {reason}"),
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: text.as_bytes().to_vec(),
            bodiless: false,
        }
    }

    /// The bytes for the client. For a HEAD request the upstream's own `Content-Length` is
    /// kept (it describes the entity) and no body is sent.
    fn encode(&self, head_request: bool, keep_alive: bool) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.status_line);
        for (name, value) in &self.headers {
            if hop_by_hop(name) && !(head_request && name.eq_ignore_ascii_case("content-length")) {
                continue;
            }
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.bodiless && !head_request {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        if !keep_alive {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !self.bodiless && !head_request {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// Sends `request` to the emulator on a fresh connection and reads the whole answer.
fn forward(request: &Request<'_>, upstream: &str) -> io::Result<Response> {
    let stream = TcpStream::connect(upstream)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut writer = stream.try_clone()?;
    let mut message = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (name, value) in &request.head.headers {
        if !hop_by_hop(name) {
            message.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let has_body = !request.body.is_empty()
        || request.head.content_length()?.is_some()
        || request.head.chunked();
    if has_body {
        message.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    message.push_str("Connection: close\r\n\r\n");
    let mut bytes = message.into_bytes();
    bytes.extend_from_slice(request.body);
    writer.write_all(&bytes)?;
    writer.flush()?;

    let mut reader = BufReader::new(stream);
    let head = loop {
        let head = read_head(&mut reader)?
            .ok_or_else(|| bad("upstream closed the connection without answering"))?;
        let status = status_of(&head.start)?;
        if !(100..200).contains(&status) || status == 101 {
            break head;
        }
    };
    let status = status_of(&head.start)?;
    let head_request = request.method.eq_ignore_ascii_case("HEAD");
    let bodiless = status == 204 || status == 304 || (100..200).contains(&status);
    let body = if bodiless || head_request {
        Vec::new()
    } else if head.chunked() {
        read_chunked(&mut reader)?
    } else if let Some(length) = head.content_length()? {
        read_exact_body(&mut reader, length)?
    } else {
        let mut body = Vec::new();
        reader.take(MAX_BODY as u64).read_to_end(&mut body)?;
        body
    };
    Ok(Response {
        status_line: head.start,
        headers: head.headers,
        body,
        bodiless,
    })
}

fn status_of(start: &str) -> io::Result<u16> {
    start
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {start:?}")))
}

/// An EC2 client error (400), as EC2 sends it.
/// An Auto Scaling groups' listing with every group's instances taken out.
/// The text between the first `open` and the next `close` in `text`.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

fn without_instances(mut response: Response) -> Response {
    let mut body = String::from_utf8_lossy(&response.body).into_owned();
    while let Some(start) = body.find("<Instances>") {
        let Some(length) = body[start..].find("</Instances>") else {
            break;
        };
        body.replace_range(start..start + length + "</Instances>".len(), "<Instances/>");
    }
    response.body = body.into_bytes();
    response
}

/// The ids of the groups a `DescribeSecurityGroups` answer lists (not the groups their rules
/// name): the `groupId` directly inside each outermost `item`.
fn top_level_group_ids(xml: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut depth = 0usize;
    let mut rest = xml;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("<item>") {
            depth += 1;
            rest = after;
        } else if let Some(after) = rest.strip_prefix("</item>") {
            depth = depth.saturating_sub(1);
            rest = after;
        } else if let Some(after) = rest.strip_prefix("<groupId>") {
            let end = after.find('<').unwrap_or(after.len());
            if depth == 1 {
                ids.push(after[..end].to_string());
            }
            rest = &after[end..];
        } else {
            rest = &rest[1..];
        }
    }
    ids
}

/// An EC2 describe's answer that lists nothing.
fn ec2_listing(action: &str, set: &str, request_id: &str) -> Response {
    Response {
        status_line: "HTTP/1.1 200 OK".to_string(),
        headers: vec![("Content-Type".into(), "text/xml;charset=UTF-8".into())],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response \
             xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>{request_id}\
             </requestId><{set}/></{action}Response>"
        )
        .into_bytes(),
        bodiless: false,
    }
}

fn ec2_error(code: &str, message: &str, request_id: &str) -> Response {
    Response {
        status_line: "HTTP/1.1 400 Bad Request".to_string(),
        headers: vec![("Content-Type".into(), "text/xml;charset=UTF-8".into())],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        .into_bytes(),
        bodiless: false,
    }
}

/// An AWS query-protocol error (IAM, ELBv2, Auto Scaling), as those services send it.
fn query_error(status: u16, reason: &str, code: &str, message: &str, request_id: &str) -> Response {
    Response {
        status_line: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![
            ("Content-Type".into(), "text/xml".into()),
            ("x-amzn-RequestId".into(), request_id.to_string()),
        ],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>Sender</Type>\
             <Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        .into_bytes(),
        bodiless: false,
    }
}

/// Injected fault number `number` for `request`: even numbers are what an overloaded AWS
/// endpoint answers (503, throttling), odd ones what a failing one does (500).
fn injected_error(request: &Request<'_>, number: u64) -> Response {
    let throttle = number.is_multiple_of(2);
    let protocol = request.protocol();
    let (status, reason) = if throttle {
        (503, "Service Unavailable")
    } else {
        (500, "Internal Server Error")
    };
    let code = match (protocol, throttle) {
        (Protocol::Ec2Query, true) => "RequestLimitExceeded",
        (Protocol::AwsQuery | Protocol::Route53, true) => "Throttling",
        (Protocol::AwsJson, true) => "ThrottlingException",
        (Protocol::S3, true) => "SlowDown",
        (Protocol::Ec2Query | Protocol::S3, false) => "InternalError",
        (Protocol::AwsQuery | Protocol::Route53 | Protocol::AwsJson, false) => "InternalFailure",
    };
    let message = if throttle {
        "Rate exceeded (injected by the test fault proxy)"
    } else {
        "We encountered an internal error (injected by the test fault proxy)"
    };
    let kind = if throttle { "Sender" } else { "Receiver" };
    let request_id = format!("fault-proxy-{number}");
    let (content_type, body) = match protocol {
        Protocol::Ec2Query => (
            "text/xml;charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
                 <Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
        ),
        Protocol::AwsQuery | Protocol::Route53 => (
            "text/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>{kind}</Type>\
                 <Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
        ),
        Protocol::AwsJson => (
            "application/x-amz-json-1.1",
            format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"),
        ),
        Protocol::S3 => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                 <Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
            ),
        ),
    };
    Response {
        status_line: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![
            ("Content-Type".into(), content_type.into()),
            ("x-amzn-RequestId".into(), request_id.clone()),
            ("x-amz-request-id".into(), request_id),
        ],
        body: body.into_bytes(),
        bodiless: false,
    }
}
