//! AWS control-plane members booting for real: three test-bed hosts (real sshd, systemd,
//! etcd, containerd) play the instances of the `ha-aws` profile's three control-plane
//! groups. Each runs its launch template's user-data, which fetches the bundle rafter
//! published in the state store (S3 in the AWS API emulator); at boot each member publishes
//! its address and resolves the others' names from what they published. Two form a new TLS
//! etcd cluster with rafter's certificates, which name only DNS names; the third, slow to
//! boot, finds it running and joins in its never-started entry's place. Each member's data is
//! on its own volume, which its instance attaches at boot. Then one instance is powered off
//! for good and a new one with another address takes its place: it waits while the old
//! instance still holds the volume, attaches it and comes back as the same member with its
//! data, and the others find it at its new address. A member whose volume is lost too joins
//! the running cluster anew (its stale entry removed, added again). Finally every instance is
//! lost at once: the replacements come back with their members' data.
//!
//! The instance metadata service and the volumes are stand-ins (`common::imds`,
//! `common::fleet`): neither can run here.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::apply::{Memory, converge};
use common::fleet::{Fleet, VOLUME_DIR};
use common::imds::Imds;
use common::proxy::{FaultConfig, FaultProxy};
use common::testbed::{Testbed, target};
use rafter::bootstrap::assets::NodeNeeds;
use rafter::bootstrap::publish_node_bundles;
use rafter::graph::ResourceKind;
use rafter::hosts::assets::{LocalFiles, local_downloads, upload};
use rafter::model::compute::PROVIDER_ID_FILE;
use rafter::spec::{Cluster, SpecFlags, SpecSources};
use rafter::ssh::Session;
use rafter::state::{S3Store, StateStore, layout};

const CLUSTER: &str = "boot.example.com";
const PREFIX: &str = "clusters";
/// The test bed's side of its bridge, where the hosts reach the emulator and metadata.
const BRIDGE: &str = "10.250.0.1";
const LOAD_BALANCER: &str = "api-boot-0123456789.elb.eu-west-1.amazonaws.com";

fn load_balancers() -> rafter::bootstrap::ApiLoadBalancerNames {
    rafter::bootstrap::ApiLoadBalancerNames {
        clients: Some(LOAD_BALANCER.to_string()),
        nodes: None,
    }
}
/// Hosts playing the instances of the three control-plane groups, and the member each is.
const INSTANCES: [(&str, &str, &str); 3] = [
    ("aws-a", "10.250.0.41", "eu-west-1a"),
    ("aws-b", "10.250.0.42", "eu-west-1b"),
    ("aws-c", "10.250.0.43", "eu-west-1c"),
];
/// The instance that replaces aws-b: another address, another hostname, the same volume.
const REPLACEMENT: (&str, &str, &str) = ("aws-b2", "10.250.0.44", "eu-west-1b");
/// The instance that replaces aws-b2 after its volume is lost too.
const NO_VOLUME: (&str, &str, &str) = ("aws-b3", "10.250.0.45", "eu-west-1b");
const ETCDCTL: &str = "/usr/local/lib/rafter/etcdctl";

struct World {
    testbed: Testbed,
    store: S3Store,
    cluster: Cluster,
    files: LocalFiles,
    /// `/etc/rafter/aws.env` of every instance: where its metadata, S3, EC2 and volumes are.
    aws_env: String,
    fleet: Fleet,
    /// A second spec whose assets every host's cache holds too (an upgrade's target).
    also_cached: Option<Cluster>,
    _assets: tempfile::TempDir,
}

fn cluster(bucket: &str, assets: &std::path::Path) -> Cluster {
    cluster_named(CLUSTER, bucket, assets)
}

/// The `ha-aws` cluster `name` in the three zones, its state in `bucket`, its assets served
/// from `assets` (where its spec overlay is written too).
fn cluster_named(name: &str, bucket: &str, assets: &std::path::Path) -> Cluster {
    cluster_with(name, bucket, assets, &common::host_assets::build(assets))
}

/// [`cluster_named`] with `spec_lines` (YAML under `spec:`, the assets among them) in its
/// overlay.
fn cluster_with(name: &str, bucket: &str, assets: &std::path::Path, spec_lines: &str) -> Cluster {
    let overlay = assets.join("overlay.yaml");
    std::fs::write(
        &overlay,
        format!(
            "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: {name}\nspec:\n{spec_lines}"
        ),
    )
    .unwrap();
    let sources = SpecSources {
        profile: Some("ha-aws".into()),
        file: Some(overlay),
        flags: SpecFlags {
            name: Some(name.into()),
            zones: Some(
                INSTANCES
                    .iter()
                    .map(|(_, _, zone)| zone.to_string())
                    .collect(),
            ),
            ..SpecFlags::default()
        },
    };
    rafter::spec::load(&sources, Some(&format!("s3://{bucket}/{PREFIX}/{name}")))
        .unwrap()
        .cluster
}

impl World {
    /// The bundle rafter published for `member`'s group.
    async fn bundle(&self, member: &str) -> Vec<u8> {
        let key = layout::BundleOwner::ControlPlaneMember(member).key(&self.cluster.metadata.name);
        self.store
            .read(&key)
            .await
            .unwrap()
            .expect("bundle published")
    }

    /// The user-data of `member`'s launch template, as the plan has it.
    fn user_data(&self, member: &str) -> Vec<u8> {
        let graph = rafter::model::build_graph(&self.cluster).unwrap();
        let wanted = format!("user-data-control-plane-{member}.sh");
        graph
            .nodes()
            .iter()
            .flat_map(|node| node.resource.attributes())
            .find_map(|field| match field.value {
                rafter::graph::Value::File(file) if file.name == wanted => {
                    Some(file.content.into_bytes())
                }
                _ => None,
            })
            .expect("the member's launch template has user-data")
    }

    /// `host` boots as the instance of `member`'s group: its cache holds the pinned assets
    /// (as an air-gapped site's would), then it runs its launch template's user-data, which
    /// fetches the published bundle from S3 and runs it. The member that applies the
    /// add-ons runs the bundle without that step instead (it needs a running API server).
    async fn boot(&self, host: &str, address: &str, member: &str) -> String {
        self.boot_for(host, address, member, None).await
    }

    /// As [`World::boot`], but the boot is given at most `limit` seconds (a first-boot
    /// service goes on after that, as on an instance) and may not have finished.
    async fn boot_for(
        &self,
        host: &str,
        address: &str,
        member: &str,
        limit: Option<u32>,
    ) -> String {
        if self.fleet.instance_of(host).is_none() {
            self.fleet.launch(host, address, member).await;
        }
        let session = Session::connect(&target(host, address, "root"), &self.testbed.options())
            .await
            .unwrap();
        let applies_addons = member == INSTANCES[0].2;
        let needs = NodeNeeds {
            control_plane: true,
            applies_addons,
        };
        for cluster in std::iter::once(&self.cluster).chain(&self.also_cached) {
            let downloads = local_downloads(cluster, needs, "amd64").unwrap();
            upload(&session, &downloads, &self.files).await.unwrap();
        }
        session
            .upload("/etc/rafter/aws.env", self.aws_env.as_bytes(), 0o644)
            .await
            .unwrap();
        let command = if applies_addons {
            // This member runs its bundle without the user-data, so without the provider ID
            // the first boot writes from the metadata (checked on the other members).
            let instance = self.fleet.instance_of(host).unwrap();
            session
                .upload(
                    PROVIDER_ID_FILE,
                    format!(
                        "RAFTER_PROVIDER_ID=aws:///{member}/{instance}\nRAFTER_ACCOUNT_ID={}\n",
                        common::imds::ACCOUNT
                    )
                    .as_bytes(),
                    0o644,
                )
                .await
                .unwrap();
            session
                .upload("/root/bundle.sh", &self.bundle(member).await, 0o600)
                .await
                .unwrap();
            "bash /root/bundle.sh --files-only && /usr/local/lib/rafter/bootstrap.sh preflight kernel assets containerd etcd control-plane kubelet"
        } else {
            session
                .upload("/root/user-data.sh", &self.user_data(member), 0o700)
                .await
                .unwrap();
            "set -a && . /etc/rafter/aws.env && set +a && /root/user-data.sh"
        };
        let command = match limit {
            Some(seconds) => format!("timeout {seconds} bash -c '{command}'"),
            None => command.to_string(),
        };
        let output = session.run_as_root(&command, b"").await.unwrap();
        let log = output.stderr_text();
        eprintln!("--- {host} ({member}) booted:\n{log}");
        assert!(limit.is_some() || output.success(), "{host}: {log}");
        session.close().await;
        log
    }
}

/// Creates the members' etcd volumes as `create --yes` would (rafter's apply of the graph's
/// volumes against the emulator; a fresh record adopts those that exist).
async fn create_volumes(cluster: &Cluster) {
    let graph = rafter::model::build_graph(cluster)
        .unwrap()
        .filtered(|node| node.address.kind == ResourceKind::EbsVolume);
    assert_eq!(graph.len(), INSTANCES.len());
    let (report, _) = converge(CLUSTER, &graph, &Memory::default()).await;
    assert!(report.succeeded(), "{report:#?}");
}

/// The id of `member`'s volume, found by its tags as its instance finds it.
async fn volume_of(ec2: &aws_sdk_ec2::Client, member: &str) -> String {
    let filter = |name: &str, value: &str| {
        aws_sdk_ec2::types::Filter::builder()
            .name(name)
            .values(value)
            .build()
    };
    let found = ec2
        .describe_volumes()
        .filters(filter("tag:rafter.dev/cluster", CLUSTER))
        .filters(filter("tag:rafter.dev/etcd-member", member))
        .send()
        .await
        .unwrap();
    assert_eq!(found.volumes().len(), 1, "{found:?}");
    found.volumes()[0].volume_id().unwrap().to_string()
}

/// What rafter reads of the etcd of the first `count` members from their reports in the
/// state store: the findings, or Ok with the reports.
async fn member_evidence(
    store: &S3Store,
    cluster: &str,
    count: usize,
) -> Result<Vec<rafter::validate::member_reports::MemberReport>, String> {
    use rafter::validate::member_reports;
    let members: Vec<String> = INSTANCES[..count]
        .iter()
        .map(|(_, _, m)| m.to_string())
        .collect();
    let reports = member_reports::read(store, cluster, &members)
        .await
        .unwrap();
    let mut report = rafter::validate::Report::default();
    member_reports::judge(
        &members,
        &reports,
        time::OffsetDateTime::now_utc(),
        &mut report,
    );
    match report.healthy() {
        true => Ok(reports.into_iter().filter_map(|(_, found)| found).collect()),
        false => Err(format!("{:?}", report.findings)),
    }
}

