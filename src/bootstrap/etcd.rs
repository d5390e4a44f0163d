//! The stacked etcd static pod of a control-plane node, as kubeadm lays it out: TLS for
//! clients and peers with certificate auth on both, the etcd CA's certificates under
//! [`PKI_DIR`], data under [`DATA_DIR`], health on the loopback metrics port.

use std::net::IpAddr;

use serde::Serialize;

use super::BootstrapError;
use super::assets;
use crate::spec::Cluster;
use crate::templates;

/// Where the node keeps etcd's certificates (`ca.crt`, `server.*`, `peer.*`).
pub const PKI_DIR: &str = "/etc/kubernetes/pki/etcd";
pub const DATA_DIR: &str = "/var/lib/etcd";

/// A control-plane node as etcd's membership sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    pub name: String,
    pub ip: IpAddr,
}

/// A new cluster's members start together from the full list; a member added to a running
/// cluster joins it (after `member add`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    New,
    Existing,
}

#[derive(Serialize)]
struct Context<'a> {
    cluster: &'a str,
    name: &'a str,
    ip: String,
    image: &'a str,
    initial_cluster: String,
    initial_state: &'a str,
    pki_dir: &'a str,
    data_dir: &'a str,
}

fn peer_url(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => format!("https://{ip}:2380"),
        IpAddr::V6(ip) => format!("https://[{ip}]:2380"),
    }
}

/// The static pod manifest of `this` member of `members`, running the asset list's etcd image.
pub fn etcd_manifest(
    cluster: &Cluster,
    members: &[EtcdMember],
    this: &EtcdMember,
    state: InitialState,
) -> Result<String, BootstrapError> {
    let image = assets::image(cluster, "etcd")?;
    let initial_cluster = members
        .iter()
        .map(|member| format!("{}={}", member.name, peer_url(member.ip)))
        .collect::<Vec<_>>()
        .join(",");
    let ip = match this.ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let rendered = templates::render(
        "node/etcd.yaml",
        Context {
            cluster: &cluster.metadata.name,
            name: &this.name,
            ip,
            image: &image,
            initial_cluster,
            initial_state: match state {
                InitialState::New => "new",
                InitialState::Existing => "existing",
            },
            pki_dir: PKI_DIR,
            data_dir: DATA_DIR,
        },
    )?;
    Ok(rendered)
}
