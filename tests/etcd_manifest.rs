//! The stacked etcd static pod rafter renders for three control-plane nodes: valid for the
//! cluster's Kubernetes version (`kubernetes-validate --strict`), and real — etcd started with
//! exactly each manifest's command and rafter's certificates forms a healthy TLS quorum.
//!
//! The three "hosts" are loopback addresses 127.0.0.2–4 of this machine. Two adjustments a
//! real host does not need, and nothing else: the certificate and data paths point into a
//! temporary directory, and the loopback-only listeners (127.0.0.1:2379 for local clients,
//! :2381 for health) move to each member's own address, since the members share one loopback.

mod common;

use std::net::IpAddr;
use std::process::{Command, Stdio};

use common::etcd::{Etcdctl, Member, etcd_bin};
use common::tools::venv_bin;
use rafter::bootstrap::etcd::{DATA_DIR, PKI_DIR};
use rafter::bootstrap::{EtcdMember, InitialState, etcd_manifest};
use rafter::pki::leaf::NodeIdentity;
use rafter::pki::{ClusterPki, LeafSpec};
use rafter::spec::versions::DEFAULT_KUBERNETES_VERSION;
use rafter::state::LocalStore;
use serde_json::Value;
use time::OffsetDateTime;

const CLUSTER: &str = "etcd.example.com";

fn cluster() -> rafter::spec::Cluster {
    rafter::spec::Cluster {
        api_version: rafter::spec::API_VERSION.to_string(),
        kind: rafter::spec::KIND.to_string(),
        metadata: rafter::spec::Metadata {
            name: CLUSTER.to_string(),
        },
        spec: rafter::spec::ClusterSpec::default(),
    }
}

fn members() -> Vec<EtcdMember> {
    (2..=4)
        .map(|last| EtcdMember {
            name: format!("cp-{}", last - 1),
            ip: IpAddr::from([127, 0, 0, last]),
        })
        .collect()
}

#[test]
fn the_manifest_is_a_valid_static_pod_for_the_clusters_kubernetes_version() {
    let members = members();
    let dir = tempfile::tempdir().unwrap();
    for member in &members {
        let manifest = etcd_manifest(&cluster(), &members, member, InitialState::New).unwrap();
        let path = dir.path().join(format!("{}.yaml", member.name));
        std::fs::write(&path, &manifest).unwrap();
        let output = Command::new(venv_bin("kubernetes-validate"))
            .args([
                "--strict",
                "-k",
                DEFAULT_KUBERNETES_VERSION,
                path.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{text}\n{manifest}");
        assert!(text.contains("passed for resource pod/etcd"), "{text}");
    }
    // And a manifest with a typo in a field name would not pass: the check can fail.
    let broken = etcd_manifest(&cluster(), &members, &members[0], InitialState::New)
        .unwrap()
        .replace("hostNetwork", "hostNetwrok");
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, broken).unwrap();
    let status = Command::new(venv_bin("kubernetes-validate"))
        .args([
            "--strict",
            "-k",
            DEFAULT_KUBERNETES_VERSION,
            path.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}

/// The container command of a rendered manifest.
fn command_of(manifest: &str) -> Vec<String> {
    let pod: Value = serde_saphyr::from_str(manifest).unwrap();
    pod["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| part.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn etcd_started_with_the_rendered_commands_forms_a_tls_quorum() {
    let state = tempfile::tempdir().unwrap();
    let pki = ClusterPki::load_or_create(
        &LocalStore::new(state.path()),
        CLUSTER,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let members = members();
    let hosts = tempfile::tempdir().unwrap();
    let mut running = Vec::new();
    for member in &members {
        // What the node would hold in /etc/kubernetes/pki/etcd and /var/lib/etcd.
        let root = hosts.path().join(&member.name);
        let pki_dir = root.join("pki");
        std::fs::create_dir_all(&pki_dir).unwrap();
        let node = NodeIdentity {
            hostname: member.name.clone(),
            ips: vec![member.ip],
        };
        std::fs::write(pki_dir.join("ca.crt"), &pki.etcd_ca.cert_pem).unwrap();
        for (file, spec) in [
            ("server", LeafSpec::etcd_server(&node)),
            ("peer", LeafSpec::etcd_peer(&node)),
        ] {
            let issued = pki.etcd_ca.issue(&spec, now).unwrap();
            std::fs::write(pki_dir.join(format!("{file}.crt")), &issued.cert_pem).unwrap();
            std::fs::write(pki_dir.join(format!("{file}.key")), issued.key.expose()).unwrap();
        }
        let manifest = etcd_manifest(&cluster(), &members, member, InitialState::New).unwrap();
        let command = command_of(&manifest);
        assert_eq!(command[0], "etcd");
        let own = member.ip.to_string();
        let args: Vec<String> = command[1..]
            .iter()
            .map(|arg| {
                arg.replace(PKI_DIR, pki_dir.to_str().unwrap())
                    .replace(DATA_DIR, root.join("data").to_str().unwrap())
                    .replace("https://127.0.0.1:2379,", "")
                    .replace("127.0.0.1:2381", &format!("{own}:2381"))
            })
            .collect();
        let child = Command::new(etcd_bin("etcd"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        running.push(Member(child));
    }

    let client = pki
        .etcd_ca
        .issue(&LeafSpec::etcd_client("kube-apiserver-etcd-client"), now)
        .unwrap();
    let client_dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = (
        client_dir.path().join("client.crt"),
        client_dir.path().join("client.key"),
        client_dir.path().join("ca.crt"),
    );
    std::fs::write(&cert, &client.cert_pem).unwrap();
    std::fs::write(&key, client.key.expose()).unwrap();
    std::fs::write(&ca, &pki.etcd_ca.cert_pem).unwrap();
    let etcdctl = Etcdctl {
        endpoints: members
            .iter()
            .map(|member| format!("https://{}:2379", member.ip))
            .collect(),
        ca,
        client: Some((cert, key)),
    };
    let healthy = etcdctl.wait_healthy().await;
    assert_eq!(healthy.matches("is healthy").count(), 3, "{healthy}");
    let (ok, listed) = etcdctl.run(&["member", "list", "-w", "simple"]);
    assert!(ok, "{listed}");
    for member in &members {
        assert!(
            listed.contains(&format!("{}, https://{}:2380", member.name, member.ip)),
            "{listed}"
        );
    }
    let (ok, text) = etcdctl.run(&["put", "/rafter/manifest", "works"]);
    assert!(ok, "{text}");
    // The path the liveness probe asks answers on the metrics port.
    let probe = "/health?exclude=NOSPACE&serializable=true";
    let manifest = etcd_manifest(&cluster(), &members, &members[0], InitialState::New).unwrap();
    assert!(manifest.contains(probe), "{manifest}");
    let mut stream = std::net::TcpStream::connect((members[0].ip, 2381)).unwrap();
    std::io::Write::write_all(
        &mut stream,
        format!("GET {probe} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert!(answer.contains(r#""health":"true""#), "{answer}");
    drop(running);
}
