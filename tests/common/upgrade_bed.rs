//! The upgrade test bed, shared by `tests/upgrade.rs` and `benches/upgrade.rs`: a cluster of
//! three control-plane hosts and a worker (u-1..u-4, 10.250.0.71-74), the rafter runner,
//! and a writer on u-1 putting numbered keys into etcd through a whole upgrade.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::host_assets::{EtcdRelease, build_release};
use super::testbed::Testbed;

pub const CLUSTER: &str = "upgrade.example.com";
pub const CONTROL_PLANE: [(&str, &str); 3] = [
    ("u-1", "10.250.0.71"),
    ("u-2", "10.250.0.72"),
    ("u-3", "10.250.0.73"),
];
pub const WORKER: (&str, &str) = ("u-4", "10.250.0.74");
pub const ETCDCTL: &str = "/usr/local/lib/rafter/etcdctl";
pub const FROM_KUBERNETES: &str = "1.34.2";
pub const TO_KUBERNETES: &str = "1.35.0";

pub struct Rafter {
    pub state: tempfile::TempDir,
}

impl Rafter {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rafter"));
        command
            .args(args)
            .env("RAFTER_STATE", self.state.path())
            .env_remove("SSH_AUTH_SOCK");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let output = self.command(args).output().unwrap();
        eprintln!(
            "--- rafter {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    pub fn ok(&self, args: &[&str]) -> (String, String) {
        let output = self.run(args);
        assert!(output.status.success(), "rafter {args:?} failed");
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    pub fn journal(&self) -> Option<serde_json::Value> {
        let path = self
            .state
            .path()
            .join(CLUSTER)
            .join("operations/upgrade-cluster.json");
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Starts rafter with `args` and kills it once the journal of the upgrade whose subject
    /// contains `subject` records `steps` finished steps; returns that journal.
    pub fn kill_after(&self, args: &[&str], subject: &str, steps: usize) -> serde_json::Value {
        let log = self.state.path().join("killed.log");
        let mut child = self
            .command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        loop {
            let journal = self.journal().filter(|journal| {
                journal["subject"]
                    .as_str()
                    .is_some_and(|said| said.contains(subject))
            });
            if let Some(journal) = journal
                && journal["done"].as_array().unwrap().len() >= steps
            {
                child.kill().unwrap();
                child.wait().unwrap();
                return journal;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "the upgrade ended ({status}) before it could be killed: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(started.elapsed() < Duration::from_secs(300));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn write_spec(&self, file: &str, content: &str) -> String {
        let path = self.state.path().join(file);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }
}

pub fn spec(testbed: &Testbed, kubernetes: &str, etcd: EtcdRelease, assets: &str) -> String {
    let mut hosts: String = CONTROL_PLANE
        .iter()
        .map(|(name, ip)| format!("    - {{ name: {name}, address: {ip}, role: controlPlane }}\n"))
        .collect();
    hosts.push_str(&format!(
        "    - {{ name: {}, address: {}, role: worker }}\n",
        WORKER.0, WORKER.1
    ));
    format!(
        "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: {CLUSTER}\nspec:\n  provider: ssh\n  apiServer:\n    endpoint: 10.250.0.71:16443\n  kubernetesVersion: {kubernetes}\n  etcd:\n    version: {}\n  ssh:\n    user: root\n    privateKeyFile: {}\n    knownHostsFile: {}\n  hosts:\n{hosts}{assets}",
        etcd.version(),
        testbed.key().display(),
        testbed.known_hosts().display(),
    )
}

pub fn endpoints() -> String {
    CONTROL_PLANE
        .iter()
        .map(|(_, ip)| format!("https://{ip}:2379"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Each member's etcd version, as the member itself reports it.
pub fn versions(testbed: &Testbed) -> Vec<String> {
    CONTROL_PLANE
        .iter()
        .map(|(name, _)| {
            let json = testbed.ssh_ok(name, &format!("{ETCDCTL} endpoint status -w json"));
            let value: serde_json::Value = serde_json::from_str(&json).unwrap();
            value[0]["Status"]["version"].as_str().unwrap().to_string()
        })
        .collect()
}

/// A writer on u-1 putting numbered keys through every member it can reach until
/// `/root/writer.stop` appears; logs `TIME ok|fail N REVISION` per put.
pub fn start_writer(testbed: &Testbed) {
    let script = format!(
        "i=0; while [ ! -e /root/writer.stop ]; do i=$((i+1)); \
         if out=$({ETCDCTL} --endpoints={endpoints} --dial-timeout=1s --command-timeout=2s put -w json writer/$i value-$i 2>/dev/null); then \
           rev=$(printf '%s' \"$out\" | sed -n 's/.*\"revision\":\\([0-9]*\\).*/\\1/p'); echo \"$(date +%s.%N) ok $i $rev\"; \
         else echo \"$(date +%s.%N) fail $i 0\"; fi; done > /root/writer.log",
        endpoints = endpoints()
    );
    let encoded = aws_smithy_types::base64::encode(script.as_bytes());
    testbed.ssh_ok(
        "u-1",
        &format!(
            "rm -f /root/writer.stop /root/writer.log; echo {encoded} | base64 -d > /root/writer.sh && systemd-run --unit=rafter-test-writer bash /root/writer.sh"
        ),
    );
}

/// Stops the writer; returns (acknowledged keys with their revisions, longest gap between
/// two acknowledged writes, failed puts).
pub fn stop_writer(testbed: &Testbed) -> (Vec<(u64, i64)>, Duration, usize) {
    testbed.ssh_ok(
        "u-1",
        "touch /root/writer.stop; while systemctl is-active --quiet rafter-test-writer; do sleep 0.2; done",
    );
    let log = testbed.ssh_ok("u-1", "cat /root/writer.log");
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    let mut last_ok: Option<f64> = None;
    let mut longest = 0f64;
    for line in log.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [at, outcome, key, revision] = fields.as_slice() else {
            continue;
        };
        let at: f64 = at.parse().unwrap();
        if *outcome == "ok" {
            acknowledged.push((key.parse().unwrap(), revision.parse().unwrap()));
            if let Some(previous) = last_ok {
                longest = longest.max(at - previous);
            }
            last_ok = Some(at);
        } else {
            failed += 1;
        }
    }
    (acknowledged, Duration::from_secs_f64(longest), failed)
}

/// The writer's keys and values as the member at `ip` serves them.
pub fn writer_keys(testbed: &Testbed, ip: &str) -> BTreeMap<u64, String> {
    let out = testbed.ssh_ok(
        "u-1",
        &format!("{ETCDCTL} --endpoints=https://{ip}:2379 get writer/ --prefix --consistency=s"),
    );
    let lines: Vec<&str> = out.lines().collect();
    lines
        .chunks(2)
        .filter_map(|pair| {
            let key = pair.first()?.strip_prefix("writer/")?.parse().ok()?;
            Some((key, pair.get(1)?.to_string()))
        })
        .collect()
}

/// Periods (start, end, in seconds of the shared realtime clock) when `host`'s etcd unit
/// was not running, from systemd's journal.
pub fn etcd_down_periods(testbed: &Testbed, host: &str) -> Vec<(f64, f64)> {
    let log = testbed.ssh_ok(
        host,
        "journalctl -u etcd -o short-unix --no-pager | grep -E 'systemd\\[1\\]: (Stopping|Stopped|Started|etcd.service: Main process exited)' || true",
    );
    let mut periods = Vec::new();
    let mut down_since: Option<f64> = None;
    for line in log.lines() {
        let Some(at) = line
            .split_whitespace()
            .next()
            .and_then(|at| at.parse::<f64>().ok())
        else {
            continue;
        };
        if line.contains("Started") {
            if let Some(since) = down_since.take() {
                periods.push((since, at));
            }
        } else if down_since.is_none() {
            down_since = Some(at);
        }
    }
    periods
}

/// `path`'s modification time on `host`, in seconds of the realtime clock.
pub fn mtime(testbed: &Testbed, host: &str, path: &str) -> f64 {
    testbed
        .ssh_ok(host, &format!("stat -c %.9Y {path}"))
        .trim()
        .parse()
        .unwrap()
}

/// When `host`'s kubelet last started, in seconds of the realtime clock.
pub fn kubelet_started(testbed: &Testbed, host: &str) -> f64 {
    let shown = testbed.ssh_ok(
        host,
        "echo $(systemctl show kubelet -p ActiveEnterTimestampMonotonic --value) $(date +%s%N) $(awk '{print $1}' /proc/uptime)",
    );
    let fields: Vec<f64> = shown
        .split_whitespace()
        .map(|field| field.parse().unwrap())
        .collect();
    let [monotonic_us, now_ns, uptime] = fields.as_slice() else {
        panic!("{shown}");
    };
    now_ns / 1e9 - uptime + monotonic_us / 1e6
}

/// Waits until every member answers healthy (`validate cluster` would also ask the API
/// server, which cannot run here).
pub fn wait_etcd_healthy(testbed: &Testbed) {
    let started = Instant::now();
    while !testbed
        .ssh(
            "u-1",
            &format!("{ETCDCTL} --endpoints={} endpoint health", endpoints()),
        )
        .status
        .success()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "etcd is not healthy"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A cluster rafter created on the bed (etcd 3.4.23, Kubernetes [`FROM_KUBERNETES`]), and
/// the specs of its two upgrades: etcd to 3.5.1, then Kubernetes to [`TO_KUBERNETES`].
pub struct Created {
    pub testbed: Testbed,
    pub rafter: Rafter,
    pub etcd_spec: String,
    pub kubernetes_spec: String,
    /// Where the specs' `file://` assets are: bind it (not `..`) to keep them.
    pub assets: tempfile::TempDir,
}

pub fn create() -> Created {
    let mut hosts = CONTROL_PLANE.to_vec();
    hosts.push(WORKER);
    let testbed = Testbed::fresh(&hosts);
    let rafter = Rafter {
        state: tempfile::tempdir().unwrap(),
    };
    let assets = tempfile::tempdir().unwrap();
    let release = |etcd, kubernetes| {
        let files = build_release(assets.path(), etcd, kubernetes);
        spec(&testbed, kubernetes, etcd, &files)
    };
    let created = rafter.write_spec(
        "created.yaml",
        &release(EtcdRelease::Debian, FROM_KUBERNETES),
    );
    let etcd_spec = rafter.write_spec("etcd.yaml", &release(EtcdRelease::Distro, FROM_KUBERNETES));
    let kubernetes_spec = rafter.write_spec(
        "kubernetes.yaml",
        &release(EtcdRelease::Distro, TO_KUBERNETES),
    );
    rafter.ok(&[
        "create",
        "cluster",
        "-f",
        &created,
        "--yes",
        "--skip-phases",
        "addons",
    ]);
    Created {
        testbed,
        rafter,
        etcd_spec,
        kubernetes_spec,
        assets,
    }
}