/// Polls `check` (async) every 3 s for up to three minutes; its last error otherwise.
async fn eventually_async<T, F: std::future::Future<Output = Result<T, String>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() > deadline => panic!("{what}: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_secs(3)).await,
        }
    }
}

/// Polls `check` for up to three minutes.
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if Instant::now() > deadline => panic!("{what}: {last}"),
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

/// `member list` as seen from `host`: name -> (id, peer URL) of the members that have a name
/// (all of a static cluster's from the start; one added later once it has started).
fn members(testbed: &Testbed, host: &str) -> BTreeMap<String, (String, String)> {
    testbed
        .ssh_ok(host, &format!("{ETCDCTL} member list"))
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(", ").collect();
            (fields.len() >= 4 && fields[1] == "started").then(|| {
                (
                    fields[2].to_string(),
                    (fields[0].to_string(), fields[3].to_string()),
                )
            })
        })
        .collect()
}

/// `endpoint health` from `host` of the endpoints `selection` names (`--cluster` or
/// `--endpoints=…`): Ok when exactly `expected` answer healthy.
fn healthy_at(
    testbed: &Testbed,
    host: &str,
    selection: &str,
    expected: usize,
) -> Result<(), String> {
    let output = testbed.ssh(host, &format!("{ETCDCTL} endpoint health {selection}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && text.matches("is healthy").count() == expected {
        Ok(())
    } else {
        Err(text)
    }
}

fn healthy_everywhere(testbed: &Testbed, host: &str) -> Result<(), String> {
    healthy_at(testbed, host, "--cluster", 3)
}

/// The `--endpoints=…` argument naming `members`' client URLs.
fn client_endpoints(members: &[&str]) -> String {
    let urls: Vec<String> = members
        .iter()
        .map(|member| format!("https://etcd-{member}.internal.{CLUSTER}:2379"))
        .collect();
    format!("--endpoints={}", urls.join(","))
}

async fn published_addresses(store: &S3Store) -> BTreeMap<String, String> {
    let mut addresses = BTreeMap::new();
    for (_, _, member) in INSTANCES {
        let key = layout::etcd_peer_key(CLUSTER, member);
        if let Some(address) = store.read(&key).await.unwrap() {
            addresses.insert(
                member.to_string(),
                String::from_utf8(address).unwrap().trim().to_string(),
            );
        }
    }
    addresses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_find_each_other_at_boot_and_a_replacement_rejoins() {
    let hosts: Vec<(&str, &str)> = INSTANCES.iter().map(|(h, a, _)| (*h, *a)).collect();
    let testbed = Testbed::fresh(&hosts);
    // What the hosts reach on the bridge: S3 (the emulator behind a plain proxy) and metadata.
    let s3 = FaultProxy::start_on(
        BRIDGE,
        &common::moto::moto().endpoint,
        FaultConfig::default(),
    );
    let imds = Imds::start(BRIDGE);
    let client = common::moto::s3_client();
    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    let bucket = common::moto::new_bucket(&client, "boot").await;
    let assets = tempfile::tempdir().unwrap();
    let aws_env = format!(
        "RAFTER_IMDS_ENDPOINT={}\nRAFTER_S3_ENDPOINT={}\nRAFTER_EC2_ENDPOINT={}\nRAFTER_VOLUME_DIR={VOLUME_DIR}\n",
        imds.endpoint,
        s3.endpoint(),
        s3.endpoint()
    );
    let world = World {
        testbed,
        store: S3Store::new(client, &bucket, PREFIX),
        cluster: cluster(&bucket, assets.path()),
        files: LocalFiles::default(),
        aws_env,
        fleet: Fleet::start(ec2.clone(), imds, CLUSTER).await,
        also_cached: None,
        _assets: assets,
    };
    create_volumes(&world.cluster).await;
    let now = time::OffsetDateTime::now_utc();

    let published = publish_node_bundles(&world.store, &world.cluster, &load_balancers(), now)
        .await
        .unwrap();
    assert!(!published.etcd_formed, "nothing has booted yet");
    // The bundles as `create --yes` left them, saying "new".
    let mut first_bundles = Vec::new();
    for (_, _, member) in INSTANCES {
        let key = layout::BundleOwner::ControlPlaneMember(member).key(CLUSTER);
        first_bundles.push((key.clone(), world.store.read(&key).await.unwrap().unwrap()));
    }

    // Two instances come up together and form the new cluster: two of its three members are
    // a quorum. The third is slow to boot.
    let (a, b, c) = (INSTANCES[0], INSTANCES[1], INSTANCES[2]);
    let logs = futures::future::join_all(
        [a, c]
            .iter()
            .map(|(host, address, member)| world.boot(host, address, member)),
    )
    .await;
    for (log, (host, address, member)) in logs.iter().zip([a, c]) {
        assert!(
            log.contains(&format!("published member {member} at {address}")),
            "{host}: {log}"
        );
        assert!(
            !log.contains("added member"),
            "{host} formed the new cluster with the other: {log}"
        );
    }
    // A quorum of two answers; the third is listed (a static cluster names all its members
    // from the start) but has never started.
    eventually("two of three members healthy", || {
        healthy_at(&world.testbed, "aws-a", &client_endpoints(&[a.2, c.2]), 2)
    });
    let unstarted = members(&world.testbed, "aws-c")[b.2].0.clone();

    // The slow one finds a running cluster: it takes its never-started entry's place.
    let (host, address, member) = b;
    let log = world.boot(host, address, member).await;
    assert!(
        log.contains(&format!("removed the entry {unstarted} of member {member}"))
            && log.contains(&format!("added member {member} to the running cluster")),
        "{log}"
    );
    let expected: BTreeMap<String, String> = INSTANCES
        .iter()
        .map(|(_, address, member)| (member.to_string(), address.to_string()))
        .collect();
    assert_eq!(published_addresses(&world.store).await, expected);

    // The members find each other (the timer refreshes /etc/hosts as the others publish).
    eventually("three healthy members", || {
        healthy_everywhere(&world.testbed, "aws-a")
    });
    let formed = members(&world.testbed, "aws-c");
    assert_eq!(formed.len(), 3, "{formed:?}");
    // rafter sees the same through the reports the members put in the state store.
    let reports = eventually_async("the members' reports say healthy", || {
        member_evidence(&world.store, CLUSTER, 3)
    })
    .await;
    for report in &reports {
        assert_eq!(
            u64::from_str_radix(&formed[&report.member].0, 16)
                .unwrap()
                .to_string(),
            report.member_id,
            "{report:?}"
        );
    }
    for (_, _, member) in INSTANCES {
        assert_eq!(
            formed[member].1,
            format!("https://etcd-{member}.internal.{CLUSTER}:2380")
        );
    }
    eventually("every member's /etc/hosts names all three", || {
        for (host, _, _) in INSTANCES {
            let hosts_file = world.testbed.ssh_ok(host, "cat /etc/hosts");
            for (_, address, member) in INSTANCES {
                if !hosts_file.contains(&format!("{address} etcd-{member}.internal.{CLUSTER} ")) {
                    return Err(format!("{host}:\n{hosts_file}"));
                }
            }
        }
        Ok(())
    });
    // The first boot wrote each instance's provider ID from its metadata, for the kubelet, and
    // the account, for the node termination handler's queue URL.
    for (host, _, zone) in &INSTANCES[1..] {
        let instance = world.fleet.instance_of(host).unwrap();
        assert_eq!(
            world
                .testbed
                .ssh_ok(host, &format!("cat {PROVIDER_ID_FILE}"))
                .trim(),
            format!(
                "RAFTER_PROVIDER_ID=aws:///{zone}/{instance}\nRAFTER_ACCOUNT_ID={}",
                common::imds::ACCOUNT
            ),
            "{host}"
        );
    }
    for (host, _, _) in INSTANCES {
        // The kubelet's certificate was issued on the node, for the node's own name.
        let subject = world.testbed.ssh_ok(
            host,
            "openssl verify -CAfile /etc/kubernetes/pki/ca.crt /var/lib/kubelet/pki/rafter-kubelet-client.crt && \
             openssl x509 -noout -subject -nameopt RFC2253 -in /var/lib/kubelet/pki/rafter-kubelet-client.crt",
        );
        assert!(
            subject.contains(&format!("CN=system:node:{host},O=system:nodes")),
            "{host}: {subject}"
        );
    }
    world
        .testbed
        .ssh_ok("aws-a", &format!("{ETCDCTL} put /rafter/boot formed"));

    // Once healthy, a member records in the state store that the cluster formed (its timer
    // runs every 30 s); rafter's bundles still say "new" (no update ran since the create).
    let formed_key = layout::etcd_formed_key(CLUSTER);
    let mut record = String::new();
    for _ in 0..40 {
        record = world
            .store
            .read(&formed_key)
            .await
            .unwrap()
            .map(|bytes| String::from_utf8(bytes).unwrap())
            .unwrap_or_default();
        if record.starts_with("formed") {
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    assert!(
        record.starts_with("formed; first recorded by member"),
        "{record:?}"
    );

    // Every member's data is on its volume, outside its instance.
    let mut volumes = BTreeMap::new();
    for (_, _, member) in INSTANCES {
        let volume = volume_of(&ec2, member).await;
        assert!(
            Fleet::volume_data(&volume).join("member/wal").is_dir(),
            "member {member}'s data is not on its volume {volume}"
        );
        volumes.insert(member, volume);
    }

    // A writer on aws-a puts numbered keys throughout what follows, and says which etcd
    // acknowledged.
    let writer = std::thread::spawn(|| {
        let output = Testbed::open().ssh(
            "aws-a",
            &format!(
                "rm -f /tmp/stop-writer; i=0; while [ ! -e /tmp/stop-writer ]; do i=$((i + 1)); \
                 if {ETCDCTL} --command-timeout=2s put /writer/$i v$i >/dev/null 2>&1; then echo $i; fi; \
                 sleep 0.05; done"
            ),
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<String>>()
    });

    // aws-b is powered off for good; its group's replacement boots elsewhere while EC2 still
    // counts the old instance as holding the volume (it is terminating). The replacement
    // waits for the volume, attaches it once the old instance is gone, and comes back as the
    // same member with its data: no membership change.
    world.testbed.stop("aws-b");
    let (host, address, member) = REPLACEMENT;
    Testbed::fresh(&[(host, address)]);
    let old_instance = world.fleet.instance_of("aws-b").unwrap();
    let terminated = async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        world.fleet.terminate("aws-b").await;
    };
    let (log, ()) = tokio::join!(world.boot(host, address, member), terminated);
    assert!(
        log.contains(&format!(
            "waiting for member {member}'s volume {}: instance {old_instance} holds it",
            volumes[member]
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "attached member {member}'s volume {}",
            volumes[member]
        )) && !log.contains("added member"),
        "{log}"
    );
    assert_eq!(published_addresses(&world.store).await[member], address);
    eventually("the replacement in a healthy cluster of three", || {
        healthy_everywhere(&world.testbed, "aws-c")?;
        healthy_everywhere(&world.testbed, host)
    });
    let after_replacement = members(&world.testbed, "aws-a");
    assert_eq!(
        after_replacement, formed,
        "the same members, with the same ids and peer URLs"
    );
    // rafter's evidence: the member now reports from the new instance, healthy and caught up.
    let new_instance = world.fleet.instance_of(host).unwrap();
    eventually_async(
        "the replaced member reports from its new instance",
        || async {
            let reports = member_evidence(&world.store, CLUSTER, 3).await?;
            match reports
                .iter()
                .any(|report| report.member == member && report.instance == new_instance)
            {
                true => Ok(()),
                false => Err(format!("{reports:?}")),
            }
        },
    )
    .await;
    // The others learn its new address (their timers run every 30 s); the data written
    // before is on the new instance.
    eventually("aws-a learns the replacement's address", || {
        let hosts_file = world.testbed.ssh_ok("aws-a", "cat /etc/hosts");
        match hosts_file.contains(&format!("{address} etcd-{member}.internal.{CLUSTER} ")) {
            true => Ok(()),
            false => Err(hosts_file),
        }
    });
    let value = world.testbed.ssh_ok(
        host,
        &format!("{ETCDCTL} get /rafter/boot --print-value-only --consistency=s"),
    );
    assert_eq!(value.trim(), "formed");

    // Every instance that booted through its user-data reported in the state store, under its
    // own name, that its first boot is done.
    for (host, member) in [(b.0, b.2), (c.0, c.2), (REPLACEMENT.0, REPLACEMENT.2)] {
        let key = layout::BundleOwner::ControlPlaneMember(member).status_key(CLUSTER, host);
        let report = world
            .store
            .read(&key)
            .await
            .unwrap()
            .map(|bytes| String::from_utf8(bytes).unwrap());
        let report = report.unwrap_or_else(|| panic!("{host} reported nothing at {key}"));
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(report["host"], host, "{report}");
        assert_eq!(report["state"], "done", "{report}");
    }

    // rafter reads the formed record: from now on its bundles say a member without data joins.
    let republished = publish_node_bundles(&world.store, &world.cluster, &load_balancers(), now)
        .await
        .unwrap();
    assert!(republished.etcd_formed);

    // Now the member's volume is lost with its instance: the next `update` creates a new,
    // empty one, and the member's next instance must join the running cluster as a new
    // member, never start as the old one with an empty log, even while the others are
    // unreachable for a while (their etcd stopped with SIGSTOP).
    world.testbed.stop(host);
    world.fleet.terminate(host).await;
    ec2.delete_volume()
        .volume_id(&volumes[member])
        .send()
        .await
        .unwrap();
    create_volumes(&world.cluster).await;
    let new_volume = volume_of(&ec2, member).await;
    assert_ne!(new_volume, volumes[member]);
    // EC2 (as the proxy plays it) attaches a volume to one instance at a time, in its zone.
    let through_proxy = aws_sdk_ec2::Client::new(&s3.sdk_config());
    let attach = |volume: String, host: &str| {
        through_proxy
            .attach_volume()
            .volume_id(volume)
            .instance_id(world.fleet.instance_of(host).unwrap())
            .device("/dev/xvdv")
            .send()
    };
    let refusal = |outcome: Result<_, aws_sdk_ec2::error::SdkError<_>>| {
        let error: aws_sdk_ec2::operation::attach_volume::AttachVolumeError =
            outcome.unwrap_err().into_service_error();
        aws_sdk_ec2::error::ProvideErrorMetadata::code(&error).map(str::to_string)
    };
    assert_eq!(
        refusal(attach(volumes[a.2].clone(), "aws-c").await).as_deref(),
        Some("VolumeInUse")
    );
    assert_eq!(
        refusal(attach(new_volume.clone(), "aws-a").await).as_deref(),
        Some("InvalidVolume.ZoneMismatch")
    );
    let old_id = formed[member].0.clone();
    let (host, address, member) = NO_VOLUME;
    Testbed::fresh(&[(host, address)]);
    for (peer, _, _) in [a, c] {
        world.testbed.ssh_ok(peer, "pkill -STOP -x etcd");
    }
    // The peers answer again once the new member said it waits for them (at most 5
    // minutes): a fixed pause would race with a slow boot.
    let resume = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline
            && !Testbed::open()
                .ssh(
                    host,
                    "journalctl -u rafter-first-boot --no-pager | grep -q 'waiting to join'",
                )
                .status
                .success()
        {
            std::thread::sleep(Duration::from_secs(2));
        }
        std::thread::sleep(Duration::from_secs(5));
        for (peer, _, _) in [INSTANCES[0], INSTANCES[2]] {
            Testbed::open().ssh_ok(peer, "pkill -CONT -x etcd");
        }
    });
    let log = world.boot(host, address, member).await;
    resume.join().unwrap();
    assert!(log.contains("waiting to join"), "{log}");
    assert!(
        log.contains(&format!("removed the entry {old_id} of member {member}"))
            && log.contains(&format!("added member {member} to the running cluster")),
        "{log}"
    );
    eventually("the new member in a healthy cluster of three", || {
        healthy_everywhere(&world.testbed, "aws-c")?;
        healthy_everywhere(&world.testbed, host)
    });
    let rejoined = members(&world.testbed, "aws-a");
    assert_eq!(rejoined.len(), 3, "{rejoined:?}");
    assert_ne!(
        rejoined[member].0, old_id,
        "a new member took the old one's place"
    );
    assert!(Fleet::volume_data(&new_volume).join("member/wal").is_dir());

    // No write etcd acknowledged through both replacements is lost: each is on every member,
    // with its value.
    world.testbed.ssh_ok("aws-a", "touch /tmp/stop-writer");
    let acknowledged = writer.join().unwrap();
    assert!(
        acknowledged.len() >= 20,
        "the writer wrote throughout: {acknowledged:?}"
    );
    let survivors = ["aws-a", "aws-c", host];
    for reader in survivors {
        eventually(&format!("every acknowledged write on {reader}"), || {
            every_write_present(&world.testbed, reader, &acknowledged)
        });
    }

    // Every instance is lost at once, before any `update` ran (the bundles still say "new").
    // The volumes are not: each replacement attaches its member's volume and the members
    // start again with their data, as the same members.
    for (key, bundle) in &first_bundles {
        world.store.write(key, bundle).await.unwrap();
    }
    let before = members(&world.testbed, "aws-a");
    for lost in survivors {
        world.testbed.stop(lost);
        world.fleet.terminate(lost).await;
    }
    let fresh = [
        ("aws-a3", "10.250.0.46", "eu-west-1a"),
        ("aws-b4", "10.250.0.47", "eu-west-1b"),
        ("aws-c3", "10.250.0.48", "eu-west-1c"),
    ];
    Testbed::fresh(&fresh.map(|(host, address, _)| (host, address)));
    let logs = futures::future::join_all(
        fresh
            .iter()
            .map(|(host, address, member)| world.boot(host, address, member)),
    )
    .await;
    for ((host, _, member), log) in fresh.iter().zip(logs) {
        assert!(
            log.contains(&format!("attached member {member}'s volume"))
                && !log.contains("added member"),
            "{host}: {log}"
        );
    }
    let (first, _, _) = fresh[0];
    eventually("the three members back together", || {
        healthy_everywhere(&world.testbed, first)
    });
    assert_eq!(members(&world.testbed, first), before, "the same members");
    for (reader, _, _) in fresh {
        eventually(&format!("every acknowledged write on {reader}"), || {
            every_write_present(&world.testbed, reader, &acknowledged)
        });
    }

    // A member from before rafter gave members volumes keeps its data on the root disk. (Made
    // so on aws-c3: its data copied to the root disk, the volume unmounted and let go, and a
    // new, empty volume made for the member as `update` would.) When its bundle runs again it
    // moves the data onto the new volume and stays the same member.
    let (host, _, member) = fresh[2];
    world.testbed.ssh_ok(
        host,
        "systemctl stop etcd && cp -a /var/lib/etcd /root/etcd-data && \
         systemctl stop var-lib-etcd.mount && rm /etc/systemd/system/var-lib-etcd.mount && \
         systemctl daemon-reload && rmdir /var/lib/etcd && mv /root/etcd-data /var/lib/etcd",
    );
    let old_volume = volume_of(&ec2, member).await;
    ec2.detach_volume()
        .volume_id(&old_volume)
        .instance_id(world.fleet.instance_of(host).unwrap())
        .send()
        .await
        .unwrap();
    ec2.delete_volume()
        .volume_id(&old_volume)
        .send()
        .await
        .unwrap();
    create_volumes(&world.cluster).await;
    let new_volume = volume_of(&ec2, member).await;
    let rerun = world
        .testbed
        .ssh(host, "/usr/local/lib/rafter/first-boot.sh");
    let log = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "moved member {member}'s data from the root disk onto its volume {new_volume}"
        )),
        "{log}"
    );
    assert!(Fleet::volume_data(&new_volume).join("member/wal").is_dir());
    eventually("the moved member back in a healthy cluster", || {
        healthy_everywhere(&world.testbed, host)
    });
    assert_eq!(members(&world.testbed, host), before, "the same members");
    eventually(&format!("every acknowledged write on {host}"), || {
        every_write_present(&world.testbed, host, &acknowledged)
    });
}

