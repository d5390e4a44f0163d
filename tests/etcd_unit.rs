//! The stacked etcd member rafter renders for three control-plane nodes: a unit systemd
//! accepts (`systemd-analyze verify`), and real — etcd started with exactly each unit's
//! command and first-start environment and rafter's certificates forms a healthy TLS quorum.
//!
//! The three "hosts" are loopback addresses 127.0.0.2–4 of this machine. Two adjustments a
//! real host does not need, and nothing else: the certificate and data paths point into a
//! temporary directory, and the loopback-only listeners (127.0.0.1:2379 for local clients,
//! :2381 for health) move to each member's own address, since the members share one loopback.

mod common;

use std::net::IpAddr;
use std::process::{Command, Stdio};

use common::etcd::{Etcdctl, Member, etcd_bin};
use rafter::bootstrap::etcd::{DATA_DIR, INITIAL_CLUSTER_FILE, INSTALL_DIR, PKI_DIR};
use rafter::bootstrap::{EtcdFiles, EtcdMember, InitialState, etcd_files};
use rafter::pki::leaf::NodeIdentity;
use rafter::pki::{ClusterPki, LeafSpec};
use rafter::state::LocalStore;
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
        .map(|last| EtcdMember::at_ip(&format!("cp-{}", last - 1), IpAddr::from([127, 0, 0, last])))
        .collect()
}

/// The files of the first member, its unit's `ExecStart` as arguments and its first-start
/// environment as `(name, value)` pairs.
fn rendered(
    members: &[EtcdMember],
    index: usize,
) -> (EtcdFiles, Vec<String>, Vec<(String, String)>) {
    let files = etcd_files(&cluster(), members, &members[index], InitialState::New).unwrap();
    let exec = files
        .unit
        .replace("\\\n", " ")
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart=").map(str::to_string))
        .expect("an ExecStart line");
    let args = exec.split_whitespace().map(str::to_string).collect();
    let env = files
        .initial_cluster
        .as_deref()
        .expect("a new member's first-start file")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap();
            (name.to_string(), value.to_string())
        })
        .collect();
    (files, args, env)
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let members = members();
    let (files, args, _) = rendered(&members, 0);
    assert_eq!(args[0], format!("{INSTALL_DIR}/etcd"));
    // systemd checks the binary exists: point it at the test bed's etcd.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("etcd.service");
    let env = dir.path().join("initial-cluster.env");
    std::fs::write(&env, files.initial_cluster.as_deref().unwrap()).unwrap();
    let patched = files
        .unit
        .replace(&args[0], etcd_bin("etcd").to_str().unwrap())
        .replace(INITIAL_CLUSTER_FILE, env.to_str().unwrap());
    std::fs::write(&unit, &patched).unwrap();
    let verify = |path: &std::path::Path| {
        Command::new("systemd-analyze")
            .args(["verify", "--man=no", path.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let output = verify(&unit);
    let text = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{text}\n{patched}");
    assert!(!text.contains("etcd.service"), "{text}");
    // A misspelt directive is reported: the check can fail.
    std::fs::write(&unit, patched.replace("RestartSec=", "RestartSecs=")).unwrap();
    let output = verify(&unit);
    let text = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(text.contains("RestartSecs"), "{text}");
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
            ips: vec![member.ip().unwrap()],
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
        let index = members.iter().position(|other| other == member).unwrap();
        let (_, command, env) = rendered(&members, index);
        let own = member.ip().unwrap().to_string();
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
            .envs(env)
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
            .map(|member| format!("https://{}:2379", member.ip().unwrap()))
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
            listed.contains(&format!(
                "{}, https://{}:2380",
                member.name,
                member.ip().unwrap()
            )),
            "{listed}"
        );
    }
    let (ok, text) = etcdctl.run(&["put", "/rafter/unit", "works"]);
    assert!(ok, "{text}");
    // The health endpoint on the metrics port answers.
    let probe = "/health?exclude=NOSPACE&serializable=true";
    let mut stream = std::net::TcpStream::connect((members[0].ip().unwrap(), 2381)).unwrap();
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

#[test]
fn an_established_member_gets_no_first_start_file_and_the_same_unit() {
    let members = members();
    let new = etcd_files(&cluster(), &members, &members[1], InitialState::New).unwrap();
    let established =
        etcd_files(&cluster(), &members, &members[1], InitialState::Established).unwrap();
    assert!(new.initial_cluster.is_some());
    assert_eq!(established.initial_cluster, None);
    // The unit does not change: a member is never restarted for its membership's history.
    assert_eq!(established.unit, new.unit);
}
