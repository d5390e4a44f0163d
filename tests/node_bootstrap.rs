//! What a node receives, checked with the real tools: every script passes `shellcheck`, every
//! manifest `kubernetes-validate --strict` for the cluster's version, every certificate
//! `openssl verify` against its CA with the names it must carry; the bundle really writes the
//! files with their modes, is a no-op when rerun and repairs a changed file; the bootstrap's
//! asset step really downloads, verifies and installs, refusing a file with the wrong digest.
//! Snapshots of every rendered file per profile (keys and certificates redacted).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::example_cluster;
use common::tools::venv_bin as tool;
use rafter::bootstrap::{self, NodeFile, RenderedNode, Role};
use rafter::pki::{ClusterPki, ClusterSecrets, NodeLeaves};
use rafter::spec::{ArchDigests, AssetOverride, Cluster, Cni};
use rafter::state::LocalStore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The API load balancer's name AWS would give (AWS profiles have no DNS zone).
const LOAD_BALANCER: &str = "api-lb-0123456789.elb.eu-west-1.amazonaws.com";
const NODE_LOAD_BALANCER: &str = "internal-api-internal-lb-987.elb.eu-west-1.amazonaws.com";

/// The API load balancers of an AWS cluster once they exist: the public one clients use and
/// the internal one nodes use.
fn load_balancers() -> bootstrap::ApiLoadBalancerNames {
    bootstrap::ApiLoadBalancerNames {
        clients: Some(LOAD_BALANCER.to_string()),
        nodes: Some(NODE_LOAD_BALANCER.to_string()),
    }
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .expect("tool runs (scripts/setup-tools.sh installs it)")
}

struct Material {
    _dir: tempfile::TempDir,
    pki: ClusterPki,
    secrets: ClusterSecrets,
}

fn material(cluster: &Cluster) -> Material {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let name = &cluster.metadata.name;
    let (pki, secrets) = runtime.block_on(async {
        (
            ClusterPki::load_or_create(&store, name, OffsetDateTime::now_utc())
                .await
                .unwrap(),
            ClusterSecrets::load_or_create(&store, name).await.unwrap(),
        )
    });
    Material {
        _dir: dir,
        pki,
        secrets,
    }
}

fn render(cluster: &Cluster, material: &Material, role: Role, node: Option<&str>) -> RenderedNode {
    let selected = bootstrap::select_node(cluster, role, node).unwrap();
    let access = bootstrap::api_access(cluster, &load_balancers()).unwrap();
    bootstrap::render_node(
        cluster,
        selected,
        &access,
        &material.pki,
        &material.secrets,
        &mut NodeLeaves::fresh(),
        OffsetDateTime::now_utc(),
    )
    .unwrap()
}

fn with_cni(profile: &str, cni: Cni) -> Cluster {
    let mut cluster = example_cluster(profile);
    cluster.spec.networking.cni = cni;
    cluster
}

/// Every node kind of every profile, with every CNI on the bare-host profile.
fn every_node() -> Vec<(String, Cluster, Role, Option<&'static str>)> {
    let mut nodes = Vec::new();
    for cni in [Cni::Calico, Cni::Cilium, Cni::Flannel] {
        let cluster = with_cni("ha-ssh", cni);
        for (role, node) in [
            (Role::ControlPlane, Some("cp-1")),
            (Role::ControlPlane, Some("cp-2")),
            (Role::Worker, Some("worker-1")),
        ] {
            nodes.push((
                format!("ha-ssh/{cni:?}/{}", node.unwrap_or("")),
                cluster.clone(),
                role,
                node,
            ));
        }
    }
    for profile in ["dev-aws", "ha-aws"] {
        nodes.push((
            format!("{profile}/worker"),
            example_cluster(profile),
            Role::Worker,
            None,
        ));
        // The first member applies the add-ons; the others do not.
        nodes.push((
            format!("{profile}/control-plane"),
            example_cluster(profile),
            Role::ControlPlane,
            None,
        ));
    }
    // Every AWS add-on on (the autoscaler is off by default).
    let mut autoscaled = example_cluster("ha-aws");
    if let Some(addons) = &mut autoscaled.spec.addons {
        addons.cluster_autoscaler.enabled = true;
    }
    nodes.push((
        "ha-aws-autoscaled/control-plane".to_string(),
        autoscaled,
        Role::ControlPlane,
        None,
    ));
    nodes.push((
        "ha-aws/control-plane-eu-west-1b".to_string(),
        example_cluster("ha-aws"),
        Role::ControlPlane,
        Some("eu-west-1b"),
    ));
    nodes
}

fn write_tree(root: &Path, files: &[NodeFile]) {
    for file in files {
        let path = root.join(file.path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &file.content).unwrap();
    }
}

