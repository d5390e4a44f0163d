//! A stand-in for the EC2 instance metadata service (IMDSv2), for test-bed hosts playing AWS
//! instances: no metadata service can run here. It answers only what rafter's node scripts
//! ask (`aws.sh`): a session token, the caller's own address as `local-ipv4` (the address its
//! request came from, so each host learns its real address), the region, and dummy
//! credentials of an instance role (the AWS API emulator accepts any); and, for a caller the
//! test placed ([`Imds::place`]), the id and zone of the emulator's instance it plays.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub const REGION: &str = "eu-west-1";
const ROLE: &str = "rafter-test-control-plane";
/// The emulator's account (moto's default), which instances find in their identity document.
pub const ACCOUNT: &str = "123456789012";

/// By caller address: the instance id and zone it answers with.
type Placements = Arc<Mutex<HashMap<String, (String, String)>>>;

pub struct Imds {
    pub endpoint: String,
    placements: Placements,
}

impl Imds {
    /// Serves on a free port of the local address `address`, until the test process exits.
    pub fn start(address: &str) -> Self {
        let listener = TcpListener::bind((address, 0)).expect("bind the metadata stand-in");
        let port = listener.local_addr().unwrap().port();
        let placements = Placements::default();
        let served = placements.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let placements = served.clone();
                std::thread::spawn(move || {
                    let _ = answer(client, &placements);
                });
            }
        });
        Self {
            endpoint: format!("http://{address}:{port}"),
            placements,
        }
    }

    /// The host at `address` is from now on the instance `instance_id` in `zone`.
    pub fn place(&self, address: &str, instance_id: &str, zone: &str) {
        self.placements.lock().unwrap().insert(
            address.to_string(),
            (instance_id.to_string(), zone.to_string()),
        );
    }
}

fn answer(mut client: TcpStream, placements: &Placements) -> std::io::Result<()> {
    let caller = client.peer_addr()?.ip().to_string();
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut has_token = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        has_token |= header
            .to_ascii_lowercase()
            .starts_with("x-aws-ec2-metadata-token:");
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let credentials_path = format!("/latest/meta-data/iam/security-credentials/{ROLE}");
    let placement = placements
        .lock()
        .ok()
        .and_then(|placed| placed.get(&caller).cloned());
    let body = match (method, path) {
        ("PUT", "/latest/api/token") => Some("stand-in-session-token".to_string()),
        // IMDSv2: everything else needs the session token.
        ("GET", _) if !has_token => None,
        ("GET", "/latest/meta-data/instance-id") => placement.map(|(instance, _)| instance),
        ("GET", "/latest/meta-data/placement/availability-zone") => placement.map(|(_, zone)| zone),
        ("GET", "/latest/meta-data/local-ipv4") => Some(caller),
        ("GET", "/latest/meta-data/placement/region") => Some(REGION.to_string()),
        ("GET", "/latest/meta-data/iam/security-credentials/") => Some(ROLE.to_string()),
        // The instance identity document, as IMDS formats it (one field a line), in the
        // emulator's account.
        ("GET", "/latest/dynamic/instance-identity/document") => placement.map(|(instance, zone)| {
            format!(
                "{{\n  \"accountId\" : \"{ACCOUNT}\",\n  \"availabilityZone\" : \"{zone}\",\n  \"instanceId\" : \"{instance}\",\n  \"region\" : \"{REGION}\"\n}}"
            )
        }),
        ("GET", path) if path == credentials_path => Some(
            r#"{ "Code" : "Success", "Type" : "AWS-HMAC", "AccessKeyId" : "testing", "SecretAccessKey" : "testing", "Token" : "testing" }"#
                .to_string(),
        ),
        _ => None,
    };
    let (status, body) = match body {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", String::new()),
    };
    write!(
        client,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
