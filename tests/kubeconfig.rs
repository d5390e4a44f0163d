//! `rafter export kubeconfig` through the binary: the cluster's entries are merged into an
//! existing file without touching the others, the file is 0600, the server is the API's DNS
//! name, the CA is the cluster's, and the admin client certificate chains to it (checked
//! with `openssl verify`) and lives exactly as long as asked.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use aws_smithy_types::base64;
use serde_json::Value;

const NAME: &str = "kube.example.com";

const EXISTING: &str = "apiVersion: v1
kind: Config
clusters:
- name: other
  cluster: { server: https://other.example.org, insecure-skip-tls-verify: true }
users:
- name: other
  user: { token: keep-me }
contexts:
- name: other
  context: { cluster: other, user: other, namespace: team-a }
current-context: other
preferences: {}
";

fn rafter(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rafter"))
        .args(args)
        .env("RAFTER_STATE", state)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn entry<'a>(config: &'a Value, list: &str, name: &str) -> &'a Value {
    config[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}: {config}"))
}

fn decoded(value: &Value) -> String {
    String::from_utf8(base64::decode(value.as_str().unwrap()).unwrap()).unwrap()
}

fn openssl(args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .status()
        .unwrap()
        .success()
}

#[test]
fn export_merges_the_cluster_into_an_existing_kubeconfig_with_a_short_lived_admin() {
    let state = tempfile::tempdir().unwrap();
    let created = rafter(
        state.path(),
        &[
            "create",
            "cluster",
            "--name",
            NAME,
            "--profile",
            "ha-aws",
            "--zones",
            "eu-west-1a,eu-west-1b,eu-west-1c",
            "--dns-zone",
            "example.com",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("config");
    std::fs::write(&path, EXISTING).unwrap();

    let exported = rafter(
        state.path(),
        &[
            "export",
            "kubeconfig",
            NAME,
            "--admin=2h",
            "--kubeconfig",
            path.to_str().unwrap(),
        ],
    );
    let log = stderr(&exported);
    assert!(exported.status.success(), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let config: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(config["current-context"], NAME);
    // The other cluster's entries are untouched.
    assert_eq!(entry(&config, "users", "other")["user"]["token"], "keep-me");
    assert_eq!(
        entry(&config, "contexts", "other")["context"]["namespace"],
        "team-a"
    );
    assert_eq!(
        entry(&config, "clusters", "other")["cluster"]["server"],
        "https://other.example.org"
    );

    let cluster = &entry(&config, "clusters", NAME)["cluster"];
    assert_eq!(cluster["server"], "https://api.kube.example.com");
    let context = &entry(&config, "contexts", NAME)["context"];
    assert_eq!(
        (&context["cluster"], &context["user"]),
        (&Value::from(NAME), &Value::from(NAME))
    );
    let user = &entry(&config, "users", NAME)["user"];
    let files = tempfile::tempdir().unwrap();
    let ca = files.path().join("ca.crt");
    let cert = files.path().join("admin.crt");
    std::fs::write(&ca, decoded(&cluster["certificate-authority-data"])).unwrap();
    std::fs::write(&cert, decoded(&user["client-certificate-data"])).unwrap();
    assert!(decoded(&user["client-key-data"]).contains("PRIVATE KEY"));
    // The CA is the one in the state store, and the admin certificate chains to it.
    let stored = std::fs::read_to_string(state.path().join(format!("{NAME}/pki/ca.pem"))).unwrap();
    assert!(stored.starts_with(&decoded(&cluster["certificate-authority-data"])));
    assert!(openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        cert.to_str().unwrap()
    ]));
    let cert_path = cert.to_str().unwrap();
    assert!(openssl(&[
        "x509",
        "-noout",
        "-checkend",
        "7000",
        "-in",
        cert_path
    ]));
    assert!(
        !openssl(&["x509", "-noout", "-checkend", "7300", "-in", cert_path]),
        "lives longer than 2h"
    );

    // The authorities the certificate came from, and when they expire; no key shown.
    let listed = rafter(state.path(), &["get", "certificates", NAME]);
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.status.success(), "{}", stderr(&listed));
    for (name, subject) in [
        ("ca", "CN=kubernetes"),
        ("etcd-ca", "CN=etcd-ca"),
        ("front-proxy-ca", "CN=front-proxy-ca"),
    ] {
        let row = table
            .lines()
            .find(|line| line.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{table}"));
        assert!(row.contains(subject), "{row}");
        assert!(
            row.ends_with("3649d") || row.ends_with("3650d"),
            "CAs live 10 years: {row}"
        );
    }
    assert!(!table.contains("PRIVATE"), "{table}");

    // Again, internal and without a credential: one entry per name, the user kept.
    let again = rafter(
        state.path(),
        &[
            "export",
            "kubeconfig",
            NAME,
            "--internal",
            "--kubeconfig",
            path.to_str().unwrap(),
        ],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("add --admin"), "{}", stderr(&again));
    let config: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(config["clusters"].as_array().unwrap().len(), 2);
    assert_eq!(config["users"].as_array().unwrap().len(), 2);
    assert_eq!(
        entry(&config, "clusters", NAME)["cluster"]["server"],
        "https://api.internal.kube.example.com"
    );
}

#[test]
fn export_refuses_what_it_cannot_do_well() {
    let state = tempfile::tempdir().unwrap();
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), common::EXAMPLE_PUBLIC_KEY).unwrap();
    let created = rafter(
        state.path(),
        &[
            "create",
            "cluster",
            "--name",
            "nodns.example.com",
            "--profile",
            "dev-aws",
            "--zones",
            "eu-west-1a",
            "--ssh-public-key",
            key.path().to_str().unwrap(),
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("config");
    // No DNS zone and nothing applied: no address for the API yet.
    let refused = rafter(
        state.path(),
        &[
            "export",
            "kubeconfig",
            "nodns.example.com",
            "--kubeconfig",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("no API load balancer yet"),
        "{}",
        stderr(&refused)
    );
    assert!(!path.exists());
    // A kubeconfig that is not one is left alone, with an error naming it.
    std::fs::write(&path, "- just\n- a list\n").unwrap();
    let created = rafter(
        state.path(),
        &[
            "create",
            "cluster",
            "--name",
            NAME,
            "--profile",
            "ha-aws",
            "--zones",
            "eu-west-1a,eu-west-1b,eu-west-1c",
            "--dns-zone",
            "example.com",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let refused = rafter(
        state.path(),
        &[
            "export",
            "kubeconfig",
            NAME,
            "--admin",
            "--kubeconfig",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(path.to_str().unwrap()),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "- just\n- a list\n"
    );
    let bad = rafter(
        state.path(),
        &[
            "export",
            "kubeconfig",
            NAME,
            "--admin=forever",
            "--kubeconfig",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("not a duration"), "{}", stderr(&bad));
}

#[test]
fn an_exec_credential_kubeconfig_holds_no_key_and_its_plugin_issues_short_lived_admins() {
    let state = tempfile::tempdir().unwrap();
    let created = rafter(
        state.path(),
        &["create", "cluster", "--name", NAME, "--profile", "ha-ssh"],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let path = state.path().join("kubeconfig");
    let exported = rafter(
        state.path(),
        &[
            "export",
            "kubeconfig",
            NAME,
            "--exec",
            "--kubeconfig",
            path.to_str().unwrap(),
        ],
    );
    assert!(exported.status.success(), "{}", stderr(&exported));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("client-key-data"), "{text}");
    let config: Value = serde_saphyr::from_str(&text).unwrap();
    // A bare-host cluster's server is the spec's shared endpoint.
    assert_eq!(
        entry(&config, "clusters", NAME)["cluster"]["server"],
        "https://10.250.0.10:6443"
    );
    let exec = &entry(&config, "users", NAME)["user"]["exec"];
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(exec["interactiveMode"], "Never");

    // Run the plugin exactly as kubectl would, from another directory, without RAFTER_STATE.
    let args: Vec<&str> = exec["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect();
    let plugin = Command::new(exec["command"].as_str().unwrap())
        .args(&args)
        .env_remove("RAFTER_STATE")
        .current_dir("/")
        .output()
        .unwrap();
    assert!(plugin.status.success(), "{}", stderr(&plugin));
    let credential: Value = serde_json::from_slice(&plugin.stdout).unwrap();
    assert_eq!(credential["kind"], "ExecCredential");
    let status = &credential["status"];
    let expires = time::OffsetDateTime::parse(
        status["expirationTimestamp"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(55) && left <= time::Duration::hours(1),
        "{left}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("admin.crt");
    let ca = dir.path().join("ca.crt");
    std::fs::write(&cert, status["clientCertificateData"].as_str().unwrap()).unwrap();
    std::fs::write(
        &ca,
        decoded(&entry(&config, "clusters", NAME)["cluster"]["certificate-authority-data"]),
    )
    .unwrap();
    assert!(
        status["clientKeyData"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY")
    );
    let (cert, ca) = (cert.to_str().unwrap(), ca.to_str().unwrap());
    assert!(openssl(&["verify", "-CAfile", ca, cert]));
    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in", cert])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&subject.stdout).contains("O = system:masters"));
    assert!(openssl(&[
        "x509",
        "-noout",
        "-checkend",
        "3000",
        "-in",
        cert
    ]));
    assert!(!openssl(&[
        "x509",
        "-noout",
        "-checkend",
        "3700",
        "-in",
        cert
    ]));
}