#[test]
fn every_rendered_script_passes_shellcheck() {
    let dir = tempfile::tempdir().unwrap();
    let mut scripts = Vec::new();
    for (label, cluster, role, node) in every_node() {
        let material = material(&cluster);
        let rendered = render(&cluster, &material, role, node);
        let stem = label.replace('/', "-");
        // Every script the node receives (a sourced library has no #! line: it is bash).
        let node_scripts = rendered
            .files
            .iter()
            .filter(|file| file.path.ends_with(".sh") || file.content.starts_with("#!"))
            .map(|file| {
                let name = file.path.rsplit('/').next().unwrap().to_string();
                let content = if file.content.starts_with("#!") {
                    file.content.clone()
                } else {
                    format!("# shellcheck shell=bash\n{}", file.content)
                };
                (name, content)
            });
        for (name, content) in node_scripts.chain([("bundle".to_string(), rendered.bundle.clone())])
        {
            let path = dir.path().join(format!("{stem}-{name}"));
            std::fs::write(&path, content).unwrap();
            scripts.push(path);
        }
    }
    for expected in ["bootstrap.sh", "etcd-peers.sh", "aws.sh", "etcdctl"] {
        assert!(
            scripts
                .iter()
                .any(|path| path.to_string_lossy().ends_with(expected)),
            "{expected} checked"
        );
    }
    let output = run(Command::new(tool("shellcheck"))
        .arg("--severity=style")
        .args(&scripts));
    assert!(
        output.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // The tool really checks: a classic mistake is reported.
    let broken = dir.path().join("broken.sh");
    std::fs::write(
        &broken,
        "#!/bin/bash\nfor f in $(ls *.txt); do rm $f; done\n",
    )
    .unwrap();
    assert!(
        !run(Command::new(tool("shellcheck")).arg(&broken))
            .status
            .success()
    );
}

#[test]
fn aws_user_data_passes_shellcheck_and_fits_the_16k_limit() {
    use rafter::graph::Value;
    let dir = tempfile::tempdir().unwrap();
    for profile in common::AWS_PROFILES {
        let (_, graph) = common::example_graph(profile);
        for node in graph.nodes() {
            let user_data = node.resource.attributes().into_iter().find_map(|field| {
                match (field.name.as_str(), field.value) {
                    ("user_data", Value::File(file)) => Some(file),
                    _ => None,
                }
            });
            let Some(user_data) = user_data else {
                continue;
            };
            assert!(
                user_data.content.len() <= 16 * 1024,
                "{profile}: user-data of {} bytes",
                user_data.content.len()
            );
            let is_bastion = user_data.name.contains("bastion");
            assert_eq!(
                user_data.content.contains("BUNDLE_URL=\"s3://"),
                !is_bastion,
                "{}: nodes fetch their bundle, the bastion nothing",
                user_data.name
            );
            let path = dir.path().join(&user_data.name);
            std::fs::write(&path, &user_data.content).unwrap();
            let mut scripts = vec![path];
            if !is_bastion {
                // The first-boot script and its unit travel inside the user-data.
                let first_boot = heredoc(&user_data.content, "FIRST_BOOT");
                let path = dir.path().join(format!("first-boot-{}", user_data.name));
                std::fs::write(&path, first_boot).unwrap();
                scripts.push(path);
                let unit = heredoc(&user_data.content, "UNIT");
                assert!(unit.contains("Restart=on-failure"), "{unit}");
                let unit_path = dir.path().join("rafter-first-boot.service");
                std::fs::write(
                    &unit_path,
                    unit.replace("/usr/local/lib/rafter/first-boot.sh", "/bin/true"),
                )
                .unwrap();
                let verified = run(Command::new("systemd-analyze").args([
                    "verify",
                    "--man=no",
                    unit_path.to_str().unwrap(),
                ]));
                let said = String::from_utf8_lossy(&verified.stderr);
                assert!(
                    verified.status.success() && !said.contains("rafter-first-boot"),
                    "{said}"
                );
            }
            for path in scripts {
                let output = run(Command::new(tool("shellcheck")).arg(&path));
                assert!(
                    output.status.success(),
                    "{profile} {}:\n{}",
                    path.display(),
                    String::from_utf8_lossy(&output.stdout)
                );
            }
        }
    }
}

/// The text of the quoted heredoc `<<'NAME'` in `script`.
fn heredoc<'a>(script: &'a str, name: &str) -> &'a str {
    let start = script
        .find(&format!("<<'{name}'\n"))
        .unwrap_or_else(|| panic!("no heredoc {name}"));
    let body = &script[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let end = body
        .find(&format!("\n{name}\n"))
        .unwrap_or_else(|| panic!("heredoc {name} does not end"));
    &body[..=end]
}

#[test]
fn every_manifest_validates_strictly_for_the_clusters_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifests = Vec::new();
    for (label, cluster, role, node) in every_node() {
        let material = material(&cluster);
        let rendered = render(&cluster, &material, role, node);
        let root = dir.path().join(label.replace('/', "-"));
        write_tree(&root, &rendered.files);
        for file in &rendered.files {
            let kubernetes_object = file.path.starts_with("/etc/kubernetes/rafter/manifests/")
                || (file.path.starts_with("/etc/kubernetes/addons/")
                    && !file.path.ends_with("/calico.yaml"));
            if kubernetes_object {
                manifests.push(root.join(file.path.trim_start_matches('/')));
            }
        }
        if let Some(calico) = rendered
            .files
            .iter()
            .find(|file| file.path.ends_with("/calico.yaml"))
        {
            // A custom resource of the Tigera operator: no schema offline; its pool is checked.
            let installation: serde_json::Value = serde_saphyr::from_str(&calico.content).unwrap();
            assert_eq!(
                installation["spec"]["calicoNetwork"]["ipPools"][0]["cidr"],
                cluster.spec.networking.pod_cidr.to_string()
            );
        }
    }
    assert!(manifests.len() > 20, "{} manifests", manifests.len());
    let version = rafter::spec::versions::DEFAULT_KUBERNETES_VERSION;
    let output = run(Command::new(tool("kubernetes-validate"))
        .args(["--strict", "--quiet", "-k", version])
        .args(&manifests));
    assert!(
        output.status.success(),
        "kubernetes-validate:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // And it does catch a misspelt field.
    let broken = dir.path().join("broken.yaml");
    let apiserver = std::fs::read_to_string(
        manifests
            .iter()
            .find(|path| path.ends_with("kube-apiserver.yaml"))
            .unwrap(),
    )
    .unwrap();
    std::fs::write(&broken, apiserver.replace("hostNetwork:", "hostNetwrok:")).unwrap();
    let output = run(Command::new(tool("kubernetes-validate"))
        .args(["--strict", "--quiet", "-k", version])
        .arg(&broken));
    assert!(!output.status.success());
}