/// Ok when every key in `acknowledged` is on `reader`'s member with its value.
fn every_write_present(
    testbed: &Testbed,
    reader: &str,
    acknowledged: &[String],
) -> Result<(), String> {
    let stored = testbed.ssh_ok(
        reader,
        &format!("{ETCDCTL} get /writer/ --prefix --consistency=s -w json"),
    );
    let stored: serde_json::Value =
        serde_json::from_str(&stored).map_err(|error| error.to_string())?;
    let values: BTreeMap<String, String> = stored["kvs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|kv| {
            let decode = |field: &str| {
                String::from_utf8(
                    aws_smithy_types::base64::decode(kv[field].as_str().unwrap()).unwrap(),
                )
                .unwrap()
            };
            (decode("key"), decode("value"))
        })
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|i| values.get(&format!("/writer/{i}")) != Some(&format!("v{i}")))
        .collect();
    match lost.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "{} of {} acknowledged writes missing: {lost:?}",
            lost.len(),
            acknowledged.len()
        )),
    }
}

/// What the test and the proxy's hook (in its own thread) share.
type Shared<T> = std::sync::Arc<std::sync::Mutex<T>>;

/// The rolling update's cluster, made by `rafter create cluster --yes` on the emulator.
const ROLLED: &str = "roll.example.com";
/// Hosts playing the instances Auto Scaling launches for the rolled cluster's members: the
/// first three at creation, the others as replacements, in order.
const ROLL_HOSTS: [(&str, &str); 6] = [
    ("roll-1", "10.250.0.81"),
    ("roll-2", "10.250.0.82"),
    ("roll-3", "10.250.0.83"),
    ("roll-4", "10.250.0.84"),
    ("roll-5", "10.250.0.85"),
    ("roll-6", "10.250.0.86"),
];
/// The AWS upgrade's cluster, and the hosts playing its members' instances.
const UPGRADED: &str = "upgrade.example.com";
const UPGRADE_HOSTS: [(&str, &str); 6] = [
    ("upg-1", "10.250.0.101"),
    ("upg-2", "10.250.0.102"),
    ("upg-3", "10.250.0.103"),
    ("upg-4", "10.250.0.104"),
    ("upg-5", "10.250.0.105"),
    ("upg-6", "10.250.0.106"),
];
const FROM_KUBERNETES: &str = "1.34.2";
const TO_KUBERNETES: &str = "1.35.0";

