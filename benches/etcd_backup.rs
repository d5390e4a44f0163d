//! etcd backup and restore on the bare-host test bed (`scripts/testbed.sh`): a one-member
//! cluster made by rafter is filled with 10k and 100k keys of 1 KiB (1M with
//! `RAFTER_BENCH_ETCD_KEYS=10000,100000,1000000`), and at each size rafter's
//! `backup etcd --no-verify` (leader lookup, snapshot, transfer over SSH, digest, store),
//! `backup etcd --verify` (a restore into a scratch etcd on the host, served and counted) and
//! `restore etcd --yes` (the whole procedure, journal and health gate included) are timed
//! against etcd's own `etcdutl snapshot restore` of the same snapshot on the same host.
//! Reports sizes, times and the ratio restore/etcdutl.
//!
//! Run as root: `scripts/testbed.sh install && cargo bench --bench etcd_backup`. Host `e-1`
//! (10.250.0.61) is wiped first.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::testbed::Testbed;

const CLUSTER: &str = "backup-bench.example.com";
const HOST: (&str, &str) = ("e-1", "10.250.0.61");

fn spec(testbed: &Testbed, assets: &str) -> String {
    format!(
        "apiVersion: rafter.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: {CLUSTER}\nspec:\n  provider: ssh\n  apiServer:\n    endpoint: {}:6443\n  ssh:\n    user: root\n    privateKeyFile: {}\n    knownHostsFile: {}\n  hosts:\n    - {{ name: {}, address: {}, role: controlPlane }}\n{assets}",
        HOST.1,
        testbed.key().display(),
        testbed.known_hosts().display(),
        HOST.0,
        HOST.1,
    )
}

/// Runs rafter; its stdout and how long it took.
fn rafter(state: &Path, args: &[&str]) -> (String, Duration) {
    let started = Instant::now();
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
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        started.elapsed(),
    )
}

/// Fills the member up to `keys` keys of 1 KiB with transactions of 128 puts (etcd's default
/// limit) over one keep-alive HTTPS connection to its gRPC gateway, from the host itself.
fn fill(testbed: &Testbed, from: usize, keys: usize) {
    let script = format!(
        r#"python3 - <<'PY'
import base64, http.client, json, ssl
context = ssl.create_default_context(cafile="/etc/kubernetes/pki/etcd/ca.crt")
context.load_cert_chain("/etc/kubernetes/pki/etcd/healthcheck-client.crt", "/etc/kubernetes/pki/etcd/healthcheck-client.key")
connection = http.client.HTTPSConnection("127.0.0.1", 2379, context=context)
value = base64.b64encode(b"v" * 1024).decode()
for start in range({from}, {keys}, 128):
    ops = [{{"requestPut": {{"key": base64.b64encode(b"/bench/%09d" % i).decode(), "value": value}}}}
           for i in range(start, min(start + 128, {keys}))]
    connection.request("POST", "/v3/kv/txn", json.dumps({{"success": ops}}), {{"Content-Type": "application/json"}})
    answer = connection.getresponse()
    body = answer.read()
    assert answer.status == 200, body
PY"#
    );
    testbed.ssh_ok(HOST.0, &script);
}

/// etcd's own restore of a snapshot of the member, on the host: seconds, as `date` measures.
fn etcdutl_restore(testbed: &Testbed) -> Duration {
    let said = testbed.ssh_ok(
        HOST.0,
        "set -e; rm -rf /var/tmp/bench-restore /var/tmp/bench.db; \
         /usr/local/lib/rafter/etcdctl --command-timeout=10m snapshot save /var/tmp/bench.db >/dev/null; \
         start=$(date +%s%N); \
         /opt/etcd/etcdutl snapshot restore /var/tmp/bench.db --data-dir /var/tmp/bench-restore >/dev/null 2>&1; \
         end=$(date +%s%N); rm -rf /var/tmp/bench-restore /var/tmp/bench.db; echo $(( (end - start) / 1000000 ))",
    );
    Duration::from_millis(said.trim().parse().unwrap())
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("RAFTER_BENCH_ETCD_KEYS")
        .unwrap_or_else(|_| "10000,100000".to_string())
        .split(',')
        .map(|size| {
            size.trim()
                .parse()
                .expect("RAFTER_BENCH_ETCD_KEYS: whole numbers")
        })
        .collect();
    let testbed = Testbed::fresh(&[HOST]);
    let state = tempfile::tempdir().unwrap();
    let assets = tempfile::tempdir().unwrap();
    let file = state.path().join("spec.yaml");
    std::fs::write(
        &file,
        spec(&testbed, &common::host_assets::build(assets.path())),
    )
    .unwrap();
    rafter(
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
    println!(
        "{:>9}  {:>9}  {:>10}  {:>10}  {:>10}  {:>10}  {:>7}",
        "keys", "snapshot", "backup", "verify", "restore", "etcdutl", "ratio"
    );
    let mut filled = 0;
    for keys in sizes {
        fill(&testbed, filled, keys);
        filled = keys;
        let (id, backup) = rafter(state.path(), &["backup", "etcd", CLUSTER, "--no-verify"]);
        let id = id.trim().to_string();
        let (_, verify) = rafter(state.path(), &["backup", "etcd", CLUSTER, "--verify", &id]);
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                state
                    .path()
                    .join(CLUSTER)
                    .join("backups/etcd")
                    .join(&id)
                    .join("backup.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let etcdutl = etcdutl_restore(&testbed);
        let (_, restore) = rafter(
            state.path(),
            &["restore", "etcd", CLUSTER, "--from", &id, "--yes"],
        );
        println!(
            "{:>9}  {:>7}MB  {:>9.1}s  {:>9.1}s  {:>9.1}s  {:>9.1}s  {:>6.1}x",
            keys,
            record["size"].as_u64().unwrap() / 1_000_000,
            backup.as_secs_f64(),
            verify.as_secs_f64(),
            restore.as_secs_f64(),
            etcdutl.as_secs_f64(),
            restore.as_secs_f64() / etcdutl.as_secs_f64().max(0.001)
        );
    }
}
