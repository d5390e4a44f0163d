//! The PKI against real tools: every certificate verifies against its own CA with
//! `openssl verify` (and not against another), carries the names and usages kubeadm gives
//! it, is valid as long as kubeadm's; the authorities are made once and kept in the state
//! store (0600, never printed); and three etcd members given rafter's certificates form a
//! healthy TLS quorum with peer and client certificate auth.

mod common;

use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::etcd::{Etcdctl, Member, etcd_bin};
use rafter::pki::leaf::NodeIdentity;
use rafter::pki::{Authority, ClusterPki, Issued, LeafSpec};
use rafter::state::{LocalStore, StateStore};
use time::OffsetDateTime;

const CLUSTER: &str = "pki.example.com";

fn localhost_node(hostname: &str) -> NodeIdentity {
    NodeIdentity {
        hostname: hostname.to_string(),
        ips: vec![IpAddr::from([127, 0, 0, 1])],
    }
}

async fn pki_in(dir: &Path) -> ClusterPki {
    ClusterPki::load_or_create(&LocalStore::new(dir), CLUSTER, OffsetDateTime::now_utc())
        .await
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn openssl(args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn verifies(ca: &Path, cert: &Path) -> bool {
    openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
    ])
    .0
}

fn extensions(cert: &Path) -> String {
    openssl(&[
        "x509",
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName,keyUsage,extendedKeyUsage,basicConstraints",
        "-in",
        cert.to_str().unwrap(),
    ])
    .1
}

/// Still valid in `days` days.
fn valid_for(cert: &Path, days: i64) -> bool {
    openssl(&[
        "x509",
        "-noout",
        "-checkend",
        &(days * 86_400).to_string(),
        "-in",
        cert.to_str().unwrap(),
    ])
    .0
}

