//! Bootstrap time over SSH on the bare-host test bed (`scripts/testbed.sh`): a cluster of 1,
//! 3 and 6 fresh hosts (one control-plane host, the rest workers) created by rafter, against
//! the same pushes and commands done by a plain `ssh`/`scp` loop, host after host, a new
//! connection per command (what a shell script without ControlMaster does). Reports wall
//! times, the ratio t6/t1 (issue 5's target: at most 1.5 for rafter), and SSH logins per host
//! as sshd counted them (target: one).
//!
//! Run as root: `scripts/testbed.sh install && cargo bench --bench ssh_bootstrap`. Takes a few
//! minutes; hosts `b-1`…`b-6` (10.250.0.41–46) are wiped before each measurement.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::testbed::Testbed;

const CLUSTER: &str = "bench.example.com";

fn hosts(count: usize) -> Vec<(String, String)> {
    (1..=count)
        .map(|index| (format!("b-{index}"), format!("10.250.0.{}", 40 + index)))
        .collect()
}

fn fresh(hosts: &[(String, String)]) -> Testbed {
    let pairs: Vec<(&str, &str)> = hosts
        .iter()
        .map(|(name, ip)| (name.as_str(), ip.as_str()))
        .collect();
    Testbed::fresh(&pairs)
}

fn spec(testbed: &Testbed, assets: &str, hosts: &[(String, String)]) -> String {
    let listed: String = hosts
        .iter()
        .enumerate()
        .map(|(index, (name, ip))| {
            let role = if index == 0 { "controlPlane" } else { "worker" };
            format!("    - {{ name: {name}, address: {ip}, role: {role} }}\n")
        })
        .collect();
    format!(
        "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: {CLUSTER}\nspec:\n  provider: ssh\n  ssh:\n    user: root\n    privateKeyFile: {}\n    knownHostsFile: {}\n  hosts:\n{listed}{assets}",
        testbed.key().display(),
        testbed.known_hosts().display(),
    )
}