/// Every control-plane member's group name and the instances Auto Scaling has in service in
/// it, for `cluster`.
async fn member_groups(
    autoscaling: &aws_sdk_autoscaling::Client,
    cluster: &str,
) -> BTreeMap<String, (String, Vec<String>)> {
    let described = autoscaling
        .describe_auto_scaling_groups()
        .send()
        .await
        .unwrap();
    let mut groups = BTreeMap::new();
    for group in described.auto_scaling_groups() {
        let name = group.auto_scaling_group_name().unwrap_or_default();
        let Some(member) = name
            .strip_prefix("control-plane-")
            .and_then(|rest| rest.strip_suffix(&format!(".{cluster}")))
        else {
            continue;
        };
        let instances = group
            .instances()
            .iter()
            .filter(|instance| {
                instance.lifecycle_state()
                    == Some(&aws_sdk_autoscaling::types::LifecycleState::InService)
            })
            .filter_map(|instance| instance.instance_id().map(str::to_string))
            .collect();
        groups.insert(member.to_string(), (name.to_string(), instances));
    }
    groups
}

/// A cluster made by `rafter create cluster --yes` on the emulator, whose members' instances
/// test-bed hosts play: booted from their group's user-data as Auto Scaling launches them.
/// Terminating an instance powers its host off first (AWS detaches a volume once the
/// instance has stopped); at that moment every other member must be healthy, which is
/// recorded. A writer puts numbered keys throughout, through whichever member host runs.
struct Rolled {
    name: &'static str,
    world: World,
    s3: FaultProxy,
    bucket: String,
    autoscaling: aws_sdk_autoscaling::Client,
    /// Hosts not yet playing an instance, in order.
    free_hosts: std::sync::Mutex<
        std::iter::Copied<std::slice::Iter<'static, (&'static str, &'static str)>>,
    >,
    running: Shared<Vec<String>>,
    /// Each terminated instance's host, and whether every other member was healthy then.
    terminations: Shared<Vec<(String, Result<(), String>)>>,
    stop_writer: std::sync::Arc<std::sync::atomic::AtomicBool>,
    writer: Option<std::thread::JoinHandle<Vec<String>>>,
    logs: tempfile::TempDir,
}

/// One `--yes` run of a replacing command, killed once and run again.
struct KilledAndRerun {
    status: std::process::ExitStatus,
    first: String,
    rerun: String,
    /// The members whose new instances booted, in order.
    replaced: Vec<String>,
}

impl Rolled {
    /// `rafter create cluster NAME --yes` of the `ha-aws` profile in three zones with
    /// `spec_lines` in its overlay and `count` control-plane members, the first `count`
    /// `hosts` booting them, the writer started once they report healthy.
    async fn create(
        name: &'static str,
        hosts: &'static [(&'static str, &'static str)],
        count: usize,
        assets: tempfile::TempDir,
        spec_lines: &str,
        also_cached: Option<Cluster>,
    ) -> Self {
        Testbed::fresh(&hosts[..count]);
        let s3 = FaultProxy::start_on(
            BRIDGE,
            &common::moto::moto().endpoint,
            FaultConfig::default(),
        );
        let imds = Imds::start(BRIDGE);
        let client = common::moto::s3_client();
        let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
        // Through the fault proxy, which keeps each instance's launch template version as
        // first listed (the emulator reports the template's current one): the test's own
        // listings must record an instance launched meanwhile too.
        let autoscaling = aws_sdk_autoscaling::Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(&common::moto::sdk_config())
                .endpoint_url(s3.endpoint())
                .build(),
        );
        let bucket = common::moto::new_bucket(&client, name.split('.').next().unwrap()).await;
        common::moto::public_zone("example.com").await;
        let cluster = cluster_with(name, &bucket, assets.path(), spec_lines);
        let key_file = assets.path().join("key.pub");
        std::fs::write(&key_file, common::EXAMPLE_PUBLIC_KEY).unwrap();
        let overlay = assets.path().join("overlay.yaml");
        let mut rolled = Rolled {
            name,
            world: World {
                testbed: Testbed::open(),
                store: S3Store::new(client, &bucket, PREFIX),
                cluster,
                files: LocalFiles::default(),
                aws_env: format!(
                    "RAFTER_IMDS_ENDPOINT={}\nRAFTER_S3_ENDPOINT={}\nRAFTER_EC2_ENDPOINT={}\nRAFTER_VOLUME_DIR={VOLUME_DIR}\n",
                    imds.endpoint,
                    s3.endpoint(),
                    s3.endpoint()
                ),
                fleet: Fleet::start(ec2, imds, name).await,
                also_cached,
                _assets: assets,
            },
            s3,
            bucket,
            autoscaling,
            free_hosts: std::sync::Mutex::new(hosts.iter().copied()),
            running: Shared::default(),
            terminations: Shared::default(),
            stop_writer: Default::default(),
            writer: None,
            logs: tempfile::tempdir().unwrap(),
        };
        // `create --yes` waits for the members' etcd: the hosts boot the instances the groups
        // launch while it waits, as instances would.
        let count_arg = count.to_string();
        let create_log = rolled.logs.path().join("create.log");
        let log_file = std::fs::File::create(&create_log).unwrap();
        let mut create = rolled
            .rafter(&[
                "create",
                "cluster",
                "-f",
                overlay.to_str().unwrap(),
                "--profile",
                "ha-aws",
                "--zones",
                "eu-west-1a,eu-west-1b,eu-west-1c",
                "--dns-zone",
                "example.com",
                "--ssh-public-key",
                key_file.to_str().unwrap(),
                "--control-plane-count",
                &count_arg,
                "--yes",
            ])
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let said = || std::fs::read_to_string(&create_log).unwrap_or_default();
        let groups = loop {
            let groups = member_groups(&rolled.autoscaling, name).await;
            if groups.len() == count && groups.values().all(|(_, instances)| !instances.is_empty())
            {
                break groups;
            }
            if let Some(status) = create.try_wait().unwrap() {
                panic!(
                    "create exited ({status}) before its instances ran: {}",
                    said()
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };

        // The hosts play the instances the groups launched, and boot them.
        let mut boots = Vec::new();
        for (member, (_, instances)) in &groups {
            let (host, address) = rolled.free_hosts.lock().unwrap().next().unwrap();
            rolled
                .world
                .fleet
                .adopt(host, address, &instances[0], member);
            rolled.running.lock().unwrap().push(host.to_string());
            boots.push(rolled.world.boot(host, address, member));
        }
        futures::future::join_all(boots).await;
        let status = loop {
            if let Some(status) = create.try_wait().unwrap() {
                break status;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let log = said();
        assert!(status.success(), "create: {log}");
        assert!(
            log.contains("Every control-plane member reports a healthy etcd."),
            "{log}"
        );
        eventually_async("the members report healthy", || {
            member_evidence(&rolled.world.store, name, count)
        })
        .await;
        rolled.watch_terminations();
        rolled.start_writer();
        rolled
    }

    fn rafter(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rafter"));
        command
            .args(args)
            .env("RAFTER_STATE", format!("s3://{}/{PREFIX}", self.bucket))
            .envs(common::moto::process_env())
            .env("AWS_ENDPOINT_URL", self.s3.endpoint())
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        command
    }

    /// `rafter args` succeeded: its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.rafter(args).output().unwrap();
        assert!(
            output.status.success(),
            "rafter {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn watch_terminations(&self) {
        let (running, terminations) = (self.running.clone(), self.terminations.clone());
        let hosts_by_instance = self.world.fleet.hosts_handle();
        self.s3
            .before_forwarding(std::sync::Arc::new(move |action, body| {
                if action != "TerminateInstanceInAutoScalingGroup" {
                    return;
                }
                let instance = body
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("InstanceId="))
                    .unwrap_or_default()
                    .to_string();
                let Some(host) = hosts_by_instance.lock().unwrap().get(&instance).cloned() else {
                    return;
                };
                let others: Vec<String> = running
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|other| **other != host)
                    .cloned()
                    .collect();
                let healthy = healthy_at(&Testbed::open(), &others[0], "--cluster", 3);
                terminations.lock().unwrap().push((host.clone(), healthy));
                Testbed::open().stop(&host);
                running.lock().unwrap().retain(|other| *other != host);
            }));
    }

    fn start_writer(&mut self) {
        let (running, stop) = (self.running.clone(), self.stop_writer.clone());
        self.writer = Some(std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let host = running.lock().unwrap().first().cloned();
                if let Some(host) = host
                    && Testbed::open()
                        .ssh(
                            &host,
                            &format!("{ETCDCTL} --command-timeout=2s put /roll/{i} v{i}"),
                        )
                        .status
                        .success()
                {
                    acknowledged.push(i.to_string());
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            acknowledged
        }));
    }