fn openssl(args: &[&str]) -> Output {
    run(Command::new("openssl").args(args))
}

fn file<'a>(rendered: &'a RenderedNode, path: &str) -> &'a NodeFile {
    rendered
        .files
        .iter()
        .find(|file| file.path == path)
        .unwrap_or_else(|| panic!("{path} missing"))
}

#[test]
fn control_plane_certificates_chain_to_their_ca_and_name_the_node() {
    let cluster = example_cluster("ha-ssh");
    let material = material(&cluster);
    let rendered = render(&cluster, &material, Role::ControlPlane, Some("cp-2"));
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &rendered.files);
    let pki = dir.path().join("etc/kubernetes/pki");
    let at = |name: &str| pki.join(name).to_string_lossy().into_owned();
    for (leaf, ca) in [
        ("apiserver.crt", "ca.crt"),
        ("apiserver-kubelet-client.crt", "ca.crt"),
        ("apiserver-etcd-client.crt", "etcd/ca.crt"),
        ("front-proxy-client.crt", "front-proxy-ca.crt"),
        ("etcd/server.crt", "etcd/ca.crt"),
        ("etcd/peer.crt", "etcd/ca.crt"),
    ] {
        let verified = openssl(&["verify", "-CAfile", &at(ca), &at(leaf)]);
        assert!(verified.status.success(), "{leaf}: {verified:?}");
        let wrong_ca = if ca == "ca.crt" {
            "etcd/ca.crt"
        } else {
            "ca.crt"
        };
        assert!(
            !openssl(&["verify", "-CAfile", &at(wrong_ca), &at(leaf)])
                .status
                .success(),
            "{leaf} must not chain to {wrong_ca}"
        );
    }
    let text = String::from_utf8(
        openssl(&["x509", "-noout", "-text", "-in", &at("apiserver.crt")]).stdout,
    )
    .unwrap();
    for name in [
        "DNS:cp-2",
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:api.ha.example.com",
        "DNS:api.internal.ha.example.com",
        "IP Address:10.250.0.12",
        // The shared endpoint of the profile, and the first service address.
        "IP Address:10.250.0.10",
        "IP Address:100.64.0.1",
    ] {
        let name = name.replace("ha.example.com", &cluster.metadata.name);
        assert!(text.contains(&name), "apiserver.crt lacks {name}:\n{text}");
    }
    let peer = String::from_utf8(
        openssl(&["x509", "-noout", "-text", "-in", &at("etcd/peer.crt")]).stdout,
    )
    .unwrap();
    assert!(peer.contains("IP Address:10.250.0.12"), "{peer}");
    assert!(
        !peer.contains("10.250.0.11"),
        "a member's certificate names only itself"
    );

    // The service-account key pair belongs together.
    let public_from_key = openssl(&["pkey", "-pubout", "-in", &at("sa.key")]);
    assert_eq!(
        String::from_utf8_lossy(&public_from_key.stdout).trim(),
        std::fs::read_to_string(pki.join("sa.pub")).unwrap().trim()
    );

    // Each kubeconfig's client certificate chains to the cluster CA, as the user it names.
    for (conf, subject) in [
        ("kubelet.conf", "CN=system:node:cp-2, O=system:nodes"),
        (
            "controller-manager.conf",
            "CN=system:kube-controller-manager",
        ),
        ("scheduler.conf", "CN=system:kube-scheduler"),
        ("admin.conf", "CN=kubernetes-admin, O=system:masters"),
    ] {
        let config: serde_json::Value =
            serde_saphyr::from_str(&file(&rendered, &format!("/etc/kubernetes/{conf}")).content)
                .unwrap();
        let cert = aws_smithy_types::base64::decode(
            config["users"][0]["user"]["client-certificate-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let cert_path = dir.path().join(format!("{conf}.crt"));
        std::fs::write(&cert_path, cert).unwrap();
        let cert_path = cert_path.to_string_lossy().into_owned();
        assert!(
            openssl(&["verify", "-CAfile", &at("ca.crt"), &cert_path])
                .status
                .success()
        );
        let shown = certificate_subject(Path::new(&cert_path));
        assert!(shown.contains(subject), "{conf}: {shown}");
    }
}

/// The subject of the certificate at `path`, as `CN=…, O=…`.
fn certificate_subject(path: &Path) -> String {
    String::from_utf8(
        openssl(&[
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "sep_comma_plus_space",
            "-in",
            &path.to_string_lossy(),
        ])
        .stdout,
    )
    .unwrap()
}

/// The `openssl x509 -text` of the certificate at `path`.
fn certificate_text(path: &Path) -> String {
    String::from_utf8(openssl(&["x509", "-noout", "-text", "-in", &path.to_string_lossy()]).stdout)
        .unwrap()
}

#[test]
fn aws_control_plane_members_are_named_ahead_and_addressed_at_boot() {
    let cluster = example_cluster("ha-aws");
    let name = cluster.metadata.name.clone();
    let material = material(&cluster);
    let rendered = render(&cluster, &material, Role::ControlPlane, Some("eu-west-1b"));
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &rendered.files);
    let pki = dir.path().join("etc/kubernetes/pki");

    // etcd's certificates name the member's DNS name (each member resolves it from the
    // addresses published at boot), and no address but loopback: none is known ahead.
    for leaf in ["etcd/server.crt", "etcd/peer.crt"] {
        let text = certificate_text(&pki.join(leaf));
        assert!(
            text.contains(&format!("DNS:etcd-eu-west-1b.internal.{name}")),
            "{leaf}: {text}"
        );
        assert!(
            !text.contains("etcd-eu-west-1a"),
            "{leaf} names only its member"
        );
        let addresses: Vec<_> = text
            .split([',', '\n'])
            .filter_map(|part| part.trim().strip_prefix("IP Address:"))
            .collect();
        assert_eq!(addresses, ["127.0.0.1", "0:0:0:0:0:0:0:1"], "{leaf}");
    }
    // The API server's certificate carries loopback (its own components reach it there) and
    // the load balancer's names.
    let apiserver = certificate_text(&pki.join("apiserver.crt"));
    for wanted in [
        "IP Address:127.0.0.1".to_string(),
        "IP Address:100.64.0.1".to_string(),
        format!("DNS:api.internal.{name}"),
        format!("DNS:{LOAD_BALANCER}"),
    ] {
        assert!(apiserver.contains(&wanted), "apiserver.crt lacks {wanted}");
    }
    let unit = &file(&rendered, "/etc/systemd/system/etcd.service").content;
    assert!(unit.contains(&format!(
        "--initial-advertise-peer-urls=https://etcd-eu-west-1b.internal.{name}:2380"
    )));
    let initial = &file(&rendered, "/etc/etcd/initial-cluster.env").content;
    assert!(initial.contains(&format!(
        "eu-west-1c=https://etcd-eu-west-1c.internal.{name}:2380"
    )));
    let apiserver_manifest = &file(
        &rendered,
        "/etc/kubernetes/rafter/manifests/kube-apiserver.yaml",
    )
    .content;
    assert!(
        !apiserver_manifest.contains("--advertise-address"),
        "the API server advertises the address the instance got"
    );

    // The kubelet's certificate is issued on the node, for the name the node has.
    let bootstrap_script = dir.path().join("usr/local/lib/rafter/bootstrap.sh");
    let first = bash(&bootstrap_script, dir.path(), &["kubelet"]);
    assert!(first.status.success(), "{first:?}");
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("issued the kubelet's client certificate")
    );
    let cert = dir
        .path()
        .join("var/lib/kubelet/pki/rafter-kubelet-client.crt");
    let key = dir
        .path()
        .join("var/lib/kubelet/pki/rafter-kubelet-client.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &pki.join("ca.crt").to_string_lossy(),
        &cert.to_string_lossy(),
    ]);
    assert!(verified.status.success(), "{verified:?}");
    let hostname = String::from_utf8(run(&mut Command::new("hostname")).stdout)
        .unwrap()
        .trim()
        .to_lowercase();
    let subject = certificate_subject(&cert);
    assert!(
        subject.contains(&format!("O=system:nodes, CN=system:node:{hostname}")),
        "{subject}"
    );
    assert!(certificate_text(&cert).contains("TLS Web Client Authentication"));
    let kubeconfig = &file(&rendered, "/etc/kubernetes/kubelet.conf");
    assert!(!kubeconfig.secret, "it only points at the files");
    // Rerun: nothing to issue.
    let again = bash(&bootstrap_script, dir.path(), &["kubelet"]);
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("issued"));
}

