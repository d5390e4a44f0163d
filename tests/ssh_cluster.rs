//! `provider: ssh` end to end on the test bed: three control-plane hosts and a worker
//! (`scripts/testbed.sh`, real sshd and systemd), rafter's own binary, real etcd and containerd.
//! A new cluster forms a TLS etcd quorum with rafter's PKI; a rerun changes nothing; a host
//! powered off is reported while etcd keeps quorum; brought back, a rerun repairs what broke.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::testbed::{DEFAULT_HOSTS, Testbed};

const CLUSTER: &str = "bare.example.com";
const CONTROL_PLANE: [&str; 3] = ["cp-1", "cp-2", "cp-3"];

struct Rafter {
    state: tempfile::TempDir,
}

impl Rafter {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rafter"))
            .args(args)
            .env("RAFTER_STATE", self.state.path())
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .unwrap()
    }
}

/// What a run printed on stderr, echoed for the test log.
fn stderr(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("--- rafter said:\n{text}");
    text
}

/// The ha-ssh profile's hosts with the test bed's key and known_hosts, and every asset from
/// the local source.
fn overlay(testbed: &Testbed, assets: &Path) -> String {
    format!(
        "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: {CLUSTER}\nspec:\n  ssh:\n    user: root\n    privateKeyFile: {}\n    knownHostsFile: {}\n{}",
        testbed.key().display(),
        testbed.known_hosts().display(),
        common::host_assets::build(assets)
    )
}

const ETCDCTL: &str = "/usr/local/lib/rafter/etcdctl";

fn endpoints() -> String {
    ["10.250.0.11", "10.250.0.12", "10.250.0.13"]
        .map(|ip| format!("https://{ip}:2379"))
        .join(",")
}

/// When each control-plane host's etcd last started (systemd's own record).
fn etcd_started(testbed: &Testbed) -> Vec<String> {
    CONTROL_PLANE
        .iter()
        .map(|host| {
            testbed.ssh_ok(
                host,
                "systemctl show etcd --property=ActiveEnterTimestampMonotonic",
            )
        })
        .collect()
}

#[test]
fn a_bare_host_cluster_forms_converges_and_survives_a_host_down() {
    let testbed = Testbed::fresh(&DEFAULT_HOSTS);
    let rafter = Rafter {
        state: tempfile::tempdir().unwrap(),
    };
    let assets = tempfile::tempdir().unwrap();
    let spec = rafter.state.path().join("overlay.yaml");
    std::fs::write(&spec, overlay(&testbed, assets.path())).unwrap();

    // No add-ons: they need a running API server, which cannot run here (README).
    let create = rafter.run(&[
        "create",
        "cluster",
        "--profile",
        "ha-ssh",
        "-f",
        spec.to_str().unwrap(),
        "--yes",
        "--skip-phases",
        "addons",
    ]);
    let said = stderr(&create);
    assert!(create.status.success(), "{said}");
    assert!(
        said.contains("SSH connections opened: 4 for 4 reachable host(s)"),
        "{said}"
    );

    // A 3-member etcd with TLS peer and client auth, from rafter's PKI.
    let members = testbed.ssh_ok("cp-1", &format!("{ETCDCTL} member list -w simple"));
    for (name, ip) in &DEFAULT_HOSTS[..3] {
        assert!(
            members.contains(&format!(
                "started, {name}, https://{ip}:2380, https://{ip}:2379"
            )),
            "{members}"
        );
    }
    let health = testbed.ssh_ok(
        "cp-3",
        &format!("{ETCDCTL} endpoint health --endpoints={}", endpoints()),
    );
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    let anonymous = testbed.ssh(
        "cp-2",
        "/opt/etcd/etcdctl --endpoints=https://10.250.0.12:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --command-timeout=3s member list",
    );
    assert!(
        !anonymous.status.success(),
        "a client without a certificate is refused"
    );

    // containerd running and answering, and every unit in place, on every host.
    for (host, _) in DEFAULT_HOSTS {
        let version = testbed.ssh_ok(host, "/usr/local/bin/ctr version");
        assert!(version.contains("Server:"), "{host}: {version}");
        let units = testbed.ssh_ok(
            host,
            "systemctl is-enabled containerd kubelet; systemctl is-active containerd kubelet",
        );
        assert_eq!(
            units.lines().collect::<Vec<_>>(),
            ["enabled", "enabled", "active", "active"],
            "{host}"
        );
        let key_mode = testbed.ssh_ok(host, "stat -c %a /etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf 2>/dev/null || true");
        assert!(
            key_mode.lines().all(|mode| mode == "600"),
            "{host}: {key_mode}"
        );
    }
    for host in CONTROL_PLANE {
        assert_eq!(
            testbed.ssh_ok(host, "systemctl is-active etcd").trim(),
            "active"
        );
        assert_eq!(
            testbed
                .ssh_ok(host, "stat -c %a /etc/kubernetes/pki/etcd/peer.key")
                .trim(),
            "600"
        );
    }

    // A second run changes nothing, and restarts nothing.
    let started = etcd_started(&testbed);
    let again = rafter.run(&[
        "update",
        "cluster",
        CLUSTER,
        "--yes",
        "--skip-phases",
        "addons",
    ]);
    let said = stderr(&again);
    assert!(again.status.success(), "{said}");
    assert!(said.contains("Nothing to do"), "{said}");
    assert_eq!(
        etcd_started(&testbed),
        started,
        "no etcd member was restarted"
    );

    // One control-plane host powered off: etcd still takes writes; the rerun names the host,
    // converges the others and keeps quorum.
    testbed.stop("cp-2");
    testbed.ssh_ok(
        "cp-1",
        &format!("{ETCDCTL} put /rafter/test still-writable"),
    );
    testbed.ssh_ok("worker-1", "systemctl stop containerd");
    testbed.ssh_ok("cp-3", "rm /etc/crictl.yaml");
    let degraded = rafter.run(&[
        "update",
        "cluster",
        CLUSTER,
        "--yes",
        "--skip-phases",
        "addons",
    ]);
    let said = stderr(&degraded);
    assert_eq!(degraded.status.code(), Some(1), "{said}");
    assert!(said.contains("cp-2: UNREACHABLE"), "{said}");
    assert!(said.contains("cp-2 could not be reached"), "{said}");
    assert_eq!(
        testbed
            .ssh_ok("worker-1", "systemctl is-active containerd")
            .trim(),
        "active"
    );
    testbed.ssh_ok("cp-3", "test -f /etc/crictl.yaml");
    let value = testbed.ssh_ok(
        "cp-3",
        &format!("{ETCDCTL} get /rafter/test --print-value-only"),
    );
    assert_eq!(value.trim(), "still-writable");

    // Back again: it rejoins on its data, and a rerun finds everything right.
    testbed.start("cp-2");
    let repaired = rafter.run(&[
        "update",
        "cluster",
        CLUSTER,
        "--yes",
        "--skip-phases",
        "addons",
    ]);
    let said = stderr(&repaired);
    assert!(repaired.status.success(), "{said}");
    let health = testbed.ssh_ok(
        "cp-1",
        &format!("{ETCDCTL} endpoint health --endpoints={}", endpoints()),
    );
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
}
