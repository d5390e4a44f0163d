//! The `rafter` binary end to end: commands, files, exit codes, stdout and stderr.

mod common;

use rafter::state::ForceUnlock;

use std::path::Path;
use std::process::{Command, Output};

struct Rafter {
    state: tempfile::TempDir,
}

impl Rafter {
    fn new() -> Self {
        Self {
            state: tempfile::tempdir().unwrap(),
        }
    }

    /// The binary with this state directory and AWS pointed at the emulator (`delete --yes`
    /// sweeps the cloud for what state lost track of; no test may reach real AWS).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rafter"));
        command
            .args(args)
            .env("RAFTER_STATE", self.state.path())
            .envs(common::moto::process_env())
            .env_remove("NO_COLOR")
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const HA: [&str; 9] = [
    "create",
    "cluster",
    "--name",
    "demo.example.com",
    "--profile",
    "ha-aws",
    "--zones",
    "eu-west-1a,eu-west-1b,eu-west-1c",
    "--dns-zone=example.com",
];

/// A bare-host cluster from the `ha-ssh` profile (stored only: nothing is applied).
const EDGE: [&str; 6] = [
    "create",
    "cluster",
    "--name",
    "edge.example.com",
    "--profile",
    "ha-ssh",
];

#[test]
fn create_stores_the_spec_and_prints_the_plan() {
    let rafter = Rafter::new();
    let created = rafter.run(&HA);
    assert!(created.status.success(), "{}", stderr(&created));
    let plan = stdout(&created);
    assert!(plan.contains("+ resource \"aws_vpc\" \"main\""), "{plan}");
    assert!(
        plan.contains("Plan: 94 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{plan}"
    );
    assert!(
        !plan.contains("\x1b["),
        "no colors when stdout is not a terminal"
    );
    assert!(stderr(&created).contains("Nothing was created in the cloud"));
    let config = rafter.state.path().join("demo.example.com/config.yaml");
    assert!(config.exists());
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let again = rafter.run(&HA);
    assert_eq!(again.status.code(), Some(4), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    let listed = rafter.run(&["get", "clusters"]);
    let row: Vec<String> = stdout(&listed)
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        row,
        [
            "demo.example.com",
            "aws",
            "eu-west-1",
            "eu-west-1a,eu-west-1b,eu-west-1c",
            "3",
            "1",
            "1.34.2"
        ]
    );
}

use std::os::unix::fs::PermissionsExt;

#[test]
fn printed_spec_is_valid_input_and_round_trips() {
    let rafter = Rafter::new();
    assert!(rafter.run(&HA).status.success());
    let printed = rafter.run(&["get", "cluster", "demo.example.com", "-o", "yaml"]);
    assert!(printed.status.success(), "{}", stderr(&printed));
    let yaml = stdout(&printed);
    let file = rafter.state.path().join("edited.yaml");
    std::fs::write(&file, &yaml).unwrap();

    let other = Rafter::new();
    let created = other.run(&["create", "cluster", "-f", file.to_str().unwrap()]);
    assert!(created.status.success(), "{}", stderr(&created));
    let reprinted = stdout(&other.run(&["get", "cluster", "demo.example.com"]));
    // Only configBase differs: it names each store.
    let without_base = |text: &str| {
        text.lines()
            .filter(|line| !line.contains("configBase"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without_base(&reprinted), without_base(&yaml));

    let json = stdout(&rafter.run(&["get", "cluster", "demo.example.com", "-o", "json"]));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["spec"]["controlPlane"]["count"], 3);
}

#[test]
fn update_shows_the_plan_for_an_edited_spec_without_storing_it() {
    let rafter = Rafter::new();
    assert!(rafter.run(&HA).status.success());
    let yaml = stdout(&rafter.run(&["get", "cluster", "demo.example.com"]));
    let edited = yaml.replace("maxSize: 6", "maxSize: 9");
    assert_ne!(edited, yaml);
    let file = rafter.state.path().join("edited.yaml");
    std::fs::write(&file, &edited).unwrap();
    let updated = rafter.run(&[
        "update",
        "cluster",
        "demo.example.com",
        "-f",
        file.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(updated.status.success(), "{}", stderr(&updated));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&updated)).unwrap();
    let group = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["address"] == "aws_autoscaling_group.nodes-workers")
        .unwrap();
    assert_eq!(group["attributes"]["max_size"], 9);
    assert!(stderr(&updated).contains("not stored"));
    assert!(
        stdout(&rafter.run(&["get", "cluster", "demo.example.com"])).contains("maxSize: 6"),
        "the stored spec changed without --yes"
    );

    let renamed = yaml.replace("name: demo.example.com", "name: other.example.com");
    std::fs::write(&file, renamed).unwrap();
    let refused = rafter.run(&[
        "update",
        "cluster",
        "demo.example.com",
        "-f",
        file.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
}

#[test]
fn invalid_specs_exit_3_with_every_error_located() {
    let rafter = Rafter::new();
    let output = rafter.run(&[
        "create",
        "cluster",
        "-f",
        "tests/invalid-specs/21-several-errors.yaml",
    ]);
    assert_eq!(output.status.code(), Some(3));
    let errors = stderr(&output);
    assert!(
        errors.starts_with("error: the cluster spec has 4 errors:"),
        "{errors}"
    );
    assert!(
        errors
            .contains("tests/invalid-specs/21-several-errors.yaml:12:12: spec.controlPlane.count:"),
        "{errors}"
    );
    assert!(stdout(&output).is_empty(), "no plan for an invalid spec");
    assert!(
        !rafter.state.path().join("test.example.com").exists(),
        "nothing stored for an invalid spec"
    );
}

#[test]
fn flag_errors_name_the_flag() {
    let rafter = Rafter::new();
    let output = rafter.run(&[
        "create",
        "cluster",
        "--name",
        "x.example.com",
        "--profile",
        "ha-aws",
        "--zones",
        "eu-west-1a",
        "--control-plane-count",
        "4",
    ]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("--control-plane-count: spec.controlPlane.count: control-plane count must be 1, 3, 5 or 7, got 4"), "{}", stderr(&output));
    let warned = rafter.run(&[
        "create",
        "cluster",
        "--name",
        "x.example.com",
        "--profile",
        "ha-aws",
        "--zones",
        "eu-west-1a",
        "--dry-run",
    ]);
    assert!(warned.status.success(), "{}", stderr(&warned));
    assert!(
        stderr(&warned).contains(
            "warning: --zones: spec.networking.zones: 3 control-plane nodes in 1 zone(s)"
        ),
        "{}",
        stderr(&warned)
    );
}

#[test]
fn unreachable_hosts_and_dry_run_change_nothing() {
    let rafter = Rafter::new();
    // Bare hosts that cannot be reached: each is named, and nothing is started.
    let spec = rafter.state.path().join("solo.yaml");
    std::fs::write(
        &spec,
        "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: solo.example.com\nspec:\n  provider: ssh\n  hosts:\n    - { name: solo, address: 127.0.0.9, port: 1, role: controlPlane }\n",
    )
    .unwrap();
    let applied = rafter.run(&["create", "cluster", "-f", spec.to_str().unwrap(), "--yes"]);
    assert_eq!(applied.status.code(), Some(1), "{}", stderr(&applied));
    let said = stderr(&applied);
    assert!(said.contains("solo cannot be reached"), "{said}");
    assert!(said.contains("nothing was changed"), "{said}");
    std::fs::remove_dir_all(rafter.state.path()).unwrap();
    let mut dry = HA.to_vec();
    dry.push("--dry-run");
    assert!(rafter.run(&dry).status.success());
    assert_eq!(
        std::fs::read_dir(rafter.state.path())
            .map(|entries| entries.count())
            .unwrap_or(0),
        0,
        "something was stored"
    );
}

#[test]
fn delete_previews_then_removes_the_state() {
    let rafter = Rafter::new();
    assert!(rafter.run(&HA).status.success());
    let preview = rafter.run(&["delete", "cluster", "demo.example.com"]);
    assert!(preview.status.success());
    assert!(stderr(&preview).contains("Run again with --yes"));
    assert!(
        rafter
            .state
            .path()
            .join("demo.example.com/config.yaml")
            .exists()
    );
    let deleted = rafter.run(&["delete", "cluster", "demo.example.com", "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert!(!rafter.state.path().join("demo.example.com").exists());
    let missing = rafter.run(&["delete", "cluster", "demo.example.com"]);
    assert_eq!(missing.status.code(), Some(4));
    assert!(
        stderr(&missing).contains("hint: `rafter get clusters`"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn delete_that_cannot_reach_aws_says_so_and_keeps_the_state() {
    let rafter = Rafter::new();
    assert!(rafter.run(&HA).status.success());
    let refused = rafter
        .command(&["delete", "cluster", "demo.example.com", "--yes"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(
        text.contains("could not check AWS for resources tagged"),
        "{text}"
    );
    assert!(text.contains("aws_vpc, aws_iam_instance_profile"), "{text}");
    assert!(text.contains(": Unreachable: "), "{text}");
    assert!(text.contains("state was kept"), "{text}");
    assert!(
        rafter
            .state
            .path()
            .join("demo.example.com/config.yaml")
            .exists()
    );
    // The lock was released: a rerun that can reach AWS deletes.
    let deleted = rafter.run(&["delete", "cluster", "demo.example.com", "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
}

#[test]
fn applying_to_aws_with_a_state_store_instances_cannot_read_is_refused() {
    let rafter = Rafter::new();
    let mut create: Vec<&str> = HA.to_vec();
    create.push("--yes");
    let refused = rafter.run(&create);
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(
        text.contains("which AWS instances cannot read") && text.contains("nothing was created"),
        "{text}"
    );
    assert!(
        text.contains("hint: keep the state in an S3 bucket"),
        "{text}"
    );
    assert!(
        !rafter.state.path().join("demo.example.com").exists(),
        "the refused create stored the spec"
    );
    // A stored cluster is refused the same way by `update --yes`, before any AWS call.
    assert!(rafter.run(&HA).status.success());
    let refused = rafter.run(&["update", "cluster", "demo.example.com", "--yes"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("which AWS instances cannot read"));
}

#[test]
fn apply_without_aws_credentials_fails_at_once_naming_the_cause() {
    let rafter = Rafter::new();
    let home = tempfile::tempdir().unwrap(); // no ~/.aws to fall back on
    let mut create: Vec<&str> = HA.to_vec();
    create.push("--yes");
    let failed = rafter
        .command(&create)
        .env("RAFTER_STATE", "s3://rafter-no-credentials/state")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", home.path())
        .output()
        .unwrap();
    let text = stderr(&failed);
    assert_eq!(failed.status.code(), Some(1), "{text}");
    assert!(text.contains("credentials"), "{text}");
}

#[test]
fn a_held_lock_stops_delete_and_is_never_broken_while_live() {
    let rafter = Rafter::new();
    assert!(rafter.run(&HA).status.success());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rafter::state::LocalStore::new(rafter.state.path());
    let lease = std::time::Duration::from_secs(600);
    let lock = runtime
        .block_on(rafter::state::ClusterLock::acquire(
            &store,
            "demo.example.com",
            "update cluster",
            lease,
            &ForceUnlock::Never,
        ))
        .unwrap();
    for args in [
        &["delete", "cluster", "demo.example.com", "--yes"][..],
        &[
            "delete",
            "cluster",
            "demo.example.com",
            "--yes",
            "--force-unlock",
        ],
    ] {
        let refused = rafter.run(args);
        assert_eq!(refused.status.code(), Some(6), "{}", stderr(&refused));
        let text = stderr(&refused);
        assert!(
            text.contains("cluster demo.example.com is locked by")
                && text.contains("for `update cluster`"),
            "{text}"
        );
        assert!(text.contains("hint: wait for that run to finish"), "{text}");
    }
    assert!(
        rafter
            .state
            .path()
            .join("demo.example.com/config.yaml")
            .exists(),
        "a locked cluster was deleted"
    );
    runtime.block_on(lock.release()).unwrap();
    assert!(
        rafter
            .run(&["delete", "cluster", "demo.example.com", "--yes"])
            .status
            .success()
    );
}

#[test]
fn export_terraform_writes_the_module_and_protects_other_directories() {
    let rafter = Rafter::new();
    assert!(rafter.run(&HA).status.success());
    let out = rafter.state.path().join("tf");
    let exported = rafter.run(&[
        "export",
        "terraform",
        "demo.example.com",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    // A local store: the module is written, and the user is told its instances could not
    // fetch their bundles (nothing is published where they cannot read it).
    assert!(
        stderr(&exported).contains(
            "node bundles were not published and the image was not pinned: the state is kept in"
        ),
        "{}",
        stderr(&exported)
    );
    assert!(
        !rafter
            .state
            .path()
            .join("demo.example.com/node-groups")
            .exists()
    );
    for file in [
        "versions.tf",
        "provider.tf",
        "network.tf",
        "compute.tf",
        "outputs.tf",
        "data/iam-nodes-workers-assume-role.json",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let foreign = rafter.state.path().join("mine");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("main.tf"), "# mine").unwrap();
    let refused = rafter.run(&[
        "export",
        "terraform",
        "demo.example.com",
        "--out",
        foreign.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("was not written by `rafter export terraform`"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("main.tf")).unwrap(),
        "# mine"
    );
}

#[test]
fn ssh_profile_plans_hosts_and_refuses_terraform() {
    let rafter = Rafter::new();
    let created = rafter.run(&EDGE);
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stdout(&created).contains("+ resource \"ssh_host\" \"cp-2\""));
    let out = rafter.state.path().join("tf");
    let refused = rafter.run(&[
        "export",
        "terraform",
        "edge.example.com",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("only AWS clusters can be exported"),
        "{}",
        stderr(&refused)
    );
    assert!(!Path::new(&out).exists());
}

#[test]
fn a_hosts_certificates_stay_the_same_from_one_export_to_the_next() {
    let rafter = Rafter::new();
    let created = rafter.run(&EDGE);
    assert!(created.status.success(), "{}", stderr(&created));
    let export = |dir: &str, node: &str| {
        let out = rafter.state.path().join(dir);
        let output = rafter.run(&[
            "export",
            "bootstrap",
            "edge.example.com",
            "--role",
            "control-plane",
            "--node",
            node,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let read = |file: &str| std::fs::read_to_string(out.join(file)).unwrap();
        (
            read("etc/kubernetes/pki/apiserver.crt"),
            read("etc/kubernetes/pki/etcd/peer.key"),
            read("etc/kubernetes/admin.conf"),
        )
    };
    let first = export("first", "cp-1");
    let second = export("second", "cp-1");
    assert_eq!(
        first, second,
        "a rerun must not reissue the host's certificates"
    );
    let other = export("other", "cp-2");
    assert_ne!(first.0, other.0);
    assert!(
        rafter
            .state
            .path()
            .join("edge.example.com/pki/nodes/cp-1.json")
            .exists()
    );
}

#[test]
fn an_aws_control_plane_member_exports_the_files_it_boots_with() {
    let rafter = Rafter::new();
    let created = rafter.run(&HA);
    assert!(created.status.success(), "{}", stderr(&created));
    let export = |dir: &str, member: &str| {
        let out = rafter.state.path().join(dir);
        let output = rafter.run(&[
            "export",
            "bootstrap",
            "demo.example.com",
            "--role",
            "control-plane",
            "--node",
            member,
            "--out",
            out.to_str().unwrap(),
        ]);
        (out, output)
    };
    let (out, first) = export("first", "eu-west-1b");
    assert!(first.status.success(), "{}", stderr(&first));
    let read = |out: &Path, file: &str| std::fs::read_to_string(out.join(file)).unwrap();
    let peers = read(&out, "usr/local/lib/rafter/etcd-peers.sh");
    assert!(peers.contains("\nMEMBER=eu-west-1b\n"), "{peers}");
    assert!(read(&out, "etc/systemd/system/etcd.service").contains(
        "--initial-advertise-peer-urls=https://etcd-eu-west-1b.internal.demo.example.com:2380"
    ));
    // Its certificates are kept: the export is what the member's published bundle holds.
    let (again, second) = export("second", "eu-west-1b");
    assert!(second.status.success(), "{}", stderr(&second));
    for file in [
        "etc/kubernetes/pki/etcd/peer.crt",
        "etc/kubernetes/pki/apiserver.key",
    ] {
        assert_eq!(read(&out, file), read(&again, file), "{file}");
    }
    let (_, unknown) = export("unknown", "eu-west-1d");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains(
            "has no control-plane member named `eu-west-1d` (it has: eu-west-1a, eu-west-1b, eu-west-1c)"
        ),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn unknown_profiles_and_missing_files_are_clear() {
    let rafter = Rafter::new();
    let typo = rafter.run(&[
        "create",
        "cluster",
        "--name",
        "a.example.com",
        "--profile",
        "ha-aw",
    ]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        stderr(&typo).contains(
            "unknown profile `ha-aw` (available: dev-aws, ha-aws, ha-ssh); did you mean `ha-aws`?"
        ),
        "{}",
        stderr(&typo)
    );
    let missing = rafter.run(&["create", "cluster", "-f", "/nonexistent/cluster.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
    let text = stderr(&missing);
    assert!(
        text.contains("error: cannot read spec file /nonexistent/cluster.yaml")
            && text.contains("caused by: No such file"),
        "{text}"
    );
    let bad_location = rafter.run(&["get", "clusters", "--state", "gs://bucket/prefix"]);
    assert_eq!(bad_location.status.code(), Some(1));
    assert!(
        stderr(&bad_location).contains("is not a state store location"),
        "{}",
        stderr(&bad_location)
    );
}

#[test]
fn the_whole_lifecycle_works_on_an_s3_state_store() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = common::moto::s3_client();
    let bucket = runtime.block_on(common::moto::new_bucket(&client, "cli"));
    let state = format!("s3://{bucket}/team-a");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rafter"))
            .args(args)
            .env("RAFTER_STATE", &state)
            .envs(common::moto::process_env())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let created = run(&HA);
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(
        stderr(&created).contains(&format!("in s3://{bucket}/team-a")),
        "{}",
        stderr(&created)
    );
    let object = runtime
        .block_on(
            client
                .head_object()
                .bucket(&bucket)
                .key("team-a/demo.example.com/config.yaml")
                .send(),
        )
        .expect("the spec is stored under the prefix");
    assert_eq!(
        object.server_side_encryption().map(|sse| sse.as_str()),
        Some("AES256")
    );

    let spec = stdout(&run(&["get", "cluster", "demo.example.com"]));
    assert!(
        spec.contains(&format!(
            "configBase: s3://{bucket}/team-a/demo.example.com"
        )),
        "{spec}"
    );
    let nodes_policy = {
        let out = tempfile::tempdir().unwrap();
        let exported = run(&[
            "export",
            "terraform",
            "demo.example.com",
            "--out",
            out.path().join("tf").to_str().unwrap(),
        ]);
        assert!(exported.status.success(), "{}", stderr(&exported));
        std::fs::read_to_string(out.path().join("tf/data/iam-nodes-workers-policy.json")).unwrap()
    };
    assert!(
        nodes_policy.contains(&format!(
            "arn:aws:s3:::{bucket}/team-a/demo.example.com/node-groups/workers/*"
        )),
        "workers may read only their group's part of the state store: {nodes_policy}"
    );
    assert!(stdout(&run(&["get", "clusters"])).contains("demo.example.com"));
    assert!(
        run(&["delete", "cluster", "demo.example.com", "--yes"])
            .status
            .success()
    );
    let listed = runtime
        .block_on(client.list_objects_v2().bucket(&bucket).send())
        .unwrap();
    assert_eq!(listed.key_count(), Some(0), "delete left objects behind");
}

#[test]
fn absurd_durations_are_usage_errors_not_panics() {
    let rafter = Rafter::new();
    assert!(rafter.run(&HA).status.success());
    for args in [
        vec![
            "export",
            "kubeconfig",
            "demo.example.com",
            "--admin=106751991167301d",
        ],
        vec![
            "get",
            "credentials",
            "demo.example.com",
            "--valid-for",
            "9223372036854775807d",
        ],
    ] {
        let output = rafter.run(&args);
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains("is not a duration"), "{said}");
        assert!(!said.contains("panicked"), "{said}");
    }
}

/// A spec file that never ends (or is far too big) is refused after reading at most the limit,
/// and a bucket that does not exist is said in words, with what to do: no SDK debug dump.
#[test]
fn endless_files_and_missing_buckets_are_said_in_words() {
    let rafter = Rafter::new();
    let endless = rafter.run(&["create", "cluster", "-f", "/dev/zero", "--dry-run"]);
    let said = stderr(&endless);
    assert_eq!(endless.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot read spec file /dev/zero")
            && said.contains("it is larger than 4194304 bytes: is it the right file?"),
        "{said}"
    );

    let missing = rafter.run(&[
        "get",
        "clusters",
        "--state",
        "s3://rafter-no-such-bucket/prefix",
    ]);
    let said = stderr(&missing);
    assert_eq!(missing.status.code(), Some(1), "{said}");
    assert!(
        said.contains("S3 answered NoSuchBucket: The specified bucket does not exist; create the bucket rafter-no-such-bucket, or point --state (RAFTER_STATE) at one that exists"),
        "{said}"
    );
    assert!(!said.contains("Error {"), "a debug dump: {said}");
    assert!(!said.contains("aws_request_id"), "a debug dump: {said}");
}

/// Input mistakes get an answer written for people, with the right exit code: an empty spec
/// file (3), nothing given at all (2, a usage error), a file past the YAML parser's limits
/// (3), an S3 prefix with `..` in it (1, taken literally by S3 otherwise).
#[test]
fn input_mistakes_are_said_plainly() {
    let rafter = Rafter::new();
    let directory = tempfile::tempdir().unwrap();
    let empty = directory.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let refused = rafter.run(&[
        "create",
        "cluster",
        "-f",
        empty.to_str().unwrap(),
        "--dry-run",
    ]);
    let said = stderr(&refused);
    assert_eq!(refused.status.code(), Some(3), "{said}");
    assert!(
        said.contains(
            "is empty: it should hold one YAML mapping with apiVersion, kind, metadata and spec"
        ),
        "{said}"
    );

    let nothing = rafter.run(&["create", "cluster"]);
    let said = stderr(&nothing);
    assert_eq!(nothing.status.code(), Some(2), "{said}");
    assert!(said.contains("no spec given"), "{said}");

    let nodes = directory.path().join("nodes.yaml");
    let many = vec!["1"; 300_000].join(",");
    std::fs::write(
        &nodes,
        format!("apiVersion: rafter.dev/v1alpha1\nlist: [{many}]\n"),
    )
    .unwrap();
    let refused = rafter.run(&[
        "create",
        "cluster",
        "-f",
        nodes.to_str().unwrap(),
        "--dry-run",
    ]);
    let said = stderr(&refused);
    assert_eq!(refused.status.code(), Some(3), "{said}");
    assert!(
        said.contains(
            "it is larger or deeper than any cluster spec (the parser's limit on nodes was reached)"
        ),
        "{said}"
    );
    assert!(!said.contains("Nodes {"), "a debug dump: {said}");

    let dotted = rafter.run(&["get", "clusters", "--state", "s3://bucket/a/../b"]);
    let said = stderr(&dotted);
    assert_eq!(dotted.status.code(), Some(1), "{said}");
    assert!(
        said.contains("an S3 prefix may not have `.`, `..` or empty parts"),
        "{said}"
    );
}

/// One cluster whose stored spec is corrupt does not hide the others: `get clusters` prints
/// them, lists it as unreadable, says why on stderr, and exits 1.
#[test]
fn a_corrupt_cluster_is_listed_as_unreadable_among_the_good_ones() {
    let rafter = Rafter::new();
    assert!(rafter.run(&HA).status.success());
    assert!(rafter.run(&EDGE).status.success());
    std::fs::write(
        rafter.state.path().join("edge.example.com/config.yaml"),
        "spec: [this is not a cluster",
    )
    .unwrap();
    let listed = rafter.run(&["get", "clusters"]);
    let (out, said) = (stdout(&listed), stderr(&listed));
    assert_eq!(listed.status.code(), Some(1), "{out}{said}");
    assert!(out.contains("demo.example.com  aws"), "{out}");
    assert!(out.contains("edge.example.com  (unreadable)"), "{out}");
    assert!(
        said.contains("warning: cluster edge.example.com cannot be read"),
        "{said}"
    );
    assert!(
        said.contains("1 of 2 clusters in") && said.contains("cannot be read: edge.example.com"),
        "{said}"
    );
}

/// `rafter completion SHELL` prints a script the shell accepts that knows every command and
/// flag; a shell clap does not know is refused with the ones it does.
#[test]
fn completion_scripts_know_every_command_and_parse_in_their_shell() {
    let rafter = Rafter::new();
    let bash = rafter.run(&["completion", "bash"]);
    assert!(bash.status.success(), "{}", stderr(&bash));
    let script = stdout(&bash);
    for word in [
        "rolling-update",
        "restore",
        "--dns-zone",
        "--instance-group",
    ] {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &script).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(file.path())
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", stderr(&checked));
    // Sourced, it registers the completion function for `rafter`.
    let registered = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p rafter",
            file.path().display()
        ))
        .output()
        .unwrap();
    assert!(
        stdout(&registered).contains("rafter"),
        "{}{}",
        stdout(&registered),
        stderr(&registered)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let output = rafter.run(&["completion", shell]);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        assert!(stdout(&output).contains("rolling-update"), "{shell}");
    }
    let unknown = rafter.run(&["completion", "tcsh"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("bash"), "{}", stderr(&unknown));
}

/// `rafter man --out DIR` writes a page for rafter and for every command, and each renders
/// with groff without a warning.
#[test]
fn manual_pages_cover_every_command_and_render() {
    let rafter = Rafter::new();
    let out = tempfile::tempdir().unwrap();
    let written = rafter.run(&["man", "--out", out.path().to_str().unwrap()]);
    assert!(written.status.success(), "{}", stderr(&written));
    let mut pages: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "rafter.1",
        "rafter-create-cluster.1",
        "rafter-rolling-update-cluster.1",
        "rafter-restore-etcd.1",
        "rafter-completion.1",
    ] {
        assert!(
            pages.contains(&page.to_string()),
            "{page} missing: {pages:?}"
        );
    }
    assert!(!pages.iter().any(|page| page.contains("help")), "{pages:?}");
    let render = |page: &str| {
        let rendered = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww"])
            .arg(out.path().join(page))
            .output()
            .unwrap();
        assert!(rendered.status.success(), "{page}: {}", stderr(&rendered));
        assert!(
            stderr(&rendered).is_empty(),
            "{page}: {}",
            stderr(&rendered)
        );
        stdout(&rendered)
    };
    for page in &pages {
        render(page);
    }
    // Bold and underlined words come overstruck (`X\u{8}X`): read the plain letters.
    let mut text = String::new();
    for character in render("rafter-create-cluster.1").chars() {
        if character == '\u{8}' {
            text.pop();
        } else {
            text.push(character);
        }
    }
    assert!(text.contains("--dns-zone"), "{text}");
}