    /// Runs `rafter args` (a `--yes` run that replaces members), booting each instance Auto
    /// Scaling launches as it appears; the first run is killed (SIGKILL) once `kill_after`
    /// members were replaced, and the same command run again. `each` is called before each
    /// new instance boots, with the members replaced so far.
    async fn run_killed_once(
        &self,
        args: &[&str],
        kill_after: usize,
        mut each: impl AsyncFnMut(&Rolled, &[String]),
    ) -> KilledAndRerun {
        let log_path = |attempt: u32| self.logs.path().join(format!("run-{attempt}.log"));
        let start = |attempt: u32| {
            let log = std::fs::File::create(log_path(attempt)).unwrap();
            self.rafter(args)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap()
        };
        let (mut child, mut attempt) = (start(1), 1);
        let mut replaced = Vec::new();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if attempt == 1 && replaced.len() == kill_after {
                child.kill().unwrap();
                child.wait().unwrap();
                (child, attempt) = (start(2), 2);
                continue;
            }
            for (member, (_, instances)) in member_groups(&self.autoscaling, self.name).await {
                for instance in instances {
                    if self.world.fleet.host_of(&instance).is_some() {
                        continue;
                    }
                    each(self, &replaced).await;
                    let next = self.free_hosts.lock().unwrap().next();
                    let (host, address) = next.expect("a host for every replacement");
                    Testbed::fresh(&[(host, address)]);
                    self.world.fleet.adopt(host, address, &instance, &member);
                    self.world.boot(host, address, &member).await;
                    self.running.lock().unwrap().push(host.to_string());
                    replaced.push(member.clone());
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let read = |attempt: u32| std::fs::read_to_string(log_path(attempt)).unwrap_or_default();
        KilledAndRerun {
            status,
            first: read(1),
            rerun: read(2),
            replaced,
        }
    }

    /// After the replacements: the writer stopped, the same three members healthy on the
    /// replacements, every acknowledged write on each, and at every termination every other
    /// member was healthy.
    fn assert_nothing_lost(&mut self, before: &BTreeMap<String, (String, String)>) {
        self.stop_writer
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let acknowledged = self.writer.take().unwrap().join().unwrap();
        assert!(acknowledged.len() >= 20, "{acknowledged:?}");
        let replacements: Vec<String> = self.running.lock().unwrap().clone();
        assert_eq!(replacements.len(), 3, "{replacements:?}");
        eventually("the three members healthy", || {
            healthy_everywhere(&self.world.testbed, &replacements[0])
        });
        assert_eq!(
            &members(&self.world.testbed, &replacements[0]),
            before,
            "the same members"
        );
        let keys: Vec<String> = acknowledged.iter().map(|i| format!("/roll/{i}")).collect();
        for host in &replacements {
            let stored = self.world.testbed.ssh_ok(
                host,
                &format!("{ETCDCTL} get /roll/ --prefix --keys-only --consistency=s"),
            );
            let missing: Vec<&String> = keys.iter().filter(|key| !stored.contains(*key)).collect();
            assert!(missing.is_empty(), "{host} lacks {missing:?}");
        }
        let terminations = self.terminations.lock().unwrap();
        for (host, healthy) in terminations.iter() {
            assert_eq!(
                healthy,
                &Ok(()),
                "every other member healthy when {host} went"
            );
        }
        assert_eq!(terminations.len(), 3);
    }
}

/// `rafter rolling-update cluster` on AWS: the three members of a cluster made by `create
/// cluster --yes` (the emulator's auto-scaling groups launch the instances, test-bed hosts play
/// them) are out of date once `update` changes their instance type, and are replaced one at
/// a time, while a writer writes throughout. At every termination every other member is
/// healthy; each member comes back as the same member with its data; every acknowledged
/// write survives; and a second run finds nothing to replace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_update_replaces_members_one_at_a_time() {
    let assets = tempfile::tempdir().unwrap();
    let spec_lines = common::host_assets::build(assets.path());
    let mut rolled = Rolled::create(ROLLED, &ROLL_HOSTS, 3, assets, &spec_lines, None).await;
    let before = members(&rolled.world.testbed, ROLL_HOSTS[0].0);
    assert_eq!(before.len(), 3, "{before:?}");

    // Nothing is out of date yet. Then the control plane's instance type changes: `update`
    // makes new launch template versions, which only instances launched later get, and the
    // plan names every member's instance.
    let plan = rolled.ok(&["rolling-update", "cluster", ROLLED]);
    assert!(plan.contains("Nothing to replace"), "{plan}");
    let spec = rolled.ok(&["get", "cluster", ROLLED, "-o", "yaml"]);
    let edited = spec.replacen("instanceType: t3.medium", "instanceType: t3.large", 1);
    assert_ne!(edited, spec);
    let edited_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(edited_file.path(), edited).unwrap();
    rolled.ok(&[
        "update",
        "cluster",
        ROLLED,
        "-f",
        edited_file.path().to_str().unwrap(),
        "--yes",
    ]);
    let plan = rolled.ok(&["rolling-update", "cluster", ROLLED]);
    for (member, (_, instances)) in member_groups(&rolled.autoscaling, ROLLED).await {
        assert!(
            plan.contains(&format!(
                "replace member {member} ({}): launch template version 1 -> 2",
                instances[0]
            )),
            "{plan}"
        );
    }
    assert!(
        plan.contains("every member reports its etcd healthy"),
        "{plan}"
    );

    // The rolling update runs; the first run is killed while it waits for the second member
    // to come back; the same command run again continues with that member (whose old
    // instance is gone already).
    let run = rolled
        .run_killed_once(
            &["rolling-update", "cluster", ROLLED, "--yes"],
            2,
            async |_, _| {},
        )
        .await;
    let log = format!("{}\n--- rerun:\n{}", run.first, run.rerun);
    eprintln!("--- the run:\n{log}");
    assert!(run.status.success(), "{log}");
    assert!(
        run.first.contains("[1/3] replace member eu-west-1a")
            && run.rerun.contains("Continuing the rolling update")
            && !run.rerun.contains("[1/3]")
            && run.rerun.contains("[2/3] replace member eu-west-1b"),
        "{log}"
    );
    assert_eq!(
        run.replaced,
        ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
        "{log}"
    );
    for member in ["eu-west-1a", "eu-west-1b", "eu-west-1c"] {
        assert!(
            log.contains(&format!("member {member} is back on instance")),
            "{log}"
        );
    }
    rolled.assert_nothing_lost(&before);
    // Each old instance waited at the node termination handler's hook (the emulator holds it
    // there as AWS does) until rafter completed the action: once per member.
    assert_eq!(
        rolled
            .s3
            .operations()
            .get("autoscaling CompleteLifecycleAction")
            .copied(),
        Some(3),
        "{:?}",
        rolled.s3.operations()
    );

    // Nothing left to do.
    let again = rolled.ok(&["rolling-update", "cluster", ROLLED]);
    assert!(again.contains("Nothing to replace"), "{again}");
}

/// The cluster whose control-plane members change, and the hosts playing their instances.
const MOVED: &str = "members.example.com";
const MEMBER_HOSTS: [(&str, &str); 3] = [
    ("mem-1", "10.250.0.111"),
    ("mem-2", "10.250.0.112"),
    ("mem-3", "10.250.0.113"),
];

/// `spec` (as `get cluster -o yaml` prints it) with `spec.controlPlane.count` set to `count`,
/// in a file.
fn with_control_plane_count(spec: &str, count: u32) -> tempfile::NamedTempFile {
    let mut lines: Vec<String> = spec.lines().map(str::to_string).collect();
    let block = lines
        .iter()
        .position(|line| line.trim() == "controlPlane:")
        .expect("spec.controlPlane");
    let at = block
        + 1
        + lines[block + 1..]
            .iter()
            .position(|line| line.trim_start().starts_with("count:"))
            .expect("spec.controlPlane.count");
    let indent = lines[at].len() - lines[at].trim_start().len();
    lines[at] = format!("{}count: {count}", " ".repeat(indent));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), lines.join("\n") + "\n").unwrap();
    file
}

