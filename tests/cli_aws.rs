//! `--yes` end to end: the `rafter` binary applying to the AWS API emulator with its state in
//! the emulator's S3. Create, a no-op update, a refused concurrent run, concurrent runs racing,
//! runs killed with SIGKILL and rerun, delete, and delete after the state lost track.

mod common;

use rafter::state::ForceUnlock;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use common::inventory::tagged_leftovers;

struct Cli {
    state: String,
    bucket: String,
    prefix: String,
    key_file: tempfile::NamedTempFile,
}

impl Cli {
    async fn new(label: &str) -> Self {
        let bucket = common::moto::new_bucket(&common::moto::s3_client(), label).await;
        let key_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key_file.path(), common::EXAMPLE_PUBLIC_KEY).unwrap();
        Self {
            state: format!("s3://{bucket}/state"),
            bucket,
            prefix: "state".into(),
            key_file,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rafter"));
        command
            .args(args)
            .env("RAFTER_STATE", &self.state)
            .envs(common::moto::process_env())
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `create cluster` of the `dev-aws` profile. No instance boots on the emulator, so no
    /// member ever reports its etcd: `--yes` does not wait for it (the gate is tested where
    /// test-bed hosts play the instances, and refusing here).
    fn create_args<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        vec![
            "create",
            "cluster",
            "--name",
            name,
            "--profile",
            "dev-aws",
            "--zones",
            "eu-west-1a",
            "--ssh-public-key",
            self.key_file.path().to_str().unwrap(),
            "--etcd-timeout",
            "0s",
        ]
    }

