//! The stacked etcd static pod of a control-plane node, as kubeadm lays it out: TLS for
//! clients and peers with certificate auth on both, the etcd CA's certificates under
//! [`PKI_DIR`], data under [`DATA_DIR`], health on the loopback metrics port.

use std::net::IpAddr;

use serde::Serialize;

use crate::templates::{self, TemplateError};

/// The etcd image, as kubeadm pins it for the Kubernetes versions rafter supports.
pub const ETCD_IMAGE: &str = "registry.k8s.io/etcd:3.5.21-0";
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

/// The static pod manifest of `this` member of `members`.
pub fn etcd_manifest(
    cluster: &str,
    members: &[EtcdMember],
    this: &EtcdMember,
    state: InitialState,
) -> Result<String, TemplateError> {
    let initial_cluster = members
        .iter()
        .map(|member| format!("{}={}", member.name, peer_url(member.ip)))
        .collect::<Vec<_>>()
        .join(",");
    let ip = match this.ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    templates::render(
        "node/etcd.yaml",
        Context {
            cluster,
            name: &this.name,
            ip,
            image: ETCD_IMAGE,
            initial_cluster,
            initial_state: match state {
                InitialState::New => "new",
                InitialState::Existing => "existing",
            },
            pki_dir: PKI_DIR,
            data_dir: DATA_DIR,
        },
    )
}