#[tokio::test]
async fn every_certificate_chains_to_its_own_ca_with_kubeadms_names_and_usages() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki_in(dir.path()).await;
    let now = OffsetDateTime::now_utc();
    let node = NodeIdentity {
        hostname: "cp-1".into(),
        ips: vec![IpAddr::from([10, 0, 1, 10])],
    };
    let names = vec![
        format!("api.{CLUSTER}"),
        format!("api.internal.{CLUSTER}"),
        "api-pki-example-com-0123.elb.eu-west-1.amazonaws.com".to_string(),
    ];
    let service_ip = IpAddr::from([100, 64, 0, 1]);
    let out = tempfile::tempdir().unwrap();
    let ca = write(out.path(), "ca.crt", &pki.ca.cert_pem);
    let etcd_ca = write(out.path(), "etcd-ca.crt", &pki.etcd_ca.cert_pem);
    let front_proxy_ca = write(
        out.path(),
        "front-proxy-ca.crt",
        &pki.front_proxy_ca.cert_pem,
    );

    let issue = |authority: &Authority, spec: LeafSpec, file: &str| -> PathBuf {
        let Issued { cert_pem, .. } = authority.issue(&spec, now).unwrap();
        write(out.path(), file, &cert_pem)
    };
    let api_server = issue(
        &pki.ca,
        LeafSpec::api_server(&names, service_ip, &node),
        "apiserver.crt",
    );
    let etcd_server = issue(
        &pki.etcd_ca,
        LeafSpec::etcd_server(&node),
        "etcd-server.crt",
    );
    let etcd_peer = issue(&pki.etcd_ca, LeafSpec::etcd_peer(&node), "etcd-peer.crt");
    let etcd_client = issue(
        &pki.etcd_ca,
        LeafSpec::etcd_client("kube-apiserver-etcd-client"),
        "etcd-client.crt",
    );
    let admin = issue(
        &pki.ca,
        LeafSpec::client("kubernetes-admin", Some("system:masters")),
        "admin.crt",
    );
    let proxy_client = issue(
        &pki.front_proxy_ca,
        LeafSpec::client("front-proxy-client", None),
        "front-proxy-client.crt",
    );

    for (cert, right, wrong) in [
        (&api_server, &ca, &etcd_ca),
        (&admin, &ca, &front_proxy_ca),
        (&etcd_server, &etcd_ca, &ca),
        (&etcd_peer, &etcd_ca, &ca),
        (&etcd_client, &etcd_ca, &ca),
        (&proxy_client, &front_proxy_ca, &ca),
    ] {
        assert!(
            verifies(right, cert),
            "{cert:?} does not verify against {right:?}"
        );
        assert!(
            !verifies(wrong, cert),
            "{cert:?} verifies against the wrong CA {wrong:?}"
        );
    }

    let text = extensions(&api_server);
    for name in [
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:api.pki.example.com",
        "DNS:api.internal.pki.example.com",
        "DNS:api-pki-example-com-0123.elb.eu-west-1.amazonaws.com",
        "IP Address:100.64.0.1",
        "IP Address:10.0.1.10",
        "TLS Web Server Authentication",
        "Digital Signature, Key Encipherment",
        "CA:FALSE",
    ] {
        assert!(
            text.contains(name),
            "API server certificate lacks {name}:\n{text}"
        );
    }
    assert!(!text.contains("TLS Web Client Authentication"), "{text}");
    let text = extensions(&etcd_peer);
    for name in [
        "DNS:cp-1",
        "IP Address:10.0.1.10",
        "IP Address:127.0.0.1",
        "TLS Web Server Authentication",
        "TLS Web Client Authentication",
    ] {
        assert!(
            text.contains(name),
            "etcd peer certificate lacks {name}:\n{text}"
        );
    }
    let text = extensions(&admin);
    assert!(
        text.contains("O=system:masters") || text.contains("O = system:masters"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    let text = extensions(&ca);
    assert!(
        text.contains("CA:TRUE") && text.contains("Certificate Sign"),
        "{text}"
    );

    // kubeadm's lifetimes: leaves a year, CAs ten years.
    assert!(valid_for(&api_server, 364) && !valid_for(&api_server, 366));
    assert!(valid_for(&ca, 3649) && !valid_for(&ca, 3651));
}

#[tokio::test]
async fn authorities_are_made_once_kept_private_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let first = pki_in(dir.path()).await;
    let second = pki_in(dir.path()).await;
    assert_eq!(
        first.ca.cert_pem, second.ca.cert_pem,
        "a second run made a new CA"
    );
    assert_eq!(first.etcd_ca.key, second.etcd_ca.key);
    assert_eq!(first.service_account, second.service_account);
    assert_ne!(first.ca.cert_pem, first.etcd_ca.cert_pem);

    let store = LocalStore::new(dir.path());
    let keys = store.list(&format!("{CLUSTER}/pki")).await.unwrap();
    assert_eq!(keys.len(), 4, "{keys:?}");
    for key in &keys {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(key))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let printed = format!("{first:?}");
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    assert!(printed.contains("<redacted>"));

    // A damaged CA is an error naming the object, never silently replaced.
    std::fs::write(
        dir.path().join(format!("{CLUSTER}/pki/etcd-ca.pem")),
        "garbage",
    )
    .unwrap();
    let error = ClusterPki::load_or_create(&store, CLUSTER, OffsetDateTime::now_utc())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("pki.example.com/pki/etcd-ca.pem"), "{error}");
    assert!(error.contains("not replaced"), "{error}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn three_etcd_members_with_rafters_certificates_form_a_tls_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki_in(dir.path()).await;
    let now = OffsetDateTime::now_utc();
    let work = tempfile::tempdir().unwrap();
    let ca = write(work.path(), "etcd-ca.crt", &pki.etcd_ca.cert_pem);
    let names = ["etcd-1", "etcd-2", "etcd-3"];
    let ports: Vec<(u16, u16)> = names.iter().map(|_| (free_port(), free_port())).collect();
    let initial: Vec<String> = names
        .iter()
        .zip(&ports)
        .map(|(name, (_, peer))| format!("{name}=https://127.0.0.1:{peer}"))
        .collect();
    let mut members = Vec::new();
    for (name, (client, peer)) in names.iter().zip(&ports) {
        let node = localhost_node(name);
        let server = pki
            .etcd_ca
            .issue(&LeafSpec::etcd_server(&node), now)
            .unwrap();
        let peer_cert = pki.etcd_ca.issue(&LeafSpec::etcd_peer(&node), now).unwrap();
        let server_crt = write(work.path(), &format!("{name}-server.crt"), &server.cert_pem);
        let server_key = write(
            work.path(),
            &format!("{name}-server.key"),
            server.key.expose(),
        );
        let peer_crt = write(
            work.path(),
            &format!("{name}-peer.crt"),
            &peer_cert.cert_pem,
        );
        let peer_key = write(
            work.path(),
            &format!("{name}-peer.key"),
            peer_cert.key.expose(),
        );
        let child = Command::new(etcd_bin("etcd"))
            .args([
                "--name",
                name,
                "--data-dir",
                work.path().join(name).to_str().unwrap(),
                "--listen-client-urls",
                &format!("https://127.0.0.1:{client}"),
                "--advertise-client-urls",
                &format!("https://127.0.0.1:{client}"),
                "--listen-peer-urls",
                &format!("https://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls",
                &format!("https://127.0.0.1:{peer}"),
                "--initial-cluster",
                &initial.join(","),
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "rafter-pki-test",
                "--client-cert-auth",
                "--trusted-ca-file",
                ca.to_str().unwrap(),
                "--cert-file",
                server_crt.to_str().unwrap(),
                "--key-file",
                server_key.to_str().unwrap(),
                "--peer-client-cert-auth",
                "--peer-trusted-ca-file",
                ca.to_str().unwrap(),
                "--peer-cert-file",
                peer_crt.to_str().unwrap(),
                "--peer-key-file",
                peer_key.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        members.push(Member(child));
    }

    let client = pki
        .etcd_ca
        .issue(&LeafSpec::etcd_client("kube-apiserver-etcd-client"), now)
        .unwrap();
    let client_crt = write(work.path(), "client.crt", &client.cert_pem);
    let client_key = write(work.path(), "client.key", client.key.expose());
    let endpoints: Vec<String> = ports
        .iter()
        .map(|(client, _)| format!("https://127.0.0.1:{client}"))
        .collect();
    let etcdctl = Etcdctl {
        endpoints,
        ca: ca.clone(),
        client: Some((client_crt, client_key)),
    };
    let healthy = etcdctl.wait_healthy().await;
    assert_eq!(healthy.matches("is healthy").count(), 3, "{healthy}");
    let (ok, members_listed) = etcdctl.run(&["member", "list"]);
    assert!(ok, "{members_listed}");
    for name in names {
        assert!(members_listed.contains(name), "{members_listed}");
    }
    let (ok, text) = etcdctl.run(&["put", "/rafter/test", "quorum"]);
    assert!(ok, "{text}");
    // Client certificate auth is on: without a certificate, nothing.
    let anonymous = Etcdctl {
        client: None,
        ..etcdctl
    };
    let (ok, text) = anonymous.run(&["--command-timeout=3s", "get", "/rafter/test"]);
    assert!(!ok, "etcd answered a client without a certificate: {text}");
    drop(members);
}
