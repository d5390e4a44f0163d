//! The AWS API emulator (moto server) for tests: one per test binary, on a free loopback
//! port, started from the tools venv (through `scripts/moto-server.py`, which mends the
//! emulator's own bugs) and stopped when the test binary exits.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Moto {
    pub endpoint: String,
    /// The watchdog shell; it outlives us on purpose and reaps the emulator itself.
    _watchdog: std::process::Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// The shared emulator, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| Moto::start(&[]))
}

impl Moto {
    /// An emulator of its own, with extra environment (e.g. `INITIAL_NO_AUTH_ACTION_COUNT`,
    /// which makes it evaluate IAM policies after that many requests).
    pub fn start(env: &[(&str, &str)]) -> Moto {
        assert!(
            super::tools::venv_bin("moto_server").exists(),
            "moto is not installed: run scripts/setup-tools.sh"
        );
        // moto's server, with its own bugs mended (see the script).
        let python = super::tools::venv_bin("python");
        let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/moto-server.py");
        let port = free_port();
        // A watchdog shell stops the emulator when this test binary exits, however it exits.
        let script = format!(
            "'{}' '{}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & server=$!; \
             while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; kill $server",
            python.display(),
            server.display(),
            parent = std::process::id()
        );
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            // Debian's AMIs (and decoys), so image lookups run against real describe calls.
            .env(
                "MOTO_AMIS_PATH",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/moto-amis.json"),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .spawn()
            .expect("start moto");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !answers(port) {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            _watchdog: watchdog,
        }
    }
}

/// An SDK configuration that talks to the emulator with dummy credentials.
pub fn sdk_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .endpoint_url(&moto().endpoint)
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "moto"),
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

pub fn s3_client() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&sdk_config())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A fresh bucket with a unique name.
pub async fn new_bucket(client: &aws_sdk_s3::Client, label: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "rafter-{label}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
        .build();
    client
        .create_bucket()
        .bucket(&name)
        .create_bucket_configuration(location)
        .send()
        .await
        .expect("create bucket");
    name
}

/// Environment for a `rafter` process that should use the emulator.
pub fn process_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto().endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// The id of the emulator's public hosted zone `name`, made the first time a test of this
/// binary asks (tests run in parallel and Route53 allows two zones of one name).
pub async fn public_zone(name: &str) -> String {
    static ZONES: tokio::sync::Mutex<Vec<(String, String)>> =
        tokio::sync::Mutex::const_new(Vec::new());
    let mut zones = ZONES.lock().await;
    if let Some((_, id)) = zones.iter().find(|(zone, _)| zone == name) {
        return id.clone();
    }
    let route53 = aws_sdk_route53::Client::new(&sdk_config());
    let created = route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("rafter-test-{name}-{}", std::process::id()))
        .send()
        .await
        .unwrap();
    let id = created
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    zones.push((name.to_string(), id.clone()));
    id
}