/// `update cluster` changes the members of a running AWS control plane one at a time, while
/// a writer writes through the first member throughout. One member becomes three: the third
/// member's group is created only once the second is in etcd, and the run, killed after the
/// second member's instance booted, continues. Three become one again: each member leaves
/// etcd (the member that stays removes it) before its group is deleted, the last member
/// first. Every acknowledged write is there at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_are_added_and_removed_one_at_a_time() {
    let assets = tempfile::tempdir().unwrap();
    let spec_lines = common::host_assets::build(assets.path());
    let mut rolled = Rolled::create(MOVED, &MEMBER_HOSTS, 1, assets, &spec_lines, None).await;
    let first = MEMBER_HOSTS[0].0;
    let listed = |rolled: &Rolled| -> Vec<String> {
        members(&rolled.world.testbed, first).into_keys().collect()
    };
    assert_eq!(listed(&rolled), ["eu-west-1a"]);

    // One member becomes three. The plan names the steps and changes nothing.
    let spec = rolled.ok(&["get", "cluster", MOVED, "-o", "yaml"]);
    let three = with_control_plane_count(&spec, 3);
    let three_path = three.path().to_str().unwrap();
    let plan = rolled.ok(&["update", "cluster", MOVED, "-f", three_path]);
    for step in [
        "add member eu-west-1b",
        "add member eu-west-1c",
        "apply the new spec",
    ] {
        assert!(plan.contains(step), "{plan}");
    }
    assert_eq!(member_groups(&rolled.autoscaling, MOVED).await.len(), 1);

    let run = rolled
        .run_killed_once(
            &["update", "cluster", MOVED, "-f", three_path, "--yes"],
            1,
            async |rolled, added| {
                // A member's group appears only once the one added before it is in etcd.
                if let Some(before) = added.last() {
                    let listed = listed(rolled);
                    assert!(listed.contains(before), "{before} not in etcd: {listed:?}");
                }
            },
        )
        .await;
    let log = format!("{}\n--- rerun:\n{}", run.first, run.rerun);
    eprintln!("--- one to three:\n{log}");
    assert!(run.status.success(), "{log}");
    assert_eq!(run.replaced, ["eu-west-1b", "eu-west-1c"], "{log}");
    assert!(
        run.first.contains("[1/3] add member eu-west-1b")
            && run.rerun.contains("Continuing the membership change")
            && run.rerun.contains("[2/3] add member eu-west-1c"),
        "{log}"
    );
    assert_eq!(listed(&rolled), ["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
    eventually("the three members healthy", || {
        healthy_everywhere(&rolled.world.testbed, first)
    });
    let stored = rolled.ok(&["get", "cluster", MOVED, "-o", "yaml"]);
    assert!(stored.contains("count: 3"), "{stored}");

    // Three become one. When a member's group is deleted (its instance with it), the member
    // must be out of etcd already; its host powers off then.
    let hosts_by_member: BTreeMap<String, String> = [
        ("eu-west-1b", MEMBER_HOSTS[1].0),
        ("eu-west-1c", MEMBER_HOSTS[2].0),
    ]
    .into_iter()
    .map(|(member, host)| (member.to_string(), host.to_string()))
    .collect();
    let deleted: Shared<Vec<(String, Vec<String>)>> = Shared::default();
    let (running, seen) = (rolled.running.clone(), deleted.clone());
    rolled
        .s3
        .before_forwarding(std::sync::Arc::new(move |action, body| {
            if action != "DeleteAutoScalingGroup" {
                return;
            }
            let Some(member) = body
                .split('&')
                .find_map(|pair| pair.strip_prefix("AutoScalingGroupName="))
                .and_then(|name| name.strip_prefix("control-plane-"))
                .and_then(|name| name.strip_suffix(&format!(".{MOVED}")))
            else {
                return;
            };
            let listed: Vec<String> = members(&Testbed::open(), first).into_keys().collect();
            seen.lock().unwrap().push((member.to_string(), listed));
            if let Some(host) = hosts_by_member.get(member) {
                Testbed::open().stop(host);
                running.lock().unwrap().retain(|other| other != host);
            }
        }));
    let one = with_control_plane_count(&stored, 1);
    let output = rolled
        .rafter(&[
            "update",
            "cluster",
            MOVED,
            "-f",
            one.path().to_str().unwrap(),
            "--yes",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("--- three to one:\n{log}");
    assert!(output.status.success(), "{log}");
    let removed_c = log.find("[1/3] remove member eu-west-1c").expect(&log);
    let removed_b = log.find("[2/3] remove member eu-west-1b").expect(&log);
    assert!(removed_c < removed_b, "{log}");
    let deleted = deleted.lock().unwrap().clone();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    for (member, listed) in &deleted {
        assert_eq!(listed, &["eu-west-1a"], "etcd when {member}'s group went");
    }
    assert_eq!(listed(&rolled), ["eu-west-1a"]);
    // What the store kept for the removed members is gone (their certificates' keys too);
    // the member that stays keeps its own.
    for (member, gone) in [
        ("eu-west-1b", true),
        ("eu-west-1c", true),
        ("eu-west-1a", false),
    ] {
        for key in layout::member_objects(MOVED, member).keys {
            let kept = rolled.world.store.read(&key).await.unwrap().is_some();
            assert_eq!(kept, !gone, "{key}");
        }
    }
    assert_eq!(
        member_groups(&rolled.autoscaling, MOVED)
            .await
            .into_keys()
            .collect::<Vec<_>>(),
        ["eu-west-1a"]
    );

    // Every acknowledged write is on the member that stayed.
    rolled
        .stop_writer
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let acknowledged = rolled.writer.take().unwrap().join().unwrap();
    assert!(acknowledged.len() >= 20, "{acknowledged:?}");
    let stored = rolled
        .world
        .testbed
        .ssh_ok(first, &format!("{ETCDCTL} get /roll/ --prefix --keys-only"));
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|i| !stored.contains(&format!("/roll/{i}\n")))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
}

/// The worker group's state that must not change while an upgrade's control-plane members
/// are replaced: its bundle, and the launch template version its group launches.
#[derive(Debug, Clone, PartialEq)]
struct WorkersAt {
    bundle: Vec<u8>,
    version: Option<String>,
    /// Each in-service worker's launch template version.
    instances: Vec<Option<String>>,
}

async fn workers_at(rolled: &Rolled) -> WorkersAt {
    let bundle = rolled
        .world
        .store
        .read(&layout::BundleOwner::NodeGroup("workers").key(rolled.name))
        .await
        .unwrap()
        .expect("the workers' bundle is published");
    let group = format!("nodes-workers.{}", rolled.name);
    let described = rolled
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .unwrap();
    let group = &described.auto_scaling_groups()[0];
    let template = group.launch_template().unwrap();
    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    let latest = ec2
        .describe_launch_templates()
        .launch_template_ids(template.launch_template_id().unwrap())
        .send()
        .await
        .unwrap()
        .launch_templates()[0]
        .latest_version_number()
        .map(|number| number.to_string());
    WorkersAt {
        bundle,
        version: latest,
        instances: group
            .instances()
            .iter()
            .map(|instance| {
                instance
                    .launch_template()
                    .and_then(|template| template.version())
                    .map(str::to_string)
            })
            .collect(),
    }
}

/// `rafter upgrade cluster` on AWS, Kubernetes 1.34.2 to 1.35.0 (stand-in kubelets that
/// differ per version): the members are replaced one at a time in the spec's order, each
/// coming back as the same member with its data and the new kubelet, a writer writing
/// throughout; the run is killed while the second member comes back, and resumes. Until
/// every member is done, the workers' bundle and launch template stay as they were, and a
/// worker the group launches meanwhile (scaled up after the first member) gets the old
/// version; then the node groups move to the new version and the upgrade replaces their
/// four workers two at a time (replacements in service before the old ones go), the new
/// spec is stored, a rolling update has only the bastion left, and a second upgrade finds
/// nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrade_replaces_members_one_at_a_time_and_holds_the_workers_back() {
    use common::host_assets::{EtcdRelease, build_release};
    let assets = tempfile::tempdir().unwrap();
    let from = build_release(assets.path(), EtcdRelease::Distro, FROM_KUBERNETES);
    let to = build_release(assets.path(), EtcdRelease::Distro, TO_KUBERNETES);
    let target_lines = format!("  kubernetesVersion: {TO_KUBERNETES}\n{to}");
    // The target as rafter will render it (for the hosts' asset caches).
    let target_assets = tempfile::tempdir().unwrap();
    let target = cluster_with(UPGRADED, "unused", target_assets.path(), &target_lines);
    let mut rolled = Rolled::create(
        UPGRADED,
        &UPGRADE_HOSTS,
        3,
        assets,
        &format!("  kubernetesVersion: {FROM_KUBERNETES}\n{from}"),
        Some(target),
    )
    .await;
    let before = members(&rolled.world.testbed, UPGRADE_HOSTS[0].0);
    assert_eq!(before.len(), 3, "{before:?}");
    let kubelet = rolled
        .world
        .testbed
        .ssh_ok(UPGRADE_HOSTS[0].0, "cat /usr/local/bin/kubelet");
    assert!(kubelet.contains(FROM_KUBERNETES), "{kubelet}");
    let workers_before = workers_at(&rolled).await;
    assert_eq!(workers_before.instances.len(), 3, "{workers_before:?}");
    let group = format!("nodes-workers.{UPGRADED}");
    let autoscaling = rolled.autoscaling.clone();
    let worker_ids = || async {
        autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&group)
            .send()
            .await
            .unwrap()
            .auto_scaling_groups()[0]
            .instances()
            .iter()
            .filter_map(|instance| instance.instance_id().map(str::to_string))
            .collect::<Vec<String>>()
    };
    let workers_old = worker_ids().await;

    // The target: the stored spec with the new version and its assets. `update` refuses
    // the version change; the upgrade's plan names every step, and changes nothing.
    let spec = rolled.ok(&["get", "cluster", UPGRADED, "-o", "yaml"]);
    let (stored, _) = spec.split_once("\n  assets:\n").unwrap();
    let edited = stored.replacen(
        &format!("kubernetesVersion: \"{FROM_KUBERNETES}\""),
        &format!("kubernetesVersion: \"{TO_KUBERNETES}\""),
        1,
    );
    assert_ne!(edited, stored);
    let target_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(target_file.path(), format!("{edited}\n{to}")).unwrap();
    let target_file = target_file.path();
    let refused = rolled
        .rafter(&[
            "update",
            "cluster",
            UPGRADED,
            "-f",
            target_file.to_str().unwrap(),
            "--yes",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && said.contains("`update cluster` does not change versions")
            && said.contains("rafter upgrade cluster"),
        "{said}"
    );
    let plan = rolled.ok(&[
        "upgrade",
        "cluster",
        UPGRADED,
        "-f",
        target_file.to_str().unwrap(),
        "--max-surge",
        "2",
        "--no-drain",
    ]);
    for expected in [
        "1. member eu-west-1a",
        "2. member eu-west-1b",
        "3. member eu-west-1c",
        "4. node groups",
        "5. store the new spec",
        "Until every member is done, the node groups keep the old versions",
        "replaced 2 at a time (--max-surge)",
        "NOT drained (--no-drain)",
        "every member reports its etcd healthy",
    ] {
        assert!(plan.contains(expected), "{expected}: {plan}");
    }
    assert_eq!(workers_at(&rolled).await, workers_before);

    // The upgrade runs, killed once the second member's replacement booted; before each
    // replacement boots, the workers are as they were, and after the first, the worker group
    // scales up: its new instance gets the old launch template version.
    let scaled = std::sync::atomic::AtomicBool::new(false);
    let run = rolled
        .run_killed_once(
            // The emulator runs no API server to drain through: --no-drain.
            &[
                "upgrade",
                "cluster",
                UPGRADED,
                "-f",
                target_file.to_str().unwrap(),
                "--yes",
                "--max-surge",
                "2",
                "--no-drain",
            ],
            2,
            async |rolled, replaced| {
                let now = workers_at(rolled).await;
                assert_eq!(
                    (&now.bundle, &now.version),
                    (&workers_before.bundle, &workers_before.version),
                    "the workers' bundle and launch template while members {replaced:?} are done"
                );
                assert!(
                    now.instances
                        .iter()
                        .all(|version| *version == workers_before.version),
                    "{now:?}"
                );
                if !replaced.is_empty() && !scaled.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    rolled
                        .autoscaling
                        .set_desired_capacity()
                        .auto_scaling_group_name(format!("nodes-workers.{UPGRADED}"))
                        .desired_capacity(4)
                        .send()
                        .await
                        .unwrap();
                }
            },
        )
        .await;
    let log = format!("{}\n--- rerun:\n{}", run.first, run.rerun);
    eprintln!("--- the run:\n{log}");
    assert!(run.status.success(), "{log}");
    assert!(
        run.first.contains("[1/5] member eu-west-1a")
            && run.rerun.contains("Continuing the upgrade")
            && !run.rerun.contains("[1/5]")
            && run.rerun.contains("[2/5] member eu-west-1b")
            && run.rerun.contains("[5/5] store the new spec"),
        "{log}"
    );
    assert_eq!(
        run.replaced,
        ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
        "{log}"
    );
    assert!(scaled.load(std::sync::atomic::Ordering::SeqCst));
    rolled.assert_nothing_lost(&before);
    for host in rolled.running.lock().unwrap().iter() {
        let kubelet = rolled
            .world
            .testbed
            .ssh_ok(host, "cat /usr/local/bin/kubelet");
        assert!(kubelet.contains(TO_KUBERNETES), "{host}: {kubelet}");
    }

    // Then the node groups: a new bundle and launch template version, and the four
    // workers on the old one (the three from before and the one scaled up meanwhile)
    // replaced two at a time; the new spec.
    let workers_after = workers_at(&rolled).await;
    assert_ne!(workers_after.bundle, workers_before.bundle);
    assert_ne!(workers_after.version, workers_before.version);
    assert_eq!(workers_after.instances.len(), 4, "{workers_after:?}");
    assert!(
        workers_after
            .instances
            .iter()
            .all(|version| *version == workers_after.version),
        "{workers_after:?}"
    );
    assert!(
        run.rerun.contains("[4/5] node groups")
            && run.rerun.matches(&format!(" in {group}\n")).count() == 2
            && run.rerun.contains(
                "their instances on the old ones replaced in 2 batch(es) (not drained: --no-drain)"
            ),
        "{log}"
    );
    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    let described = ec2
        .describe_instances()
        .set_instance_ids(Some(workers_old.clone()))
        .send()
        .await
        .unwrap();
    for instance in described
        .reservations()
        .iter()
        .flat_map(|reservation| reservation.instances())
    {
        let state = instance.state().and_then(|state| state.name());
        assert!(
            matches!(
                state,
                Some(
                    aws_sdk_ec2::types::InstanceStateName::Terminated
                        | aws_sdk_ec2::types::InstanceStateName::ShuttingDown
                )
            ),
            "{:?}: {state:?}",
            instance.instance_id()
        );
    }
    assert!(
        worker_ids()
            .await
            .iter()
            .all(|id| !workers_old.contains(id))
    );
    let spec = rolled.ok(&["get", "cluster", UPGRADED, "-o", "yaml"]);
    assert!(
        spec.contains(&format!("kubernetesVersion: \"{TO_KUBERNETES}\"")),
        "{spec}"
    );
    // Each member's instance runs the bundle published for it (its reports say which), and
    // the workers were rolled by the upgrade: a rolling update replaces only the bastion.
    let rolling = rolled.ok(&["rolling-update", "cluster", UPGRADED, "--no-drain"]);
    assert!(
        !rolling.contains("replace member")
            && !rolling.contains(&format!(" in {group}"))
            && rolling.contains(&format!("bastion.{UPGRADED}")),
        "{rolling}"
    );
    let output = rolled
        .rafter(&["rolling-update", "cluster", UPGRADED, "--yes", "--no-drain"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("1 instance(s) replaced"), "{said}");
    let rolling = rolled.ok(&["rolling-update", "cluster", UPGRADED]);
    assert!(rolling.contains("Nothing to replace"), "{rolling}");
    // Each member's leaf certificates, kept in the state store and as its instance reports
    // them.
    let certificates = rolled.ok(&["get", "certificates", UPGRADED]);
    for member in ["eu-west-1a", "eu-west-1b", "eu-west-1c"] {
        let row = certificates
            .lines()
            .find(|line| line.starts_with(&format!("{member} ")))
            .unwrap_or_else(|| panic!("no {member} in\n{certificates}"));
        assert!(
            (row.contains(" 364d ") || row.contains(" 365d ")) && row.contains(" (i-"),
            "{row}"
        );
    }
    let again = rolled.ok(&[
        "upgrade",
        "cluster",
        UPGRADED,
        "--kubernetes-version",
        TO_KUBERNETES,
    ]);
    assert!(again.contains("nothing to upgrade"), "{again}");
}

/// The rolling update's gates against the emulator alone, with the members' reports written
/// by the test: a member's instance is not touched while another member reports unhealthy; a
/// replaced member that never reports from its new instance stops the update at the
/// deadline, naming it and every member's last report, with nothing else replaced; and a
/// rerun does not terminate again but waits for the same member, which passes once it
/// reports from its new instance in consecutive reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_gates_refuse_stop_at_the_deadline_and_resume() {
    use rafter::rolling::execute::{Gate, Roll, RollError};
    use rafter::validate::member_reports::MemberReport;

    let cluster = "gate.example.com";
    let config = common::moto::sdk_config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let client = common::moto::s3_client();
    let bucket = common::moto::new_bucket(&client, "gate").await;
    let store = S3Store::new(client, &bucket, PREFIX);
    let image = ec2.describe_images().send().await.unwrap().images()[0]
        .image_id()
        .unwrap()
        .to_string();
    let members: Vec<String> = INSTANCES.iter().map(|(_, _, m)| m.to_string()).collect();
    let mut instances = BTreeMap::new();
    for member in &members {
        let group = format!("control-plane-{member}.{cluster}");
        let template = ec2
            .create_launch_template()
            .launch_template_name(&group)
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(&image)
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Medium)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(&group)
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(
                        template
                            .launch_template()
                            .unwrap()
                            .launch_template_id()
                            .unwrap(),
                    )
                    .version("$Latest")
                    .build(),
            )
            .availability_zones(member)
            .min_size(1)
            .max_size(1)
            .desired_capacity(1)
            .send()
            .await
            .unwrap();
        instances.insert(
            member.clone(),
            (group.clone(), in_group(&autoscaling, &group).await),
        );
    }
    let report =
        |member: &str, instance: &str, healthy: bool, at: time::OffsetDateTime| MemberReport {
            member: member.to_string(),
            host: format!("ip-{member}"),
            instance: instance.to_string(),
            healthy,
            member_id: format!("id-{member}"),
            cluster_id: "c1".into(),
            leader: "id-eu-west-1a".into(),
            raft_index: 100,
            revision: 90,
            version: "3.5.21".into(),
            members: members.clone(),
            alarms: String::new(),
            bundle: String::new(),
            certificates_expire: String::new(),
            restored: String::new(),
            restore_problem: String::new(),
            at: at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        };
    let put = |report: MemberReport| {
        let store = &store;
        async move {
            store
                .write(
                    &layout::etcd_status_key(cluster, &report.member),
                    &serde_json::to_vec(&report).unwrap(),
                )
                .await
                .unwrap();
        }
    };
    let now = time::OffsetDateTime::now_utc;
    for member in &members {
        put(report(member, &instances[member].1, true, now())).await;
    }
    let provisioner = rafter::aws::AwsProvisioner::new(&config, cluster);
    let roll = Roll {
        context: &provisioner.context,
        store: &store,
        cluster,
        members: members.clone(),
        gate: Gate {
            passes: 2,
            poll: Duration::from_millis(200),
            within: Duration::from_secs(4),
        },
    };
    // An instance whose member reports running another bundle than the one published (new
    // certificates, a changed spec) is out of date; once it reports the published one, not.
    let digest = |bundle: &[u8]| {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(bundle))
    };
    let a = members[0].as_str();
    store
        .write(
            &layout::BundleOwner::ControlPlaneMember(a).key(cluster),
            b"bundle v2",
        )
        .await
        .unwrap();
    let groups: Vec<(String, Option<String>)> = members
        .iter()
        .map(|member| (instances[member].0.clone(), Some(member.clone())))
        .collect();
    let planned = async || {
        let states = rafter::rolling::execute::group_states(&provisioner.context, &groups)
            .await
            .unwrap();
        rafter::rolling::plan(&roll.with_bundles(states).await.unwrap(), &[], false)
    };
    let mut stale = report(a, &instances[a].1, true, now());
    stale.bundle = digest(b"bundle v1");
    put(stale.clone()).await;
    let replacements = planned().await;
    assert_eq!(replacements.len(), 1, "{replacements:?}");
    assert_eq!(replacements[0].instance, instances[a].1);
    assert!(
        replacements[0]
            .reason
            .starts_with("node bundle changed since it booted ("),
        "{replacements:?}"
    );
    stale.bundle = digest(b"bundle v2");
    put(stale).await;
    assert_eq!(planned().await, []);

    let step = |member: &str| rafter::rolling::Replacement {
        group: instances[member].0.clone(),
        member: Some(member.to_string()),
        instance: instances[member].1.clone(),
        reason: "forced".into(),
    };
    let (b, c) = (members[1].as_str(), members[2].as_str());

    // Member c reports unhealthy: b is not touched.
    put(report(c, &instances[c].1, false, now())).await;
    let refused = roll.replace(&step(b)).await.unwrap_err();
    assert!(
        matches!(&refused, RollError::Unhealthy { member, findings }
            if member == b && findings.contains(&format!("member {c} (on ip-{c}): its etcd is not healthy"))),
        "{refused}"
    );
    assert_eq!(
        in_group(&autoscaling, &instances[b].0).await,
        instances[b].1
    );

    // Healthy again: b's instance goes, its replacement never reports; the deadline names
    // what is late and every member's last report. Nothing else was replaced.
    put(report(c, &instances[c].1, true, now())).await;
    let late = roll.replace(&step(b)).await.unwrap_err();
    let new_instance = in_group(&autoscaling, &instances[b].0).await;
    assert_ne!(new_instance, instances[b].1);
    let message = late.to_string();
    assert!(
        message.contains(&format!(
            "member {b} did not report healthy from instance {new_instance} 2 times in a row within 4 s"
        )),
        "{message}"
    );
    for member in &members {
        assert!(
            message.contains(&format!("member {member}: healthy on ip-{member}")),
            "{message}"
        );
    }
    for member in [&members[0], &members[2]] {
        assert_eq!(
            in_group(&autoscaling, &instances[member].0).await,
            instances[member].1
        );
    }

    // The rerun: the old instance is gone, so nothing is terminated; b comes back once it
    // reports from its new instance in two consecutive reports.
    let reporter = {
        let (store, new_instance, report) = (&store, new_instance.clone(), &report);
        async move {
            for _ in 0..2 {
                tokio::time::sleep(Duration::from_millis(700)).await;
                let fresh = report(b, &new_instance, true, time::OffsetDateTime::now_utc());
                store
                    .write(
                        &layout::etcd_status_key(cluster, b),
                        &serde_json::to_vec(&fresh).unwrap(),
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let again = step(b);
    let (back, ()) = tokio::join!(roll.replace(&again), reporter);
    let back = back.unwrap();
    assert!(
        back.contains(&format!("member {b} is back on instance {new_instance}")),
        "{back}"
    );
    assert_eq!(in_group(&autoscaling, &instances[b].0).await, new_instance);
}

/// The one instance in service in `group`.
async fn in_group(autoscaling: &aws_sdk_autoscaling::Client, group: &str) -> String {
    let described = autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .unwrap();
    let instances: Vec<String> = described.auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter(|instance| {
            instance.lifecycle_state()
                == Some(&aws_sdk_autoscaling::types::LifecycleState::InService)
        })
        .filter_map(|instance| instance.instance_id().map(str::to_string))
        .collect();
    assert_eq!(instances.len(), 1, "{instances:?}");
    instances[0].clone()
}

/// The cluster restored from a backup, and the hosts playing its members' instances.
const RESTORED: &str = "restore.example.com";
const RESTORE_HOSTS: [(&str, &str); 3] = [
    ("rst-1", "10.250.0.121"),
    ("rst-2", "10.250.0.122"),
    ("rst-3", "10.250.0.123"),
];

/// Every `/restore/` key on `host`'s member (a serializable read: the member's own data).
fn restore_keys(testbed: &Testbed, host: &str) -> Vec<String> {
    testbed
        .ssh_ok(
            host,
            &format!("{ETCDCTL} get /restore/ --prefix --keys-only --consistency=s"),
        )
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

/// `rafter restore etcd` on AWS, the worst case: every member of a cluster made by `create
/// cluster --yes` loses its data (one while its instance boots again, waiting to join). rafter
/// cannot reach the members, so it stages the restore in the state store and each member's
/// timer carries it out (the booting one's wait does). A member reports a restore it
/// cannot do (a staged snapshot that is not the backup's) instead of doing it; the real one
/// is killed while it waits for the members and finished by running it again. Afterwards
/// every key from before the backup is on every member and none from after, the members are
/// new (one new cluster) with the spec's names and agree on their data, the API server's
/// manifest was moved aside before etcd stopped and is back, the cluster takes writes, and
/// nothing secret is left in the store or on the instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restore_brings_back_a_control_plane_whose_every_member_lost_its_data() {
    let assets = tempfile::tempdir().unwrap();
    let spec_lines = common::host_assets::build(assets.path());
    let mut rolled = Rolled::create(RESTORED, &RESTORE_HOSTS, 3, assets, &spec_lines, None).await;
    rolled
        .stop_writer
        .store(true, std::sync::atomic::Ordering::SeqCst);
    rolled.writer.take().unwrap().join().unwrap();
    let testbed = Testbed::open();
    let hosts: Vec<&str> = RESTORE_HOSTS.iter().map(|(host, _)| *host).collect();
    let put = |prefix: &str, count: usize| {
        testbed.ssh_ok(
            hosts[0],
            &format!(
                "for i in $(seq 1 {count}); do {ETCDCTL} put /restore/{prefix}/$i v$i >/dev/null; done"
            ),
        );
    };
    put("before", 20);
    // `backup etcd` asks the members through the state store; the leading member's timer
    // takes it, and its record names the request (a scheduled one taken meanwhile does not).
    let taken = rolled.ok(&["backup", "etcd", RESTORED]);
    let catalog = rafter::backup::catalog::list(&rolled.world.store, RESTORED)
        .await
        .unwrap();
    let backup = catalog
        .backups
        .iter()
        .find(|backup| backup.id == taken.trim())
        .unwrap_or_else(|| panic!("{taken} not in {catalog:?}"))
        .clone();
    assert!(backup.request.is_some(), "{backup:?}");
    assert!(
        backup.facts.keys.is_some_and(|keys| keys >= 20),
        "{backup:?}"
    );
    assert!(
        rolled
            .world
            .store
            .read(&layout::etcd_backup_request_key(RESTORED))
            .await
            .unwrap()
            .is_none(),
        "the request is withdrawn"
    );
    let verify = rolled
        .rafter(&["backup", "etcd", RESTORED, "--verify", &backup.id])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(5), "{verify:?}");
    put("after", 10);
    let before = members(&testbed, hosts[0]);
    assert_eq!(before.len(), 3, "{before:?}");

    // Every member loses its data. The third member's instance boots again meanwhile (its
    // bundle runs, as at every boot) and waits to join: no member answers and the cluster
    // formed long ago. Its timer is off, so only the boot's own wait can find the restore.
    for host in &hosts {
        testbed.ssh_ok(host, "systemctl stop etcd && rm -rf /var/lib/etcd/member");
    }
    let booting = hosts[2];
    testbed.ssh_ok(booting, "systemctl stop rafter-etcd-peers.timer");
    let rebooted = std::thread::spawn(move || {
        let output = Testbed::open().ssh(booting, "/usr/local/lib/rafter/bootstrap.sh etcd");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    });

    // A request whose snapshot is not what it claims: each member refuses it and says so in
    // its report (the problem is that restore's alone).
    let store = &rolled.world.store;
    let bogus_id = "19990101T000000Z";
    store
        .write(
            &layout::etcd_restore_snapshot_key(RESTORED, bogus_id),
            b"not a snapshot",
        )
        .await
        .unwrap();
    let members_of_spec = rafter::bootstrap::aws_control_plane_members(&rolled.world.cluster);
    let mut bogus =
        rafter::rolling::restore::Request::new(RESTORED, bogus_id, &backup, &members_of_spec);
    bogus.sha256 = "0".repeat(64);
    store
        .write(
            &layout::etcd_restore_request_key(RESTORED),
            bogus.render().as_bytes(),
        )
        .await
        .unwrap();
    let names: Vec<String> = members_of_spec.iter().map(|m| m.name.clone()).collect();
    eventually_async("every member refuses the damaged snapshot", || async {
        let reports = rafter::validate::member_reports::read(store, RESTORED, &names)
            .await
            .unwrap();
        let seen = rafter::rolling::restore::progress(bogus_id, &reports);
        match seen.failed {
            Some((_, problem)) if problem.contains("not the backup's") => Ok(()),
            other => Err(format!("{other:?} {reports:?}")),
        }
    })
    .await;
    for host in &hosts {
        let left = testbed.ssh(host, "ls /var/lib/etcd/.rafter/*.db");
        assert!(!left.status.success(), "{host} kept a snapshot");
    }

    // The plan, then the restore: killed while it waits for the members, and run again.
    let plan = rolled.ok(&["restore", "etcd", RESTORED, "--from", &backup.id]);
    assert!(plan.contains("every member (its timer"), "{plan}");
    assert!(
        store
            .read(&layout::etcd_restore_request_key(RESTORED))
            .await
            .unwrap()
            .is_some_and(|request| String::from_utf8_lossy(&request).contains(bogus_id)),
        "the plan changes nothing"
    );
    let restore = [
        "restore",
        "etcd",
        RESTORED,
        "--from",
        &backup.id,
        "--yes",
        "--gate-timeout",
        "5m",
    ];
    let log_path = rolled.logs.path().join("restore-1.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut first = rolled
        .rafter(&restore)
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    eventually("the first run waits for the members", || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        match log.contains("[2/4]") {
            true => Ok(()),
            false => Err(log),
        }
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let rerun = rolled.rafter(&restore).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&rerun.stdout),
        String::from_utf8_lossy(&rerun.stderr)
    );
    eprintln!(
        "--- restore, first run:\n{}\n--- rerun:\n{said}",
        std::fs::read_to_string(&log_path).unwrap()
    );
    assert!(rerun.status.success(), "{said}");
    assert!(
        said.contains("Continuing the restore")
            && !said.contains("[1/4]")
            && said.contains("[4/4]"),
        "{said}"
    );

    // The booting member restored from the request instead of waiting, and its boot went on.
    let (booted, log) = rebooted.join().unwrap();
    assert!(
        booted && log.contains("restored member eu-west-1c from backup"),
        "{log}"
    );

    // Every key from before the backup on every member, none from after.
    let wanted: Vec<String> = (1..=20).map(|i| format!("/restore/before/{i}")).collect();
    for host in &hosts {
        let mut keys = restore_keys(&testbed, host);
        keys.sort();
        let mut expected = wanted.clone();
        expected.sort();
        assert_eq!(keys, expected, "{host}");
    }
    // One new cluster of the spec's members, agreeing on their data.
    let after = members(&testbed, hosts[0]);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (member, (id, _)) in &after {
        assert_ne!(&before[member].0, id, "member {member} is new");
    }
    let hashes = testbed.ssh_ok(
        hosts[0],
        &format!("{ETCDCTL} endpoint hashkv --cluster -w json"),
    );
    let hashes: Vec<serde_json::Value> = serde_json::from_str(&hashes).unwrap();
    let distinct: std::collections::BTreeSet<String> = hashes
        .iter()
        .map(|hash| hash["HashKV"]["hash"].to_string())
        .collect();
    assert_eq!((hashes.len(), distinct.len()), (3, 1), "{hashes:?}");
    // Each running member stopped its API server before etcd, and brought it back once
    // healthy; the booting one serves too.
    for host in &hosts {
        let journal = testbed.ssh_ok(host, "journalctl -u rafter-etcd-peers --no-pager");
        if *host == booting {
            assert!(
                journal.contains("member eu-west-1c serves the restored cluster"),
                "{host}: {journal}"
            );
        } else {
            let moved = journal.find("control-plane manifests moved to");
            let restored = journal.find("restored member");
            let back = journal.find("control-plane manifests back");
            assert!(
                moved.is_some() && moved < restored && restored < back,
                "{host}: {journal}"
            );
        }
        testbed.ssh_ok(
            host,
            "test -f /etc/kubernetes/manifests/kube-apiserver.yaml",
        );
        testbed.ssh_ok(host, "ls -d /var/lib/etcd/.rafter/before-restore-*");
        let left = testbed.ssh(host, "ls /var/lib/etcd/.rafter/*.db");
        assert!(!left.status.success(), "{host} kept a snapshot");
    }
    // Nothing staged is left (the refused request's snapshot neither): each held every Secret.
    let staged_prefix = layout::etcd_restore_prefix(RESTORED);
    let staged: Vec<String> = store
        .list(&staged_prefix)
        .await
        .unwrap()
        .into_iter()
        .filter(|key| key.starts_with(&format!("{staged_prefix}/")))
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
    // The cluster takes writes, and `validate` finds its etcd healthy (the rest of the
    // cluster, which no test-bed host plays here, it does not).
    put("later", 1);
    let validated = rolled
        .rafter(&["validate", "cluster", RESTORED, "-o", "json"])
        .output()
        .unwrap();
    let judged: serde_json::Value = serde_json::from_slice(&validated.stdout).unwrap();
    let passed = judged["passed"].to_string();
    assert!(passed.contains("member(s) report healthy"), "{judged:#}");
    let etcd_findings: Vec<&serde_json::Value> = judged["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| finding["area"] == "etcd")
        .collect();
    assert!(etcd_findings.is_empty(), "{judged:#}");
}