#[test]
fn secrets_are_0600_and_workers_hold_no_key() {
    let cluster = example_cluster("ha-ssh");
    let material = material(&cluster);
    let control_plane = render(&cluster, &material, Role::ControlPlane, Some("cp-1"));
    for node_file in &control_plane.files {
        let holds_key = node_file.content.contains("PRIVATE KEY")
            || node_file.content.contains("client-key-data")
            || node_file
                .content
                .contains(material.secrets.encryption_key.expose())
            || node_file
                .content
                .contains(material.secrets.bootstrap_token.secret.expose());
        if holds_key {
            assert_eq!(node_file.mode, 0o600, "{}", node_file.path);
            assert!(node_file.secret, "{}", node_file.path);
        }
    }
    let worker = render(&cluster, &material, Role::Worker, Some("worker-1"));
    assert!(
        worker
            .files
            .iter()
            .all(|file| !file.content.contains("PRIVATE KEY")),
        "a worker gets no private key: it bootstraps its own"
    );
    let bootstrap_kubeconfig = file(&worker, "/etc/kubernetes/bootstrap-kubelet.conf");
    assert_eq!(bootstrap_kubeconfig.mode, 0o600);
    assert!(
        bootstrap_kubeconfig
            .content
            .contains(material.secrets.bootstrap_token.bearer().expose())
    );
    assert!(
        file(&worker, "/etc/systemd/system/kubelet.service")
            .content
            .contains("--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf")
    );
}