/// Runs rafter; returns its `Phases: …` summary line, if it printed one.
fn rafter(state: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_rafter"))
        .args(args)
        .env("RAFTER_STATE", state)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("run rafter");
    assert!(
        output.status.success(),
        "rafter {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .find(|line| line.starts_with("Phases: "))
        .unwrap_or_default()
        .to_string()
}

/// SSH logins each host's sshd accepted since it booted (the asking login included).
fn logins(testbed: &Testbed, hosts: &[(String, String)]) -> Vec<u32> {
    hosts
        .iter()
        .map(|(name, _)| {
            testbed
                .ssh_ok(
                    name,
                    "journalctl -u ssh --no-pager -o cat | grep -c 'Accepted publickey' || true",
                )
                .trim()
                .parse::<u32>()
                .unwrap_or(0)
        })
        .collect()
}

/// Logins between two counts, less the second count's own.
fn during(before: &[u32], after: &[u32]) -> Vec<u32> {
    before
        .iter()
        .zip(after)
        .map(|(before, after)| after.saturating_sub(before + 1))
        .collect()
}

/// rafter's run: create with --yes; its time and phase summary.
fn with_rafter(testbed: &Testbed, assets: &str, hosts: &[(String, String)]) -> (Duration, String) {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("spec.yaml");
    std::fs::write(&file, spec(testbed, assets, hosts)).unwrap();
    let started = Instant::now();
    let phases = rafter(
        state.path(),
        &[
            "create",
            "cluster",
            "-f",
            file.to_str().unwrap(),
            "--yes",
            "--skip-phases",
            "addons",
        ],
    );
    (started.elapsed(), phases)
}

/// The same pushes and commands as a shell loop would do them: host after host, `scp` for
/// each file and `ssh` for each command, each a new connection.
fn with_ssh_loop(testbed: &Testbed, assets_yaml: &str, hosts: &[(String, String)]) -> Duration {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("spec.yaml");
    std::fs::write(&file, spec(testbed, assets_yaml, hosts)).unwrap();
    rafter(
        state.path(),
        &["create", "cluster", "-f", file.to_str().unwrap()],
    );
    // The local assets, as `file://<path>` + digest pairs from the spec overlay.
    let assets: Vec<(String, String)> = assets_yaml
        .lines()
        .filter_map(|line| line.trim().strip_prefix("url: file://").map(str::to_string))
        .zip(assets_yaml.lines().filter_map(|line| {
            line.trim()
                .strip_prefix("sha256: { amd64: ")
                .and_then(|rest| rest.strip_suffix(" }"))
                .map(str::to_string)
        }))
        .collect();
    let key = testbed.key();
    let known_hosts = format!("UserKnownHostsFile={}", testbed.known_hosts().display());
    let ssh_options = ["-q", "-o", "BatchMode=yes", "-o", &known_hosts, "-i"];
    let ssh = |ip: &str, command: &str| {
        let status = Command::new("ssh")
            .args(ssh_options)
            .arg(&key)
            .arg(format!("root@{ip}"))
            .arg(command)
            .status()
            .unwrap();
        assert!(status.success(), "ssh {ip} {command}");
    };
    let scp = |ip: &str, local: &str, remote: &str| {
        let status = Command::new("scp")
            .args(ssh_options)
            .arg(&key)
            .arg(local)
            .arg(format!("root@{ip}:{remote}"))
            .status()
            .unwrap();
        assert!(status.success(), "scp {local} {ip}:{remote}");
    };
    // Bundles are rendered before the clock starts: rafter's time includes its rendering.
    let bundles: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(index, (name, _))| {
            let out = state.path().join(name);
            let role = if index == 0 {
                "control-plane"
            } else {
                "worker"
            };
            rafter(
                state.path(),
                &[
                    "export",
                    "bootstrap",
                    CLUSTER,
                    "--role",
                    role,
                    "--node",
                    name,
                    "--out",
                    out.to_str().unwrap(),
                    "--bundle",
                ],
            );
            out.join("bundle.sh").to_string_lossy().into_owned()
        })
        .collect();
    let started = Instant::now();
    for (index, ((_, ip), bundle)) in hosts.iter().zip(&bundles).enumerate() {
        ssh(ip, "mkdir -p /var/cache/rafter/assets");
        for (path, sha256) in &assets {
            let name = Path::new(path).file_name().unwrap().to_string_lossy();
            scp(
                ip,
                path,
                &format!("/var/cache/rafter/assets/{sha256}-{name}"),
            );
        }
        scp(ip, bundle, "/root/bundle.sh");
        ssh(ip, "bash /root/bundle.sh --files-only");
        let steps =
            "RAFTER_ASSET_CACHE=/var/cache/rafter/assets /usr/local/lib/rafter/bootstrap.sh";
        ssh(ip, &format!("{steps} preflight kernel assets containerd"));
        if index == 0 {
            ssh(ip, &format!("{steps} etcd"));
            ssh(
                ip,
                "until /usr/local/lib/rafter/etcdctl endpoint health >/dev/null 2>&1; do sleep 0.5; done",
            );
        }
        ssh(ip, &format!("{steps} kubelet"));
    }
    started.elapsed()
}

fn main() {
    let assets_dir = tempfile::tempdir().unwrap();
    let assets = common::host_assets::build(assets_dir.path());
    let mut rows = Vec::new();
    for count in [1, 3, 6] {
        let hosts = hosts(count);
        // Logins are counted by sshd: those of the run are the ones after a first count
        // (which itself logs in once) and before a second one.
        let testbed = fresh(&hosts);
        let before = logins(&testbed, &hosts);
        let (took, phases) = with_rafter(&testbed, &assets, &hosts);
        let rafter_logins = during(&before, &logins(&testbed, &hosts));
        let testbed = fresh(&hosts);
        let before = logins(&testbed, &hosts);
        let looped = with_ssh_loop(&testbed, &assets, &hosts);
        let loop_logins = during(&before, &logins(&testbed, &hosts));
        println!(
            "{count} host(s): rafter {:>6.2}s, logins per host {:?} | ssh/scp loop {:>6.2}s, logins per host {:?}\n  rafter {phases}",
            took.as_secs_f64(),
            rafter_logins,
            looped.as_secs_f64(),
            loop_logins
        );
        rows.push((count, took, looped));
    }
    let ratio = |pick: fn(&(usize, Duration, Duration)) -> Duration| {
        pick(&rows[2]).as_secs_f64() / pick(&rows[0]).as_secs_f64()
    };
    println!(
        "t6/t1: rafter {:.2} (target <= 1.5), ssh/scp loop {:.2}",
        ratio(|row| row.1),
        ratio(|row| row.2)
    );
    println!(
        "6 hosts: rafter {:.1}x faster than the loop",
        rows[2].2.as_secs_f64() / rows[2].1.as_secs_f64()
    );
    let testbed = Testbed::open();
    for (name, _) in hosts(6) {
        testbed.stop(&name);
    }
}