    /// `create cluster` of the `ha-aws` profile in three zones, its DNS names in the
    /// emulator's `example.com` (see [`common::moto::public_zone`]).
    fn ha_create_args<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        vec![
            "create",
            "cluster",
            "--name",
            name,
            "--profile",
            "ha-aws",
            "--zones",
            "eu-west-1a,eu-west-1b,eu-west-1c",
            "--dns-zone",
            "example.com",
            "--ssh-public-key",
            self.key_file.path().to_str().unwrap(),
            "--etcd-timeout",
            "0s",
        ]
    }

    async fn put_state_object(&self, name: &str, file: &str, data: &[u8]) {
        common::moto::s3_client()
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{}/{name}/{file}", self.prefix))
            .body(data.to_vec().into())
            .send()
            .await
            .unwrap();
    }

    /// `ha-aws` created in one `create --yes` (see [`Cli::ha_create_args`]).
    async fn create_ha(&self, name: &str) {
        common::moto::public_zone("example.com").await;
        let mut create = self.ha_create_args(name);
        create.push("--yes");
        let created = self.run(&create);
        assert!(created.status.success(), "{}", stderr(&created));
    }

    /// The cluster's `resources.json`, parsed.
    async fn record(&self, name: &str) -> serde_json::Value {
        let bytes = self.state_object(name, "resources.json").await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn state_object(&self, name: &str, file: &str) -> Option<Vec<u8>> {
        let object = common::moto::s3_client()
            .get_object()
            .bucket(&self.bucket)
            .key(format!("{}/{name}/{file}", self.prefix))
            .send()
            .await
            .ok()?;
        Some(object.body.collect().await.unwrap().to_vec())
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn owned_by(name: &str) -> Filter {
    Filter::builder()
        .name("tag:rafter.dev/cluster")
        .values(name)
        .build()
}

/// VPCs, subnets, security groups, launch templates and groups of the cluster, counted.
async fn inventory(name: &str) -> [usize; 5] {
    let config = common::moto::sdk_config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let vpcs = ec2
        .describe_vpcs()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    let subnets = ec2
        .describe_subnets()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    let groups = ec2
        .describe_security_groups()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    let templates = ec2
        .describe_launch_templates()
        .filters(owned_by(name))
        .send()
        .await
        .unwrap();
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let asgs = autoscaling
        .describe_auto_scaling_groups()
        .filters(
            aws_sdk_autoscaling::types::Filter::builder()
                .name("tag:rafter.dev/cluster")
                .values(name)
                .build(),
        )
        .send()
        .await
        .unwrap();
    [
        vpcs.vpcs().len(),
        subnets.subnets().len(),
        groups.security_groups().len(),
        templates.launch_templates().len(),
        asgs.auto_scaling_groups().len(),
    ]
}

#[tokio::test]
async fn create_update_lock_and_delete_through_the_binary() {
    let cli = Cli::new("yes").await;
    let name = "yes.example.com";
    let mut create = cli.create_args(name);
    create.push("--yes");
    let created = cli.run(&create);
    let log = stderr(&created);
    assert!(created.status.success(), "{log}");
    assert!(log.contains("+ aws_vpc.main created"), "{log}");
    assert!(log.contains("AWS API calls: autoscaling"), "{log}");
    let expected = inventory(name).await;
    assert_eq!(expected[0], 1);

    // Without a DNS zone, the kubeconfig points at the API load balancer's own name.
    let kubeconfig = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig.path().join("config");
    let exported = cli.run(&[
        "export",
        "kubeconfig",
        name,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        text.contains("server: https://api-yes-example-com"),
        "{text}"
    );
    assert!(text.contains(".elb."), "{text}");

    // Each group's bundle is where its user-data fetches it, naming the API load balancer.
    assert!(
        log.contains("Published 2 node bundle(s) for the instances' first boot (0 unchanged)")
            && log.contains("control-plane members form a new etcd cluster"),
        "{log}"
    );
    // A bundle's files, decoded: `put PATH MODE <<'RAFTER_FILE'`, base64 lines, `RAFTER_FILE`.
    let control_plane_bundle = |bundle: Vec<u8>| -> BTreeMap<String, String> {
        let text = String::from_utf8(bundle).unwrap();
        let mut files = BTreeMap::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let Some(path) = line
                .strip_prefix("put ")
                .and_then(|rest| rest.split(' ').next())
            else {
                continue;
            };
            let encoded: String = lines
                .by_ref()
                .take_while(|line| *line != "RAFTER_FILE")
                .collect();
            let decoded = aws_smithy_types::base64::decode(encoded).unwrap();
            files.insert(path.to_string(), String::from_utf8(decoded).unwrap());
        }
        files
    };
    let first_control_plane = control_plane_bundle(
        cli.state_object(name, "control-plane/eu-west-1a/bundle.sh")
            .await
            .expect("the control-plane member's bundle is published"),
    );
    let peers_script = "/usr/local/lib/rafter/etcd-peers.sh";
    assert!(
        first_control_plane["/etc/etcd/initial-cluster.env"]
            .contains("ETCD_INITIAL_CLUSTER_STATE=new")
            && first_control_plane[peers_script].contains("\nINITIAL_STATE=new\n"),
        "{first_control_plane:?}"
    );
    assert!(
        first_control_plane[peers_script].contains(&format!(
            "PEERS_URL=s3://{}/{}/{name}/etcd-peers\n",
            cli.bucket, cli.prefix
        )),
        "members publish their addresses in the cluster's state"
    );
    let bundle = cli
        .state_object(name, "node-groups/workers/bundle.sh")
        .await
        .expect("the node group's bundle is published");
    let bundle = String::from_utf8(bundle).unwrap();
    assert!(bundle.starts_with("#!/bin/bash"), "{bundle}");
    assert!(
        bundle.contains("put /etc/kubernetes/bootstrap-kubelet.conf 600"),
        "{bundle}"
    );

    // The record of resources is in S3, with a generation per write.
    let record = cli.record(name).await;
    let resources = record["resources"].as_array().unwrap().len();
    assert!(resources > 20, "{record}");
    assert!(record["generation"].as_u64().unwrap() >= resources as u64);

    // Nothing to do the second time: no AWS call at all, not even the image lookup (its
    // answer is recorded).
    let again = cli.run(&["update", "cluster", name, "--yes"]);
    let log = stderr(&again);
    assert!(again.status.success(), "{log}");
    assert!(log.contains("Done: nothing to do"), "{log}");
    assert!(
        log.contains("Published 0 node bundle(s) for the instances' first boot (2 unchanged)"),
        "bundles render the same bytes, so none is written again: {log}"
    );
    assert!(!log.contains("AWS API calls"), "{log}");

    // Once a majority of the members has published an address (right before starting etcd),
    // the cluster has formed: a member without data now joins it, never starts a new one.
    // Its certificates stay the same.
    cli.put_state_object(name, "etcd-peers/eu-west-1a", b"10.0.32.10\n")
        .await;
    // A bundle where the previous layout kept them, readable by every worker's role.
    let legacy = "nodes/control-plane-eu-west-1a/bundle.sh";
    cli.put_state_object(name, legacy, b"ca.key").await;
    let formed = cli.run(&["update", "cluster", name, "--yes"]);
    assert!(
        cli.state_object(name, legacy).await.is_none(),
        "the previous layout's bundles are removed when bundles are published"
    );
    let log = stderr(&formed);
    assert!(
        log.contains("Published 1 node bundle(s) for the instances' first boot (1 unchanged); control-plane members without data join the running etcd cluster"),
        "only the control plane's bundle changed: {log}"
    );
    let joining = control_plane_bundle(
        cli.state_object(name, "control-plane/eu-west-1a/bundle.sh")
            .await
            .unwrap(),
    );
    assert!(joining[peers_script].contains("\nINITIAL_STATE=existing\n"));
    let certificates = |files: &BTreeMap<String, String>| -> Vec<(String, String)> {
        files
            .iter()
            .filter(|(path, _)| path.ends_with(".crt") || path.ends_with(".key"))
            .map(|(path, content)| (path.clone(), content.clone()))
            .collect()
    };
    assert!(certificates(&joining).len() > 10);
    assert_eq!(certificates(&joining), certificates(&first_control_plane));

    // Members have booted: a spec that adds members to the running control plane is a
    // membership change, one member at a time; its plan names the steps, and it does not
    // start while the member has not reported its etcd (no instance runs here).
    let spec = cli.run(&["get", "cluster", name, "-o", "yaml"]);
    assert!(spec.status.success(), "{}", stderr(&spec));
    let spec = String::from_utf8(spec.stdout).unwrap();
    assert!(spec.contains("controlPlane:\n    count: 1\n"), "{spec}");
    let grown = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        grown.path(),
        spec.replace(
            "controlPlane:\n    count: 1\n",
            "controlPlane:\n    count: 3\n",
        ),
    )
    .unwrap();
    let grow = |yes: bool| {
        let file = grown.path().to_str().unwrap();
        let mut args = vec!["update", "cluster", name, "-f", file];
        if yes {
            args.push("--yes");
        }
        cli.run(&args)
    };
    let plan = grow(false);
    let text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        text.contains("Change the control-plane members of cluster yes.example.com: eu-west-1a → eu-west-1a, eu-west-1a-2, eu-west-1a-3.")
            && text.contains("1. add member eu-west-1a-2")
            && text.contains("2. add member eu-west-1a-3")
            && text.contains("3. apply the new spec"),
        "{text}"
    );
    for refused in [plan, grow(true)] {
        let log = stderr(&refused);
        assert_eq!(refused.status.code(), Some(1), "{log}");
        assert!(
            log.contains("member eu-west-1a: has not reported its etcd"),
            "{log}"
        );
    }
    assert_eq!(inventory(name).await, expected, "nothing changed");
    assert!(
        cli.state_object(name, "operations/update-cluster-members.json")
            .await
            .is_none(),
        "a refused change leaves no journal"
    );
    assert!(
        cli.state_object(name, "etcd-peers/_members")
            .await
            .is_none()
    );

    // A run holding the lock keeps a second one out, and says who holds it.
    let lock = {
        let store =
            rafter::state::S3Store::new(common::moto::s3_client(), &cli.bucket, &cli.prefix);
        rafter::state::ClusterLock::acquire(
            &store,
            name,
            "test holder",
            Duration::from_secs(600),
            &ForceUnlock::Never,
        )
        .await
        .unwrap()
        .record()
        .clone()
    };
    let refused = cli.run(&["update", "cluster", name, "--yes"]);
    assert_eq!(refused.status.code(), Some(6), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&lock.holder),
        "{}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("test holder"),
        "{}",
        stderr(&refused)
    );
    let refused = cli.run(&["update", "cluster", name, "--yes", "--force-unlock"]);
    assert_eq!(
        refused.status.code(),
        Some(6),
        "a live lock is never broken: {}",
        stderr(&refused)
    );
    common::moto::s3_client()
        .delete_object()
        .bucket(&cli.bucket)
        .key(format!("state/{name}/lock"))
        .send()
        .await
        .unwrap();

    // Delete: everything goes, then the state.
    let deleted = cli.run(&["delete", "cluster", name, "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_eq!(inventory(name).await, [0; 5]);
    assert!(cli.state_object(name, "config.yaml").await.is_none());
}

/// `create --yes` of `ha-aws` killed with SIGKILL at ten moments spread over an
/// uninterrupted create's apply (a new cluster each time, so every kill lands mid-create),
/// then the same command again: the rerun carries on with the stored spec, breaks the lock
/// the killed run left (its process is gone; no waiting out the lease, no hand-made unlock),
/// converges with exactly the inventory of the uninterrupted create, and a plan has nothing
/// to do. In one round the record is lost too, and the rerun adopts by tags.
#[tokio::test]
async fn a_create_killed_at_any_moment_converges_on_rerun_without_duplicates() {
    common::moto::public_zone("example.com").await;
    let cli = Cli::new("kill").await;
    let create = |name: &str| -> Vec<String> {
        let mut args: Vec<String> = cli
            .ha_create_args(name)
            .into_iter()
            .map(String::from)
            .collect();
        args.extend(["--yes", "--capacity-timeout", "0s"].map(String::from));
        args
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli.run(&args)
    };
    let check = |name: &str, expected: [usize; 5], when: &str| {
        let name = name.to_string();
        let when = when.to_string();
        let cli = &cli;
        async move {
            assert_eq!(inventory(&name).await, expected, "{when}");
            let plan = cli.run(&["update", "cluster", &name]);
            let text = String::from_utf8_lossy(&plan.stdout);
            assert!(
                text.contains("No changes"),
                "{when}: {text}{}",
                stderr(&plan)
            );
            let deleted = cli.run(&["delete", "cluster", &name, "--yes"]);
            assert!(deleted.status.success(), "{}", stderr(&deleted));
            assert_eq!(inventory(&name).await, [0; 5]);
        }
    };

    // Uninterrupted: how long the apply takes, and what it makes.
    let name = "kill-whole.example.com";
    let started = std::time::Instant::now();
    let whole = run(&create(name));
    let took = started.elapsed();
    assert!(whole.status.success(), "{}", stderr(&whole));
    let expected = inventory(name).await;
    assert_eq!(expected[0], 1);
    check(name, expected, "uninterrupted").await;

    let mut locks_left_behind = 0;
    for round in 1..=10u32 {
        let kill_after = took * round / 11;
        let name = format!("kill-{round}.example.com");
        let name = name.as_str();
        let args = create(name);
        let mut child = cli
            .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(kill_after).await;
        let _ = child.kill(); // SIGKILL: no cleanup, the lock stays behind
        let _ = child.wait();
        let when = format!("after a kill at {} ms", kill_after.as_millis());
        let left_behind = cli.state_object(name, "lock").await.is_some();
        if round == 6 {
            common::moto::s3_client()
                .delete_object()
                .bucket(&cli.bucket)
                .key(format!("state/{name}/resources.json"))
                .send()
                .await
                .unwrap();
        }
        let rerun = run(&args);
        let log = stderr(&rerun);
        assert!(rerun.status.success(), "{when}: {log}");
        if left_behind {
            locks_left_behind += 1;
            assert!(
                log.contains("that run is gone: no process with its id runs on this machine"),
                "{when}: {log}"
            );
        }
        check(name, expected, &when).await;
    }
    assert!(
        locks_left_behind >= 5,
        "only {locks_left_behind} kills landed while the lock was held: the test proves little"
    );
}

#[tokio::test]
async fn concurrent_applies_one_proceeds_the_others_are_refused_naming_the_holder() {
    let cli = Cli::new("race").await;
    let name = "race.example.com";
    let stored = cli.run(&cli.create_args(name));
    assert!(stored.status.success(), "{}", stderr(&stored));
    let runs: Vec<_> = (0..3)
        .map(|_| {
            cli.command(&["update", "cluster", name, "--yes"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = runs
        .into_iter()
        .map(|run| run.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outputs.iter().map(|output| output.status.code()).collect();
    let logs: Vec<String> = outputs.iter().map(stderr).collect();
    assert_eq!(
        codes.iter().filter(|code| **code == Some(0)).count(),
        1,
        "{codes:?} {logs:#?}"
    );
    assert_eq!(
        codes.iter().filter(|code| **code == Some(6)).count(),
        2,
        "{codes:?} {logs:#?}"
    );
    for log in logs.iter().filter(|log| !log.contains("Done:")) {
        assert!(
            log.contains("update cluster"),
            "the refusal names the operation: {log}"
        );
    }
    assert_eq!(inventory(name).await[0], 1);
    let deleted = cli.run(&["delete", "cluster", name, "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
}

#[tokio::test]
async fn delete_sweeps_by_tag_what_a_lost_state_file_no_longer_knows() {
    let cli = Cli::new("lost").await;
    let name = "lost.example.com";
    let mut create = cli.create_args(name);
    create.push("--yes");
    let created = cli.run(&create);
    assert!(created.status.success(), "{}", stderr(&created));
    common::moto::s3_client()
        .delete_object()
        .bucket(&cli.bucket)
        .key(format!("state/{name}/resources.json"))
        .send()
        .await
        .unwrap();

    let preview = cli.run(&["delete", "cluster", name]);
    let log = stderr(&preview);
    assert!(preview.status.success(), "{log}");
    assert!(log.contains("No cloud resources are recorded"), "{log}");
    assert!(
        log.contains("tagged rafter.dev/cluster=lost.example.com"),
        "{log}"
    );
    assert_eq!(inventory(name).await[0], 1, "a preview deletes nothing");

    let deleted = cli.run(&["delete", "cluster", name, "--yes"]);
    let log = stderr(&deleted);
    assert!(deleted.status.success(), "{log}");
    assert!(log.contains("Sweep: deleted"), "{log}");
    assert!(log.contains("aws_vpc vpc-"), "{log}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
    assert!(cli.state_object(name, "config.yaml").await.is_none());
}

/// An instance type a zone does not offer (the emulator carries AWS's offerings: `c8a.large`
/// is not in eu-west-1c) is refused before anything is stored or created, naming the group,
/// the zone and the zones that would work.
#[tokio::test]
async fn an_instance_type_a_zone_does_not_offer_is_refused_before_anything_is_made() {
    let cli = Cli::new("unoffered").await;
    let name = "unoffered.example.com";
    let mut create = cli.create_args(name);
    for zone in create.iter_mut() {
        if *zone == "eu-west-1a" {
            *zone = "eu-west-1c";
        }
    }
    create.extend(["--node-size", "c8a.large", "--yes"]);
    let refused = cli.run(&create);
    let log = stderr(&refused);
    assert_eq!(refused.status.code(), Some(3), "{log}");
    assert!(
        log.contains(
            "nodes-workers.unoffered.example.com: instance type c8a.large is not offered in \
             eu-west-1c (it is in eu-west-1a, eu-west-1b)"
        ),
        "{log}"
    );
    assert!(
        !log.contains("control-plane-eu-west-1c"),
        "t3.medium is offered: {log}"
    );
    assert!(cli.state_object(name, "config.yaml").await.is_none());
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

/// `create --yes` waits for the groups' instances. When Auto Scaling cannot launch them
/// (the proxy answers as AWS does when a zone has no capacity), the run fails after its
/// `--capacity-timeout`, naming each group short of instances and AWS's reason, and releases
/// the lock; once capacity is there, `update --yes` waits and succeeds.
#[tokio::test]
async fn create_waits_for_instances_and_names_what_aws_could_not_launch() {
    let cli = Cli::new("capacity").await;
    let name = "capacity.example.com";
    let proxy = common::proxy::FaultProxy::start(
        &common::moto::moto().endpoint,
        common::proxy::FaultConfig {
            insufficient_capacity: Some(("t3.medium", "eu-west-1a")),
            ..Default::default()
        },
    );
    let mut create = cli.create_args(name);
    create.extend(["--yes", "--capacity-timeout", "2s"]);
    let short = cli
        .command(&create)
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .output()
        .unwrap();
    let log = stderr(&short);
    assert_eq!(short.status.code(), Some(1), "{log}");
    assert!(log.contains("+ aws_vpc.main created"), "{log}");
    assert!(
        log.contains(&format!(
            "control-plane-eu-west-1a.{name}: 0 of 1 instance(s) in service; the last launch \
             failed: We currently do not have sufficient t3.medium capacity in the Availability \
             Zone you requested (eu-west-1a)"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("nodes-workers.{name}: 0 of")),
        "{log}"
    );
    assert!(cli.state_object(name, "lock").await.is_none(), "{log}");

    let updated = cli.run(&["update", "cluster", name, "--yes"]);
    let log = stderr(&updated);
    assert!(updated.status.success(), "{log}");
    assert!(
        log.contains("Every group has its instances in service."),
        "{log}"
    );

    let deleted = cli.run(&["delete", "cluster", name, "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
}

/// `create --yes` is done once the control plane's etcd is: after the instances, it waits
/// (`--etcd-timeout`) for the members' reports and judges them as `validate cluster` does.
/// No instance boots on the emulator, so no member reports: the run fails with exit 7 naming
/// the member and what to run, and releases the lock. A report of a healthy member (as the
/// member's timer writes it; the real members' are read in `aws_control_plane`) lets the
/// same command, run again, finish.
#[tokio::test]
async fn create_waits_for_the_members_etcd_and_names_what_is_missing() {
    let cli = Cli::new("etcd-gate").await;
    let name = "etcd-gate.example.com";
    let mut create: Vec<&str> = cli.create_args(name);
    let at = create
        .iter()
        .position(|arg| *arg == "--etcd-timeout")
        .unwrap();
    create[at + 1] = "3s";
    create.push("--yes");
    let waited = cli.run(&create);
    let log = stderr(&waited);
    assert_eq!(waited.status.code(), Some(7), "{log}");
    assert!(
        log.contains("Every group has its instances in service.")
            && log.contains("member eu-west-1a: has not reported its etcd")
            && log.contains(&format!("rafter validate cluster {name} --wait")),
        "{log}"
    );
    assert!(cli.state_object(name, "lock").await.is_none(), "{log}");

    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let report = serde_json::json!({
        "member": "eu-west-1a", "host": "ip-10-0-32-10", "instance": "i-0123", "healthy": true,
        "member_id": "8e9e05c52164694d", "cluster_id": "cdf818194e3a8c32",
        "leader": "8e9e05c52164694d", "raft_index": 9, "revision": 4, "version": "3.5.21",
        "members": ["eu-west-1a"], "alarms": "", "at": now
    });
    cli.put_state_object(
        name,
        "etcd-status/eu-west-1a",
        report.to_string().as_bytes(),
    )
    .await;
    let finished = cli.run(&create);
    let log = stderr(&finished);
    assert!(finished.status.success(), "{log}");
    assert!(
        log.contains("Every control-plane member reports a healthy etcd."),
        "{log}"
    );
    let deleted = cli.run(&["delete", "cluster", name, "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
}

/// The state bucket lives in another region than the environment names. S3 refuses requests
/// signed for the wrong region (the proxy answers as S3 does: 301 with the bucket's region
/// in `x-amz-bucket-region`); rafter asks the bucket where it is and talks to that region.
#[tokio::test]
async fn a_state_bucket_in_another_region_is_found() {
    let config = aws_sdk_s3::config::Builder::from(&common::moto::sdk_config())
        .region(aws_sdk_s3::config::Region::new("eu-central-1"))
        .force_path_style(true)
        .build();
    let frankfurt = aws_sdk_s3::Client::from_conf(config);
    let bucket = format!("rafter-frankfurt-{}", std::process::id());
    frankfurt
        .create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuCentral1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let proxy = common::proxy::FaultProxy::start(
        &common::moto::moto().endpoint,
        common::proxy::FaultConfig {
            bucket_regions: true,
            ..Default::default()
        },
    );
    let cli = Cli {
        state: format!("s3://{bucket}/state"),
        bucket: bucket.clone(),
        ..Cli::new("frankfurt-unused").await
    };
    let name = "frankfurt.example.com";
    let created = cli
        .command(&cli.create_args(name))
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(cli.state_object(name, "config.yaml").await.is_some());

    // The proxy does refuse a client that does not ask: the test proves something.
    let eu_west = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&proxy.sdk_config())
            .force_path_style(true)
            .build(),
    );
    let refused = eu_west
        .get_object()
        .bucket(&bucket)
        .key(format!("state/{name}/config.yaml"))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

/// `ha-aws` through everything the proxy knows of AWS at once: throttling and failures with
/// lost answers, a role and a profile that propagate, a VPC that is not visible at first,
/// describes that lag creates, a NAT gateway's lost answer, and interfaces that linger after
/// deletes. `create --yes` succeeds in one run with exactly one of everything, and
/// `delete --yes` leaves nothing behind.
#[tokio::test]
async fn ha_cluster_is_created_in_one_run_and_deleted_through_what_aws_does() {
    common::moto::public_zone("example.com").await;
    let cli = Cli::new("everything").await;
    let name = "everything.example.com";
    let proxy = common::proxy::FaultProxy::start(
        &common::moto::moto().endpoint,
        common::proxy::FaultConfig {
            fault_rate: 0.05,
            seed: 0x5eed_0023,
            lose_answers: true,
            role_propagation: Duration::from_secs(1),
            profile_propagation: Duration::from_secs(2),
            vpc_consistency: Duration::from_secs(1),
            listing_lag: Duration::from_secs(3),
            lose_first_answer_to: Some("CreateNatGateway"),
            dependency_linger: Duration::from_secs(3),
            ..Default::default()
        },
    );
    let mut create = cli.ha_create_args(name);
    create.push("--yes");
    let created = cli
        .command(&create)
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .output()
        .unwrap();
    let log = stderr(&created);
    assert!(created.status.success(), "{log}");
    assert!(
        proxy.faults() > 0,
        "nothing failed: the test proves nothing"
    );
    assert!(
        proxy.lost().contains_key("ec2 CreateNatGateway"),
        "{:?}",
        proxy.lost()
    );

    let mut sources = common::example_sources("ha-aws");
    sources.flags.name = Some(name.into());
    sources.flags.ssh_public_key = Some(common::EXAMPLE_PUBLIC_KEY.into());
    let graph =
        rafter::model::build_graph(&rafter::spec::load(&sources, None).unwrap().cluster).unwrap();
    assert_eq!(
        common::inventory::tagged_counts(name).await,
        common::inventory::wanted_counts(&graph),
        "one of everything; lost answers: {:?}",
        proxy.lost()
    );

    let deleted = cli
        .command(&["delete", "cluster", name, "--yes"])
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .output()
        .unwrap();
    let log = stderr(&deleted);
    assert!(deleted.status.success(), "{log}");
    assert!(proxy.dependency_refusals() > 0, "nothing lingered: {log}");
    assert_eq!(tagged_leftovers(name).await, Vec::<String>::new());
}

/// A subnet and a launch template deleted behind rafter's back (as in the console): the
/// plan shows each as deleted outside rafter, to be created again; `update --yes` creates
/// them (and replaces or updates what referred to them) instead of retrying `…NotFound` for
/// ten minutes; the next plan has nothing to do; `--refresh=false` plans against the record.
#[tokio::test]
async fn resources_deleted_outside_rafter_are_created_again() {
    // Three zones: the emulator refuses a load balancer's subnets in fewer (AWS allows one
    // for a network load balancer).
    let cli = Cli::new("drift").await;
    let name = "drift.example.com";
    cli.create_ha(name).await;
    let before = inventory(name).await;

    let record = cli.record(name).await;
    let id_of = |kind: &str| {
        record["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|resource| resource["address"]["kind"] == kind)
            .map(|resource| {
                (
                    resource["address"]["name"].as_str().unwrap().to_string(),
                    resource["outputs"]["id"].as_str().unwrap().to_string(),
                )
            })
            .unwrap_or_else(|| panic!("no {kind} in {record}"))
    };
    let (subnet_name, subnet) = id_of("subnet");
    let (template_name, template) = id_of("launch_template");
    let ec2 = aws_sdk_ec2::Client::new(&common::moto::sdk_config());
    ec2.delete_launch_template()
        .launch_template_id(&template)
        .send()
        .await
        .unwrap();
    ec2.delete_subnet().subnet_id(&subnet).send().await.unwrap();

    let offline = cli.run(&["update", "cluster", name, "--refresh=false"]);
    assert!(
        String::from_utf8_lossy(&offline.stdout).contains("No changes"),
        "{}",
        String::from_utf8_lossy(&offline.stdout)
    );
    let preview = cli.run(&["update", "cluster", name]);
    let (plan, log) = (String::from_utf8_lossy(&preview.stdout), stderr(&preview));
    assert!(preview.status.success(), "{log}");
    for address in [
        format!("aws_subnet.{subnet_name}"),
        format!("aws_launch_template.{template_name}"),
    ] {
        assert!(
            plan.contains(&format!(
                "{address} will be created (it was deleted outside rafter)"
            )),
            "{plan}"
        );
        assert!(
            log.contains(&format!("note: {address} was deleted outside rafter")),
            "{log}"
        );
    }

    let json = cli.run(&["update", "cluster", name, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let drifted: Vec<&str> = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["drift"] == "vanished")
        .map(|change| change["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        drifted,
        [
            format!("aws_subnet.{subnet_name}"),
            format!("aws_launch_template.{template_name}")
        ]
    );

    let repaired = cli.run(&[
        "update",
        "cluster",
        name,
        "--yes",
        "--capacity-timeout",
        "0s",
    ]);
    let log = stderr(&repaired);
    assert!(repaired.status.success(), "{log}");
    let again = cli.run(&["update", "cluster", name]);
    let plan = String::from_utf8_lossy(&again.stdout);
    assert!(plan.contains("No changes"), "{plan}{}", stderr(&again));
    assert_eq!(inventory(name).await, before);

    let deleted = cli.run(&["delete", "cluster", name, "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
}

/// The first recorded resource of `kind` for which `wanted` holds.
fn recorded<'r>(
    record: &'r serde_json::Value,
    kind: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> &'r serde_json::Value {
    record["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resource| resource["address"]["kind"] == kind && wanted(resource))
        .unwrap_or_else(|| panic!("no such {kind} in {record}"))
}

/// A recorded resource's attribute `name`, as the record serializes it.
fn attribute<'r>(resource: &'r serde_json::Value, name: &str) -> Option<&'r serde_json::Value> {
    resource["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|field| field["name"] == name)
        .map(|field| &field["value"])
}

fn output(resource: &serde_json::Value, name: &str) -> String {
    resource["outputs"][name].as_str().unwrap().to_string()
}

fn address_of(resource: &serde_json::Value) -> String {
    serde_json::from_value::<rafter::graph::Address>(resource["address"].clone())
        .unwrap()
        .to_string()
}

/// Seven changes made behind rafter's back, as someone in the console (or an attacker with
/// the account's keys) would make them: a VPC tag, a subnet's public-address setting, a
/// route sent elsewhere, a security-group rule opened to the world, a node role's policy
/// widened to everything, a group's maximum size, a launch template version on another
/// instance type. The plan shows each as changed outside rafter with its live value, the
/// JSON marks each `changed`, `--yes` changes each back (checked against the emulator, not
/// the record), and the next plan has nothing to do.
#[tokio::test]
async fn resources_changed_outside_rafter_are_changed_back() {
    let cli = Cli::new("changed").await;
    let name = "changed.example.com";
    cli.create_ha(name).await;

    let record = cli.record(name).await;
    let config = common::moto::sdk_config();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);

    // A tag rafter set on the VPC, given another value.
    let vpc = recorded(&record, "vpc", |_| true);
    let (tag_key, tag_value) = attribute(vpc, "tags").unwrap()["map"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .map(|(key, value)| (key.clone(), value.as_str().unwrap().to_string()))
        .unwrap();
    ec2.create_tags()
        .resources(output(vpc, "id"))
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(&tag_key)
                .value("changed-by-hand")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A private subnet made to give instances public addresses.
    let subnet = recorded(&record, "subnet", |resource| {
        attribute(resource, "map_public_ip_on_launch") == Some(&serde_json::json!({"bool": false}))
    });
    ec2.modify_subnet_attribute()
        .subnet_id(output(subnet, "id"))
        .map_public_ip_on_launch(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The public default route sent to a NAT gateway instead of the internet gateway.
    let route = recorded(&record, "route", |resource| {
        attribute(resource, "gateway_id").is_some()
    });
    let (table, destination) = output(route, "id")
        .split_once('|')
        .map(|(table, destination)| (table.to_string(), destination.to_string()))
        .unwrap();
    let nat = output(recorded(&record, "nat_gateway", |_| true), "id");
    ec2.replace_route()
        .route_table_id(&table)
        .destination_cidr_block(&destination)
        .nat_gateway_id(&nat)
        .send()
        .await
        .unwrap();
    // A rule for one port opened to every port.
    let rule = recorded(&record, "security_group_ingress_rule", |resource| {
        attribute(resource, "cidr_ipv4").is_some() && attribute(resource, "from_port").is_some()
    });
    let rule_id = output(rule, "id");
    let text = |resource: &serde_json::Value, name: &str| {
        attribute(resource, name).unwrap()["str"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (protocol, cidr) = (text(rule, "ip_protocol"), text(rule, "cidr_ipv4"));
    ec2.modify_security_group_rules()
        .group_id(output(rule, "security_group_id"))
        .security_group_rules(
            aws_sdk_ec2::types::SecurityGroupRuleUpdate::builder()
                .security_group_rule_id(&rule_id)
                .security_group_rule(
                    aws_sdk_ec2::types::SecurityGroupRuleRequest::builder()
                        .ip_protocol(&protocol)
                        .from_port(0)
                        .to_port(65535)
                        .cidr_ipv4(&cidr)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A role's inline policy widened to every action on every resource.
    let policy = recorded(&record, "iam_role_policy", |_| true);
    let (role, policy_name) = output(policy, "id")
        .split_once(':')
        .map(|(role, policy)| (role.to_string(), policy.to_string()))
        .unwrap();
    let everything =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    iam.put_role_policy()
        .role_name(&role)
        .policy_name(&policy_name)
        .policy_document(everything)
        .send()
        .await
        .unwrap();
    // A group allowed to grow past its spec.
    let group = recorded(&record, "autoscaling_group", |_| true);
    let group_name = output(group, "id");
    autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(&group_name)
        .max_size(40)
        .send()
        .await
        .unwrap();
    // A template given a newest version on another instance type.
    let template = recorded(&record, "launch_template", |_| true);
    let template_id = output(template, "id");
    let wanted_type = attribute(template, "instance_type").unwrap()["str"]
        .as_str()
        .unwrap()
        .to_string();
    let other_type = if wanted_type == "m5.4xlarge" {
        "m5.2xlarge"
    } else {
        "m5.4xlarge"
    };
    ec2.create_launch_template_version()
        .launch_template_id(&template_id)
        .source_version("$Latest")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .instance_type(other_type.into())
                .build(),
        )
        .send()
        .await
        .unwrap();

    let changed = [
        (address_of(vpc), "tags", "changed-by-hand".to_string()),
        (
            address_of(subnet),
            "map_public_ip_on_launch",
            "true".to_string(),
        ),
        (address_of(route), "gateway_id", nat.clone()),
        (address_of(rule), "to_port", "65535".to_string()),
        (address_of(policy), "policy", String::new()),
        (address_of(group), "max_size", "40".to_string()),
        (
            address_of(template),
            "instance_type",
            other_type.to_string(),
        ),
    ];
    let preview = cli.run(&["update", "cluster", name]);
    let (plan, log) = (String::from_utf8_lossy(&preview.stdout), stderr(&preview));
    assert!(preview.status.success(), "{log}");
    for (address, attribute, live) in &changed {
        let verb = if address.contains("ingress_rule") {
            "replaced"
        } else {
            "updated in place"
        };
        let heading = format!("{address} will be {verb} (it was changed outside rafter)");
        let at = plan
            .find(&heading)
            .unwrap_or_else(|| panic!("no `{heading}` in:\n{plan}"));
        let section: String = plan[at..]
            .lines()
            .skip(1)
            .take_while(|line| !line.contains(" will be "))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            section.contains(attribute) && section.contains(live.as_str()),
            "{address}: no {attribute} from {live:?} in:\n{section}"
        );
        assert!(
            log.contains(&format!("note: {address} was changed outside rafter")),
            "{log}"
        );
    }
    assert!(
        !plan.contains(everything) && !log.contains(everything),
        "policies are shown by digest, never by content"
    );

    let json = cli.run(&["update", "cluster", name, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let mut drifted: Vec<String> = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["drift"] == "changed")
        .map(|change| change["address"].as_str().unwrap().to_string())
        .collect();
    drifted.sort();
    let mut expected: Vec<String> = changed
        .iter()
        .map(|(address, ..)| address.clone())
        .collect();
    expected.sort();
    assert_eq!(drifted, expected);

    let repaired = cli.run(&[
        "update",
        "cluster",
        name,
        "--yes",
        "--capacity-timeout",
        "0s",
    ]);
    assert!(repaired.status.success(), "{}", stderr(&repaired));
    let again = cli.run(&["update", "cluster", name]);
    let plan = String::from_utf8_lossy(&again.stdout);
    assert!(plan.contains("No changes"), "{plan}{}", stderr(&again));

    // Changed back in the emulator itself.
    let vpcs = ec2
        .describe_vpcs()
        .vpc_ids(output(vpc, "id"))
        .send()
        .await
        .unwrap();
    let live_tag = vpcs.vpcs()[0]
        .tags()
        .iter()
        .find(|tag| tag.key() == Some(tag_key.as_str()))
        .and_then(|tag| tag.value())
        .map(str::to_string);
    assert_eq!(live_tag, Some(tag_value));
    let subnets = ec2
        .describe_subnets()
        .subnet_ids(output(subnet, "id"))
        .send()
        .await
        .unwrap();
    assert_eq!(subnets.subnets()[0].map_public_ip_on_launch(), Some(false));
    let tables = ec2
        .describe_route_tables()
        .route_table_ids(&table)
        .send()
        .await
        .unwrap();
    let live_route = tables.route_tables()[0]
        .routes()
        .iter()
        .find(|route| route.destination_cidr_block() == Some(destination.as_str()))
        .unwrap();
    assert!(
        live_route
            .gateway_id()
            .is_some_and(|id| id.starts_with("igw-")),
        "{live_route:?}"
    );
    let rules = ec2
        .describe_security_group_rules()
        .filters(
            Filter::builder()
                .name("group-id")
                .values(output(rule, "security_group_id"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        !rules
            .security_group_rules()
            .iter()
            .any(|live| live.to_port() == Some(65535)),
        "{rules:?}"
    );
    let live_policy = iam
        .get_role_policy()
        .role_name(&role)
        .policy_name(&policy_name)
        .send()
        .await
        .unwrap();
    assert!(
        !live_policy.policy_document().contains(r#""Action":"*""#)
            && !live_policy
                .policy_document()
                .contains("%22Action%22%3A%22%2A%22"),
        "{}",
        live_policy.policy_document()
    );
    let groups = autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group_name)
        .send()
        .await
        .unwrap();
    assert_ne!(groups.auto_scaling_groups()[0].max_size(), Some(40));
    let versions = ec2
        .describe_launch_template_versions()
        .launch_template_id(&template_id)
        .versions("$Latest")
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.launch_template_versions()[0]
            .launch_template_data()
            .and_then(|data| data.instance_type())
            .map(|kind| kind.as_str()),
        Some(wanted_type.as_str())
    );

    let deleted = cli.run(&["delete", "cluster", name, "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
}

/// The host names of the instances in service in the cluster's groups, as their boot reports
/// name them.
async fn running_hostnames(name: &str) -> Vec<String> {
    let config = common::moto::sdk_config();
    let groups = aws_sdk_autoscaling::Client::new(&config)
        .describe_auto_scaling_groups()
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = groups
        .auto_scaling_groups()
        .iter()
        .filter(|group| {
            group
                .auto_scaling_group_name()
                .unwrap_or_default()
                .ends_with(name)
        })
        .flat_map(|group| group.instances())
        .filter_map(|instance| instance.instance_id().map(str::to_string))
        .collect();
    let described = aws_sdk_ec2::Client::new(&config)
        .describe_instances()
        .set_instance_ids(Some(ids))
        .send()
        .await
        .unwrap();
    described
        .reservations()
        .iter()
        .flat_map(|reservation| reservation.instances())
        .map(|instance| {
            instance
                .private_dns_name()
                .unwrap()
                .split('.')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn validate_reads_the_groups_the_targets_and_each_instances_boot_report() {
    let cli = Cli::new("validate").await;
    let name = "validate.example.com";
    let mut create = cli.create_args(name);
    create.push("--yes");
    let created = cli.run(&create);
    assert!(created.status.success(), "{}", stderr(&created));
    let validate = |cli: &Cli| {
        let output = cli.run(&["validate", "cluster", name, "-o", "json"]);
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("{}", stderr(&output)));
        (output.status.code(), json)
    };
    let problems = |json: &serde_json::Value| -> Vec<String> {
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|finding| {
                format!(
                    "{} {}: {}",
                    finding["area"].as_str().unwrap(),
                    finding["subject"].as_str().unwrap(),
                    finding["problem"].as_str().unwrap()
                )
            })
            .collect()
    };

    // Just made: no instance has reported its boot, and etcd has not formed. No API server
    // answers behind the emulator's load balancer (none can run here): always one finding.
    let hosts = running_hostnames(name).await;
    assert_eq!(
        hosts.len(),
        2,
        "a control-plane instance and a worker: {hosts:?}"
    );
    let (code, json) = validate(&cli);
    assert_eq!(code, Some(7), "{json}");
    let found = problems(&json);
    let no_api_server = found
        .iter()
        .find(|problem| problem.starts_with("kubernetes https://api-validate-example-com-"))
        .unwrap_or_else(|| panic!("{found:?}"))
        .clone();
    assert!(
        no_api_server.contains("the API server does not answer a list of nodes"),
        "{no_api_server}"
    );
    for host in &hosts {
        assert!(
            found
                .iter()
                .any(|problem| problem.starts_with(&format!("host {host} ("))
                    && problem.ends_with("has not reported its boot")),
            "{found:?}"
        );
    }
    assert!(
        found
            .iter()
            .any(|problem| problem
                .starts_with("etcd etcd: has not formed yet (its record says: new")),
        "{found:?}"
    );
    assert!(
        json["passed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|check| check.as_str().unwrap().contains(": 1 of 1 in service")),
        "{json}"
    );

    // The instances report, one of them a failed boot; the control plane records etcd formed.
    let report = |host: &str, state: &str, detail: &str| {
        format!(
            "{{\"host\":\"{host}\",\"state\":\"{state}\",\"detail\":\"{detail}\",\"at\":\"2026-12-01T06:00:00Z\"}}\n"
        )
    };
    for host in &hosts[1..] {
        cli.put_state_object(
            name,
            &format!("node-status/node-groups/any/{host}"),
            report(host, "done", "").as_bytes(),
        )
        .await;
    }
    let failing = &hosts[0];
    cli.put_state_object(
        name,
        &format!("node-status/control-plane/any/{failing}"),
        report(
            failing,
            "failed",
            "the bundle exited with 1: journalctl -u rafter-first-boot",
        )
        .as_bytes(),
    )
    .await;
    cli.put_state_object(name, "etcd-peers/_formed", b"formed\n")
        .await;
    // Without the member's own report of its etcd, validate says so.
    let (_, json) = validate(&cli);
    assert!(
        problems(&json).contains(&"etcd member eu-west-1a: has not reported its etcd".to_string()),
        "{json}"
    );
    // The member reports its etcd, as its timer does every 30 s.
    let at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    cli.put_state_object(
        name,
        "etcd-status/eu-west-1a",
        format!(
            "{{\"member\":\"eu-west-1a\",\"host\":\"{failing}\",\"instance\":\"i-1\",\"healthy\":true,\"member_id\":\"1\",\"cluster_id\":\"7\",\"leader\":\"1\",\"raft_index\":9,\"revision\":5,\"version\":\"3.5.21\",\"members\":[\"eu-west-1a\"],\"alarms\":\"\",\"at\":\"{at}\"}}\n"
        )
        .as_bytes(),
    )
    .await;
    let (code, json) = validate(&cli);
    assert_eq!(code, Some(7), "{json}");
    let found = problems(&json);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[1], no_api_server, "{found:?}");
    assert!(
        found[0].starts_with(&format!("host {failing} (i-")),
        "{found:?}"
    );
    assert!(
        found[0].contains("its boot is failed: the bundle exited with 1"),
        "{found:?}"
    );

    // Its boot finished on a retry: all that is left is the API server, which cannot run
    // here.
    cli.put_state_object(
        name,
        &format!("node-status/control-plane/any/{failing}"),
        report(failing, "done", "").as_bytes(),
    )
    .await;
    let (code, json) = validate(&cli);
    assert_eq!(code, Some(7), "{json}");
    assert_eq!(problems(&json), [no_api_server]);
    let passed = json["passed"].to_string();
    assert!(passed.contains("target(s) healthy"), "{passed}");
    assert!(
        passed.contains("2 instance(s) finished their boot"),
        "{passed}"
    );
    assert!(passed.contains("etcd: formed"), "{passed}");
    assert!(
        passed.contains("etcd: 1 member(s) report healthy"),
        "{passed}"
    );

    // Backups the members put (they may not delete any) are pruned by the next apply.
    let store = rafter::state::S3Store::new(common::moto::s3_client(), &cli.bucket, &cli.prefix);
    let now = time::OffsetDateTime::now_utc();
    let facts = rafter::backup::SnapshotFacts {
        revision: 7,
        keys: Some(3),
        etcd_hash: 1,
        etcd_version: "3.5.21".to_string(),
    };
    let mut kept = Vec::new();
    let mut expired = String::new();
    for (age_hours, keep) in [(100 * 24, false), (2, true), (0, true)] {
        let record = rafter::backup::BackupRecord::new(
            now - time::Duration::hours(age_hours) - time::Duration::minutes(30),
            "eu-west-1a",
            b"snapshot",
            facts.clone(),
        );
        rafter::backup::catalog::save(&store, name, &record, b"snapshot")
            .await
            .unwrap();
        match keep {
            true => kept.push(record.id),
            false => expired = record.id,
        }
    }
    // A snapshot whose record never came: left alone for an hour (its member may be putting
    // the record), removed after.
    let leftover = |age: time::Duration| rafter::backup::record::backup_id(now - age);
    let (fresh, stale) = (
        leftover(time::Duration::minutes(5)),
        leftover(time::Duration::hours(3)),
    );
    for id in [&fresh, &stale] {
        cli.put_state_object(name, &format!("backups/etcd/{id}/snapshot.db"), b"half")
            .await;
    }
    let updated = cli.run(&[
        "update",
        "cluster",
        name,
        "--yes",
        "--capacity-timeout",
        "0s",
    ]);
    let said = stderr(&updated);
    assert!(updated.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "Retention removed 1 older backup(s) of cluster {name}: {expired}."
        )),
        "{said}"
    );
    let catalog = rafter::backup::catalog::list(&store, name).await.unwrap();
    let listed: Vec<String> = catalog
        .backups
        .iter()
        .map(|backup| backup.id.clone())
        .collect();
    assert_eq!(listed, kept);
    assert_eq!(catalog.incomplete, [fresh]);

    let deleted = cli.run(&["delete", "cluster", name, "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
}