fn bash(script: &Path, root: &Path, args: &[&str]) -> Output {
    run(Command::new("bash")
        .arg(script)
        .args(args)
        .env("RAFTER_ROOT", root))
}

#[test]
fn the_bundle_writes_every_file_with_its_mode_and_a_rerun_changes_nothing() {
    let cluster = example_cluster("ha-ssh");
    let material = material(&cluster);
    let rendered = render(&cluster, &material, Role::ControlPlane, Some("cp-1"));
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.sh");
    std::fs::write(&bundle, &rendered.bundle).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();

    let before = bash(&bundle, &root, &["--check"]);
    assert_eq!(before.status.code(), Some(1), "{before:?}");
    assert_eq!(
        String::from_utf8_lossy(&before.stdout).lines().count(),
        rendered.files.len(),
        "--check lists every file of an empty node"
    );
    assert!(
        root.read_dir().unwrap().next().is_none(),
        "--check wrote nothing"
    );

    let written = bash(&bundle, &root, &["--files-only"]);
    assert!(written.status.success(), "{written:?}");
    for node_file in &rendered.files {
        let path = root.join(node_file.path.trim_start_matches('/'));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), node_file.content);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, node_file.mode, "{}", node_file.path);
    }

    // The kubelet acts on a static pod manifest the moment it appears: the bundle only
    // stages them, and the `control-plane` step moves them in (one host at a time).
    let live = root.join("etc/kubernetes/manifests");
    assert!(
        !live.exists(),
        "the bundle wrote into the kubelet's directory"
    );
    let script = root.join("usr/local/lib/rafter/bootstrap.sh");
    let moved = bash(&script, &root, &["control-plane"]);
    assert!(moved.status.success(), "{moved:?}");
    let said = String::from_utf8_lossy(&moved.stderr).into_owned();
    for component in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        assert!(
            said.contains(&format!("updated static pod {component}.yaml")),
            "{said}"
        );
        let path = live.join(format!("{component}.yaml"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            file(
                &rendered,
                &format!("/etc/kubernetes/rafter/manifests/{component}.yaml")
            )
            .content
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let quiet = bash(&script, &root, &["control-plane"]);
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("updated"));
    std::fs::write(live.join("kube-scheduler.yaml"), "edited by hand\n").unwrap();
    let repaired = bash(&script, &root, &["control-plane"]);
    let said = String::from_utf8_lossy(&repaired.stderr).into_owned();
    assert!(
        said.contains("updated static pod kube-scheduler.yaml"),
        "{said}"
    );
    assert_eq!(said.matches("updated").count(), 1, "{said}");

    let again = bash(&bundle, &root, &["--check"]);
    assert!(again.status.success(), "a rerun changes nothing: {again:?}");
    let rewritten = bash(&bundle, &root, &["--files-only"]);
    assert!(String::from_utf8_lossy(&rewritten.stderr).trim().is_empty());

    // A changed file and a loosened mode are found and repaired.
    let config = root.join("etc/containerd/config.toml");
    std::fs::write(&config, "version = 2\n").unwrap();
    let key = root.join("etc/kubernetes/pki/ca.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let drift = bash(&bundle, &root, &["--check"]);
    assert_eq!(drift.status.code(), Some(1));
    let listed = String::from_utf8_lossy(&drift.stdout).into_owned();
    assert!(
        listed.contains("/etc/containerd/config.toml")
            && listed.contains("/etc/kubernetes/pki/ca.key"),
        "{listed}"
    );
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(bash(&bundle, &root, &["--files-only"]).status.success());
    assert!(bash(&bundle, &root, &["--check"]).status.success());
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A file server on loopback that counts the requests for each path.
struct FileServer {
    url: String,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    served: Arc<AtomicUsize>,
}

impl FileServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(BTreeMap::new()));
        let files: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::new(Mutex::new(BTreeMap::new()));
        let served = Arc::new(AtomicUsize::new(0));
        let (thread_hits, thread_files, thread_served) =
            (hits.clone(), files.clone(), served.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap_or_default();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|read| read > 2) {
                    line.clear();
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                *thread_hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                thread_served.fetch_add(1, Ordering::SeqCst);
                let body = thread_files.lock().unwrap().get(&path).cloned();
                let response = match body {
                    Some(body) => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        head.extend(body);
                        head
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = stream.write_all(&response);
            }
        });
        Self {
            url,
            hits,
            files,
            served,
        }
    }

    fn serve(&self, path: &str, body: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_string(), body);
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A `.tar.gz` holding one executable `name`.
fn tarball(dir: &Path, name: &str) -> Vec<u8> {
    let staging = dir.join(format!("staging-{name}"));
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join(name), format!("#!/bin/sh\necho {name}\n")).unwrap();
    let archive = dir.join(format!("{name}.tar.gz"));
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&staging)
        .arg(name)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(archive).unwrap()
}

