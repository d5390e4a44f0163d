//! The AWS control plane's `etcd-peers.sh hosts`, run for real against the AWS API emulator's
//! S3 and the metadata stand-in: `/etc/hosts` names every member at the address it
//! published, follows a changed address, and keeps what it knew when the store fails, so a
//! live member is never dropped because one request failed.

mod common;

use std::path::Path;
use std::process::Command;

use common::imds::Imds;
use rafter::bootstrap::{self, Role};
use rafter::pki::{ClusterPki, ClusterSecrets, NodeLeaves};
use rafter::state::LocalStore;
use time::OffsetDateTime;

const MARK: &str = "# rafter etcd member of prod.example.com";

/// `etcd-peers.sh` and `aws.sh` of the first `ha-aws` member, written to `dir`, the first
/// sourcing the second from there.
async fn rendered_scripts(dir: &Path) -> std::path::PathBuf {
    let cluster = common::example_cluster("ha-aws");
    let store = LocalStore::new(dir.join("state"));
    let name = &cluster.metadata.name;
    let now = OffsetDateTime::now_utc();
    let pki = ClusterPki::load_or_create(&store, name, now).await.unwrap();
    let secrets = ClusterSecrets::load_or_create(&store, name).await.unwrap();
    let access =
        bootstrap::api_access(&cluster, &bootstrap::ApiLoadBalancerNames::default()).unwrap();
    let node = bootstrap::select_node(&cluster, Role::ControlPlane, None).unwrap();
    let rendered = bootstrap::render_node(
        &cluster,
        node,
        &access,
        &pki,
        &secrets,
        &mut NodeLeaves::fresh(),
        now,
    )
    .unwrap();
    let content = |path: &str| {
        rendered
            .files
            .iter()
            .find(|file| file.path == path)
            .unwrap_or_else(|| panic!("{path} missing"))
            .content
            .clone()
    };
    let helpers = dir.join("aws.sh");
    std::fs::write(&helpers, content(bootstrap::etcd::AWS_HELPERS)).unwrap();
    let peers = dir.join("etcd-peers.sh");
    std::fs::write(
        &peers,
        content(bootstrap::etcd::PEERS_SCRIPT).replace(
            &format!("source {}", bootstrap::etcd::AWS_HELPERS),
            &format!("source {}", helpers.display()),
        ),
    )
    .unwrap();
    peers
}

/// The example's state store is `s3://rafter-state-example/clusters/<name>`.
async fn publish(s3: &aws_sdk_s3::Client, member: &str, address: &str) {
    s3.put_object()
        .bucket("rafter-state-example")
        .key(format!("clusters/prod.example.com/etcd-peers/{member}"))
        .body(format!("{address}\n").into_bytes().into())
        .send()
        .await
        .unwrap();
}

fn run_hosts(script: &Path, hosts_file: &Path, imds: &Imds, s3_endpoint: &str) -> String {
    let output = Command::new("bash")
        .arg(script)
        .arg("hosts")
        .env("RAFTER_HOSTS_FILE", hosts_file)
        .env("RAFTER_IMDS_ENDPOINT", &imds.endpoint)
        .env("RAFTER_S3_ENDPOINT", s3_endpoint)
        .env("RAFTER_RUN_DIR", hosts_file.with_file_name("run"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(hosts_file).unwrap()
}

fn members(hosts: &str) -> Vec<&str> {
    hosts.lines().filter(|line| line.ends_with(MARK)).collect()
}

#[tokio::test]
async fn hosts_follow_published_addresses_and_survive_a_failing_store() {
    let moto = common::moto::moto();
    let s3 = common::moto::s3_client();
    s3.create_bucket()
        .bucket("rafter-state-example")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = rendered_scripts(dir.path()).await;
    let hosts_file = dir.path().join("hosts");
    std::fs::write(&hosts_file, "127.0.0.1 localhost\n").unwrap();
    let imds = Imds::start("127.0.0.1");
    for (member, address) in [
        ("eu-west-1a", "10.0.32.10"),
        ("eu-west-1b", "10.0.64.10"),
        ("eu-west-1c", "10.0.96.10"),
    ] {
        publish(&s3, member, address).await;
    }

    let hosts = run_hosts(&script, &hosts_file, &imds, &moto.endpoint);
    assert!(hosts.starts_with("127.0.0.1 localhost\n"), "{hosts}");
    assert_eq!(
        members(&hosts),
        [
            format!("10.0.32.10 etcd-eu-west-1a.internal.prod.example.com {MARK}"),
            format!("10.0.64.10 etcd-eu-west-1b.internal.prod.example.com {MARK}"),
            format!("10.0.96.10 etcd-eu-west-1c.internal.prod.example.com {MARK}"),
        ]
    );

    // The store fails (every request answered with an error): nothing is dropped.
    let failing = format!("{}/no-such-bucket", moto.endpoint);
    let kept = run_hosts(&script, &hosts_file, &imds, &failing);
    assert_eq!(kept, hosts, "a failing store must not drop live members");

    // A replaced member published its new address: the entry follows.
    publish(&s3, "eu-west-1b", "10.0.64.77").await;
    let moved = run_hosts(&script, &hosts_file, &imds, &moto.endpoint);
    assert!(
        moved.contains(&format!(
            "10.0.64.77 etcd-eu-west-1b.internal.prod.example.com {MARK}"
        )),
        "{moved}"
    );
    assert_eq!(members(&moved).len(), 3, "{moved}");
}
