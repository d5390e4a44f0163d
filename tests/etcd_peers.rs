//! The AWS control plane's etcd scripts, run for real against the AWS API emulator's S3 and
//! the metadata stand-in. `etcd-peers.sh hosts`: `/etc/hosts` names every member at the
//! address it published, follows a changed address, and keeps what it knew when the store
//! fails, so a live member is never dropped because one request failed; a member only
//! rafter's members record names (one added later) is found too. `etcd-backup.sh`:
//! the leader's scheduled backup lands where rafter's catalog reads it, whole.

mod common;

use std::path::Path;
use std::process::Command;

use common::imds::Imds;
use rafter::bootstrap::{self, Role};
use rafter::pki::{ClusterPki, ClusterSecrets, NodeLeaves};
use rafter::state::LocalStore;
use time::OffsetDateTime;

const MARK: &str = "# rafter etcd member of prod.example.com";

/// The files of the first `ha-aws` control-plane member.
async fn rendered_files(dir: &Path) -> Vec<rafter::bootstrap::NodeFile> {
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
    rendered.files
}

/// The content of the file at `path`.
fn content(files: &[rafter::bootstrap::NodeFile], path: &str) -> String {
    files
        .iter()
        .find(|file| file.path == path)
        .unwrap_or_else(|| panic!("{path} missing"))
        .content
        .clone()
}

/// `etcd-peers.sh` and `aws.sh` of the first `ha-aws` member, written to `dir`, the first
/// sourcing the second from there.
async fn rendered_scripts(dir: &Path) -> std::path::PathBuf {
    let files = rendered_files(dir).await;
    let content = |path: &str| content(&files, path);
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
    state_bucket(&s3).await;
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

    // rafter adds a member this bundle does not name: its members record names it, and its
    // entry appears once it published an address.
    let record = rafter::rolling::membership::record(
        "prod.example.com",
        &["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"].map(String::from),
    );
    let record_key = rafter::state::layout::etcd_members_key("prod.example.com");
    s3.put_object()
        .bucket("rafter-state-example")
        .key(format!("clusters/{record_key}"))
        .body(record.into_bytes().into())
        .send()
        .await
        .unwrap();
    let unpublished = run_hosts(&script, &hosts_file, &imds, &moto.endpoint);
    assert_eq!(unpublished, moved, "no address published yet");
    publish(&s3, "eu-west-1d", "10.0.128.10").await;
    let added = run_hosts(&script, &hosts_file, &imds, &moto.endpoint);
    let fourth = format!("10.0.128.10 etcd-eu-west-1d.internal.prod.example.com {MARK}");
    assert_eq!(members(&added).len(), 4, "{added}");
    assert!(members(&added).contains(&fourth.as_str()), "{added}");

    // The record cannot be read (the store fails, or the record is gone): the member it named
    // keeps its entry.
    assert_eq!(run_hosts(&script, &hosts_file, &imds, &failing), added);
    s3.delete_object()
        .bucket("rafter-state-example")
        .key(format!("clusters/{record_key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        run_hosts(&script, &hosts_file, &imds, &moto.endpoint),
        added
    );
}

/// Makes the example's state bucket (a test beside may have made it already).
async fn state_bucket(s3: &aws_sdk_s3::Client) {
    let _ = s3
        .create_bucket()
        .bucket("rafter-state-example")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await;
}

#[tokio::test]
async fn the_leaders_scheduled_backup_lands_whole_where_rafter_reads_it() {
    use common::etcd::{Member, etcd_bin};
    let moto = common::moto::moto();
    let s3 = common::moto::s3_client();
    state_bucket(&s3).await;
    let dir = tempfile::tempdir().unwrap();
    let files = rendered_files(dir.path()).await;

    // A one-member etcd on loopback stands for this member (it leads), reached through an
    // etcdctl wrapper where the node has its TLS one.
    let client = "http://127.0.0.1:32479";
    let peer = "http://127.0.0.1:32480";
    let _etcd = Member(
        Command::new(etcd_bin("etcd"))
            .args(["--data-dir", dir.path().join("etcd").to_str().unwrap()])
            .args([
                "--listen-client-urls",
                client,
                "--advertise-client-urls",
                client,
            ])
            .args([
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
            ])
            .args(["--initial-cluster", &format!("default={peer}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let etcdctl = dir.path().join("etcdctl");
    std::fs::write(
        &etcdctl,
        format!(
            "#!/bin/sh\nexec {} --endpoints={client} \"$@\"\n",
            etcd_bin("etcdctl").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &etcdctl,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let put = |key: &str| {
        let status = Command::new(&etcdctl)
            .args(["put", key, "value"])
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !Command::new(&etcdctl)
        .args(["endpoint", "health"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the local etcd never came up"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for i in 0..25 {
        put(&format!("/registry/key-{i}"));
    }

    let helpers = dir.path().join("aws.sh");
    std::fs::write(&helpers, content(&files, bootstrap::etcd::AWS_HELPERS)).unwrap();
    let spool = dir.path().join("spool");
    let script = dir.path().join("etcd-backup.sh");
    std::fs::write(
        &script,
        content(&files, bootstrap::etcd::BACKUP_SCRIPT)
            .replace(
                &format!("source {}", bootstrap::etcd::AWS_HELPERS),
                &format!("source {}", helpers.display()),
            )
            .replace(bootstrap::etcd::ETCDCTL, etcdctl.to_str().unwrap())
            .replace(
                bootstrap::etcd::ETCDUTL,
                etcd_bin("etcdutl").to_str().unwrap(),
            )
            .replace(bootstrap::etcd::BACKUP_SPOOL, spool.to_str().unwrap()),
    )
    .unwrap();
    let imds = Imds::start("127.0.0.1");
    let run = || {
        let output = Command::new("bash")
            .arg(&script)
            .env("RAFTER_IMDS_ENDPOINT", &imds.endpoint)
            .env("RAFTER_S3_ENDPOINT", &moto.endpoint)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{said}");
        said
    };

    let said = run();
    assert!(said.contains("taken at revision"), "{said}");
    let store = rafter::state::S3Store::new(s3.clone(), "rafter-state-example", "clusters");
    let catalog = rafter::backup::catalog::list(&store, "prod.example.com")
        .await
        .unwrap();
    assert_eq!(catalog.backups.len(), 1, "{catalog:?}");
    let backup = &catalog.backups[0];
    assert_eq!(backup.member, "eu-west-1a");
    assert_eq!(backup.facts.keys, Some(25));
    assert_eq!(backup.facts.revision, 26);
    assert_eq!(backup.facts.etcd_version, "3.5.1");
    assert!(backup.verification.is_none());
    // The snapshot is whole: its size and digest are the record's.
    let snapshot = rafter::backup::catalog::snapshot(&store, "prod.example.com", backup)
        .await
        .unwrap();
    assert!(!snapshot.is_empty());
    assert!(
        std::fs::read_dir(&spool).unwrap().all(|entry| !entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('2')),
        "nothing is kept on an AWS node"
    );

    // Nothing written since: no second backup.
    let said = run();
    assert!(
        said.contains("nothing written since the last backup"),
        "{said}"
    );
    // Backup ids are to the second (the timer runs every 5 minutes at most): the next one is
    // taken in another second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    put("/registry/one-more");
    run();
    let catalog = rafter::backup::catalog::list(&store, "prod.example.com")
        .await
        .unwrap();
    assert_eq!(catalog.backups.len(), 2, "{catalog:?}");
}