#[test]
fn the_asset_step_installs_verified_downloads_once_and_refuses_a_wrong_digest() {
    let server = FileServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = with_cni("ha-ssh", Cni::Flannel);
    // Every file of a worker, served from loopback under overrides with their digests.
    let contents: Vec<(&str, Vec<u8>)> = vec![
        ("kubelet", b"#!/bin/sh\necho kubelet\n".to_vec()),
        ("runc", b"#!/bin/sh\necho runc\n".to_vec()),
        ("containerd", tarball(dir.path(), "containerd")),
        ("crictl", tarball(dir.path(), "crictl")),
        ("cni-plugins", tarball(dir.path(), "bridge")),
    ];
    for (name, body) in &contents {
        let digest = sha256_hex(body);
        for arch in ["amd64", "arm64"] {
            server.serve(&format!("/{name}/{arch}"), body.clone());
        }
        cluster.spec.assets.files.push(AssetOverride {
            name: name.to_string(),
            url: Some(format!("{}/{name}/{{arch}}", server.url)),
            sha256: ArchDigests {
                amd64: Some(digest.clone()),
                arm64: Some(digest),
            },
        });
    }
    let material = material(&cluster);
    let rendered = render(&cluster, &material, Role::Worker, Some("worker-1"));
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let script = root.join("bootstrap.sh");
    std::fs::write(
        &script,
        &file(&rendered, "/usr/local/lib/rafter/bootstrap.sh").content,
    )
    .unwrap();

    let first = bash(&script, &root, &["assets"]);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(server.served.load(Ordering::SeqCst), contents.len());
    let kubelet = root.join("usr/local/bin/kubelet");
    assert_eq!(std::fs::read(&kubelet).unwrap(), contents[0].1);
    assert_eq!(
        std::fs::metadata(&kubelet).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert!(root.join("usr/local/sbin/runc").is_file());
    assert!(
        root.join("usr/local/containerd").is_file(),
        "archive unpacked into /usr/local"
    );
    assert!(root.join("usr/local/bin/crictl").is_file());
    assert!(root.join("opt/cni/bin/bridge").is_file());

    let second = bash(&script, &root, &["assets"]);
    assert!(second.status.success(), "{second:?}");
    assert_eq!(
        server.served.load(Ordering::SeqCst),
        contents.len(),
        "a rerun downloads nothing"
    );

    // A binary replaced on the node is put back from the verified cache, without a download.
    std::fs::write(&kubelet, "tampered").unwrap();
    assert!(bash(&script, &root, &["assets"]).status.success());
    assert_eq!(std::fs::read(&kubelet).unwrap(), contents[0].1);
    assert_eq!(server.served.load(Ordering::SeqCst), contents.len());

    // So is a file of an unpacked archive, deleted or changed.
    let crictl = root.join("usr/local/bin/crictl");
    let cni_bridge = root.join("opt/cni/bin/bridge");
    let (crictl_content, bridge_content) = (
        std::fs::read(&crictl).unwrap(),
        std::fs::read(&cni_bridge).unwrap(),
    );
    std::fs::remove_file(&crictl).unwrap();
    std::fs::write(&cni_bridge, "tampered").unwrap();
    let repaired = bash(&script, &root, &["assets"]);
    assert!(repaired.status.success(), "{repaired:?}");
    let log = String::from_utf8_lossy(&repaired.stderr);
    assert!(
        log.contains("installed crictl") && log.contains("installed cni-plugins"),
        "{log}"
    );
    assert!(!log.contains("installed containerd"), "{log}");
    assert_eq!(std::fs::read(&crictl).unwrap(), crictl_content);
    assert_eq!(std::fs::read(&cni_bridge).unwrap(), bridge_content);
    assert_eq!(server.served.load(Ordering::SeqCst), contents.len());
    let quiet = bash(&script, &root, &["assets"]);
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("installed"),
        "{quiet:?}"
    );

    // The mirror serves something else: refused, nothing installed, the cache left clean.
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    server.serve(&format!("/runc/{arch}"), b"not runc".to_vec());
    std::fs::remove_dir_all(root.join("var/cache/rafter/assets")).unwrap();
    std::fs::remove_file(root.join("usr/local/sbin/runc")).unwrap();
    let refused = bash(&script, &root, &["assets"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("runc") && stderr.contains("does not have the pinned SHA-256"),
        "{stderr}"
    );
    assert!(!root.join("usr/local/sbin/runc").exists());
    let cached: Vec<_> = std::fs::read_dir(root.join("var/cache/rafter/assets"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        cached.iter().all(|name| !name.ends_with(".part")),
        "{cached:?}"
    );
    assert!(
        server
            .hits
            .lock()
            .unwrap()
            .get(&format!("/runc/{arch}"))
            .copied()
            .unwrap_or(0)
            >= 2
    );
}

/// Every file of a node for a snapshot: certificates and secrets replaced by their kind.
fn redacted(rendered: &RenderedNode, material: &Material) -> String {
    let mut out = String::new();
    for node_file in &rendered.files {
        out.push_str(&format!("=== {} ({:o})\n", node_file.path, node_file.mode));
        let content = if node_file.content.starts_with("-----BEGIN CERTIFICATE") {
            "<certificate>\n".to_string()
        } else if node_file.content.contains("PRIVATE KEY-----")
            && !node_file.content.contains("apiVersion")
        {
            "<private key>\n".to_string()
        } else if node_file.content.contains("PUBLIC KEY-----") {
            "<public key>\n".to_string()
        } else {
            let mut text = node_file.content.clone();
            for secret in [
                material.secrets.encryption_key.expose(),
                material.secrets.bootstrap_token.secret.expose(),
                material.secrets.bootstrap_token.id.as_str(),
            ] {
                text = text.replace(secret, "<secret>");
            }
            text.lines()
                .map(|line| match line.split_once("-data: ") {
                    Some((key, _)) => format!("{key}-data: <base64>"),
                    None => line.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        };
        out.push_str(&content);
    }
    out
}

#[test]
fn snapshots_of_every_template_per_profile() {
    for (label, cluster, role, node) in every_node() {
        // Every node with the default CNI; the other CNIs differ only on the add-on node.
        let other_cni = label.contains("/Cilium/") || label.contains("/Flannel/");
        if other_cni && node != Some("cp-1") {
            continue;
        }
        let material = material(&cluster);
        let rendered = render(&cluster, &material, role, node);
        let name = format!("bootstrap-{}", label.replace('/', "-").to_lowercase());
        insta::assert_snapshot!(name, redacted(&rendered, &material));
    }
}

#[test]
fn ip_v4_literals_stay_addresses() {
    // The shared endpoint of the bare-host profile is an address: it is an IP SAN, not a name.
    let access = bootstrap::api_access(&example_cluster("ha-ssh"), &Default::default()).unwrap();
    assert_eq!(access.server, "https://10.250.0.10:6443");
    assert_eq!(access.ips, vec!["10.250.0.10".parse::<IpAddr>().unwrap()]);
}

/// The kernel settings the kubelet demands with `protectKernelDefaults: true`, as its source
/// has them (kubernetes `pkg/kubelet/cm/container_manager_linux.go`, `setupKernelTunables`;
/// values in `k8s.io/component-helpers/node/util/sysctl`). Kept here, apart from rafter's own
/// table, so a wrong entry there cannot pass.
const KUBELET_PROTECTED_TUNABLES: [(&str, &str); 6] = [
    ("vm.overcommit_memory", "1"),
    ("vm.panic_on_oom", "0"),
    ("kernel.panic", "10"),
    ("kernel.panic_on_oops", "1"),
    ("kernel.keys.root_maxkeys", "1000000"),
    ("kernel.keys.root_maxbytes", "25000000"),
];

/// `key = value` lines of a sysctl.d file.
fn sysctl_settings(content: &str) -> BTreeMap<String, String> {
    content
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line.split_once('=').unwrap();
            (key.trim().to_string(), value.trim().to_string())
        })
        .collect()
}

/// Each rule of `rafter::bootstrap::host_rules`, checked on the files every node kind of
/// every profile receives.
#[test]
fn every_node_meets_the_kubelet_api_server_and_etcd_host_rules() {
    for (label, cluster, role, node) in every_node() {
        let material = material(&cluster);
        let rendered = render(&cluster, &material, role, node);
        let sysctls = sysctl_settings(&file(&rendered, "/etc/sysctl.d/99-rafter.conf").content);
        let kubelet = &file(&rendered, "/var/lib/kubelet/config.yaml").content;
        let kubelet: serde_json::Value = serde_saphyr::from_str(kubelet).unwrap();

        // protectKernelDefaults: every setting the kubelet checks is in the node's file.
        assert_eq!(kubelet["protectKernelDefaults"], true, "{label}");
        for (key, value) in KUBELET_PROTECTED_TUNABLES {
            assert_eq!(
                sysctls.get(key).map(String::as_str),
                Some(value),
                "{label}: the kubelet refuses to start unless {key} = {value}"
            );
        }
        // kubeadm's preflight: bridged traffic through iptables, forwarding on.
        for key in ["net.bridge.bridge-nf-call-iptables", "net.ipv4.ip_forward"] {
            assert_eq!(
                sysctls.get(key).map(String::as_str),
                Some("1"),
                "{label}: {key}"
            );
        }
        // The file is exactly rafter's table: nothing set that no rule asks for.
        let table: BTreeMap<String, String> = rafter::bootstrap::host_rules::KERNEL_TUNABLES
            .iter()
            .map(|tunable| (tunable.key.to_string(), tunable.value.to_string()))
            .collect();
        assert_eq!(sysctls, table, "{label}");

        // One cgroup driver for the kubelet and containerd.
        assert_eq!(kubelet["cgroupDriver"], "systemd", "{label}");
        let containerd = &file(&rendered, "/etc/containerd/config.toml").content;
        assert!(containerd.contains("SystemdCgroup = true"), "{label}");

        // failSwapOn, and the bootstrap turns swap off.
        assert_eq!(kubelet["failSwapOn"], true, "{label}");
        let bootstrap = &file(&rendered, "/usr/local/lib/rafter/bootstrap.sh").content;
        assert!(bootstrap.contains("swapoff -a"), "{label}");

        // The kubelet reads a resolv.conf the bootstrap links away from resolved's stub.
        let resolv = rafter::bootstrap::host_rules::KUBELET_RESOLV_CONF;
        assert_eq!(kubelet["resolvConf"], resolv, "{label}");
        assert!(
            bootstrap.contains("/run/systemd/resolve/resolv.conf") && bootstrap.contains(resolv),
            "{label}"
        );

        // A stacked API server talks to its own member, which listens there.
        if role == Role::ControlPlane {
            let api_server = &file(
                &rendered,
                "/etc/kubernetes/rafter/manifests/kube-apiserver.yaml",
            )
            .content;
            let servers: Vec<&str> = api_server
                .lines()
                .filter_map(|line| line.trim().strip_prefix("- --etcd-servers="))
                .collect();
            assert_eq!(servers, ["https://127.0.0.1:2379"], "{label}");
            let etcd = &file(&rendered, "/etc/systemd/system/etcd.service").content;
            // Loopback itself, or every address (AWS members, which learn theirs at boot).
            assert!(
                etcd.contains("--listen-client-urls=https://127.0.0.1:2379")
                    || etcd.contains("--listen-client-urls=https://0.0.0.0:2379"),
                "{label}: etcd does not listen on loopback:\n{etcd}"
            );
        }
    }
}

/// The EBS driver's admission policies, evaluated (their CEL, by cel-python) on what they must
/// refuse, a volume of the control plane named by hand, and what they must let through.
#[test]
fn the_ebs_admission_policies_refuse_volumes_named_by_hand_and_admit_claims() {
    let cluster = example_cluster("ha-aws");
    let rendered = render(&cluster, &material(&cluster), Role::ControlPlane, None);
    let manifest = file(&rendered, "/etc/kubernetes/addons/aws-ebs-csi-driver.yaml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aws-ebs-csi-driver.yaml");
    std::fs::write(&path, &manifest.content).unwrap();

    let user = serde_json::json!({ "username": "alice", "groups": ["system:authenticated"] });
    let provisioner = serde_json::json!({
        "username": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
        "groups": ["system:serviceaccounts", "system:authenticated"],
    });
    let admin = serde_json::json!({ "username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"] });
    let replicaset_controller = serde_json::json!({
        "username": "system:serviceaccount:kube-system:replicaset-controller",
        "groups": ["system:serviceaccounts", "system:authenticated"],
    });
    let csi_volume = serde_json::json!({ "spec": { "csi": { "driver": "ebs.csi.aws.com", "volumeHandle": "vol-0123456789abcdef0" } } });
    let in_tree_volume = serde_json::json!({ "spec": { "awsElasticBlockStore": { "volumeID": "vol-0123456789abcdef0" } } });
    let nfs_volume =
        serde_json::json!({ "spec": { "nfs": { "server": "nfs.example.com", "path": "/" } } });
    let pod = |volumes: serde_json::Value| serde_json::json!({ "spec": { "containers": [{ "name": "c", "image": "busybox" }], "volumes": volumes } });
    let cases = [
        (
            "a user's PersistentVolume of an EBS volume",
            "persistentvolumes",
            &csi_volume,
            &user,
            "refused",
        ),
        (
            "a user's in-tree EBS PersistentVolume",
            "persistentvolumes",
            &in_tree_volume,
            &user,
            "refused",
        ),
        (
            "the provisioner's PersistentVolume",
            "persistentvolumes",
            &csi_volume,
            &provisioner,
            "admitted",
        ),
        (
            "an administrator's PersistentVolume",
            "persistentvolumes",
            &csi_volume,
            &admin,
            "admitted",
        ),
        (
            "a user's NFS PersistentVolume",
            "persistentvolumes",
            &nfs_volume,
            &user,
            "skipped",
        ),
        (
            "a pod naming an EBS volume in-tree",
            "pods",
            &pod(
                serde_json::json!([{ "name": "v", "awsElasticBlockStore": { "volumeID": "vol-0123456789abcdef0" } }]),
            ),
            &replicaset_controller,
            "refused",
        ),
        (
            "a pod naming an EBS volume through the driver",
            "pods",
            &pod(
                serde_json::json!([{ "name": "v", "csi": { "driver": "ebs.csi.aws.com", "volumeAttributes": {} } }]),
            ),
            &user,
            "refused",
        ),
        (
            "a pod with a claim and a config map",
            "pods",
            &pod(
                serde_json::json!([{ "name": "v", "persistentVolumeClaim": { "claimName": "data" } }, { "name": "c", "configMap": { "name": "x" } }]),
            ),
            &replicaset_controller,
            "admitted",
        ),
        (
            "a pod without volumes",
            "pods",
            &serde_json::json!({ "spec": { "containers": [] } }),
            &user,
            "admitted",
        ),
    ];
    let requests: Vec<serde_json::Value> = cases
        .iter()
        .map(|(_, resource, object, user, _)| {
            serde_json::json!({ "operation": "CREATE", "group": "", "resource": resource, "object": object, "userInfo": user })
        })
        .collect();
    let mut child = Command::new(tool("python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-admission.py"))
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            serde_json::json!({ "requests": requests })
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let decisions: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    for ((what, .., expected), decision) in cases.iter().zip(&decisions) {
        assert_eq!(decision["decision"], *expected, "{what}: {decision}");
    }
}
