//! The stacked etcd member of a control-plane node, run by systemd as kubespray's default
//! (`etcd_deployment_type: host`) does: TLS for clients and peers with certificate auth on
//! both, the etcd CA's certificates under [`PKI_DIR`], data under [`DATA_DIR`], health on the
//! loopback metrics port.
//!
//! A host service rather than kubeadm's static pod: etcd is up before the kubelet and does not
//! depend on it or on the container runtime, and rafter changes its membership over SSH with
//! the `etcdctl` next to it. How a member first finds the cluster (`--initial-cluster…`) lives
//! in its own file, [`INITIAL_CLUSTER_FILE`], which etcd reads only while its data directory is
//! empty: a later change of membership rewrites that file without restarting the member.

use std::net::IpAddr;

use serde::Serialize;

use super::BootstrapError;
use crate::spec::Cluster;
use crate::templates;

/// Where the node keeps etcd's certificates (`ca.crt`, `server.*`, `peer.*`).
pub const PKI_DIR: &str = "/etc/kubernetes/pki/etcd";
pub const DATA_DIR: &str = "/var/lib/etcd";
/// Where the asset list unpacks etcd's release (`etcd`, `etcdctl`, `etcdutl`).
pub const INSTALL_DIR: &str = "/opt/etcd";
pub const UNIT_FILE: &str = "/etc/systemd/system/etcd.service";
pub const INITIAL_CLUSTER_FILE: &str = "/etc/etcd/initial-cluster.env";
/// `etcdctl` against the local member with the node's health-check client certificate.
pub const ETCDCTL: &str = "/usr/local/lib/rafter/etcdctl";

/// A control-plane node as etcd's membership sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    pub name: String,
    pub ip: IpAddr,
}

impl EtcdMember {
    pub fn peer_url(&self) -> String {
        format!("https://{}:2380", url_host(self.ip))
    }

    pub fn client_url(&self) -> String {
        format!("https://{}:2379", url_host(self.ip))
    }
}

/// An address as the host part of a URL (`[v6]`).
fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    }
}

/// A new cluster's members start together from the full list; a member added to a running
/// cluster joins it (after `member add`); an established member (it has data) found the
/// cluster long ago, so it gets no first-start file at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    New,
    Existing,
    Established,
}

/// The two files of a member: its systemd unit and how it first finds the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdFiles {
    pub unit: String,
    /// `None` for an established member.
    pub initial_cluster: Option<String>,
}

#[derive(Serialize)]
struct Context<'a> {
    cluster: &'a str,
    name: &'a str,
    ip: String,
    binary: String,
    initial_cluster_file: &'a str,
    initial_cluster: String,
    initial_state: &'a str,
    pki_dir: &'a str,
    data_dir: &'a str,
}

/// The files of `this` member of `members`.
pub fn etcd_files(
    cluster: &Cluster,
    members: &[EtcdMember],
    this: &EtcdMember,
    state: InitialState,
) -> Result<EtcdFiles, BootstrapError> {
    let initial_state = match state {
        InitialState::New => "new",
        InitialState::Existing => "existing",
        InitialState::Established => "",
    };
    let initial_cluster = members
        .iter()
        .map(|member| format!("{}={}", member.name, member.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    let context = Context {
        cluster: &cluster.metadata.name,
        name: &this.name,
        ip: url_host(this.ip),
        binary: format!("{INSTALL_DIR}/etcd"),
        initial_cluster_file: INITIAL_CLUSTER_FILE,
        initial_cluster,
        initial_state,
        pki_dir: PKI_DIR,
        data_dir: DATA_DIR,
    };
    Ok(EtcdFiles {
        unit: templates::render("node/etcd.service", &context)?,
        initial_cluster: match state {
            InitialState::Established => None,
            _ => Some(templates::render(
                "node/etcd-initial-cluster.env",
                &context,
            )?),
        },
    })
}
